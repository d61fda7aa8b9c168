import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodeHostCertificate,
  decodeRevocationList,
  generateSigningKeyPair,
  hostKeyRefOf,
  isRevoked,
  keyIdOf,
  revocationSubjectOfKeyId,
  verifyRevocationList,
} from '@volact/core';
import { Authority } from '@volact/authority';
import { runCliInProcess } from './cli-in-process.js';

/** `volact authority revoke-host|revoke-manufacturer|revoke-token-ca|revocations` on a data directory. */
describe('volact authority revocation commands', () => {
  const dir = mkdtempSync(join(tmpdir(), 'volact-revocation-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const data = join(dir, 'a');

  it('revokes a host by serial (text and --json), says already revoked, lists and writes the signed list', async () => {
    const authority = Authority.init(data);
    await authority.addGroup({ name: 'office14' });
    const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
    const hostPublicKey = generateSigningKeyPair().publicKeyRaw;
    const { certificate } = await authority.activateHost({ hostKey: key, hostPublicKey, hardwareId: 'hw-1' });
    const root = authority.rootPublicKeyRaw;
    await authority.close();
    const serial = decodeHostCertificate(certificate).serial;
    const ref = hostKeyRefOf(hostPublicKey).toString('hex');

    const first = await runCliInProcess(['authority', 'revoke-host', serial, '--data-dir', data, '--reason', 'leaked']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`host key ${ref}`);
    expect(first.stdout).toMatch(/revocation list version \d+ issued/);

    const again = await runCliInProcess(['authority', 'revoke-host', serial, '--data-dir', data, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ kind: 'host', alreadyRevoked: true });

    const unknown = await runCliInProcess([
      'authority',
      'revoke-host',
      '0f0e0d0c-0b0a-4908-8706-050403020100',
      '--data-dir',
      data,
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('REVOCATION_SUBJECT_UNKNOWN');

    const badReason = await runCliInProcess([
      'authority',
      'revoke-token-ca',
      'ab'.repeat(8),
      '--data-dir',
      data,
      '--reason',
      'x'.repeat(201),
    ]);
    expect(badReason.code).toBe(1);
    expect(badReason.stderr).toContain('--reason');

    const oem = keyIdOf(generateSigningKeyPair().publicKeyRaw).toString('hex');
    expect((await runCliInProcess(['authority', 'revoke-manufacturer', oem, '--data-dir', data])).code).toBe(0);
    const badKeyId = await runCliInProcess(['authority', 'revoke-manufacturer', 'xyz', '--data-dir', data]);
    expect(badKeyId.stderr).toContain('16 hex digits');

    const out = join(dir, 'revocations.bin');
    const listed = await runCliInProcess(['authority', 'revocations', '--data-dir', data, '--out', out]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`host\t${ref}`);
    expect(listed.stdout).toContain('leaked');
    const list = decodeRevocationList(readFileSync(out));
    expect(verifyRevocationList(list, root)).toBe(true);
    expect(isRevoked(list, 'host', Buffer.from(ref, 'hex'))).not.toBeNull();
    expect(isRevoked(list, 'manufacturer', revocationSubjectOfKeyId(Buffer.from(oem, 'hex')))).not.toBeNull();

    const json = JSON.parse((await runCliInProcess(['authority', 'revocations', '--data-dir', data, '--json'])).stdout);
    expect(json.listVersion).toBe(list.listVersion);
    expect(Buffer.from(json.list, 'base64')).toEqual(readFileSync(out));
    expect(json.entries).toHaveLength(2);
  });

  it('by KMS host key ID: says the key still activates new hosts and names the command; --also-revoke-key revokes it too', async () => {
    const other = join(dir, 'b');
    const authority = Authority.init(other);
    await authority.addGroup({ name: 'office14' });
    const { key, keyId } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
    const activate = (hardwareId: string) =>
      authority.activateHost({ hostKey: key, hostPublicKey: generateSigningKeyPair().publicKeyRaw, hardwareId });
    await activate('hw-1');
    await authority.close();

    const text = await runCliInProcess(['authority', 'revoke-host', keyId, '--data-dir', other]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`KMS host key ${keyId} is NOT revoked`);
    expect(text.stdout).toContain('volact authority key revoke');
    expect(text.stdout).toContain(`volact authority revoke-host ${keyId} --also-revoke-key`);

    const both = await runCliInProcess([
      'authority',
      'revoke-host',
      keyId,
      '--also-revoke-key',
      '--data-dir',
      other,
      '--json',
    ]);
    expect(both.code).toBe(0);
    expect(JSON.parse(both.stdout)).toMatchObject({
      kmsHostKey: { keyId, keyRevoked: true, stopNewActivations: null },
    });
    const after = Authority.open(other);
    try {
      expect((await after.showKey(key)).revokedAt).not.toBeNull();
    } finally {
      await after.close();
    }
  });
});
