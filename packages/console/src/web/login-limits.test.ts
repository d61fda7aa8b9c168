import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, MINUTE, ManualClock } from '@volact/core';
import { VolumeConsole } from '../console.js';
import { startConsoleServer, type ConsoleServer } from './index.js';
import { AccountLimiter } from './sessions.js';

/**
 * `console serve --public-origin https://console.example` behind a TLS reverse proxy WITHOUT
 * --trust-forwarded-for: every client has the proxy's address. Once the admin logged in through
 * the proxy, that address is exempt from the account's back-off; the exemption must not give
 * anyone behind the proxy the per-address rate (10 a minute) at the admin's password for ever.
 */
let root: string;
let clock: ManualClock;
let c: VolumeConsole;
let server: ConsoleServer;
const ORIGIN = 'https://console.example';
const PASSWORD = 'the real admin password';

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-login-limits-'));
  mkdirSync(join(root, 'web'));
  writeFileSync(join(root, 'web', 'index.html'), 'x');
  clock = new ManualClock(Date.UTC(2026, 11, 3, 9));
  c = await VolumeConsole.create(join(root, 'c'), { clock, admin: { user: 'admin', password: PASSWORD } });
  server = await startConsoleServer(c, {
    listen: { host: '127.0.0.1', port: 0 },
    assetsDir: join(root, 'web'),
    clock,
    publicOrigins: [ORIGIN],
  });
});
afterAll(async () => {
  await server.close();
  await c.close();
  rmSync(root, { recursive: true, force: true });
});

/** Through the proxy: whoever sends it, the server sees the proxy's (loopback) address. */
const login = (password: string) =>
  fetch(`${server.url}api/login`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-volact-request': '1',
      origin: ORIGIN,
      'x-forwarded-for': '203.0.113.66',
    },
    body: JSON.stringify({ user: 'admin', password }),
  });

describe('the account back-off behind a proxy (every client one address)', () => {
  it('after the admin logged in once, guessing from behind the proxy is bounded: 5 free + 10 a day', async () => {
    expect((await login(PASSWORD)).status).toBe(200);
    let checked = 0;
    for (let minute = 0; minute < 30; minute++) {
      for (let i = 0; i < 10; i++) if ((await login(`guess-${minute}-${i}`)).status === 401) checked++;
      clock.advance(MINUTE);
    }
    // The old exemption: 10 a minute, 300 in half an hour. Now: 5 before the back-off, 10 exempt,
    // then the back-off (30 s doubling to 15 min) for everyone: a few more.
    expect(checked).toBeLessThan(25);
    // The admin, behind the same proxy, is in the same back-off: at most 15 minutes.
    clock.advance(15 * MINUTE);
    expect((await login(PASSWORD)).status).toBe(200);
  }, 120_000);
});

describe('AccountLimiter: the exempt budget', () => {
  it('an exempt address gets KNOWN_ADDRESS_FAILURES failures a day during a back-off, then waits; a right password spends none', () => {
    const own = new ManualClock(Date.UTC(2026, 11, 3, 9));
    const limiter = new AccountLimiter(own);
    limiter.succeed('admin', 'home');
    for (let i = 0; i < 5; i++) limiter.fail('admin'); // the attacker elsewhere: back-off begins
    expect(limiter.retryAfter('admin', 'elsewhere')).toBeGreaterThan(0);
    for (let i = 0; i < AccountLimiter.KNOWN_ADDRESS_FAILURES; i++) {
      expect(limiter.retryAfter('admin', 'home')).toBe(0);
      expect(limiter.fail('admin')).toBe(true); // let through by the exemption only
    }
    expect(limiter.retryAfter('admin', 'home')).toBeGreaterThan(0);
    // A day later the budget is back (the back-off itself has been forgotten after an hour too).
    own.advance(DAY);
    for (let i = 0; i < 5; i++) limiter.fail('admin');
    expect(limiter.retryAfter('admin', 'home')).toBe(0);
    // A success during the back-off spends nothing.
    for (let i = 0; i < 20; i++) {
      expect(limiter.retryAfter('admin', 'home')).toBe(0);
      limiter.succeed('admin', 'home', limiter.fail('admin'));
    }
    expect(limiter.retryAfter('admin', 'home')).toBe(0);
  });
});
