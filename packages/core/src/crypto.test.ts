import { describe, expect, it } from 'vitest';
import {
  cachedSignatureChecks,
  generateSigningKeyPair,
  keyFingerprint,
  privateKeyToPem,
  publicKeyFromRaw,
  secretsEqual,
  signMessage,
  signingKeyPairFromPem,
  verifyMessage,
} from './crypto.js';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

describe('Ed25519 helpers', () => {
  const pair = generateSigningKeyPair();
  const message = Buffer.from('volact');

  it('signs and verifies; a changed message, signature or key fails', () => {
    const sig = signMessage(pair.privateKey, message);
    expect(sig.length).toBe(64);
    expect(verifyMessage(pair.publicKey, message, sig)).toBe(true);
    expect(verifyMessage(pair.publicKey, Buffer.from('volacT'), sig)).toBe(false);
    const bad = Buffer.from(sig);
    bad[10] = (bad[10] as number) ^ 1;
    expect(verifyMessage(pair.publicKey, message, bad)).toBe(false);
    expect(verifyMessage(generateSigningKeyPair().publicKey, message, sig)).toBe(false);
    expect(verifyMessage(pair.publicKey, message, sig.subarray(0, 63))).toBe(false);
  });

  it('the raw public key is 32 bytes and rebuilds the same key', () => {
    expect(pair.publicKeyRaw.length).toBe(32);
    expect(publicKeyFromRaw(pair.publicKeyRaw).equals(pair.publicKey)).toBe(true);
    expect(() => publicKeyFromRaw(Buffer.alloc(31))).toThrow(RangeError);
  });

  it('checks cached by bytes: a message or signature changed in place after a check still fails', () => {
    const text = Buffer.from('volact cached check');
    const sig = signMessage(pair.privateKey, text);
    const key = publicKeyFromRaw(pair.publicKeyRaw);
    expect(publicKeyFromRaw(Buffer.from(pair.publicKeyRaw))).toBe(key); // parsed once
    expect(verifyMessage(key, text, sig)).toBe(true);
    expect(verifyMessage(key, text, sig)).toBe(true);
    // The same buffers, edited after the first check: the cache is keyed by their bytes.
    text[0] = 0x56;
    expect(verifyMessage(key, text, sig)).toBe(false);
    text[0] = 0x76;
    sig.writeUInt8(sig.readUInt8(3) ^ 1, 3);
    expect(verifyMessage(key, text, sig)).toBe(false);
    sig.writeUInt8(sig.readUInt8(3) ^ 1, 3);
    expect(verifyMessage(key, text, sig)).toBe(true);
    // Another key with the same bytes signed: its own entry.
    expect(verifyMessage(generateSigningKeyPair().publicKey, text, sig)).toBe(false);
  });

  it('the check cache has one bound across all keys: many keys fed by a peer hold at most 8 192 entries', () => {
    const signed = Buffer.from('volact bounded cache');
    const good = signMessage(pair.privateKey, signed);
    const key = publicKeyFromRaw(pair.publicKeyRaw);
    for (let k = 0; k < 40; k++) {
      const other = publicKeyFromRaw(randomBytes(32));
      for (let i = 0; i < 300; i++) expect(verifyMessage(other, Buffer.from(`m${i}`), randomBytes(64))).toBe(false);
      expect(cachedSignatureChecks()).toBeLessThanOrEqual(8_192);
      // Answers stay the check's own while the cache fills and empties.
      expect(verifyMessage(key, signed, good)).toBe(true);
      expect(verifyMessage(other, signed, good)).toBe(false);
    }
    expect(cachedSignatureChecks()).toBeGreaterThan(0);
  });

  it('a key pair survives PEM export and import', () => {
    const again = signingKeyPairFromPem(privateKeyToPem(pair.privateKey));
    expect(again.publicKeyRaw).toEqual(pair.publicKeyRaw);
    expect(verifyMessage(pair.publicKey, message, signMessage(again.privateKey, message))).toBe(true);
  });

  it('refuses a PEM that does not hold an Ed25519 key', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => signingKeyPairFromPem(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())).toThrow(
      /Ed25519/,
    );
  });

  it('fingerprints are 8 bytes and differ between keys', () => {
    expect(keyFingerprint(pair.publicKeyRaw).length).toBe(8);
    expect(keyFingerprint(pair.publicKeyRaw)).not.toEqual(keyFingerprint(generateSigningKeyPair().publicKeyRaw));
  });

  it('secretsEqual compares content', () => {
    expect(secretsEqual('abc', 'abc')).toBe(true);
    expect(secretsEqual('abc', 'abd')).toBe(false);
    expect(secretsEqual('abc', 'abcd')).toBe(false);
    expect(secretsEqual(Buffer.from([1, 2]), Buffer.from([1, 2]))).toBe(true);
  });
});

describe('aeadSeal / aeadOpen', () => {
  it('opens only with the same key and additional data, and refuses any altered byte', async () => {
    const { aeadSeal, aeadOpen } = await import('./crypto.js');
    const key = Buffer.alloc(32, 7);
    const sealed = aeadSeal(key, 'secret text', 'row:1');
    expect(aeadOpen(key, sealed, 'row:1')?.toString()).toBe('secret text');
    expect(aeadOpen(key, sealed, 'row:2')).toBeNull();
    expect(aeadOpen(Buffer.alloc(32, 8), sealed, 'row:1')).toBeNull();
    for (let i = 0; i < sealed.length; i++) {
      const altered = Buffer.from(sealed);
      altered[i] = (altered[i] as number) ^ 1;
      expect(aeadOpen(key, altered, 'row:1')).toBeNull();
    }
    expect(aeadOpen(key, sealed.subarray(0, 20), 'row:1')).toBeNull();
  });
});
