import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

/**
 * Seals small secrets the database must hold but must not reveal if it leaks (a key's IID proof
 * key): AES-256-GCM under a key derived from the authority's secret, which stays in the data
 * directory. A database copy alone cannot make installation IDs for any key.
 */
function sealingKey(secret: Uint8Array): Buffer {
  return createHmac('sha256', secret).update('volact-seal/v1').digest();
}

export function seal(secret: Uint8Array, plain: Uint8Array): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(secret), iv);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}

/** Returns null when the sealed value was altered or sealed under another secret. */
export function unseal(secret: Uint8Array, sealed: string): Buffer | null {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < 12 + 16) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealingKey(secret), raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
  } catch {
    return null;
  }
}
