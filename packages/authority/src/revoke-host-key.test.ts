import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, decodeHostCertificate, generateSigningKeyPair, hostKeyRefOf } from '@volact/core';
import { Authority } from './authority.js';
import { AuthorityError } from './errors.js';

/**
 * A leaked KMS host key: `revoke-host <KMS host key ID>` lists the hosts it activated, but
 * whoever holds the key activates a new host key pair with it. The answer says so and names
 * what stops it; `alsoRevokeKey` (`--also-revoke-key`) revokes the key in the same call.
 */
let dir: string;
let clock: ManualClock;
let authority: Authority;
let hostKey: string;
let keyId: string;
let hosts = 0;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volact-revoke-host-key-'));
  clock = new ManualClock(Date.UTC(2026, 10, 25));
  authority = Authority.init(join(dir, 'a'), { clock });
  await authority.addGroup({ name: 'office14' });
  ({ key: hostKey, keyId } = await authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 10 }));
});
afterEach(async () => {
  await authority.close();
  rmSync(dir, { recursive: true, force: true });
});

const activate = () => {
  const hostPublicKey = generateSigningKeyPair().publicKeyRaw;
  return authority.activateHost({ hostKey, hostPublicKey, hardwareId: `hw-${++hosts}` }).then((result) => ({
    result,
    ref: hostKeyRefOf(hostPublicKey).toString('hex'),
  }));
};
const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    if (err instanceof AuthorityError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
};

describe('revoke-host by KMS host key ID', () => {
  it('without --also-revoke-key: lists its hosts, says the key is not revoked and names the command; the leaker activates again until it is run', async () => {
    const first = await activate();
    const revoked = await authority.revokeHost(keyId, { actor: 'test' });
    expect(revoked.subjects.map((s) => s.subject)).toEqual([first.ref]);
    expect(revoked.kmsHostKey).toEqual({
      keyId,
      keyRevoked: false,
      stopNewActivations: expect.stringContaining('volact authority key revoke'),
    });
    expect(revoked.kmsHostKey?.stopNewActivations).toContain(`revoke-host ${keyId} --also-revoke-key`);

    // The attack the answer warns of: a new host key pair, activated with the same key.
    const leaker = await activate();
    expect(leaker.result.hostKeyId).toBe(keyId);

    // The command it names stops it; asked again, the answer says the key is revoked.
    await authority.revokeKey(hostKey);
    expect((await refusal(activate())).code).toBe('KEY_REVOKED');
    expect((await authority.revokeHost(keyId)).kmsHostKey).toEqual({
      keyId,
      keyRevoked: true,
      stopNewActivations: null,
    });
  });

  it('with --also-revoke-key: the key is revoked and every host it activated is listed, in one call', async () => {
    const a = await activate();
    const b = await activate();
    const revoked = await authority.revokeHost(keyId, { actor: 'test', alsoRevokeKey: true, reason: 'leaked' });
    expect(revoked.subjects.map((s) => s.subject).sort()).toEqual([a.ref, b.ref].sort());
    expect(revoked.kmsHostKey).toEqual({ keyId, keyRevoked: true, stopNewActivations: null });
    expect((await authority.showKey(hostKey)).revokedAt).toBe(new Date(clock.now()).toISOString());
    expect((await refusal(activate())).code).toBe('KEY_REVOKED');

    const list = await authority.revocationList();
    expect(list.entries.map((e) => e.subject).sort()).toEqual([a.ref, b.ref].sort());

    // Again: nothing new on the list, the key stays revoked.
    const again = await authority.revokeHost(keyId, { actor: 'test', alsoRevokeKey: true });
    expect(again.alreadyRevoked).toBe(true);
    expect(again.listVersion).toBe(revoked.listVersion);
  });

  it('--also-revoke-key with a certificate serial is refused with nothing written; a serial alone names no key', async () => {
    const host = await activate();
    const serial = decodeHostCertificate(host.result.certificate).serial;
    const before = (await authority.revocationList()).listVersion;
    const refused = await refusal(authority.revokeHost(serial, { alsoRevokeKey: true }));
    expect(refused.code).toBe('REQUEST_INVALID');
    expect(refused.message).toContain('--also-revoke-key takes a KMS host key ID');
    expect((await authority.revocationList()).listVersion).toBe(before);
    expect((await authority.showKey(hostKey)).revokedAt).toBeNull();

    const bySerial = await authority.revokeHost(serial);
    expect(bySerial.kmsHostKey).toBeUndefined();
    expect(bySerial.subjects.map((s) => s.subject)).toEqual([host.ref]);
  });
});
