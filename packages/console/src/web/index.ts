export { startConsoleServer, MAX_BODY_BYTES } from './server.js';
export type { ConsoleServer, ConsoleServerOptions } from './server.js';
export type { DefaultAuthority } from './api.js';
export { webErrors, WebError } from './errors.js';
export type { WebErrorCode } from './errors.js';
export type { Job, JobOperation, JobSummary } from './jobs.js';
export { JOB_OPERATIONS } from './jobs.js';
export { SESSION_COOKIE, SESSION_IDLE_MS } from './sessions.js';
