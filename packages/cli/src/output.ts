import { VolactError } from '@volact/core';

/** Errors found while reading the command line: codes like OPTION_INVALID. */
export class CliError extends VolactError {
  override readonly name = 'CliError';
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/**
 * Every error becomes one line, "error CODE: message" on stderr (or {"error":{code,message}}
 * on stdout with --json), and exit code 1. System errors keep their errno code (ENOENT, …).
 */
export function reportError(err: unknown, json: boolean): number {
  const message = err instanceof Error ? err.message : String(err);
  let code = 'INTERNAL';
  if (err instanceof VolactError) code = (err as VolactError).code;
  else if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') {
    code = (err as NodeJS.ErrnoException).code as string;
  }
  if (json) printJson({ error: { code, message } });
  else process.stderr.write(`error ${code}: ${message}\n`);
  return 1;
}
