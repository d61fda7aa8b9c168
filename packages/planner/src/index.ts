export * from './errors.js';
export * from './inventory.js';
export * from './rules.js';
export * from './plan.js';
export * from './render.js';
