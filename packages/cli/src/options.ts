import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { CliError } from './output.js';

/** Parses HOST:PORT for listening addresses; port 0 picks a free port. */
export function parseListen(text: string, flag: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    throw new CliError(
      'OPTION_INVALID',
      `${flag} "${text}" is not HOST:PORT (e.g. 127.0.0.1:1688; port 0 picks a free one)`,
    );
  }
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

export function parseIntOption(text: string, flag: string, min: number, max: number): number {
  // Digits only: "", "0x10" and "1e3" are typos here, not numbers.
  const r = z.coerce
    .number()
    .int()
    .min(min)
    .max(max)
    .safeParse(/^\d+$/.test(text.trim()) ? text.trim() : NaN);
  if (!r.success)
    throw new CliError('OPTION_INVALID', `${flag} must be a whole number from ${min} to ${max}, got "${text}"`);
  return r.data;
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Durations like 30d, 2h, 15m, 90s, within [min, max]. */
export function parseDuration(text: string, flag: string, bounds: { min: number; max: number }): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new CliError('OPTION_INVALID', `${flag} "${text}" is not a duration like 30d, 2h, 15m or 90s`);
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms < bounds.min || ms > bounds.max) {
    throw new CliError(
      'OPTION_INVALID',
      `${flag} ${text} is out of range: from ${bounds.min / 60_000} minutes to ${bounds.max / 86_400_000} days`,
    );
  }
  return ms;
}

export const HARDWARE_ID_RE = /^[0-9A-Za-z._:-]{1,128}$/;

export function parseHardwareId(text: string): string {
  if (!HARDWARE_ID_RE.test(text)) {
    throw new CliError('OPTION_INVALID', `--hardware-id must be 1-128 letters, digits or ._:- characters`);
  }
  return text;
}

/** Reads a product.json (as exported by `volact authority product-config`) as JSON; validated by its user. */
export function readProductConfigFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CliError('PRODUCT_CONFIG_INVALID', `cannot read ${file}: ${(err as Error).message}`);
  }
}

/** A secret kept in a file (a password): trimmed; errors name the file, never its content. `-` reads standard input. */
export function readSecretFile(file: string, flag: string): string {
  let text: string;
  try {
    // fd 0: a pipe or a file redirected in; never echoed, never in the process list.
    text = readFileSync(file === '-' ? 0 : file, 'utf8').trim();
  } catch (err) {
    throw new CliError(
      'OPTION_INVALID',
      `${flag} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    );
  }
  if (!text) {
    throw new CliError(
      'OPTION_INVALID',
      file === '-' ? `${flag}: standard input is empty` : `${flag} ${file} is empty`,
    );
  }
  return text;
}

/** The help text of a secret given as an argument: other local users see arguments in `ps`. */
export const SECRET_ARGUMENT_HELP =
  'or - to read it from standard input; as an argument it is visible to other local users (ps) and in shell history: prefer --key-file FILE or -';

/**
 * A product key given once: as an argument (kept for scripts; `-` reads standard input) or
 * with --key-file FILE (`-` for standard input too), so it stays out of the process list.
 */
export function readKeyInput(given: string | undefined, keyFile: string | undefined, flag = '--key-file'): string {
  if ((given === undefined) === (keyFile === undefined)) {
    throw new CliError(
      'OPTION_INVALID',
      `give the key exactly once: the key itself, or ${flag} FILE (- in either place reads standard input)`,
    );
  }
  if (keyFile !== undefined) return readSecretFile(keyFile, flag);
  if (given === '-') return readSecretFile('-', 'the key');
  return given as string;
}

/** A bearer token in a file (admin API, agent): a secret, never printed; at least 16 characters so it cannot be guessed. */
export function readTokenFile(file: string, flag: string, minLength = 16): string {
  const token = readSecretFile(file, flag);
  if (token.length < minLength)
    throw new CliError('OPTION_INVALID', `${flag} ${file} holds fewer than ${minLength} characters`);
  return token;
}
