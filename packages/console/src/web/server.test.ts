import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, MINUTE } from '@volact/core';
import type { z } from 'zod';
import { VolumeConsole } from '../console.js';
import { apiRoutes, minimumRole, type ApiDeps } from './api.js';
import { MAX_UPLOAD_BYTES, REPORT_NAMES, answers } from './contract.js';
import { startConsoleServer, type ConsoleServer } from './index.js';

/**
 * The console's web server without a browser: real server on port 0, fetch and raw node:http
 * requests (a browser's URL parser would tidy the traversal attempts away).
 */
const USER = 'admin';
const PASSWORD = 'correct horse battery staple';
const TOKEN = 'web-unit-test-agent-token-0123456789';

let root: string;
let assets: string;
let clock: ManualClock;
let console_: VolumeConsole;
let server: ConsoleServer;
let base: string;
let hanging: TcpServer;
const sockets = new Set<Socket>();
let hangingAddress: string;
let deadAddress: string;
const logLines: string[] = [];

const json = (body: unknown, extra: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-volact-request': '1', ...extra },
  body: JSON.stringify(body),
});

async function login(): Promise<string> {
  const res = await fetch(`${base}api/login`, json({ user: USER, password: PASSWORD }));
  expect(res.status).toBe(200);
  const cookie = res.headers.getSetCookie()[0] as string;
  return cookie.split(';')[0] as string;
}

/** A raw GET: the path goes on the wire exactly as given. */
function rawGet(path: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function freePort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-web-'));
  assets = join(root, 'web-dist');
  mkdirSync(join(assets, 'assets'), { recursive: true });
  writeFileSync(join(assets, 'index.html'), '<!doctype html><title>volact console</title><div id="root"></div>');
  writeFileSync(join(assets, 'assets', 'app-1234.js'), 'console.log("app")');
  writeFileSync(join(root, 'secret.txt'), 'TOP-SECRET-OUTSIDE');
  symlinkSync(join(root, 'secret.txt'), join(assets, 'assets', 'link.txt'));

  // An "agent" that accepts connections and never answers: a job on it stays running a while.
  hanging = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
  hangingAddress = `127.0.0.1:${(hanging.address() as { port: number }).port}`;
  deadAddress = `127.0.0.1:${await freePort()}`;

  clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
  console_ = await VolumeConsole.create(join(root, 'console'), {
    admin: { user: USER, password: PASSWORD },
    clock,
    agentTimeoutMs: 1_500,
  });
  await console_.addMachines([deadAddress, hangingAddress], TOKEN, ['pc-dead', 'pc-hang']);
  server = await startConsoleServer(console_, {
    listen: { host: '127.0.0.1', port: 0 },
    assetsDir: assets,
    clock,
    log: (line) => logLines.push(line),
  });
  base = server.url;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await server?.close();
  await new Promise<void>((r) => hanging?.close(() => r()));
  await console_?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('static assets', () => {
  it('serves index.html with its security headers, and as the fallback of any app path', async () => {
    for (const path of ['', 'machines/3', 'reports/at-risk']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(await res.text()).toContain('<div id="root">');
    }
  });

  it('serves hashed assets with their type, cached for good; a missing file is a 404', async () => {
    const res = await fetch(`${base}assets/app-1234.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${base}assets/nope.js`)).status).toBe(404);
    expect((await fetch(`${base}favicon.ico`)).status).toBe(404);
    const post = await fetch(`${base}index.html`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('refuses any path that climbs out of the assets directory, however it is spelt', async () => {
    for (const path of [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/..%5csecret.txt',
      '/assets/app-1234.js%00.html',
    ]) {
      const res = await rawGet(path);
      expect(res.status, path).toBe(400);
      expect(res.body).not.toContain('TOP-SECRET');
    }
    // A symbolic link inside pointing outside is not followed.
    const link = await rawGet('/assets/link.txt');
    expect(link.status).toBe(404);
    expect(link.body).not.toContain('TOP-SECRET');
  });

  it('says clearly when the assets are not built; the API still answers', async () => {
    const bare = await startConsoleServer(console_, {
      listen: { host: '127.0.0.1', port: 0 },
      assetsDir: join(root, 'not-built'),
      clock,
    });
    try {
      const res = await fetch(bare.url);
      expect(res.status).toBe(500);
      expect(await res.text()).toContain('web assets not built: run <code>npm run build</code>');
      expect((await fetch(`${bare.url}api/machines`)).status).toBe(401);
    } finally {
      await bare.close();
    }
  });
});

describe('login and sessions', () => {
  it('every API route but login needs a session: 401 SESSION_REQUIRED', async () => {
    for (const path of [
      'api/machines',
      'api/machines/1',
      'api/keys',
      'api/reports/at-risk',
      'api/jobs',
      'api/session',
    ]) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(401);
      expect(await res.json()).toEqual({ error: { code: 'SESSION_REQUIRED', message: expect.any(String) } });
    }
    const post = await fetch(`${base}api/jobs`, json({ operation: 'refresh', machines: 'all' }));
    expect(post.status).toBe(401);
  });

  it('a state-changing request needs X-Volact-Request and JSON, and no foreign Origin', async () => {
    const noHeader = await fetch(`${base}api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: USER, password: PASSWORD }),
    });
    expect(noHeader.status).toBe(403);
    expect(((await noHeader.json()) as { error: { code: string } }).error.code).toBe('CSRF_HEADER_MISSING');
    expect(noHeader.headers.get('set-cookie')).toBeNull();

    const form = await fetch(`${base}api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-volact-request': '1' },
      body: `user=${USER}&password=x`,
    });
    expect(form.status).toBe(415);

    const foreign = await fetch(
      `${base}api/login`,
      json({ user: USER, password: PASSWORD }, { origin: 'https://evil.example' }),
    );
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe('ORIGIN_REFUSED');

    const cookie = await login();
    const csrf = await fetch(`${base}api/jobs`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ operation: 'refresh', machines: 'all' }),
    });
    expect(csrf.status).toBe(403);
    expect(((await csrf.json()) as { error: { code: string } }).error.code).toBe('CSRF_HEADER_MISSING');
  });

  it('logs in with a HttpOnly SameSite=Strict cookie holding a random token; a wrong password is 401', async () => {
    const wrong = await fetch(`${base}api/login`, json({ user: USER, password: 'not the password' }));
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({
      error: { code: 'LOGIN_FAILED', message: 'the user name or password is wrong' },
    });
    const unknown = await fetch(`${base}api/login`, json({ user: 'nobody', password: PASSWORD }));
    expect(unknown.status).toBe(401);

    const res = await fetch(`${base}api/login`, json({ user: USER, password: PASSWORD }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      user: USER,
      role: 'admin',
      authority: null,
      makCounters: false,
      consoleKeyId: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    const [setCookie] = res.headers.getSetCookie();
    expect(setCookie).toMatch(/^volact_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/$/);
    const cookie = (setCookie as string).split(';')[0] as string;
    const session = await fetch(`${base}api/session`, { headers: { cookie } });
    expect(await session.json()).toEqual({
      user: USER,
      role: 'admin',
      authority: null,
      makCounters: false,
      consoleKeyId: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    // Neither the password nor the token is ever logged.
    const token = cookie.split('=')[1] as string;
    expect(logLines.join('\n')).not.toContain(PASSWORD);
    expect(logLines.join('\n')).not.toContain(token);
    expect(logLines).toContain('login admin from 127.0.0.1');
  });

  it('names the wrong field of a bad body (400), refuses non-JSON and bodies over 64 KiB', async () => {
    const missing = await fetch(`${base}api/login`, json({ user: USER }));
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'BODY_INVALID',
      message: expect.stringMatching(/^password: /),
    });
    const extra = await fetch(`${base}api/login`, json({ user: USER, password: PASSWORD, admin: true }));
    expect(extra.status).toBe(400);
    const notJson = await fetch(`${base}api/login`, { ...json({}), body: '{"user":' });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { message: string } }).error.message).toBe('body: not JSON');
    const huge = await fetch(`${base}api/login`, json({ user: USER, password: 'x'.repeat(70_000) }));
    expect(huge.status).toBe(413);
  });

  it('expires a session after 30 minutes without a request; logout ends it at once', async () => {
    const cookie = await login();
    clock.advance(29 * MINUTE);
    expect((await fetch(`${base}api/keys`, { headers: { cookie } })).status).toBe(200);
    clock.advance(29 * MINUTE); // 58 minutes since login, 29 since the last request: alive
    expect((await fetch(`${base}api/keys`, { headers: { cookie } })).status).toBe(200);
    clock.advance(30 * MINUTE);
    expect((await fetch(`${base}api/keys`, { headers: { cookie } })).status).toBe(401);

    const again = await login();
    const out = await fetch(`${base}api/logout`, json({}, { cookie: again }));
    expect(out.status).toBe(200);
    expect(out.headers.getSetCookie()[0]).toContain('Max-Age=0');
    expect((await fetch(`${base}api/keys`, { headers: { cookie: again } })).status).toBe(401);
  });

  it('limits failed logins per source address: the 11th within a minute is 429, even with the right password', async () => {
    clock.advance(2 * MINUTE);
    // Ten accounts, one failure each: the address limit alone (the per-account one has its own test).
    for (let i = 0; i < 10; i++) {
      expect(
        (await fetch(`${base}api/login`, json({ user: `guess-${i}`, password: `wrong-${i}-xxxxxxxx` }))).status,
      ).toBe(401);
    }
    const limited = await fetch(`${base}api/login`, json({ user: USER, password: PASSWORD }));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('LOGIN_RATE_LIMITED');
    clock.advance(MINUTE);
    await login();
  });

  it('behind a reverse proxy: --public-origin decides the allowed Origin, X-Forwarded-For the rate-limit key', async () => {
    const proxied = await startConsoleServer(console_, {
      listen: { host: '127.0.0.1', port: 0 },
      assetsDir: assets,
      clock,
      publicOrigins: ['https://console.example'],
      trustForwardedFor: true,
    });
    try {
      const attempt = (origin: string, client: string, password = 'wrong-password-xx', user = USER) =>
        fetch(`${proxied.url}api/login`, json({ user, password }, { origin, 'x-forwarded-for': client }));
      // The proxy's upstream Host is not what the browser saw: only the public origin passes.
      expect((await attempt(proxied.url.replace(/\/$/, ''), '198.51.100.1')).status).toBe(403);
      const ok = await attempt('https://console.example', '198.51.100.1', PASSWORD);
      expect(ok.status).toBe(200);
      // Browsers reach it over HTTPS: the session cookie is Secure (never sent over plain HTTP).
      expect(ok.headers.getSetCookie()[0]).toMatch(/; Secure$/);
      // Ten failures from one client lock that client out, not the next one behind the same proxy.
      for (let i = 0; i < 10; i++) {
        expect((await attempt('https://console.example', '198.51.100.7', undefined, `guess-${i}`)).status).toBe(401);
      }
      expect((await attempt('https://console.example', '198.51.100.7', PASSWORD)).status).toBe(429);
      expect((await attempt('https://console.example', '198.51.100.8', PASSWORD)).status).toBe(200);
    } finally {
      await proxied.close();
    }
  });

  it('backs off one account whatever the address: 5 failures from 5 addresses, then 30 s, 60 s; a success clears it', async () => {
    const proxied = await startConsoleServer(console_, {
      listen: { host: '127.0.0.1', port: 0 },
      assetsDir: assets,
      clock,
      trustForwardedFor: true,
    });
    let client = 0;
    // Every attempt from a new address: the per-address limit never applies.
    const attempt = (password: string, user = USER) =>
      fetch(`${proxied.url}api/login`, json({ user, password }, { 'x-forwarded-for': `203.0.113.${++client}` }));
    const code = async (res: Response) => ((await res.json()) as { error?: { code: string } }).error?.code;
    try {
      clock.advance(2 * 60 * MINUTE);
      for (let i = 0; i < 5; i++) expect((await attempt(`wrong-${i}-xxxxxxxx`)).status).toBe(401);
      // Locked for 30 s: even the right password waits, from yet another address.
      const locked = await attempt(PASSWORD);
      expect(locked.status).toBe(429);
      expect(await code(locked)).toBe('LOGIN_RATE_LIMITED');
      expect(Number(locked.headers.get('retry-after'))).toBe(30);
      // Another account is not slowed by this one's failures.
      expect((await attempt('wrong-other-xxxxxx', 'someone-else')).status).toBe(401);
      clock.advance(30_000);
      // One more failure doubles the wait.
      expect((await attempt('wrong-again-xxxxxx')).status).toBe(401);
      clock.advance(30_000);
      expect((await attempt(PASSWORD)).status).toBe(429);
      clock.advance(30_000);
      expect((await attempt(PASSWORD)).status).toBe(200);
      // The success cleared it: a failure now is an ordinary 401 and the next try is free.
      expect((await attempt('wrong-after-xxxxxx')).status).toBe(401);
      expect((await attempt(PASSWORD)).status).toBe(200);
    } finally {
      await proxied.close();
    }
  });

  it('an address that logged in to the account recently is exempt from its back-off: the admin gets in, the attacker stays backed off', async () => {
    // A clock of its own: a month passes here.
    const own = new ManualClock(clock.now());
    const proxied = await startConsoleServer(console_, {
      listen: { host: '127.0.0.1', port: 0 },
      assetsDir: assets,
      clock: own,
      trustForwardedFor: true,
    });
    let client = 0;
    const attempt = (password: string, from: string) =>
      fetch(`${proxied.url}api/login`, json({ user: USER, password }, { 'x-forwarded-for': from }));
    const attacker = (password = `guess-${client}-xxxxxxxx`) => attempt(password, `198.18.0.${++client}`);
    const ADMIN_AT = '192.0.2.10';
    try {
      own.advance(2 * 60 * MINUTE);
      expect((await attempt(PASSWORD, ADMIN_AT)).status).toBe(200); // the admin's usual address
      for (let i = 0; i < 5; i++) expect((await attacker()).status).toBe(401);
      // The account backs off for everyone else, the right password included...
      expect((await attacker()).status).toBe(429);
      expect((await attacker(PASSWORD)).status).toBe(429);
      // ...one wrong guess every 15 minutes or less keeps it so, for days; the admin still gets in.
      for (let round = 0; round < 8; round++) {
        own.advance(15 * MINUTE);
        expect((await attacker()).status).toBe(401);
        expect((await attacker()).status).toBe(429);
        expect((await attempt(PASSWORD, ADMIN_AT)).status).toBe(200);
        // The admin's success does not lift the back-off for the attacker.
        expect((await attacker()).status).toBe(429);
      }
      // The exempt address stays under the per-address limit.
      own.advance(MINUTE);
      for (let i = 0; i < 10; i++) expect((await attempt(`typo-${i}-xxxxxxxx`, ADMIN_AT)).status).toBe(401);
      expect((await attempt(PASSWORD, ADMIN_AT)).status).toBe(429);
      // After 30 days without a login from it, the address is exempt no more.
      own.advance(31 * 24 * 60 * MINUTE);
      for (let i = 0; i < 5; i++) expect((await attacker()).status).toBe(401);
      expect((await attempt(PASSWORD, ADMIN_AT)).status).toBe(429);
    } finally {
      await proxied.close();
    }
  });

  it('logins sent in parallel count before their password is checked: 30 at once, at most 10 get to try', async () => {
    clock.advance(2 * MINUTE);
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        fetch(`${base}api/login`, json({ user: USER, password: `par-${i}-xxxxxxxx` })),
      ),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(10);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(20);
    clock.advance(MINUTE);
    await login();
  });
});

describe('the API', () => {
  let cookie: string;
  beforeAll(async () => {
    cookie = await login();
  });
  const get = (path: string) => fetch(`${base}${path}`, { headers: { cookie } });
  const post = (path: string, body: unknown) => fetch(`${base}${path}`, json(body, { cookie }));

  it('lists machines (never read: no state), and one machine with its history by id or name', async () => {
    const { machines } = (await (await get('api/machines')).json()) as { machines: { id: number; name: string }[] };
    expect(machines.map((m) => m.name).sort()).toEqual(['pc-dead', 'pc-hang']);
    // `untrusted`: null until a machine fails its proof (the UI's Trust column).
    expect(machines[0]).toMatchObject({ state: null, clientMachineId: null, untrusted: null });
    const dead = machines.find((m) => m.name === 'pc-dead')!;
    const byId = (await (await get(`api/machines/${dead.id}`)).json()) as { machine: { name: string }; history: [] };
    expect(byId).toEqual({ machine: expect.objectContaining({ name: 'pc-dead' }), history: [] });
    expect((await get('api/machines/pc-dead')).status).toBe(200);
    expect((await get('api/machines/%E0%A4%A')).status).toBe(404);
    const missing = await get('api/machines/nope');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('MACHINE_NOT_FOUND');
  });

  it('refuses a malformed key without echoing it; lists keys', async () => {
    const bad = 'ABCDE-FGHIJ-KLMNO-PQRST-UVWXY';
    const res = await post('api/keys', { key: bad });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'KEY_INVALID' } });
    expect(text).not.toContain('FGHIJ');
    expect(await (await get('api/keys')).json()).toEqual({ keys: [] });
    const noKey = await post('api/keys', { name: 'x' });
    expect(((await noKey.json()) as { error: { message: string } }).error.message).toMatch(/^key: /);
  });

  it('reports as JSON and CSV (attachment), a bad report name or days', async () => {
    const report = (await (await get('api/reports/by-authority')).json()) as { report: string; columns: string[] };
    expect(report).toMatchObject({ report: 'by-authority', rows: [] });
    const csv = await get('api/reports/at-risk.csv?days=10');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(csv.headers.get('content-disposition')).toBe('attachment; filename="volact-at-risk.csv"');
    expect(await csv.text()).toBe('machine,address,group,state,expiresAt,daysLeft,reason,lastSeenAt\r\n');
    expect((await get('api/reports/nope')).status).toBe(404);
    const days = await get('api/reports/at-risk?days=abc');
    expect(days.status).toBe(400);
    expect(((await days.json()) as { error: { message: string } }).error.message).toMatch(/^days: /);
  });

  it('reading MAK counters needs the server to hold an authority admin token', async () => {
    const res = await post('api/mak-counters', {});
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('AUTHORITY_NOT_CONFIGURED');
  });

  it('charts: the count per state now and a day-by-day timeline', async () => {
    const charts = (await (await get('api/charts?days=7')).json()) as {
      states: Record<string, number>;
      timeline: { day: string }[];
    };
    expect(charts.states).toEqual({
      unlicensed: 0,
      licensed: 0,
      'initial-grace': 0,
      'out-of-tolerance': 0,
      'non-genuine-grace': 0,
      notification: 0,
      unknown: 2,
    });
    expect(charts.timeline).toHaveLength(7);
    expect(charts.timeline[6]).toMatchObject({ day: '2026-11-25', licensed: 0 });
  });

  it('the operations log, with a bounded limit', async () => {
    const { operations } = (await (await get('api/operations?limit=5')).json()) as { operations: { at: string }[] };
    expect(operations.length).toBeGreaterThan(0);
    expect(operations[0]!.at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect((await get('api/operations?limit=0')).status).toBe(400);
  });

  it('a job: bad bodies named, then one runs, a second is refused while it runs (409), results per machine', async () => {
    const cases: [unknown, RegExp][] = [
      [{ operation: 'explode', machines: 'all' }, /^operation: /],
      [{ operation: 'refresh', machines: [] }, /^machines: /],
      [{ operation: 'install-key', machines: 'all' }, /^key: Required$/],
      [{ operation: 'discover' }, /^discover: Required$/],
      [{ operation: 'refresh', machines: 'all', key: 'k' }, /^key: /],
      [{ operation: 'refresh', machines: 'all', extra: 1 }, /^body: |extra/],
      [{ operation: 'proxy-activate', machines: 'all' }, /^authority: /],
    ];
    for (const [body, message] of cases) {
      const res = await post('api/jobs', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
    }
    const unknown = await post('api/jobs', { operation: 'refresh', machines: ['pc-dead', 'nope'] });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toContain('nope');
    const badAuthority = await post('api/jobs', {
      operation: 'proxy-activate',
      machines: 'all',
      authority: 'http://authority.example.com',
    });
    expect(((await badAuthority.json()) as { error: { code: string } }).error.code).toBe('AUTHORITY_URL_INVALID');

    const started = await post('api/jobs', { operation: 'refresh', machines: 'all' });
    expect(started.status).toBe(202);
    const { job } = (await started.json()) as { job: { id: string; total: number; finished: boolean } };
    expect(job).toMatchObject({ total: 2, finished: false });
    const second = await post('api/jobs', { operation: 'refresh', machines: ['pc-dead'] });
    expect(second.status).toBe(409);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('JOB_RUNNING');

    let state: { done: number; total: number; finished: boolean; results: { machine: string; code: string }[] };
    const until = Date.now() + 10_000;
    do {
      await new Promise((r) => setTimeout(r, 100));
      state = (await (await get(`api/jobs/${job.id}`)).json()) as typeof state;
    } while (!state.finished && Date.now() < until);
    expect(state).toMatchObject({ done: 2, total: 2, finished: true });
    expect(Object.fromEntries(state.results.map((r) => [r.machine, r.code]))).toEqual({
      'pc-dead': 'AGENT_UNREACHABLE',
      'pc-hang': 'AGENT_TIMEOUT',
    });
    const { jobs } = (await (await get('api/jobs')).json()) as { jobs: { id: string; failed: number }[] };
    expect(jobs[0]).toMatchObject({ id: job.id, failed: 2 });
    expect((await get('api/jobs/0123456789abcdef')).status).toBe(404);
  });

  it('answers as its contract declares, field for field (the UI takes its types from it)', async () => {
    const exactly = async (path: string, schema: z.ZodType) => {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      const body: unknown = await res.json();
      // Parsing drops what the contract does not declare: nothing may be dropped.
      expect(schema.parse(body), path).toEqual(body);
    };
    await exactly('api/session', answers.session);
    await exactly('api/machines', answers.machines);
    await exactly('api/machines/pc-dead', answers.machine);
    await exactly('api/keys', answers.keys);
    await exactly('api/operations?limit=50', answers.operations);
    await exactly('api/charts?days=3', answers.charts);
    for (const name of REPORT_NAMES) await exactly(`api/reports/${name}`, answers.report);
    const { jobs } = answers.jobs.parse(await (await get('api/jobs')).json());
    for (const job of jobs) await exactly(`api/jobs/${job.id}`, answers.job);
  });

  it('unknown routes are 404, wrong methods 405', async () => {
    expect((await get('api/nothing')).status).toBe(404);
    const del = await fetch(`${base}api/machines`, { method: 'DELETE', headers: { cookie } });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('GET, POST');
    const put = await fetch(`${base}api/session`, { method: 'PUT', headers: { cookie } });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET');
  });
});

describe('roles: a viewer reads, only an admin changes anything', () => {
  const VIEWER = 'viewer-vera';
  const VIEWER_PASSWORD = 'viewer password long enough';
  let viewer: string;
  let admin: string;
  beforeAll(async () => {
    clock.advance(2 * MINUTE);
    await console_.addUser(VIEWER, VIEWER_PASSWORD, 'viewer');
    const res = await fetch(`${base}api/login`, json({ user: VIEWER, password: VIEWER_PASSWORD }));
    expect(await res.json()).toMatchObject({ user: VIEWER, role: 'viewer' });
    viewer = (res.headers.getSetCookie()[0] as string).split(';')[0] as string;
    admin = await login();
  });
  // Every route the server registers, from its one table: a route added later is covered too.
  const routes = () => apiRoutes({ console: console_, authority: undefined } as unknown as ApiDeps);
  const concrete = (path: string) => path.replace(/:[A-Za-z]+/g, 'pc-dead');

  it('every POST but login and logout is ROLE_FORBIDDEN (403) for a viewer, refused before its body is read', async () => {
    const posts = routes().filter((r) => r.method === 'POST');
    expect(posts.length).toBeGreaterThanOrEqual(14);
    for (const route of posts) {
      if (!route.auth) {
        expect(['/api/login', '/api/logout']).toContain(route.path);
        continue;
      }
      expect(minimumRole(route), route.path).toBe('admin');
      // A body the route would take from an admin: the refusal is about the role, not the body.
      const res = await fetch(`${base}${concrete(route.path).slice(1)}`, json({ anything: 1 }, { cookie: viewer }));
      expect(res.status, route.path).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code, route.path).toBe('ROLE_FORBIDDEN');
    }
    // An admin passes the role check on each (whatever the route then says of the body).
    for (const route of posts.filter((r) => r.auth)) {
      const res = await fetch(`${base}${concrete(route.path).slice(1)}`, json({ anything: 1 }, { cookie: admin }));
      expect(res.status, route.path).not.toBe(403);
    }
    // A job (any operation, the caching switch too) is a POST: refused to a viewer.
    const caching = await fetch(
      `${base}api/jobs`,
      json({ operation: 'set-kms-host-caching', machines: 'all', enabled: false }, { cookie: viewer }),
    );
    expect(caching.status).toBe(403);
    expect(((await caching.json()) as { error: { code: string } }).error.code).toBe('ROLE_FORBIDDEN');
    // An upload from a viewer is refused unread: 403, not 413.
    const big = await fetch(`${base}api/import`, json({ file: 'x'.repeat(200_000) }, { cookie: viewer }));
    expect(big.status).toBe(403);
    // The viewer's own logout works.
    expect((await fetch(`${base}api/logout`, json({}, { cookie: viewer }))).status).toBe(200);
    const again = await fetch(`${base}api/login`, json({ user: VIEWER, password: VIEWER_PASSWORD }));
    viewer = (again.headers.getSetCookie()[0] as string).split(';')[0] as string;
  });

  it('a viewer reads every GET route but the user list; a role change applies to the open session at once', async () => {
    for (const route of routes().filter((r) => r.method === 'GET')) {
      const res = await fetch(`${base}${concrete(route.path).slice(1)}`, { headers: { cookie: viewer } });
      if (route.path === '/api/users') {
        expect(res.status).toBe(403);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ROLE_FORBIDDEN');
      } else {
        expect(res.status, route.path).not.toBe(403);
      }
    }
    expect((await fetch(`${base}api/users`, { headers: { cookie: admin } })).status).toBe(200);
    const promote = await fetch(`${base}api/users/${VIEWER}/role`, json({ role: 'admin' }, { cookie: admin }));
    expect(promote.status).toBe(200);
    const session = await fetch(`${base}api/session`, { headers: { cookie: viewer } });
    if (session.status === 200) {
      expect(await session.json()).toMatchObject({ role: 'admin' });
    } else expect(session.status).toBe(401); // the role change ended the session
    await fetch(`${base}api/users/${VIEWER}/role`, json({ role: 'viewer' }, { cookie: admin }));
  });
});

describe('the issue-15 routes', () => {
  let cookie: string;
  beforeAll(async () => {
    clock.advance(2 * MINUTE);
    cookie = await login();
  });
  const get = (path: string) => fetch(`${base}${path}`, { headers: { cookie } });
  const post = (path: string, body: unknown) => fetch(`${base}${path}`, json(body, { cookie }));
  const error = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;
  const finished = async (id: string) => {
    let job: { finished: boolean; state: string; outcome: string | null; results: { ok: boolean; code: string }[] };
    const until = Date.now() + 15_000;
    do {
      await new Promise((r) => setTimeout(r, 50));
      job = (await (await get(`api/jobs/${id}`)).json()) as typeof job;
    } while (!job.finished && Date.now() < until);
    return job;
  };

  it('users: add (201), change role and password, remove; the last admin stays', async () => {
    const added = await post('api/users', { user: 'olga', password: 'olga password long enough', role: 'viewer' });
    expect(added.status).toBe(201);
    expect(answers.userChanged.parse(await added.json()).user).toMatchObject({ name: 'olga', role: 'viewer' });
    const bad = await post('api/users', { user: 'x', password: 'y', role: 'root' });
    expect(bad.status).toBe(400);
    expect((await error(bad)).message).toMatch(/^role: /);
    const { users } = answers.users.parse(await (await get('api/users')).json());
    expect(users.map((u) => u.name)).toContain('olga');
    expect((await post('api/users/olga/password', { password: 'another long password' })).status).toBe(200);
    expect((await post('api/users/olga/role', { role: 'admin' })).status).toBe(200);
    expect((await post('api/users/olga/remove', {})).status).toBe(200);
    const gone = await post('api/users/olga/remove', {});
    expect(gone.status).toBe(404);
    const last = await post(`api/users/${USER}/role`, { role: 'viewer' });
    if (last.status !== 200) expect((await error(last)).code).toBe('LAST_ADMIN');
    else await post(`api/users/${USER}/role`, { role: 'admin' });
  });

  it('export as a download, imported back unchanged; an import may be larger than 64 KiB', async () => {
    const res = await post('api/export', {});
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="volact-console-export.json"');
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ secrets: null });
    const short = await post('api/export', { passphrase: 'short' });
    expect(short.status).toBe(400);
    const imported = await post('api/import', { file: text });
    expect(imported.status).toBe(200);
    const summary = answers.imported.parse(await imported.json());
    expect(summary.machines).toMatchObject({ added: 0, updated: 0 });
    // 200 KB of JSON is taken (and found to be no export), not refused as too large.
    const padded = await post('api/import', { file: JSON.stringify({ pad: 'x'.repeat(200_000) }) });
    expect(padded.status).toBe(400);
    expect((await error(padded)).code).toBe('IMPORT_INVALID');
  });

  it('uploads stop at MAX_UPLOAD_BYTES (413, refused unread); a job body other than apply-confirmations at 64 KiB', async () => {
    const declared = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/api/import',
          method: 'POST',
          headers: {
            cookie,
            'content-type': 'application/json',
            'x-volact-request': '1',
            'content-length': MAX_UPLOAD_BYTES + 1,
          },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.write('{"file":"');
    });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body)).toEqual({
      error: { code: 'BODY_TOO_LARGE', message: `the body is larger than ${MAX_UPLOAD_BYTES} bytes` },
    });
    const refs = Array.from({ length: 300 }, (_, i) => `${i}-${'m'.repeat(250)}`);
    const big = await post('api/jobs', { operation: 'refresh', machines: refs });
    expect(big.status).toBe(413);
    expect(await error(big)).toEqual({ code: 'BODY_TOO_LARGE', message: 'the body is larger than 65536 bytes' });
    const keys = await post('api/keys', { key: 'k'.repeat(70_000) });
    expect(keys.status).toBe(413);
  });

  it('apply-confirmations takes a large file; its refusal is the job’s error', async () => {
    const res = await post('api/jobs', {
      operation: 'apply-confirmations',
      file: JSON.stringify({ pad: 'x'.repeat(100_000) }),
    });
    expect(res.status).toBe(202);
    const { job } = answers.jobStarted.parse(await res.json());
    const done = (await finished(job.id)) as { state: string; error?: { code: string } };
    expect(done.state).toBe('failed');
    expect(done.error?.code).toBe('PROXY_FILE_INVALID');
  });

  it('discover: a row per address as it is probed (a silent one AGENT_UNREACHABLE), the counts in the outcome', async () => {
    const bad = await post('api/jobs', { operation: 'discover', discover: { token: TOKEN } });
    expect(bad.status).toBe(400);
    expect((await error(bad)).message).toMatch(/^discover: /);
    const res = await post('api/jobs', {
      operation: 'discover',
      discover: { addresses: [deadAddress], token: TOKEN },
    });
    expect(res.status).toBe(202);
    const { job } = answers.jobStarted.parse(await res.json());
    const done = await finished(job.id);
    expect(done).toMatchObject({
      state: 'finished',
      outcome: 'probed 1: 0 agents, 0 refused, 1 silent',
      total: 1,
      done: 1,
      results: [{ address: deadAddress, ok: false, code: 'AGENT_UNREACHABLE', message: 'nothing answered in time' }],
    });
    // The enrolment token is not kept with the job.
    expect(JSON.stringify(await (await get('api/jobs')).json())).not.toContain(TOKEN);
  });

  it('machines: a page with its total, the query checked and named', async () => {
    const page = answers.machines.parse(await (await get('api/machines?limit=1&sort=name&dir=desc')).json());
    expect(page.total).toBeGreaterThanOrEqual(2);
    expect(page.machines).toHaveLength(1);
    expect(page.offset).toBe(0);
    const found = answers.machines.parse(await (await get('api/machines?q=pc-dea')).json());
    expect(found.machines.map((m) => m.name)).toEqual(['pc-dead']);
    for (const [query, name] of [
      ['sort=bogus', 'sort'],
      ['limit=501', 'limit'],
      ['offset=-1', 'offset'],
      ['nope=1', 'nope'],
    ]) {
      const res = await get(`api/machines?${query}`);
      expect(res.status, query).toBe(400);
      expect(await error(res), query).toMatchObject({
        code: 'QUERY_INVALID',
        message: expect.stringMatching(`^${name}: `),
      });
    }
  });

  it('a job on every machine matching a filter; set-kms-host null clears; a filter matching none is refused', async () => {
    const none = await post('api/jobs', { operation: 'refresh', machines: { filter: { q: 'no-such-machine' } } });
    expect(none.status).toBe(404);
    expect((await error(none)).code).toBe('MACHINE_NOT_FOUND');
    const res = await post('api/jobs', {
      operation: 'set-kms-host',
      machines: { filter: { q: 'pc-dead' } },
      kmsHost: null,
    });
    expect(res.status).toBe(202);
    const { job } = answers.jobStarted.parse(await res.json());
    expect(job).toMatchObject({ operation: 'set-kms-host', total: 1, detail: 'cleared: DNS discovery' });
    const done = await finished(job.id);
    expect(done.results.map((r) => [r.ok, r.code])).toEqual([[false, 'AGENT_UNREACHABLE']]);
    const page = answers.job.parse(await (await get(`api/jobs/${job.id}?offset=1&limit=5`)).json());
    expect(page).toMatchObject({ resultsTotal: 1, offset: 1, results: [] });
    const kms = await post('api/jobs', { operation: 'set-kms-host', machines: 'all' });
    expect((await error(kms)).message).toBe('kmsHost: Required');
  });

  it('set-kms-host-caching: a job with its detail; `enabled` must be a boolean', async () => {
    const res = await post('api/jobs', {
      operation: 'set-kms-host-caching',
      machines: { filter: { q: 'pc-dead' } },
      enabled: false,
    });
    expect(res.status).toBe(202);
    const { job } = answers.jobStarted.parse(await res.json());
    expect(job).toMatchObject({ operation: 'set-kms-host-caching', total: 1, detail: 'caching off' });
    const done = await finished(job.id);
    expect(done.results.map((r) => [r.ok, r.code])).toEqual([[false, 'AGENT_UNREACHABLE']]);
    for (const [body, message] of [
      [{ operation: 'set-kms-host-caching', machines: 'all' }, /^enabled: Required/],
      [{ operation: 'set-kms-host-caching', machines: 'all', enabled: 'yes' }, /^enabled: .*boolean/i],
      [{ operation: 'set-kms-host-caching', machines: 'all', enabled: true, kmsHost: 'x' }, /kmsHost/],
    ] as const) {
      const refused = await post('api/jobs', body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect((await error(refused)).message).toMatch(message);
    }
  });

  it('proxy files: listed, an unknown one is 404; confirming needs an authority', async () => {
    expect(answers.proxyFiles.parse(await (await get('api/proxy-files')).json())).toEqual({ files: [] });
    const unknown = await get('api/proxy-files/0123abcd');
    expect(unknown.status).toBe(404);
    expect((await error(unknown)).code).toBe('PROXY_FILE_UNKNOWN');
    const noAuthority = await post('api/proxy-files/confirm', { file: '{}' });
    expect(noAuthority.status).toBe(400);
    expect((await error(noAuthority)).message).toMatch(/^authority: /);
  });

  it('add and remove machines; a phone confirmation ID for an unreachable machine', async () => {
    const name = await post('api/machines', { addresses: ['10.9.9.1:7390', '10.9.9.2:7390'], token: TOKEN, name: 'x' });
    expect(name.status).toBe(400);
    expect((await error(name)).message).toMatch(/^name: /);
    const added = await post('api/machines', { addresses: ['10.9.9.1:7390'], token: TOKEN, name: 'pc-tmp' });
    expect(added.status).toBe(201);
    expect(answers.machinesAdded.parse(await added.json()).machines[0]).toMatchObject({ name: 'pc-tmp' });
    const removed = await post('api/machines/remove', { machines: ['pc-tmp'] });
    expect(await removed.json()).toEqual({ removed: ['pc-tmp'] });
    expect((await get('api/machines/pc-tmp')).status).toBe(404);
    const cid = await post('api/machines/pc-dead/confirmation', { confirmationId: '12' });
    expect(cid.status).toBe(400);
    expect((await error(cid)).code).toBe('CONFIRMATION_ID_INVALID');
  });
});

describe('closing', () => {
  it('close() stops taking requests but waits for the running job to finish', async () => {
    const own = await startConsoleServer(console_, {
      listen: { host: '127.0.0.1', port: 0 },
      assetsDir: assets,
      clock,
    });
    clock.advance(2 * MINUTE);
    const res = await fetch(`${own.url}api/login`, json({ user: USER, password: PASSWORD }));
    const cookie = (res.headers.getSetCookie()[0] as string).split(';')[0] as string;
    // pc-hang never answers: the job runs until the agent timeout (1.5 s).
    const started = await fetch(
      `${own.url}api/jobs`,
      json({ operation: 'refresh', machines: ['pc-hang'] }, { cookie }),
    );
    expect(started.status).toBe(202);
    const { job } = answers.jobStarted.parse(await started.json());
    await own.close();
    const stored = await console_.webState.getJob(job.id);
    expect(stored?.state).toBe('finished');
    await expect(fetch(`${own.url}api/session`)).rejects.toThrow();
  });
});

describe('HTTPS (--tls-cert, --tls-key)', () => {
  let dir: string;
  let tls: ConsoleServer;
  let ca: string;
  const call = (
    path: string,
    init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port: tls.port, path, method: init.method ?? 'GET', headers: init.headers ?? {}, ca },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end(init.body);
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'volact-web-tls-'));
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        'key.pem',
        '-out',
        'cert.pem',
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`openssl is needed for the TLS test: ${r.stderr ?? r.error?.message}`);
    ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
    tls = await startConsoleServer(console_, {
      listen: { host: '127.0.0.1', port: 0 },
      assetsDir: assets,
      clock,
      tls: { cert: ca, key: readFileSync(join(dir, 'key.pem'), 'utf8') },
    });
  });
  afterAll(async () => {
    await tls?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the UI and API over HTTPS; the session cookie is Secure; plain HTTP gets no answer', async () => {
    expect(tls.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await call('/');
    expect(page.status).toBe(200);
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['strict-transport-security']).toBe('max-age=31536000');
    clock.advance(2 * MINUTE);
    const res = await call('/api/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-volact-request': '1' },
      body: JSON.stringify({ user: USER, password: PASSWORD }),
    });
    expect(res.status).toBe(200);
    const setCookie = (res.headers['set-cookie'] as string[])[0] as string;
    expect(setCookie).toMatch(/^volact_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Secure$/);
    const session = await call('/api/session', { headers: { cookie: setCookie.split(';')[0] as string } });
    expect(JSON.parse(session.body)).toMatchObject({ user: USER, role: 'admin' });
    await expect(fetch(`http://127.0.0.1:${tls.port}/api/session`)).rejects.toThrow();
  });
});
