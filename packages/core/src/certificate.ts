import type { KeyObject } from 'node:crypto';
import { CoreError } from './errors.js';
import { bytesToGuid, guidToBytes } from './ids.js';
import { keyFingerprint, publicKeyFromRaw, rawPublicKey, sha256, verifyMessage } from './crypto.js';
import { DAY } from './clock.js';
import type { Signer } from './trust/signer.js';
import { bigIntToBytes, bytesToBigInt } from './digit-groups.js';
import {
  shortSign,
  shortSignV2,
  shortSignatureFromBigInt,
  shortSignatureToBigInt,
  shortVerify,
  shortVerifyV2,
  type ShortSignature,
  type ShortSigningKey,
} from './short-signature.js';
import { hostKeyRefOf, type ConfirmationSigner } from './installation-id.js';
import { HOST_CERTIFICATE_LAYOUT, HOST_CERTIFICATE_V2_LAYOUT, type Field } from './wire/layout.js';

/**
 * Host certificate: the authority's statement that a host public key may answer KMS requests
 * for some product groups until a date. Binary, big-endian, declared once in wire/layout.ts
 * (HOST_CERTIFICATE_LAYOUT, HOST_CERTIFICATE_V2_LAYOUT; the offsets below come from there):
 *
 *   off  size  field
 *   0    1     version (1)
 *   1    1     groupCount n (1..64)
 *   2    32    hostPublicKey (Ed25519, raw)
 *   34   16    serial (random)
 *   50   16    hostKeyId (the authority's id of the KMS host key that was activated)
 *   66   8     issuedAt (ms since epoch, u64)
 *   74   8     expiresAt (ms since epoch, u64)
 *   82   8     issuer (first 8 bytes of SHA-256 of the root public key)
 *   90   16n   groupIds
 *   ..   64    Ed25519 signature by the root over "volact/host-cert/v1\0" || bytes 0..90+16n
 *
 * Version 2 is issued by phone: the authority never sees the host's public key, only its hash
 * in the host's installation ID, and its signature must fit in a confirmation ID. The host
 * rebuilds the certificate around the confirmation's short signature:
 *
 *   0    1     version (2)
 *   1    1     groupCount n (1..64)
 *   2    32    hostPublicKey
 *   34   8     keyRef (of the KMS host key, see installation-id.ts)
 *   42   2     issuedDay (days since the epoch)
 *   44   2     validityDays
 *   46   8     issuer (key ID of the signer: the online key, or a root before online keys)
 *   54   16n   groupIds
 *   ..   48    short Schnorr signature by the issuer (e·L + s, big-endian) over
 *              keyRef || hostKeyRef(hostPublicKey) || issuedDay || validityDays || groupIds
 *              (short signature v2 by an online key, v1 by a root: the issuer says which)
 */
export interface HostCertificate {
  readonly hostPublicKey: Buffer;
  readonly serial: string;
  readonly hostKeyId: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly issuer: Buffer;
  readonly groupIds: readonly string[];
  readonly signature: Buffer;
  readonly version: 1 | 2;
  /** The signed part, as it was on the wire. */
  readonly tbs: Buffer;
  readonly encoded: Buffer;
}

const CERT_CONTEXT = Buffer.from('volact/host-cert/v1\0');
const V1 = HOST_CERTIFICATE_LAYOUT.at;
const HEADER = HOST_CERTIFICATE_LAYOUT.size;
export const MAX_CERT_GROUPS = 64;
export const MAX_CERT_BYTES = HEADER + 16 * MAX_CERT_GROUPS + 64;

function field(buf: Buffer, f: Field): Buffer {
  return buf.subarray(f.offset, f.offset + f.size);
}

export interface HostCertificateFields {
  hostPublicKey: Buffer;
  serial: string;
  hostKeyId: string;
  issuedAt: number;
  expiresAt: number;
  groupIds: readonly string[];
}

export function issueHostCertificate(fields: HostCertificateFields, root: Signer): Buffer {
  const n = fields.groupIds.length;
  if (n < 1 || n > MAX_CERT_GROUPS) throw new RangeError(`a certificate names 1..${MAX_CERT_GROUPS} groups`);
  if (fields.hostPublicKey.length !== 32) throw new RangeError('host public key must be 32 bytes');
  const tbs = Buffer.alloc(HEADER + 16 * n);
  tbs[V1.version.offset] = 1;
  tbs[V1.groupCount.offset] = n;
  fields.hostPublicKey.copy(tbs, V1.hostPublicKey.offset);
  guidToBytes(fields.serial).copy(tbs, V1.serial.offset);
  guidToBytes(fields.hostKeyId).copy(tbs, V1.hostKeyId.offset);
  tbs.writeBigUInt64BE(BigInt(fields.issuedAt), V1.issuedAt.offset);
  tbs.writeBigUInt64BE(BigInt(fields.expiresAt), V1.expiresAt.offset);
  keyFingerprint(root.publicKeyRaw).copy(tbs, V1.issuer.offset);
  fields.groupIds.forEach((g, i) => guidToBytes(g).copy(tbs, HEADER + 16 * i));
  const signature = root.sign(Buffer.concat([CERT_CONTEXT, tbs]));
  return Buffer.concat([tbs, signature]);
}

export function decodeHostCertificate(bytes: Uint8Array): HostCertificate {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  // Version dispatch: byte 0 picks the layout.
  const decode = buf.length >= 1 ? CERT_DECODERS.get(buf[0] as number) : undefined;
  if (decode) return decode(buf);
  if (buf.length < HEADER + 16 + 64)
    throw new CoreError('CERT_MALFORMED', `certificate too short (${buf.length} bytes)`);
  throw new CoreError(
    'CERT_MALFORMED',
    `certificate version ${buf[0]} is not supported (expected ${[...CERT_DECODERS.keys()].join(' or ')})`,
  );
}

function decodeV1(buf: Buffer): HostCertificate {
  if (buf.length < HEADER + 16 + 64)
    throw new CoreError('CERT_MALFORMED', `certificate too short (${buf.length} bytes)`);
  const n = buf[V1.groupCount.offset] as number;
  if (n < 1 || n > MAX_CERT_GROUPS)
    throw new CoreError('CERT_MALFORMED', `certificate names ${n} groups (1..64 allowed)`);
  const expected = HEADER + 16 * n + 64;
  if (buf.length !== expected)
    throw new CoreError('CERT_MALFORMED', `certificate is ${buf.length} bytes, expected ${expected}`);
  const groupIds: string[] = [];
  for (let i = 0; i < n; i++) groupIds.push(bytesToGuid(buf.subarray(HEADER + 16 * i, HEADER + 16 * (i + 1))));
  return {
    hostPublicKey: Buffer.from(field(buf, V1.hostPublicKey)),
    serial: bytesToGuid(field(buf, V1.serial)),
    hostKeyId: bytesToGuid(field(buf, V1.hostKeyId)),
    issuedAt: Number(buf.readBigUInt64BE(V1.issuedAt.offset)),
    expiresAt: Number(buf.readBigUInt64BE(V1.expiresAt.offset)),
    issuer: Buffer.from(field(buf, V1.issuer)),
    groupIds,
    tbs: Buffer.from(buf.subarray(0, expected - 64)),
    signature: Buffer.from(buf.subarray(expected - 64)),
    version: 1,
    encoded: Buffer.from(buf),
  };
}

const V2 = HOST_CERTIFICATE_V2_LAYOUT.at;
const V2_HEADER = HOST_CERTIFICATE_V2_LAYOUT.size;
const V2_SIGNATURE = 48;
const PHONE_CERT_CONTEXT = 'host-certificate';

export interface PhoneCertificateFields {
  keyRef: Buffer;
  hostKeyRef: Buffer;
  issuedDay: number;
  validityDays: number;
  groupIds: readonly string[];
}

function phoneCertificateMessage(f: PhoneCertificateFields): Buffer {
  const days = Buffer.alloc(4);
  days.writeUInt16BE(f.issuedDay, 0);
  days.writeUInt16BE(f.validityDays, 2);
  return Buffer.concat([f.keyRef, f.hostKeyRef, days, ...f.groupIds.map(guidToBytes)]);
}

/**
 * The authority's side of a phone activation of a KMS host: the signature a confirmation ID
 * carries, by the online key (v2; the CID carries `signer.keyIndex`).
 */
export function signPhoneCertificate(fields: PhoneCertificateFields, signer: ConfirmationSigner): ShortSignature {
  return shortSignV2(signer.short, PHONE_CERT_CONTEXT, phoneCertificateMessage(fields));
}

/** A root's phone certificate signature (v1, CID key index 0): what they were before online keys. Tests and vectors only. */
export function signPhoneCertificateWithRoot(fields: PhoneCertificateFields, root: ShortSigningKey): ShortSignature {
  return shortSign(root, PHONE_CERT_CONTEXT, phoneCertificateMessage(fields));
}

/**
 * The host's side: its certificate, rebuilt around the confirmation's signature. The issuer is
 * the key that signed: the online key the CID's key index names, or the root for index 0.
 */
export function buildPhoneCertificate(
  fields: Omit<PhoneCertificateFields, 'hostKeyRef'> & { hostPublicKey: Buffer; issuerPublicKeyRaw: Buffer },
  signature: ShortSignature,
): Buffer {
  const n = fields.groupIds.length;
  if (n < 1 || n > MAX_CERT_GROUPS) throw new RangeError(`a certificate names 1..${MAX_CERT_GROUPS} groups`);
  const out = Buffer.alloc(V2_HEADER + 16 * n + V2_SIGNATURE);
  out[V2.version.offset] = 2;
  out[V2.groupCount.offset] = n;
  fields.hostPublicKey.copy(out, V2.hostPublicKey.offset);
  fields.keyRef.copy(out, V2.keyRef.offset);
  out.writeUInt16BE(fields.issuedDay, V2.issuedDay.offset);
  out.writeUInt16BE(fields.validityDays, V2.validityDays.offset);
  keyFingerprint(fields.issuerPublicKeyRaw).copy(out, V2.issuer.offset);
  fields.groupIds.forEach((g, i) => guidToBytes(g).copy(out, V2_HEADER + 16 * i));
  bigIntToBytes(shortSignatureToBigInt(signature), V2_SIGNATURE).copy(out, V2_HEADER + 16 * n);
  return out;
}

function decodeV2(buf: Buffer): HostCertificate {
  if (buf.length < V2_HEADER + 16 + V2_SIGNATURE)
    throw new CoreError('CERT_MALFORMED', `certificate too short (${buf.length} bytes)`);
  const n = buf[V2.groupCount.offset] as number;
  if (n < 1 || n > MAX_CERT_GROUPS)
    throw new CoreError('CERT_MALFORMED', `certificate names ${n} groups (1..64 allowed)`);
  const expected = V2_HEADER + 16 * n + V2_SIGNATURE;
  if (buf.length !== expected)
    throw new CoreError('CERT_MALFORMED', `certificate is ${buf.length} bytes, expected ${expected}`);
  const groupIds: string[] = [];
  for (let i = 0; i < n; i++) groupIds.push(bytesToGuid(buf.subarray(V2_HEADER + 16 * i, V2_HEADER + 16 * (i + 1))));
  const issuedAt = buf.readUInt16BE(V2.issuedDay.offset) * DAY;
  const tbs = Buffer.from(buf.subarray(0, expected - V2_SIGNATURE));
  return {
    hostPublicKey: Buffer.from(field(buf, V2.hostPublicKey)),
    serial: bytesToGuid(sha256(tbs).subarray(0, 16)),
    hostKeyId: bytesToGuid(Buffer.concat([field(buf, V2.keyRef), Buffer.alloc(8)])),
    issuedAt,
    expiresAt: issuedAt + buf.readUInt16BE(V2.validityDays.offset) * DAY,
    issuer: Buffer.from(field(buf, V2.issuer)),
    groupIds,
    tbs,
    signature: Buffer.from(buf.subarray(expected - V2_SIGNATURE)),
    version: 2,
    encoded: Buffer.from(buf),
  };
}

const CERT_DECODERS: ReadonlyMap<number, (buf: Buffer) => HostCertificate> = new Map([
  [1, decodeV1],
  [2, decodeV2],
]);

/**
 * True when the issuer's signature over the certificate is valid. Dates are checked by the caller.
 * A v1 certificate is signed by a root. A v2 (phone) certificate's short signature is v1 when its
 * issuer is a root (`scheme` 'root'), v2 when it is an online key ('delegate'): the caller knows
 * which from its TrustStore; without `scheme` either is accepted (each is a sound signature under
 * that key, domain-separated from the other).
 */
export function verifyHostCertificate(
  cert: HostCertificate,
  issuerPublicKey: KeyObject,
  scheme?: 'root' | 'delegate',
): boolean {
  if (cert.version === 1)
    return verifyMessage(issuerPublicKey, Buffer.concat([CERT_CONTEXT, cert.tbs]), cert.signature);
  const signature = shortSignatureFromBigInt(bytesToBigInt(cert.signature));
  const raw = rawPublicKey(issuerPublicKey);
  const message = phoneCertificateMessage({
    keyRef: field(cert.tbs, V2.keyRef),
    hostKeyRef: hostKeyRefOf(cert.hostPublicKey),
    issuedDay: cert.tbs.readUInt16BE(V2.issuedDay.offset),
    validityDays: cert.tbs.readUInt16BE(V2.validityDays.offset),
    groupIds: cert.groupIds,
  });
  return (
    (scheme !== 'delegate' && shortVerify(raw, PHONE_CERT_CONTEXT, message, signature)) ||
    (scheme !== 'root' && shortVerifyV2(raw, PHONE_CERT_CONTEXT, message, signature))
  );
}

export function hostPublicKeyOf(cert: HostCertificate): KeyObject {
  return publicKeyFromRaw(cert.hostPublicKey);
}
