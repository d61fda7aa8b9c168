import type { Logger } from 'pino';
import { reportError } from './output.js';

export type Run = <T extends object>(
  action: (options: T, ...rest: string[]) => Promise<void>,
) => (...args: unknown[]) => Promise<void>;

/**
 * Wraps a command action: commander passes positional arguments first and the options object
 * after them; errors are reported once, as "error CODE: message", with the exit code.
 */
export const run: Run =
  (action) =>
  async (...args: unknown[]) => {
    // A variadic argument (digit groups typed with spaces) arrives as an array: spread it.
    const positional = args.flatMap((a) =>
      typeof a === 'string' ? [a] : Array.isArray(a) ? a.filter((x): x is string => typeof x === 'string') : [],
    );
    const options = (args.find((a) => typeof a === 'object' && a !== null && !Array.isArray(a) && !('parent' in a)) ??
      {}) as Parameters<typeof action>[0];
    try {
      await action(options, ...positional);
    } catch (err) {
      process.exitCode = reportError(err, Boolean((options as { json?: boolean }).json));
    }
  };

/**
 * Structured logs (JSON lines) on stdout for the daemons, bounded in memory (see kms-host).
 * Loaded when a daemon starts: the other commands do not pay for pino and the KMS host.
 */
export async function createLogger(level: string): Promise<Logger> {
  const [{ default: pino }, { createHostLogDestination }] = await Promise.all([
    import('pino'),
    import('@volact/kms-host'),
  ]);
  return pino({ level, base: { pid: process.pid } }, createHostLogDestination(1));
}

/**
 * Resolves on SIGINT/SIGTERM so daemons can close cleanly (window flushed, sockets closed).
 * Later signals are ignored while closing: a Ctrl-C reaches both the `volact` launcher and
 * the daemon it started, and the launcher passes it on as well.
 */
export function waitForShutdown(): Promise<void> {
  return new Promise((resolve) => {
    process.on('SIGINT', () => resolve());
    process.on('SIGTERM', () => resolve());
  });
}
