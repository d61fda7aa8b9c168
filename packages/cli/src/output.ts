import { AuthorityError } from '@volact/authority';
import { ClientError } from '@volact/client';
import { CoreError } from '@volact/core';
import { KmsHostError } from '@volact/kms-host';

export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Every typed error becomes one line on stderr, "error CODE: message", and an exit code. */
export function reportError(err: unknown, json: boolean): number {
  let code = 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  let exitCode = 1;
  if (err instanceof CliError) {
    code = err.code;
    exitCode = err.exitCode;
  } else if (
    err instanceof AuthorityError ||
    err instanceof ClientError ||
    err instanceof CoreError ||
    err instanceof KmsHostError
  ) {
    code = err.code;
  } else if (
    err instanceof Error &&
    (err as NodeJS.ErrnoException).code &&
    typeof (err as NodeJS.ErrnoException).code === 'string'
  ) {
    code = (err as NodeJS.ErrnoException).code as string;
  }
  if (json) printJson({ error: { code, message } });
  else process.stderr.write(`error ${code}: ${message}\n`);
  return exitCode;
}
