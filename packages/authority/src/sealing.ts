import { createHmac } from 'node:crypto';
import { aeadOpen, aeadSeal } from '@volact/core';

/**
 * Seals small secrets the database must hold but must not reveal if it leaks (a key's IID proof
 * key): AES-256-GCM under a key derived from the authority's secret, which stays in the data
 * directory. A database copy alone cannot make installation IDs for any key.
 */
function sealingKey(secret: Uint8Array): Buffer {
  return createHmac('sha256', secret).update('volact-seal/v1').digest();
}

export function seal(secret: Uint8Array, plain: Uint8Array): string {
  return aeadSeal(sealingKey(secret), plain).toString('base64');
}

/** Returns null when the sealed value was altered or sealed under another secret. */
export function unseal(secret: Uint8Array, sealed: string): Buffer | null {
  return aeadOpen(sealingKey(secret), Buffer.from(sealed, 'base64'));
}
