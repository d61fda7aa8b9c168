import { DAY } from '../clock.js';
import { publicKeyFromRaw, verifyMessage } from '../crypto.js';
import { CoreError } from '../errors.js';
import { copyOf, readU64, requireLength, writeU32, writeU64 } from './bytes.js';
import { KEY_ID_BYTES, keyIdOf } from './key-id.js';
import { HOST_STATUS_LAYOUT, REVOCATION_ENTRY_LAYOUT, REVOCATION_LIST_LAYOUT, offsetsOf } from './layout.js';
import type { Signer } from './signer.js';

/**
 * The revocation list, signed by the current root:
 *
 *   0 u8 version = 1 | 1 issuerKeyId (8) | 9 listVersion u64 | 17 issuedAt u64 ms | 25 nextUpdate u64 ms
 *   33 count u32 (<= 65536) | 37 count x 25: u8 kind | subject (16) | revokedAt u64 ms | signature (64)
 *
 * Entries are sorted by (kind, subject), without duplicates. A host key's subject is
 * SHA-256(host public key)[0..16] (hostKeyRefOf); a manufacturer's or token CA's is its key ID and
 * 8 zero bytes. The signature is over "volact/revocations/v1\0" || every byte before it.
 *
 * The host status (113 bytes), the stapled verdict "host key K is not on list version V":
 *
 *   0 u8 version = 1 | 1 issuerKeyId (8) | 9 hostKeyRef (16) | 25 listVersion u64 | 33 issuedAt u64 ms
 *   41 nextUpdate u64 ms | 49 signature (64) over "volact/host-status/v1\0" || bytes[0..49]
 */
export const REVOCATION_KIND = { host: 1, manufacturer: 2, tokenCa: 3 } as const;
export const REVOCATION_LIST_LIFETIME = 7 * DAY;
/**
 * The longest a host status may be valid (nextUpdate - issuedAt): the list's lifetime and one
 * hour. The authority's statuses end with the list's nextUpdate; a longer one is refused, so a
 * revoked host cannot show a status made before its revocation for longer than that.
 */
export const MAX_HOST_STATUS_VALIDITY_MS = REVOCATION_LIST_LIFETIME + 60 * 60 * 1000;
export const REVOCATION_LIST_VERSION = 1;
export const MAX_REVOCATION_ENTRIES = 65_536;
export const REVOCATION_LIST_CONTEXT = 'volact/revocations/v1\0';
export const HOST_STATUS_CONTEXT = 'volact/host-status/v1\0';
export const HOST_STATUS_BYTES = 113;
const SUBJECT_BYTES = 16;
const ENTRY_BYTES = REVOCATION_ENTRY_LAYOUT.size;
const HEADER = REVOCATION_LIST_LAYOUT.size;
const SIGNATURE = 64;
export const MAX_REVOCATION_LIST_BYTES = HEADER + MAX_REVOCATION_ENTRIES * ENTRY_BYTES + SIGNATURE;

const RL = offsetsOf(REVOCATION_LIST_LAYOUT);
const ENTRY = offsetsOf(REVOCATION_ENTRY_LAYOUT);
const HS = offsetsOf(HOST_STATUS_LAYOUT);

export type RevocationKind = keyof typeof REVOCATION_KIND;

export interface RevocationEntry {
  kind: RevocationKind;
  /** 16 bytes. */
  subject: Buffer;
  revokedAt: number;
}

export interface RevocationList {
  issuerKeyId: Buffer;
  listVersion: number;
  issuedAt: number;
  nextUpdate: number;
  entries: readonly RevocationEntry[];
  encoded: Buffer;
}

export interface HostStatus {
  issuerKeyId: Buffer;
  hostKeyRef: Buffer;
  listVersion: number;
  issuedAt: number;
  nextUpdate: number;
  encoded: Buffer;
}

const KIND_BY_CODE: Record<number, RevocationKind> = { 1: 'host', 2: 'manufacturer', 3: 'tokenCa' };

function listInvalid(why: string): CoreError {
  return new CoreError('REVOCATION_LIST_INVALID', `revocation list: ${why}`);
}

function statusInvalid(why: string): CoreError {
  return new CoreError('REVOCATION_LIST_INVALID', `host status: ${why}`);
}

/** The subject of a manufacturer or token-CA entry: the key ID and 8 zero bytes. */
export function revocationSubjectOfKeyId(keyId: Uint8Array): Buffer {
  requireLength(keyId, KEY_ID_BYTES, 'keyId');
  return Buffer.concat([Buffer.from(keyId), Buffer.alloc(SUBJECT_BYTES - KEY_ID_BYTES)]);
}

function compareEntry(aKind: number, aSubject: Uint8Array, bKind: number, bSubject: Uint8Array): number {
  return aKind !== bKind ? aKind - bKind : Buffer.compare(aSubject, bSubject);
}

/** Why an entry's subject does not fit its kind, or null. */
function subjectFault(kind: RevocationKind, subject: Uint8Array): string | null {
  if (subject.length !== SUBJECT_BYTES) return `a subject has ${SUBJECT_BYTES} bytes, got ${subject.length}`;
  if (kind !== 'host' && subject.subarray(KEY_ID_BYTES).some((b) => b !== 0))
    return `a ${kind} subject is a key ID followed by 8 zero bytes`;
  return null;
}

/** Makes a revocation list signed by `root` (entries are sorted here; a duplicate is refused). */
export function makeRevocationList(
  f: { listVersion: number; issuedAt: number; nextUpdate: number; entries: readonly RevocationEntry[] },
  root: Signer,
): Buffer {
  if (f.entries.length > MAX_REVOCATION_ENTRIES)
    throw listInvalid(`${f.entries.length} entries, at most ${MAX_REVOCATION_ENTRIES}`);
  if (f.nextUpdate < f.issuedAt) throw new RangeError('revocation list: nextUpdate is before issuedAt');
  const entries = [...f.entries].sort((a, b) =>
    compareEntry(REVOCATION_KIND[a.kind], a.subject, REVOCATION_KIND[b.kind], b.subject),
  );
  const out = Buffer.alloc(HEADER + entries.length * ENTRY_BYTES + SIGNATURE);
  out.writeUInt8(REVOCATION_LIST_VERSION, RL.version);
  root.keyId.copy(out, RL.issuerKeyId);
  writeU64(out, RL.listVersion, f.listVersion, 'listVersion');
  writeU64(out, RL.issuedAt, f.issuedAt, 'issuedAt');
  writeU64(out, RL.nextUpdate, f.nextUpdate, 'nextUpdate');
  writeU32(out, RL.count, entries.length, 'count');
  entries.forEach((e, i) => {
    const code = REVOCATION_KIND[e.kind];
    if (code === undefined) throw listInvalid(`unknown entry kind ${String(e.kind)}`);
    const fault = subjectFault(e.kind, e.subject);
    if (fault) throw listInvalid(fault);
    const prev = entries[i - 1];
    if (prev && compareEntry(REVOCATION_KIND[prev.kind], prev.subject, code, e.subject) === 0)
      throw listInvalid(`the ${e.kind} ${Buffer.from(e.subject).toString('hex')} is listed twice`);
    const at = HEADER + i * ENTRY_BYTES;
    out.writeUInt8(code, at + ENTRY.kind);
    Buffer.from(e.subject).copy(out, at + ENTRY.subject);
    writeU64(out, at + ENTRY.revokedAt, e.revokedAt, 'revokedAt');
  });
  const body = out.subarray(0, out.length - SIGNATURE);
  root.sign(Buffer.concat([Buffer.from(REVOCATION_LIST_CONTEXT), body])).copy(out, out.length - SIGNATURE);
  return out;
}

/** Decodes a revocation list (exact length for its count, sorted entries); does not check the signature. */
export function decodeRevocationList(bytes: Uint8Array): RevocationList {
  if (bytes.length < HEADER + SIGNATURE) throw listInvalid(`${bytes.length} bytes is shorter than an empty list`);
  if (bytes.length > MAX_REVOCATION_LIST_BYTES) throw listInvalid(`${bytes.length} bytes is longer than a list can be`);
  const buf = Buffer.from(bytes);
  const version = buf.readUInt8(RL.version);
  if (version !== REVOCATION_LIST_VERSION) throw listInvalid(`unknown version ${version} (this release reads 1)`);
  const count = buf.readUInt32BE(RL.count);
  if (count > MAX_REVOCATION_ENTRIES) throw listInvalid(`${count} entries, at most ${MAX_REVOCATION_ENTRIES}`);
  const expected = HEADER + count * ENTRY_BYTES + SIGNATURE;
  if (buf.length !== expected) throw listInvalid(`${count} entries make ${expected} bytes, got ${buf.length}`);
  const listVersion = readU64(buf, RL.listVersion);
  const issuedAt = readU64(buf, RL.issuedAt);
  const nextUpdate = readU64(buf, RL.nextUpdate);
  if (listVersion === null || issuedAt === null || nextUpdate === null) throw listInvalid('a number is out of range');
  if (nextUpdate < issuedAt) throw listInvalid('nextUpdate is before issuedAt');
  const entries: RevocationEntry[] = [];
  let prevCode = 0;
  let prevSubject: Buffer | null = null;
  for (let i = 0; i < count; i++) {
    const at = HEADER + i * ENTRY_BYTES;
    const code = buf.readUInt8(at + ENTRY.kind);
    const kind = KIND_BY_CODE[code];
    if (!kind) throw listInvalid(`entry ${i}: unknown kind ${code}`);
    const subject = copyOf(buf, at + ENTRY.subject, SUBJECT_BYTES);
    const fault = subjectFault(kind, subject);
    if (fault) throw listInvalid(`entry ${i}: ${fault}`);
    if (prevSubject && compareEntry(prevCode, prevSubject, code, subject) >= 0)
      throw listInvalid(`entry ${i}: entries are not sorted by (kind, subject) or one is listed twice`);
    const revokedAt = readU64(buf, at + ENTRY.revokedAt);
    if (revokedAt === null) throw listInvalid(`entry ${i}: revokedAt is out of range`);
    entries.push({ kind, subject, revokedAt });
    prevCode = code;
    prevSubject = subject;
  }
  return {
    issuerKeyId: copyOf(buf, RL.issuerKeyId, KEY_ID_BYTES),
    listVersion,
    issuedAt,
    nextUpdate,
    entries,
    encoded: buf,
  };
}

/** True when the list names this root as issuer and the root's signature verifies. */
export function verifyRevocationList(l: RevocationList, rootPublicKeyRaw: Uint8Array): boolean {
  if (rootPublicKeyRaw.length !== 32 || l.encoded.length < HEADER + SIGNATURE) return false;
  if (!keyIdOf(rootPublicKeyRaw).equals(l.issuerKeyId)) return false;
  const body = l.encoded.subarray(0, l.encoded.length - SIGNATURE);
  try {
    return verifyMessage(
      publicKeyFromRaw(rootPublicKeyRaw),
      Buffer.concat([Buffer.from(REVOCATION_LIST_CONTEXT), body]),
      l.encoded.subarray(l.encoded.length - SIGNATURE),
    );
  } catch {
    return false;
  }
}

/**
 * The entry revoking this subject, or null. `subject` is 16 bytes (a host key ref, or a padded
 * key ID); for a manufacturer or token CA the 8-byte key ID is accepted too.
 */
export function isRevoked(l: RevocationList, kind: RevocationKind, subject: Uint8Array): RevocationEntry | null {
  const code = REVOCATION_KIND[kind];
  let key: Uint8Array = subject;
  if (kind !== 'host' && subject.length === KEY_ID_BYTES) key = revocationSubjectOfKeyId(subject);
  if (key.length !== SUBJECT_BYTES) return null;
  let lo = 0;
  let hi = l.entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const e = l.entries[mid]!;
    const c = compareEntry(REVOCATION_KIND[e.kind], e.subject, code, key);
    if (c === 0) return e;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return null;
}

/** Makes a host status signed by `root`. */
export function makeHostStatus(f: Omit<HostStatus, 'issuerKeyId' | 'encoded'>, root: Signer): Buffer {
  requireLength(f.hostKeyRef, SUBJECT_BYTES, 'hostKeyRef');
  if (f.nextUpdate < f.issuedAt) throw new RangeError('host status: nextUpdate is before issuedAt');
  if (f.nextUpdate - f.issuedAt > MAX_HOST_STATUS_VALIDITY_MS)
    throw new RangeError('host status: valid longer than the cap of 7 days and 1 hour');
  const out = Buffer.alloc(HOST_STATUS_BYTES);
  out.writeUInt8(REVOCATION_LIST_VERSION, HS.version);
  root.keyId.copy(out, HS.issuerKeyId);
  Buffer.from(f.hostKeyRef).copy(out, HS.hostKeyRef);
  writeU64(out, HS.listVersion, f.listVersion, 'listVersion');
  writeU64(out, HS.issuedAt, f.issuedAt, 'issuedAt');
  writeU64(out, HS.nextUpdate, f.nextUpdate, 'nextUpdate');
  root.sign(Buffer.concat([Buffer.from(HOST_STATUS_CONTEXT), out.subarray(0, HS.signature)])).copy(out, HS.signature);
  return out;
}

/** Decodes a host status (exactly 113 bytes, version 1); does not check the signature. */
export function decodeHostStatus(bytes: Uint8Array): HostStatus {
  if (bytes.length !== HOST_STATUS_BYTES)
    throw statusInvalid(`expected ${HOST_STATUS_BYTES} bytes, got ${bytes.length}`);
  const buf = Buffer.from(bytes);
  const version = buf.readUInt8(HS.version);
  if (version !== REVOCATION_LIST_VERSION) throw statusInvalid(`unknown version ${version} (this release reads 1)`);
  const listVersion = readU64(buf, HS.listVersion);
  const issuedAt = readU64(buf, HS.issuedAt);
  const nextUpdate = readU64(buf, HS.nextUpdate);
  if (listVersion === null || issuedAt === null || nextUpdate === null) throw statusInvalid('a number is out of range');
  if (nextUpdate < issuedAt) throw statusInvalid('nextUpdate is before issuedAt');
  if (nextUpdate - issuedAt > MAX_HOST_STATUS_VALIDITY_MS)
    throw statusInvalid(
      `valid ${Math.ceil((nextUpdate - issuedAt) / 60_000)} minutes, longer than the cap of 7 days and 1 hour`,
    );
  return {
    issuerKeyId: copyOf(buf, HS.issuerKeyId, KEY_ID_BYTES),
    hostKeyRef: copyOf(buf, HS.hostKeyRef, SUBJECT_BYTES),
    listVersion,
    issuedAt,
    nextUpdate,
    encoded: buf,
  };
}

/** True when the status names this root as issuer and the root's signature verifies. */
export function verifyHostStatus(s: HostStatus, rootPublicKeyRaw: Uint8Array): boolean {
  if (rootPublicKeyRaw.length !== 32 || s.encoded.length !== HOST_STATUS_BYTES) return false;
  if (!keyIdOf(rootPublicKeyRaw).equals(s.issuerKeyId)) return false;
  try {
    return verifyMessage(
      publicKeyFromRaw(rootPublicKeyRaw),
      Buffer.concat([Buffer.from(HOST_STATUS_CONTEXT), s.encoded.subarray(0, HS.signature)]),
      s.encoded.subarray(HS.signature),
    );
  } catch {
    return false;
  }
}

/** Refuses a list older than the one held: CoreError REVOCATION_LIST_STALE naming both versions. */
export function assertNotOlder(held: { listVersion: number } | null, incoming: { listVersion: number }): void {
  if (held && incoming.listVersion < held.listVersion)
    throw new CoreError(
      'REVOCATION_LIST_STALE',
      `revocation list version ${incoming.listVersion} is older than version ${held.listVersion} already held; ` +
        'it is refused (a replayed list would hide newer revocations): fetch the current list from the authority',
    );
}
