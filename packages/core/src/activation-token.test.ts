import { describe, expect, it } from 'vitest';
import { DAY } from './clock.js';
import { generateSigningKeyPair, sha256 } from './crypto.js';
import { fileSigner } from './trust/signer.js';
import { randomGuid } from './ids.js';
import { signTokenCaCertificate, tokenCaFingerprint } from './activation-token.js';

const T0 = Date.UTC(2026, 10, 25);
const rootPair = generateSigningKeyPair();
const root = { ...rootPair, ...fileSigner(rootPair) };
const group = { id: randomGuid(), name: 'office14' };

const certify = (publicKeyRaw: Buffer, organisation = 'Fabrikam') =>
  signTokenCaCertificate(
    { serial: randomGuid(), organisation, group, publicKeyRaw, notBefore: T0, notAfter: T0 + 365 * DAY },
    root,
  );

describe('tokenCaFingerprint (a client keeps CRLs and revoked serials per CA)', () => {
  it("is the SHA-256 of the CA's raw public key: the same key certified twice is one CA, another key another", () => {
    const ca = generateSigningKeyPair();
    const first = certify(ca.publicKeyRaw);
    const again = certify(ca.publicKeyRaw, 'Fabrikam (renewed)');
    expect(tokenCaFingerprint(first)).toBe(sha256(ca.publicKeyRaw).toString('hex'));
    expect(tokenCaFingerprint(again)).toBe(tokenCaFingerprint(first));
    expect(tokenCaFingerprint(certify(generateSigningKeyPair().publicKeyRaw))).not.toBe(tokenCaFingerprint(first));
    expect(tokenCaFingerprint(first)).toMatch(/^[0-9a-f]{64}$/);
  });
});
