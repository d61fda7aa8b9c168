import { createHash, createPrivateKey, sign as nativeSign, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';

/**
 * Short Schnorr signatures on the Ed25519 group, for confirmation IDs that people type: a
 * 128-bit challenge e and a scalar s (about 253 bits) — 381 bits instead of Ed25519's 512,
 * at the same 128-bit security (Neven, Smart and Warinschi: a Schnorr challenge of n bits
 * gives n-bit security against forgery; the group gives 126+).
 *
 * The signer is an Ed25519 key — a root, or an online key a root delegated — so the same public
 * key verifies both kinds of signature. Every message is domain-separated (its own context string, hashed with
 * SHA-256 here and SHA-512 in Ed25519, in another layout), so neither scheme's signatures can
 * stand in for the other's. Nonces are derived deterministically, as in Ed25519, but from a
 * key hashed out of the secret prefix, never from the prefix itself: no message the root signs
 * with Ed25519 can ever produce the same nonce (a repeated nonce would reveal the key).
 *
 * Two versions, told apart by the key that signed (a confirmation ID's key index, a phone
 * artefact's issuer), never by the signature itself:
 *   - v1 (`shortSign`): the root's own short signatures, made before online keys existed. Its
 *     nonce commitment k·B is computed here, in JavaScript (about 200 µs). Kept to verify what
 *     roots signed, and to sign test vectors.
 *   - v2 (`shortSignV2`): the online key's, on every activation. Same equations, its own domain
 *     string ("volact-short-schnorr/v2\0"), and the nonce commitment made natively — see there.
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

/** An Ed25519 private key (a root's or an online key's), as the scalar and nonce prefix Ed25519 derives from its seed. */
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
  // little-endian, as Ed25519 reads hashes (one BigInt parse: a byte loop costs microseconds)
  return BigInt(`0x${Buffer.from(bytes).reverse().toString('hex')}`);
}

const V1_DOMAIN = 'volact-short-schnorr/v1\0';
const V2_DOMAIN = 'volact-short-schnorr/v2\0';

function challenge(
  context: string,
  r: Uint8Array,
  publicKeyRaw: Uint8Array,
  message: Uint8Array,
  domain = V1_DOMAIN,
): bigint {
  const h = createHash('sha256')
    .update(`${domain}${context}\0`)
    .update(r)
    .update(publicKeyRaw)
    .update(message)
    .digest();
  return toScalar(h.subarray(0, Number(CHALLENGE_BITS / 8n)));
}

export function shortSign(key: ShortSigningKey, context: string, message: Uint8Array): ShortSignature {
  const nonceHash = createHash('sha512')
    .update(key.nonceKey)
    .update(`${V1_DOMAIN}${context}\0`)
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
  return verifyWith(V1_DOMAIN, publicKeyRaw, context, message, signature);
}

/**
 * v2 nonces. A short signature needs a nonce k and its commitment R = k·B; in JavaScript, k·B is
 * the whole cost of v1 (about 200 µs of a signer's CPU per confirmation). Node's native Ed25519
 * signing computes exactly such a pair, in C, for the message it signs: R = r·B with
 * r = SHA-512(prefix' || M) mod L. So each short-signing key has a second, private Ed25519 key
 * (the "nonce key", seeded from `nonceKey`, never published, signing nothing else), and v2 signs
 * M = domain || context || 0 || message with it natively, then reads the nonce back from that
 * signature (R, S'): r = S' − SHA-512(R || A' || M)·a' mod L, a' being the nonce key's scalar.
 *
 * The nonce is then Ed25519's own: deterministic (no random generator to fail or repeat after a
 * fork), uniform modulo L (a 512-bit hash reduced), secret (it depends on prefix', which only the
 * signer holds; the inner signature S' is never shown to anyone), and independent of every other
 * nonce of this key: v1's nonces hash `nonceKey` itself, the key's own Ed25519 signatures its
 * prefix, this one prefix' = SHA-512(seed')[32..64] with seed' = SHA-256(label || nonceKey).
 *
 * Considered and not taken: the nonce of a native X25519 key generation, with R's Montgomery u
 * coordinate hashed (x-only, as R and −R share it: a forger's two answers on the same u still give
 * the key, from (s1 ∓ s2)/(e1 ∓ e2), so hashing u alone loses nothing). Its nonce is a clamped
 * X25519 scalar: 2^254 + 8m, m < 2^251 — only 2^251 values in a group of order L ≈ 2^252, so
 * 8⁻¹·k mod L always lies in one known half of [0, L): a known top bit of every nonce, which
 * is the setting of Bleichenbacher's lattice-free nonce-bias attack on Schnorr and (EC)DSA. It
 * was also slower here (key generation + JWK export of both halves ≈ 47–55 µs against ≈ 40 µs).
 */
interface NonceKey {
  readonly key: KeyObject;
  readonly scalar: bigint;
  readonly publicKeyRaw: Uint8Array;
}

const nonceKeys = new WeakMap<ShortSigningKey, NonceKey>();
/** PKCS#8 header of a raw Ed25519 seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function nonceKeyOf(key: ShortSigningKey): NonceKey {
  let nk = nonceKeys.get(key);
  if (nk === undefined) {
    const seed = createHash('sha256').update('volact-short-schnorr-nonce-seed/v2\0').update(key.nonceKey).digest();
    const extended = ed25519.utils.getExtendedPublicKey(seed);
    nk = {
      key: createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' }),
      scalar: extended.scalar,
      publicKeyRaw: extended.pointBytes,
    };
    nonceKeys.set(key, nk);
  }
  return nk;
}

/** Version 2 (see above): the online key's short signature, about 40 µs. */
export function shortSignV2(key: ShortSigningKey, context: string, message: Uint8Array): ShortSignature {
  const nk = nonceKeyOf(key);
  const m = Buffer.concat([Buffer.from(`${V2_DOMAIN}${context}\0`), message]);
  const inner = nativeSign(null, m, nk.key);
  const r = inner.subarray(0, 32);
  const h = toScalar(createHash('sha512').update(r).update(nk.publicKeyRaw).update(m).digest()) % L;
  let k = (toScalar(inner.subarray(32, 64)) - h * nk.scalar) % L;
  if (k < 0n) k += L;
  const e = challenge(context, r, key.publicKeyRaw, message, V2_DOMAIN);
  const s = (k + e * key.scalar) % L;
  return { e, s };
}

export function shortVerifyV2(
  publicKeyRaw: Uint8Array,
  context: string,
  message: Uint8Array,
  signature: ShortSignature,
): boolean {
  return verifyWith(V2_DOMAIN, publicKeyRaw, context, message, signature);
}

function verifyWith(
  domain: string,
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
  if (r.is0()) return false;
  return challenge(context, r.toBytes(), publicKeyRaw, message, domain) === e;
}

/** Packs a signature into one number below SHORT_SIGNATURE_RANGE (for digit groups). */
export function shortSignatureToBigInt(signature: ShortSignature): bigint {
  return signature.e * L + signature.s;
}

export function shortSignatureFromBigInt(value: bigint): ShortSignature {
  return { e: value / L, s: value % L };
}
