import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ConsoleError } from '../errors.js';

/** The lock `volact console serve` holds in its data directory while it serves. */
export const SERVE_LOCK_FILE = 'serve.lock';

interface LockContent {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
}

/** Whether process `pid` of this machine is alive (EPERM: alive, another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(path: string): LockContent | null {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8').slice(0, 1_000)) as Partial<LockContent>;
    return Number.isSafeInteger(parsed.pid) && typeof parsed.host === 'string'
      ? { pid: parsed.pid as number, host: parsed.host, startedAt: String(parsed.startedAt ?? '?') }
      : null;
  } catch {
    return null;
  }
}

export interface ServeLock {
  /** Removes the lock (when it is still this process's). */
  release(): void;
}

/**
 * Takes the data directory's serve lock: one `console serve` per data directory, so that a
 * second one neither marks the first one's running job interrupted nor runs jobs beside it on
 * the same machines. A lock held by a live process is refused with CONSOLE_SERVED naming its pid;
 * one left by a process that is gone (killed, a crash) is taken over. A lock of another host
 * (a data directory on a network share) cannot be checked: refused, saying how to clear it.
 */
export function acquireServeLock(
  dataDir: string,
  /** The time now (ms): written in the lock for the message of a refused second server. */
  now: number,
  options: { pid?: number; host?: string; isAlive?: (pid: number) => boolean } = {},
): ServeLock {
  const path = join(dataDir, SERVE_LOCK_FILE);
  const mine: LockContent = {
    pid: options.pid ?? process.pid,
    host: options.host ?? hostname(),
    startedAt: new Date(now).toISOString(),
  };
  const isAlive = options.isAlive ?? alive;
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const held = readLock(path);
      if (held && held.host !== mine.host) {
        throw new ConsoleError(
          'CONSOLE_SERVED',
          `${dataDir} is served by process ${held.pid} on ${held.host.slice(0, 100)} (since ${held.startedAt}): stop that \`volact console serve\` first; if it is gone, remove ${path}`,
        );
      }
      if (held && isAlive(held.pid)) {
        throw new ConsoleError(
          'CONSOLE_SERVED',
          `${dataDir} is already served by process ${held.pid} (since ${held.startedAt}): two servers would run jobs on the same machines and interrupt each other's; stop it first, or serve another data directory`,
        );
      }
      // Left by a process that is gone (or unreadable: a crash while writing it): taken over.
      rmSync(path, { force: true });
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify(mine)}\n`);
    } finally {
      closeSync(fd);
    }
    return {
      release: () => {
        const held = readLock(path);
        if (held && held.pid === mine.pid && held.host === mine.host) rmSync(path, { force: true });
      },
    };
  }
  throw new ConsoleError(
    'CONSOLE_SERVED',
    `${dataDir}: another \`volact console serve\` took the lock at the same time`,
  );
}
