import { afterEach, describe, expect, it } from 'vitest';
import {
  BATCH_CONTEXT,
  DAY,
  ManualClock,
  decodeActivationResponse,
  encodeActivationResponse,
  encodeResponseBody,
  encodeResponseExtensions,
  fileSigner,
  generateSigningKeyPair,
  guidToBytes,
  issueHostCertificate,
  leafHash,
  randomGuid,
  signMessage,
  type ActivationRequest,
  type SigningKeyPair,
} from '@volact/core';
import { hostStatus } from '@volact/kms-host';
import { ClientTrust, Licence, VerificationMemo, verifyKmsResponse, type ClientError } from '@volact/client';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSlice, type Slice } from './harness.js';
import { startFakeKmsHost } from './fake-kms-host.js';
import { exchange } from './relay.js';

let slice: Slice | undefined;
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await slice?.close();
  slice = undefined;
});

describe('KMS activation threshold (reference: "KMS activation thresholds")', () => {
  it('keeps 4 clients of a threshold-5 group unlicensed with "count N of 5", licenses the 5th, then the first 4 on their next attempt', async () => {
    const clock = new ManualClock();
    slice = await startSlice(clock, { threshold: 5 });
    const clients = [1, 2, 3, 4, 5].map((i) => slice!.newClient(`c${i}`));
    for (let i = 0; i < 4; i++) {
      const outcome = await clients[i]!.activate();
      expect(outcome.ok).toBe(false);
      expect(outcome.code).toBe('KMS_THRESHOLD_NOT_MET');
      expect(outcome.message).toContain(`count ${i + 1} of 5`);
      expect(outcome.status.state).toBe('initial-grace');
      // not activated: the next attempt is the 2-hour retry the host asked for
      expect(Date.parse(outcome.status.nextAttemptAt) - clock.now()).toBe(2 * 60 * 60 * 1000);
    }
    const fifth = await clients[4]!.activate();
    expect(fifth.ok).toBe(true);
    expect(fifth.status).toMatchObject({ state: 'licensed', method: 'kms', count: 5 });
    expect(Date.parse(fifth.status.expiresAt!)).toBe(clock.now() + 180 * DAY);
    expect(Date.parse(fifth.status.nextAttemptAt) - clock.now()).toBe(7 * DAY);

    clock.advance(2 * 60 * 60 * 1000);
    for (const c of clients.slice(0, 4)) {
      const again = await c.runDue();
      expect(again?.ok).toBe(true);
      expect(again?.status.state).toBe('licensed');
      expect(again?.status.count).toBe(5); // a renewing client refreshes its entry, not a new one
    }
    expect(slice.host.counts()).toEqual([expect.objectContaining({ name: 'office14', count: 5, threshold: 5 })]);
  });
});

describe('windows and validity over time (reference: "KMS activation renewal", licence-state table)', () => {
  it('lowers the count after 30 days without renewals; licensed → out-of-tolerance after 180 days → notification 30 days later', async () => {
    const clock = new ManualClock();
    slice = await startSlice(clock, { threshold: 5 });
    const clients = [1, 2, 3, 4, 5].map((i) => slice!.newClient(`c${i}`));
    for (const c of clients) await c.activate();
    for (const c of clients.slice(0, 4)) await c.activate();
    expect(clients.map((c) => c.status().state)).toEqual(Array(5).fill('licensed'));
    expect(slice.host.counts()[0]?.count).toBe(5);

    // Three clients renew on day 20; the other two go quiet.
    clock.advance(20 * DAY);
    // The host renews its 30-day certificate past half-life (its 6-hourly timer, here by hand).
    expect((await slice.host.renewCertificateIfDue()).renewed).toBe(true);
    for (const c of clients.slice(0, 3)) expect((await c.activate()).ok).toBe(true);
    clock.advance(10 * DAY + 1000); // day 30: the quiet two expire from the window
    await slice.host.checkNow(); // its 6-hourly check: a host status for the next 7 days
    expect(slice.host.counts()[0]?.count).toBe(3);
    const late = slice.newClient('late');
    const outcome = await late.activate();
    expect(outcome.code).toBe('KMS_THRESHOLD_NOT_MET');
    expect(outcome.message).toContain('count 4 of 5');
    clock.advance(21 * DAY); // day 51: the renewals of day 20 have expired; only "late" (day 30) counts
    expect(slice.host.counts()[0]?.count).toBe(1);

    // Client 5 last renewed at day 0: licensed until day 180.
    const quiet = clients[4]!;
    clock.set(clock.now() - 51 * DAY - 1000 + 180 * DAY - 1);
    expect(quiet.status().state).toBe('licensed');
    clock.advance(2);
    expect(quiet.status().state).toBe('out-of-tolerance');
    clock.advance(30 * DAY);
    expect(quiet.status().state).toBe('notification');
    expect(quiet.status().method).toBe('kms');
  });

  it('an installation that never reaches a host leaves initial grace for notification after 30 days', async () => {
    const clock = new ManualClock();
    slice = await startSlice(clock);
    const c = slice.newClient('lonely');
    expect(c.status().state).toBe('initial-grace');
    clock.advance(30 * DAY);
    expect(c.status().state).toBe('notification');
  });

  it('tells subscribers when the state changes', async () => {
    const clock = new ManualClock();
    slice = await startSlice(clock, { threshold: 1 });
    const c = slice.newClient('watched');
    const seen: string[] = [];
    c.onChange((s) => seen.push(s.state));
    await c.activate();
    clock.advance(7 * DAY);
    expect((await c.runDue())?.ok).toBe(true); // renewal due after 7 days; still licensed
    expect(seen).toEqual(['licensed']);
    c.setKmsHost('127.0.0.1:1'); // the host is gone: nothing answers there
    clock.advance(181 * DAY);
    expect((await c.runDue())?.code).toBe('KMS_UNREACHABLE');
    expect(seen).toEqual(['licensed', 'out-of-tolerance']);
  });
});

describe('host restart (we keep the window; the reference host loses it)', () => {
  it('keeps the count across a restart, also as `host status` reads it', async () => {
    const clock = new ManualClock();
    slice = await startSlice(clock, { threshold: 5 });
    for (let i = 1; i <= 4; i++) await slice.newClient(`c${i}`).activate();
    expect(slice.host.counts()[0]?.count).toBe(4);
    await slice.restartHost();
    expect(slice.host.counts()[0]?.count).toBe(4);
    expect(hostStatus(slice.hostDir, clock).groups[0]?.count).toBe(4);
    // and the 5th client after the restart crosses the threshold
    const fifth = await slice.newClient('c5').activate();
    expect(fifth.ok).toBe(true);
    expect(fifth.status.count).toBe(5);
  });
});

describe('host certificate renewal', () => {
  it('renews the certificate online before it expires; clients keep activating past the first expiry', async () => {
    const clock = new ManualClock();
    slice = await startSlice(clock, { threshold: 1 });
    const c = slice.newClient('c1');
    expect((await c.activate()).ok).toBe(true);
    expect(await slice.host.renewCertificateIfDue()).toMatchObject({ renewed: false });
    clock.advance(14 * DAY); // not yet half of the 30-day certificate
    expect(await slice.host.renewCertificateIfDue()).toMatchObject({ renewed: false });
    clock.advance(2 * DAY); // past half-life: renewed
    const renewal = await slice.host.renewCertificateIfDue();
    expect(renewal.renewed).toBe(true);
    expect(renewal.expiresAt).toBe(clock.now() + 30 * DAY);
    clock.advance(14 * DAY); // the first certificate's last day; the second is not due yet
    await slice.host.checkNow(); // its 6-hourly check: a host status for the next 7 days
    clock.advance(6 * DAY); // past the first certificate's expiry
    const outcome = await c.activate();
    expect(outcome.ok).toBe(true);
    // the authority saw one activation and one renewal
    const hosts = await slice.authority.recentAudit(5);
    expect(hosts.filter((e) => e.action === 'host.activate' && e.result === 'OK').length).toBe(2);
  });
});

describe('a client trusts only signed answers from hosts its authority certified', () => {
  function signedResponse(
    request: ActivationRequest,
    hostKeys: SigningKeyPair,
    certificate: Buffer,
    overrides: { groupId?: Buffer; count?: number } = {},
    now = Date.now(),
  ): Buffer {
    const body = encodeResponseBody({
      groupId: overrides.groupId ?? request.groupId,
      clientId: request.clientId,
      nonce: request.nonce,
      hostTime: now,
      count: overrides.count ?? 1000,
      activationIntervalMin: 120,
      renewalIntervalMin: 10080,
    });
    const signature = signMessage(hostKeys.privateKey, Buffer.concat([BATCH_CONTEXT, leafHash(body)]));
    // a host certified online staples its status (from the authority) as a real host does
    const stapled = staples.get(certificate.toString('base64'));
    return encodeActivationResponse(body, certificate, [], signature, 0, stapled);
  }
  /** Certificate (base64) → the extension area with the host status the authority gave it. */
  const staples = new Map<string, Buffer>();

  it('rejects a host certified by another authority (an emulator) with KMS_CERT_UNTRUSTED', async () => {
    const clock = new ManualClock(Date.now());
    slice = await startSlice(clock);
    const otherRoot = generateSigningKeyPair();
    const hostKeys = generateSigningKeyPair();
    const cert = issueHostCertificate(
      {
        hostPublicKey: hostKeys.publicKeyRaw,
        serial: randomGuid(),
        hostKeyId: randomGuid(),
        issuedAt: clock.now() - DAY,
        expiresAt: clock.now() + 365 * DAY,
        groupIds: [slice.product.group.id],
      },
      fileSigner(otherRoot),
    );
    const fake = await startFakeKmsHost((req) => signedResponse(req, hostKeys, cert, {}, clock.now()));
    closers.push(() => void fake.server.close());
    const c = slice.newClient('victim');
    c.setKmsHost(fake.address);
    const outcome = await c.activate();
    expect(outcome.code).toBe('KMS_CERT_UNTRUSTED');
    expect(outcome.status.state).toBe('initial-grace');
  });

  async function certifiedFakeHost(s: Slice, groups: string[]) {
    const hostKeys = generateSigningKeyPair();
    const { key } = await s.authority.mintKey({ type: 'kms-host', groups });
    const { certificate } = await s.authority.activateHost({
      hostKey: key,
      hostPublicKey: hostKeys.publicKeyRaw,
      hardwareId: 'fake-hw',
    });
    const { status } = await s.authority.hostStatus(certificate);
    staples.set(
      certificate.toString('base64'),
      encodeResponseExtensions({ hostStatus: status, transitions: [], delegations: [] }),
    );
    return { hostKeys, certificate };
  }

  it('a verification memo (the simulator) skips only checks already passed on the same bytes', async () => {
    const clock = new ManualClock(Date.now());
    slice = await startSlice(clock);
    const { hostKeys, certificate } = await certifiedFakeHost(slice, ['office14']);
    const trust = ClientTrust.of(slice.product);
    const memo = new VerificationMemo(trust);
    const request = { groupId: guidToBytes(slice.product.group.id), clientId: randomBytes(16), nonce: randomBytes(16) };
    const expectation = {
      trust,
      groupId: request.groupId,
      clientId: request.clientId,
      mode: { kind: 'live' as const, nonce: request.nonce },
      now: clock.now(),
      maxClockSkew: 4 * 60 * 60 * 1000,
      memo,
    };
    const genuine = signedResponse(request as unknown as ActivationRequest, hostKeys, certificate, {}, clock.now());
    expect(verifyKmsResponse(genuine, expectation).response.count).toBe(1000);
    const codeOf = (payload: Buffer, e = expectation) => {
      try {
        verifyKmsResponse(payload, e);
        return 'verified';
      } catch (err) {
        return (err as ClientError).code;
      }
    };
    // The certificate is remembered; a raised count in the same signed answer is still caught.
    const raised = Buffer.from(genuine);
    raised.writeUInt32BE(5000, 60);
    expect(codeOf(raised)).toBe('KMS_BAD_SIGNATURE');
    const flipped = Buffer.from(genuine);
    flipped[signatureEnd(flipped) - 1]! ^= 0x01; // (a version-2 answer ends with its extension area)
    expect(codeOf(flipped)).toBe('KMS_BAD_SIGNATURE');
    // A memo made under another trust store is not used: the certificate is checked again.
    const otherRoot = generateSigningKeyPair();
    const other = ClientTrust.of({
      ...slice.product,
      authority: { rootPublicKey: otherRoot.publicKeyRaw.toString('base64') },
    });
    expect(codeOf(genuine, { ...expectation, trust: other })).toBe('KMS_CERT_UNTRUSTED');
    expect(codeOf(genuine)).toBe('verified');
  });

  it('rejects a response whose signature does not verify with KMS_BAD_SIGNATURE', async () => {
    const clock = new ManualClock(Date.now());
    slice = await startSlice(clock);
    const { hostKeys, certificate } = await certifiedFakeHost(slice, ['office14']);
    const fake = await startFakeKmsHost((req) => {
      const payload = signedResponse(req, hostKeys, certificate, {}, clock.now());
      payload[signatureEnd(payload) - 1]! ^= 0x01; // last byte of the signature
      return payload;
    });
    closers.push(() => void fake.server.close());
    const c = slice.newClient('victim');
    c.setKmsHost(fake.address);
    expect((await c.activate()).code).toBe('KMS_BAD_SIGNATURE');
    // a count raised inside a genuinely signed body is caught the same way
    const forged = await startFakeKmsHost((req) => {
      const payload = signedResponse(req, hostKeys, certificate, { count: 1 }, clock.now());
      payload.writeUInt32BE(1000, 60);
      return payload;
    });
    closers.push(() => void forged.server.close());
    c.setKmsHost(forged.address);
    expect((await c.activate()).code).toBe('KMS_BAD_SIGNATURE');
  });

  it('rejects a replayed genuine response (old nonce) with KMS_NONCE_MISMATCH', async () => {
    const clock = new ManualClock(Date.now());
    slice = await startSlice(clock, { threshold: 1 });
    const c = slice.newClient('victim');
    // Capture a genuine, licensing response through a relay.
    let captured: Buffer | undefined;
    const relay = await startFakeKmsHost(async (req) => {
      captured ??= await exchange(req, slice!.hostAddress());
      return captured;
    });
    closers.push(() => void relay.server.close());
    c.setKmsHost(relay.address);
    await expect(c.activate()).resolves.toMatchObject({ ok: true });
    const second = await c.activate(); // same bytes again: the nonce is the first request's
    expect(second.code).toBe('KMS_NONCE_MISMATCH');
  });

  it('rejects a correctly signed response for another group with KMS_GROUP_MISMATCH', async () => {
    const clock = new ManualClock(Date.now());
    slice = await startSlice(clock, { groups: ['office14', 'project14'] });
    const { hostKeys, certificate } = await certifiedFakeHost(slice, ['office14', 'project14']);
    const otherGroup = (await slice.authority.productConfig('project14')).group.id;
    const fake = await startFakeKmsHost((req) =>
      signedResponse(req, hostKeys, certificate, { groupId: guidToBytes(otherGroup) }, clock.now()),
    );
    closers.push(() => void fake.server.close());
    const c = slice.newClient('victim');
    c.setKmsHost(fake.address);
    expect((await c.activate()).code).toBe('KMS_GROUP_MISMATCH');
  });

  it('rejects a host whose certificate does not cover the group with KMS_CERT_GROUP_MISMATCH', async () => {
    const clock = new ManualClock(Date.now());
    slice = await startSlice(clock, { groups: ['office14', 'project14'] });
    const { hostKeys, certificate } = await certifiedFakeHost(slice, ['project14']);
    const fake = await startFakeKmsHost((req) => signedResponse(req, hostKeys, certificate, {}, clock.now()));
    closers.push(() => void fake.server.close());
    const c = slice.newClient('victim');
    c.setKmsHost(fake.address);
    expect((await c.activate()).code).toBe('KMS_CERT_GROUP_MISMATCH');
  });

  it('pins trust in the app: a licence store pointed at another authority activates nothing', async () => {
    const clock = new ManualClock(Date.now());
    slice = await startSlice(clock, { threshold: 5 });
    slice.newClient('pinned');
    const stateDir = join(slice.root, 'clients', 'pinned');
    // An attacker swaps the product config in the store for their own authority's (threshold 1)
    // and runs their own host: with the app's pinned config, it must not activate.
    const rogue = await startSlice(clock, { threshold: 1 });
    closers.push(() => rogue.close());
    const file = join(stateDir, 'licence.json');
    const record = JSON.parse(readFileSync(file, 'utf8'));
    record.product = { ...rogue.product, group: { ...rogue.product.group, id: slice.product.group.id } };
    writeFileSync(file, JSON.stringify(record));
    const licence = Licence.open({ stateDir, clock, product: slice.product });
    licence.setKmsHost(rogue.hostAddress());
    const outcome = await licence.activate();
    expect(outcome.ok).toBe(false);
    expect(['KMS_CERT_UNTRUSTED', 'KMS_HOST_ERROR']).toContain(outcome.code);
    expect(outcome.status.state).toBe('initial-grace');
  });

  it("refuses stored evidence signed outside its certificate's validity (a leaked host key minting future licences)", async () => {
    const clock = new ManualClock(Date.now());
    slice = await startSlice(clock, { threshold: 1 });
    const { hostKeys, certificate } = await certifiedFakeHost(slice, ['office14']);
    const c = slice.newClient('future');
    const stateDir = join(slice.root, 'clients', 'future');
    const file = join(stateDir, 'licence.json');
    const record = JSON.parse(readFileSync(file, 'utf8'));
    const request = {
      licenceState: 2,
      groupId: guidToBytes(slice.product.group.id),
      clientId: guidToBytes(c.clientMachineId),
      nonce: Buffer.alloc(16),
      clientTime: clock.now(),
    };
    const farFuture = clock.now() + 3 * 365 * DAY; // after the certificate's 365 days
    record.activation = {
      method: 'kms',
      evidence: signedResponse(request, hostKeys, certificate, {}, farFuture).toString('base64'),
      host: 'forged:1688',
      receivedAt: clock.now(),
    };
    writeFileSync(file, JSON.stringify(record));
    expect(Licence.open({ stateDir, clock }).status().state).toBe('non-genuine-grace');
    // the same evidence dated inside the certificate's validity would be genuine
    record.activation.evidence = signedResponse(request, hostKeys, certificate, {}, clock.now()).toString('base64');
    writeFileSync(file, JSON.stringify(record));
    expect(Licence.open({ stateDir, clock }).status().state).toBe('licensed');
  });

  it('an app update with a higher threshold makes a stored activation not count, without calling it tampered', async () => {
    const clock = new ManualClock(Date.now());
    slice = await startSlice(clock, { threshold: 1 });
    const c = slice.newClient('upgraded');
    expect((await c.activate()).ok).toBe(true);
    const stricter = { ...slice.product, group: { ...slice.product.group, threshold: 5 } };
    const reopened = Licence.open({ stateDir: join(slice.root, 'clients', 'upgraded'), clock, product: stricter });
    expect(reopened.status().state).toBe('initial-grace');
  });

  it('detects an edited licence store: the stored evidence no longer verifies → non-genuine grace', async () => {
    const clock = new ManualClock(Date.now());
    slice = await startSlice(clock, { threshold: 1 });
    const c = slice.newClient('tamper');
    await c.activate();
    const file = join(slice.root, 'clients', 'tamper', 'licence.json');
    const record = JSON.parse(readFileSync(file, 'utf8'));
    const evidence = Buffer.from(record.activation.evidence, 'base64');
    evidence.writeBigUInt64BE(BigInt(clock.now() + 3650 * DAY), 52); // try to extend the licence by ten years
    record.activation.evidence = evidence.toString('base64');
    writeFileSync(file, JSON.stringify(record));
    const reopened = Licence.open({ stateDir: join(slice.root, 'clients', 'tamper'), clock });
    expect(reopened.status().state).toBe('non-genuine-grace');
    clock.advance(30 * DAY);
    expect(reopened.status().state).toBe('notification');
  });
});

/** Where a response's signature ends (a version-2 answer carries its extension area after it). */
function signatureEnd(payload: Buffer): number {
  const signature = decodeActivationResponse(payload).signature;
  return payload.indexOf(signature) + signature.length;
}
