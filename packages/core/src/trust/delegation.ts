import { DAY } from '../clock.js';
import { publicKeyFromRaw, verifyMessage } from '../crypto.js';
import { CoreError } from '../errors.js';
import { copyOf, readU64, requireLength, writeU32, writeU64 } from './bytes.js';
import { KEY_ID_BYTES, keyIdOf } from './key-id.js';
import { DELEGATION_LAYOUT, offsetsOf } from './layout.js';
import type { Signer } from './signer.js';

/**
 * The delegation certificate (126 bytes): a root lets an online key sign for some purposes,
 * for a time.
 *
 *   0 u8 version = 1 | 1 issuerKeyId (8) | 9 delegatePublicKey (32) | 41 sequence u32
 *   45 validFrom u64 ms | 53 validUntil u64 ms | 61 u8 purposes | 62 signature (64)
 *
 * The signature is the root's, over "volact/delegation/v1\0" || bytes[0..62].
 */
export const DELEGATION_VERSION = 1;
export const DELEGATION_BYTES = 126;
export const DELEGATION_CONTEXT = 'volact/delegation/v1\0';
const AT = offsetsOf(DELEGATION_LAYOUT);
/** The signed bytes: everything before the signature. */
const BODY = AT.signature;

/** The purposes a delegation grants (bits). */
export const DELEGATION_PURPOSE = { confirmations: 1, phoneHostCertificates: 2, phoneActivationObjects: 4 } as const;
const ALL_PURPOSES = 7;

/**
 * The longest validity a delegation certificate may state: 4 years and 30 days (1 491 days). The
 * authority certifies its online keys for 2 × 730 + 30 = 1 490 days (ONLINE_KEY_VALIDITY_DAYS in
 * packages/authority/src/key-ring.ts: about 2 years next, then 2 years current; it was 730 days);
 * a longer certificate is refused, so a root that leaked (or a config that lists one) cannot hand
 * out an online key that signs for decades.
 */
export const MAX_DELEGATION_VALIDITY_MS = (4 * 365 + 1 + 30) * DAY;

export interface Delegation {
  issuerKeyId: Buffer;
  delegatePublicKey: Buffer;
  /** keyIdOf(delegatePublicKey). */
  delegateKeyId: Buffer;
  sequence: number;
  validFrom: number;
  validUntil: number;
  purposes: number;
  /** The 126 bytes. */
  encoded: Buffer;
}

function signedMessage(body: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(DELEGATION_CONTEXT), body]);
}

function checkFields(f: { validFrom: number; validUntil: number; purposes: number }): string | null {
  if (f.validUntil <= f.validFrom) return 'validUntil is not after validFrom';
  if (f.validUntil - f.validFrom > MAX_DELEGATION_VALIDITY_MS)
    return `a validity of ${Math.ceil((f.validUntil - f.validFrom) / DAY)} days is longer than the cap of ${MAX_DELEGATION_VALIDITY_MS / DAY} days (4 years and 30 days)`;
  if (!Number.isInteger(f.purposes) || f.purposes < 1 || f.purposes > ALL_PURPOSES)
    return `purposes ${f.purposes} is not a non-empty set of the known bits (1, 2, 4)`;
  return null;
}

/** Makes a delegation certificate signed by `root`. */
export function makeDelegation(f: Omit<Delegation, 'issuerKeyId' | 'delegateKeyId' | 'encoded'>, root: Signer): Buffer {
  requireLength(f.delegatePublicKey, 32, 'delegatePublicKey');
  const fault = checkFields(f);
  if (fault) throw new RangeError(`delegation: ${fault}`);
  const out = Buffer.alloc(DELEGATION_BYTES);
  out.writeUInt8(DELEGATION_VERSION, AT.version);
  root.keyId.copy(out, AT.issuerKeyId);
  Buffer.from(f.delegatePublicKey).copy(out, AT.delegatePublicKey);
  writeU32(out, AT.sequence, f.sequence, 'sequence');
  writeU64(out, AT.validFrom, f.validFrom, 'validFrom');
  writeU64(out, AT.validUntil, f.validUntil, 'validUntil');
  out.writeUInt8(f.purposes, AT.purposes);
  root.sign(signedMessage(out.subarray(0, BODY))).copy(out, AT.signature);
  return out;
}

function invalid(why: string): CoreError {
  return new CoreError('TRUST_RECORD_INVALID', `delegation certificate: ${why}`);
}

/** Decodes a delegation certificate (exactly 126 bytes, version 1); does not check the signature. */
export function decodeDelegation(bytes: Uint8Array): Delegation {
  if (bytes.length !== DELEGATION_BYTES) throw invalid(`expected ${DELEGATION_BYTES} bytes, got ${bytes.length}`);
  const buf = Buffer.from(bytes);
  const version = buf.readUInt8(AT.version);
  if (version !== DELEGATION_VERSION) throw invalid(`unknown version ${version} (this release reads 1)`);
  const validFrom = readU64(buf, AT.validFrom);
  const validUntil = readU64(buf, AT.validUntil);
  if (validFrom === null) throw invalid('validFrom is out of range');
  if (validUntil === null) throw invalid('validUntil is out of range');
  const purposes = buf.readUInt8(AT.purposes);
  const fault = checkFields({ validFrom, validUntil, purposes });
  if (fault) throw invalid(fault);
  const delegatePublicKey = copyOf(buf, AT.delegatePublicKey, 32);
  return {
    issuerKeyId: copyOf(buf, AT.issuerKeyId, KEY_ID_BYTES),
    delegatePublicKey,
    delegateKeyId: keyIdOf(delegatePublicKey),
    sequence: buf.readUInt32BE(AT.sequence),
    validFrom,
    validUntil,
    purposes,
    encoded: buf,
  };
}

/** True when the certificate names this root as issuer and the root's signature verifies. */
export function verifyDelegation(d: Delegation, rootPublicKeyRaw: Uint8Array): boolean {
  if (rootPublicKeyRaw.length !== 32 || d.encoded.length !== DELEGATION_BYTES) return false;
  if (!keyIdOf(rootPublicKeyRaw).equals(d.issuerKeyId)) return false;
  try {
    return verifyMessage(
      publicKeyFromRaw(rootPublicKeyRaw),
      signedMessage(d.encoded.subarray(0, BODY)),
      d.encoded.subarray(AT.signature, AT.signature + 64),
    );
  } catch {
    return false;
  }
}

/** The CID key index (1..3) of the online key with this sequence number: sequence mod 3 + 1. */
export function confirmationKeyIndex(sequence: number): 1 | 2 | 3 {
  return ((sequence % 3) + 1) as 1 | 2 | 3;
}
