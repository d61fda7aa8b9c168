export { buildProgram, main } from './main.js';
export { cliErrors } from './errors.js';
export type { CliErrorCode } from './errors.js';
export { CliError } from './output.js';
