import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, release, tmpdir, type as osType, uptime, version as osVersion } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Authority, createAuthorityServer } from '@volact/authority';
import { ManualClock, type ProductConfig } from '@volact/core';
import { Licence } from './index.js';
import { AGENT_SETTINGS_FILE, createAgentServer, readAgentSettings, recordAgentSettings } from './agent-entry.js';

const TOKEN = 'agent-token-0123456789abcdef';
const BIN = fileURLToPath(new URL('../../../bin/volact.js', import.meta.url));

let root: string;
let clock: ManualClock;
let authority: Authority;
let authorityApi: FastifyInstance;
let authorityUrl: string;
let product: ProductConfig;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-agent-'));
  clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
  authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  authorityApi = createAuthorityServer(authority);
  await authorityApi.listen({ host: '127.0.0.1', port: 0 });
  authorityUrl = `http://127.0.0.1:${(authorityApi.server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await authorityApi.close();
  await authority.close();
  rmSync(root, { recursive: true, force: true });
});

const mintMak = async () => (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 10 })).key;

let n = 0;
/** A fresh installation (GVLK installed) and an agent on it whose pino log lines are kept. */
function setUp() {
  const stateDir = join(root, `client-${++n}`);
  Licence.init({ stateDir, product, hardwareId: `hw-${n}`, clock });
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  const app = createAgentServer({
    stateDir,
    adminToken: TOKEN,
    authorities: [authorityUrl],
    logger,
    timeoutMs: 3_000, // the authority call of a loaded machine (2 cores, many tests) can take a second
    clock,
  });
  const call = (
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    payload?: object,
    token: string | null = TOKEN,
  ) =>
    app.inject({
      method,
      url,
      remoteAddress: '10.1.2.3',
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
      ...(payload === undefined ? {} : { payload }),
    });
  const log = () => lines.join('');
  return { stateDir, app, call, log, store: () => readFileSync(join(stateDir, 'licence.json'), 'utf8') };
}

describe('agent management endpoint', () => {
  let t: ReturnType<typeof setUp>;
  beforeEach(() => {
    t = setUp();
    return () => t.app.close();
  });

  it('GET /v1/status: the licence status, the agent version and the recorded user-operations switch', async () => {
    const r = await t.call('GET', '/v1/status');
    expect(r.statusCode).toBe(200);
    const expected = JSON.parse(JSON.stringify(Licence.open({ stateDir: t.stateDir, clock }).status()));
    expect(r.json()).toEqual({
      ...expected,
      userOperations: false,
      agent: { version: 1 },
      machine: expect.objectContaining({ hostName: hostname() }),
    });

    recordAgentSettings(t.stateDir, { userOperations: true });
    expect((await t.call('GET', '/v1/status')).json().userOperations).toBe(true);
    // An unreadable agent.json fails closed: user operations off, and (since it may have held
    // the enrolment) no token call is taken until it is fixed.
    writeFileSync(join(t.stateDir, AGENT_SETTINGS_FILE), '{"format":"volact-agent/1","userOperations":"yes"}');
    expect(readAgentSettings(t.stateDir).userOperations).toBe(false);
    const refused = await t.call('GET', '/v1/status');
    expect(refused.statusCode).toBe(500);
    expect(refused.json().error).toMatchObject({
      code: 'AGENT_SETTINGS_INVALID',
      message: expect.stringContaining('agent.json'),
    });
  });

  it('GET /v1/status names the machine as people know it: this host, its OS, a boot time that does not move', async () => {
    const first = (await t.call('GET', '/v1/status')).json().machine;
    expect(first).toEqual({
      hostName: hostname(),
      os: osType(),
      osVersion: `${release()} ${osVersion()}`.trim().slice(0, 256),
      productVersion: null, // product configs carry no version yet
      lastBootAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/),
    });
    // now − uptime, read once at start (the test's clock is far from the real one).
    const boot = Date.parse(first.lastBootAt);
    expect(Math.abs(clock.now() - uptime() * 1000 - boot)).toBeLessThan(120_000);
    clock.advance(3_600_000);
    expect((await t.call('GET', '/v1/status')).json().machine).toEqual(first);
    // Only GET /v1/status carries it: the answers of changes are the licence status alone.
    const changed = await t.call('PUT', '/v1/kms-host', { address: 'kms.corp.example' });
    expect(changed.statusCode).toBe(200);
    expect(changed.json().status.machine).toBeUndefined();
    expect('machine' in changed.json()).toBe(false);
  });

  it('many agents on one host: each its own host name, given at start; an unusable one refuses to start', async () => {
    const stateDir = join(root, `client-${++n}`);
    Licence.init({ stateDir, product, hardwareId: `hw-${n}`, clock });
    const named = createAgentServer({
      stateDir,
      adminToken: TOKEN,
      clock,
      facts: { hostName: 'pc-0042.corp.example' },
    });
    try {
      const r = await named.inject({ method: 'GET', url: '/v1/status', headers: { authorization: `Bearer ${TOKEN}` } });
      expect(r.json().machine).toMatchObject({ hostName: 'pc-0042.corp.example', os: osType() });
    } finally {
      await named.close();
    }
    for (const bad of ['', 'two words', 'x'.repeat(254), 'tab\there']) {
      expect(() => createAgentServer({ stateDir, adminToken: TOKEN, clock, facts: { hostName: bad } })).toThrow(
        /host name must be 1 to 253 characters/,
      );
    }
  });

  it('reopens the store per request: a change made by another process meanwhile is seen', async () => {
    expect((await t.call('GET', '/v1/status')).json().host).toBeNull();
    Licence.open({ stateDir: t.stateDir }).setKmsHost('kms.corp.example');
    expect((await t.call('GET', '/v1/status')).json().host).toBe('kms.corp.example:1688');
  });

  it('state files edited between two requests: the next answer reads them (tampered evidence, the same text again, a damaged store, the settings)', async () => {
    const mak = await mintMak();
    expect((await t.call('POST', '/v1/key', { key: mak })).statusCode).toBe(200);
    expect((await t.call('POST', '/v1/activate', { authority: authorityUrl })).json().ok).toBe(true);
    const status = async () => (await t.call('GET', '/v1/status')).json<Record<string, unknown>>();
    expect(await status()).toMatchObject({ state: 'licensed', method: 'mak', userOperations: false });
    expect(await status()).toMatchObject({ state: 'licensed', method: 'mak' });
    const path = join(t.stateDir, 'licence.json');
    const original = t.store();
    // One digit of the confirmation ID changed, same length, written right after a request.
    const record = JSON.parse(original) as { activation: { confirmationId: string } };
    const cid = record.activation.confirmationId;
    const digit = cid.at(-1) === '0' ? '1' : '0';
    record.activation.confirmationId = `${cid.slice(0, -1)}${digit}`;
    writeFileSync(path, JSON.stringify(record, null, 2));
    expect((await status()).state).not.toBe('licensed');
    // The original text again: licensed again (the tampered read recorded nothing it keeps).
    writeFileSync(path, original);
    expect(await status()).toMatchObject({ state: 'licensed', method: 'mak' });
    writeFileSync(path, original.replace('"format"', '"formta"'));
    const damaged = await t.call('GET', '/v1/status');
    expect(damaged.statusCode).toBe(409);
    expect(damaged.json().error.code).toBe('LICENCE_STORE_DAMAGED');
    writeFileSync(path, original);
    expect((await status()).state).toBe('licensed');
    // agent.json: the switch recorded by another process is seen at the next request.
    recordAgentSettings(t.stateDir, { userOperations: true });
    expect((await status()).userOperations).toBe(true);
    recordAgentSettings(t.stateDir, { userOperations: false });
    expect((await status()).userOperations).toBe(false);
  });

  it('PUT and DELETE /v1/kms-host; a GVLK activation that fails is data (200, ok false)', async () => {
    const set = await t.call('PUT', '/v1/kms-host', { address: '127.0.0.1:1' });
    expect(set.statusCode).toBe(200);
    expect(set.json().status).toMatchObject({ host: '127.0.0.1:1', hostSource: null });
    expect(t.log()).toContain('KMS host set');

    const outcome = await t.call('POST', '/v1/activate');
    expect(outcome.statusCode).toBe(200);
    expect(outcome.json()).toMatchObject({
      ok: false,
      code: 'KMS_UNREACHABLE',
      status: { state: 'initial-grace', lastAttempt: { ok: false, code: 'KMS_UNREACHABLE' } },
    });
    expect(typeof outcome.json().message).toBe('string');

    const bad = await t.call('PUT', '/v1/kms-host', { address: 'not a host' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('HOST_ADDRESS_INVALID');

    const cleared = await t.call('DELETE', '/v1/kms-host');
    expect(cleared.statusCode).toBe(200);
    // The manual host is gone; `host` now names the last attempt's host (as `client status` does).
    expect(JSON.parse(t.store()).kmsHost).toBeNull();
    expect(cleared.json().status).toMatchObject({ host: '127.0.0.1:1', hostSource: 'manual' });
  });

  it('MAK online: POST /v1/key, GET /v1/installation-id, POST /v1/activate at the authority; the key is never echoed or logged', async () => {
    const noMak = await t.call('GET', '/v1/installation-id');
    expect(noMak.statusCode).toBe(409);
    expect(noMak.json().error.code).toBe('NO_MAK_INSTALLED');

    const mak = await mintMak();
    const installed = await t.call('POST', '/v1/key', { key: mak });
    expect(installed.statusCode).toBe(200);
    const last5 = `…${mak.replace(/-/g, '').slice(-5)}`;
    expect(installed.json().status).toMatchObject({ installedKey: last5, installedKeyType: 'mak' });

    const iid = await t.call('GET', '/v1/installation-id');
    expect(iid.statusCode).toBe(200);
    expect(iid.json().installationId).toMatch(/^(\d{6}-){12}\d{6}$/);
    expect(iid.json().installationId).toBe(Licence.open({ stateDir: t.stateDir }).installationId());

    const activated = await t.call('POST', '/v1/activate', { authority: authorityUrl });
    expect(activated.statusCode).toBe(200);
    expect(activated.json()).toMatchObject({
      ok: true,
      code: null,
      status: { state: 'licensed', method: 'mak', expiresAt: null },
    });
    expect((await authority.showKey(mak)).used).toBe(1);

    for (const body of [installed.body, iid.body, activated.body, t.log()]) {
      expect(body).not.toContain(mak);
      expect(body).not.toContain(mak.replace(/-/g, ''));
    }
    expect(t.log()).toContain(last5);
    expect(t.log()).not.toContain(TOKEN);

    const wrongKey = await t.call('POST', '/v1/key', { key: 'ABCDE-ABCDE-ABCDE-ABCDE-ABCDE' });
    expect(wrongKey.statusCode).toBe(400);
    expect(wrongKey.json().error.code).toBe('KEY_INVALID');
  });

  it('phone: POST /v1/confirmation names the mistyped group (400) and licenses with the right CID', async () => {
    const early = await t.call('POST', '/v1/confirmation', { confirmationId: '1-2-3' });
    expect(early.statusCode).toBe(409);
    expect(early.json().error.code).toBe('NO_MAK_INSTALLED');

    await t.call('POST', '/v1/key', { key: await mintMak() });
    const iid = (await t.call('GET', '/v1/installation-id')).json().installationId as string;
    const cid = (await authority.confirm(iid)).confirmationId;
    const groups = cid.split('-');
    groups[6] = groups[6]!.replace(/^(\d)/, (d) => String((Number(d) + 1) % 10));
    const typo = await t.call('POST', '/v1/confirmation', { confirmationId: groups.join('-') });
    expect(typo.statusCode).toBe(400);
    expect(typo.json().error).toMatchObject({ code: 'CONFIRMATION_INVALID' });
    expect(typo.json().error.message).toMatch(/group 7 is wrong/);
    expect(Licence.open({ stateDir: t.stateDir }).status().method).toBeNull();

    const ok = await t.call('POST', '/v1/confirmation', { confirmationId: cid });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().status).toMatchObject({ state: 'licensed', method: 'mak', expiresAt: null });
  });

  it('refuses every route without the token or with a wrong one (401), changes nothing, and logs the source, never the token', async () => {
    const mak = await mintMak();
    const before = t.store();
    const routes: ['GET' | 'POST' | 'PUT' | 'DELETE', string, object?][] = [
      ['GET', '/v1/status'],
      ['GET', '/v1/installation-id'],
      ['POST', '/v1/key', { key: mak }],
      ['POST', '/v1/activate', { authority: authorityUrl }],
      ['POST', '/v1/confirmation', { confirmationId: '123456' }],
      ['PUT', '/v1/kms-host', { address: 'evil.example:1688' }],
      ['DELETE', '/v1/kms-host'],
      ['GET', '/v1/no-such-route'],
      ['POST', '/v1/key', { key: mak, extra: 'x'.repeat(20_000) }],
    ];
    const wrong = [null, `${TOKEN}x`, TOKEN.slice(0, -1), '', 'Bearer'];
    for (const [method, url, payload] of routes) {
      for (const token of wrong) {
        const r = await t.call(method, url, payload, token);
        expect(r.statusCode, `${method} ${url} with ${JSON.stringify(token)}`).toBe(401);
        expect(r.json().error.code).toBe('UNAUTHORIZED');
      }
      const basic = await t.app.inject({ method, url, headers: { authorization: `Basic ${TOKEN}` } });
      expect(basic.statusCode).toBe(401);
    }
    expect(t.store()).toBe(before);
    expect(existsSync(join(t.stateDir, AGENT_SETTINGS_FILE))).toBe(false);
    expect((await authority.showKey(mak)).used).toBe(0);

    const refusals = t
      .log()
      .split('\n')
      .filter((l) => l.includes('unauthorized request refused'));
    expect(refusals.length).toBeGreaterThanOrEqual(routes.length * wrong.length);
    expect(JSON.parse(refusals[0]!)).toMatchObject({ from: '10.1.2.3', method: 'GET', path: '/v1/status' });
    expect(t.log()).not.toContain(TOKEN);
    expect(t.log()).not.toContain(TOKEN.slice(0, -1));
    expect(t.log()).not.toContain(mak);

    // The token is accepted with any case of the scheme.
    const lower = await t.app.inject({
      method: 'GET',
      url: '/v1/status',
      headers: { authorization: `bearer ${TOKEN}` },
    });
    expect(lower.statusCode).toBe(200);
  });

  it('answers malformed requests with 400 REQUEST_INVALID and a specific message; unknown routes 404; never a 500', async () => {
    const before = t.store();
    const raw = (method: 'POST' | 'PUT' | 'DELETE', url: string, body: string, contentType = 'application/json') =>
      t.app.inject({
        method,
        url,
        payload: body,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': contentType },
      });
    const cases: [Awaited<ReturnType<typeof raw>>, RegExp][] = [
      [await raw('POST', '/v1/key', '{"key": '), /not valid JSON: .*JSON/],
      [await raw('POST', '/v1/key', ''), /^body: .*object/i],
      [await raw('POST', '/v1/key', 'null'), /^body: .*object/i],
      [await raw('POST', '/v1/key', '[]'), /^body: .*object/i],
      [await raw('POST', '/v1/key', '{"key": 5}'), /^key: .*string/i],
      [await raw('POST', '/v1/key', '{}'), /^key: /],
      [await raw('POST', '/v1/key', `{"key": "${'A'.repeat(65)}"}`), /^key: .*64/],
      [await raw('POST', '/v1/key', '{"key": "X", "admin": true}'), /Unrecognized key.*admin/],
      [await raw('POST', '/v1/key', '{"__proto__": {"x": 1}, "key": "X"}'), /forbidden key "__proto__"/],
      [await raw('POST', '/v1/key', 'key=X', 'application/x-www-form-urlencoded'), /must be JSON/],
      [await raw('POST', '/v1/key', 'KEY', 'text/plain'), /must be JSON/],
      [await raw('POST', '/v1/activate', `{"authority": "${'h'.repeat(9000)}"}`), /larger than 8192 bytes/],
      [await raw('POST', '/v1/activate', '{"authority": 1}'), /^authority: /],
      [await raw('POST', '/v1/activate', '{"url": "x"}'), /Unrecognized key.*url/],
      [await raw('POST', '/v1/confirmation', '{"cid": "1"}'), /Unrecognized key|confirmationId/],
      [await raw('PUT', '/v1/kms-host', '{"address": ""}'), /^address: /],
      [await raw('PUT', '/v1/kms-host', '{"address": null}'), /^address: /],
      [await raw('DELETE', '/v1/kms-host', '{"address": "x"}'), /Unrecognized key.*address/],
    ];
    for (const [r, message] of cases) {
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error.code, r.body).toBe('REQUEST_INVALID');
      expect(r.json().error.message).toMatch(message);
    }
    const missing = await t.call('POST', '/v1/key');
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.message).toMatch(/^body: /);

    for (const [method, url] of [
      ['GET', '/v1/nothing'],
      ['GET', '/v1/key'],
      ['POST', '/v1/status'],
      ['GET', '/v2/status'],
      ['GET', '/'],
    ] as const) {
      const r = await t.call(method, url);
      expect(r.statusCode, `${method} ${url}`).toBe(404);
      expect(r.json().error.code).toBe('NOT_FOUND');
    }
    const badUrl = await t.call('GET', '/v1/%zz');
    expect(badUrl.statusCode).toBe(400);
    expect(badUrl.json().error).toMatchObject({ code: 'REQUEST_INVALID', message: /URL is not valid/ });
    expect((await t.call('GET', '/v1/%zz', undefined, null)).statusCode).toBe(401);
    expect(t.store()).toBe(before);
    expect(t.log()).not.toMatch(/"level":50/);

    // No body where none is needed: an empty JSON body reads as none.
    const emptyDelete = await t.app.inject({
      method: 'DELETE',
      url: '/v1/kms-host',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    });
    expect(emptyDelete.statusCode).toBe(200);
  });

  it('a state dir without an installation answers 409 CLIENT_NOT_INITIALISED; a short token is refused', async () => {
    const app = createAgentServer({ stateDir: join(root, 'empty'), adminToken: TOKEN });
    const r = await app.inject({ method: 'GET', url: '/v1/status', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('CLIENT_NOT_INITIALISED');
    await app.close();
    expect(() => createAgentServer({ stateDir: t.stateDir, adminToken: 'short' })).toThrow(/at least 16/);
  });

  it('serves on a real socket', async () => {
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
    const ok = await fetch(`${base}/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { agent: unknown }).agent).toEqual({ version: 1 });
    const put = await fetch(`${base}/v1/kms-host`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ address: '[::1]:1700' }),
    });
    expect(((await put.json()) as { status: { host: string } }).status.host).toBe('[::1]:1700');
    expect((await fetch(`${base}/v1/status`)).status).toBe(401);
    expect(t.log()).toContain('"from":"127.0.0.1"');
    expect(t.log()).not.toContain(TOKEN);
  });
});

describe('volact client agent (the built CLI)', () => {
  it('records --allow-user-operations, serves with the token file and --host-name, refuses a short token, never logs the token', async () => {
    const stateDir = join(root, 'cli-client');
    // The CLI agent reads the product at its installed location (the store keeps no copy).
    const productPath = join(root, 'cli-product.json');
    writeFileSync(productPath, JSON.stringify(product));
    Licence.init({ stateDir, product, productPath, hardwareId: 'hw-cli' });
    const tokenFile = join(root, 'agent-token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const shortFile = join(root, 'short-token');
    writeFileSync(shortFile, 'short\n');

    const start = (file: string, ...extra: string[]) =>
      spawn(
        process.execPath,
        [
          BIN,
          'client',
          'agent',
          '--state-dir',
          stateDir,
          '--listen',
          '127.0.0.1:0',
          '--admin-token-file',
          file,
          ...extra,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
    const outputOf = (child: ReturnType<typeof start>) => {
      const out = { stdout: '', stderr: '' };
      child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
      return out;
    };
    const exited = (child: ReturnType<typeof start>) =>
      new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

    const refused = start(shortFile);
    const refusedOut = outputOf(refused);
    expect(await exited(refused)).toBe(1);
    expect(refusedOut.stderr).toMatch(/error OPTION_INVALID: .*fewer than 16 characters/);
    expect(refusedOut.stderr).not.toContain('short\n');

    const badName = start(tokenFile, '--host-name', 'two words');
    const badNameOut = outputOf(badName);
    expect(await exited(badName)).toBe(1);
    expect(badNameOut.stderr).toMatch(/error OPTION_INVALID: --host-name: .*without spaces/);

    const child = start(tokenFile, '--allow-user-operations', '--host-name', 'pc-0042.corp.example');
    const out = outputOf(child);
    const done = exited(child);
    const port = await new Promise<number>((resolve, reject) => {
      child.stderr.on('data', () => {
        const m = /client agent listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out.stderr);
        if (m) resolve(Number(m[1]));
      });
      void done.then((code) => reject(new Error(`agent exited ${code}: ${out.stderr}`)));
    });
    try {
      expect(JSON.parse(readFileSync(join(stateDir, AGENT_SETTINGS_FILE), 'utf8'))).toEqual({
        format: 'volact-agent/1',
        userOperations: true,
      });
      const base = `http://127.0.0.1:${port}`;
      const status = await fetch(`${base}/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(status.status).toBe(200);
      expect(await status.json()).toMatchObject({
        userOperations: true,
        agent: { version: 1 },
        group: 'office14',
        machine: { hostName: 'pc-0042.corp.example' },
      });
      expect((await fetch(`${base}/v1/status`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await done).toBe(0);
    expect(out.stdout).toContain('unauthorized request refused');
    expect(out.stdout).not.toContain(TOKEN);
    expect(out.stderr).not.toContain(TOKEN);
  });
});
