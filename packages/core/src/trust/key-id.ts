import { sha256 } from '../crypto.js';

/** A key ID: the first 8 bytes of SHA-256 of the raw 32-byte Ed25519 public key. */
export const KEY_ID_BYTES = 8;

/** The key ID of a raw public key (the same bytes as `keyFingerprint`). */
export function keyIdOf(publicKeyRaw: Uint8Array): Buffer {
  return Buffer.from(sha256(publicKeyRaw).subarray(0, KEY_ID_BYTES));
}

/** The key ID in text: 16 hex digits. */
export function keyIdHex(publicKeyRaw: Uint8Array): string {
  return keyIdOf(publicKeyRaw).toString('hex');
}
