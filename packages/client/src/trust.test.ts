import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DAY,
  DELEGATION_PURPOSE,
  HOUR,
  ManualClock,
  buildPhoneCertificate,
  confirmInstallation,
  dayOf,
  fileSigner,
  generateSigningKeyPair,
  guidToBytes,
  hostKeyRefOf,
  issueHostCertificate,
  keyIdHex,
  makeDelegation,
  makeInstallationId,
  makeKey,
  makeRevocationList,
  makeRootTransition,
  parseKey,
  keyIdOf,
  revocationSubjectOfKeyId,
  shortSigningKey,
  signActivationToken,
  signOemCertificate,
  signOemMarker,
  signTokenCaCertificate,
  signPhoneCertificate,
  signPhoneCertificateWithRoot,
  type ProductConfig,
  type ResponseExtensions,
  type SigningKeyPair,
} from '@volact/core';
import { ClientError } from './errors.js';
import { Licence } from './licence.js';
import { ClientTrust } from './trust.js';
import { FIXTURE_GROUP, answerOf, hostStatusOf, productWith, startFakeKmsHost } from './trust-fixtures.js';
import { verifyKmsResponse } from './verify-response.js';

/**
 * The client's trust (docs/trust.md, docs/client.md "Trust"): keys chosen by the artefact's key
 * ID and signed time, records learned from answers and kept, host statuses, the revocation list
 * held, set-product bound to the authority.
 */
const T = Date.UTC(2027, 2, 1, 12);
const SKEW = 4 * HOUR;
const rootA = generateSigningKeyPair();
const rootB = generateSigningKeyPair();
const stranger = generateSigningKeyPair();
const productA = productWith([{ pair: rootA }]);
/** A → B, published ten days ago; B signs from five days ago. */
const transitionAB = makeRootTransition(
  { nextPublicKey: rootB.publicKeyRaw, issuedAt: T - 10 * DAY, nextValidFrom: T - 5 * DAY },
  fileSigner(rootA),
  fileSigner(rootB),
);
const dir = mkdtempSync(join(tmpdir(), 'volact-client-trust-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function certificateBy(root: SigningKeyPair, host: SigningKeyPair, issuedAt = T - DAY): Buffer {
  return issueHostCertificate(
    {
      hostPublicKey: host.publicKeyRaw,
      serial: '5e000000-0000-4000-8000-000000000001',
      hostKeyId: '4b000000-0000-4000-8000-000000000001',
      issuedAt,
      expiresAt: issuedAt + 180 * DAY,
      groupIds: [FIXTURE_GROUP],
    },
    fileSigner(root),
  );
}

/** A host certified online by `root` that staples `extensions(host)` to every answer. */
async function hostUnder(root: SigningKeyPair, extensions: (host: SigningKeyPair) => ResponseExtensions) {
  const host = generateSigningKeyPair();
  const certificate = certificateBy(root, host);
  const kms = await startFakeKmsHost((req) =>
    answerOf({
      host,
      certificate,
      clientId: req.clientId,
      nonce: req.nonce,
      hostTime: T,
      extensions: extensions(host),
    }),
  );
  return { host, kms };
}

const currentStatus = (root: SigningKeyPair) => (host: SigningKeyPair) => ({
  hostStatus: hostStatusOf(root, hostKeyRefOf(host.publicKeyRaw), { issuedAt: T - HOUR }),
  transitions: [],
  delegations: [],
});

let n = 0;
function install(product: ProductConfig, clock = new ManualClock(T)): { licence: Licence; stateDir: string } {
  const stateDir = join(dir, `c${++n}`);
  return { licence: Licence.init({ stateDir, product, hardwareId: `hw-${n}`, clock }), stateDir };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('root rotation: a client whose product config knows only root A', () => {
  it('accepts a host certified under root B once an answer carries A→B, and keeps it after a restart', async () => {
    const { kms } = await hostUnder(rootB, (host) => ({
      ...currentStatus(rootB)(host),
      transitions: [transitionAB],
    }));
    const { licence, stateDir } = install(productA);
    licence.setKmsHost(kms.address);
    const outcome = await licence.activate();
    await kms.close();
    expect(outcome).toMatchObject({ ok: true, status: { state: 'licensed', method: 'kms' } });
    expect(outcome.status.evidence).toEqual({
      method: 'kms',
      signedBy: keyIdHex(rootB.publicKeyRaw),
      root: keyIdHex(rootB.publicKeyRaw),
    });
    // Kept in the store: a new process (the same product config) still believes B.
    const stored = JSON.parse(readFileSync(join(stateDir, 'licence.json'), 'utf8')) as {
      trust: { transitions: string[] };
    };
    expect(stored.trust.transitions).toEqual([transitionAB.toString('base64')]);
    const again = Licence.open({ stateDir, product: productA, clock: new ManualClock(T + DAY) }).status();
    expect(again).toMatchObject({ state: 'licensed', method: 'kms' });
    expect(again.trust.roots.map((r) => [r.keyId, r.source])).toEqual([
      [keyIdHex(rootA.publicKeyRaw), 'config'],
      [keyIdHex(rootB.publicKeyRaw), 'transition'],
    ]);
  });

  it('refuses a host certified by a root it does not know (no transition), naming the fix', async () => {
    const { kms } = await hostUnder(rootB, currentStatus(rootB));
    const { licence } = install(productA);
    licence.setKmsHost(kms.address);
    const outcome = await licence.activate();
    await kms.close();
    expect(outcome.ok).toBe(false);
    expect(outcome.code).toBe('KMS_CERT_UNTRUSTED');
    expect(outcome.message).toMatch(/install-trust/);
  });

  it('ignores a forged transition (signed by a stranger as A) and refuses the answer that needed it; nothing is stored', async () => {
    const forged = makeRootTransition(
      { nextPublicKey: stranger.publicKeyRaw, issuedAt: T - 10 * DAY, nextValidFrom: T - 5 * DAY },
      { ...fileSigner(stranger), keyId: fileSigner(rootA).keyId },
      fileSigner(stranger),
    );
    const { kms } = await hostUnder(stranger, (host) => ({
      ...currentStatus(stranger)(host),
      transitions: [forged],
    }));
    const { licence, stateDir } = install(productA);
    licence.setKmsHost(kms.address);
    const outcome = await licence.activate();
    await kms.close();
    expect(outcome.code).toBe('KMS_CERT_UNTRUSTED');
    expect(outcome.status.trust.roots).toHaveLength(1);
    const stored = JSON.parse(readFileSync(join(stateDir, 'licence.json'), 'utf8')) as {
      trust: { transitions: string[] };
    };
    expect(stored.trust.transitions).toEqual([]);
  });

  it('keeps a stored good record through an edit of the store; drops what does not decode; ignores a forged one', () => {
    const { licence, stateDir } = install(productA);
    licence.installTrust({ transitions: [transitionAB.toString('base64')], delegations: [] });
    const file = join(stateDir, 'licence.json');
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { trust: { transitions: string[] } };
    const forged = makeRootTransition(
      { nextPublicKey: stranger.publicKeyRaw, issuedAt: T - 10 * DAY, nextValidFrom: T - 5 * DAY },
      { ...fileSigner(stranger), keyId: fileSigner(rootA).keyId },
      fileSigner(stranger),
    ).toString('base64');
    stored.trust.transitions = [forged, 'bm90IGEgcmVjb3Jk', ...stored.trust.transitions];
    writeFileSync(file, JSON.stringify(stored));
    const reopened = Licence.open({ stateDir, product: productA, clock: new ManualClock(T) });
    expect(reopened.status().trust.roots.map((r) => r.keyId)).toEqual([
      keyIdHex(rootA.publicKeyRaw),
      keyIdHex(rootB.publicKeyRaw),
    ]);
    reopened.setKmsHost('127.0.0.1:1');
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { trust: { transitions: string[] } };
    expect(saved.trust.transitions).toEqual([forged, transitionAB.toString('base64')]);
  });

  it('does not accept root B for evidence it says was signed before B was valid', () => {
    const trust = ClientTrust.of(productA);
    trust.learn({ transitions: [transitionAB], delegations: [] });
    expect(trust.root(fileSigner(rootB).keyId, T)).not.toBeNull();
    expect(trust.root(fileSigner(rootB).keyId, T - 5 * DAY - SKEW - 1)).toBeNull();
  });
});

describe('host status: an online-certified host must show a current one', () => {
  const host = generateSigningKeyPair();
  const certificate = certificateBy(rootA, host);
  const trust = ClientTrust.of(productA);
  const clientId = Buffer.alloc(16, 2);
  const nonce = Buffer.alloc(16, 3);
  const check = (extensions: ResponseExtensions | undefined, cert = certificate, key = host): string => {
    try {
      verifyKmsResponse(
        answerOf({ host: key, certificate: cert, clientId, nonce, hostTime: T, ...(extensions ? { extensions } : {}) }),
        {
          trust,
          groupId: guidToBytes(FIXTURE_GROUP),
          clientId,
          mode: { kind: 'live', nonce },
          now: T,
          maxClockSkew: SKEW,
        },
      );
      return 'ok';
    } catch (err) {
      if (err instanceof ClientError) return err.code;
      throw err;
    }
  };
  const ref = hostKeyRefOf(host.publicKeyRaw);
  const withStatus = (hostStatus: Buffer): ResponseExtensions => ({ hostStatus, transitions: [], delegations: [] });

  it('accepts a current status and refuses an answer without one', () => {
    expect(check(withStatus(hostStatusOf(rootA, ref, { issuedAt: T - HOUR })))).toBe('ok');
    expect(check(undefined)).toBe('KMS_HOST_STATUS_MISSING');
  });

  it('refuses an expired status (past its next update + skew), one from the future, another host’s, a stranger’s', () => {
    expect(check(withStatus(hostStatusOf(rootA, ref, { issuedAt: T - 7 * DAY, nextUpdate: T - SKEW })))).toBe(
      'KMS_HOST_STATUS_MISSING',
    );
    expect(check(withStatus(hostStatusOf(rootA, ref, { issuedAt: T - 7 * DAY, nextUpdate: T - SKEW + 1 })))).toBe('ok');
    expect(check(withStatus(hostStatusOf(rootA, ref, { issuedAt: T + SKEW + 1 })))).toBe('KMS_HOST_STATUS_MISSING');
    expect(check(withStatus(hostStatusOf(rootA, Buffer.alloc(16, 7), { issuedAt: T - HOUR })))).toBe(
      'KMS_HOST_STATUS_MISSING',
    );
    expect(check(withStatus(hostStatusOf(stranger, ref, { issuedAt: T - HOUR })))).toBe('KMS_HOST_STATUS_MISSING');
  });

  it('accepts a phone-certified host (v2 certificate, root-signed) without a status', () => {
    const phoneHost = generateSigningKeyPair();
    const fields = {
      keyRef: Buffer.alloc(8, 5),
      issuedDay: dayOf(T) - 1,
      validityDays: 365,
      groupIds: [FIXTURE_GROUP],
    };
    const signature = signPhoneCertificateWithRoot(
      { ...fields, hostKeyRef: hostKeyRefOf(phoneHost.publicKeyRaw) },
      shortSigningKey(rootA.privateKey),
    );
    const phoneCert = buildPhoneCertificate(
      { ...fields, hostPublicKey: phoneHost.publicKeyRaw, issuerPublicKeyRaw: rootA.publicKeyRaw },
      signature,
    );
    expect(check(undefined, phoneCert, phoneHost)).toBe('ok');
  });

  it('accepts a phone certificate by an online key delegated for it (v2), not by one without the purpose', () => {
    const phoneCertBy = (online: SigningKeyPair, purposes: number, sequence: number) => {
      trust.learn({
        transitions: [],
        delegations: [
          makeDelegation(
            {
              delegatePublicKey: online.publicKeyRaw,
              sequence,
              validFrom: T - 10 * DAY,
              validUntil: T + 10 * DAY,
              purposes,
            },
            fileSigner(rootA),
          ),
        ],
      });
      const phoneHost = generateSigningKeyPair();
      const fields = {
        keyRef: Buffer.alloc(8, 6),
        issuedDay: dayOf(T) - 1,
        validityDays: 365,
        groupIds: [FIXTURE_GROUP],
      };
      const signature = signPhoneCertificate(
        { ...fields, hostKeyRef: hostKeyRefOf(phoneHost.publicKeyRaw) },
        { keyIndex: 1, short: shortSigningKey(online.privateKey) },
      );
      const cert = buildPhoneCertificate(
        { ...fields, hostPublicKey: phoneHost.publicKeyRaw, issuerPublicKeyRaw: online.publicKeyRaw },
        signature,
      );
      return check(undefined, cert, phoneHost);
    };
    expect(phoneCertBy(generateSigningKeyPair(), DELEGATION_PURPOSE.phoneHostCertificates, 3)).toBe('ok');
    expect(phoneCertBy(generateSigningKeyPair(), DELEGATION_PURPOSE.confirmations, 6)).toBe('KMS_CERT_UNTRUSTED');
  });
});

describe('the revocation list the client holds', () => {
  it('keeps a KMS activation made before the host was revoked until its own end; not one made after', async () => {
    const { host, kms } = await hostUnder(rootA, currentStatus(rootA));
    const { licence } = install(productA);
    licence.setKmsHost(kms.address);
    expect((await licence.activate()).ok).toBe(true);
    await kms.close();
    const revokedAt = (version: number, at: number) =>
      makeRevocationList(
        {
          listVersion: version,
          issuedAt: T + HOUR,
          nextUpdate: T + 7 * DAY,
          entries: [{ kind: 'host', subject: hostKeyRefOf(host.publicKeyRaw), revokedAt: at }],
        },
        fileSigner(rootA),
      );
    expect(licence.installRevocations(revokedAt(5, T + HOUR))).toMatchObject({ state: 'licensed', method: 'kms' });
    // A list saying the host was revoked before it answered (the answer was made by a revoked
    // host the client did not yet know of): the evidence grants nothing, not counted as an edit.
    expect(licence.installRevocations(revokedAt(6, T - HOUR))).toMatchObject({
      state: 'initial-grace',
      method: null,
    });
  });

  it("a revoked host's leaked key cannot write a KMS activation dated now into the store; evidence stored by releases before host statuses keeps licensing", () => {
    const host = generateSigningKeyPair();
    const clock = new ManualClock(T);
    const { licence, stateDir } = install(productA, clock);
    licence.installRevocations(
      makeRevocationList(
        {
          listVersion: 5,
          issuedAt: T - 20 * DAY,
          nextUpdate: T - 13 * DAY,
          entries: [{ kind: 'host', subject: hostKeyRefOf(host.publicKeyRaw), revokedAt: T - 20 * DAY }],
        },
        fileSigner(rootA),
      ),
    );
    const file = join(stateDir, 'licence.json');
    const record = JSON.parse(readFileSync(file, 'utf8')) as { clientMachineId: string; activation: unknown };
    const cert = certificateBy(rootA, host, T - 60 * DAY);
    const storeAnswer = (hostTime: number, f: { protocolVersion?: 1 | 2; extensions?: ResponseExtensions }) => {
      const evidence = answerOf({
        host,
        certificate: cert,
        clientId: guidToBytes(record.clientMachineId),
        nonce: Buffer.alloc(16),
        hostTime,
        ...f,
      });
      record.activation = {
        method: 'kms',
        evidence: evidence.toString('base64'),
        host: '10.0.0.1:1688',
        receivedAt: T,
      };
      writeFileSync(file, JSON.stringify(record));
      return Licence.open({ stateDir, product: productA, clock }).status();
    };
    // Dated now: no status (version 2), or a status from before the revocation that does not cover it.
    expect(storeAnswer(T - 60_000, {}).state).not.toBe('licensed');
    const before = hostStatusOf(rootA, hostKeyRefOf(host.publicKeyRaw), { issuedAt: T - 27 * DAY });
    const withStatus = { hostStatus: before, transitions: [], delegations: [] };
    expect(storeAnswer(T - 60_000, { extensions: withStatus }).state).not.toBe('licensed');
    // A version-1 answer (no extension area) dated after the revocation: the held list refuses it.
    expect(storeAnswer(T - 60_000, { protocolVersion: 1 }).state).not.toBe('licensed');
    // Evidence made before the revocation stays until its own end: version 2 with its status, version 1.
    expect(storeAnswer(T - 26 * DAY, { extensions: withStatus })).toMatchObject({ state: 'licensed', method: 'kms' });
    expect(storeAnswer(T - 26 * DAY, { protocolVersion: 1 })).toMatchObject({ state: 'licensed', method: 'kms' });
  });

  const listOf = (version: number, entries: Parameters<typeof makeRevocationList>[0]['entries']) =>
    makeRevocationList(
      { listVersion: version, issuedAt: T - HOUR, nextUpdate: T + 7 * DAY, entries },
      fileSigner(rootA),
    );

  it('refuses a host on it (KMS_HOST_REVOKED), even with a status; refuses an older list (REVOCATION_LIST_STALE)', async () => {
    const { host, kms } = await hostUnder(rootA, currentStatus(rootA));
    const { licence, stateDir } = install(productA);
    licence.setKmsHost(kms.address);
    const list = listOf(2, [{ kind: 'host', subject: hostKeyRefOf(host.publicKeyRaw), revokedAt: T - 2 * HOUR }]);
    expect(licence.installRevocations(list).trust.revocationListVersion).toBe(2);
    const outcome = await licence.activate();
    await kms.close();
    expect(outcome.code).toBe('KMS_HOST_REVOKED');
    expect(outcome.status.state).not.toBe('licensed');
    // An older list is refused, and the held one stays (after a restart too).
    expect(codeOf(() => licence.installRevocations(listOf(1, [])))).toBe('REVOCATION_LIST_STALE');
    expect(Licence.open({ stateDir, product: productA, clock: new ManualClock(T) }).status().trust).toMatchObject({
      revocationListVersion: 2,
    });
    // A list signed by a root it does not trust is refused.
    const foreign = makeRevocationList(
      { listVersion: 9, issuedAt: T - HOUR, nextUpdate: T + DAY, entries: [] },
      fileSigner(stranger),
    );
    expect(codeOf(() => licence.installRevocations(foreign))).toBe('REVOCATION_LIST_INVALID');
  });
});

describe('OEM markers and the held revocation list', () => {
  it('a marker of a revoked manufacturer no longer licenses, whatever its date, and is not counted as an edit', () => {
    const maker = generateSigningKeyPair();
    const certificate = signOemCertificate(
      {
        serial: '0e000000-0000-4000-8000-000000000001',
        manufacturer: 'Contoso',
        publicKeyRaw: maker.publicKeyRaw,
        groups: [{ id: FIXTURE_GROUP, name: 'fixture' }],
        notBefore: T - 100 * DAY,
        notAfter: T + 1000 * DAY,
      },
      fileSigner(rootA),
    );
    const { licence, stateDir } = install(productA);
    const marker = signOemMarker(
      { group: { id: FIXTURE_GROUP, name: 'fixture' }, hardwareId: `hw-${n}`, machine: 'M1', issuedAt: T - 50 * DAY },
      maker.privateKey,
      certificate,
    );
    const licensed = licence.installOemMarker(JSON.stringify(marker));
    expect(licensed).toMatchObject({ state: 'licensed', method: 'oem' });
    expect(licensed.evidence).toEqual({
      method: 'oem',
      signedBy: keyIdHex(rootA.publicKeyRaw),
      root: keyIdHex(rootA.publicKeyRaw),
    });
    // Revoked later than the marker's date: the date is the manufacturer's own signature, which
    // whoever stole its key can backdate, so it proves nothing.
    const list = makeRevocationList(
      {
        listVersion: 3,
        issuedAt: T - HOUR,
        nextUpdate: T + 7 * DAY,
        entries: [
          { kind: 'manufacturer', subject: revocationSubjectOfKeyId(keyIdOf(maker.publicKeyRaw)), revokedAt: T - HOUR },
        ],
      },
      fileSigner(rootA),
    );
    const after = licence.installRevocations(list);
    expect(after.method).toBeNull();
    expect(after.oem?.code).toBe('OEM_MANUFACTURER_REVOKED');
    expect(after.state).toBe('initial-grace'); // not non-genuine: the marker is genuine, just revoked
    expect(
      Licence.open({ stateDir, product: productA, hardwareId: `hw-${n}`, clock: new ManualClock(T) }).status().oem
        ?.code,
    ).toBe('OEM_MANUFACTURER_REVOKED');
  });
});

describe('tokens and the held revocation list', () => {
  it('a token of a revoked CA is refused at install and stops licensing, not counted as an edit', () => {
    const caKey = generateSigningKeyPair();
    const ca = signTokenCaCertificate(
      {
        serial: '0c000000-0000-4000-8000-000000000001',
        organisation: 'Fabrikam',
        group: { id: FIXTURE_GROUP, name: 'fixture' },
        publicKeyRaw: caKey.publicKeyRaw,
        notBefore: T - 100 * DAY,
        notAfter: T + 1000 * DAY,
      },
      fileSigner(rootA),
    );
    const tokenFor = (hardwareId: string, serial: string) =>
      JSON.stringify(
        signActivationToken({ serial, hardwareId, notBefore: T - DAY, notAfter: T + 300 * DAY }, caKey.privateKey, ca),
      );
    const list = makeRevocationList(
      {
        listVersion: 4,
        issuedAt: T - HOUR,
        nextUpdate: T + 7 * DAY,
        entries: [
          { kind: 'tokenCa', subject: revocationSubjectOfKeyId(keyIdOf(caKey.publicKeyRaw)), revokedAt: T - HOUR },
        ],
      },
      fileSigner(rootA),
    );
    const { licence } = install(productA);
    expect(licence.installToken(tokenFor(`hw-${n}`, '7a000000-0000-4000-8000-000000000001'))).toMatchObject({
      state: 'licensed',
      method: 'token',
    });
    const after = licence.installRevocations(list);
    expect(after.method).toBeNull();
    expect(after.token?.code).toBe('TOKEN_CA_REVOKED');
    expect(after.state).toBe('initial-grace');

    const { licence: fresh } = install(productA);
    fresh.installRevocations(list);
    expect(codeOf(() => fresh.installToken(tokenFor(`hw-${n}`, '7a000000-0000-4000-8000-000000000002')))).toBe(
      'TOKEN_CA_REVOKED',
    );
  });
});

describe('delegations: confirmation IDs signed by an online key', () => {
  const online = generateSigningKeyPair();
  const delegation = makeDelegation(
    {
      delegatePublicKey: online.publicKeyRaw,
      sequence: 0, // key index 1
      validFrom: T - DAY,
      validUntil: T + 30 * DAY,
      purposes: DELEGATION_PURPOSE.confirmations,
    },
    fileSigner(rootA),
  );
  const mak = makeKey('mak', undefined, guidToBytes(FIXTURE_GROUP)).text;

  it('refuses a v2 CID by phone before it knows the online key (CID_SIGNER_UNKNOWN), learns it from an online answer, keeps it', async () => {
    const { licence, stateDir } = install(productA);
    licence.installKey(mak);
    const hardwareId = `hw-${n}`;
    const iid = makeInstallationId({
      kind: 'installation',
      key: parseKey(mak),
      hardwareId,
      groupIds: [FIXTURE_GROUP],
    });
    expect(licence.installationId()).toBe(iid.text);
    const cid = confirmInstallation(iid, FIXTURE_GROUP, dayOf(T), {
      keyIndex: 1,
      short: shortSigningKey(online.privateKey),
    });
    expect(cid.keyIndex).toBe(1);
    let unknown: unknown;
    try {
      licence.installConfirmation(cid.text);
    } catch (err) {
      unknown = err;
    }
    expect(unknown).toMatchObject({ code: 'CID_SIGNER_UNKNOWN', message: expect.stringMatching(/install-trust/) });

    const server: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            confirmationId: cid.text,
            method: 'mak',
            group: 'fixture',
            used: 1,
            limit: 10,
            again: false,
            trust: { transitions: [], delegations: [delegation.toString('base64')] },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const outcome = await licence.activate({ authority: url });
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(outcome).toMatchObject({ ok: true, status: { state: 'licensed', method: 'mak' } });
    expect(outcome.status.evidence).toEqual({
      method: 'mak',
      signedBy: keyIdHex(online.publicKeyRaw),
      root: keyIdHex(rootA.publicKeyRaw),
    });
    const reopened = Licence.open({ stateDir, product: productA, hardwareId, clock: new ManualClock(T + 400 * DAY) });
    expect(reopened.status()).toMatchObject({ state: 'licensed', method: 'mak' });
  });

  it('ignores a delegation not signed by a trusted root', () => {
    const trust = ClientTrust.of(productA);
    const forged = makeDelegation(
      {
        delegatePublicKey: online.publicKeyRaw,
        sequence: 0,
        validFrom: T - DAY,
        validUntil: T + DAY,
        purposes: DELEGATION_PURPOSE.confirmations,
      },
      { ...fileSigner(stranger), keyId: fileSigner(rootA).keyId },
    );
    expect(trust.learn({ transitions: [], delegations: [forged] })).toBe(false);
    expect(trust.confirmationCandidates(1, dayOf(T))).toEqual([]);
    expect(trust.learn({ transitions: [], delegations: [delegation] })).toBe(true);
    expect(trust.confirmationCandidates(1, dayOf(T)).map((c) => c.signedBy)).toEqual([keyIdHex(online.publicKeyRaw)]);
  });
});

describe('set-product: bound to the authority, not to one root', () => {
  const write = (name: string, product: ProductConfig) => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(product));
    return path;
  };

  it('accepts a config whose roots are all the bound root or connected by a learned transition; refuses an unrelated one', () => {
    const { licence, stateDir } = install(productA);
    const both = productWith([{ pair: rootA }, { pair: rootB, validFrom: T - 5 * DAY }]);
    // B listed beside the bound root A is not trusted for being listed: A→B must be learned first.
    const storeBefore = readFileSync(join(stateDir, 'licence.json'), 'utf8');
    expect(codeOf(() => Licence.setProduct({ stateDir, product: both, productPath: write('ab0.json', both) }))).toBe(
      'PRODUCT_CONFIG_INVALID',
    );
    expect(readFileSync(join(stateDir, 'licence.json'), 'utf8')).toBe(storeBefore);
    licence.installTrust({ transitions: [transitionAB.toString('base64')], delegations: [] });
    expect(() => Licence.setProduct({ stateDir, product: both, productPath: write('ab.json', both) })).not.toThrow();

    // A store that learned A→B takes a config listing B alone (the publisher dropped A).
    const { licence: learner, stateDir: learnerDir } = install(productA);
    const onlyB = productWith([{ pair: rootB, validFrom: T - 5 * DAY }]);
    expect(
      codeOf(() => Licence.setProduct({ stateDir: learnerDir, product: onlyB, productPath: write('b.json', onlyB) })),
    ).toBe('PRODUCT_CONFIG_INVALID');
    const result = learner.installTrust({
      roots: [{ publicKey: rootB.publicKeyRaw.toString('base64') }],
      transitions: [transitionAB.toString('base64')],
      delegations: [],
    });
    expect(result.learned).toEqual({ transitions: 1, delegations: 0 });
    expect(() =>
      Licence.setProduct({ stateDir: learnerDir, product: onlyB, productPath: write('b2.json', onlyB) }),
    ).not.toThrow();

    const unrelated = productWith([{ pair: stranger }]);
    expect(
      codeOf(() => Licence.setProduct({ stateDir, product: unrelated, productPath: write('x.json', unrelated) })),
    ).toBe('PRODUCT_CONFIG_INVALID');
    expect(licence.status().state).toBe('initial-grace');
  });

  it("refuses a config that lists the bound root beside a root of the local administrator's: no licence from a host it certified", async () => {
    const clock = new ManualClock(T);
    const { licence, stateDir } = install(productA, clock);
    const evil = productWith([{ pair: rootA }, { pair: stranger }]); // the stranger's root current
    const storeBefore = readFileSync(join(stateDir, 'licence.json'), 'utf8');
    let message = '';
    try {
      Licence.setProduct({ stateDir, product: evil, productPath: write('a-evil.json', evil), clock });
    } catch (err) {
      expect((err as ClientError).code).toBe('PRODUCT_CONFIG_INVALID');
      message = (err as Error).message;
    }
    expect(message).toContain(keyIdHex(stranger.publicKeyRaw));
    expect(message).toContain('install-trust');
    expect(readFileSync(join(stateDir, 'licence.json'), 'utf8')).toBe(storeBefore);
    // The installation still believes A alone: a host certified by the stranger licenses nothing.
    const { kms } = await hostUnder(stranger, currentStatus(stranger));
    licence.setKmsHost(kms.address);
    const outcome = await licence.activate();
    await kms.close();
    expect(outcome.ok).toBe(false);
    expect(outcome.status.state).toBe('initial-grace');
    expect(licence.status().trust.roots.map((r) => r.keyId)).toEqual([keyIdHex(rootA.publicKeyRaw)]);
  });

  it("honours the new config's distrustedRoots: a root reached only through a distrusted one is not trusted", () => {
    const rootC = generateSigningKeyPair();
    const transitionBC = makeRootTransition(
      { nextPublicKey: rootC.publicKeyRaw, issuedAt: T - 4 * DAY, nextValidFrom: T - 4 * DAY },
      fileSigner(rootB),
      fileSigner(rootC),
    );
    const { licence, stateDir } = install(productA);
    licence.installTrust({
      transitions: [transitionAB, transitionBC].map((t) => t.toString('base64')),
      delegations: [],
    });
    const onlyC = productWith([{ pair: rootC, validFrom: T - 4 * DAY }]);
    const distrustingB = {
      ...onlyC,
      authority: { ...onlyC.authority, distrustedRoots: [keyIdHex(rootB.publicKeyRaw)] },
    };
    expect(
      codeOf(() =>
        Licence.setProduct({ stateDir, product: distrustingB, productPath: write('c-not-b.json', distrustingB) }),
      ),
    ).toBe('PRODUCT_CONFIG_INVALID');
    expect(() => Licence.setProduct({ stateDir, product: onlyC, productPath: write('c.json', onlyC) })).not.toThrow();
  });

  it('a config that drops a (leaked) root ends the evidence it signed: no licence, not counted as an edit', async () => {
    const { kms } = await hostUnder(rootA, currentStatus(rootA));
    const clock = new ManualClock(T);
    const { licence, stateDir } = install(productA, clock);
    licence.installTrust({ transitions: [transitionAB.toString('base64')], delegations: [] });
    licence.setKmsHost(kms.address);
    expect((await licence.activate()).status).toMatchObject({ state: 'licensed', method: 'kms' });
    await kms.close();
    const onlyB = productWith([{ pair: rootB, validFrom: T - 5 * DAY }]);
    const path = write('only-b.json', onlyB);
    Licence.setProduct({ stateDir, product: onlyB, productPath: path, clock });
    const after = Licence.open({ stateDir, product: onlyB, clock }).status();
    expect(after.method).toBeNull();
    expect(after.evidence).toBeNull();
    expect(after.state).toBe('initial-grace');
    expect(after.trust.roots.map((r) => r.keyId)).toEqual([keyIdHex(rootB.publicKeyRaw)]);
  });

  it("install-trust refuses another authority's bundle, and learns nothing from it (in memory or in the store)", () => {
    const { licence, stateDir } = install(productA);
    // A record that verifies under A, in a file whose listed roots are none of this installation's.
    expect(
      codeOf(() =>
        licence.installTrust({
          roots: [{ publicKey: stranger.publicKeyRaw.toString('base64') }],
          transitions: [transitionAB.toString('base64')],
          delegations: [],
        }),
      ),
    ).toBe('TRUST_FILE_INVALID');
    expect(licence.status().trust.roots.map((r) => r.keyId)).toEqual([keyIdHex(rootA.publicKeyRaw)]);
    licence.setKmsHost('127.0.0.1:1'); // any later save keeps nothing of the refused file
    const stored = JSON.parse(readFileSync(join(stateDir, 'licence.json'), 'utf8')) as { trust: { transitions: [] } };
    expect(stored.trust.transitions).toEqual([]);
  });
});

describe('the records the store keeps beyond its caps', () => {
  const delegationAt = (i: number) => {
    const online = generateSigningKeyPair();
    return {
      keyId: keyIdHex(online.publicKeyRaw),
      bytes: makeDelegation(
        {
          delegatePublicKey: online.publicKeyRaw,
          sequence: i,
          validFrom: T - (40 - i) * DAY,
          validUntil: T + 300 * DAY + i * DAY,
          purposes: DELEGATION_PURPOSE.confirmations,
        },
        fileSigner(rootA),
      ).toString('base64'),
    };
  };

  it('keeps the delegation that anchors the stored evidence, then the newest (a new record is persisted once 16 are kept)', () => {
    const all = Array.from({ length: 17 }, (_, i) => delegationAt(i));
    const before = { transitions: [], delegations: all.slice(0, 16).map((d) => d.bytes), revocationList: null };
    const trust = ClientTrust.of(productA, before);
    trust.learn({ transitions: [], delegations: [Buffer.from(all[16]!.bytes, 'base64')] });
    const newest = trust.stored(before).delegations;
    expect(newest).toHaveLength(16);
    expect(newest).toContain(all[16]!.bytes);
    expect(newest).not.toContain(all[0]!.bytes);
    // The oldest signed the CID this installation holds: it stays; the oldest of the others goes.
    const anchored = trust.stored(before, { signedBy: all[0]!.keyId, root: keyIdHex(rootA.publicKeyRaw) }).delegations;
    expect(anchored).toHaveLength(16);
    expect(anchored).toContain(all[0]!.bytes);
    expect(anchored).toContain(all[16]!.bytes);
    expect(anchored).not.toContain(all[1]!.bytes);
  });
});
