import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HOUR } from '@volact/core';
import { startTestSlapd, type TestSlapd } from '@volact/directory/testing';
import { cliExpectations, runCliInProcess } from './cli-in-process.js';
import { forbidNetwork } from './no-network.js';

/**
 * Token-based activation (reference: "for specific situations when approved customers rely on a
 * public key infrastructure in an isolated and high-security environment"), and the activation
 * type (the reference's /act-type). The publisher certifies the organisation's issuing CA for a
 * group; the CA issues per-machine tokens and CRLs, files carried into the isolated network.
 */
let dir: string;
let now = Date.UTC(2026, 10, 25, 9);
const path = (...p: string[]) => join(dir, ...p);
const cli = (args: string[]) => runCliInProcess(args, { now: () => now });

/** Each state directory's machine: its hardware id, given at every `client` command (as a machine reads its own). */
const machines = new Map<string, string>();
const { ok, json, refused } = cliExpectations({ now: () => now, anyFailureExit: true, machines });

interface Status {
  state: string;
  method: string | null;
  expiresAt: string | null;
  actType: string;
  token: { serial: string | null; organisation: string | null; notAfter: string | null; code: string | null } | null;
  crl: { issuedAt: string; nextUpdate: string; stale: boolean; revoked: number } | null;
  lastAttempt: { via?: string; code?: string } | null;
}

async function publisher(name: string): Promise<string> {
  await ok('authority', 'init', '--data-dir', path(name));
  await ok('authority', 'group', 'add', '--data-dir', path(name), '--name', 'office14', '--threshold', '1');
  await ok('authority', 'group', 'add', '--data-dir', path(name), '--name', 'visio14');
  const product = path(`${name}-product.json`);
  writeFileSync(product, await ok('authority', 'product-config', '--data-dir', path(name), '--group', 'office14'));
  return product;
}

interface Ca {
  key: string;
  cert: string;
}
/** An organisation's issuing CA: its key pair, certified by `authority` for `group`. */
async function issuingCa(name: string, authority: string, group: string): Promise<Ca> {
  await ok('token', 'ca-keygen', '--out', path(name));
  const cert = path(`${name}-ca-cert.json`);
  await ok(
    'authority',
    'token-ca',
    'issue',
    '--data-dir',
    path(authority),
    '--group',
    group,
    '--organisation',
    name,
    '--public-key',
    path(name, 'ca-public-key.pem'),
    '--out',
    cert,
  );
  return { key: path(name, 'ca-signing-key.pem'), cert };
}

async function issue(
  ca: Ca,
  hardwareId: string,
  days: number,
  out = path(`token-${hardwareId}.json`),
  ...extra: string[]
) {
  const t = await json<{ serial: string; notAfter: string }>(
    'token',
    'issue',
    '--ca-key',
    ca.key,
    '--ca-cert',
    ca.cert,
    '--hardware-id',
    hardwareId,
    '--days',
    String(days),
    '--out',
    out,
    ...extra,
  );
  return { ...t, file: out };
}

const client = async (name: string, hardwareId = `hw-${name}`) => {
  await ok('client', 'init', '--state-dir', path(name), '--product', product, '--hardware-id', hardwareId);
  return path(name);
};

let product: string;
let fabrikam: Ca;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volact-token-'));
  product = await publisher('publisher');
  fabrikam = await issuingCa('fabrikam', 'publisher', 'office14');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('token-based activation (offline PKI)', () => {
  it('a valid token licenses: method token, until its notAfter; checked with no network', async () => {
    const c = await client('t1');
    const token = await issue(fabrikam, 'hw-t1', 90);
    const guard = forbidNetwork();
    try {
      const s = await json<Status>('client', 'install-token', '--state-dir', c, token.file);
      expect(s).toMatchObject({
        state: 'licensed',
        method: 'token',
        expiresAt: token.notAfter,
        token: { serial: token.serial, organisation: 'fabrikam', code: null },
      });
      expect(await json<{ ok: boolean; method: string }>('client', 'activate', '--state-dir', c)).toMatchObject({
        ok: true,
        method: 'token',
      });
      expect(guard.attempts).toEqual([]);
    } finally {
      guard.restore();
    }
  });

  it('expired: refused with TOKEN_EXPIRED; an installed token that ends runs into out-of-tolerance, then notification', async () => {
    const c = await client('t2');
    const token = await issue(fabrikam, 'hw-t2', 1);
    const start = now;
    try {
      now = start + 2 * DAY;
      expect((await refused('client', 'install-token', '--state-dir', c, token.file)).code).toBe('TOKEN_EXPIRED');
      now = start;
      await ok('client', 'install-token', '--state-dir', c, token.file);
      now = start + DAY + HOUR;
      expect(await json<Status>('client', 'status', '--state-dir', c)).toMatchObject({
        state: 'out-of-tolerance',
        token: { code: 'TOKEN_EXPIRED' },
      });
      await ok('client', 'set-act-type', '--state-dir', c, 'token');
      expect(await refused('client', 'activate', '--state-dir', c)).toMatchObject({ code: 'TOKEN_EXPIRED' });
      now = start + 32 * DAY;
      expect((await json<Status>('client', 'status', '--state-dir', c)).state).toBe('notification');
    } finally {
      now = start;
    }
  });

  it('revoked: a CRL listing the serial ends the licence (TOKEN_REVOKED); an older CRL is refused; a stale one still applies', async () => {
    const start = now;
    const empty = path('crl-0.json');
    try {
      now = start - HOUR;
      await ok('token', 'revoke', '--ca-key', fabrikam.key, '--ca-cert', fabrikam.cert, '--crl', empty, '--out', empty);
      now = start;
      const c = await client('t3');
      const token = await issue(fabrikam, 'hw-t3', 90);
      await ok('client', 'install-token', '--state-dir', c, token.file, '--crl', empty);
      expect((await json<Status>('client', 'status', '--state-dir', c)).state).toBe('licensed');
      const crl = path('crl-1.json');
      await ok(
        'token',
        'revoke',
        '--ca-key',
        fabrikam.key,
        '--ca-cert',
        fabrikam.cert,
        '--crl',
        empty,
        '--serial',
        token.serial,
        '--out',
        crl,
      );
      const s = await json<Status>('client', 'install-crl', '--state-dir', c, crl);
      // Seen revoked: the token's licence is dropped from the store (a CRL rollback cannot bring it back).
      expect(s).toMatchObject({
        state: 'initial-grace',
        method: null,
        token: null,
        lastAttempt: { code: 'TOKEN_REVOKED' },
      });
      expect(s.crl).toMatchObject({ revoked: 1, stale: false });
      expect((await refused('client', 'install-crl', '--state-dir', c, empty)).code).toBe('CRL_OUTDATED');
      // A fresh machine given the token and the CRL together refuses it.
      const c2 = await client('t3b', 'hw-t3');
      expect((await refused('client', 'install-token', '--state-dir', c2, token.file, '--crl', crl)).code).toBe(
        'TOKEN_REVOKED',
      );
      // Past its next update (30 days) the CRL is flagged stale and still applies.
      now = start + 31 * DAY;
      expect(await json<Status>('client', 'status', '--state-dir', c)).toMatchObject({
        crl: { stale: true },
        token: null,
        method: null,
      });
      // A stale CRL still applies: the same token installed again is refused.
      expect((await refused('client', 'install-token', '--state-dir', c, token.file)).code).toBe('TOKEN_REVOKED');
    } finally {
      now = start;
    }
  });

  it('a revocation survives edits of licence.json: deleting the CRL or pasting an older one never licenses a revoked token', async () => {
    const start = now;
    const empty = path('crl-edit-0.json');
    try {
      now = start - HOUR;
      await ok('token', 'revoke', '--ca-key', fabrikam.key, '--ca-cert', fabrikam.cert, '--out', empty);
      now = start;
      const c = await client('t-edit');
      const file = path('t-edit', 'licence.json');
      const read = () =>
        JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> & {
          crls: Record<string, string>;
          revoked: Record<string, string[]>;
        };
      const statusOf = async () => json<Status>('client', 'status', '--state-dir', c);
      const token = await issue(fabrikam, 'hw-t-edit', 90, path('token-edit.json'), '--require-crl');
      // A token that requires a CRL is refused without one, and licenses with one.
      expect((await refused('client', 'install-token', '--state-dir', c, token.file)).code).toBe('TOKEN_CRL_REQUIRED');
      await ok('client', 'install-token', '--state-dir', c, token.file, '--crl', empty);
      const licensed = read();
      expect((await statusOf()).state).toBe('licensed');

      // The CRL deleted from the store: a token that requires one is no longer licensed.
      expect(Object.values(licensed.crls)).toEqual([readFileSync(empty, 'utf8')]);
      writeFileSync(file, JSON.stringify({ ...licensed, crls: {} }));
      expect(await statusOf()).toMatchObject({
        state: 'initial-grace',
        method: null,
        token: { code: 'TOKEN_CRL_REQUIRED' },
      });

      // Revoked: the licence is dropped from the store at once.
      const crl = path('crl-edit-1.json');
      await ok(
        'token',
        'revoke',
        '--ca-key',
        fabrikam.key,
        '--ca-cert',
        fabrikam.cert,
        '--crl',
        empty,
        '--serial',
        token.serial,
        '--out',
        crl,
      );
      writeFileSync(file, JSON.stringify(licensed));
      await ok('client', 'install-crl', '--state-dir', c, crl);
      const revoked = read();
      expect(revoked.activation).toBeNull();
      expect(Object.values(revoked.revoked)).toEqual([[token.serial]]);
      // The attacks of the issue: the CRL deleted, or the older CRL pasted, in the store.
      const [ca] = Object.keys(revoked.crls);
      writeFileSync(file, JSON.stringify({ ...revoked, crls: {} }));
      expect(await statusOf()).toMatchObject({ state: 'initial-grace', method: null });
      writeFileSync(file, JSON.stringify({ ...revoked, crls: { [ca!]: readFileSync(empty, 'utf8') } }));
      expect(await statusOf()).toMatchObject({ state: 'initial-grace', method: null });
      // The token pasted back with the CRL deleted: seen revoked, so dropped again.
      writeFileSync(file, JSON.stringify({ ...revoked, activation: licensed.activation, crls: {} }));
      expect(await statusOf()).toMatchObject({
        state: 'initial-grace',
        method: null,
        token: null,
        lastAttempt: { code: 'TOKEN_REVOKED' },
      });
      // ... and with the record of revoked serials deleted too: it requires a CRL, so not licensed.
      writeFileSync(file, JSON.stringify({ ...revoked, activation: licensed.activation, crls: {}, revoked: {} }));
      expect(await statusOf()).toMatchObject({
        state: 'initial-grace',
        method: null,
        token: { code: 'TOKEN_CRL_REQUIRED' },
      });
      // A store of the format before per-CA CRLs (one `crl`) still reads: its CRL is moved in.
      writeFileSync(
        file,
        JSON.stringify({ ...licensed, crls: undefined, revoked: undefined, crl: readFileSync(crl, 'utf8') }),
      );
      expect(await statusOf()).toMatchObject({
        state: 'initial-grace',
        token: null,
        lastAttempt: { code: 'TOKEN_REVOKED' },
      });
      // The token pasted back with the revoking CRL: dropped again.
      writeFileSync(file, JSON.stringify({ ...revoked, activation: licensed.activation }));
      expect(await statusOf()).toMatchObject({
        state: 'initial-grace',
        token: null,
        lastAttempt: { code: 'TOKEN_REVOKED' },
      });
      expect(read().activation).toBeNull();
    } finally {
      now = start;
    }
  });

  it("a revocation survives the CLI verbs: another CA's CRL, the CA's own older CRL given with the token, reset", async () => {
    const start = now;
    try {
      const contoso = await issuingCa('contoso', 'publisher', 'office14');
      const crl = (ca: Ca, name: string, ...extra: string[]) =>
        ok('token', 'revoke', '--ca-key', ca.key, '--ca-cert', ca.cert, '--out', path(name), ...extra).then(() =>
          path(name),
        );
      now = start - HOUR;
      const x0 = await crl(fabrikam, 'crl-verbs-x0.json');
      const y0 = await crl(contoso, 'crl-verbs-y0.json');
      now = start;
      const c = await client('t-verbs');
      // A token of CA X without --require-crl, licensed, then revoked by X: its licence is dropped.
      const token = await issue(fabrikam, 'hw-t-verbs', 90, path('token-verbs.json'));
      await ok('client', 'install-token', '--state-dir', c, token.file, '--crl', x0);
      const x1 = await crl(fabrikam, 'crl-verbs-x1.json', '--crl', x0, '--serial', token.serial);
      expect(await json<Status>('client', 'install-crl', '--state-dir', c, x1)).toMatchObject({
        method: null,
        lastAttempt: { code: 'TOKEN_REVOKED' },
      });
      // The CRL of another CA certified for the same group is kept beside X's, not instead of it.
      now = start + HOUR;
      await ok('client', 'install-crl', '--state-dir', c, y0);
      const store = JSON.parse(readFileSync(path('t-verbs', 'licence.json'), 'utf8')) as {
        crls: Record<string, string>;
      };
      expect(Object.values(store.crls).sort()).toEqual([readFileSync(x1, 'utf8'), readFileSync(y0, 'utf8')].sort());
      // The revoked token installed again: refused, with or without X's CRL from before the revocation.
      expect((await refused('client', 'install-token', '--state-dir', c, token.file)).code).toBe('TOKEN_REVOKED');
      expect((await refused('client', 'install-token', '--state-dir', c, token.file, '--crl', x0)).code).toBe(
        'CRL_OUTDATED',
      );
      expect((await refused('client', 'install-crl', '--state-dir', c, x0)).code).toBe('CRL_OUTDATED');
      // X's next CRL, after the serial was dropped from it (it ended, or by mistake): still revoked here.
      const x2 = await crl(fabrikam, 'crl-verbs-x2.json');
      await ok('client', 'install-crl', '--state-dir', c, x2);
      expect((await refused('client', 'install-token', '--state-dir', c, token.file)).code).toBe('TOKEN_REVOKED');
      expect((await json<Status>('client', 'status', '--state-dir', c)).method).toBeNull();
      // reset refuses a store that still reads, naming the fix.
      const error = await refused('client', 'reset', '--state-dir', c, '--product', product);
      expect(error.code).toBe('CLIENT_EXISTS');
      expect(error.message).toMatch(/not damaged.*set-product/);
      // A damaged store reset: its CRLs and the serials seen revoked are carried over.
      const file = path('t-verbs', 'licence.json');
      writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), installedKey: 42 }));
      await ok('client', 'reset', '--state-dir', c, '--product', product);
      expect(Object.keys((JSON.parse(readFileSync(file, 'utf8')) as { crls: object }).crls)).toHaveLength(2);
      expect((await refused('client', 'install-token', '--state-dir', c, token.file)).code).toBe('TOKEN_REVOKED');
      // Another token of X (not revoked) still licenses: revocation is per serial and per CA.
      const other = await issue(fabrikam, 'hw-t-verbs', 90, path('token-verbs-2.json'));
      expect(await json<Status>('client', 'install-token', '--state-dir', c, other.file)).toMatchObject({
        state: 'licensed',
        method: 'token',
        crl: { issuedAt: new Date(now).toISOString() },
      });
    } finally {
      now = start;
    }
  });

  it('a token that requires a CRL requires a current one: past its next update, not licensed until a newer one is installed', async () => {
    const start = now;
    try {
      const first = path('crl-fresh-0.json');
      await ok('token', 'revoke', '--ca-key', fabrikam.key, '--ca-cert', fabrikam.cert, '--out', first);
      const c = await client('t-fresh');
      const token = await issue(fabrikam, 'hw-t-fresh', 90, path('token-fresh.json'), '--require-crl');
      await ok('client', 'install-token', '--state-dir', c, token.file, '--crl', first);
      expect((await json<Status>('client', 'status', '--state-dir', c)).state).toBe('licensed');
      // 31 days on, the CRL (next update in 30 days) is stale: a CRL from before a revocation,
      // pasted back with the token, would license no longer than this either.
      now = start + 31 * DAY;
      expect(await json<Status>('client', 'status', '--state-dir', c)).toMatchObject({
        state: 'notification',
        method: null,
        crl: { stale: true },
        token: { code: 'TOKEN_CRL_REQUIRED' },
      });
      await ok('client', 'set-act-type', '--state-dir', c, 'token');
      expect((await refused('client', 'activate', '--state-dir', c)).code).toBe('TOKEN_CRL_REQUIRED');
      const second = path('crl-fresh-1.json');
      await ok(
        'token',
        'revoke',
        '--ca-key',
        fabrikam.key,
        '--ca-cert',
        fabrikam.cert,
        '--crl',
        first,
        '--out',
        second,
      );
      expect(await json<Status>('client', 'install-crl', '--state-dir', c, second)).toMatchObject({
        state: 'licensed',
        method: 'token',
        token: { code: null },
      });
    } finally {
      now = start;
    }
  });

  it('wrong CA: a token of a CA another publisher certified is refused with TOKEN_CA_UNTRUSTED', async () => {
    await publisher('other-publisher');
    const rogue = await issuingCa('rogue', 'other-publisher', 'office14');
    const c = await client('t4');
    const token = await issue(rogue, 'hw-t4', 30);
    expect((await refused('client', 'install-token', '--state-dir', c, token.file)).code).toBe('TOKEN_CA_UNTRUSTED');
  });

  it('wrong group: a token of a CA certified for another group is refused with TOKEN_GROUP_MISMATCH', async () => {
    const visio = await issuingCa('visio-ca', 'publisher', 'visio14');
    const c = await client('t5');
    const token = await issue(visio, 'hw-t5', 30);
    expect((await refused('client', 'install-token', '--state-dir', c, token.file)).code).toBe('TOKEN_GROUP_MISMATCH');
  });

  it("another machine's token is refused with TOKEN_HARDWARE_MISMATCH", async () => {
    const c = await client('t6');
    const token = await issue(fabrikam, 'hw-somewhere-else', 30);
    expect((await refused('client', 'install-token', '--state-dir', c, token.file)).code).toBe(
      'TOKEN_HARDWARE_MISMATCH',
    );
  });
});

describe('activation type (the reference: /act-type)', () => {
  let connections = 0;
  let kms: Server;
  let kmsAddress: string;
  let slapd: TestSlapd;

  beforeAll(async () => {
    kms = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => kms.listen(0, '127.0.0.1', resolve));
    kmsAddress = `127.0.0.1:${(kms.address() as AddressInfo).port}`;
    slapd = await startTestSlapd();
    writeFileSync(path('member.pw'), slapd.userPassword);
    writeFileSync(path('admin.pw'), slapd.adminPassword);
    const object = await ok(
      'authority',
      'activation-object',
      'create',
      '--data-dir',
      path('publisher'),
      '--group',
      'office14',
      '--domain',
      'corp.test',
      '--name',
      'office14-corp',
    );
    writeFileSync(path('ao.json'), object);
    await ok(
      'directory',
      'publish',
      '--url',
      slapd.url,
      '--bind-dn',
      slapd.adminDn,
      '--password-file',
      path('admin.pw'),
      '--base',
      slapd.base,
      path('ao.json'),
    );
  }, 60_000);
  afterAll(async () => {
    await new Promise((resolve) => kms.close(resolve));
    await slapd?.stop();
  });

  const join_ = (c: string) =>
    ok(
      'client',
      'join-domain',
      '--state-dir',
      c,
      '--url',
      slapd.url,
      '--domain',
      'corp.test',
      '--base',
      slapd.base,
      '--bind-dn',
      slapd.userDn,
      '--password-file',
      path('member.pw'),
    );

  it('act-type token refuses a KMS host (ACT_TYPE_FORBIDS, never connected); the token alone activates', async () => {
    const c = await client('a1');
    await ok('client', 'set-host', '--state-dir', c, kmsAddress);
    expect(await json<{ actType: string }>('client', 'set-act-type', '--state-dir', c, 'token')).toEqual({
      actType: 'token',
    });
    const before = connections;
    const outcome = await refused('client', 'activate', '--state-dir', c);
    expect(outcome.code).toBe('ACT_TYPE_FORBIDS');
    expect(outcome.message).toContain(kmsAddress);
    expect((await json<Status>('client', 'status', '--state-dir', c)).actType).toBe('token');
    const token = await issue(fabrikam, 'hw-a1', 30);
    await ok('client', 'install-token', '--state-dir', c, token.file);
    expect(await json<{ ok: boolean; method: string }>('client', 'activate', '--state-dir', c)).toMatchObject({
      ok: true,
      method: 'token',
    });
    expect(connections).toBe(before);
    // Without the type, the same client asks the host (the check above is not vacuous).
    const plain = await client('a1-plain');
    await ok('client', 'set-host', '--state-dir', plain, kmsAddress);
    await cli(['client', 'activate', '--state-dir', plain, '--json']);
    expect(connections).toBeGreaterThan(before);
  });

  it('act-type kms ignores a directory object (the host is asked instead); act-type any activates from it', async () => {
    const any = await client('a2');
    await join_(any);
    expect(await json<{ ok: boolean; method: string }>('client', 'activate', '--state-dir', any)).toMatchObject({
      ok: true,
      method: 'directory',
    });
    const kmsOnly = await client('a3');
    await join_(kmsOnly);
    await ok('client', 'set-host', '--state-dir', kmsOnly, kmsAddress);
    await ok('client', 'set-act-type', '--state-dir', kmsOnly, 'kms');
    const before = connections;
    const outcome = await refused('client', 'activate', '--state-dir', kmsOnly);
    expect(outcome.code).toMatch(/^KMS_/);
    expect(connections).toBeGreaterThan(before);
    expect(await json<Status>('client', 'status', '--state-dir', kmsOnly)).toMatchObject({
      actType: 'kms',
      method: null,
      state: 'initial-grace',
      lastAttempt: { via: 'manual' },
    });
    // Tokens are not for a kms-only installation either.
    const token = await issue(fabrikam, 'hw-a3', 30);
    expect((await refused('client', 'install-token', '--state-dir', kmsOnly, token.file)).code).toBe(
      'ACT_TYPE_FORBIDS',
    );
  });

  it('act-type directory: the directory only; no KMS host is asked', async () => {
    const c = await client('a4');
    await ok('client', 'set-host', '--state-dir', c, kmsAddress);
    await ok('client', 'set-act-type', '--state-dir', c, 'directory');
    const before = connections;
    expect((await refused('client', 'activate', '--state-dir', c)).code).toBe('ACT_TYPE_FORBIDS');
    await join_(c);
    expect(await json<{ ok: boolean; method: string }>('client', 'activate', '--state-dir', c)).toMatchObject({
      ok: true,
      method: 'directory',
    });
    expect(connections).toBe(before);
    const bad = await cli(['client', 'set-act-type', '--state-dir', c, 'phone']);
    expect(bad.stderr).toMatch(/OPTION_INVALID: expected one of any, directory, kms, token/);
  });
});
