import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `volact console serve` twice on one data directory, as a user would start it: the second is
 * refused (CONSOLE_SERVED, the first one's pid named) — it would mark the first one's running
 * job interrupted and run jobs beside it on the same machines. A server killed (no clean stop)
 * leaves its lock: the next one takes it over. And --public-origin without --trust-forwarded-for
 * is warned about at start.
 */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
let dir: string;
let dataDir: string;
const children = new Set<ChildProcess>();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'volact-console-serve-lock-'));
  dataDir = join(dir, 'console');
  writeFileSync(join(dir, 'password'), 'console admin password long enough');
  const init = spawnSync(
    process.execPath,
    [BIN, 'console', 'init', '--data-dir', dataDir, '--admin-password-file', join(dir, 'password')],
    { encoding: 'utf8' },
  );
  expect(init.status, init.stderr).toBe(0);
});
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** `console serve` with `args`: its start line and stderr, or its exit code and stderr. */
function serve(
  args: string[] = [],
): Promise<
  { started: true; child: ChildProcess; stderr: () => string } | { started: false; code: number | null; stderr: string }
> {
  const child = spawn(process.execPath, [
    BIN,
    'console',
    'serve',
    '--data-dir',
    dataDir,
    '--listen',
    '127.0.0.1:0',
    ...args,
  ]);
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (/console at \S+\n/.test(stdout))
        setTimeout(() => resolve({ started: true, child, stderr: () => stderr }), 200);
    });
    child.on('exit', (code) => resolve({ started: false, code, stderr }));
  });
}

const exited = (child: ChildProcess) => new Promise((resolve) => child.once('exit', resolve));

describe('one console serve per data directory', () => {
  it('refuses a second, naming the first; a killed one leaves a lock the next takes over', async () => {
    const first = await serve();
    if (!first.started) throw new Error(`the first serve did not start: ${first.stderr}`);
    const second = await serve();
    expect(second.started).toBe(false);
    if (second.started) return;
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`error CONSOLE_SERVED: .* already served by process ${first.child.pid}`));

    first.child.kill('SIGKILL'); // no clean stop: its lock stays
    await exited(first.child);
    expect(existsSync(join(dataDir, 'serve.lock'))).toBe(true);
    const third = await serve();
    if (!third.started) throw new Error(`a stale lock was not taken over: ${third.stderr}`);
    third.child.kill('SIGTERM'); // a clean stop removes it
    await exited(third.child);
    expect(existsSync(join(dataDir, 'serve.lock'))).toBe(false);
  }, 60_000);

  it('warns at start when --public-origin comes without --trust-forwarded-for', async () => {
    const proxied = await serve(['--public-origin', 'https://console.example']);
    if (!proxied.started) throw new Error(proxied.stderr);
    expect(proxied.stderr()).toMatch(/warning: --public-origin without --trust-forwarded-for/);
    proxied.child.kill('SIGTERM');
    await exited(proxied.child);
    const trusted = await serve(['--public-origin', 'https://console.example', '--trust-forwarded-for']);
    if (!trusted.started) throw new Error(trusted.stderr);
    expect(trusted.stderr()).not.toMatch(/--trust-forwarded-for/);
    trusted.child.kill('SIGTERM');
    await exited(trusted.child);
  }, 60_000);
});
