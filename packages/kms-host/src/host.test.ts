import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BATCH_CONTEXT,
  DAY,
  HostErrorCode,
  MessageType,
  decodeActivationResponse,
  decodeErrorResponse,
  decodeHostCertificate,
  frame,
  guidToBytes,
  hostPublicKeyOf,
  leafHash,
  messageTypeOf,
  publicKeyFromRaw,
  rootFromProof,
  verifyHostCertificate,
  verifyMessage,
  type ActivationResponse,
} from '@volact/core';
import { hostStatus, startKmsHost, type RunningKmsHost } from './host.js';
import { HostState } from './host-state.js';
import { KmsHostError } from './errors.js';
import { activateHostOnline } from './activation.js';
import { ask, createActivatedHost, exchange, requestPayload, type HostFixture } from './test-fixture.js';

const LOCAL = { host: '127.0.0.1', port: 0 };

function asResponse(payload: Buffer): ActivationResponse {
  if (messageTypeOf(payload) !== MessageType.ActivationResponse) {
    throw new Error(`expected an activation response, got ${JSON.stringify(decodeErrorResponse(payload))}`);
  }
  return decodeActivationResponse(payload);
}

async function expectRejects(promise: Promise<unknown>): Promise<KmsHostError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(KmsHostError);
    return err as KmsHostError;
  }
  throw new Error('expected the call to fail');
}

describe('KMS host over TCP, activated by a real authority', () => {
  let fx: HostFixture;
  let host: RunningKmsHost | undefined;
  const start = async (extra: Partial<Parameters<typeof startKmsHost>[0]> = {}) => {
    host = await startKmsHost({ dataDir: fx.hostDir, listen: LOCAL, clock: fx.clock, ...extra });
    return host;
  };
  const stop = async () => {
    await host?.close();
    host = undefined;
  };
  const officeCount = (h: RunningKmsHost) => h.counts().find((g) => g.name === 'office14')?.count;

  beforeEach(async () => {
    fx = await createActivatedHost();
  });
  afterEach(async () => {
    await stop();
    await fx.cleanup();
  });

  it('answers a valid request with a count, signed by the certified host key, certified by the authority root', async () => {
    const h = await start();
    expect(h.address.host).toBe('127.0.0.1');
    expect(h.address.port).toBeGreaterThan(0);
    const clientId = randomBytes(16);
    const nonce = randomBytes(16);
    const r = asResponse(await ask(h.address, requestPayload(fx.group.id, { clientId, nonce, licenceState: 2 })));

    expect(r.count).toBe(1);
    expect(r.groupId).toEqual(guidToBytes(fx.group.id));
    expect(r.clientId).toEqual(clientId);
    expect(r.nonce).toEqual(nonce);
    expect(r.hostTime).toBe(fx.clock.now());
    expect(r.activationIntervalMin).toBe(120);
    expect(r.renewalIntervalMin).toBe(7 * 24 * 60);

    // certificate: issued by this authority's root, for this host's key and group
    const cert = decodeHostCertificate(r.certificate);
    expect(verifyHostCertificate(cert, publicKeyFromRaw(fx.authority.rootPublicKeyRaw))).toBe(true);
    expect(cert.hostPublicKey).toEqual(fx.state.signingKey().publicKeyRaw);
    expect(cert.groupIds).toEqual([fx.group.id]);
    expect(cert.expiresAt).toBeGreaterThan(fx.clock.now());

    // signature: over the Merkle root reproduced from this body and its proof
    const root = rootFromProof(leafHash(r.body), r.proof);
    expect(verifyMessage(hostPublicKeyOf(cert), Buffer.concat([BATCH_CONTEXT, root]), r.signature)).toBe(true);
    // ... and not for a changed count
    const forged = Buffer.from(r.body);
    forged.writeUInt32BE(25, 60);
    expect(
      verifyMessage(
        hostPublicKeyOf(cert),
        Buffer.concat([BATCH_CONTEXT, rootFromProof(leafHash(forged), r.proof)]),
        r.signature,
      ),
    ).toBe(false);
  });

  it('counts distinct clients: a second client makes 2, the first one again stays 2', async () => {
    const h = await start();
    const a = randomBytes(16);
    expect(asResponse(await ask(h.address, requestPayload(fx.group.id, { clientId: a }))).count).toBe(1);
    expect(asResponse(await ask(h.address, requestPayload(fx.group.id))).count).toBe(2);
    expect(asResponse(await ask(h.address, requestPayload(fx.group.id, { clientId: a }))).count).toBe(2);
    expect(officeCount(h)).toBe(2);
  });

  it('answers many requests sent in one write, in order, each verifiable (batch signing)', async () => {
    const h = await start();
    const nonces = Array.from({ length: 20 }, () => randomBytes(16));
    const responses = (
      await exchange(h.address, Buffer.concat(nonces.map((nonce) => frame(requestPayload(fx.group.id, { nonce })))), 20)
    ).map(asResponse);
    expect(responses.map((r) => r.nonce)).toEqual(nonces);
    expect(responses.map((r) => r.count)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const key = hostPublicKeyOf(decodeHostCertificate(responses[0]!.certificate));
    for (const r of responses) {
      expect(
        verifyMessage(key, Buffer.concat([BATCH_CONTEXT, rootFromProof(leafHash(r.body), r.proof)]), r.signature),
      ).toBe(true);
    }
  });

  it('refuses a group it does not serve with GROUP_NOT_SERVED and does not change any count', async () => {
    const h = await start();
    await ask(h.address, requestPayload(fx.group.id));
    const before = h.counts();
    for (const groupId of [fx.otherGroup.id, '01234567-89ab-4cde-8f01-23456789abcd']) {
      const nonce = randomBytes(16);
      const payload = await ask(h.address, requestPayload(groupId, { nonce }));
      expect(messageTypeOf(payload)).toBe(MessageType.ErrorResponse);
      const e = decodeErrorResponse(payload);
      expect(e.code).toBe(HostErrorCode.GROUP_NOT_SERVED);
      expect(e.nonce).toEqual(nonce);
      expect(e.message).toContain(groupId);
    }
    expect(h.counts()).toEqual(before);
    expect(h.counts().map((g) => g.name)).toEqual(['office14']);
  });

  it('answers a corrupted request with MALFORMED_REQUEST and keeps the connection for the next one', async () => {
    const h = await start();
    const bad = requestPayload(fx.group.id);
    bad[40] = (bad[40] as number) ^ 1;
    const [first, second] = await exchange(
      h.address,
      Buffer.concat([frame(bad), frame(requestPayload(fx.group.id))]),
      2,
    );
    expect(decodeErrorResponse(first!).code).toBe(HostErrorCode.MALFORMED_REQUEST);
    expect(asResponse(second!).count).toBe(1);
  });

  it('reports statistics (total, failed, by licence state) through hostStatus after close', async () => {
    const h = await start();
    for (const licenceState of [0, 1, 1, 2, 5])
      asResponse(await ask(h.address, requestPayload(fx.group.id, { licenceState })));
    await ask(h.address, requestPayload(fx.otherGroup.id, { licenceState: 3 }));
    const broken = requestPayload(fx.group.id);
    broken[61] = (broken[61] as number) ^ 0xff;
    await ask(h.address, broken);
    expect(h.statistics()).toEqual({ totalRequests: 7, failedRequests: 2, byLicenceState: [1, 2, 1, 0, 0, 1] });
    await stop();

    const status = hostStatus(fx.hostDir, fx.clock);
    expect(status.requests).toEqual({
      total: 7,
      failed: 2,
      byClientState: {
        unlicensed: 1,
        licensed: 2,
        'initial-grace': 1,
        'out-of-tolerance': 0,
        'non-genuine-grace': 0,
        notification: 1,
      },
    });
    expect(status.groups).toEqual([{ name: 'office14', id: fx.group.id, count: 5, threshold: 5 }]);
    expect(status.activated).toBe(true);
    expect(status.authorityUrl).toBe(new URL(fx.authorityUrl).origin);
    expect(status.hardwareId).toBe('hw-1');
    expect(status.keyInstalled).toBe(`…${fx.hostKey.replace(/-/g, '').slice(-5)}`);
    expect(JSON.stringify(status)).not.toContain(fx.hostKey);
  });

  it('keeps the window and statistics across a restart (and hostStatus reads them while stopped)', async () => {
    let h = await start();
    const clients = Array.from({ length: 3 }, () => randomBytes(16));
    for (const clientId of clients) await ask(h.address, requestPayload(fx.group.id, { clientId }));
    await ask(h.address, requestPayload(fx.otherGroup.id));
    await stop();

    const stopped = hostStatus(fx.hostDir, fx.clock);
    expect(stopped.groups[0]?.count).toBe(3);
    expect(stopped.requests.total).toBe(4);
    expect(stopped.requests.failed).toBe(1);

    h = await start();
    expect(officeCount(h)).toBe(3);
    expect(h.statistics().totalRequests).toBe(4);
    expect(asResponse(await ask(h.address, requestPayload(fx.group.id, { clientId: clients[1] }))).count).toBe(3);
    expect(asResponse(await ask(h.address, requestPayload(fx.group.id))).count).toBe(4);
    await stop();
    const after = hostStatus(fx.hostDir, fx.clock);
    expect(after.groups[0]?.count).toBe(4);
    expect(after.requests.total).toBe(6);
    expect(after.requests.failed).toBe(1);
  });

  it('counts fall when clients have not come back for 30 days, while running and after a restart', async () => {
    const h = await start();
    const t0 = fx.clock.now();
    const early = randomBytes(16);
    const refreshed = randomBytes(16);
    await ask(h.address, requestPayload(fx.group.id, { clientId: early }));
    await ask(h.address, requestPayload(fx.group.id, { clientId: refreshed }));
    fx.clock.advance(10 * DAY);
    expect(asResponse(await ask(h.address, requestPayload(fx.group.id))).count).toBe(3);
    fx.clock.advance(10 * DAY);
    expect(asResponse(await ask(h.address, requestPayload(fx.group.id, { clientId: refreshed }))).count).toBe(3);
    // The host renews its 30-day certificate past half-life (its 6-hourly timer, here by hand).
    expect((await h.renewCertificateIfDue()).renewed).toBe(true);

    fx.clock.set(t0 + 30 * DAY - 1);
    expect(officeCount(h)).toBe(3);
    fx.clock.set(t0 + 30 * DAY);
    expect(officeCount(h)).toBe(2); // `early` expired
    // the next client sees the smaller count
    expect(asResponse(await ask(h.address, requestPayload(fx.group.id))).count).toBe(3);
    fx.clock.set(t0 + 40 * DAY);
    expect(officeCount(h)).toBe(2); // the one from day 10 expired; refreshed (day 20) and the newest remain
    expect((await h.renewCertificateIfDue()).renewed).toBe(true);
    await stop();
    expect(hostStatus(fx.hostDir, fx.clock).groups[0]?.count).toBe(2);

    fx.clock.set(t0 + 50 * DAY);
    expect(hostStatus(fx.hostDir, fx.clock).groups[0]?.count).toBe(1);
    const again = await start();
    expect(officeCount(again)).toBe(1);
    fx.clock.set(t0 + 60 * DAY);
    expect(officeCount(again)).toBe(0);
    expect(asResponse(await ask(again.address, requestPayload(fx.group.id, { clientId: early }))).count).toBe(1);
  });

  it('exposes Prometheus metrics: group count and requests by result', async () => {
    const h = await start({ metrics: LOCAL });
    expect(h.metricsAddress?.port).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) await ask(h.address, requestPayload(fx.group.id, { licenceState: 1 }));
    await ask(h.address, requestPayload(fx.otherGroup.id));
    const res = await fetch(`http://127.0.0.1:${h.metricsAddress!.port}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^volact_kms_group_count\{group="office14"\} 3$/m);
    expect(text).toMatch(/^volact_kms_group_threshold\{group="office14"\} 5$/m);
    expect(text).toMatch(/^volact_kms_requests_total\{result="counted"\} 3$/m);
    expect(text).toMatch(/^volact_kms_requests_total\{result="failed"\} 1$/m);
    expect(text).toMatch(/^volact_kms_requests_by_client_state_total\{state="licensed"\} 3$/m);
    expect(text).toMatch(/^volact_kms_signatures_total \d+$/m);
    expect((await fetch(`http://127.0.0.1:${h.metricsAddress!.port}/other`)).status).toBe(404);
  });

  it('has no metrics listener unless asked', async () => {
    expect((await start()).metricsAddress).toBeUndefined();
  });

  it('refuses to start with a certificate that has expired; requests are refused once it expires while running', async () => {
    const cert = fx.state.certificate()!;
    const h = await start();
    await ask(h.address, requestPayload(fx.group.id));
    fx.clock.set(cert.expiresAt);
    const e = decodeErrorResponse(await ask(h.address, requestPayload(fx.group.id)));
    expect(e.code).toBe(HostErrorCode.CERTIFICATE_EXPIRED);
    expect(officeCount(h)).toBe(0); // the first client's entry expired long ago, no new one counted
    await stop();
    const err = await expectRejects(start());
    expect(err.code).toBe('HOST_CERTIFICATE_EXPIRED');
  });

  it('a host re-activated after expiry serves again (the same host re-activates for free)', async () => {
    fx.clock.set(fx.state.certificate()!.expiresAt);
    const outcome = await activateHostOnline(HostState.open(fx.hostDir), fx.authorityUrl, { clock: fx.clock });
    expect(outcome.hostsUsed).toBe(1);
    expect(outcome.expiresAt).toBeGreaterThan(fx.clock.now());
    const h = await start();
    expect(asResponse(await ask(h.address, requestPayload(fx.group.id))).count).toBe(1);
  });

  it('refuses to start when the listen address is taken (HOST_LISTEN_FAILED)', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as { port: number }).port;
      const err = await expectRejects(start({ listen: { host: '127.0.0.1', port } }));
      expect(err.code).toBe('HOST_LISTEN_FAILED');
      expect(err.message).toContain(String(port));
      // the data directory is not left locked: the host starts on a free port
      await start();
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('refuses to start when the metrics address is taken, and leaves nothing listening', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as { port: number }).port;
      const listeners = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
      const before = listeners();
      const err = await expectRejects(start({ metrics: { host: '127.0.0.1', port } }));
      expect(err.code).toBe('HOST_LISTEN_FAILED');
      expect(err.message).toContain(String(port));
      // a closed server's handle is released in the close phase of the loop: let a few turns pass
      for (let turn = 0; turn < 10 && listeners() !== before; turn++)
        await new Promise((resolve) => setImmediate(resolve));
      expect(listeners()).toBe(before);
      await start();
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});

describe('KMS host setup', () => {
  let fx: HostFixture;
  beforeEach(async () => {
    fx = await createActivatedHost();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('refuses to start a host that is installed but not activated', async () => {
    const dir = `${fx.tempDir}/fresh`;
    const minted = await fx.authority.mintKey({ type: 'kms-host', groups: ['office14'] });
    HostState.installKey(dir, minted.key, 'hw-2', fx.clock.now());
    const err = await expectRejects(startKmsHost({ dataDir: dir, listen: LOCAL, clock: fx.clock }));
    expect(err.code).toBe('HOST_NOT_ACTIVATED');
    expect(hostStatus(dir, fx.clock).activated).toBe(false);
  });

  it('refuses to start from a directory without a host', async () => {
    const err = await expectRejects(startKmsHost({ dataDir: `${fx.tempDir}/nothing`, listen: LOCAL, clock: fx.clock }));
    expect(err.code).toBe('HOST_NOT_INITIALISED');
  });

  it('refuses to install a key that is not a KMS host key, or is mistyped', async () => {
    const config = await fx.authority.productConfig('office14');
    const wrongType = await expectRejects(
      Promise.resolve().then(() => HostState.installKey(`${fx.tempDir}/x`, config.gvlk, 'hw-3', 0)),
    );
    expect(wrongType.code).toBe('HOST_KEY_INVALID');
    expect(wrongType.message).toContain('gvlk');
    const typo = fx.hostKey.slice(0, 2) + (fx.hostKey[2] === 'A' ? 'B' : 'A') + fx.hostKey.slice(3);
    const mistyped = await expectRejects(
      Promise.resolve().then(() => HostState.installKey(`${fx.tempDir}/y`, typo, 'hw-3', 0)),
    );
    expect(mistyped.code).toBe('HOST_KEY_INVALID');
  });

  it('online activation of a 7th host with a 6-host key is refused with HOST_LIMIT_REACHED; the same host re-activating is free', async () => {
    const minted = await fx.authority.mintKey({ type: 'kms-host', groups: ['office14'] });
    expect(minted.hosts).toBe(6);
    const states = Array.from({ length: 7 }, (_, i) =>
      HostState.installKey(`${fx.tempDir}/h${i}`, minted.key, `hw-limit-${i}`, fx.clock.now()),
    );
    for (let i = 0; i < 6; i++) {
      const outcome = await activateHostOnline(states[i]!, fx.authorityUrl, { clock: fx.clock });
      expect(outcome.hostsUsed).toBe(i + 1);
      expect(outcome.hostLimit).toBe(6);
      expect(outcome.groups.map((g) => g.name)).toEqual(['office14']);
    }
    const err = await expectRejects(activateHostOnline(states[6]!, fx.authorityUrl, { clock: fx.clock }));
    expect(err.code).toBe('HOST_ACTIVATION_REFUSED');
    expect(err.authorityCode).toBe('HOST_LIMIT_REACHED');
    expect(err.message).toContain('HOST_LIMIT_REACHED');
    expect(states[6]!.activation).toBeUndefined();

    const again = await activateHostOnline(states[2]!, fx.authorityUrl, { clock: fx.clock });
    expect(again.hostsUsed).toBe(6);
  });

  it('online activation reports an authority that cannot be reached', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    const err = await expectRejects(activateHostOnline(fx.state, `http://127.0.0.1:${port}`, { clock: fx.clock }));
    expect(err.code).toBe('AUTHORITY_UNREACHABLE');
  });

  it('sends the host key only over https (plain http only to loopback): AUTHORITY_URL_INSECURE', async () => {
    const err = await expectRejects(activateHostOnline(fx.state, 'http://activation.example.com', { clock: fx.clock }));
    expect(err.code).toBe('AUTHORITY_URL_INSECURE');
    expect(err.message).not.toContain(fx.hostKey);
    expect(fx.state.activation?.authorityUrl).toBe(new URL(fx.authorityUrl).origin);
  });

  it('host status is read-only: it does not create the database of a host that never served', () => {
    expect(existsSync(fx.state.windowDbPath)).toBe(false);
    const status = hostStatus(fx.hostDir, fx.clock);
    expect(status.groups).toEqual([expect.objectContaining({ name: 'office14', count: 0, threshold: 5 })]);
    expect(existsSync(fx.state.windowDbPath)).toBe(false);
  });
});
