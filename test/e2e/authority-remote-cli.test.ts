import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority, CLI_PRINCIPAL, createAuthorityServer } from '@volact/authority';
import { runCliInProcess, type CliRun } from './cli-in-process.js';

/**
 * `volact authority … --url URL --token-file F`: every verb that works on the data directory
 * works on a remote authority (its REST API, in this process) and prints the same; the token's
 * scopes are enforced and refusals keep their codes and exit codes.
 */
const ADMIN_TOKEN = 'remote-cli-admin-token-0123456789';
const DEFAULT_ORG = 'org_default';
const dir = mkdtempSync(join(tmpdir(), 'volact-remote-cli-'));
const data = join(dir, 'a');
const tokenFile = join(dir, 'admin.token');
const wrongTokenFile = join(dir, 'wrong.token');
let authority: Authority;
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  await Authority.init(data).close();
  writeFileSync(tokenFile, `${ADMIN_TOKEN}\n`, { mode: 0o600 });
  writeFileSync(wrongTokenFile, 'not-the-admin-token-at-all-000\n', { mode: 0o600 });
  authority = Authority.open(data);
  app = createAuthorityServer(authority, { adminToken: ADMIN_TOKEN });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  url = `http://127.0.0.1:${addr && typeof addr !== 'string' ? addr.port : 0}`;
});
afterAll(async () => {
  await app?.close();
  await authority?.close();
  rmSync(dir, { recursive: true, force: true });
});

const local = (...args: string[]) => runCliInProcess([...args, '--data-dir', data]);
const remote = (...args: string[]) => runCliInProcess([...args, '--url', url, '--token-file', tokenFile]);
const ok = (r: CliRun, what: string) => {
  expect(r.code, `${what}\n${r.stdout}${r.stderr}`).toBe(0);
  return r.stdout;
};
const json = <T>(r: CliRun, what: string): T => JSON.parse(ok(r, what)) as T;
const refusal = (r: CliRun) => JSON.parse(r.stdout) as { error: { code: string; message: string } };

describe('volact authority verbs on a remote authority (--url, --token-file)', () => {
  it('group add, group list and product-config answer as on the data directory', async () => {
    const added = json<{ name: string; kind: string; threshold: number }>(
      await remote('authority', 'group', 'add', '--name', 'office14', '--json'),
      'group add',
    );
    expect(added).toMatchObject({ name: 'office14', kind: 'app', threshold: 5 });
    ok(await remote('authority', 'group', 'add', '--name', 'win10', '--kind', 'client-os'), 'group add text');
    const remoteList = ok(await remote('authority', 'group', 'list', '--json'), 'group list');
    expect(remoteList).toBe(ok(await local('authority', 'group', 'list', '--json'), 'local group list'));
    expect(ok(await remote('authority', 'group', 'list'), 'text')).toBe(
      ok(await local('authority', 'group', 'list'), 'text'),
    );

    // The same group twice: the authority's own code, exit 1.
    const again = await remote('authority', 'group', 'add', '--name', 'office14', '--json');
    expect(again.code).toBe(1);
    expect(refusal(again).error.code).toBe('GROUP_EXISTS');
    // A field the API's schema refuses is named by this command's flag, as on the data directory.
    const bad = await remote('authority', 'group', 'add', '--name', 'Bad Name!', '--json');
    expect(bad.code).toBe(1);
    expect(refusal(bad).error.message).toMatch(/^--name: /);

    // --url is the authority asked and the public URL in the config (unless --public-url).
    const remoteConfig = ok(await remote('authority', 'product-config', '--group', 'office14'), 'product-config');
    const localConfig = ok(
      await local('authority', 'product-config', '--group', 'office14', '--url', url),
      'local product-config',
    );
    expect(JSON.parse(remoteConfig)).toEqual(JSON.parse(localConfig));
  });

  it('key mint, show, raise and revoke (the key in the body, never in a URL), as the data directory sees them', async () => {
    const minted = json<{ key: string; keyId: string; type: string; limit: number }>(
      await remote('authority', 'key', 'mint', '--type', 'mak', '--group', 'office14', '--limit', '5', '--json'),
      'mint',
    );
    expect(minted).toMatchObject({ type: 'mak', limit: 5 });
    const keyFile = join(dir, 'mak.key');
    writeFileSync(keyFile, minted.key, { mode: 0o600 });

    const shown = ok(await remote('authority', 'key', 'show', '--key-file', keyFile, '--json'), 'show');
    expect(shown).toBe(ok(await local('authority', 'key', 'show', '--key-file', keyFile, '--json'), 'local show'));
    expect(ok(await remote('authority', 'key', 'show', minted.key), 'show text')).toBe(
      ok(await local('authority', 'key', 'show', minted.key), 'local show text'),
    );

    const raised = json<{ limit: number; remaining: number }>(
      await remote('authority', 'key', 'raise', '--key-file', keyFile, '--limit', '12', '--json'),
      'raise',
    );
    expect(raised).toMatchObject({ limit: 12, remaining: 12 });
    expect(json<{ limit: number }>(await local('authority', 'key', 'show', minted.key, '--json'), 'local').limit).toBe(
      12,
    );

    const revoked = json<{ revokedAt: string | null }>(
      await remote('authority', 'key', 'revoke', '--key-file', keyFile, '--json'),
      'revoke',
    );
    expect(revoked.revokedAt).toEqual(expect.any(String));
    expect(
      json<{ revokedAt: string | null }>(await local('authority', 'key', 'show', minted.key, '--json'), 'local')
        .revokedAt,
    ).toBe(revoked.revokedAt);

    // A key this authority never minted: its own code and exit code, as locally.
    const other = `${minted.key.slice(0, -1)}${minted.key.endsWith('2') ? '3' : '2'}`;
    const [r, l] = [
      await remote('authority', 'key', 'show', other, '--json'),
      await local('authority', 'key', 'show', other, '--json'),
    ];
    expect(r.code).toBe(l.code);
    expect(refusal(r).error.code).toBe(refusal(l).error.code);
  });

  it('confirm: an installation ID read out by phone gets its confirmation ID remotely', async () => {
    const productFile = join(dir, 'product.json');
    writeFileSync(productFile, ok(await local('authority', 'product-config', '--group', 'office14'), 'config'));
    const { key } = json<{ key: string }>(
      await remote('authority', 'key', 'mint', '--type', 'mak', '--group', 'office14', '--limit', '3', '--json'),
      'mint',
    );
    const machine = join(dir, 'pc');
    const init = ['client', 'init', '--state-dir', machine, '--product', productFile, '--hardware-id', 'hw-pc'];
    ok(await runCliInProcess(init), 'client init');
    const hw = ['--hardware-id', 'hw-pc'];
    ok(await runCliInProcess(['client', 'install-key', '--state-dir', machine, key, ...hw]), 'install-key');
    const { installationId } = json<{ installationId: string }>(
      await runCliInProcess(['client', 'installation-id', '--state-dir', machine, ...hw, '--json']),
      'installation-id',
    );
    const c = json<{ kind: string; confirmationId: string; used: number; limit: number; again: boolean }>(
      await remote('authority', 'confirm', installationId, '--json'),
      'confirm',
    );
    expect(c).toMatchObject({ kind: 'installation', used: 1, limit: 3, again: false });
    // Again (the same installation): nothing used, as on the data directory.
    const again = json<{ used: number; again: boolean }>(
      await local('authority', 'confirm', installationId, '--json'),
      'local',
    );
    expect(again).toMatchObject({ used: 1, again: true });
    ok(
      await runCliInProcess([
        'client',
        'install-confirmation',
        '--state-dir',
        machine,
        ...hw,
        ...c.confirmationId.split('-'),
      ]),
      'install-confirmation',
    );
  });

  it('activation-object create, oem-certificate issue, token-ca issue sign remotely what the data directory signs; the keys revoked remotely', async () => {
    const object = json<{ group: { name: string }; domain: string; name: string }>(
      await remote(
        'authority',
        'activation-object',
        'create',
        '--group',
        'office14',
        '--domain',
        'corp.test',
        '--name',
        'AO1',
      ),
      'activation-object create',
    );
    const localObject = json<Record<string, unknown>>(
      await local(
        'authority',
        'activation-object',
        'create',
        '--group',
        'office14',
        '--domain',
        'corp.test',
        '--name',
        'AO2',
      ),
      'local activation-object create',
    );
    expect(Object.keys(object).sort()).toEqual(Object.keys(localObject).sort());
    expect(JSON.stringify(object)).toContain('corp.test');

    const oemKeys = json<{ publicKeyFile: string; keyId: string }>(
      await runCliInProcess(['oem', 'keygen', '--out', join(dir, 'oem'), '--json']),
      'oem keygen',
    );
    const oemCert = join(dir, 'oem-cert.json');
    const issued = json<{ manufacturer: string; groups: string[] }>(
      await remote(
        ...['authority', 'oem-certificate', 'issue', '--manufacturer', 'Fabrikam PCs'],
        ...['--public-key', oemKeys.publicKeyFile, '--group', 'office14', '--days', '30', '--out', oemCert, '--json'],
      ),
      'oem-certificate issue',
    );
    expect(issued).toMatchObject({ manufacturer: 'Fabrikam PCs', groups: ['office14'] });
    // The certificate file is what a manufacturer uses: `oem mark` takes it.
    ok(
      await runCliInProcess([
        ...['oem', 'mark', '--oem-key', join(dir, 'oem', 'oem-signing-key.pem'), '--certificate', oemCert],
        ...['--group', 'office14', '--hardware-id', 'hw-oem-1', '--out', join(dir, 'marker.json')],
      ]),
      'oem mark',
    );

    const caKeys = json<{ publicKeyFile: string; keyId: string }>(
      await runCliInProcess(['token', 'ca-keygen', '--out', join(dir, 'ca'), '--json']),
      'token ca-keygen',
    );
    const ca = json<{ organisation: string; group: string }>(
      await remote(
        ...['authority', 'token-ca', 'issue', '--group', 'office14', '--organisation', 'Contoso IT'],
        ...['--public-key', caKeys.publicKeyFile, '--days', '30', '--out', join(dir, 'ca-cert.json'), '--json'],
      ),
      'token-ca issue',
    );
    expect(ca).toMatchObject({ organisation: 'Contoso IT', group: 'office14' });

    const revokedOem = json<{ kind: string; subjects: { subject: string }[] }>(
      await remote('authority', 'revoke-manufacturer', oemKeys.keyId, '--reason', 'leaked', '--json'),
      'revoke-manufacturer',
    );
    expect(revokedOem.kind).toBe('manufacturer');
    ok(await remote('authority', 'revoke-token-ca', caKeys.keyId), 'revoke-token-ca');
    const entries = json<{ entries: { kind: string; reason?: string }[] }>(
      await local('authority', 'revocations', '--json'),
      'local revocations',
    ).entries;
    expect(entries.map((e) => e.kind).sort()).toEqual(expect.arrayContaining(['manufacturer', 'tokenCa']));
  });

  it('revocations, root status and online-key rotate read and act on the same key ring', async () => {
    const revocations = json<Record<string, unknown>>(
      await remote('authority', 'revocations', '--json'),
      'revocations',
    );
    expect(revocations).toEqual(json(await local('authority', 'revocations', '--json'), 'local revocations'));
    const unknown = await remote('authority', 'revoke-host', '0f0e0d0c-0b0a-4908-8706-050403020100', '--json');
    expect(unknown.code).toBe(1);
    expect(refusal(unknown).error.code).toBe('REVOCATION_SUBJECT_UNKNOWN');

    const status = ok(await remote('authority', 'root', 'status', '--json'), 'root status');
    expect(JSON.parse(status)).toEqual(JSON.parse(ok(await local('authority', 'root', 'status', '--json'), 'local')));
    const rotated = json<{ onlineKey: { sequence: number } }>(
      await remote('authority', 'online-key', 'rotate', '--json'),
      'online-key rotate',
    );
    const after = json<{ onlineKeys: { sequence: number; state: string }[] }>(
      await local('authority', 'root', 'status', '--json'),
      'local status',
    );
    expect(after.onlineKeys.find((k) => k.state === 'current')?.sequence).toBe(rotated.onlineKey.sequence);
    // Out of order (retire before prepare): the refusal and its next step, as locally.
    const outOfOrder = await remote('authority', 'root', 'rotate', '--step', 'retire', '--json');
    expect(outOfOrder.code).toBe(1);
    expect(refusal(outOfOrder).error).toMatchObject({ code: 'ROOT_ROTATION_OUT_OF_ORDER', nextStep: 'prepare' });
  });

  it('a wrong token is UNAUTHORIZED; an organisation read token cannot mint (SCOPE_MISSING, exit 1)', async () => {
    const wrong = await runCliInProcess([
      ...['authority', 'group', 'list', '--json'],
      ...['--url', url, '--token-file', wrongTokenFile],
    ]);
    expect(wrong.code).toBe(1);
    expect(refusal(wrong).error.code).toBe('UNAUTHORIZED');

    const org = await authority.organisations.create({ name: 'Contoso' }, CLI_PRINCIPAL);
    const { token } = await authority.access.createToken(
      { name: 'contoso-console', scopes: [`org:${org.id}:read`] },
      CLI_PRINCIPAL,
    );
    const orgTokenFile = join(dir, 'org.token');
    writeFileSync(orgTokenFile, token, { mode: 0o600 });
    const asOrg = (...args: string[]) =>
      runCliInProcess([...args, '--json', '--url', url, '--token-file', orgTokenFile]);
    // Minting (into the default organisation, which this token does not see): 404, not 403.
    const mint = await asOrg('authority', 'key', 'mint', '--type', 'mak', '--group', 'office14', '--limit', '5');
    expect(mint.code).toBe(1);
    expect(refusal(mint).error.code).toBe('ORG_NOT_FOUND');
    // Its own organisation's key: it reads it, it cannot raise it (the scope it lacks is named).
    const { key } = await authority.organisations.mintKey(
      org.id,
      { type: 'mak', groups: ['office14'], limit: 5 },
      CLI_PRINCIPAL,
    );
    const raise = await asOrg('authority', 'key', 'raise', key, '--limit', '5000');
    expect(raise.code).toBe(1);
    expect(refusal(raise).error.code).toBe('SCOPE_MISSING');
    expect(refusal(raise).error.message).toContain('publisher:keys');
    expect((await authority.showKey(key)).limit).toBe(5);
    // Nor list the publisher's groups or its revocations.
    expect(refusal(await asOrg('authority', 'group', 'list')).error.code).toBe('SCOPE_MISSING');
    expect(refusal(await asOrg('authority', 'revoke-host', 'hw:x')).error.code).toBe('SCOPE_MISSING');
  });

  it('raise-request create (by the organisation), list and approve (by the publisher) remotely; the organisation cannot approve', async () => {
    const org = await authority.organisations.create({ name: 'Northwind' }, CLI_PRINCIPAL);
    const minted = await authority.organisations.mintKey(
      org.id,
      { type: 'mak', groups: ['office14'], limit: 5 },
      CLI_PRINCIPAL,
    );
    const { token } = await authority.access.createToken(
      { name: 'northwind-requests', scopes: [`org:${org.id}:read`, `org:${org.id}:requests`] },
      CLI_PRINCIPAL,
    );
    const orgToken = join(dir, 'northwind.token');
    writeFileSync(orgToken, token, { mode: 0o600 });
    const asOrg = (...args: string[]) => runCliInProcess([...args, '--json', '--url', url, '--token-file', orgToken]);

    const created = json<{ id: string; state: string; keyLast5: string }>(
      await asOrg(
        ...['authority', 'raise-request', 'create', '--org', org.id, '--key', minted.keyId],
        ...['--additional', '10', '--reason', 'ten more seats'],
      ),
      'raise-request create',
    );
    expect(created).toMatchObject({
      state: 'pending',
      keyLast5: expect.stringContaining(minted.key.slice(-5)) as unknown,
    });
    const seen = json<{ requests: { id: string }[] }>(await asOrg('authority', 'raise-request', 'list'), 'list');
    expect(seen.requests.map((r) => r.id)).toEqual([created.id]);

    const selfApproved = await asOrg('authority', 'raise-request', 'approve', created.id, '--reason', 'ok');
    expect(selfApproved.code).toBe(1);
    expect(refusal(selfApproved).error.code).toBe('SCOPE_MISSING');

    const approved = json<{ state: string; limitBefore: number; limitAfter: number }>(
      await remote('authority', 'raise-request', 'approve', created.id, '--reason', 'granted', '--json'),
      'approve',
    );
    expect(approved).toMatchObject({ state: 'approved', limitBefore: 5, limitAfter: 15 });
    expect((await authority.showKey(minted.key)).limit).toBe(15);
    expect(ok(await remote('authority', 'raise-request', 'list', '--org', org.id, '--json'), 'remote list')).toBe(
      ok(await local('authority', 'raise-request', 'list', '--org', org.id, '--json'), 'local list'),
    );
  });

  it('user, token and webhook verbs remotely: what they make, the data directory lists', async () => {
    const org = await authority.organisations.create({ name: 'Tailspin' }, CLI_PRINCIPAL);
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, 'correct horse battery staple\n', { mode: 0o600 });
    const user = json<{ id: string; email: string; role: string; orgId: string }>(
      await remote(
        ...['authority', 'user', 'add', '--email', 'ops@tailspin.test', '--name', 'Ops'],
        ...['--role', 'org-admin', '--org', org.id, '--password-file', passwordFile, '--json'],
      ),
      'user add',
    );
    expect(user).toMatchObject({ email: 'ops@tailspin.test', role: 'org-admin', orgId: org.id });
    expect(ok(await remote('authority', 'user', 'list', '--org', org.id, '--json'), 'remote user list')).toBe(
      ok(await local('authority', 'user', 'list', '--org', org.id, '--json'), 'local user list'),
    );

    const out = join(dir, 'tailspin.token');
    const made = json<{ info: { id: string; scopes: string[] } }>(
      await remote(
        ...['authority', 'token', 'create', '--name', 'tailspin-console'],
        ...['--scope', `org:${org.id}:read`, '--out', out, '--json'],
      ),
      'token create',
    );
    expect(made.info.scopes).toEqual([`org:${org.id}:read`]);
    const listed = json<{ tokens?: { id: string }[]; items?: { id: string }[] }>(
      await local('authority', 'token', 'list', '--org', org.id, '--json'),
      'local token list',
    );
    expect(JSON.stringify(listed)).toContain(made.info.id);
    // The token made remotely works remotely, for what org:read allows only (not the users: org:users).
    const asTailspin = await runCliInProcess([
      ...['authority', 'user', 'list', '--org', org.id, '--json'],
      ...['--url', url, '--token-file', out],
    ]);
    expect(asTailspin.code).toBe(1);
    expect(refusal(asTailspin).error.code).toBe('SCOPE_MISSING');

    const hook = json<{ endpoint: { id: string; url: string } }>(
      await remote(
        ...['authority', 'webhook', 'add', 'https://hooks.tailspin.example/volact'],
        ...['--event', 'key.usage', '--org', org.id, '--json'],
      ),
      'webhook add',
    );
    expect(hook.endpoint.url).toBe('https://hooks.tailspin.example/volact');
    expect(ok(await remote('authority', 'webhook', 'list', '--org', org.id, '--json'), 'remote webhook list')).toBe(
      ok(await local('authority', 'webhook', 'list', '--org', org.id, '--json'), 'local webhook list'),
    );
    ok(await remote('authority', 'webhook', 'remove', hook.endpoint.id), 'webhook remove');
    expect(ok(await local('authority', 'webhook', 'list', '--org', org.id), 'local')).not.toContain(hook.endpoint.id);
  });

  it('org add/list/show, key mint --org, key list and audit remotely, as the data directory lists them; the remote actor audited', async () => {
    const created = json<{ id: string; name: string; externalRef: string }>(
      await remote('authority', 'org', 'add', '--name', 'Woodgrove Bank', '--external-ref', 'EA-4711', '--json'),
      'org add',
    );
    expect(created).toMatchObject({ name: 'Woodgrove Bank', externalRef: 'EA-4711' });
    expect(ok(await remote('authority', 'org', 'list', '--json'), 'org list')).toBe(
      ok(await local('authority', 'org', 'list', '--json'), 'local org list'),
    );
    expect(ok(await remote('authority', 'org', 'show', created.id), 'org show')).toBe(
      ok(await local('authority', 'org', 'show', created.id), 'local org show'),
    );

    const minted = json<{ key: string; keyId: string; orgId: string }>(
      await remote(
        ...['authority', 'key', 'mint', '--type', 'mak', '--group', 'office14', '--limit', '25'],
        ...['--org', created.id, '--note', 'head office', '--json'],
      ),
      'key mint --org',
    );
    expect(minted.orgId).toBe(created.id);
    for (const format of ['--json', '--csv']) {
      expect(ok(await remote('authority', 'key', 'list', '--org', created.id, format), 'key list')).toBe(
        ok(await local('authority', 'key', 'list', '--org', created.id, format), 'local key list'),
      );
    }
    const remoteAudit = ok(await remote('authority', 'audit', '--org', created.id, '--json'), 'audit');
    expect(remoteAudit).toBe(ok(await local('authority', 'audit', '--org', created.id, '--json'), 'local audit'));
    const rows = (
      JSON.parse(remoteAudit) as { items: { action: string; actor: string | null; keyId: string | null }[] }
    ).items;
    expect(rows.find((r) => r.keyId === minted.keyId)).toMatchObject({ actor: 'admin-token' });
    expect(remoteAudit).not.toContain(minted.key);
    const since = ['--since', '2020-01-01T00:00:00Z', '--action', 'key.', '--json'];
    expect(ok(await remote('authority', 'audit', '--org', created.id, ...since), 'audit --since')).toBe(
      ok(await local('authority', 'audit', '--org', created.id, ...since), 'local audit --since'),
    );
    expect(ok(await remote('authority', 'key', 'list', '--revoked', '--type', 'mak', '--json'), 'revoked')).toBe(
      ok(await local('authority', 'key', 'list', '--revoked', '--type', 'mak', '--json'), 'local revoked'),
    );

    // An organisation read token: its own keys listed, no minting even for itself.
    const { token } = await authority.access.createToken(
      { name: 'woodgrove-read', scopes: [`org:${created.id}:read`] },
      CLI_PRINCIPAL,
    );
    const readToken = join(dir, 'woodgrove.token');
    writeFileSync(readToken, token, { mode: 0o600 });
    const asOrg = (...args: string[]) => runCliInProcess([...args, '--json', '--url', url, '--token-file', readToken]);
    const own = json<{ items: { keyId: string }[] }>(
      await asOrg('authority', 'key', 'list', '--org', created.id),
      'own',
    );
    expect(own.items.map((k) => k.keyId)).toEqual([minted.keyId]);
    const mint = await asOrg(
      ...['authority', 'key', 'mint', '--type', 'mak', '--group', 'office14', '--limit', '5000', '--org', created.id],
    );
    expect(mint.code).toBe(1);
    expect(refusal(mint).error).toMatchObject({
      code: 'SCOPE_MISSING',
      message: expect.stringContaining('publisher:keys'),
    });
    // Its own key's report by the full key (as `key show` on the data directory); not another organisation's.
    const keyFile = join(dir, 'woodgrove.key');
    writeFileSync(keyFile, minted.key, { mode: 0o600 });
    expect(ok(await asOrg('authority', 'key', 'show', '--key-file', keyFile), 'org key show')).toBe(
      ok(await local('authority', 'key', 'show', '--key-file', keyFile, '--json'), 'local key show'),
    );
    const foreign = (
      await authority.organisations.mintKey(DEFAULT_ORG, { type: 'mak', groups: ['office14'], limit: 3 }, CLI_PRINCIPAL)
    ).key;
    const notTheirs = await asOrg('authority', 'key', 'show', foreign);
    expect(notTheirs.code).toBe(1);
    expect(refusal(notTheirs).error.code).toBe('KEY_NOT_FOUND');
    const everyone = await asOrg('authority', 'key', 'list');
    expect(refusal(everyone).error.code).toBe('SCOPE_MISSING');
  });

  it('refuses what cannot work: both targets, none, --url without a token, plain http to another machine, nobody there', async () => {
    const both = await runCliInProcess([
      ...['authority', 'group', 'list', '--json', '--data-dir', data],
      ...['--url', url, '--token-file', tokenFile],
    ]);
    expect(refusal(both).error.code).toBe('OPTION_INVALID');
    const none = await runCliInProcess(['authority', 'group', 'list', '--json']);
    expect(refusal(none).error).toMatchObject({
      code: 'OPTION_INVALID',
      message: expect.stringContaining('--data-dir'),
    });
    const noToken = await runCliInProcess(['authority', 'group', 'list', '--json', '--url', url]);
    expect(refusal(noToken).error).toMatchObject({
      code: 'OPTION_INVALID',
      message: expect.stringContaining('--token-file'),
    });
    const clear = await runCliInProcess([
      ...['authority', 'group', 'list', '--json'],
      ...['--url', 'http://authority.example.com', '--token-file', tokenFile],
    ]);
    expect(clear.code).toBe(1);
    expect(refusal(clear).error.code).toBe('AUTHORITY_URL_INVALID');

    const port = await freePort();
    const down = await runCliInProcess([
      ...['authority', 'root', 'status', '--json'],
      ...['--url', `http://127.0.0.1:${port}`, '--token-file', tokenFile],
    ]);
    expect(down.code).toBe(3); // retry later, as for an authority whose database is down
    expect(refusal(down).error).toMatchObject({
      code: 'AUTHORITY_UNREACHABLE',
      message: expect.stringContaining(`127.0.0.1:${port}`),
    });
    expect(down.stdout).not.toContain(ADMIN_TOKEN);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(a && typeof a !== 'string' ? a.port : 0));
    });
  });
}
