import { vi } from 'vitest';
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
