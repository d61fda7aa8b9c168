import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority, createAuthorityServer } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { ManualClock, type ProductConfig } from '@volact/core';
import { DB_FILE, VolumeConsole } from './console.js';
import { ConsoleError } from './errors.js';
import { KEY_FILE, SecretBox, readKeyFile } from './secrets.js';
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
  const app = createAgentServer({ stateDir, adminToken: TOKEN, authorities: [authorityUrl], clock, timeoutMs: 2_000 });
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

/** Each machine's token as the console keeps it (sealed under its key file), by machine name. */
async function machineTokens(dataDir: string): Promise<Record<string, string>> {
  const store = new SqliteConsoleStore(join(dataDir, DB_FILE), { readOnly: true });
  const box = readKeyFile(dataDir);
  try {
    const out: Record<string, string> = {};
    for (const m of await store.listMachines()) {
      const t = await store.getToken(m.tokenId);
      if (t) out[m.name] = box.unseal(t.sealed, `token:${t.fingerprint}`, 'test');
    }
    return out;
  } finally {
    await store.close();
  }
}

/** GET /v1/status at an agent with a bearer token: the HTTP status. */
async function statusWith(address: string, token: string): Promise<number> {
  const res = await fetch(`http://${address}/v1/status`, { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return res.status;
}

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
    // A product key given where a machine is named, whole, dashless or a symbol short, shows its last five only.
    for (const key of ['354FF-TBREH-T51QX-4NG9H-HWFCX', '354FFTBREHT51QX4NG9HHWFCX', '354FFTBREHT51QX4NG9HHWFC']) {
      const message = await failure(c.refresh([key]));
      expect(message).toMatch(/^MACHINE_NOT_FOUND: not in the console: …\w{5};/);
      expect(message).not.toContain('354FF');
    }
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

  it('refresh writes the statuses in batches: a machine removed before its batch is written fails alone; every other row and result is kept, each reported once written', async () => {
    const dir = join(root, `console-${++n}`);
    const c = VolumeConsole.init(dir, { clock });
    const other = VolumeConsole.open(dir, { clock });
    const [a, b, gone] = [await agent(), await agent(), await agent()];
    // The last machine's "agent" answers late: by then the others' statuses are read and wait
    // in the batch; it removes one of them from the console meanwhile (another process would).
    const late = await plainServer((_req, res) => {
      setTimeout(() => {
        void other.removeMachines(['gone']).then(() => res.writeHead(404).end());
      }, 300);
    });
    await c.addMachines([a, b, gone, late], TOKEN, ['a', 'b', 'gone', 'late']);
    const reported: { machine: string; ok: boolean; rows: Promise<unknown[]> | null }[] = [];
    const results = await c.refresh([], (r) =>
      // Read when reported (SQLite reads at the call): the history row is already written.
      reported.push({ machine: r.machine, ok: r.ok, rows: r.ok ? other.history(r.machine) : null }),
    );
    expect(results.map((r) => [r.machine, r.ok, r.changed ?? null])).toEqual([
      ['a', true, true],
      ['b', true, true],
      ['gone', false, null],
      ['late', false, null],
    ]);
    expect(results[2]?.code).toBe('AGENT_BAD_RESPONSE');
    expect(reported.map((r) => r.machine).sort()).toEqual(['a', 'b', 'gone', 'late']);
    for (const r of reported.filter((r) => r.ok)) expect(await r.rows).toHaveLength(1);
    for (const name of ['a', 'b']) expect(await c.history(name)).toHaveLength(1);
    expect((await c.listMachines()).map((m) => [m.name, m.state, m.lastSeenAt !== null])).toEqual([
      ['a', 'initial-grace', true],
      ['b', 'initial-grace', true],
      ['late', null, false],
    ]);
    // The next refresh: nothing changed, no row written.
    expect((await c.refresh(['a', 'b'])).map((r) => r.changed)).toEqual([false, false]);
    await other.close();
    await c.close();
  });

  it('enrolment: each machine gets its own token at first contact; the fleet token then opens none, and one machine token only its machine', async () => {
    const dir = join(root, `console-${++n}`);
    const c = VolumeConsole.init(dir, { clock });
    const [a, b] = [await agent(), await agent()];
    await c.addMachines([a, b], TOKEN, ['a', 'b']);
    expect((await c.refresh()).map((r) => r.ok)).toEqual([true, true]);
    const tokens = await machineTokens(dir);
    expect(new Set([tokens.a, tokens.b, TOKEN]).size).toBe(3);
    // The fleet token opens neither machine now; a's token opens a, not b.
    expect(await statusWith(a, TOKEN)).toBe(401);
    expect(await statusWith(b, TOKEN)).toBe(401);
    expect(await statusWith(a, tokens.a as string)).toBe(200);
    expect(await statusWith(b, tokens.a as string)).toBe(401);
    // The console goes on with them (no second enrolment), and logged each enrolment.
    expect((await c.refresh()).map((r) => r.ok)).toEqual([true, true]);
    expect(await machineTokens(dir)).toEqual(tokens);
    expect(
      (await c.operations())
        .filter((o) => o.operation === 'enrol')
        .map((o) => o.machine)
        .sort(),
    ).toEqual(['a', 'b']);
    await c.close();
  });

  it('rotate-token: a new token per machine; the old one opens nothing; the console goes on', async () => {
    const dir = join(root, `console-${++n}`);
    const c = VolumeConsole.init(dir, { clock });
    const address = await agent();
    await c.addMachines([address], TOKEN, ['m']);
    // Never contacted: rotation enrols it.
    expect((await c.rotateTokens(['m']))[0]).toMatchObject({ ok: true, message: expect.stringMatching(/enrolled/) });
    const first = (await machineTokens(dir)).m as string;
    const [rotated] = await c.rotateTokens('all');
    expect(rotated).toMatchObject({ ok: true, message: 'token rotated' });
    const second = (await machineTokens(dir)).m as string;
    expect(second).not.toBe(first);
    expect(await statusWith(address, first)).toBe(401);
    expect(await statusWith(address, second)).toBe(200);
    expect((await c.refresh())[0]).toMatchObject({ ok: true });
    await c.close();
  });

  it('a failed proof marks the machine untrusted: no call reaches it, it is listed so, until machine enrol', async () => {
    const dir = join(root, `console-${++n}`);
    const c = VolumeConsole.init(dir, { clock });
    const seen: string[] = [];
    let answerAsAgent = true;
    // Something at the machine's address that cannot prove the token (an address taken over).
    const impostor = await plainServer((req, res) => {
      seen.push(`${req.method} ${req.url?.split('?')[0]} ${req.headers.authorization ?? '-'}`);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(answerAsAgent ? { agent: { version: 1 }, enrolled: true, proof: 'ab'.repeat(32) } : {}));
    });
    await c.addMachines([impostor], TOKEN, ['m']);
    const [first] = await c.refresh();
    expect(first).toMatchObject({ ok: false, code: 'PROOF_FAILED' });
    expect(seen).toEqual(['GET /v1/probe -']);
    const [listed] = await c.listMachines();
    expect(listed?.untrusted).toMatchObject({
      at: new Date(clock.now()).toISOString(),
      reason: expect.stringMatching(/did not prove/),
    });
    // Every later operation refuses it without a call.
    for (const results of [await c.refresh(), await c.setKmsHost('all', 'kms.example:1688'), await c.activate('all')]) {
      expect(results[0]).toMatchObject({ ok: false, code: 'MACHINE_UNTRUSTED' });
    }
    expect(seen).toHaveLength(1);
    // Re-enrolment probes again: still an impostor, marked again, still no token sent.
    answerAsAgent = true;
    expect((await c.reenrol(['m']))[0]).toMatchObject({ ok: false, code: 'PROOF_FAILED' });
    expect(seen.every((line) => line.endsWith(' -'))).toBe(true);
    expect((await c.listMachines())[0]?.untrusted).not.toBeNull();
    await c.close();
  });

  /**
   * A real agent whose answers to the paths in `lose` come back only after `ms` (the console
   * gave up by then: AGENT_TIMEOUT), the change already made; and whose next probe, once
   * `holdProbe` is called, waits until the returned release is called.
   */
  async function unreliableAgent(ms = 1_500) {
    const stateDir = join(root, `machine-${++n}`);
    Licence.init({ stateDir, product, hardwareId: `hw-${n}`, clock });
    const app = createAgentServer({ stateDir, adminToken: TOKEN, clock });
    const lose = new Set<string>();
    let held: { arrived: () => void; gate: Promise<void> } | undefined;
    app.addHook('onRequest', async (req) => {
      if (held && req.url.startsWith('/v1/probe')) {
        const { arrived, gate } = held;
        held = undefined;
        arrived();
        await gate;
      }
    });
    app.addHook('onSend', async (req, _reply, payload) => {
      if (lose.has(req.url)) {
        lose.delete(req.url);
        await new Promise((resolve) => setTimeout(resolve, ms));
      }
      return payload;
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    servers.push(app);
    const holdProbe = () => {
      let release!: () => void;
      let arrived!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const arrival = new Promise<void>((resolve) => (arrived = resolve));
      held = { arrived, gate };
      return { arrival, release };
    };
    return { address: `127.0.0.1:${(app.server.address() as AddressInfo).port}`, lose, holdProbe };
  }

  it('a rotation whose answer is lost: the next call proves the token sent, keeps it, and the machine stays trusted', async () => {
    const dir = join(root, `console-${++n}`);
    const c = VolumeConsole.init(dir, { clock, agentTimeoutMs: 400 });
    const agentAt = await unreliableAgent();
    await c.addMachines([agentAt.address], TOKEN, ['m']);
    expect((await c.refresh())[0]?.ok).toBe(true);
    const before = (await machineTokens(dir)).m as string;
    agentAt.lose.add('/v1/token');
    expect((await c.rotateTokens(['m']))[0]).toMatchObject({ ok: false, code: 'AGENT_TIMEOUT' });
    // The agent took the new token; the console had not recorded it as the machine's yet.
    expect(await statusWith(agentAt.address, before)).toBe(401);
    expect((await c.refresh())[0]).toMatchObject({ ok: true });
    const [listed] = await c.listMachines();
    expect(listed?.untrusted).toBeNull();
    const now = (await machineTokens(dir)).m as string;
    expect(now).not.toBe(before);
    expect(await statusWith(agentAt.address, now)).toBe(200);
    expect((await c.operations()).map((o) => o.operation)).toContain('token recovered');
    // And rotation works on from there.
    expect((await c.rotateTokens(['m']))[0]).toMatchObject({ ok: true, message: 'token rotated' });
    expect((await c.refresh())[0]?.ok).toBe(true);
    await c.close();
  });

  it('an enrolment whose answer is lost (refresh, and discover): the next call proves the token sent', async () => {
    const dir = join(root, `console-${++n}`);
    const c = VolumeConsole.init(dir, { clock, agentTimeoutMs: 400 });
    const added = await unreliableAgent();
    await c.addMachines([added.address], TOKEN, ['m']);
    added.lose.add('/v1/enrol');
    expect((await c.refresh())[0]).toMatchObject({ ok: false, code: 'AGENT_TIMEOUT' });
    expect(await statusWith(added.address, TOKEN)).toBe(401); // enrolled: the fleet token is out
    expect((await c.refresh())[0]).toMatchObject({ ok: true });
    expect((await c.listMachines())[0]?.untrusted).toBeNull();

    const found = await unreliableAgent();
    found.lose.add('/v1/enrol');
    const sweep = await c.discover([found.address], TOKEN, { timeoutMs: 400 });
    expect(sweep.refused).toEqual([
      { address: found.address, code: 'AGENT_TIMEOUT', message: expect.stringMatching(/added as/) },
    ]);
    expect((await c.refresh('all')).find((r) => r.machine === found.address)).toMatchObject({ ok: true });
    const tokens = await machineTokens(dir);
    expect(await statusWith(found.address, tokens[found.address] as string)).toBe(200);
    expect(await statusWith(found.address, TOKEN)).toBe(401);
    await c.close();
  });

  it('two operations at once (a web job and a CLI rotate-token): the one whose token was rotated meanwhile retries with the new one, nothing is marked untrusted', async () => {
    const dir = join(root, `console-${++n}`);
    const web = VolumeConsole.init(dir, { clock });
    const cli = VolumeConsole.open(dir, { clock });
    const agentAt = await unreliableAgent();
    await web.addMachines([agentAt.address], TOKEN, ['m']);
    expect((await web.refresh())[0]?.ok).toBe(true);
    // The web job read the token and probes; the CLI rotates it before the agent answers that probe.
    const { arrival, release } = agentAt.holdProbe();
    const job = web.refresh(['m']);
    await arrival;
    expect((await cli.rotateTokens(['m']))[0]).toMatchObject({ ok: true, message: 'token rotated' });
    release();
    expect((await job)[0]).toMatchObject({ ok: true });
    expect((await web.listMachines())[0]?.untrusted).toBeNull();
    expect((await web.refresh())[0]?.ok).toBe(true);
    await cli.close();
    await web.close();
  });

  it('machine enrol with the enrolment token an agent runs with now (its enrolment reset on the machine)', async () => {
    const dir = join(root, `console-${++n}`);
    const c = VolumeConsole.init(dir, { clock });
    const stateDir = join(root, `machine-${++n}`);
    Licence.init({ stateDir, product, hardwareId: `hw-${n}`, clock });
    const start = async (token: string, port = 0) => {
      const app = createAgentServer({ stateDir, adminToken: token, clock });
      await app.listen({ host: '127.0.0.1', port });
      return app;
    };
    let app = await start(TOKEN);
    const address = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    await c.addMachines([address], TOKEN, ['m']);
    expect((await c.refresh())[0]?.ok).toBe(true);
    // The machine's admin resets it with a new fleet token: this console's token no longer proves.
    await app.close();
    const NEW_FLEET = 'a-new-fleet-token-0123456789ab';
    app = await start(NEW_FLEET, Number(address.split(':')[1]));
    try {
      expect((await c.refresh())[0]).toMatchObject({ ok: false, code: 'PROOF_FAILED' });
      expect((await c.refresh())[0]).toMatchObject({ ok: false, code: 'MACHINE_UNTRUSTED' });
      const [enrolled] = await c.reenrol(['m'], NEW_FLEET);
      expect(enrolled).toMatchObject({ ok: true, message: expect.stringMatching(/enrolled/) });
      expect((await c.listMachines())[0]?.untrusted).toBeNull();
      expect((await c.refresh())[0]?.ok).toBe(true);
      expect(await statusWith(address, NEW_FLEET)).toBe(401);
    } finally {
      await app.close();
      await c.close();
    }
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
