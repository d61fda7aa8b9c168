import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, generateSigningKeyPair, makeInstallationId, parseKey, publicKeyToPem } from '@volact/core';
import { CLI_PRINCIPAL } from '../access/principal.js';
import { Authority } from '../authority.js';
import { createAuthorityServer } from '../http.js';
import { API_ROUTES } from './routes.js';

const ADMIN = 'admin-token-0123456789abcdef';
const PASSWORD_A = 'correct horse battery A';
const PASSWORD_B = 'correct horse battery B';

type Headers = Record<string, string>;

/**
 * The publisher's REST API in process (a real Authority on a temporary data directory, every
 * module real): scopes, organisation isolation (404, never 403), the session cookie and its
 * CSRF header, body validation, and the attack of issue 14 — a customer given a token to read
 * its usage raising its own limit.
 */
describe('authority REST API: authentication, scopes, isolation, validation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'volact-api-'));
  const clock = new ManualClock();
  let authority: Authority;
  let app: FastifyInstance;
  let orgA: string;
  let orgB: string;
  let makA: { key: string; keyId: string };
  let readA: string; // org:A:read: what a customer's console is given
  let readAId: string;
  let adminAId: string;
  let allB: string; // org:B:* token
  let keysToken: string; // publisher:keys without the admin token
  let readToken: string; // publisher:read
  let cookieA: string; // org-admin of A, signed in
  let cookieB: string; // viewer of B, signed in

  const call = async (
    method: string,
    url: string,
    options: {
      token?: string;
      cookie?: string;
      csrf?: boolean;
      payload?: unknown;
      headers?: Headers;
      remoteAddress?: string;
    } = {},
  ) => {
    const headers: Headers = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.cookie) headers.cookie = options.cookie;
    if (options.csrf) headers['x-volact-csrf'] = '1';
    const res = await app.inject({
      method: method as 'GET',
      url,
      headers,
      ...(options.payload === undefined ? {} : { payload: options.payload as object }),
      ...(options.remoteAddress ? { remoteAddress: options.remoteAddress } : {}),
    });
    if (res.statusCode < 300) conforms(method, url, res);
    return res;
  };
  /** A 2xx answer parses with its route's answer schema (what the OpenAPI document says). */
  const conforms = (method: string, url: string, res: LightMyRequestResponse) => {
    const path = url.split('?')[0] as string;
    const r = API_ROUTES.find(
      (x) =>
        x.method === method && new RegExp(`^${x.path.replace(/\{\w+\}/g, '[^/]+').replace(/\./g, '\\.')}$`).test(path),
    );
    expect(r, `${method} ${path} is in the table`).toBeDefined();
    const parsed = r?.answer.safeParse(res.json());
    expect(parsed?.success, `${method} ${path}: ${JSON.stringify(parsed?.error?.issues[0])}`).toBe(true);
  };
  const code = (res: LightMyRequestResponse) => res.json<{ error: { code: string } }>().error.code;
  const ids = (page: unknown, field = 'id') =>
    (page as { items: Record<string, unknown>[] }).items.map((i) => i[field]);
  const signIn = async (email: string, password: string) => {
    const res = await call('POST', '/v1/session', { payload: { email, password } });
    expect(res.statusCode).toBe(200);
    const cookie = String(res.headers['set-cookie']);
    return cookie.split(';')[0] as string;
  };

  beforeAll(async () => {
    authority = Authority.init(join(dir, 'a'), { clock, passwordCost: 10 });
    await authority.addGroup({ name: 'office14' });
    orgA = (await authority.organisations.create({ name: 'Acme' }, CLI_PRINCIPAL)).id;
    orgB = (await authority.organisations.create({ name: 'Beta' }, CLI_PRINCIPAL)).id;
    makA = await authority.organisations.mintKey(orgA, { type: 'mak', groups: ['office14'], limit: 10 }, CLI_PRINCIPAL);
    const token = async (name: string, scopes: string[]) =>
      (await authority.access.createToken({ name, scopes }, CLI_PRINCIPAL)).token;
    const made = await authority.access.createToken({ name: 'console-a', scopes: [`org:${orgA}:read`] }, CLI_PRINCIPAL);
    readA = made.token;
    readAId = made.info.id;
    allB = await token('b-all', [`org:${orgB}:*`]);
    keysToken = await token('keys', ['publisher:keys']);
    readToken = await token('reader', ['publisher:read']);
    adminAId = (
      await authority.access.addUser(
        { email: 'admin@acme.example', name: 'Acme admin', role: 'org-admin', orgId: orgA, password: PASSWORD_A },
        CLI_PRINCIPAL,
      )
    ).id;
    await authority.access.addUser(
      { email: 'viewer@beta.example', name: 'Beta viewer', role: 'viewer', orgId: orgB, password: PASSWORD_B },
      CLI_PRINCIPAL,
    );
    app = createAuthorityServer(authority, { adminToken: ADMIN, clock, webRoot: null });
    cookieA = await signIn('admin@acme.example', PASSWORD_A);
    cookieB = await signIn('viewer@beta.example', PASSWORD_B);
  });
  afterAll(async () => {
    await app.close();
    await authority.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the admin token still works, as a publisher owner', async () => {
    const me = await call('GET', '/v1/session', { token: ADMIN });
    expect(me.json().principal).toMatchObject({ kind: 'admin-token', role: 'owner', scopes: ['publisher:*'] });
    expect(me.json().user).toBeNull();
    const orgs = await call('GET', '/v1/orgs', { token: ADMIN });
    expect(ids(orgs.json())).toEqual(expect.arrayContaining([orgA, orgB]));
    const raised = await call('POST', `/v1/orgs/${orgA}/keys/${makA.keyId}/limit`, {
      token: ADMIN,
      payload: { limit: 12 },
    });
    expect(raised.statusCode).toBe(200);
    expect(raised.json()).toMatchObject({ keyId: makA.keyId, limit: 12 });
    const shown = await call('POST', '/v1/admin/keys/show', { token: ADMIN, payload: { key: makA.key } });
    expect(shown.json()).toMatchObject({ limit: 12 });
    expect(shown.body).not.toContain(makA.key);
  });

  it("the attack of issue 14: an organisation's read token reads its usage but cannot raise its own limit", async () => {
    const usage = await call('GET', `/v1/orgs/${orgA}/usage`, { token: readA });
    expect(usage.statusCode).toBe(200);
    expect(usage.json().items).toEqual([expect.objectContaining({ keyId: makA.keyId, used: 0 })]);
    const before = (await call('GET', `/v1/orgs/${orgA}/keys/${makA.keyId}`, { token: readA })).json().limit;

    const raise = await call('POST', `/v1/orgs/${orgA}/keys/${makA.keyId}/limit`, {
      token: readA,
      payload: { limit: 5000 },
    });
    expect(raise.statusCode).toBe(403);
    expect(raise.json().error).toMatchObject({ code: 'SCOPE_MISSING', scope: 'publisher:keys' });
    expect(raise.json().error.message).toContain('publisher:keys');
    const legacy = await call('POST', '/v1/admin/keys/limit', {
      token: readA,
      payload: { key: makA.key, limit: 5000 },
    });
    expect(legacy.json().error).toMatchObject({ code: 'SCOPE_MISSING', scope: 'publisher:keys' });
    // Nor by approving a request of its own, nor with an org-wide token or an org-admin's session.
    const all = await call('POST', `/v1/orgs/${orgB}/keys/whatever/limit`, { token: allB, payload: { limit: 5000 } });
    expect(all.json().error).toMatchObject({ code: 'SCOPE_MISSING', scope: 'publisher:keys' });
    const bySession = await call('POST', `/v1/orgs/${orgA}/keys/${makA.keyId}/limit`, {
      cookie: cookieA,
      csrf: true,
      payload: { limit: 5000 },
    });
    expect(bySession.json().error.scope).toBe('publisher:keys');

    // Nor by minting itself a stronger token or user.
    const stronger = await call('POST', '/v1/tokens', {
      token: readA,
      payload: { name: 'up', scopes: ['publisher:keys'] },
    });
    expect([stronger.statusCode, code(stronger)]).toEqual([400, 'TOKEN_INVALID']);
    const owner = await call('POST', '/v1/users', {
      token: readA,
      payload: { email: 'evil@acme.example', name: 'Evil', role: 'owner', password: 'a long password here' },
    });
    expect(owner.json().error).toMatchObject({ code: 'SCOPE_MISSING', scope: 'publisher:users' });
    const after = (await call('GET', `/v1/orgs/${orgA}/keys/${makA.keyId}`, { token: readA })).json().limit;
    expect(after).toBe(before);
  });

  it('a missing scope is 403 naming the scope', async () => {
    const ask = await call('POST', `/v1/orgs/${orgA}/raise-requests`, {
      token: readA,
      payload: { keyId: makA.keyId, additional: 5, reason: 'more seats' },
    });
    expect(ask.statusCode).toBe(403);
    expect(ask.json().error).toMatchObject({ code: 'SCOPE_MISSING', scope: `org:${orgA}:requests` });
    const rotate = await call('POST', '/v1/root/rotate', { token: readToken, payload: { step: 'prepare' } });
    expect(rotate.json().error).toMatchObject({ code: 'SCOPE_MISSING', scope: 'publisher:trust' });
    const mint = await call('POST', `/v1/orgs/${orgA}/keys`, {
      token: readToken,
      payload: { type: 'mak', groups: ['office14'], limit: 5 },
    });
    expect(mint.json().error).toMatchObject({ code: 'SCOPE_MISSING', scope: 'publisher:keys' });
    expect((await call('GET', '/v1/root', { token: readToken })).statusCode).toBe(200);
  });

  it("another organisation's ids are 404, never 403: org id, key id, full key, request, webhook", async () => {
    for (const [credentials, label] of [
      [{ token: allB }, 'B token'],
      [{ cookie: cookieB }, 'B viewer session'],
    ] as const) {
      const org = await call('GET', `/v1/orgs/${orgA}`, credentials);
      expect([org.statusCode, code(org)], label).toEqual([404, 'ORG_NOT_FOUND']);
      const keys = await call('GET', `/v1/orgs/${orgA}/keys`, credentials);
      expect([keys.statusCode, code(keys)], label).toEqual([404, 'ORG_NOT_FOUND']);
      const report = await call('GET', `/v1/orgs/${orgA}/keys/${makA.keyId}/report`, credentials);
      expect([report.statusCode, code(report)], label).toEqual([404, 'ORG_NOT_FOUND']);
      // A's key ID under B's own organisation: as if it did not exist.
      const underB = await call('GET', `/v1/orgs/${orgB}/keys/${makA.keyId}`, credentials);
      expect([underB.statusCode, code(underB)], label).toEqual([404, 'KEY_NOT_FOUND']);
      const lookup = await call('POST', '/v1/keys/lookup', { ...credentials, csrf: true, payload: { key: makA.key } });
      expect([lookup.statusCode, code(lookup)], label).toEqual([404, 'KEY_NOT_FOUND']);
      expect(lookup.body).not.toContain(makA.key);
      const audit = await call('GET', `/v1/audit?orgId=${orgA}`, credentials);
      expect([audit.statusCode, code(audit)], label).toEqual([404, 'ORG_NOT_FOUND']);
    }
    // A's people and tokens.
    const user = await call('PATCH', `/v1/users/${adminAId}`, { token: allB, payload: { name: 'taken over' } });
    expect([user.statusCode, code(user)]).toEqual([404, 'USER_NOT_FOUND']);
    const gone = await call('DELETE', `/v1/users/${adminAId}`, { cookie: cookieB, csrf: true });
    expect([gone.statusCode, code(gone)]).toEqual([404, 'USER_NOT_FOUND']);
    const token = await call('DELETE', `/v1/tokens/${readAId}`, { token: allB });
    expect([token.statusCode, code(token)]).toEqual([404, 'TOKEN_NOT_FOUND']);
    const tokens = await call('GET', `/v1/tokens?orgId=${orgA}`, { token: allB });
    expect([tokens.statusCode, code(tokens)]).toEqual([404, 'ORG_NOT_FOUND']);
    expect((await call('GET', `/v1/orgs/${orgA}/usage`, { token: readA })).statusCode).toBe(200);
    // A request and a webhook endpoint of A.
    const asked = await call('POST', `/v1/orgs/${orgA}/raise-requests`, {
      cookie: cookieA,
      csrf: true,
      payload: { keyId: makA.keyId, additional: 5, reason: 'more seats' },
    });
    expect(asked.statusCode).toBe(201);
    const requestId = asked.json().id as string;
    const seen = await call('GET', `/v1/raise-requests/${requestId}`, { token: readA });
    expect(seen.json()).toMatchObject({ id: requestId, orgId: orgA, state: 'pending' });
    const hidden = await call('GET', `/v1/raise-requests/${requestId}`, { token: allB });
    expect([hidden.statusCode, code(hidden)]).toEqual([404, 'RAISE_REQUEST_NOT_FOUND']);
    const listB = await call('GET', '/v1/raise-requests', { token: allB });
    expect(listB.json().items).toEqual([]);
    const decideB = await call('POST', `/v1/raise-requests/${requestId}/decision`, {
      token: allB,
      payload: { decision: 'approve', reason: 'self-service' },
    });
    expect(decideB.json().error).toMatchObject({ code: 'SCOPE_MISSING', scope: 'publisher:requests' });

    // An organisation's admin cannot point the authority into the publisher's network (SSRF).
    const inside = await call('POST', '/v1/webhooks', {
      cookie: cookieA,
      csrf: true,
      payload: { url: 'https://169.254.169.254/latest/meta-data', events: ['key.usage'] },
    });
    expect([inside.statusCode, code(inside)]).toEqual([400, 'WEBHOOK_INVALID']);
    const hook = await call('POST', '/v1/webhooks', {
      cookie: cookieA,
      csrf: true,
      payload: { url: 'https://hooks.org-a.example/volact', events: ['key.usage'] },
    });
    expect(hook.statusCode).toBe(201);
    expect(hook.json().endpoint.orgId).toBe(orgA);
    const hookId = hook.json().endpoint.id as string;
    const deliveries = await call('GET', `/v1/webhooks/${hookId}/deliveries`, { token: allB });
    expect([deliveries.statusCode, code(deliveries)]).toEqual([404, 'WEBHOOK_NOT_FOUND']);
    const removed = await call('DELETE', `/v1/webhooks/${hookId}`, { token: allB });
    expect([removed.statusCode, code(removed)]).toEqual([404, 'WEBHOOK_NOT_FOUND']);
    expect((await call('GET', `/v1/webhooks/${hookId}/deliveries`, { cookie: cookieA })).statusCode).toBe(200);

    // The publisher approves; the organisation sees its new limit.
    const before = (await call('GET', `/v1/orgs/${orgA}/keys/${makA.keyId}`, { token: readA })).json().limit;
    const approved = await call('POST', `/v1/raise-requests/${requestId}/decision`, {
      token: ADMIN,
      payload: { decision: 'approve', reason: 'agreed' },
    });
    expect(approved.json()).toMatchObject({ state: 'approved', limitAfter: before + 5 });
    expect((await call('GET', `/v1/orgs/${orgA}/keys/${makA.keyId}`, { token: readA })).json().limit).toBe(before + 5);
  });

  it('a change made with the session cookie needs X-Volact-Csrf: 1; the cookie is HttpOnly, SameSite=Strict, Path=/', async () => {
    const signed = await call('POST', '/v1/session', {
      payload: { email: 'admin@acme.example', password: PASSWORD_A },
    });
    const setCookie = String(signed.headers['set-cookie']);
    expect(setCookie).toMatch(/^volact_session=[^;]+; HttpOnly; SameSite=Strict; Path=\//);
    expect(setCookie).not.toContain('Secure'); // plain http on loopback
    const cookie = setCookie.split(';')[0] as string;
    expect(signed.body).not.toContain(cookie.split('=')[1]);

    const forged = await call('PUT', `/v1/orgs/${orgA}/keys/${makA.keyId}/note`, { cookie, payload: { note: 'x' } });
    expect(forged.statusCode).toBe(400);
    expect(forged.json().error.code).toBe('REQUEST_INVALID');
    expect(forged.json().error.message).toContain('X-Volact-Csrf');
    const noted = await call('PUT', `/v1/orgs/${orgA}/keys/${makA.keyId}/note`, {
      cookie,
      csrf: true,
      payload: { note: 'floor 3' },
    });
    expect(noted.json()).toMatchObject({ note: 'floor 3' });
    // Reading needs no header; a bearer token needs none either.
    expect((await call('GET', `/v1/orgs/${orgA}/keys`, { cookie })).statusCode).toBe(200);

    expect((await call('DELETE', '/v1/session', { cookie })).statusCode).toBe(400);
    const out = await call('DELETE', '/v1/session', { cookie, csrf: true });
    expect(out.statusCode).toBe(200);
    expect(String(out.headers['set-cookie'])).toContain('Max-Age=0');
    const after = await call('GET', '/v1/session', { cookie });
    expect(after.statusCode).toBe(401);
  });

  it('the cookie is Secure when the request came over https through a trusted proxy', async () => {
    const proxied = createAuthorityServer(authority, { clock, trustProxy: ['127.0.0.1'], webRoot: null });
    const res = await proxied.inject({
      method: 'POST',
      url: '/v1/session',
      remoteAddress: '127.0.0.1',
      headers: { 'x-forwarded-proto': 'https' },
      payload: { email: 'viewer@beta.example', password: PASSWORD_B },
    });
    expect(String(res.headers['set-cookie'])).toMatch(/; Secure$/);
    await proxied.close();
  });

  it('bad requests are 400 REQUEST_INVALID naming the field and what was expected', async () => {
    const cases: [string, string, unknown, string][] = [
      ['POST', '/v1/orgs', { name: 5 }, 'body.name'],
      ['POST', '/v1/orgs', { name: 'Gamma', owner: 'me' }, 'owner'],
      ['POST', `/v1/orgs/${orgA}/keys`, { type: 'mak', groups: ['office14'], limit: 'many' }, 'body.limit'],
      ['POST', `/v1/orgs/${orgA}/keys`, { type: 'gvlk', groups: ['office14'] }, 'body.type'],
      ['POST', '/v1/tokens', { name: 't', scopes: [] }, 'body.scopes'],
      ['POST', '/v1/root/rotate', { step: 'now' }, 'body.step'],
      ['GET', '/v1/keys?limit=9999', undefined, 'query.limit'],
      ['GET', '/v1/keys?colour=red', undefined, 'colour'],
      ['GET', '/v1/orgs/not-an-org', undefined, 'params.orgId'],
    ];
    for (const [method, url, payload, field] of cases) {
      const res = await call(method, url, { token: ADMIN, payload });
      expect([res.statusCode, code(res)], `${method} ${url}`).toEqual([400, 'REQUEST_INVALID']);
      expect(res.json().error.message, `${method} ${url}`).toContain(field);
    }
    const expected = await call('POST', '/v1/orgs', { token: ADMIN, payload: { name: 5 } });
    expect(expected.json().error.message).toMatch(/expected string/);
    // Validation comes after authentication: an anonymous caller learns nothing of the schema.
    expect((await call('POST', '/v1/orgs', { payload: { name: 5 } })).statusCode).toBe(401);
  });

  it('a full key is revealed only to a signed-in user who re-enters the password', async () => {
    const byToken = await call('POST', `/v1/orgs/${orgA}/keys/${makA.keyId}/reveal`, {
      token: ADMIN,
      payload: { password: 'whatever' },
    });
    expect([byToken.statusCode, code(byToken)]).toEqual([403, 'SESSION_REQUIRED']);
    const wrong = await call('POST', `/v1/orgs/${orgA}/keys/${makA.keyId}/reveal`, {
      cookie: cookieA,
      csrf: true,
      payload: { password: 'not the password' },
    });
    expect(code(wrong)).toBe('PASSWORD_WRONG');
    expect(wrong.body).not.toContain(makA.key);
    const right = await call('POST', `/v1/orgs/${orgA}/keys/${makA.keyId}/reveal`, {
      cookie: cookieA,
      csrf: true,
      payload: { password: PASSWORD_A },
    });
    expect(right.json()).toEqual({ key: makA.key });
    // B's viewer: A's key does not exist for it.
    const other = await call('POST', `/v1/orgs/${orgA}/keys/${makA.keyId}/reveal`, {
      cookie: cookieB,
      csrf: true,
      payload: { password: PASSWORD_B },
    });
    expect(code(other)).toBe('ORG_NOT_FOUND');
  });

  it('the /v1/admin/keys routes take any token with publisher:keys (show: publisher:read)', async () => {
    expect(
      (await call('POST', '/v1/admin/keys/show', { token: readToken, payload: { key: makA.key } })).statusCode,
    ).toBe(200);
    const denied = await call('POST', '/v1/admin/keys/revoke', { token: readToken, payload: { key: makA.key } });
    expect(denied.json().error).toMatchObject({ code: 'SCOPE_MISSING', scope: 'publisher:keys' });
    const limit = (await call('POST', '/v1/admin/keys/show', { token: readToken, payload: { key: makA.key } })).json()
      .limit;
    const raised = await call('POST', '/v1/admin/keys/limit', {
      token: keysToken,
      payload: { key: makA.key, limit: limit + 1 },
    });
    expect(raised.json().limit).toBe(limit + 1);
    // Audited with the token as the actor.
    const audit = await call('GET', `/v1/audit?orgId=${orgA}&keyId=${makA.keyId}`, { token: readToken });
    expect(
      audit.json<{ items: { actor: string | null }[] }>().items.some((row) => row.actor?.startsWith('token:keys')),
    ).toBe(true);
    expect(audit.body).not.toContain(makA.key);
  });

  it("a publisher's day over the API: every answer has its documented shape", async () => {
    const as = (method: string, url: string, payload?: unknown) => call(method, url, { token: ADMIN, payload });
    const ok = async (method: string, url: string, payload?: unknown, status = 200) => {
      const res = await as(method, url, payload);
      expect(res.statusCode, `${method} ${url}: ${res.body.slice(0, 300)}`).toBe(status);
      // eslint-disable-next-line @typescript-eslint/no-unsafe-return
      return res.json();
    };
    // Groups and an organisation.
    await ok('POST', '/v1/groups', { name: 'server22', kind: 'server' }, 201);
    expect(ids(await ok('GET', '/v1/groups'), 'name')).toContain('server22');
    const gamma = await ok(
      'POST',
      '/v1/orgs',
      { name: 'Gamma', externalRef: 'AG-1', contacts: [{ name: 'Ann', email: 'ann@gamma.example' }] },
      201,
    );
    expect(await ok('PATCH', `/v1/orgs/${gamma.id}`, { externalRef: 'AG-2' })).toMatchObject({ externalRef: 'AG-2' });
    expect(ids(await ok('GET', '/v1/orgs?q=Gamm'))).toEqual([gamma.id]);

    // People and tokens.
    const user = await ok(
      'POST',
      '/v1/users',
      { email: 'v@gamma.example', name: 'V', role: 'viewer', orgId: gamma.id, password: 'a long password here' },
      201,
    );
    expect(ids(await ok('GET', `/v1/users?orgId=${gamma.id}`))).toEqual([user.id]);
    expect(await ok('PATCH', `/v1/users/${user.id}`, { name: 'Vee' })).toMatchObject({ name: 'Vee' });
    const made = await ok(
      'POST',
      '/v1/tokens',
      { name: 'gamma-console', scopes: [`org:${gamma.id}:read`], expiresAt: '2099-01-01T00:00:00Z' },
      201,
    );
    expect(made.token).toMatch(/^vat_/);
    expect(ids(await ok('GET', `/v1/tokens?orgId=${gamma.id}`))).toContain(made.info.id);
    expect((await call('GET', `/v1/orgs/${gamma.id}/usage`, { token: made.token })).statusCode).toBe(200);
    expect((await ok('DELETE', `/v1/tokens/${made.info.id}`)).revokedAt).not.toBeNull();
    expect((await call('GET', `/v1/orgs/${gamma.id}/usage`, { token: made.token })).statusCode).toBe(401);
    expect(await ok('DELETE', `/v1/users/${user.id}`)).toEqual({ removed: true, id: user.id });

    // Keys: mint, find, report, usage, activations.
    const mak = await ok(
      'POST',
      `/v1/orgs/${gamma.id}/keys`,
      { type: 'mak', groups: ['office14'], limit: 3, note: 'HQ' },
      201,
    );
    expect(mak).toMatchObject({ orgId: gamma.id, type: 'mak', limit: 3 });
    const host = await ok(
      'POST',
      `/v1/orgs/${gamma.id}/keys`,
      { type: 'kms-host', groups: ['server22'], hosts: 2 },
      201,
    );
    const last5 = (await ok('GET', `/v1/orgs/${gamma.id}/keys/${mak.keyId}`)).last5 as string;
    expect((await ok('GET', `/v1/orgs/${gamma.id}/keys/${last5.replace(/^\W+/, '')}`)).keyId).toBe(mak.keyId);
    expect((await ok('POST', '/v1/keys/lookup', { key: mak.key })).keyId).toBe(mak.keyId);
    expect(ids(await ok('GET', `/v1/keys?orgId=${gamma.id}&type=mak`), 'keyId')).toEqual([mak.keyId]);
    const groupOffice = (await authority.group('office14')).id;
    const iid = makeInstallationId({
      kind: 'installation',
      key: parseKey(mak.key),
      hardwareId: 'pc-1',
      groupIds: [groupOffice],
    }).text;
    expect(
      (await app.inject({ method: 'POST', url: '/v1/activations', payload: { key: mak.key, installationId: iid } }))
        .statusCode,
    ).toBe(201);
    expect((await ok('GET', `/v1/orgs/${gamma.id}/keys/${mak.keyId}/installations`)).items).toHaveLength(1);
    expect((await ok('GET', `/v1/orgs/${gamma.id}/keys/${host.keyId}/hosts`)).items).toEqual([]);
    expect(await ok('GET', `/v1/orgs/${gamma.id}/keys/${mak.keyId}/report`)).toMatchObject({ used: 1, remaining: 2 });
    expect((await ok('GET', `/v1/orgs/${gamma.id}/usage`)).items).toEqual(
      expect.arrayContaining([expect.objectContaining({ keyId: mak.keyId, used: 1, percent: 33 })]),
    );
    await ok('GET', `/v1/orgs/${gamma.id}/usage/history?keyId=${mak.keyId}&days=7`);
    const configs = (await ok('GET', `/v1/orgs/${gamma.id}/product-configs`)).items;
    expect(configs).toEqual(
      expect.arrayContaining([expect.objectContaining({ group: 'office14' }), { group: 'server22', kind: 'server' }]),
    );
    const config = await as('GET', `/v1/orgs/${gamma.id}/product-configs/server22`);
    expect(config.headers['content-disposition']).toContain('server22');
    expect(code(await as('GET', `/v1/orgs/${orgB}/product-configs/server22`))).toBe('GROUP_NOT_FOUND');
    expect(
      await ok('POST', `/v1/orgs/${gamma.id}/keys/${mak.keyId}/revoke`, { reason: 'contract ended' }),
    ).toMatchObject({ revokedAt: expect.any(String) });

    // Artefacts: an OEM key as PEM, a token CA as raw base64.
    const oemKey = generateSigningKeyPair().publicKeyRaw;
    const oem = await ok(
      'POST',
      `/v1/orgs/${gamma.id}/oem-certificates`,
      { manufacturer: 'Contoso', publicKey: publicKeyToPem(oemKey), groups: ['office14'], days: 365 },
      201,
    );
    expect(oem).toMatchObject({ kind: 'oem-certificate', orgId: gamma.id });
    const ca = await ok(
      'POST',
      `/v1/orgs/${gamma.id}/token-cas`,
      {
        organisation: 'Gamma',
        group: 'office14',
        publicKey: generateSigningKeyPair().publicKeyRaw.toString('base64'),
        days: 365,
      },
      201,
    );
    const object = await ok(
      'POST',
      `/v1/orgs/${gamma.id}/activation-objects`,
      { group: 'office14', domain: 'corp.gamma.example', name: 'corp' },
      201,
    );
    expect(object.kind).toBe('activation-object');
    expect(ids(await ok('GET', `/v1/orgs/${gamma.id}/oem-certificates`))).toEqual([oem.id]);
    expect(ids(await ok('GET', `/v1/orgs/${gamma.id}/token-cas`))).toEqual([ca.id]);
    expect((await ok('GET', `/v1/orgs/${gamma.id}/activation-objects`)).items).toHaveLength(1);
    const badKey = await as('POST', `/v1/orgs/${gamma.id}/token-cas`, {
      organisation: 'Gamma',
      group: 'office14',
      publicKey: 'not a key',
      days: 365,
    });
    expect(badKey.json().error.message).toContain('body.publicKey');

    // The audit log, by actor and action.
    const audit = await ok('GET', `/v1/audit?orgId=${gamma.id}&actor=admin-token&action=key.`);
    expect(audit.items.length).toBeGreaterThan(0);
    expect(JSON.stringify(audit)).not.toContain(mak.key);

    // Operations of the root of trust.
    const entries = await ok('GET', '/v1/revocations/entries');
    expect(typeof entries.list).toBe('string');
    const revoked = await ok('POST', '/v1/revocations/manufacturers', { keyId: oem.subjectKeyId, reason: 'leaked' });
    expect(revoked.listVersion).toBeGreaterThan(entries.listVersion);
    expect(code(await as('POST', '/v1/revocations/hosts', { subject: '0'.repeat(32) }))).toBe(
      'REVOCATION_SUBJECT_UNKNOWN',
    );
    await ok('POST', '/v1/revocations/token-cas', { keyId: ca.subjectKeyId });
    expect((await ok('GET', '/v1/root')).rotation.nextStep).toBe('prepare');
    await ok('POST', '/v1/online-key/rotate', {});
    const outOfOrder = await as('POST', '/v1/root/rotate', { step: 'switch' });
    expect(outOfOrder.json().error).toMatchObject({ code: 'ROOT_ROTATION_OUT_OF_ORDER', nextStep: 'prepare' });

    // A publisher-level webhook, its delivery log and a redelivery.
    const hook = await ok(
      'POST',
      '/v1/webhooks',
      { url: 'http://127.0.0.1:9/hook', events: ['key.revoked', 'key.limit_raised'] },
      201,
    );
    expect(hook.endpoint.orgId).toBeNull();
    expect(code(await call('GET', `/v1/webhooks/${hook.endpoint.id}/deliveries`, { token: allB }))).toBe(
      'WEBHOOK_NOT_FOUND',
    );
    await ok('POST', `/v1/orgs/${gamma.id}/keys/${host.keyId}/limit`, { limit: 4 });
    await authority.webhooks.dispatchOnce();
    const deliveries = (await ok('GET', `/v1/webhooks/${hook.endpoint.id}/deliveries`)).items;
    expect(deliveries.length).toBeGreaterThan(0);
    const again = await ok('POST', `/v1/webhook-deliveries/${deliveries[0].id}/redeliver`, {}, 201);
    expect(again.eventId).toBe(deliveries[0].eventId);
    expect(ids(await ok('GET', '/v1/webhooks'))).toContain(hook.endpoint.id);
    expect(await ok('DELETE', `/v1/webhooks/${hook.endpoint.id}`)).toEqual({ removed: true, id: hook.endpoint.id });

    // The phone operator: an IID in, a CID out.
    const mak2 = await ok('POST', `/v1/orgs/${gamma.id}/keys`, { type: 'mak', groups: ['office14'], limit: 2 }, 201);
    const phoned = makeInstallationId({
      kind: 'installation',
      key: parseKey(mak2.key),
      hardwareId: 'pc-9',
      groupIds: [groupOffice],
    }).text;
    expect(await ok('POST', '/v1/operator/confirmations', { installationId: phoned }, 201)).toMatchObject({
      kind: 'installation',
    });
  });

  it('wrong bearer tokens are throttled per source address, before any compare', async () => {
    const guarded = createAuthorityServer(authority, {
      adminToken: ADMIN,
      clock,
      adminFailuresPerSourcePerMinute: 3,
      webRoot: null,
    });
    const get = (token: string, remoteAddress: string) =>
      guarded.inject({
        method: 'GET',
        url: '/v1/session',
        remoteAddress,
        headers: { authorization: `Bearer ${token}` },
      });
    for (const wrong of ['vat_wrongwrongwrong', 'nope', `${ADMIN}x`]) {
      expect((await get(wrong, '10.0.0.9')).statusCode).toBe(401);
    }
    const limited = await get(ADMIN, '10.0.0.9');
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBeDefined();
    expect((await get(ADMIN, '10.0.0.10')).statusCode).toBe(200);
    await guarded.close();
  });
});
