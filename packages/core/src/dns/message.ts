import { isIPv4, isIPv6 } from 'node:net';
import { CoreError } from '../errors.js';

/**
 * DNS messages (RFC 1035 §4): header, questions and the three record sections, with typed
 * data for the record types volact publishes and checks (A, AAAA, SRV, SOA, TSIG); any other
 * type is kept as raw bytes. The decoder reads what a server on the network sent, so every
 * length, count and compression pointer is checked against the bytes actually there before
 * it is used: a malformed or hostile reply fails with DNS_MALFORMED_REPLY, quickly, never
 * with another exception and never by looping.
 *
 * Names are in presentation form without the final dot ("_vlmcs._tcp.corp.test"; the root
 * is "."). Bytes that are not plain printable ASCII, and "." or "\" inside a label, are
 * escaped as in zone files (`\.`, `\\`, `\DDD`), so every decoded name encodes back to the
 * same labels. The encoder never compresses (a few records, and TSIG forbids compressing the
 * names it signs anyway).
 */

export const DnsType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  TSIG: 250,
  ANY: 255,
} as const;

export const DnsClass = { IN: 1, NONE: 254, ANY: 255 } as const;

export const DnsOpcode = { QUERY: 0, UPDATE: 5 } as const;

/** Response codes, RFC 1035 §4.1.1 and RFC 2136 §2.2 (6..10 are update answers). */
export const DnsRcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  YXDOMAIN: 6,
  YXRRSET: 7,
  NXRRSET: 8,
  NOTAUTH: 9,
  NOTZONE: 10,
} as const;

/** The header is 12 bytes; a message is at most 65535 (the TCP length prefix). */
export const DNS_HEADER_SIZE = 12;
export const DNS_MAX_MESSAGE = 65535;
/** RFC 1035 §2.3.4: a name is at most 255 bytes on the wire, a label at most 63. */
export const DNS_MAX_NAME = 255;
export const DNS_MAX_LABEL = 63;
/** More pointer jumps than this cannot be a sane name: stop following them. */
export const DNS_MAX_POINTER_JUMPS = 128;

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

export type DnsRdata =
  | { kind: 'A'; address: string }
  | { kind: 'AAAA'; address: string }
  | { kind: 'SRV'; priority: number; weight: number; port: number; target: string }
  | { kind: 'CNAME'; target: string }
  | {
      kind: 'SOA';
      mname: string;
      rname: string;
      serial: number;
      refresh: number;
      retry: number;
      expire: number;
      minimum: number;
    }
  | {
      kind: 'TSIG';
      algorithm: string;
      /** Seconds since 1970 (48 bits on the wire). */
      timeSigned: number;
      fudge: number;
      mac: Buffer;
      originalId: number;
      error: number;
      other: Buffer;
    }
  /** Any other type, and the empty rdata of update deletions (class ANY or NONE). */
  | { kind: 'raw'; bytes: Buffer };

export interface DnsResourceRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: DnsRdata;
}

/**
 * One message. In an update (opcode 5) the sections are, in wire order, the zone,
 * prerequisite, update and additional sections (RFC 2136 §2): `questions` holds the zone,
 * `answers` the prerequisites and `authorities` the updates.
 */
export interface DnsMessage {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsResourceRecord[];
  authorities: DnsResourceRecord[];
  additionals: DnsResourceRecord[];
}

function malformed(message: string): CoreError {
  return new CoreError('DNS_MALFORMED_REPLY', message);
}

// ---------------------------------------------------------------------------------------
// Names

function escapeLabel(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0x2e || b === 0x5c) out += '\\' + String.fromCharCode(b);
    else if (b > 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += '\\' + String(b).padStart(3, '0');
  }
  return out;
}

/**
 * Presentation name → wire labels. Throws DNS_NAME_INVALID naming what is wrong: an empty
 * label ("a..b"), a label over 63 bytes, a name over 255, a bad escape, a character that is
 * not printable ASCII (internationalised names go in their xn-- form).
 */
export function nameToWire(name: string): Buffer {
  if (typeof name !== 'string' || name.length > 4 * DNS_MAX_NAME) {
    throw new CoreError('DNS_NAME_INVALID', 'a DNS name must be a string of at most 255 bytes');
  }
  if (name === '' || name === '.') return Buffer.from([0]);
  const shown = name.length > 60 ? `${name.slice(0, 60)}...` : name;
  const bad = (why: string) => new CoreError('DNS_NAME_INVALID', `"${shown}" ${why}`);
  const labels: number[][] = [];
  let label: number[] = [];
  let endsWithDot = false;
  for (let i = 0; i < name.length;) {
    const c = name.charCodeAt(i);
    endsWithDot = false;
    if (c === 0x2e) {
      if (label.length === 0) throw bad('has an empty label; expected labels separated by single dots');
      labels.push(label);
      label = [];
      endsWithDot = true;
      i++;
    } else if (c === 0x5c) {
      const digits = /^[0-9]{3}/.exec(name.slice(i + 1, i + 4));
      const next = name.charCodeAt(i + 1);
      if (digits) {
        const v = Number(digits[0]);
        if (v > 255) throw bad(`has the escape \\${digits[0]}, over 255`);
        label.push(v);
        i += 4;
      } else if (next > 0x20 && next < 0x7f) {
        label.push(next);
        i += 2;
      } else {
        throw bad('has a backslash not followed by three digits or a printable character');
      }
    } else if (c > 0x20 && c < 0x7f) {
      label.push(c);
      i++;
    } else {
      throw bad('has a space, control or non-ASCII character; expected printable ASCII (xn-- for IDNs)');
    }
    if (label.length > DNS_MAX_LABEL) throw bad(`has a label over ${DNS_MAX_LABEL} bytes`);
  }
  if (!endsWithDot) labels.push(label);
  const size = labels.reduce((n, l) => n + 1 + l.length, 1);
  if (size > DNS_MAX_NAME) throw bad(`is ${size} bytes on the wire; at most ${DNS_MAX_NAME}`);
  const out = Buffer.alloc(size);
  let off = 0;
  for (const l of labels) {
    out[off++] = l.length;
    out.set(l, off);
    off += l.length;
  }
  return out;
}

/**
 * The canonical wire form (RFC 4034 §6.2: ASCII letters in lower case), in which two names
 * are compared: DNS names ignore case. Length bytes are at most 63, below 'A' (65), so
 * folding every byte is safe.
 */
export function canonicalNameWire(name: string): Buffer {
  const wire = nameToWire(name);
  for (let i = 0; i < wire.length; i++) {
    const b = wire[i] as number;
    if (b >= 0x41 && b <= 0x5a) wire[i] = b + 0x20;
  }
  return wire;
}

export function sameName(a: string, b: string): boolean {
  return canonicalNameWire(a).equals(canonicalNameWire(b));
}

/** Whether `name` is `zone` or below it (label-wise: "xcorp.test" is not in "corp.test"). */
export function isInZone(name: string, zone: string): boolean {
  const n = canonicalNameWire(name);
  const z = canonicalNameWire(zone);
  // Walk n's labels until the remaining suffix is as long as the zone's wire form.
  let off = 0;
  while (n.length - off > z.length) off += 1 + (n[off] as number);
  return n.length - off === z.length && n.subarray(off).equals(z);
}

/**
 * Reads a possibly compressed name at `offset`; returns it and where the bytes after it
 * start. Pointers must point strictly backwards (to a name told earlier, RFC 1035 §4.1.4),
 * which rules out loops; the jump count is capped as well.
 */
export function readName(buf: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = offset;
  let next = -1;
  let jumps = 0;
  let size = 1;
  for (;;) {
    if (pos >= buf.length) {
      throw malformed(`name at offset ${offset} runs past the end of the message (${buf.length} bytes)`);
    }
    const len = buf[pos] as number;
    const tag = len & 0xc0;
    if (tag === 0xc0) {
      if (pos + 1 >= buf.length) throw malformed(`compression pointer at offset ${pos} is cut off`);
      const target = ((len & 0x3f) << 8) | (buf[pos + 1] as number);
      if (target >= pos) {
        throw malformed(
          `compression pointer at offset ${pos} points ${target === pos ? 'to itself' : `forward to ${target}`}; pointers must point to an earlier name`,
        );
      }
      if (++jumps > DNS_MAX_POINTER_JUMPS) {
        throw malformed(`name at offset ${offset} follows more than ${DNS_MAX_POINTER_JUMPS} compression pointers`);
      }
      if (next < 0) next = pos + 2;
      pos = target;
      continue;
    }
    if (tag !== 0) {
      throw malformed(
        `label length byte 0x${len.toString(16)} at offset ${pos}: labels are at most 63 bytes (extended label types are not supported)`,
      );
    }
    if (len === 0) {
      if (next < 0) next = pos + 1;
      break;
    }
    size += 1 + len;
    if (size > DNS_MAX_NAME) throw malformed(`name at offset ${offset} is longer than 255 bytes`);
    if (pos + 1 + len > buf.length) {
      throw malformed(`label at offset ${pos} (${len} bytes) runs past the end of the message (${buf.length} bytes)`);
    }
    labels.push(escapeLabel(buf.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
  return { name: labels.length === 0 ? '.' : labels.join('.'), next };
}

// ---------------------------------------------------------------------------------------
// Addresses

function ipv6ToBytes(address: string): Buffer {
  // net.isIPv6 has vetted the syntax; a zone index ("%eth0") is not an address.
  let text = address;
  const out = Buffer.alloc(16);
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    tail.push(...(v4[1] as string).split('.').map(Number));
    text = text.slice(0, -(v4[1] as string).length) + '0:0';
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const all = rest === undefined ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

function bytesToIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  // RFC 5952: "::" replaces the longest run of two or more zero groups (the first if tied).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

// ---------------------------------------------------------------------------------------
// Decoding

function readRdata(buf: Buffer, type: number, cls: number, start: number, end: number): DnsRdata {
  const length = end - start;
  // Update deletions carry no data whatever their type (RFC 2136 §2.5.2).
  if (length === 0 && cls !== DnsClass.IN) return { kind: 'raw', bytes: Buffer.alloc(0) };
  const need = (n: number, what: string) => {
    if (length !== n) throw malformed(`${what} record data at offset ${start} is ${length} bytes; expected ${n}`);
  };
  const nameIn = (at: number, what: string) => {
    const r = readName(buf, at);
    if (r.next > end) throw malformed(`${what} name at offset ${at} runs past its record data`);
    return r;
  };
  switch (type) {
    case DnsType.A:
      need(4, 'A');
      return { kind: 'A', address: Array.from(buf.subarray(start, end)).join('.') };
    case DnsType.AAAA:
      need(16, 'AAAA');
      return { kind: 'AAAA', address: bytesToIpv6(buf.subarray(start, end)) };
    case DnsType.SRV: {
      if (length < 7) throw malformed(`SRV record data at offset ${start} is ${length} bytes; expected at least 7`);
      const target = nameIn(start + 6, 'SRV target');
      if (target.next !== end) throw malformed(`SRV record data at offset ${start} has bytes after the target`);
      return {
        kind: 'SRV',
        priority: buf.readUInt16BE(start),
        weight: buf.readUInt16BE(start + 2),
        port: buf.readUInt16BE(start + 4),
        target: target.name,
      };
    }
    case DnsType.CNAME: {
      const target = nameIn(start, 'CNAME target');
      if (target.next !== end) throw malformed(`CNAME record data at offset ${start} has bytes after the target`);
      return { kind: 'CNAME', target: target.name };
    }
    case DnsType.SOA: {
      const mname = nameIn(start, 'SOA mname');
      const rname = nameIn(mname.next, 'SOA rname');
      if (end - rname.next !== 20) {
        throw malformed(`SOA record data at offset ${start} has ${end - rname.next} bytes of numbers; expected 20`);
      }
      const at = rname.next;
      return {
        kind: 'SOA',
        mname: mname.name,
        rname: rname.name,
        serial: buf.readUInt32BE(at),
        refresh: buf.readUInt32BE(at + 4),
        retry: buf.readUInt32BE(at + 8),
        expire: buf.readUInt32BE(at + 12),
        minimum: buf.readUInt32BE(at + 16),
      };
    }
    case DnsType.TSIG: {
      // RFC 8945 §4.2: the algorithm name is never compressed.
      const alg = nameIn(start, 'TSIG algorithm');
      if (alg.next - start !== nameToWire(alg.name).length) {
        throw malformed(`TSIG algorithm name at offset ${start} is compressed; RFC 8945 forbids that`);
      }
      let at = alg.next;
      const fixed = (n: number) => {
        if (at + n > end) throw malformed(`TSIG record data at offset ${start} is cut off at offset ${at}`);
      };
      fixed(10);
      const timeSigned = buf.readUIntBE(at, 6);
      const fudge = buf.readUInt16BE(at + 6);
      const macSize = buf.readUInt16BE(at + 8);
      at += 10;
      fixed(macSize + 6);
      const mac = Buffer.from(buf.subarray(at, at + macSize));
      at += macSize;
      const originalId = buf.readUInt16BE(at);
      const error = buf.readUInt16BE(at + 2);
      const otherLen = buf.readUInt16BE(at + 4);
      at += 6;
      if (at + otherLen !== end) {
        throw malformed(`TSIG record data at offset ${start}: other data of ${otherLen} bytes does not end the record`);
      }
      return {
        kind: 'TSIG',
        algorithm: alg.name,
        timeSigned,
        fudge,
        mac,
        originalId,
        error,
        other: Buffer.from(buf.subarray(at, end)),
      };
    }
    default:
      return { kind: 'raw', bytes: Buffer.from(buf.subarray(start, end)) };
  }
}

/** The decoded message, and where its last record starts (TSIG is computed over the bytes before it). */
export interface DecodedLayout {
  message: DnsMessage;
  lastRecordOffset: number;
}

export function decodeDnsMessageLayout(input: Uint8Array): DecodedLayout {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (buf.length < DNS_HEADER_SIZE) {
    throw malformed(`message of ${buf.length} bytes is shorter than the 12-byte header`);
  }
  if (buf.length > DNS_MAX_MESSAGE) throw malformed(`message of ${buf.length} bytes is over 65535`);
  const flags = buf.readUInt16BE(2);
  const counts = [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)] as const;
  const [qd, an, ns, ar] = counts;
  // A question takes at least 5 bytes (root name + type + class), a record at least 11: a
  // header claiming more than the message can hold fails here, before any loop runs.
  const least = qd * 5 + (an + ns + ar) * 11;
  if (least > buf.length - DNS_HEADER_SIZE) {
    throw malformed(
      `header claims ${qd} questions and ${an + ns + ar} records, which need at least ${least} bytes; the message has ${buf.length - DNS_HEADER_SIZE} after the header`,
    );
  }
  let off = DNS_HEADER_SIZE;
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < qd; i++) {
    const { name, next } = readName(buf, off);
    if (next + 4 > buf.length) throw malformed(`question ${i + 1} at offset ${off} is cut off`);
    questions.push({ name, type: buf.readUInt16BE(next), class: buf.readUInt16BE(next + 2) });
    off = next + 4;
  }
  let lastRecordOffset = -1;
  const section = (count: number, what: string): DnsResourceRecord[] => {
    const out: DnsResourceRecord[] = [];
    for (let i = 0; i < count; i++) {
      lastRecordOffset = off;
      const { name, next } = readName(buf, off);
      if (next + 10 > buf.length) throw malformed(`${what} record ${i + 1} at offset ${off} is cut off`);
      const type = buf.readUInt16BE(next);
      const cls = buf.readUInt16BE(next + 2);
      const ttl = buf.readUInt32BE(next + 4);
      const rdlength = buf.readUInt16BE(next + 8);
      const start = next + 10;
      if (start + rdlength > buf.length) {
        throw malformed(
          `${what} record ${i + 1} at offset ${off} declares ${rdlength} bytes of data; only ${buf.length - start} remain`,
        );
      }
      out.push({ name, type, class: cls, ttl, data: readRdata(buf, type, cls, start, start + rdlength) });
      off = start + rdlength;
    }
    return out;
  };
  const answers = section(an, 'answer');
  const authorities = section(ns, 'authority');
  const additionals = section(ar, 'additional');
  if (off !== buf.length) throw malformed(`${buf.length - off} bytes follow the last record`);
  // RFC 8945 §5.1: a TSIG record anywhere but last in the additional section is a format error.
  const tsigAt = [...answers, ...authorities, ...additionals].findIndex((r) => r.type === DnsType.TSIG);
  if (tsigAt >= 0 && tsigAt !== an + ns + ar - 1) {
    throw malformed('a TSIG record is not the last record of the additional section');
  }
  return {
    message: {
      id: buf.readUInt16BE(0),
      qr: (flags & 0x8000) !== 0,
      opcode: (flags >> 11) & 0xf,
      aa: (flags & 0x0400) !== 0,
      tc: (flags & 0x0200) !== 0,
      rd: (flags & 0x0100) !== 0,
      ra: (flags & 0x0080) !== 0,
      ad: (flags & 0x0020) !== 0,
      cd: (flags & 0x0010) !== 0,
      rcode: flags & 0xf,
      questions,
      answers,
      authorities,
      additionals,
    },
    lastRecordOffset,
  };
}

/** Strict decoder: a CoreError DNS_MALFORMED_REPLY naming the first thing wrong, or the message. */
export function decodeDnsMessage(input: Uint8Array): DnsMessage {
  return decodeDnsMessageLayout(input).message;
}

// ---------------------------------------------------------------------------------------
// Encoding

function invalid(message: string): CoreError {
  return new CoreError('DNS_RECORD_INVALID', message);
}

function checkUint(value: number, bits: 16 | 32 | 48, what: string): void {
  const max = 2 ** bits - 1;
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw invalid(`${what} is ${String(value)}; expected an integer from 0 to ${max}`);
  }
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

function encodeRdata(rr: DnsResourceRecord): Buffer {
  const d = rr.data;
  const where = `${rr.name} (type ${rr.type})`;
  const expected: Partial<Record<DnsRdata['kind'], number>> = {
    A: DnsType.A,
    AAAA: DnsType.AAAA,
    SRV: DnsType.SRV,
    CNAME: DnsType.CNAME,
    SOA: DnsType.SOA,
    TSIG: DnsType.TSIG,
  };
  if (d.kind !== 'raw' && expected[d.kind] !== rr.type) {
    throw invalid(`record ${where} has ${d.kind} data; expected data of its own type`);
  }
  switch (d.kind) {
    case 'A':
      if (!isIPv4(d.address)) throw invalid(`record ${where}: "${d.address}" is not an IPv4 address`);
      return Buffer.from(d.address.split('.').map(Number));
    case 'AAAA':
      if (!isIPv6(d.address) || d.address.includes('%')) {
        throw invalid(`record ${where}: "${d.address}" is not an IPv6 address`);
      }
      return ipv6ToBytes(d.address);
    case 'SRV': {
      checkUint(d.priority, 16, `SRV priority of ${rr.name}`);
      checkUint(d.weight, 16, `SRV weight of ${rr.name}`);
      checkUint(d.port, 16, `SRV port of ${rr.name}`);
      const b = Buffer.alloc(6);
      b.writeUInt16BE(d.priority, 0);
      b.writeUInt16BE(d.weight, 2);
      b.writeUInt16BE(d.port, 4);
      return Buffer.concat([b, nameToWire(d.target)]);
    }
    case 'CNAME':
      return nameToWire(d.target);
    case 'SOA': {
      const b = Buffer.alloc(20);
      (['serial', 'refresh', 'retry', 'expire', 'minimum'] as const).forEach((k, i) => {
        checkUint(d[k], 32, `SOA ${k} of ${rr.name}`);
        b.writeUInt32BE(d[k], i * 4);
      });
      return Buffer.concat([nameToWire(d.mname), nameToWire(d.rname), b]);
    }
    case 'TSIG': {
      checkUint(d.timeSigned, 48, 'TSIG time signed');
      checkUint(d.fudge, 16, 'TSIG fudge');
      checkUint(d.originalId, 16, 'TSIG original id');
      checkUint(d.error, 16, 'TSIG error');
      checkUint(d.mac.length, 16, 'TSIG MAC size');
      checkUint(d.other.length, 16, 'TSIG other data size');
      const time = Buffer.alloc(8);
      time.writeUIntBE(d.timeSigned, 0, 6);
      time.writeUInt16BE(d.fudge, 6);
      return Buffer.concat([
        nameToWire(d.algorithm),
        time,
        u16(d.mac.length),
        d.mac,
        u16(d.originalId),
        u16(d.error),
        u16(d.other.length),
        d.other,
      ]);
    }
    case 'raw':
      return Buffer.from(d.bytes);
  }
}

export function encodeRecord(rr: DnsResourceRecord): Buffer {
  checkUint(rr.type, 16, `type of ${rr.name}`);
  checkUint(rr.class, 16, `class of ${rr.name}`);
  checkUint(rr.ttl, 32, `TTL of ${rr.name}`);
  const rdata = encodeRdata(rr);
  if (rdata.length > 0xffff) throw invalid(`record ${rr.name} has ${rdata.length} bytes of data; at most 65535`);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(rr.type, 0);
  fixed.writeUInt16BE(rr.class, 2);
  fixed.writeUInt32BE(rr.ttl, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([nameToWire(rr.name), fixed, rdata]);
}

export function encodeDnsMessage(message: DnsMessage): Buffer {
  checkUint(message.id, 16, 'message id');
  if (!Number.isInteger(message.opcode) || message.opcode < 0 || message.opcode > 15) {
    throw invalid(`opcode is ${message.opcode}; expected 0 to 15`);
  }
  if (!Number.isInteger(message.rcode) || message.rcode < 0 || message.rcode > 15) {
    throw invalid(`rcode is ${message.rcode}; expected 0 to 15 (extended rcodes need EDNS, not supported)`);
  }
  const sections = [message.questions, message.answers, message.authorities, message.additionals];
  for (const s of sections) if (s.length > 0xffff) throw invalid(`a section has ${s.length} entries; at most 65535`);
  const header = Buffer.alloc(DNS_HEADER_SIZE);
  header.writeUInt16BE(message.id, 0);
  const flags =
    (message.qr ? 0x8000 : 0) |
    (message.opcode << 11) |
    (message.aa ? 0x0400 : 0) |
    (message.tc ? 0x0200 : 0) |
    (message.rd ? 0x0100 : 0) |
    (message.ra ? 0x0080 : 0) |
    (message.ad ? 0x0020 : 0) |
    (message.cd ? 0x0010 : 0) |
    message.rcode;
  header.writeUInt16BE(flags, 2);
  sections.forEach((s, i) => header.writeUInt16BE(s.length, 4 + i * 2));
  const parts: Buffer[] = [header];
  for (const q of message.questions) {
    checkUint(q.type, 16, `question type of ${q.name}`);
    checkUint(q.class, 16, `question class of ${q.name}`);
    const tc = Buffer.alloc(4);
    tc.writeUInt16BE(q.type, 0);
    tc.writeUInt16BE(q.class, 2);
    parts.push(nameToWire(q.name), tc);
  }
  for (const rr of [...message.answers, ...message.authorities, ...message.additionals]) parts.push(encodeRecord(rr));
  const out = Buffer.concat(parts);
  if (out.length > DNS_MAX_MESSAGE) throw invalid(`message of ${out.length} bytes is over 65535`);
  return out;
}

/** A message with every flag clear and empty sections: spread it and fill in what differs. */
export function emptyDnsMessage(id: number): DnsMessage {
  return {
    id,
    qr: false,
    opcode: DnsOpcode.QUERY,
    aa: false,
    tc: false,
    rd: false,
    ra: false,
    ad: false,
    cd: false,
    rcode: DnsRcode.NOERROR,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  };
}

export function rcodeName(rcode: number): string {
  const entry = Object.entries(DnsRcode).find(([, v]) => v === rcode);
  return entry ? entry[0] : `rcode ${rcode}`;
}
