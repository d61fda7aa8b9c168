import {
  closeSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ConsoleError } from '../errors.js';

/** The lock `volact console serve` holds in its data directory while it serves. */
export const SERVE_LOCK_FILE = 'serve.lock';

interface LockContent {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
  /**
   * Which process this pid is: the kernel's boot id and the process's start time (clock ticks
   * after boot, /proc/PID/stat field 22). A pid reused by another process after a crash, or the
   * same pid in a restarted container (pid 1, same host name), has another; absent where /proc is not.
   */
  readonly process?: string;
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

/** The boot id and start time of process `pid` ("BOOT/TICKS"), or undefined without /proc. */
function processIdentity(pid: number): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses): field 3 onwards.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return boot !== '' && start !== undefined && /^\d+$/.test(start) ? `${boot}/${start}` : undefined;
  } catch {
    return undefined;
  }
}

function parseLock(text: string): LockContent | null {
  try {
    const parsed = JSON.parse(text.slice(0, 1_000)) as Partial<LockContent>;
    return Number.isSafeInteger(parsed.pid) && typeof parsed.host === 'string'
      ? {
          pid: parsed.pid as number,
          host: parsed.host,
          startedAt: String(parsed.startedAt ?? '?'),
          ...(typeof parsed.process === 'string' ? { process: parsed.process } : {}),
        }
      : null;
  } catch {
    return null;
  }
}

/** The lock's bytes, or null when there is none. */
function readRaw(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Whether the file was modified less than 10 s before `now` (ms). */
function young(path: string, now: number): boolean {
  try {
    return now - statSync(path).mtimeMs < 10_000;
  } catch {
    return false;
  }
}

export interface ServeLock {
  /** Removes the lock (when it is still this process's). */
  release(): void;
}

export interface ServeLockOptions {
  pid?: number;
  host?: string;
  isAlive?: (pid: number) => boolean;
  /** Which process a pid is now (boot id and start time), undefined when unknown. */
  identify?: (pid: number) => string | undefined;
}

/**
 * Takes the data directory's serve lock: one `console serve` per data directory, so that a
 * second one neither marks the first one's running job interrupted nor runs jobs beside it on
 * the same machines. A lock held by a live process is refused with CONSOLE_SERVED naming its pid;
 * one left by a process that is gone (killed, a crash; its pid now this process's own or another
 * process's, as after a container restart) is taken over. A lock of another host (a data
 * directory on a network share) cannot be checked: refused, saying how to clear it.
 *
 * The lock appears whole (written to a file of its own, then linked into place: never empty),
 * and a stale one is taken over by renaming it aside first, so of two servers starting together
 * after a crash only one moves it and takes the lock.
 */
export function acquireServeLock(
  dataDir: string,
  /** The time now (ms): written in the lock for the message of a refused second server. */
  now: number,
  options: ServeLockOptions = {},
): ServeLock {
  const path = join(dataDir, SERVE_LOCK_FILE);
  const identify = options.identify ?? processIdentity;
  const pid = options.pid ?? process.pid;
  const identity = identify(pid);
  const mine: LockContent = {
    pid,
    host: options.host ?? hostname(),
    startedAt: new Date(now).toISOString(),
    ...(identity !== undefined ? { process: identity } : {}),
  };
  const myText = `${JSON.stringify(mine)}\n`;
  const isAlive = options.isAlive ?? alive;
  /** Whether the process named by a lock of this host still runs (and is the one that wrote it). */
  const holds = (held: LockContent): boolean => {
    if (held.pid === mine.pid && (held.process === undefined || held.process !== mine.process)) return false;
    if (!isAlive(held.pid)) return false;
    if (held.process === undefined) return true;
    const current = identify(held.pid);
    return current === undefined || current === held.process;
  };

  const unique = `${process.pid}.${randomBytes(6).toString('hex')}`;
  const written = join(dataDir, `${SERVE_LOCK_FILE}.${unique}.new`);
  const fd = openSync(written, 'wx', 0o600);
  try {
    writeSync(fd, myText);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(written, path);
        return {
          release: () => {
            if (readRaw(path) === myText) rmSync(path, { force: true });
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const raw = readRaw(path);
      if (raw === null) continue; // released meanwhile
      const held = parseLock(raw);
      if (held && held.host !== mine.host) {
        throw new ConsoleError(
          'CONSOLE_SERVED',
          `${dataDir} is served by process ${held.pid} on ${held.host.slice(0, 100)} (since ${held.startedAt}): stop that \`volact console serve\` first; if it is gone, remove ${path}`,
        );
      }
      if (held === null && young(path, now)) {
        // Unreadable and just made: being written by an older version (create, then write).
        throw new ConsoleError(
          'CONSOLE_SERVED',
          `${dataDir} is being locked by another \`volact console serve\` starting now: try again in a few seconds; if none is starting, remove ${path}`,
        );
      }
      if (held && holds(held)) {
        throw new ConsoleError(
          'CONSOLE_SERVED',
          `${dataDir} is already served by process ${held.pid} (since ${held.startedAt}): two servers would run jobs on the same machines and interrupt each other's; stop it first, or serve another data directory`,
        );
      }
      // Left by a process that is gone (or unreadable and older: damaged): moved aside, then checked to
      // be the one judged stale (another server may have taken it over in between).
      const aside = join(dataDir, `${SERVE_LOCK_FILE}.${unique}.stale`);
      try {
        renameSync(path, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another moved it first
        throw err;
      }
      if (readRaw(aside) !== raw) {
        // A live server's fresh lock: put back (unless yet another took the place meanwhile).
        try {
          linkSync(aside, path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      }
      rmSync(aside, { force: true });
    }
  } finally {
    rmSync(written, { force: true });
  }
  throw new ConsoleError(
    'CONSOLE_SERVED',
    `${dataDir}: another \`volact console serve\` took the lock at the same time`,
  );
}
