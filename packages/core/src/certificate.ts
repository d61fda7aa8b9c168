import type { KeyObject } from 'node:crypto';
import { CoreError } from './errors.js';
import { bytesToGuid, guidToBytes } from './ids.js';
import { keyFingerprint, publicKeyFromRaw, signMessage, verifyMessage } from './crypto.js';

/**
 * Host certificate: the authority's statement that a host public key may answer KMS requests
 * for some product groups until a date. Binary, big-endian, declared once:
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
  /** The signed part, as it was on the wire. */
  readonly tbs: Buffer;
  readonly encoded: Buffer;
}

const CERT_CONTEXT = Buffer.from('volact/host-cert/v1\0');
const HEADER = 90;
export const MAX_CERT_GROUPS = 64;
export const MAX_CERT_BYTES = HEADER + 16 * MAX_CERT_GROUPS + 64;

export interface HostCertificateFields {
  hostPublicKey: Buffer;
  serial: string;
  hostKeyId: string;
  issuedAt: number;
  expiresAt: number;
  groupIds: readonly string[];
}

export function issueHostCertificate(
  fields: HostCertificateFields,
  root: { privateKey: KeyObject; publicKeyRaw: Buffer },
): Buffer {
  const n = fields.groupIds.length;
  if (n < 1 || n > MAX_CERT_GROUPS) throw new RangeError(`a certificate names 1..${MAX_CERT_GROUPS} groups`);
  if (fields.hostPublicKey.length !== 32) throw new RangeError('host public key must be 32 bytes');
  const tbs = Buffer.alloc(HEADER + 16 * n);
  tbs[0] = 1;
  tbs[1] = n;
  fields.hostPublicKey.copy(tbs, 2);
  guidToBytes(fields.serial).copy(tbs, 34);
  guidToBytes(fields.hostKeyId).copy(tbs, 50);
  tbs.writeBigUInt64BE(BigInt(fields.issuedAt), 66);
  tbs.writeBigUInt64BE(BigInt(fields.expiresAt), 74);
  keyFingerprint(root.publicKeyRaw).copy(tbs, 82);
  fields.groupIds.forEach((g, i) => guidToBytes(g).copy(tbs, HEADER + 16 * i));
  const signature = signMessage(root.privateKey, Buffer.concat([CERT_CONTEXT, tbs]));
  return Buffer.concat([tbs, signature]);
}

export function decodeHostCertificate(bytes: Uint8Array): HostCertificate {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (buf.length < HEADER + 16 + 64)
    throw new CoreError('CERT_MALFORMED', `certificate too short (${buf.length} bytes)`);
  if (buf[0] !== 1)
    throw new CoreError('CERT_MALFORMED', `certificate version ${buf[0]} is not supported (expected 1)`);
  const n = buf[1] as number;
  if (n < 1 || n > MAX_CERT_GROUPS)
    throw new CoreError('CERT_MALFORMED', `certificate names ${n} groups (1..64 allowed)`);
  const expected = HEADER + 16 * n + 64;
  if (buf.length !== expected)
    throw new CoreError('CERT_MALFORMED', `certificate is ${buf.length} bytes, expected ${expected}`);
  const groupIds: string[] = [];
  for (let i = 0; i < n; i++) groupIds.push(bytesToGuid(buf.subarray(HEADER + 16 * i, HEADER + 16 * (i + 1))));
  return {
    hostPublicKey: Buffer.from(buf.subarray(2, 34)),
    serial: bytesToGuid(buf.subarray(34, 50)),
    hostKeyId: bytesToGuid(buf.subarray(50, 66)),
    issuedAt: Number(buf.readBigUInt64BE(66)),
    expiresAt: Number(buf.readBigUInt64BE(74)),
    issuer: Buffer.from(buf.subarray(82, 90)),
    groupIds,
    tbs: Buffer.from(buf.subarray(0, expected - 64)),
    signature: Buffer.from(buf.subarray(expected - 64)),
    encoded: Buffer.from(buf),
  };
}

/** True when the root's signature over the certificate is valid. Dates are checked by the caller. */
export function verifyHostCertificate(cert: HostCertificate, rootPublicKey: KeyObject): boolean {
  return verifyMessage(rootPublicKey, Buffer.concat([CERT_CONTEXT, cert.tbs]), cert.signature);
}

export function hostPublicKeyOf(cert: HostCertificate): KeyObject {
  return publicKeyFromRaw(cert.hostPublicKey);
}
