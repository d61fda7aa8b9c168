import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MINUTE, ManualClock, generateSigningKeyPair, hardwareRefOf, makeInstallationId, parseKey } from '@volact/core';
import type { FastifyInstance } from 'fastify';
import { Authority } from './authority.js';
import { createAuthorityServer } from './http.js';

const TOKEN = 'admin-token-0123456789abcdef';

describe('authority HTTP API: admin routes and rate limits', () => {
  let dir: string;
  let clock: ManualClock;
  let authority: Authority;
  let app: FastifyInstance;
  let key: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'volact-http-'));
    clock = new ManualClock();
    authority = Authority.init(join(dir, 'a'), { clock });
    await authority.addGroup({ name: 'office14' });
    key = (await authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 2 })).key;
    app = createAuthorityServer(authority, { adminToken: TOKEN, activationsPerMinute: 3, clock });
  });
  afterEach(async () => {
    await app.close();
    await authority.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const activate = (hardwareId: string, remoteAddress = '10.9.8.7') =>
    app.inject({
      method: 'POST',
      url: '/v1/host-activations',
      remoteAddress,
      payload: { hostKey: key, hostPublicKey: generateSigningKeyPair().publicKeyRaw.toString('base64'), hardwareId },
    });
  const admin = (url: string, payload: object, token?: string) =>
    app.inject({ method: 'POST', url, payload, headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('refuses admin calls without the token (401) and answers them with it, never echoing the key', async () => {
    expect((await activate('hw-1')).statusCode).toBe(201);
    const missing = await admin('/v1/admin/keys/show', { key });
    expect(missing.statusCode).toBe(401);
    expect(missing.json().error.code).toBe('UNAUTHORIZED');
    expect((await admin('/v1/admin/keys/show', { key }, `${TOKEN}x`)).statusCode).toBe(401);
    const shown = await admin('/v1/admin/keys/show', { key }, TOKEN);
    expect(shown.statusCode).toBe(200);
    expect(shown.json()).toMatchObject({ type: 'kms-host', groups: ['office14'], limit: 2, used: 1, remaining: 1 });
    expect(shown.body).not.toContain(key);
  });

  it('raises a limit (not below the hosts in use) and revokes a key: later activations refused, earlier ones listed', async () => {
    await activate('hw-1');
    await activate('hw-2');
    expect((await activate('hw-3')).json().error.code).toBe('HOST_LIMIT_REACHED');
    const below = await admin('/v1/admin/keys/limit', { key, limit: 1 }, TOKEN);
    expect(below.json().error.code).toBe('KEY_LIMIT_BELOW_USED');
    expect((await admin('/v1/admin/keys/limit', { key, limit: 3 }, TOKEN)).json()).toMatchObject({
      limit: 3,
      remaining: 1,
    });
    clock.advance(MINUTE); // past the rate limit window
    expect((await activate('hw-3')).statusCode).toBe(201);
    const revoked = await admin('/v1/admin/keys/revoke', { key }, TOKEN);
    expect(revoked.json().revokedAt).toBe(new Date(clock.now()).toISOString());
    const report = revoked.json<{ activations: { hardwareId: string }[] }>();
    expect(report.activations.map((a) => a.hardwareId).sort()).toEqual(
      ['hw-1', 'hw-2', 'hw-3'].map((hw) => `hw:${hardwareRefOf(hw).toString('hex')}`).sort(),
    );
    clock.advance(MINUTE);
    expect((await activate('hw-4', '10.0.0.1')).json().error.code).toBe('KEY_REVOKED');
  });

  it('audits requests refused before any decision (bad body, wrong token, no route) with their source, never the body', async () => {
    await app.inject({
      method: 'POST',
      url: '/v1/activations',
      remoteAddress: '10.1.2.3',
      headers: { 'content-type': 'application/json' },
      payload: `{"key":"${key}",`,
    });
    await admin('/v1/admin/keys/show', { key }, 'wrong-token-wrong-token');
    await app.inject({ method: 'GET', url: '/v1/nope' });
    const audit = await authority.recentAudit(3);
    expect(audit.map((a) => [a.action, a.result])).toEqual([
      ['http GET /v1/nope', 'NOT_FOUND'],
      ['http POST /v1/admin/keys/show', 'UNAUTHORIZED'],
      ['http POST /v1/activations', 'REQUEST_INVALID'],
    ]);
    expect(audit[2]?.detail).toContain('from 10.1.2.3');
    expect(JSON.stringify(audit)).not.toContain(key);
  });

  it('says the admin API is off when no token was configured', async () => {
    const closed = createAuthorityServer(authority, { clock });
    const r = await closed.inject({ method: 'POST', url: '/v1/admin/keys/show', payload: { key } });
    expect(r.statusCode).toBe(403);
    expect(r.json().error.code).toBe('ADMIN_DISABLED');
    await closed.close();
  });

  it('rate-limits activation requests per source address and per key, per minute', async () => {
    for (let i = 0; i < 3; i++) expect((await activate(`same-${i % 2}`)).statusCode).toBe(201);
    const limited = await activate('same-0');
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('RATE_LIMITED');
    // another address, same key: the key's own limit applies too
    expect((await activate('same-0', '10.1.1.1')).json().error.code).toBe('RATE_LIMITED');
    clock.advance(MINUTE);
    expect((await activate('same-0')).statusCode).toBe(201);
  });
});

describe('authority HTTP API: bulk confirmations (proxy activation)', () => {
  it('answers each IID in order; a refused one never fails the others; bounded and rate-limited per source', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volact-bulk-'));
    const clock = new ManualClock();
    const authority = Authority.init(join(dir, 'a'), { clock });
    const app = createAuthorityServer(authority, { clock, bulkConfirmationsPerMinute: 5 });
    try {
      const group = await authority.addGroup({ name: 'office14' });
      const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 1 });
      const iid = (hw: string) =>
        makeInstallationId({ kind: 'installation', key: parseKey(key), hardwareId: hw, groupIds: [group.id] }).text;
      const bulk = (installationIds: unknown, remoteAddress = '10.1.1.1') =>
        app.inject({ method: 'POST', url: '/v1/confirmations/bulk', remoteAddress, payload: { installationIds } });
      const first = await bulk([iid('pc-1'), '123456-000000', iid('pc-2')]);
      expect(first.statusCode).toBe(200);
      const results = first.json<{
        results: { installationId: string; ok: boolean; confirmationId?: string; error?: { code: string } }[];
      }>().results;
      expect(results.map((r) => r.ok)).toEqual([true, false, false]);
      expect(results[0]?.confirmationId).toMatch(/^(\d{6}-){23}\d{6}$/);
      expect(results[1]?.error?.code).toBe('IID_INVALID');
      expect(results[2]?.error?.code).toBe('MAK_LIMIT_REACHED');
      expect(results.map((r) => r.installationId)).toEqual([iid('pc-1'), '123456-000000', iid('pc-2')]);
      // 3 of 5 used this minute: 3 more are refused whole, 2 fit; another source is not affected.
      expect((await bulk([iid('a'), iid('b'), iid('c')])).json().error.code).toBe('RATE_LIMITED');
      expect((await bulk([iid('pc-1'), iid('pc-1')])).statusCode).toBe(200);
      expect((await bulk([iid('pc-1')], '10.2.2.2')).statusCode).toBe(200);
      expect((await bulk([])).json().error.code).toBe('REQUEST_INVALID');
      expect((await bulk(Array(1001).fill(iid('x')))).json().error.code).toBe('REQUEST_INVALID');
      expect((await authority.showKey(key)).used).toBe(1);
    } finally {
      await app.close();
      await authority.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes a realistic bulk (400 IIDs, about 32 KB) above the 16 KiB limit of single calls', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volact-bulk-'));
    const authority = Authority.init(join(dir, 'a'), { clock: new ManualClock() });
    const app = createAuthorityServer(authority);
    try {
      const group = await authority.addGroup({ name: 'office14' });
      const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 1000 });
      const installationIds = Array.from(
        { length: 400 },
        (_, i) =>
          makeInstallationId({ kind: 'installation', key: parseKey(key), hardwareId: `pc-${i}`, groupIds: [group.id] })
            .text,
      );
      const r = await app.inject({ method: 'POST', url: '/v1/confirmations/bulk', payload: { installationIds } });
      expect(r.statusCode).toBe(200);
      expect(r.json<{ results: { ok: boolean }[] }>().results.every((x) => x.ok)).toBe(true);
      expect((await authority.showKey(key)).used).toBe(400);
      // One IID repeated: decided once, the same answer for every copy.
      const before = (await authority.recentAudit(1000)).length;
      const repeated = await app.inject({
        method: 'POST',
        url: '/v1/confirmations/bulk',
        payload: { installationIds: Array(50).fill('123456-000000') },
      });
      const answers = repeated.json<{ results: { error?: { code: string } }[] }>().results;
      expect(answers.length).toBe(50);
      expect(new Set(answers.map((a) => a.error?.code))).toEqual(new Set(['IID_INVALID']));
      expect((await authority.recentAudit(1000)).length - before).toBe(1);
    } finally {
      await app.close();
      await authority.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
