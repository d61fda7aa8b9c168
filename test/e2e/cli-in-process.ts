import { expect, vi } from 'vitest';
import { join } from 'node:path';
import { buildProgram } from '@volact/cli';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `volact …` in this process (the real command tree), capturing its output and exit code.
 * With `now`, Date.now answers from that clock while the command runs (the CLI has no clock
 * flag), so time rules follow a test's manual clock.
 */
export async function runCliInProcess(args: readonly string[], options: { now?: () => number } = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  const log = vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => {
    stdout += `${parts.join(' ')}\n`;
  });
  const now = options.now ? vi.spyOn(Date, 'now').mockImplementation(options.now) : undefined;
  process.exitCode = 0;
  try {
    await buildProgram().parseAsync(['node', 'volact', ...args]);
  } finally {
    out.mockRestore();
    err.mockRestore();
    log.mockRestore();
    now?.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, stdout, stderr };
}

/**
 * A test plays several machines: each `client` command on a state directory in `machines` gets
 * that machine's hardware id (a real machine reads its own at every start; the store is not
 * trusted with it): the one its `client init --hardware-id` gave, recorded here. Commands that
 * give one themselves are left alone.
 */
export function onMachine(args: readonly string[], machines: Map<string, string> | undefined): string[] {
  const at = args.indexOf('--state-dir');
  const given = args.indexOf('--hardware-id');
  if (machines && args[0] === 'client' && args[1] === 'init' && at >= 0 && given >= 0) {
    machines.set(args[at + 1] ?? '', args[given + 1] ?? '');
  }
  const hardwareId = at < 0 ? undefined : machines?.get(args[at + 1] ?? '');
  if (args[0] !== 'client' || args[1] === 'init' || hardwareId === undefined || args.includes('--hardware-id')) {
    return [...args];
  }
  return [...args, '--hardware-id', hardwareId];
}

/**
 * `ok` runs a command that must succeed (exit 0) and returns its stdout; `json` adds --json and
 * parses it; `refused` adds --json, expects exit 1 (with `anyFailureExit`, any non-zero: `client
 * activate` has its own exit codes) and returns the error `{code, message}`.
 */
export function cliExpectations(
  options: { now?: () => number; anyFailureExit?: boolean; machines?: Map<string, string> } = {},
) {
  const ok = async (...given: string[]): Promise<string> => {
    const args = onMachine(given, options.machines);
    const r = await runCliInProcess(args, options);
    expect(r.code, `volact ${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
    return r.stdout;
  };
  const json = async <T>(...args: string[]): Promise<T> => JSON.parse(await ok(...args, '--json')) as T;
  const refused = async (...given: string[]): Promise<{ code: string; message: string }> => {
    const args = onMachine(given, options.machines);
    const r = await runCliInProcess([...args, '--json'], options);
    const failed = expect(r.code, `volact ${args.join(' ')} should fail\n${r.stdout}${r.stderr}`);
    if (options.anyFailureExit) failed.toBeGreaterThan(0);
    else failed.toBe(1);
    const out = JSON.parse(r.stdout) as { error?: { code: string; message: string }; code?: string; message?: string };
    return out.error ?? { code: out.code as string, message: out.message as string };
  };
  return { ok, json, refused };
}

/**
 * Installations made through `client init` and `client set-host` on a slice, one new state
 * directory `<prefix><n>` (hardware id `hw-<prefix><n>`) per call.
 */
export function cliInstallations(
  ok: (...args: string[]) => Promise<unknown>,
  slice: () => { root: string; productFile: string; hostAddress: () => string },
  prefix: string,
): () => Promise<string> {
  let made = 0;
  return async () => {
    made += 1;
    const { root, productFile, hostAddress } = slice();
    const stateDir = join(root, 'cli-clients', `${prefix}${made}`);
    await ok(
      'client',
      'init',
      '--state-dir',
      stateDir,
      '--product',
      productFile,
      '--hardware-id',
      `hw-${prefix}${made}`,
    );
    await ok('client', 'set-host', '--state-dir', stateDir, hostAddress());
    return stateDir;
  };
}
