import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DAY,
  HOUR,
  ManualClock,
  REVOCATION_LIST_LIFETIME,
  decodeHostCertificate,
  decodeHostStatus,
  decodeRevocationList,
  generateSigningKeyPair,
  hostKeyRefOf,
  hostStatusReplySchema,
  isRevoked,
  keyIdOf,
  makeInstallationId,
  parseKey,
  revocationSubjectOfKeyId,
  revocationsReplySchema,
  verifyHostStatus,
  verifyRevocationList,
} from '@volact/core';
import { Authority } from './authority.js';
import { AuthorityError } from './errors.js';
import { createAuthorityServer } from './http.js';
import { PostgresAuthorityStore } from './postgres-store.js';
import { startTestPostgres, type TestPostgres } from './postgres-test-server.js';
import { SqliteAuthorityStore } from './sqlite-store.js';

let postgres: TestPostgres;
const dirs: string[] = [];
beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);
afterAll(() => {
  postgres?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'volact-revocations-'));
  dirs.push(d);
  return d;
};

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    if (err instanceof AuthorityError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
};

interface Engine {
  /** A new authority (its own data directory and database); `open` gives another node on the same ones. */
  make(clock: ManualClock): Promise<{ authority: Authority; open: () => Authority }>;
}
const engines: [string, Engine][] = [
  [
    'sqlite',
    {
      async make(clock) {
        const dir = join(tempDir(), 'a');
        return { authority: Authority.init(dir, { clock }), open: () => Authority.open(dir, { clock }) };
      },
    },
  ],
  [
    'postgres',
    {
      async make(clock) {
        const dir = join(tempDir(), 'a');
        const databaseUrl = await postgres.createDatabase();
        return {
          authority: Authority.init(dir, { clock, databaseUrl }),
          open: () => Authority.open(dir, { clock, databaseUrl }),
        };
      },
    },
  ],
];

describe.each(engines)('revocation at the authority (%s)', (_name, engine) => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1));
  let authority: Authority;
  let open: () => Authority;
  let hostKey: string;
  let hostKeyId: string;

  beforeAll(async () => {
    ({ authority, open } = await engine.make(clock));
    await authority.addGroup({ name: 'office14' });
    const minted = await authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 50 });
    hostKey = minted.key;
    hostKeyId = minted.keyId;
  });
  afterAll(async () => {
    await authority.close();
  });

  let hostCount = 0;
  const activate = async (key = hostKey) => {
    const publicKey = generateSigningKeyPair().publicKeyRaw;
    const hardwareId = `hw-${++hostCount}`;
    const result = await authority.activateHost({ hostKey: key, hostPublicKey: publicKey, hardwareId });
    return { publicKey, hardwareId, result, ref: hostKeyRefOf(publicKey) };
  };
  const listOf = async (a = authority) => {
    const report = await a.revocationList();
    return { report, list: decodeRevocationList(report.encoded) };
  };

  it('revoking a host by its certificate serial lists its host key in a new version, signed by the root', async () => {
    const host = await activate();
    const before = await listOf();
    const serial = decodeHostCertificate(host.result.certificate).serial;
    const revoked = await authority.revokeHost(serial, { reason: 'key leaked', actor: 'test' });
    expect(revoked).toMatchObject({ kind: 'host', alreadyRevoked: false, listVersion: before.list.listVersion + 1 });
    expect(revoked.subjects).toEqual([
      { subject: host.ref.toString('hex'), hostKeyId, hostRecord: expect.any(String), alreadyRevoked: false },
    ]);
    const after = await listOf();
    expect(after.list.listVersion).toBe(before.list.listVersion + 1);
    expect(verifyRevocationList(after.list, authority.rootPublicKeyRaw)).toBe(true);
    expect(verifyRevocationList(after.list, generateSigningKeyPair().publicKeyRaw)).toBe(false);
    expect(after.list.issuerKeyId).toEqual(keyIdOf(authority.rootPublicKeyRaw));
    expect(isRevoked(after.list, 'host', host.ref)?.revokedAt).toBe(clock.now());
    expect(after.list.issuedAt).toBe(clock.now());
    expect(after.list.nextUpdate).toBe(clock.now() + REVOCATION_LIST_LIFETIME);
    expect(after.report.entries).toContainEqual({
      kind: 'host',
      subject: host.ref.toString('hex'),
      revokedAt: new Date(clock.now()).toISOString(),
      reason: 'key leaked',
    });
    // The audit row: who, what, why; no key.
    const audit = (await authority.recentAudit(5)).find((a) => a.action === 'revocation.host');
    expect(audit?.detail).toContain('by test');
    expect(audit?.detail).toContain(host.ref.toString('hex'));
    expect(audit?.detail).toContain('key leaked');
    expect(JSON.stringify(audit)).not.toContain(hostKey);
  });

  it('revoking twice is idempotent: same entry, no new version, says already revoked', async () => {
    const host = await activate();
    const first = await authority.revokeHost(host.ref.toString('hex'));
    const second = await authority.revokeHost(host.ref.toString('hex'), { reason: 'again' });
    expect(second.alreadyRevoked).toBe(true);
    expect(second.subjects[0]?.alreadyRevoked).toBe(true);
    expect(second.listVersion).toBe(first.listVersion);
    const { list } = await listOf();
    expect(list.listVersion).toBe(first.listVersion);
    expect(list.entries.filter((e) => e.subject.equals(host.ref))).toHaveLength(1);
  });

  it('revoking a KMS host key ID revokes every host it activated, in one version', async () => {
    const { key, keyId } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
    const a = await activate(key);
    const b = await activate(key);
    const before = (await listOf()).list.listVersion;
    const revoked = await authority.revokeHost(keyId.toUpperCase());
    expect(revoked.listVersion).toBe(before + 1);
    expect(revoked.subjects.map((s) => s.subject).sort()).toEqual(
      [a.ref.toString('hex'), b.ref.toString('hex')].sort(),
    );
    const { list } = await listOf();
    expect(isRevoked(list, 'host', a.ref)).not.toBeNull();
    expect(isRevoked(list, 'host', b.ref)).not.toBeNull();
    // The key itself is not revoked: the answer says so (revoke-host-key.test.ts has the rest).
    expect(revoked.kmsHostKey).toMatchObject({ keyId, keyRevoked: false });
    await authority.revokeKey(key);
    expect((await authority.revokeHost(keyId)).kmsHostKey).toMatchObject({ keyRevoked: true });
    const both = await authority.revokeHost(keyId, { alsoRevokeKey: true });
    expect(both).toMatchObject({ alreadyRevoked: true, kmsHostKey: { keyRevoked: true, stopNewActivations: null } });
  });

  it('revoking a host record (hw:…, as key show lists it) revokes that host only', async () => {
    const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
    const a = await activate(key);
    const b = await activate(key);
    const report = await authority.showKey(key);
    const record = report.activations[0];
    if (!record || !('hardwareId' in record)) throw new Error('expected a host');
    const revoked = await authority.revokeHost(record.hardwareId.toUpperCase().replace('HW:', 'hw:'));
    expect(revoked.subjects).toHaveLength(1);
    const { list } = await listOf();
    const listed = [a, b].filter((h) => isRevoked(list, 'host', h.ref) !== null);
    expect(listed).toHaveLength(1);
    expect((await codeOf(authority.revokeHost('hw:0000000000000000'))).code).toBe('REVOCATION_SUBJECT_UNKNOWN');
  });

  it('an unknown serial, key ID or host key reference is REVOCATION_SUBJECT_UNKNOWN naming what was looked for; junk is REQUEST_INVALID', async () => {
    const version = (await listOf()).list.listVersion;
    const unknown = '0f0e0d0c-0b0a-4908-8706-050403020100';
    const err = await codeOf(authority.revokeHost(unknown));
    expect(err.code).toBe('REVOCATION_SUBJECT_UNKNOWN');
    expect(err.httpStatus).toBe(404);
    expect(err.message).toContain(unknown);
    expect(err.message).toMatch(/serial/);
    const ref = 'ab'.repeat(16);
    expect((await codeOf(authority.revokeHost(ref))).message).toContain(ref);
    const junk = await codeOf(authority.revokeHost('not-a-host'));
    expect(junk.code).toBe('REQUEST_INVALID');
    expect(junk.message).toMatch(/GUID.*32 hex digits/);
    const badKeyId = await codeOf(authority.revokeManufacturer('12345'));
    expect(badKeyId.code).toBe('REQUEST_INVALID');
    expect(badKeyId.message).toContain('16 hex digits');
    expect((await listOf()).list.listVersion).toBe(version);
  });

  it('OEM manufacturer and token-CA key IDs are listed as key ID + 8 zero bytes', async () => {
    const oem = keyIdOf(generateSigningKeyPair().publicKeyRaw);
    const ca = keyIdOf(generateSigningKeyPair().publicKeyRaw);
    const m = await authority.revokeManufacturer(oem.toString('hex').toUpperCase());
    const t = await authority.revokeTokenCa(ca.toString('hex'));
    expect(t.listVersion).toBe(m.listVersion + 1);
    expect((await authority.revokeTokenCa(ca.toString('hex'))).alreadyRevoked).toBe(true);
    const { list } = await listOf();
    expect(isRevoked(list, 'manufacturer', revocationSubjectOfKeyId(oem))).not.toBeNull();
    expect(isRevoked(list, 'tokenCa', revocationSubjectOfKeyId(ca))).not.toBeNull();
    // Kinds are separate: the manufacturer's key ID is not a token CA.
    expect(isRevoked(list, 'tokenCa', revocationSubjectOfKeyId(oem))).toBeNull();
  });

  it('a good host gets a status for its host key, signed by the root, until the list ends', async () => {
    const host = await activate();
    const answer = await authority.hostStatus(host.result.certificate);
    const status = decodeHostStatus(answer.status);
    const list = decodeRevocationList(answer.list);
    expect(verifyHostStatus(status, authority.rootPublicKeyRaw)).toBe(true);
    expect(verifyRevocationList(list, authority.rootPublicKeyRaw)).toBe(true);
    expect(status.hostKeyRef).toEqual(host.ref);
    expect(status.listVersion).toBe(list.listVersion);
    expect(status.nextUpdate).toBe(list.nextUpdate);
    expect(status.issuedAt).toBe(clock.now());
    expect(isRevoked(list, 'host', host.ref)).toBeNull();
  });

  it('a revoked host gets no status (HOST_REVOKED, 403) and no renewal, online or by a new certificate', async () => {
    const host = await activate();
    await authority.revokeHost(decodeHostCertificate(host.result.certificate).serial, { reason: 'stolen' });
    const status = await codeOf(authority.hostStatus(host.result.certificate));
    expect(status.code).toBe('HOST_REVOKED');
    expect(status.httpStatus).toBe(403);
    const renewal = await codeOf(
      authority.activateHost({ hostKey, hostPublicKey: host.publicKey, hardwareId: host.hardwareId }),
    );
    expect(renewal.code).toBe('HOST_REVOKED');
    expect(renewal.message).toContain(host.ref.toString('hex'));
    // The same key pair on another machine is the same revoked key.
    expect(
      (await codeOf(authority.activateHost({ hostKey, hostPublicKey: host.publicKey, hardwareId: 'hw-other' }))).code,
    ).toBe('HOST_REVOKED');
    const audit = await authority.recentAudit(3);
    expect(audit.some((a) => a.action === 'host.activate' && a.result === 'HOST_REVOKED')).toBe(true);
  });

  it('a revoked host key is not certified again by phone either', async () => {
    const host = await activate();
    await authority.revokeHost(host.ref.toString('hex'));
    const group = await authority.group('office14');
    const iid = makeInstallationId({
      kind: 'kms-host',
      key: parseKey(hostKey),
      hardwareId: 'kms-by-phone',
      groupIds: [group.id],
      hostPublicKey: host.publicKey,
    });
    const err = await codeOf(authority.confirm(iid.text));
    expect(err.code).toBe('HOST_REVOKED');
    const audit = await authority.recentAudit(1);
    expect(audit[0]).toMatchObject({ action: 'confirm', result: 'HOST_REVOKED' });
  });

  it('re-issues the list lazily when it is older than a day: new version, nextUpdate moved', async () => {
    const before = (await listOf()).list;
    clock.advance(23 * HOUR);
    expect((await listOf()).list.listVersion).toBe(before.listVersion); // less than a day: the same list
    clock.advance(2 * HOUR);
    const after = (await listOf()).list;
    expect(after.listVersion).toBe(before.listVersion + 1);
    expect(after.issuedAt).toBe(clock.now());
    expect(after.nextUpdate).toBe(clock.now() + REVOCATION_LIST_LIFETIME);
    expect(after.entries).toEqual(before.entries);
    expect((await listOf()).list.listVersion).toBe(after.listVersion); // once, not at every request
  });

  it('a second node sees the same list and the revocations made by the first', async () => {
    const node = open();
    try {
      const host = await activate();
      await authority.revokeHost(host.ref.toString('hex'));
      const mine = await listOf();
      const theirs = await listOf(node);
      expect(theirs.report.encoded).toEqual(mine.report.encoded);
      expect((await codeOf(node.hostStatus(host.result.certificate))).code).toBe('HOST_REVOKED');
    } finally {
      await node.close();
    }
  });

  describe('HTTP', () => {
    const post = async (url: string, payload: object) => {
      const app = createAuthorityServer(authority, { clock });
      try {
        const reply = await app.inject({ method: 'POST', url, payload });
        return { status: reply.statusCode, body: reply.json<{ error?: { code: string; message: string } }>() };
      } finally {
        await app.close();
      }
    };

    it('GET /v1/revocations answers the signed list and its version', async () => {
      const app = createAuthorityServer(authority, { clock });
      try {
        const reply = await app.inject({ method: 'GET', url: '/v1/revocations' });
        expect(reply.statusCode).toBe(200);
        const body = revocationsReplySchema.strict().parse(reply.json());
        const list = decodeRevocationList(Buffer.from(body.list, 'base64'));
        expect(list.listVersion).toBe(body.listVersion);
        expect(verifyRevocationList(list, authority.rootPublicKeyRaw)).toBe(true);
      } finally {
        await app.close();
      }
    });

    it('POST /v1/host-status: a status for a good host, 403 HOST_REVOKED for a revoked one', async () => {
      const good = await activate();
      const ok = await post('/v1/host-status', { certificate: good.result.certificate.toString('base64') });
      expect(ok.status).toBe(200);
      const body = hostStatusReplySchema.strict().parse(ok.body);
      const status = decodeHostStatus(Buffer.from(body.status, 'base64'));
      expect(status.hostKeyRef).toEqual(good.ref);
      expect(verifyHostStatus(status, authority.rootPublicKeyRaw)).toBe(true);

      await authority.revokeHost(good.ref.toString('hex'));
      const refused = await post('/v1/host-status', { certificate: good.result.certificate.toString('base64') });
      expect(refused.status).toBe(403);
      expect(refused.body.error?.code).toBe('HOST_REVOKED');
    });

    it('POST /v1/host-status refuses junk with 400 and a specific code', async () => {
      const host = await activate();
      const cert = host.result.certificate;
      const cases: [string, object, string][] = [
        ['not base64', { certificate: 'not base64!' }, 'HOST_CERTIFICATE_INVALID'],
        [
          'wrong length',
          { certificate: cert.subarray(0, cert.length - 3).toString('base64') },
          'HOST_CERTIFICATE_INVALID',
        ],
        ['empty', { certificate: '' }, 'HOST_CERTIFICATE_INVALID'],
        ['no field', {}, 'REQUEST_INVALID'],
        ['an extra field', { certificate: cert.toString('base64'), hostKey }, 'REQUEST_INVALID'],
      ];
      for (const [what, payload, code] of cases) {
        const reply = await post('/v1/host-status', payload);
        expect(reply.status, what).toBe(400);
        expect(reply.body.error?.code, what).toBe(code);
      }
      // A byte changed: the signature no longer verifies.
      const tampered = Buffer.from(cert);
      tampered[40] = (tampered[40] as number) ^ 1;
      const bad = await post('/v1/host-status', { certificate: tampered.toString('base64') });
      expect(bad.body.error?.code).toBe('HOST_CERTIFICATE_UNTRUSTED');
    });

    it('POST /v1/host-status refuses a certificate signed by another authority, and one long expired', async () => {
      const other = Authority.init(join(tempDir(), 'other'), { clock });
      try {
        await other.addGroup({ name: 'office14' });
        const { key } = await other.mintKey({ type: 'kms-host', groups: ['office14'] });
        const foreign = await other.activateHost({
          hostKey: key,
          hostPublicKey: generateSigningKeyPair().publicKeyRaw,
          hardwareId: 'hw-foreign',
        });
        const reply = await post('/v1/host-status', { certificate: foreign.certificate.toString('base64') });
        expect(reply.status).toBe(400);
        expect(reply.body.error?.code).toBe('HOST_CERTIFICATE_UNTRUSTED');
        expect(reply.body.error?.message).toContain(keyIdOf(other.rootPublicKeyRaw).toString('hex'));
      } finally {
        await other.close();
      }
      const host = await activate();
      clock.advance(30 * DAY + 8 * DAY);
      const expired = await post('/v1/host-status', { certificate: host.result.certificate.toString('base64') });
      expect(expired.status).toBe(400);
      expect(expired.body.error?.code).toBe('HOST_CERTIFICATE_EXPIRED');
    });

    it('the routes are rate-limited per source address', async () => {
      const app = createAuthorityServer(authority, { clock, activationsPerMinute: 2 });
      try {
        const codes: number[] = [];
        for (let i = 0; i < 3; i++)
          codes.push((await app.inject({ method: 'GET', url: '/v1/revocations' })).statusCode);
        expect(codes).toEqual([200, 200, 429]);
        const status = await app.inject({ method: 'POST', url: '/v1/host-status', payload: { certificate: 'AAAA' } });
        expect(status.statusCode).toBe(429);
      } finally {
        await app.close();
      }
    });
  });
});

describe('revocation list versions across two PostgreSQL nodes', () => {
  it('issuing at once never makes one version twice with different content, and versions only grow', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 1));
    const dir = join(tempDir(), 'a');
    const databaseUrl = await postgres.createDatabase();
    const first = Authority.init(dir, { clock, databaseUrl });
    const second = Authority.open(dir, { clock, databaseUrl });
    try {
      const start = (await first.revocationList()).listVersion;
      const keyIds = Array.from({ length: 24 }, () => keyIdOf(generateSigningKeyPair().publicKeyRaw).toString('hex'));
      const results = await Promise.all(keyIds.map((id, i) => (i % 2 === 0 ? first : second).revokeManufacturer(id)));
      const versions = results.map((r) => r.listVersion);
      expect(new Set(versions).size).toBe(keyIds.length); // each revocation its own version
      expect(Math.min(...versions)).toBe(start + 1);
      expect(Math.max(...versions)).toBe(start + keyIds.length);
      const final = decodeRevocationList((await second.revocationList()).encoded);
      expect(final.listVersion).toBe(start + keyIds.length);
      expect(final.entries).toHaveLength(keyIds.length);

      // A day later both nodes are asked at once: one re-issue, the same bytes on both.
      clock.advance(25 * HOUR);
      const lists = await Promise.all([first, second, first, second].map((a) => a.revocationList()));
      expect(new Set(lists.map((l) => l.listVersion))).toEqual(new Set([start + keyIds.length + 1]));
      expect(new Set(lists.map((l) => l.encoded.toString('base64'))).size).toBe(1);
    } finally {
      await first.close();
      await second.close();
    }
  }, 60_000);
});

describe('revocation across a root switch', () => {
  it('the list is re-issued by the new root at the next request; a host certified by the old root still gets a status', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 1));
    const authority = Authority.init(join(tempDir(), 'a'), { clock });
    try {
      await authority.addGroup({ name: 'office14' });
      const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
      const hostPublicKey = generateSigningKeyPair().publicKeyRaw;
      const { certificate } = await authority.activateHost({ hostKey: key, hostPublicKey, hardwareId: 'hw-old' });
      const oldRoot = authority.rootPublicKeyRaw;
      const before = decodeRevocationList((await authority.revocationList()).encoded);
      for (const step of ['prepare', 'publish', 'switch'] as const) await authority.rotateRoot(step);
      const newRoot = authority.rootPublicKeyRaw;
      expect(newRoot.equals(oldRoot)).toBe(false);

      const after = decodeRevocationList((await authority.revocationList()).encoded);
      expect(after.listVersion).toBe(before.listVersion + 1);
      expect(verifyRevocationList(after, newRoot)).toBe(true);

      const status = decodeHostStatus((await authority.hostStatus(certificate)).status);
      expect(verifyHostStatus(status, newRoot)).toBe(true);
      expect(status.hostKeyRef).toEqual(hostKeyRefOf(hostPublicKey));
      expect(status.listVersion).toBe(after.listVersion);
    } finally {
      await authority.close();
    }
  });
});

describe.each([
  ['sqlite', async () => new SqliteAuthorityStore(join(tempDir(), 'authority.db'))],
  ['postgres', async () => new PostgresAuthorityStore(await postgres.createDatabase())],
] as const)('revocation store (%s)', (_name, open) => {
  it('an issue that fails keeps nothing: no entry without its list, no audit row, the version unchanged', async () => {
    const store = await open();
    try {
      const entry = { kind: 'tokenCa' as const, subject: 'ab'.repeat(8) + '00'.repeat(8), revokedAt: 1, reason: null };
      const audit = () => ({ at: 1, action: 'revocation.token-ca', result: 'OK' });
      const failing = () => {
        throw new Error('the root cannot sign now');
      };
      await expect(store.revocations.revoke([entry], failing, audit)).rejects.toThrow('cannot sign');
      expect(await store.revocations.entries()).toEqual([]);
      expect(await store.revocations.isRevoked('tokenCa', entry.subject)).toBeUndefined();
      expect(await store.recentAudit(5)).toEqual([]);
      const issue = ({ listVersion }: { listVersion: number }) => ({
        listVersion,
        issuedAt: 1,
        nextUpdate: 2,
        encoded: Buffer.from([listVersion]),
      });
      const { added, list } = await store.revocations.revoke([entry], issue, audit);
      expect(added).toEqual([entry]);
      expect(list.listVersion).toBe(1);
    } finally {
      await store.close();
    }
  });
});
