import { describe, expect, it } from 'vitest';
import { CoreError } from './errors.js';
import { generateSigningKeyPair, keyFingerprint } from './crypto.js';
import { fileSigner } from './trust/signer.js';
import { randomGuid } from './ids.js';
import {
  MAX_CERT_BYTES,
  MAX_CERT_GROUPS,
  decodeHostCertificate,
  hostPublicKeyOf,
  issueHostCertificate,
  verifyHostCertificate,
  type HostCertificateFields,
} from './certificate.js';

const rootPair = generateSigningKeyPair();
const root = { ...rootPair, ...fileSigner(rootPair) };
const host = generateSigningKeyPair();

function fields(groupCount = 2): HostCertificateFields {
  return {
    hostPublicKey: host.publicKeyRaw,
    serial: randomGuid(),
    hostKeyId: randomGuid(),
    issuedAt: Date.UTC(2026, 0, 1),
    expiresAt: Date.UTC(2027, 0, 1),
    groupIds: Array.from({ length: groupCount }, () => randomGuid()),
  };
}

function decodeCode(bytes: Uint8Array): string | undefined {
  try {
    decodeHostCertificate(bytes);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(CoreError);
    return (err as CoreError).code;
  }
}

describe('host certificates', () => {
  it('round-trips: issue, decode, verify with the root key', () => {
    const f = fields(3);
    const encoded = issueHostCertificate(f, root);
    expect(encoded.length).toBe(90 + 16 * 3 + 64);
    const cert = decodeHostCertificate(encoded);
    expect(cert.hostPublicKey).toEqual(f.hostPublicKey);
    expect(cert.serial).toBe(f.serial);
    expect(cert.hostKeyId).toBe(f.hostKeyId);
    expect(cert.issuedAt).toBe(f.issuedAt);
    expect(cert.expiresAt).toBe(f.expiresAt);
    expect(cert.groupIds).toEqual(f.groupIds);
    expect(cert.issuer).toEqual(keyFingerprint(root.publicKeyRaw));
    expect(cert.encoded).toEqual(encoded);
    expect(Buffer.concat([cert.tbs, cert.signature])).toEqual(encoded);
    expect(verifyHostCertificate(cert, root.publicKey)).toBe(true);
    expect(hostPublicKeyOf(cert).equals(host.publicKey)).toBe(true);
  });

  it('accepts GUIDs in upper case and decodes them in lower case', () => {
    const f = { ...fields(1), serial: 'ABCDEF01-2345-6789-ABCD-EF0123456789' };
    expect(decodeHostCertificate(issueHostCertificate(f, root)).serial).toBe('abcdef01-2345-6789-abcd-ef0123456789');
  });

  it('decodes a certificate that sits inside a larger buffer', () => {
    const encoded = issueHostCertificate(fields(2), root);
    const outer = Buffer.concat([Buffer.from('prefix'), encoded, Buffer.from('suffix')]);
    const view = new Uint8Array(outer.buffer, outer.byteOffset + 6, encoded.length);
    const cert = decodeHostCertificate(view);
    expect(cert.encoded).toEqual(encoded);
    expect(verifyHostCertificate(cert, root.publicKey)).toBe(true);
  });

  it('does not verify with another root key', () => {
    const cert = decodeHostCertificate(issueHostCertificate(fields(), root));
    expect(verifyHostCertificate(cert, generateSigningKeyPair().publicKey)).toBe(false);
    expect(verifyHostCertificate(cert, host.publicKey)).toBe(false);
  });

  it('any modified byte makes the certificate fail to decode or to verify', () => {
    const encoded = issueHostCertificate(fields(2), root);
    for (let i = 0; i < encoded.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const modified = Buffer.from(encoded);
        modified[i] = (modified[i] as number) ^ mask;
        let accepted = false;
        try {
          accepted = verifyHostCertificate(decodeHostCertificate(modified), root.publicKey);
        } catch (err) {
          expect((err as CoreError).code).toBe('CERT_MALFORMED');
        }
        expect(accepted, `byte ${i} ^ ${mask}`).toBe(false);
      }
    }
  });

  it('issues 1 and 64 groups; refuses 0 and 65', () => {
    for (const n of [1, MAX_CERT_GROUPS]) {
      const encoded = issueHostCertificate(fields(n), root);
      expect(encoded.length).toBe(90 + 16 * n + 64);
      expect(encoded.length).toBeLessThanOrEqual(MAX_CERT_BYTES);
      expect(decodeHostCertificate(encoded).groupIds.length).toBe(n);
    }
    expect(() => issueHostCertificate(fields(0), root)).toThrow(RangeError);
    expect(() => issueHostCertificate(fields(MAX_CERT_GROUPS + 1), root)).toThrow(RangeError);
  });

  it('refuses a host public key that is not 32 bytes and ids that are not GUIDs', () => {
    expect(() => issueHostCertificate({ ...fields(), hostPublicKey: Buffer.alloc(31) }, root)).toThrow(RangeError);
    expect(() => issueHostCertificate({ ...fields(), serial: 'not-a-guid' }, root)).toThrow(CoreError);
    expect(() => issueHostCertificate({ ...fields(), groupIds: ['x'] }, root)).toThrow(CoreError);
  });

  it('decode rejects every wrong length with CERT_MALFORMED', () => {
    const encoded = issueHostCertificate(fields(2), root);
    for (let len = 0; len < encoded.length; len++)
      expect(decodeCode(encoded.subarray(0, len)), `length ${len}`).toBe('CERT_MALFORMED');
    for (const extra of [1, 15, 16, 64, 1000])
      expect(decodeCode(Buffer.concat([encoded, Buffer.alloc(extra)]))).toBe('CERT_MALFORMED');
  });

  it('decode rejects an unknown version and a group count of 0 or 65', () => {
    const encoded = issueHostCertificate(fields(1), root);
    for (const [off, value] of [
      [0, 2],
      [0, 0],
      [1, 0],
      [1, 65],
      [1, 255],
    ] as const) {
      const bad = Buffer.from(encoded);
      bad[off] = value;
      expect(decodeCode(bad)).toBe('CERT_MALFORMED');
    }
  });
});
