import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsoleError } from '../errors.js';
import { SERVE_LOCK_FILE, acquireServeLock } from './serve-lock.js';

/** One `console serve` per data directory: a live one's lock refuses a second; a dead one's is taken over. */
let root: string;
let n = 0;
const NOW = Date.UTC(2026, 11, 3, 9);
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'volact-serve-lock-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
const dataDir = () => {
  const dir = join(root, `d-${++n}`);
  mkdirSync(dir);
  return dir;
};
const refusal = (work: () => unknown): ConsoleError => {
  try {
    work();
  } catch (err) {
    if (err instanceof ConsoleError) return err;
    throw err;
  }
  throw new Error('not refused');
};

/** A real other process, alive until killed (it waits on its stdin; no timer). */
const aliveUntilKilled = () => spawn(process.execPath, ['-e', 'process.stdin.resume()']);

describe('the serve lock of a data directory', () => {
  it('a second server while the first lives: CONSOLE_SERVED naming its pid; free again once released', () => {
    const dir = dataDir();
    // A real other process, alive: its pid in the lock.
    const other = aliveUntilKilled();
    try {
      const first = acquireServeLock(dir, NOW, { pid: other.pid as number });
      const err = refusal(() => acquireServeLock(dir, NOW));
      expect(err.code).toBe('CONSOLE_SERVED');
      expect(err.message).toContain(`process ${other.pid}`);
      expect(err.message).toContain('2026-12-03T09:00:00.000Z');
      first.release();
      expect(existsSync(join(dir, SERVE_LOCK_FILE))).toBe(false);
      acquireServeLock(dir, NOW).release();
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('a lock left by a process that is gone (killed) is taken over', async () => {
    const dir = dataDir();
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => gone.on('exit', resolve));
    writeFileSync(join(dir, SERVE_LOCK_FILE), JSON.stringify({ pid: gone.pid, host: 'x', startedAt: 'then' }));
    // Another host's lock cannot be checked: refused, saying how to clear it.
    expect(refusal(() => acquireServeLock(dir, NOW, { host: 'this-host' })).message).toMatch(/on x .*remove/);
    const lock = acquireServeLock(dir, NOW, { host: 'x' });
    expect(JSON.parse(readFileSync(join(dir, SERVE_LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid, host: 'x' });
    lock.release();
  });

  it('an unreadable lock is refused while it may be being written, taken over once older (damaged)', () => {
    const dir = dataDir();
    const path = join(dir, SERVE_LOCK_FILE);
    writeFileSync(path, '');
    const justNow = statSync(path).mtimeMs;
    // Empty, made a moment ago: another server (an older version: create, then write) is starting.
    expect(refusal(() => acquireServeLock(dir, justNow + 1_000)).message).toMatch(/being locked .*try again/);
    expect(readFileSync(path, 'utf8')).toBe('');
    writeFileSync(path, '{"pid":');
    utimesSync(path, new Date(NOW - 60_000), new Date(NOW - 60_000));
    acquireServeLock(dir, NOW).release();
    expect(readdirSync(dir)).toEqual([]); // no file of the lock's left behind
  });

  it('a lock naming this very process (a restarted container: pid 1 again, same host) is taken over', () => {
    const dir = dataDir();
    writeFileSync(
      join(dir, SERVE_LOCK_FILE),
      JSON.stringify({ pid: process.pid, host: hostname(), startedAt: 'before the restart' }),
    );
    const lock = acquireServeLock(dir, NOW);
    expect(JSON.parse(readFileSync(join(dir, SERVE_LOCK_FILE), 'utf8'))).toMatchObject({
      pid: process.pid,
      startedAt: '2026-12-03T09:00:00.000Z',
    });
    // Held by this process now: a second acquire in it is refused (it is the same live server).
    expect(refusal(() => acquireServeLock(dir, NOW)).code).toBe('CONSOLE_SERVED');
    lock.release();
  });

  it('a live pid that is another process than the one that wrote the lock (pid reused) is stale', () => {
    const dir = dataDir();
    const other = aliveUntilKilled();
    try {
      const pid = other.pid as number;
      // Written by an earlier process with this pid (another start time): taken over.
      acquireServeLock(dir, NOW, { pid, identify: (p) => (p === pid ? 'boot/1' : undefined) });
      acquireServeLock(dir, NOW, { identify: (p) => (p === pid ? 'boot/2' : undefined) }).release();
      // The same process (same start time): refused.
      acquireServeLock(dir, NOW, { pid, identify: () => 'boot/3' });
      expect(refusal(() => acquireServeLock(dir, NOW, { identify: () => 'boot/3' })).message).toContain(
        `process ${pid}`,
      );
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('two servers taking over one stale lock at once: exactly one wins', async () => {
    const dir = dataDir();
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => gone.on('exit', resolve));
    writeFileSync(join(dir, SERVE_LOCK_FILE), JSON.stringify({ pid: gone.pid, host: hostname(), startedAt: 'then' }));
    const lockModule = new URL('../../dist/web/serve-lock.js', import.meta.url).pathname;
    // Each racer says `ready` once loaded, tries at `go` (sent to all at once), answers, and keeps
    // what it won until its stdin closes: no racer can end and free the lock before the others tried.
    const racer = `
      const { acquireServeLock } = await import(${JSON.stringify(lockModule)});
      const lines = (await import('node:readline')).createInterface({ input: process.stdin });
      console.log('ready');
      lines.once('line', () => {
        try { acquireServeLock(${JSON.stringify(dir)}, Date.now()); console.log('won'); }
        catch (e) { console.log(e.code); }
      });
      lines.once('close', () => process.exit(0));`;
    const racers = Array.from({ length: 4 }, () => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', racer]);
      const said: string[] = [];
      const waiters: (() => void)[] = [];
      child.stdout.on('data', (c: Buffer) => {
        said.push(...c.toString().split('\n').filter(Boolean));
        waiters.splice(0).forEach((w) => w());
      });
      const saidLine = (n: number) =>
        new Promise<string>((resolve) => {
          const check = () => (said.length >= n ? resolve(said[n - 1] as string) : waiters.push(check));
          check();
        });
      return { child, saidLine };
    });
    await Promise.all(racers.map((r) => r.saidLine(1)));
    for (const r of racers) r.child.stdin.write('go\n');
    const outputs = await Promise.all(racers.map((r) => r.saidLine(2)));
    await Promise.all(
      racers.map((r) => {
        const exited = new Promise((resolve) => r.child.on('exit', resolve));
        r.child.stdin.end();
        return exited;
      }),
    );
    expect(outputs.filter((o) => o === 'won')).toHaveLength(1);
    expect(outputs.filter((o) => o === 'CONSOLE_SERVED')).toHaveLength(3);
  }, 20_000);

  it("release leaves another server's lock alone", () => {
    const dir = dataDir();
    const mine = acquireServeLock(dir, NOW, { pid: 999_999_999, isAlive: () => false });
    const theirs = acquireServeLock(dir, NOW, { isAlive: () => false }); // took the "dead" one over
    mine.release();
    expect(existsSync(join(dir, SERVE_LOCK_FILE))).toBe(true);
    theirs.release();
    expect(existsSync(join(dir, SERVE_LOCK_FILE))).toBe(false);
  });
});
