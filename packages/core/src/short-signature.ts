import { createHash, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';

/**
 * Short Schnorr signatures on the Ed25519 group, for confirmation IDs that people type: a
 * 128-bit challenge e and a scalar s (about 253 bits) — 381 bits instead of Ed25519's 512,
 * at the same 128-bit security (Neven, Smart and Warinschi: a Schnorr challenge of n bits
 * gives n-bit security against forgery; the group gives 126+).
 *
 * The signer is the authority's root key itself, so the pinned root public key verifies both
 * kinds of signature. Every message is domain-separated (its own context string, hashed with
 * SHA-256 here and SHA-512 in Ed25519, in another layout), so neither scheme's signatures can
 * stand in for the other's. Nonces are derived deterministically, as in Ed25519, but from a
 * key hashed out of the secret prefix, never from the prefix itself: no message the root signs
 * with Ed25519 can ever produce the same nonce (a repeated nonce would reveal the key).
 */
const Point = ed25519.Point;
const L = Point.Fn.ORDER;
const CHALLENGE_BITS = 128n;

export interface ShortSignature {
  readonly e: bigint;
  readonly s: bigint;
}

/** The largest value `shortSignatureToBigInt` returns, plus one. */
export const SHORT_SIGNATURE_RANGE = (1n << CHALLENGE_BITS) * L;

export interface ShortSigningKey {
  readonly scalar: bigint;
  /** Secret key of the deterministic nonces, derived from Ed25519's nonce prefix. */
  readonly nonceKey: Uint8Array;
  readonly publicKeyRaw: Uint8Array;
}

/** The root's Ed25519 private key, as the scalar and nonce prefix Ed25519 derives from its seed. */
export function shortSigningKey(privateKey: KeyObject): ShortSigningKey {
  // A signer signs all day: a wider base-point table (about 2 MB, built at the first signature)
  // makes each signature's k·B about a quarter faster than the default window.
  Point.BASE.precompute(10, true);
  const jwk = privateKey.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') throw new Error('not an Ed25519 private key');
  const extended = ed25519.utils.getExtendedPublicKey(Buffer.from(jwk.d, 'base64url'));
  const nonceKey = createHash('sha512').update('volact-short-schnorr-nonce-key/v1\0').update(extended.prefix).digest();
  return { scalar: extended.scalar, nonceKey, publicKeyRaw: extended.pointBytes };
}

function toScalar(bytes: Uint8Array): bigint {
  // little-endian, as Ed25519 reads hashes
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

function challenge(context: string, r: Uint8Array, publicKeyRaw: Uint8Array, message: Uint8Array): bigint {
  const h = createHash('sha256')
    .update(`volact-short-schnorr/v1\0${context}\0`)
    .update(r)
    .update(publicKeyRaw)
    .update(message)
    .digest();
  return toScalar(h.subarray(0, Number(CHALLENGE_BITS / 8n)));
}

export function shortSign(key: ShortSigningKey, context: string, message: Uint8Array): ShortSignature {
  const nonceHash = createHash('sha512')
    .update(key.nonceKey)
    .update(`volact-short-schnorr/v1\0${context}\0`)
    .update(message)
    .digest();
  const k = toScalar(nonceHash) % L || 1n;
  const r = Point.BASE.multiply(k).toBytes();
  const e = challenge(context, r, key.publicKeyRaw, message);
  const s = (k + e * key.scalar) % L;
  return { e, s };
}

export function shortVerify(
  publicKeyRaw: Uint8Array,
  context: string,
  message: Uint8Array,
  signature: ShortSignature,
): boolean {
  const { e, s } = signature;
  if (e < 0n || e >= 1n << CHALLENGE_BITS || s < 0n || s >= L) return false;
  let a;
  try {
    a = Point.fromBytes(publicKeyRaw);
  } catch {
    return false;
  }
  const r = Point.BASE.multiplyUnsafe(s).subtract(a.multiplyUnsafe(e));
  return challenge(context, r.toBytes(), publicKeyRaw, message) === e;
}

/** Packs a signature into one number below SHORT_SIGNATURE_RANGE (for digit groups). */
export function shortSignatureToBigInt(signature: ShortSignature): bigint {
  return signature.e * L + signature.s;
}

export function shortSignatureFromBigInt(value: bigint): ShortSignature {
  return { e: value / L, s: value % L };
}
