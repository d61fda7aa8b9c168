import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DAY,
  DELEGATION_PURPOSE,
  ManualClock,
  TrustStore,
  decodeDelegation,
  decodeHostCertificate,
  generateSigningKeyPair,
  keyIdHex,
  makeInstallationId,
  parseConfirmationId,
  parseInstallationId,
  parseKey,
  privateKeyToPem,
  parseProductConfig,
  publicKeyFromRaw,
  verifyHostCertificate,
  verifyInstallationConfirmation,
  type ConfirmationKeys,
  type TrustReply,
} from '@volact/core';
import { Authority, type RotationStep } from './authority.js';
import { AuthorityError } from './errors.js';
import { createAuthorityServer } from './http.js';
import { PostgresKeyRingStore } from './key-ring-store.js';
import { startTestPostgres, type TestPostgres } from './postgres-test-server.js';
import pg from 'pg';
import Database from 'better-sqlite3';

/**
 * The key ring on both engines: the rotation ceremony, its order and idempotence, which key
 * signs what before and after each step, what clients are given (product configs, /v1/trust
 * records), online key rotation, data directories made before the ring, and nodes that lack a
 * root's file. The crash test (kill -9 between and within steps) is test/e2e/root-rotation-crash.test.ts.
 */
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
  const d = mkdtempSync(join(tmpdir(), 'volact-key-ring-'));
  dirs.push(d);
  return d;
};

const STEPS: readonly RotationStep[] = ['prepare', 'publish', 'switch', 'retire'];

/** Whether a host certificate verifies under the root a client's trust store picks by its issuer and time. */
function trustedBy(trust: TrustStore, certificate: Buffer): boolean {
  const cert = decodeHostCertificate(certificate);
  const root = trust.rootFor(cert.issuer, cert.issuedAt);
  return root !== null && verifyHostCertificate(cert, publicKeyFromRaw(root.publicKeyRaw));
}

/** The keys a client's trust store gives for a CID: the online keys delegated for its key index on its day. */
const cidKeys = (trust: TrustStore): ConfirmationKeys => ({
  forIndex: (index, issuedDay) =>
    index === 0
      ? trust.rootsAt(issuedDay * DAY + DAY / 2, DAY / 2).map((r) => r.publicKeyRaw)
      : trust
          .delegatesForIndex(index, issuedDay * DAY + DAY / 2, DELEGATION_PURPOSE.confirmations, DAY / 2)
          .map((d) => d.delegation.delegatePublicKey),
});

async function codeOf(work: () => Promise<unknown>): Promise<{ code: string; message: string; nextStep?: string }> {
  try {
    await work();
  } catch (err) {
    if (err instanceof AuthorityError) {
      return { code: err.code, message: err.message, nextStep: (err as { nextStep?: string }).nextStep };
    }
    throw err;
  }
  return { code: 'no error', message: '' };
}

const engines: [string, () => Promise<{ databaseUrl?: string }>][] = [
  ['sqlite', async () => ({})],
  ['postgres', async () => ({ databaseUrl: await postgres.createDatabase() })],
];

describe.each(engines)('key ring (%s)', (_engine, database) => {
  const setUp = async () => {
    const dir = join(tempDir(), 'a');
    const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
    const db = await database();
    const authority = Authority.init(dir, { clock, ...db });
    await authority.addGroup({ name: 'office14' });
    const hostKey = (await authority.mintKey({ type: 'kms-host', groups: ['office14'] })).key;
    const mak = (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 100 })).key;
    return { dir, db, clock, authority, hostKey, mak };
  };
  const activateHost = (authority: Authority, hostKey: string, hw = `hw-${randomBytes(4).toString('hex')}`) =>
    authority.activateHost({ hostKey, hostPublicKey: generateSigningKeyPair().publicKeyRaw, hardwareId: hw });

  it('the ceremony: a config exported before prepare trusts a host certified after switch (with the transition record), retire destroys the old key', async () => {
    const { dir, clock, authority, hostKey, mak } = await setUp();
    try {
      const before = parseProductConfig(await authority.productConfig('office14'));
      const root1 = authority.rootPublicKeyRaw;
      expect(before.authority.roots).toEqual([
        { publicKey: root1.toString('base64'), validFrom: new Date(0).toISOString() },
      ]);
      // The current online key and the next one, both in the config from the start.
      expect(before.authority.delegations).toHaveLength(2);
      const start = await authority.rootStatus();
      expect(start.rotation).toEqual({ lastStep: null, nextStep: 'prepare' });
      expect(start.onlineKeys.map((k) => [k.sequence, k.state, k.keyIndex])).toEqual([
        [0, 'current', 1],
        [1, 'next', 2],
      ]);

      clock.advance(DAY);
      const prepared = await authority.rotateRoot('prepare');
      expect(prepared).toMatchObject({ step: 'prepare', done: true, nextStep: 'publish' });
      expect(prepared.root).toMatchObject({ ordinal: 2, state: 'prepared', heldHere: true });
      const root2Id = prepared.root.keyId;
      expect(existsSync(join(dir, 'roots', `${root2Id}.pem`))).toBe(true);
      // Prepared: clients see nothing yet, and the old root still signs.
      expect((await authority.productConfig('office14')).authority.roots).toHaveLength(1);
      expect((await authority.trust()).roots.map((r) => r.keyId)).toEqual([keyIdHex(root1)]);
      expect((await authority.trustRecords()).transitions).toEqual([]);
      expect(decodeHostCertificate((await activateHost(authority, hostKey)).certificate).issuer).toEqual(
        keyIdOfRaw(root1),
      );

      const published = await authority.rotateRoot('publish');
      expect(published).toMatchObject({ done: true, nextStep: 'switch', root: { state: 'published' } });
      const bundled = parseProductConfig(await authority.productConfig('office14'));
      expect(bundled.authority.rootPublicKey).toBe(root1.toString('base64')); // still current
      expect(bundled.authority.roots?.map((r) => r.publicKey)).toEqual([
        root1.toString('base64'),
        published.root.publicKey,
      ]);
      // The online keys stay those root #1 certified (current and next): no key of root #2 yet.
      expect(bundled.authority.delegations?.map((d) => decodeDelegation(Buffer.from(d, 'base64')).sequence)).toEqual([
        0, 1,
      ]);
      const records = await authority.trustRecords();
      expect(records.transitions).toHaveLength(1);

      clock.advance(DAY);
      const switched = await authority.rotateRoot('switch');
      expect(switched).toMatchObject({ done: true, nextStep: 'retire', root: { state: 'current' } });
      const root2 = Buffer.from(switched.root.publicKey, 'base64');
      expect(authority.rootPublicKeyRaw).toEqual(root2);
      // The switch leaves the online keys: certified while root #1 was valid, they sign on.
      expect(switched.status.onlineKeys.map((k) => [k.sequence, k.state, k.issuerKeyId])).toEqual([
        [0, 'current', keyIdHex(root1)],
        [1, 'next', keyIdHex(root1)],
      ]);

      // A client that only has the config made before prepare: the host's new certificate is
      // by root #2, which it learns from the transition record (/v1/trust, online answers).
      const certificate = (await activateHost(authority, hostKey)).certificate;
      expect(decodeHostCertificate(certificate).issuer).toEqual(keyIdOfRaw(root2));
      const trust = TrustStore.fromProductConfig(before);
      expect(trustedBy(trust, certificate)).toBe(false);
      // The records as a client fetches them: GET /v1/trust.
      const app = createAuthorityServer(authority, { clock });
      const fetched = (await app.inject({ method: 'GET', url: '/v1/trust' })).json<TrustReply>();
      await app.close();
      expect(fetched.roots.map((r) => r.state)).toEqual(['previous', 'current']);
      for (const t of fetched.transitions) trust.learnTransition(Buffer.from(t, 'base64'));
      expect(trustedBy(trust, certificate)).toBe(true);
      expect(verifyHostCertificate(decodeHostCertificate(certificate), publicKeyFromRaw(root1))).toBe(false);

      // CIDs are still signed by online key #0 (key index 1): the config made before prepare
      // verifies them as it is, nothing learned.
      const iid = makeInstallationId({
        kind: 'installation',
        key: parseKey(mak),
        hardwareId: 'pc-1',
        groupIds: [before.group.id],
      }).text;
      const activation = await authority.activateInstallation({ key: mak, installationId: iid });
      const cid = parseConfirmationId(activation.confirmationId);
      expect(cid.keyIndex).toBe(1);
      expect(
        verifyInstallationConfirmation(
          parseInstallationId(iid),
          before.group.id,
          cid,
          cidKeys(TrustStore.fromProductConfig(before)),
        ),
      ).toBe(true);

      clock.advance(DAY);
      const retired = await authority.rotateRoot('retire');
      expect(retired).toMatchObject({ done: true, nextStep: 'prepare', root: { state: 'retired', heldHere: false } });
      expect(retired.root.validUntil).toBe(new Date(clock.now()).toISOString());
      // The old root's key file is gone: only root #2's is left.
      expect(readdirSync(join(dir, 'roots'))).toEqual([`${root2Id}.pem`]);
      const after = parseProductConfig(await authority.productConfig('office14'));
      expect(after.authority.rootPublicKey).toBe(root2.toString('base64'));
      expect(after.authority.roots?.[0]).toEqual({
        publicKey: root1.toString('base64'),
        validFrom: new Date(0).toISOString(),
        validUntil: new Date(clock.now()).toISOString(),
      });
      // The GVLK is the authority's identity: it never changes with the roots.
      expect(after.gvlk).toBe(before.gvlk);
      // Evidence made under the old root keeps verifying for a client holding the new config.
      const afterTrust = TrustStore.fromProductConfig(after);
      expect(afterTrust.rootFor(keyIdOfRaw(root1), clock.now() - 2 * DAY)).not.toBeNull();
      expect(afterTrust.rootFor(keyIdOfRaw(root1), clock.now() + DAY)).toBeNull();

      // One audit row per step.
      const audit = (await authority.recentAudit(200)).filter((a) => a.action.startsWith('root.rotate.'));
      expect(audit.map((a) => a.action).reverse()).toEqual(STEPS.map((s) => `root.rotate.${s}`));
    } finally {
      await authority.close();
    }
  });

  it('after retire every signing path uses the new root: host certificates, activation objects, OEM and token-CA certificates', async () => {
    const { authority, hostKey } = await setUp();
    try {
      for (const step of STEPS) await authority.rotateRoot(step);
      const status = await authority.rootStatus();
      const [old, current] = status.roots;
      expect([old?.state, current?.state]).toEqual(['retired', 'current']);
      const currentId = current?.keyId as string;
      expect(keyIdHex(authority.rootPublicKeyRaw)).toBe(currentId);
      const cert = decodeHostCertificate((await activateHost(authority, hostKey)).certificate);
      expect(cert.issuer.toString('hex')).toBe(currentId);
      const object = await authority.createActivationObject({ group: 'office14', domain: 'corp.test', name: 'ao-1' });
      expect(object.issuer).toBe(currentId);
      const oem = await authority.issueOemCertificate({
        manufacturer: 'Contoso',
        publicKeyRaw: generateSigningKeyPair().publicKeyRaw,
        groups: ['office14'],
        days: 30,
      });
      expect(oem.issuer).toBe(currentId);
      const tokenCa = await authority.issueTokenCa({
        organisation: 'Fabrikam',
        group: 'office14',
        publicKeyRaw: generateSigningKeyPair().publicKeyRaw,
        days: 30,
      });
      expect(tokenCa.issuer).toBe(currentId);
      // Neither root may be certified as another party's key.
      for (const root of status.roots) {
        const refused = await codeOf(() =>
          authority.issueOemCertificate({
            manufacturer: 'Mallory',
            publicKeyRaw: Buffer.from(root.publicKey, 'base64'),
            groups: ['office14'],
            days: 30,
          }),
        );
        expect(refused.code).toBe('REQUEST_INVALID');
      }
    } finally {
      await authority.close();
    }
  });

  it('each step twice: the second says "already done", changes nothing and writes no audit row', async () => {
    const { authority } = await setUp();
    try {
      for (const step of STEPS) {
        expect((await authority.rotateRoot(step)).done).toBe(true);
        const status = await authority.rootStatus();
        const again = await authority.rotateRoot(step);
        expect(again.done).toBe(false);
        expect(again.message).toMatch(/^already done/);
        expect(again.status).toEqual(status);
      }
      const audit = (await authority.recentAudit(200)).filter((a) => a.action.startsWith('root.rotate.'));
      expect(audit).toHaveLength(4);
    } finally {
      await authority.close();
    }
  });

  it('every step out of order is refused with ROOT_ROTATION_OUT_OF_ORDER naming the next step, and changes nothing', async () => {
    const { authority } = await setUp();
    try {
      // Before each step is done, every step but it (and the one just done) is out of order.
      const last: (RotationStep | null)[] = [null, 'prepare', 'publish', 'switch', 'retire'];
      for (let i = 0; i <= STEPS.length; i++) {
        const next = STEPS[i % STEPS.length] as RotationStep;
        for (const wrong of STEPS.filter((s) => s !== next && s !== last[i])) {
          const status = await authority.rootStatus();
          const refused = await codeOf(() => authority.rotateRoot(wrong));
          expect(refused, `${wrong} before ${next}`).toMatchObject({
            code: 'ROOT_ROTATION_OUT_OF_ORDER',
            nextStep: next,
          });
          expect(refused.message).toContain(`--step ${next}`);
          expect(await authority.rootStatus()).toEqual(status);
        }
        if (i < STEPS.length) await authority.rotateRoot(next);
      }
    } finally {
      await authority.close();
    }
  });

  it('online-key rotate: the next online key signs CIDs (next key index), a new next is made; the old one stays verifiable and in the bundle', async () => {
    const { authority, mak } = await setUp();
    try {
      const config = await authority.productConfig('office14');
      const groupId = config.group.id;
      const iidOf = (hw: string) =>
        makeInstallationId({ kind: 'installation', key: parseKey(mak), hardwareId: hw, groupIds: [groupId] }).text;
      const first = parseConfirmationId(
        (await authority.activateInstallation({ key: mak, installationId: iidOf('pc-a') })).confirmationId,
      );
      expect(first.keyIndex).toBe(1);
      const rotated = await authority.rotateOnlineKey();
      expect(rotated.onlineKey).toMatchObject({ sequence: 1, state: 'current', keyIndex: 2 });
      expect(rotated.previous).toMatchObject({ sequence: 0, state: 'previous' });
      expect(rotated.status.onlineKeys.map((k) => [k.sequence, k.state])).toEqual([
        [0, 'previous'],
        [1, 'current'],
        [2, 'next'],
      ]);
      const second = parseConfirmationId(
        (await authority.activateInstallation({ key: mak, installationId: iidOf('pc-b') })).confirmationId,
      );
      expect(second.keyIndex).toBe(2);
      const after = await authority.productConfig('office14');
      expect(after.authority.delegations).toHaveLength(3);
      const trust = TrustStore.fromProductConfig(after);
      expect(verifyInstallationConfirmation(parseInstallationId(iidOf('pc-a')), groupId, first, cidKeys(trust))).toBe(
        true,
      );
      expect(verifyInstallationConfirmation(parseInstallationId(iidOf('pc-b')), groupId, second, cidKeys(trust))).toBe(
        true,
      );
      // The config made before the rotation knew the new key already: it was the next one.
      const old = TrustStore.fromProductConfig(config);
      expect(verifyInstallationConfirmation(parseInstallationId(iidOf('pc-b')), groupId, second, cidKeys(old))).toBe(
        true,
      );
      const audit = (await authority.recentAudit(50)).filter((a) => a.action === 'online-key.rotate');
      expect(audit).toHaveLength(1);
    } finally {
      await authority.close();
    }
  });

  it('the next online key becomes current automatically, once, when 730 days old (the next read of the ring); root status never writes', async () => {
    const set = await setUp();
    const { dir, db, clock } = set;
    let authority = set.authority;
    try {
      clock.advance(729 * DAY);
      await authority.trust();
      expect((await authority.rootStatus()).onlineKeys.map((k) => k.state)).toEqual(['current', 'next']);
      clock.advance(2 * DAY); // 731 days: the next key (#1) is 730 days old
      // root status is read-only: it shows the ring as it is, renews nothing, audits nothing;
      // so is opening the authority for it (what \`volact authority root status\` does).
      const auditBefore = (await authority.recentAudit(200)).length;
      expect((await authority.rootStatus()).onlineKeys.map((k) => k.state)).toEqual(['current', 'next']);
      await authority.close();
      authority = Authority.open(dir, { clock, ...db });
      expect((await authority.rootStatus()).onlineKeys.map((k) => k.state)).toEqual(['current', 'next']);
      expect((await authority.recentAudit(200)).length).toBe(auditBefore);
      await authority.trust(); // a call that may sign reads the ring: renewed
      const status = await authority.rootStatus();
      expect(status.onlineKeys.map((k) => [k.sequence, k.state])).toEqual([
        [0, 'previous'],
        [1, 'current'],
        [2, 'next'],
      ]);
      await authority.trust();
      expect((await authority.rootStatus()).onlineKeys).toHaveLength(3);
      const audit = (await authority.recentAudit(20)).filter((a) => a.action === 'online-key.rotate');
      expect(audit).toHaveLength(1);
      expect(audit[0]?.detail).toContain('730 days old');
    } finally {
      await authority.close();
    }
  });

  it("three years on (the clock jumps within the ring copy's few seconds), the first CID is signed by a renewed online key clients are given", async () => {
    const { clock, authority, mak } = await setUp();
    try {
      const config = await authority.productConfig('office14');
      clock.advance(3 * 365 * DAY);
      const iid = makeInstallationId({
        kind: 'installation',
        key: parseKey(mak),
        hardwareId: 'pc-late',
        groupIds: [config.group.id],
      }).text;
      const cid = parseConfirmationId(
        (await authority.activateInstallation({ key: mak, installationId: iid })).confirmationId,
      );
      expect(cid.keyIndex).toBe(2); // online key #1: the next one at day 0, current since day 730
      const trust = TrustStore.fromProductConfig(config);
      for (const d of (await authority.trustRecords()).delegations) trust.learnDelegation(Buffer.from(d, 'base64'));
      expect(verifyInstallationConfirmation(parseInstallationId(iid), config.group.id, cid, cidKeys(trust))).toBe(true);
    } finally {
      await authority.close();
    }
  });

  it('a config exported at day 0 verifies phone CIDs of day 0, day 500 (after a whole root rotation), 700 and 1000 with nothing learned; at day 800 the signing key is in a config and /v1/trust', async () => {
    const { clock, authority, mak } = await setUp();
    try {
      const day0 = parseProductConfig(await authority.productConfig('office14'));
      const groupId = day0.group.id;
      const start = clock.now();
      const at = (day: number) => clock.set(start + day * DAY);
      /** A phone confirmation of a new installation: its CID and whether `config` alone verifies it. */
      const phone = async (hw: string) => {
        const iid = makeInstallationId({
          kind: 'installation',
          key: parseKey(mak),
          hardwareId: hw,
          groupIds: [groupId],
        });
        const cid = parseConfirmationId((await authority.confirm(iid.text)).confirmationId);
        const verifiedBy = (config: typeof day0) =>
          verifyInstallationConfirmation(
            parseInstallationId(iid.text),
            groupId,
            cid,
            cidKeys(TrustStore.fromProductConfig(config)),
          );
        return { cid, verifiedBy };
      };
      expect((await phone('pc-day-0')).verifiedBy(day0)).toBe(true);
      at(480);
      await authority.rotateRoot('prepare');
      await authority.rotateRoot('publish');
      at(490);
      await authority.rotateRoot('switch');
      at(500);
      await authority.rotateRoot('retire');
      expect((await phone('pc-day-500')).verifiedBy(day0)).toBe(true);
      at(700);
      expect((await phone('pc-day-700')).verifiedBy(day0)).toBe(true);

      at(800);
      const late = await phone('pc-day-800');
      const signing = (await authority.rootStatus()).onlineKeys.find((k) => k.state === 'current');
      expect(signing).toMatchObject({ keyIndex: late.cid.keyIndex });
      expect(Date.parse(signing?.validUntil as string)).toBeGreaterThan(clock.now());
      const delegationOf = (b64: string) => decodeDelegation(Buffer.from(b64, 'base64')).delegateKeyId.toString('hex');
      const day800 = parseProductConfig(await authority.productConfig('office14'));
      expect(day800.authority.delegations?.map(delegationOf)).toContain(signing?.keyId);
      const app = createAuthorityServer(authority, { clock });
      const fetched = (await app.inject({ method: 'GET', url: '/v1/trust' })).json<TrustReply>();
      await app.close();
      expect(fetched.delegations.map(delegationOf)).toContain(signing?.keyId);
      expect(late.verifiedBy(day800)).toBe(true);
      expect(late.verifiedBy(day0)).toBe(true);
      // And the next key the new root certified is in the day-800 config already.
      const next = (await authority.rootStatus()).onlineKeys.find((k) => k.state === 'next');
      expect(next?.issuerKeyId).toBe(keyIdHex(authority.rootPublicKeyRaw));
      expect(day800.authority.delegations?.map(delegationOf)).toContain(next?.keyId);

      at(1000);
      expect((await phone('pc-day-1000')).verifiedBy(day0)).toBe(true);
    } finally {
      await authority.close();
    }
  });

  it('a data directory made before the key ring (root-signing-key.pem): its root becomes root #1, its GVLK stays, retire deletes the file', async () => {
    const dir = join(tempDir(), 'old');
    mkdirSync(dir, { mode: 0o700 });
    const legacy = generateSigningKeyPair();
    writeFileSync(join(dir, 'root-signing-key.pem'), privateKeyToPem(legacy.privateKey), { mode: 0o600 });
    writeFileSync(join(dir, 'key-hash.secret'), randomBytes(32).toString('base64'), { mode: 0o600 });
    writeFileSync(join(dir, 'authority.json'), JSON.stringify({ format: 'volact-authority/1', name: 'old one' }));
    const options = await database();
    const authority = Authority.open(dir, options);
    try {
      await authority.addGroup({ name: 'office14' });
      const before = await authority.productConfig('office14');
      expect(before.authority.rootPublicKey).toBe(legacy.publicKeyRaw.toString('base64'));
      const status = await authority.rootStatus();
      expect(status.roots.map((r) => [r.ordinal, r.keyId, r.state, r.where])).toEqual([
        [1, keyIdHex(legacy.publicKeyRaw), 'current', join(dir, 'root-signing-key.pem')],
      ]);
      // A copy of it under its new name (an operator's): retire deletes every copy.
      const copy = join(dir, 'roots', `${keyIdHex(legacy.publicKeyRaw)}.pem`);
      mkdirSync(join(dir, 'roots'), { recursive: true, mode: 0o700 });
      cpSync(join(dir, 'root-signing-key.pem'), copy);
      for (const step of STEPS) await authority.rotateRoot(step);
      expect(existsSync(join(dir, 'root-signing-key.pem'))).toBe(false);
      expect(existsSync(copy)).toBe(false);
      const after = await authority.productConfig('office14');
      expect(after.gvlk).toBe(before.gvlk);
      expect(after.authority.rootPublicKey).not.toBe(before.authority.rootPublicKey);
    } finally {
      await authority.close();
    }
    // The directory still opens (its roots/ holds the current root) and signs.
    const reopened = Authority.open(dir, options);
    try {
      const object = await reopened.createActivationObject({ group: 'office14', domain: 'corp.test', name: 'ao' });
      expect(object.issuer).toBe(keyIdHex(reopened.rootPublicKeyRaw));
    } finally {
      await reopened.close();
    }
  });
});

describe('several nodes on one PostgreSQL database', () => {
  it('a node without the current root’s file refuses to sign with ROOT_KEY_UNAVAILABLE naming the file; once copied it signs; a retired root’s copy is deleted', async () => {
    const databaseUrl = await postgres.createDatabase();
    const base = tempDir();
    const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
    const a = Authority.init(join(base, 'a'), { clock, databaseUrl });
    await a.addGroup({ name: 'office14' });
    const hostKey = (await a.mintKey({ type: 'kms-host', groups: ['office14'] })).key;
    await a.close();
    cpSync(join(base, 'a'), join(base, 'b'), { recursive: true });
    const nodeA = Authority.open(join(base, 'a'), { clock, databaseUrl });
    const nodeB = Authority.open(join(base, 'b'), { clock, databaseUrl });
    const activate = (node: Authority) =>
      node.activateHost({ hostKey, hostPublicKey: generateSigningKeyPair().publicKeyRaw, hardwareId: 'hw-1' });
    try {
      await activate(nodeB);
      const root1 = (await nodeA.rootStatus()).roots[0]?.keyId as string;
      for (const step of ['prepare', 'publish'] as const) await nodeA.rotateRoot(step);
      const root2 = (await nodeA.rootStatus()).roots[1]?.keyId as string;
      // B lacks the next root: it may not switch to it (every node would sign with it at once).
      const noSwitch = await codeOf(() => nodeB.rotateRoot('switch'));
      expect(noSwitch.code).toBe('ROOT_KEY_UNAVAILABLE');
      expect(noSwitch.message).toContain(join(base, 'b', 'roots', `${root2}.pem`));
      expect((await nodeB.rootStatus()).rotation.lastStep).toBe('publish');
      await nodeA.rotateRoot('switch');
      // Node B reads the ring again (its copy is a few seconds old at most): it is told what to copy.
      const status = await nodeB.rootStatus();
      expect(status.roots[1]).toMatchObject({ keyId: root2, state: 'current', heldHere: false });
      const refused = await codeOf(() => activate(nodeB));
      expect(refused.code).toBe('ROOT_KEY_UNAVAILABLE');
      expect(refused.message).toContain(join(base, 'b', 'roots', `${root2}.pem`));
      cpSync(join(base, 'a', 'roots', `${root2}.pem`), join(base, 'b', 'roots', `${root2}.pem`));
      expect(decodeHostCertificate((await activate(nodeB)).certificate).issuer.toString('hex')).toBe(root2);
      await nodeA.rotateRoot('retire');
      expect(existsSync(join(base, 'a', 'roots', `${root1}.pem`))).toBe(false);
      // root status only reads: B's copy of root #1 stays until B reads the ring (here: its retire, a no-op).
      expect((await nodeB.rootStatus()).roots[0]?.state).toBe('retired');
      expect(existsSync(join(base, 'b', 'roots', `${root1}.pem`))).toBe(true);
      // B was not where retire ran: the step is done for it too, and B's copy goes.
      expect((await nodeB.rotateRoot('retire')).done).toBe(false);
      expect(existsSync(join(base, 'b', 'roots', `${root1}.pem`))).toBe(false);
    } finally {
      await nodeA.close();
      await nodeB.close();
    }
  });
});

describe('several nodes on one PostgreSQL database: prepare at once, an ended online key', () => {
  const twoNodes = async () => {
    const databaseUrl = await postgres.createDatabase();
    const base = tempDir();
    const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
    const a = Authority.init(join(base, 'a'), { clock, databaseUrl });
    await a.addGroup({ name: 'office14' });
    const mak = (await a.mintKey({ type: 'mak', groups: ['office14'], limit: 100 })).key;
    const groupId = (await a.productConfig('office14')).group.id;
    await a.close();
    cpSync(join(base, 'a'), join(base, 'b'), { recursive: true });
    const nodeA = Authority.open(join(base, 'a'), { clock, databaseUrl });
    const nodeB = Authority.open(join(base, 'b'), { clock, databaseUrl });
    return { databaseUrl, base, clock, mak, groupId, nodeA, nodeB };
  };
  const rootFiles = (dir: string) => (existsSync(join(dir, 'roots')) ? readdirSync(join(dir, 'roots')).sort() : []);

  it('two nodes running prepare together: one root is recorded, the loser destroys the key it made', async () => {
    const { databaseUrl, base, nodeA, nodeB } = await twoNodes();
    const lock = new pg.Client({ connectionString: databaseUrl });
    await lock.connect();
    try {
      const before = { a: rootFiles(join(base, 'a')), b: rootFiles(join(base, 'b')) };
      // Both make their key, then wait for the ring's lock (held here) to record it.
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE ring_roots, ring_online_keys IN EXCLUSIVE MODE');
      const runs = [nodeA.rotateRoot('prepare'), nodeB.rotateRoot('prepare')].map((p) =>
        p.then(
          (r) => r,
          (e: unknown) => e,
        ),
      );
      for (let i = 0; i < 200; i++) {
        if (
          rootFiles(join(base, 'a')).length > before.a.length &&
          rootFiles(join(base, 'b')).length > before.b.length
        ) {
          break;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(rootFiles(join(base, 'a')).length + rootFiles(join(base, 'b')).length).toBe(
        before.a.length + before.b.length + 2,
      );
      await lock.query('COMMIT');
      const results = (await Promise.all(runs)) as { done: boolean; root: { keyId: string } }[];
      expect(results.map((r) => r.done).sort()).toEqual([false, true]);
      const roots = (await nodeA.rootStatus()).roots;
      expect(roots.map((r) => r.state)).toEqual(['current', 'prepared']);
      const next = `${roots[1]?.keyId}.pem`;
      // Only the recorded root's key is left: on the node that made it.
      const made = [...rootFiles(join(base, 'a')), ...rootFiles(join(base, 'b'))].filter(
        (f) => !before.a.includes(f) && !before.b.includes(f),
      );
      expect(made).toEqual([next]);
    } finally {
      await lock.end();
      await nodeA.close();
      await nodeB.close();
    }
  });

  it('an ended online key never signs: a node that cannot renew it refuses with ONLINE_KEY_EXPIRED; renewed on a node that can, it signs again', async () => {
    const { base, clock, mak, groupId, nodeA, nodeB } = await twoNodes();
    try {
      for (const step of ['prepare', 'publish', 'switch'] as const) await nodeA.rotateRoot(step);
      const root2 = (await nodeA.rootStatus()).roots[1]?.keyId as string;
      // Four years on, nothing read the ring: online keys #0 and #1 (root #1's) have ended; B lacks root #2.
      clock.advance(1500 * DAY);
      const iid = (hw: string) =>
        makeInstallationId({ kind: 'installation', key: parseKey(mak), hardwareId: hw, groupIds: [groupId] }).text;
      const refused = await codeOf(() => nodeB.activateInstallation({ key: mak, installationId: iid('pc-1') }));
      expect(refused.code).toBe('ONLINE_KEY_EXPIRED');
      expect(refused.message).toContain(join(base, 'b', 'roots', `${root2}.pem`));
      expect((await nodeB.rootStatus()).onlineKeys.find((k) => k.state === 'current')?.sequence).toBe(0);
      await nodeA.trust(); // A holds root #2: its read renews the keys
      const cid = parseConfirmationId(
        (await nodeB.activateInstallation({ key: mak, installationId: iid('pc-2') })).confirmationId,
      );
      const current = (await nodeB.rootStatus()).onlineKeys.find((k) => k.state === 'current');
      expect(current).toMatchObject({ issuerKeyId: root2, keyIndex: cid.keyIndex });
      expect(Date.parse(current?.validUntil as string)).toBeGreaterThan(clock.now());
    } finally {
      await nodeA.close();
      await nodeB.close();
    }
  });
});

describe('a ring made before next online keys existed', () => {
  it('gets a next online key at the next read that may sign (one audit row), in configs from then on; root status shows it as it is', async () => {
    const dir = join(tempDir(), 'a');
    const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
    let authority = Authority.init(dir, { clock });
    await authority.addGroup({ name: 'office14' });
    await authority.close();
    // As an older volact left it: online key #0 only.
    const db = new Database(join(dir, 'authority.db'));
    db.prepare("DELETE FROM ring_online_keys WHERE state = 'next'").run();
    db.close();
    authority = Authority.open(dir, { clock });
    try {
      expect((await authority.rootStatus()).onlineKeys.map((k) => [k.sequence, k.state])).toEqual([[0, 'current']]);
      clock.advance(10 * DAY);
      const config = await authority.productConfig('office14');
      expect((await authority.rootStatus()).onlineKeys.map((k) => [k.sequence, k.state])).toEqual([
        [0, 'current'],
        [1, 'next'],
      ]);
      expect(config.authority.delegations).toHaveLength(2);
      await authority.trust();
      expect((await authority.recentAudit(50)).filter((a) => a.action.startsWith('online-key.'))).toMatchObject([
        { action: 'online-key.next' },
      ]);
    } finally {
      await authority.close();
    }
  });
});

describe('PostgreSQL: a read of the ring is one snapshot', () => {
  it('a change committed between the read of the roots and of the online keys is seen whole or not at all', async () => {
    const databaseUrl = await postgres.createDatabase();
    const dir = join(tempDir(), 'a');
    const authority = Authority.init(dir, { clock: new ManualClock(Date.UTC(2026, 10, 25, 9)), databaseUrl });
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 3 });
    // Another node's online-key rotate commits right after the roots were read.
    let between: (() => Promise<unknown>) | undefined = () => authority.rotateOnlineKey();
    const afterRoots = async (sql: string) => {
      if (!sql.startsWith('SELECT * FROM ring_roots') || !between) return;
      const run = between;
      between = undefined;
      await run();
    };
    const query = async <R extends pg.QueryResultRow>(
      client: pg.Pool | pg.PoolClient,
      sql: string,
      params?: unknown[],
    ) => {
      const result = await client.query<R>(sql, params);
      await afterRoots(sql);
      return result;
    };
    const store = new PostgresKeyRingStore({
      query: (sql, params) => query(pool, sql, params),
      transaction: async (work) => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const wrapped = { query: (sql: string, params?: unknown[]) => query(client, sql, params) } as pg.PoolClient;
          const result = await work(wrapped);
          await client.query('COMMIT');
          return result;
        } catch (err) {
          await client.query('ROLLBACK');
          throw err;
        } finally {
          client.release();
        }
      },
    });
    try {
      await authority.trust(); // the ring is made (and the schema migrated)
      const ring = await store.load();
      expect(between).toBeUndefined(); // the rotation did commit between the two reads
      // As the ring was when its roots were read: #0 current, #1 next (not #2, made after).
      expect(ring.onlineKeys.map((k) => [k.sequence, k.state])).toEqual([
        [0, 'current'],
        [1, 'next'],
      ]);
      expect((await store.load()).onlineKeys).toHaveLength(3);
    } finally {
      await pool.end();
      await authority.close();
    }
  });
});

const keyIdOfRaw = (raw: Buffer) => Buffer.from(keyIdHex(raw), 'hex');
