import { randomBytes } from 'node:crypto';
import { CoreError } from './errors.js';

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A 128-bit identifier written as a GUID; any bit pattern is allowed (CMIDs are random). The
 * bytes are the hex digits in the order they are written (RFC 9562's order), not the
 * mixed-endian order of Microsoft's GUID structure: `6191a9b3-f19a-…` is `61 91 a9 b3 f1 9a …`
 * on the wire and in every signed message (docs/protocol.md, Encoding rules).
 */
export function guidToBytes(guid: string): Buffer {
  const lower = guid.toLowerCase();
  if (!GUID_RE.test(lower)) {
    throw new CoreError('ID_MALFORMED', `"${guid.slice(0, 40)}" is not a GUID; expected 8-4-4-4-12 hex digits`);
  }
  return Buffer.from(lower.replace(/-/g, ''), 'hex');
}

export function bytesToGuid(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new CoreError('ID_MALFORMED', `a GUID has 16 bytes, got ${bytes.length}`);
  const h = Buffer.from(bytes.buffer, bytes.byteOffset, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function isGuid(text: string): boolean {
  return GUID_RE.test(text.toLowerCase());
}

export function randomGuid(): string {
  return bytesToGuid(randomBytes(16));
}

/**
 * A client machine ID (CMID): random, made once per installation. A cloned state directory
 * keeps it, so clones show up as duplicates, as cloned images do in the reference system.
 */
export function newClientMachineId(): string {
  return randomGuid();
}
