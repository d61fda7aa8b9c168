import { VolactError, printable } from '@volact/core';
import type { CliErrorCode } from './errors.js';

/** Errors found while reading the command line: the codes of cliErrors (errors.ts). */
export class CliError extends VolactError<CliErrorCode> {
  override readonly name = 'CliError';
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/**
 * Exit codes of a failed command: 1 in general; 3 when a service the command needs is
 * unreachable for now (the authority, or its database: AUTHORITY_UNREACHABLE,
 * STORE_UNAVAILABLE), so scripts retry.
 */
export const EXIT_CODES = { failed: 1, unreachable: 3 } as const;
const RETRYABLE_CODES = new Set(['STORE_UNAVAILABLE', 'AUTHORITY_UNREACHABLE']);

/**
 * A message as it may reach a terminal: escape sequences and control characters removed
 * (printable), line by line. An agent's own error code and message travel inside a console's
 * AGENT_REFUSED: a rogue agent's `ESC ] 0 ; … BEL` must not retitle the operator's window.
 */
const terminalText = (message: string): string =>
  message
    .split('\n')
    .map((line) => printable(line))
    .join('\n');

/**
 * Every error becomes one line, "error CODE: message" on stderr (or {"error":{code,message}}
 * on stdout with --json), and exit code 1 (3 for a retryable outage, see EXIT_CODES). System
 * errors keep their errno code (ENOENT, …). The text form is printable (see terminalText);
 * --json keeps the message as it came, JSON-escaped.
 */
export function reportError(err: unknown, json: boolean): number {
  const message = err instanceof Error ? err.message : String(err);
  let code: string = 'INTERNAL' satisfies CliErrorCode;
  if (err instanceof VolactError) code = (err as VolactError).code;
  else if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') {
    code = (err as NodeJS.ErrnoException).code as string;
  }
  if (json) printJson({ error: { code, message } });
  else process.stderr.write(`error ${printable(code)}: ${terminalText(message)}\n`);
  return RETRYABLE_CODES.has(code) ? EXIT_CODES.unreachable : EXIT_CODES.failed;
}
