import { signMessage, type SigningKeyPair } from '../crypto.js';
import { keyIdOf } from './key-id.js';

/**
 * What signs with a root or an online key: a key file held in memory, or a key in a PKCS#11
 * token that never leaves it. `sign` is synchronous (PKCS#11 through pkcs11js is).
 */
export interface Signer {
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKeyRaw: Buffer;
  /** keyIdOf(publicKeyRaw). */
  readonly keyId: Buffer;
  /** An Ed25519 signature (64 bytes) over the message. */
  sign(message: Uint8Array): Buffer;
}

/** A signer over a key held in memory (node's native Ed25519). */
export function fileSigner(pair: Pick<SigningKeyPair, 'privateKey' | 'publicKeyRaw'>): Signer {
  const publicKeyRaw = Buffer.from(pair.publicKeyRaw);
  const keyId = keyIdOf(publicKeyRaw);
  const privateKey = pair.privateKey;
  return {
    publicKeyRaw,
    keyId,
    sign: (message: Uint8Array) => signMessage(privateKey, message),
  };
}
