import { publicKeyFromRaw, verifyMessage } from '../crypto.js';
import { CoreError } from '../errors.js';
import { copyOf, readU64, requireLength, writeU64 } from './bytes.js';
import { KEY_ID_BYTES, keyIdOf } from './key-id.js';
import { ROOT_TRANSITION_LAYOUT, offsetsOf } from './layout.js';
import type { Signer } from './signer.js';

/**
 * The root-transition record (185 bytes): the next root's public key and the time from which it
 * may sign, signed by the previous root (so a client trusting it learns the next) and by the next
 * root (proof its holder has the private key).
 *
 *   0 u8 version = 1 | 1 previousKeyId (8) | 9 nextPublicKey (32) | 41 issuedAt u64 ms
 *   49 nextValidFrom u64 ms | 57 sigPrevious (64) | 121 sigNext (64)
 *
 * Both signatures are over "volact/root-transition/v1\0" || bytes[0..57].
 */
export const ROOT_TRANSITION_VERSION = 1;
export const ROOT_TRANSITION_BYTES = 185;
export const ROOT_TRANSITION_CONTEXT = 'volact/root-transition/v1\0';
const AT = offsetsOf(ROOT_TRANSITION_LAYOUT);
/** The signed bytes: everything before the signatures. */
const BODY = AT.sigPrevious;

export interface RootTransition {
  previousKeyId: Buffer;
  nextPublicKey: Buffer;
  /** keyIdOf(nextPublicKey). */
  nextKeyId: Buffer;
  issuedAt: number;
  nextValidFrom: number;
  /** The 185 bytes. */
  encoded: Buffer;
}

function signedMessage(body: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(ROOT_TRANSITION_CONTEXT), body]);
}

/** Makes a transition record: signed by `previous` (the current root) and by `next`. */
export function makeRootTransition(
  f: { nextPublicKey: Buffer; issuedAt: number; nextValidFrom: number },
  previous: Signer,
  next: Signer,
): Buffer {
  requireLength(f.nextPublicKey, 32, 'nextPublicKey');
  if (!Buffer.from(f.nextPublicKey).equals(next.publicKeyRaw))
    throw new RangeError('nextPublicKey must be the public key of the next signer');
  if (previous.keyId.equals(next.keyId)) throw new RangeError('a root cannot transition to itself');
  const out = Buffer.alloc(ROOT_TRANSITION_BYTES);
  out.writeUInt8(ROOT_TRANSITION_VERSION, AT.version);
  previous.keyId.copy(out, AT.previousKeyId);
  Buffer.from(f.nextPublicKey).copy(out, AT.nextPublicKey);
  writeU64(out, AT.issuedAt, f.issuedAt, 'issuedAt');
  writeU64(out, AT.nextValidFrom, f.nextValidFrom, 'nextValidFrom');
  const message = signedMessage(out.subarray(0, BODY));
  previous.sign(message).copy(out, AT.sigPrevious);
  next.sign(message).copy(out, AT.sigNext);
  return out;
}

function invalid(why: string): CoreError {
  return new CoreError('TRUST_RECORD_INVALID', `root-transition record: ${why}`);
}

/** Decodes a transition record (exactly 185 bytes, version 1); does not check the signatures. */
export function decodeRootTransition(bytes: Uint8Array): RootTransition {
  if (bytes.length !== ROOT_TRANSITION_BYTES)
    throw invalid(`expected ${ROOT_TRANSITION_BYTES} bytes, got ${bytes.length}`);
  const buf = Buffer.from(bytes);
  const version = buf.readUInt8(AT.version);
  if (version !== ROOT_TRANSITION_VERSION) throw invalid(`unknown version ${version} (this release reads 1)`);
  const issuedAt = readU64(buf, AT.issuedAt);
  const nextValidFrom = readU64(buf, AT.nextValidFrom);
  if (issuedAt === null) throw invalid('issuedAt is out of range');
  if (nextValidFrom === null) throw invalid('nextValidFrom is out of range');
  const previousKeyId = copyOf(buf, AT.previousKeyId, KEY_ID_BYTES);
  const nextPublicKey = copyOf(buf, AT.nextPublicKey, 32);
  const nextKeyId = keyIdOf(nextPublicKey);
  if (nextKeyId.equals(previousKeyId)) throw invalid('the next root is the previous root');
  return { previousKeyId, nextPublicKey, nextKeyId, issuedAt, nextValidFrom, encoded: buf };
}

/** True when the record names this previous root and both signatures (previous and next) verify. */
export function verifyRootTransition(t: RootTransition, previousPublicKeyRaw: Uint8Array): boolean {
  if (previousPublicKeyRaw.length !== 32 || t.encoded.length !== ROOT_TRANSITION_BYTES) return false;
  if (!keyIdOf(previousPublicKeyRaw).equals(t.previousKeyId)) return false;
  const message = signedMessage(t.encoded.subarray(0, BODY));
  try {
    return (
      verifyMessage(
        publicKeyFromRaw(previousPublicKeyRaw),
        message,
        t.encoded.subarray(AT.sigPrevious, AT.sigPrevious + 64),
      ) && verifyMessage(publicKeyFromRaw(t.nextPublicKey), message, t.encoded.subarray(AT.sigNext, AT.sigNext + 64))
    );
  } catch {
    return false;
  }
}
