import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DAY,
  HostErrorCode,
  ManualClock,
  MessageType,
  decodeActivationResponse,
  decodeErrorResponse,
  decodeHostCertificate,
  encodeActivationRequest,
  encodeActivationResponse,
  fileSigner,
  generateSigningKeyPair,
  guidToBytes,
  issueHostCertificate,
  randomGuid,
  type HostCertificate,
} from '@volact/core';
import { KmsService, defaultKmsPolicy, type Decision } from './kms-service.js';
import { WindowStore } from './window-store.js';

const G1 = '11111111-1111-4111-8111-111111111111';
const G2 = '22222222-2222-4222-8222-222222222222';
const G3 = '33333333-3333-4333-8333-333333333333'; // in the activation, not in the certificate

function req(groupId: string, clientId: Buffer, licenceState = 0, nonce = randomBytes(16)): Buffer {
  return encodeActivationRequest({ licenceState, groupId: guidToBytes(groupId), clientId, nonce, clientTime: 0 });
}

/** Decodes a counted decision's body through a minimal response (no certificate, no proof). */
function counted(d: Decision): ReturnType<typeof decodeActivationResponse> {
  if (d.kind !== 'counted') throw new Error(`refused: ${decodeErrorResponse(d.payload).message}`);
  expect(d.body[1]).toBe(MessageType.ActivationResponse);
  return decodeActivationResponse(encodeActivationResponse(d.body, Buffer.alloc(0), [], Buffer.alloc(64)));
}

function refused(d: Decision): { code: number; nonce: Buffer; message: string } {
  if (d.kind !== 'refused') throw new Error('expected a refusal');
  return decodeErrorResponse(d.payload);
}

describe('KmsService', () => {
  let dir: string;
  let store: WindowStore;
  let clock: ManualClock;
  let certificate: HostCertificate;
  const groups = [
    { id: G1, name: 'office14', threshold: 5 },
    { id: G2, name: 'windows', threshold: 25 },
    { id: G3, name: 'not-certified', threshold: 5 },
  ];
  const service = () => new KmsService({ clock, store, certificate, groups, policy: defaultKmsPolicy });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'volact-kms-service-'));
    store = new WindowStore(join(dir, 'host.db'));
    clock = new ManualClock();
    certificate = decodeHostCertificate(
      issueHostCertificate(
        {
          hostPublicKey: generateSigningKeyPair().publicKeyRaw,
          serial: randomGuid(),
          hostKeyId: randomGuid(),
          issuedAt: clock.now(),
          expiresAt: clock.now() + 365 * DAY,
          groupIds: [G1, G2],
        },
        fileSigner(generateSigningKeyPair()),
      ),
    );
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a request with the group, client, nonce, host time, count and intervals', () => {
    const kms = service();
    const client = randomBytes(16);
    const nonce = randomBytes(16);
    const r = counted(kms.handle(req(G1, client, 1, nonce)));
    expect(r.groupId).toEqual(guidToBytes(G1));
    expect(r.clientId).toEqual(client);
    expect(r.nonce).toEqual(nonce);
    expect(r.hostTime).toBe(clock.now());
    expect(r.count).toBe(1);
    expect(r.activationIntervalMin).toBe(120);
    expect(r.renewalIntervalMin).toBe(7 * 24 * 60);
  });

  it('answers in the version of the request: 1 to a client before version 2, 2 to one that reads the extension area', () => {
    const kms = service();
    const fields = {
      licenceState: 0,
      groupId: guidToBytes(G1),
      clientId: randomBytes(16),
      nonce: randomBytes(16),
      clientTime: 0,
    };
    const v1 = kms.handle(encodeActivationRequest(fields, 1));
    const v2 = kms.handle(encodeActivationRequest(fields, 2));
    if (v1.kind !== 'counted' || v2.kind !== 'counted') throw new Error('refused');
    expect(v1.body[0]).toBe(1);
    expect(v2.body[0]).toBe(2);
    expect(v1.body.subarray(1, 52)).toEqual(v2.body.subarray(1, 52));
  });

  it('counts distinct clients per group; groups are independent', () => {
    const kms = service();
    const a = randomBytes(16);
    const b = randomBytes(16);
    expect(counted(kms.handle(req(G1, a))).count).toBe(1);
    expect(counted(kms.handle(req(G1, b))).count).toBe(2);
    expect(counted(kms.handle(req(G1, a))).count).toBe(2);
    expect(counted(kms.handle(req(G2, a))).count).toBe(1);
    expect(kms.counts().map((g) => [g.name, g.count, g.threshold])).toEqual([
      ['office14', 2, 5],
      ['windows', 1, 25],
    ]);
  });

  it('serves only groups named by its certificate', () => {
    const kms = service();
    const nonce = randomBytes(16);
    const e = refused(kms.handle(req(G3, randomBytes(16), 0, nonce)));
    expect(e.code).toBe(HostErrorCode.GROUP_NOT_SERVED);
    expect(e.nonce).toEqual(nonce);
    expect(e.message).toContain(G3);
    expect(refused(kms.handle(req(randomGuid(), randomBytes(16)))).code).toBe(HostErrorCode.GROUP_NOT_SERVED);
    expect(kms.counts().map((g) => g.name)).toEqual(['office14', 'windows']);
    expect(kms.counts().every((g) => g.count === 0)).toBe(true);
  });

  it('refuses malformed requests (MALFORMED_REQUEST) and other versions (UNSUPPORTED_VERSION) without counting', () => {
    const kms = service();
    const good = req(G1, randomBytes(16));
    const corrupted = Buffer.from(good);
    corrupted[25] = (corrupted[25] as number) ^ 4;
    expect(refused(kms.handle(corrupted)).code).toBe(HostErrorCode.MALFORMED_REQUEST);
    expect(refused(kms.handle(good.subarray(0, 67))).code).toBe(HostErrorCode.MALFORMED_REQUEST);
    expect(refused(kms.handle(Buffer.from([1]))).code).toBe(HostErrorCode.MALFORMED_REQUEST);
    const v3 = Buffer.from(good);
    v3[0] = 3;
    const e = refused(kms.handle(v3));
    expect(e.code).toBe(HostErrorCode.UNSUPPORTED_VERSION);
    expect(e.nonce).toEqual(Buffer.alloc(16));
    expect(kms.counts()[0]?.count).toBe(0);
    expect(kms.stats.totalRequests).toBe(4);
    expect(kms.stats.failedRequests).toBe(4);
  });

  it('refuses every request once its certificate has expired (checked first), without counting', () => {
    const kms = service();
    counted(kms.handle(req(G1, randomBytes(16))));
    clock.set(certificate.expiresAt - 1);
    counted(kms.handle(req(G1, randomBytes(16))));
    clock.set(certificate.expiresAt);
    expect(refused(kms.handle(req(G1, randomBytes(16)))).code).toBe(HostErrorCode.CERTIFICATE_EXPIRED);
    expect(refused(kms.handle(req(G3, randomBytes(16)))).code).toBe(HostErrorCode.CERTIFICATE_EXPIRED);
    expect(kms.stats.failedRequests).toBe(2);
  });

  it('keeps statistics: total, failed and counted requests by licence state', () => {
    const kms = service();
    for (const state of [0, 1, 1, 2, 5, 5, 5]) counted(kms.handle(req(G1, randomBytes(16), state)));
    refused(kms.handle(req(G3, randomBytes(16), 3)));
    expect(kms.stats).toEqual({ totalRequests: 8, failedRequests: 1, byLicenceState: [1, 2, 1, 0, 0, 3] });
  });

  it('a new service on the same store restores the windows and statistics written by flush()', () => {
    const first = service();
    const a = randomBytes(16);
    counted(first.handle(req(G1, a, 1)));
    counted(first.handle(req(G1, randomBytes(16), 1)));
    counted(first.handle(req(G2, a, 0)));
    refused(first.handle(Buffer.from([1, 1])));
    first.flush();
    const second = service();
    expect(second.counts().map((g) => g.count)).toEqual([2, 1]);
    expect(second.stats).toEqual(first.stats);
    expect(counted(second.handle(req(G1, a))).count).toBe(2);
  });

  it('what was not flushed is not restored', () => {
    const first = service();
    counted(first.handle(req(G1, randomBytes(16))));
    expect(service().counts()[0]?.count).toBe(0);
  });

  it('a restored window still expires entries 30 days after their last request', () => {
    const first = service();
    const t0 = clock.now();
    counted(first.handle(req(G1, randomBytes(16))));
    clock.advance(10 * DAY);
    counted(first.handle(req(G1, randomBytes(16))));
    first.flush();
    clock.set(t0 + 30 * DAY - 1);
    expect(service().counts()[0]?.count).toBe(2);
    clock.set(t0 + 30 * DAY);
    const later = service();
    expect(later.counts()[0]?.count).toBe(1);
    clock.set(t0 + 40 * DAY);
    expect(later.counts()[0]?.count).toBe(0);
    later.flush(); // purges the expired rows
    expect(store.liveCount(G1, 0)).toBe(0);
  });

  it('issue-review: a failed flush keeps its changes for the next flush (nothing lost from disk)', () => {
    const svc = service();
    for (let i = 0; i < 5; i++) counted(svc.handle(req(G1, randomBytes(16))));
    const realFlush = store.flush.bind(store);
    store.flush = () => {
      throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    };
    expect(() => svc.flush()).toThrow('database is locked');
    store.flush = realFlush;
    svc.flush();
    expect(store.liveCount(G1, Math.floor((clock.now() - Date.UTC(2020, 0, 1)) / 1000))).toBe(5);
  });

  it('issue-review: restoring under a shorter window cuts the saved expiries to it', () => {
    const first = service();
    for (let i = 0; i < 6; i++) counted(first.handle(req(G1, randomBytes(16))));
    first.flush();
    const shorter = new KmsService({
      clock,
      store,
      certificate,
      groups,
      policy: { ...defaultKmsPolicy, clientIdWindow: 1 * DAY },
    });
    expect(shorter.counts().find((g) => g.id === G1)?.count).toBe(6);
    clock.advance(1 * DAY + 1000);
    counted(shorter.handle(req(G1, randomBytes(16))));
    expect(shorter.counts().find((g) => g.id === G1)?.count).toBe(1);
  });

  it('issue-review: a full window makes room by dropping the entry closest to expiry', () => {
    const svc = new KmsService({
      clock,
      store,
      certificate,
      groups,
      policy: { ...defaultKmsPolicy, maxClientIdsPerGroup: 3 },
    });
    const first = randomBytes(16);
    counted(svc.handle(req(G1, first)));
    clock.advance(1000);
    for (let i = 0; i < 3; i++) expect(counted(svc.handle(req(G1, randomBytes(16)))).count).toBe(Math.min(i + 2, 3));
    // the first client was dropped: asking again counts it as new, and the window stays at 3
    expect(counted(svc.handle(req(G1, first))).count).toBe(3);
  });
});
