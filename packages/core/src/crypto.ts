import {
  createCipheriv,
  createDecipheriv,
  randomBytes,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  timingSafeEqual,
  createHmac,
  type KeyObject,
} from 'node:crypto';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key follows. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface SigningKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The raw 32-byte public key, as carried in certificates and product configs. */
  readonly publicKeyRaw: Buffer;
}

export function generateSigningKeyPair(): SigningKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, publicKeyRaw: rawPublicKey(publicKey) };
}

export function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(ED25519_SPKI_PREFIX.length));
}

/**
 * Public keys parsed, by their raw bytes: parsing (createPublicKey) costs more than a signature
 * check, and a product's root is parsed at every open of an installation (an agent opens it at
 * every request). A KeyObject is immutable; the cache is emptied when it reaches its bound.
 */
const parsedKeys = new Map<string, KeyObject>();
const MAX_PARSED_KEYS = 1_024;

export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new RangeError(`an Ed25519 public key has 32 bytes, got ${raw.length}`);
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('base64');
  let key = parsedKeys.get(id);
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    if (parsedKeys.size >= MAX_PARSED_KEYS) parsedKeys.clear();
    parsedKeys.set(id, key);
    keyIds.set(key, id);
  }
  return key;
}

export function privateKeyToPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function signingKeyPairFromPem(pem: string): SigningKeyPair {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('the signing key file does not hold an Ed25519 key');
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicKeyRaw: rawPublicKey(publicKey) };
}

export function signMessage(privateKey: KeyObject, message: Uint8Array): Buffer {
  return sign(null, message, privateKey);
}

/**
 * Signature checks already made, by the raw public key and the SHA-256 of the message and the
 * signature (64 bytes, so the pair is unambiguous): the same signed record (a delegation
 * certificate, an activation's evidence) is checked again at every open of an installation. The
 * outcome of a check depends on these bytes only, so a cached one is the check's own; a changed
 * byte is another entry. One bound across all keys (emptied when full: a peer feeding many keys
 * and signatures holds at most MAX_CHECKS entries, about 1 MB); messages over 64 KiB are not cached.
 */
const checkedSignatures = new Map<string, boolean>();
const MAX_CHECKS = 8_192;
const MAX_CACHED_MESSAGE = 64 * 1024;
/** The raw bytes (base64) of a public key, as publicKeyFromRaw keys it. */
const keyIds = new WeakMap<KeyObject, string>();

function keyIdOf(key: KeyObject): string | undefined {
  let id = keyIds.get(key);
  if (id === undefined && key.type === 'public') {
    id = key.export({ format: 'der', type: 'spki' }).toString('base64');
    keyIds.set(key, id);
  }
  return id;
}

/** For tests: how many signature checks are cached (not exported from the package index). */
export function cachedSignatureChecks(): number {
  return checkedSignatures.size;
}

export function verifyMessage(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  const keyId = message.length <= MAX_CACHED_MESSAGE ? keyIdOf(publicKey) : undefined;
  let id = '';
  if (keyId !== undefined) {
    id = `${keyId}:${createHash('sha256').update(message).update(signature).digest('base64')}`;
    const known = checkedSignatures.get(id);
    if (known !== undefined) return known;
  }
  let ok: boolean;
  try {
    ok = verify(null, message, publicKey, signature);
  } catch {
    ok = false;
  }
  if (keyId !== undefined) {
    if (checkedSignatures.size >= MAX_CHECKS) checkedSignatures.clear();
    checkedSignatures.set(id, ok);
  }
  return ok;
}

export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** A short identifier of a public key: the first 8 bytes of its SHA-256. */
export function keyFingerprint(publicKeyRaw: Uint8Array): Buffer {
  return sha256(publicKeyRaw).subarray(0, 8);
}

export function keyedHash(secret: Uint8Array, value: string): string {
  return createHmac('sha256', secret).update(value).digest('hex');
}

/** Compares two secrets in constant time (lengths are not secret). */
export function secretsEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  const x = typeof a === 'string' ? Buffer.from(a) : Buffer.from(a);
  const y = typeof b === 'string' ? Buffer.from(b) : Buffer.from(b);
  if (x.length !== y.length) return false;
  return timingSafeEqual(x, y);
}

/** An IP address as both ends of one TCP connection name it (IPv4-mapped IPv6 as plain IPv4). */
export function canonicalIp(address: string): string {
  const lower = address.toLowerCase();
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/.test(lower) ? lower.slice(7) : lower;
}

/**
 * The agent probe bound to where the console reached the agent (v2): an HMAC, keyed with the
 * SHA-256 of the token (the agent keeps only that of its per-machine token), over the nonce and
 * the agent's IP address and port as the TCP connection shows them (the agent: its local end;
 * the console: its remote end). A relay at another address or port cannot pass a real agent's
 * answer on as its own.
 */
export function agentProbeProofAt(tokenSha256: Uint8Array, nonce: string, address: string, port: number): string {
  return createHmac('sha256', tokenSha256)
    .update(`volact-agent-probe/v2\0${nonce}\0${canonicalIp(address)}\0${port}`)
    .digest('hex');
}

const AEAD_IV = 12;
const AEAD_TAG = 16;

/**
 * AES-256-GCM with a random 96-bit IV: iv || ciphertext || tag. `aad` binds the value to its
 * place (a row, a field), so a sealed value moved elsewhere does not open.
 */
export function aeadSeal(key: Uint8Array, plain: Uint8Array | string, aad = ''): Buffer {
  const iv = randomBytes(AEAD_IV);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(typeof plain === 'string' ? Buffer.from(plain) : plain), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

/** The plaintext, or null when the value was altered, sealed under another key or with other `aad`. */
export function aeadOpen(key: Uint8Array, sealed: Uint8Array, aad = ''): Buffer | null {
  const raw = Buffer.from(sealed);
  if (raw.length < AEAD_IV + AEAD_TAG) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, AEAD_IV));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(raw.subarray(raw.length - AEAD_TAG));
    return Buffer.concat([decipher.update(raw.subarray(AEAD_IV, raw.length - AEAD_TAG)), decipher.final()]);
  } catch {
    return null;
  }
}
