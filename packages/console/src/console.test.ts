import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority, createAuthorityServer } from '@volact/authority';
import { Licence, createAgentServer } from '@volact/client';
import { ManualClock, type ProductConfig } from '@volact/core';
import { DB_FILE, VolumeConsole } from './console.js';
import { ConsoleError } from './errors.js';
import { KEY_FILE, SecretBox } from './secrets.js';
import { SqliteConsoleStore } from './sqlite-store.js';

/** The console against real agents and a real authority: the paths the e2e test does not walk. */
const TOKEN = 'console-unit-agent-token-012345';

let root: string;
let clock: ManualClock;
let authority: Authority;
let api: FastifyInstance;
let authorityUrl: string;
let product: ProductConfig;
const servers: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-console-unit-'));
  clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
  authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  api = createAuthorityServer(authority, { clock });
  await api.listen({ host: '127.0.0.1', port: 0 });
  authorityUrl = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await api.close();
  await authority.close();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
/** A real installation with a real agent in front of it; returns its address. */
async function agent(mak?: string): Promise<string> {
  const stateDir = join(root, `machine-${++n}`);
  const licence = Licence.init({ stateDir, product, hardwareId: `hw-${n}`, clock });
  if (mak) licence.installKey(mak);
  const app = createAgentServer({ stateDir, adminToken: TOKEN, clock, timeoutMs: 2_000 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  servers.push(app);
  return `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** A plain HTTP server on loopback (not an agent). */
async function plainServer(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const newConsole = (options: { agentTimeoutMs?: number } = {}) =>
  VolumeConsole.init(join(root, `console-${++n}`), { clock, ...options });

const failure = async (promise: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    if (err instanceof ConsoleError) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'no error';
};

const mintMak = async (limit: number) => (await authority.mintKey({ type: 'mak', groups: ['office14'], limit })).key;

describe('VolumeConsole', () => {
  it('init makes a 0700 dir, a 0600 key file and the database; a second init is refused; open needs init', async () => {
    const dir = join(root, 'fresh');
    await VolumeConsole.init(dir).close();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, DB_FILE)).isFile()).toBe(true);
    expect(await failure(() => VolumeConsole.init(dir))).toMatch(/^CONSOLE_EXISTS/);
    await VolumeConsole.open(dir).close();
    expect(await failure(() => VolumeConsole.open(join(root, 'nothing-here')))).toMatch(
      /^CONSOLE_NOT_INITIALISED: .*volact console init --data-dir/,
    );
  });

  it('create: an existing world-readable dir becomes 0700; a database that already holds a console is refused, no key file left', async () => {
    const dir = join(root, 'shared-db');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const first = await VolumeConsole.create(dir, { admin: { user: 'admin', password: 'a long admin password' } });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    await first.addMachines(['10.0.0.9:7390'], TOKEN, ['pc-09']);
    await first.close();
    // A second console pointed at the same database (a shared PostgreSQL, here the same file)
    // would seal under another key: refused, and nothing of it left behind.
    rmSync(join(dir, KEY_FILE));
    expect(await failure(() => VolumeConsole.create(dir))).toMatch(
      /^CONSOLE_EXISTS: the database already holds a console/,
    );
    expect(existsSync(join(dir, KEY_FILE))).toBe(false);
    expect(
      await failure(() =>
        VolumeConsole.create(join(root, 'short-pw'), { admin: { user: 'admin', password: 'short' } }),
      ),
    ).toMatch(/^ADMIN_PASSWORD_INVALID/);
    expect(existsSync(join(root, 'short-pw'))).toBe(false);
  });

  it('stateTimeline: each day counts every machine in the state of its latest row by the end of that day', async () => {
    const DAY_MS = 86_400_000;
    const t0 = Date.UTC(2026, 10, 20, 12); // noon, day 0
    const store = new SqliteConsoleStore(':memory:');
    const c = VolumeConsole.withStore(store, new SecretBox(new Uint8Array(32).fill(7)), {
      clock: new ManualClock(t0 + 4 * DAY_MS),
    });
    const tokenId = await store.findOrAddToken({ fingerprint: 'f'.repeat(64), sealed: 'x', createdAt: t0 });
    const a = await store.addMachine({ name: 'pc-a', address: '10.0.0.1:7390', tokenId, addedAt: t0 });
    const b = await store.addMachine({ name: 'pc-b', address: '10.0.0.2:7390', tokenId, addedAt: t0 });
    const status = (state: string) => ({ state, method: null, group: 'office14', clientMachineId: 'x' }) as never;
    await store.addSnapshot(a.id, t0, status('initial-grace'), 'a1');
    await store.addSnapshot(a.id, t0 + DAY_MS, status('licensed'), 'a2');
    await store.addSnapshot(b.id, t0 + 2 * DAY_MS, status('unlicensed'), 'b1');
    await store.addSnapshot(a.id, t0 + 3 * DAY_MS, status('out-of-tolerance'), 'a3');
    const days = await c.stateTimeline(5);
    expect(days.map((d) => d.day)).toEqual(['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24']);
    const nonZero = days.map((d) => Object.fromEntries(Object.entries(d.counts).filter(([, n]) => n > 0)));
    expect(nonZero).toEqual([
      { 'initial-grace': 1 },
      { licensed: 1 },
      { licensed: 1, unlicensed: 1 },
      { 'out-of-tolerance': 1, unlicensed: 1 },
      { 'out-of-tolerance': 1, unlicensed: 1 },
    ]);
    await c.close();
  });

  it('machine add is all or nothing; a short token, a bad address and an unknown machine are named', async () => {
    const c = newConsole();
    await c.addMachines(['10.0.0.1:7390'], TOKEN, ['pc-01']);
    expect(await failure(c.addMachines(['10.0.0.2:7390', '10.0.0.1:7390'], TOKEN))).toMatch(/^MACHINE_EXISTS/);
    expect((await c.listMachines()).map((m) => m.name)).toEqual(['pc-01']);
    expect(await failure(c.addMachines(['10.0.0.3:7390'], 'short'))).toMatch(/^TOKEN_INVALID/);
    expect(await failure(c.addMachines(['10.0.0.3'], TOKEN))).toMatch(/^ADDRESS_INVALID/);
    expect(await failure(c.refresh(['pc-01', 'pc-99', 'pc-98']))).toBe(
      'MACHINE_NOT_FOUND: not in the console: pc-99, pc-98; `volact console machines` lists ids and names',
    );
    // By address as well as by name.
    expect((await c.refresh(['10.0.0.1:7390']))[0]?.machine).toBe('pc-01');
    await c.close();
  });

  it('keys: malformed refused, duplicates named, KMS host keys never installed on clients, a key given inline is stored', async () => {
    const c = newConsole();
    const mak = await mintMak(5);
    const hostKey = (await authority.mintKey({ type: 'kms-host', groups: ['office14'] })).key;
    expect(await failure(c.addKey('ABCDE-ABCDE-ABCDE-ABCDE-ABCDE'))).toMatch(/^KEY_INVALID/);
    const stored = await c.addKey(mak);
    expect(stored.name).toBe(`mak-${mak.replace(/-/g, '').slice(-5)}`);
    expect(await failure(c.addKey(mak, 'again'))).toMatch(/^KEY_EXISTS: key …\w{5} is already stored as "mak-/);
    await c.addKey(hostKey, 'host-key');
    const address = await agent();
    await c.addMachines([address], TOKEN, ['pc']);
    expect(await failure(c.installKey('host-key', ['pc']))).toMatch(/^KEY_INVALID: "host-key" is a KMS host key/);
    expect(await failure(c.installKey('no-such-key', ['pc']))).toMatch(/^KEY_NOT_FOUND/);

    const other = await mintMak(5);
    const [result] = await c.installKey(other, ['pc']);
    expect(result).toMatchObject({ ok: true, state: 'initial-grace' });
    expect((await c.listKeys()).map((k) => k.key)).toContain(`…${other.replace(/-/g, '').slice(-5)}`);
    await c.close();
  });

  it('proxy-activate: one IID refused by the authority (limit reached) and one machine without a MAK fail alone', async () => {
    const mak = await mintMak(1);
    const c = newConsole();
    const a = await agent(mak);
    const b = await agent(mak);
    const gvlk = await agent();
    await c.addMachines([a, b, gvlk], TOKEN, ['a', 'b', 'gvlk']);
    const results = await c.proxyActivate(['a', 'b', 'gvlk'], { url: authorityUrl });
    const codes = results.map((r) => [r.machine, r.ok, r.code]);
    expect(codes).toContainEqual(['gvlk', false, 'NO_MAK_INSTALLED']);
    const makResults = results.filter((r) => r.machine !== 'gvlk');
    expect(makResults.filter((r) => r.ok)).toHaveLength(1);
    expect(makResults.find((r) => !r.ok)).toMatchObject({ code: 'MAK_LIMIT_REACHED' });
    expect((await authority.showKey(mak)).used).toBe(1);

    // The authority unreachable: every machine says so; nothing else changes.
    const again = await c.proxyActivate(['a', 'b'], { url: 'http://127.0.0.1:1', timeoutMs: 1_000 });
    expect(again.map((r) => r.code)).toEqual(['AUTHORITY_UNREACHABLE', 'AUTHORITY_UNREACHABLE']);
    expect(await failure(c.proxyActivate(['a'], { url: 'http://activation.example.com' }))).toMatch(
      /^AUTHORITY_URL_INVALID/,
    );
    await c.close();
  });

  it('activate: a MAK machine activates itself online at --authority', async () => {
    const c = newConsole();
    await c.addMachines([await agent(await mintMak(2))], TOKEN, ['m']);
    const [result] = await c.activate(['m'], { authority: authorityUrl });
    expect(result).toMatchObject({ ok: true, state: 'licensed', method: 'mak' });
    await c.close();
  });

  it('what is not an agent: HTML → AGENT_BAD_RESPONSE, silence → AGENT_TIMEOUT, the authority → AGENT_REFUSED NOT_FOUND', async () => {
    const c = newConsole({ agentTimeoutMs: 300 });
    const html = await plainServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>hi</h1>'),
    );
    const silent = await plainServer(() => undefined);
    await c.addMachines([html, silent, authorityUrl.replace('http://', '')], TOKEN, ['html', 'silent', 'authority']);
    const results = Object.fromEntries((await c.refresh()).map((r) => [r.machine, r]));
    expect(results.html).toMatchObject({ ok: false, code: 'AGENT_BAD_RESPONSE' });
    expect(results.silent).toMatchObject({ ok: false, code: 'AGENT_TIMEOUT' });
    expect(results.authority).toMatchObject({ ok: false, code: 'NOT_FOUND' });
    expect((await c.listMachines()).find((m) => m.name === 'silent')?.lastError?.code).toBe('AGENT_TIMEOUT');
    await c.close();
  });

  it('a replaced key file: stored tokens do not open, each machine says SECRET_UNREADABLE', async () => {
    const dir = join(root, 'replaced');
    const c = VolumeConsole.init(dir, { clock });
    await c.addMachines([await agent()], TOKEN, ['m']);
    await c.close();
    writeFileSync(join(dir, KEY_FILE), `${Buffer.alloc(32, 9).toString('base64')}\n`);
    const reopened = VolumeConsole.open(dir, { clock });
    const [result] = await reopened.refresh();
    expect(result).toMatchObject({ ok: false, code: 'SECRET_UNREADABLE' });
    expect(result?.message).not.toContain(TOKEN);
    expect(await failure(reopened.report('nope'))).toMatch(/^REPORT_UNKNOWN: .*at-risk, duplicate-cmid/);
    await reopened.close();
  });
});
