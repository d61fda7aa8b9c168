export * from './frame.js';
export * from './merkle.js';
export * from './messages.js';
