import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

describe('the serve lock of a data directory', () => {
  it('a second server while the first lives: CONSOLE_SERVED naming its pid; free again once released', () => {
    const dir = dataDir();
    // A real other process, alive: its pid in the lock.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
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

  it('an unreadable lock (a crash while writing it) is taken over', () => {
    const dir = dataDir();
    writeFileSync(join(dir, SERVE_LOCK_FILE), '{"pid":');
    acquireServeLock(dir, NOW).release();
  });

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
