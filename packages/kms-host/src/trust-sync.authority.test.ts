/**
 * The host's trust check against the real authority in-process (its HTTP API on loopback):
 * the status fetched at activation and stapled; a revoked host; a root rotation (prepare,
 * publish, switch) after which the host re-certifies under the new root at its next check.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  HOUR,
  decodeActivationResponse,
  decodeHostCertificate,
  decodeHostStatus,
  decodeRootTransition,
  hostKeyRefOf,
  keyIdHex,
  verifyHostStatus,
  verifyRootTransition,
} from '@volact/core';
import { activateHostOnline } from './activation.js';
import { HostState } from './host-state.js';
import { hostStatus, startKmsHost, type RunningKmsHost } from './host.js';
import { ask, createActivatedHost, requestPayload, type HostFixture } from './test-fixture.js';

describe('KMS host trust check against the real authority', () => {
  let fx: HostFixture;
  let host: RunningKmsHost | undefined;
  let logLines: { level: number; msg: string }[];

  beforeEach(async () => {
    fx = await createActivatedHost();
    logLines = [];
    host = undefined;
  });
  afterEach(async () => {
    await host?.close();
    await fx.cleanup();
  });

  const start = async () => {
    host = await startKmsHost({
      dataDir: fx.hostDir,
      listen: { host: '127.0.0.1', port: 0 },
      clock: fx.clock,
      logger: pino(
        { level: 'info' },
        new Writable({
          write(chunk: Buffer, _enc, done) {
            for (const line of chunk.toString().split('\n').filter(Boolean))
              logLines.push(JSON.parse(line) as { level: number; msg: string });
            done();
          },
        }),
      ),
    });
    await host.checkNow();
    return host;
  };

  it('holds a status from its activation and staples it: signed by the root, for its own key', async () => {
    // fetched by activateHostOnline already: a host started right after staples at once
    expect(HostState.open(fx.hostDir).trust.hostStatus).toBeDefined();
    const h = await start();
    const r = decodeActivationResponse(await ask(h.address, requestPayload(fx.group.id)));
    expect(r.protocolVersion).toBe(2);
    const status = decodeHostStatus(r.extensions.hostStatus!);
    expect(verifyHostStatus(status, fx.authority.rootPublicKeyRaw)).toBe(true);
    expect(status.hostKeyRef).toEqual(hostKeyRefOf(decodeHostCertificate(r.certificate).hostPublicKey));
    expect(status.nextUpdate).toBeGreaterThan(fx.clock.now());
    const trust = hostStatus(fx.hostDir, fx.clock).trust;
    expect(trust.hostStatus.state).toBe('current');
    expect(trust.revocationList?.version).toBe(status.listVersion);
    expect(trust.certificateIssuer).toBe(keyIdHex(fx.authority.rootPublicKeyRaw));
    expect(trust.roots.find((x) => x.keyId === trust.certificateIssuer)?.state).toBe('current');
    expect(trust.warnings).toEqual([]);
  });

  it('a revoked host: HOST_REVOKED logged with the fix, no new status, the last one still stapled', async () => {
    const h = await start();
    const before = HostState.open(fx.hostDir).trust.hostStatus;
    await fx.authority.revokeHost(HostState.open(fx.hostDir).certificate()!.serial, { reason: 'test' });
    fx.clock.advance(6 * HOUR);
    const outcome = await h.checkNow();
    expect(outcome.revoked).toBe(true);
    expect(logLines.find((l) => l.level === 50)?.msg).toMatch(
      /revoked this host's key.*volact host activate --new-key-pair/,
    );
    expect(HostState.open(fx.hostDir).trust.hostStatus).toBe(before);
    const r = decodeActivationResponse(await ask(h.address, requestPayload(fx.group.id)));
    expect(r.extensions.hostStatus?.toString('base64')).toBe(before);
    const trust = hostStatus(fx.hostDir, fx.clock).trust;
    expect(trust.hostStatus.state).toBe('revoked');
    // the list the host holds names it now (the authority's newer list is kept)
    expect(trust.revocationList!.version).toBeGreaterThan(decodeHostStatus(Buffer.from(before!, 'base64')).listVersion);
  });

  it('a host whose key pair was revoked is activated again with a new key pair (the window kept) and gets a status again', async () => {
    const h = await start();
    await ask(h.address, requestPayload(fx.group.id)); // one client in the window
    const oldPair = HostState.open(fx.hostDir).signingKey();
    await fx.authority.revokeHost(HostState.open(fx.hostDir).certificate()!.serial, { reason: 'test' });
    fx.clock.advance(6 * HOUR);
    expect((await h.checkNow()).revoked).toBe(true);
    expect(hostStatus(fx.hostDir, fx.clock).trust.warnings.join(' ')).toContain(
      `volact host activate --new-key-pair --data-dir ${fx.hostDir}`,
    );
    await h.close();
    host = undefined;
    const countBefore = hostStatus(fx.hostDir, fx.clock).groups.find((g) => g.id === fx.group.id)!.count;
    expect(countBefore).toBe(1);
    // activating the same key pair again is refused, naming the fix
    await expect(
      activateHostOnline(HostState.open(fx.hostDir), fx.authorityUrl, { clock: fx.clock }),
    ).rejects.toMatchObject({
      code: 'HOST_ACTIVATION_REFUSED',
      message: expect.stringMatching(/HOST_REVOKED.*--new-key-pair/),
    });
    expect(HostState.open(fx.hostDir).signingKey().publicKeyRaw).toEqual(oldPair.publicKeyRaw);
    // the fix: a new key pair, certified by the real authority
    const outcome = await activateHostOnline(HostState.open(fx.hostDir), fx.authorityUrl, {
      clock: fx.clock,
      newKeyPair: true,
    });
    expect(outcome.trust.revoked).toBe(false);
    const newPair = HostState.open(fx.hostDir).signingKey();
    expect(newPair.publicKeyRaw.equals(oldPair.publicKeyRaw)).toBe(false);
    expect(HostState.open(fx.hostDir).certificate()!.hostPublicKey).toEqual(newPair.publicKeyRaw);
    const trust = hostStatus(fx.hostDir, fx.clock).trust;
    expect(trust.hostStatus.state).toBe('current');
    expect(trust.warnings).toEqual([]);
    // restarted: serves with the new key pair, staples a status for it, the counts kept
    const h2 = await start();
    expect(h2.counts().find((g) => g.id === fx.group.id)?.count).toBe(countBefore);
    const r = decodeActivationResponse(await ask(h2.address, requestPayload(fx.group.id)));
    expect(decodeHostCertificate(r.certificate).hostPublicKey).toEqual(newPair.publicKeyRaw);
    const status = decodeHostStatus(r.extensions.hostStatus!);
    expect(status.hostKeyRef).toEqual(hostKeyRefOf(newPair.publicKeyRaw));
    expect(verifyHostStatus(status, fx.authority.rootPublicKeyRaw)).toBe(true);
  });

  it('after the root switch, re-certifies at its next check and staples the transition record', async () => {
    const h = await start();
    const oldRoot = fx.authority.rootPublicKeyRaw;
    const before = HostState.open(fx.hostDir).certificate()!;
    await fx.authority.rotateRoot('prepare');
    await fx.authority.rotateRoot('publish');
    fx.clock.advance(HOUR);
    // published, not yet current: the host hands out the record but keeps its certificate
    const published = await h.checkNow();
    expect(published.rootChanged).toBe(false);
    const mid = decodeActivationResponse(await ask(h.address, requestPayload(fx.group.id)));
    expect(mid.extensions.transitions).toHaveLength(1);
    const record = decodeRootTransition(mid.extensions.transitions[0]!);
    expect(verifyRootTransition(record, oldRoot)).toBe(true);
    await fx.authority.rotateRoot('switch');
    fx.clock.advance(HOUR);
    const outcome = await h.checkNow();
    expect(outcome.rootChanged).toBe(true);
    expect(outcome.renewal?.renewed).toBe(true);
    const after = HostState.open(fx.hostDir).certificate()!;
    expect(after.issuer).toEqual(record.nextKeyId);
    expect(after.expiresAt).toBeGreaterThan(before.expiresAt);
    const r = decodeActivationResponse(await ask(h.address, requestPayload(fx.group.id)));
    expect(decodeHostCertificate(r.certificate).issuer).toEqual(record.nextKeyId);
    const status = decodeHostStatus(r.extensions.hostStatus!);
    expect(verifyHostStatus(status, record.nextPublicKey)).toBe(true);
    expect(r.extensions.transitions.map((t) => t.toString('base64'))).toContain(
      mid.extensions.transitions[0]!.toString('base64'),
    );
    const trust = hostStatus(fx.hostDir, fx.clock).trust;
    expect(trust.certificateIssuer).toBe(record.nextKeyId.toString('hex'));
    expect(trust.roots.find((x) => x.keyId === trust.certificateIssuer)?.state).toBe('current');
    // the next check does not re-certify again
    fx.clock.advance(6 * HOUR);
    expect((await h.checkNow()).renewal?.renewed).toBe(false);
  });
});
