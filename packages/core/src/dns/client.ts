import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { connect, isIP } from 'node:net';
import { CoreError } from '../errors.js';
import {
  DnsClass,
  DnsOpcode,
  DnsRcode,
  DnsType,
  decodeDnsMessage,
  emptyDnsMessage,
  encodeDnsMessage,
  isInZone,
  nameToWire,
  rcodeName,
  sameName,
  type DnsMessage,
  type DnsRdata,
  type DnsResourceRecord,
} from './message.js';
import { signDnsMessage, verifyDnsReply, type TsigKey } from './tsig.js';

/**
 * A small stub client: SRV and address queries for discovery, RFC 2136 updates signed with
 * TSIG for publication. UDP first, one retransmission, then TCP when the answer is
 * truncated (or an update is too big for a datagram). Replies are matched by id, source
 * (a connected socket only hears from the server) and question; anything else is ignored
 * or, when it claims to be the answer, an error.
 */
export interface DnsServer {
  host: string;
  port: number;
}

export interface DnsQueryOptions {
  /** Per try; a UDP query is sent twice before DNS_TIMEOUT. Default 2000. */
  timeoutMs?: number;
}

export interface DnsUpdateOptions extends DnsQueryOptions {
  /** Milliseconds since 1970 for TSIG times (default Date.now). */
  now?: () => number;
}

export interface SrvRecord {
  name: string;
  priority: number;
  weight: number;
  port: number;
  target: string;
  ttl: number;
}

export type DnsRecord =
  | { type: 'SRV'; name: string; ttl: number; priority: number; weight: number; port: number; target: string }
  | { type: 'A' | 'AAAA'; name: string; ttl: number; address: string };

export type DnsUpdateType = 'SRV' | 'A' | 'AAAA';

export interface DnsUpdate {
  zone: string;
  /** Whole RRsets to delete (every record of the type at the name). */
  deleteRrsets?: { name: string; type: DnsUpdateType }[];
  /** Single records to delete (matched on name, type and data; the TTL is ignored). */
  deleteRecords?: DnsRecord[];
  add?: DnsRecord[];
}

export const DEFAULT_DNS_TIMEOUT_MS = 2000;
/** RFC 1035 §4.2.1: without EDNS a UDP message is at most 512 bytes. */
const UDP_MAX = 512;
const UDP_TRIES = 2;

function where(server: DnsServer): string {
  return isIP(server.host) === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

function checkServer(server: DnsServer): void {
  if (typeof server?.host !== 'string' || server.host === '') {
    throw new CoreError('DNS_RECORD_INVALID', 'DNS server host is empty; expected an address or host name');
  }
  if (!Number.isInteger(server.port) || server.port < 1 || server.port > 65535) {
    throw new CoreError('DNS_RECORD_INVALID', `DNS server port ${String(server.port)} is not a port (1..65535)`);
  }
}

function checkTimeout(timeoutMs: number): number {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new CoreError('DNS_RECORD_INVALID', `DNS timeout ${timeoutMs} ms is not a positive number`);
  }
  return timeoutMs;
}

function unreachable(server: DnsServer, err: NodeJS.ErrnoException): CoreError {
  if (err.code === 'ECONNREFUSED') {
    return new CoreError(
      'DNS_UNREACHABLE',
      `nothing listens on ${where(server)} (connection refused): is the DNS server running, on that port?`,
    );
  }
  return new CoreError('DNS_UNREACHABLE', `cannot reach ${where(server)}: ${err.code ?? err.message}`);
}

async function resolveHost(server: DnsServer): Promise<{ address: string; family: 4 | 6 }> {
  const family = isIP(server.host);
  if (family === 4 || family === 6) return { address: server.host, family };
  try {
    const r = await lookup(server.host);
    return { address: r.address, family: r.family === 6 ? 6 : 4 };
  } catch (e) {
    throw new CoreError(
      'DNS_UNREACHABLE',
      `cannot resolve the DNS server name ${server.host}: ${(e as NodeJS.ErrnoException).code ?? 'lookup failed'}`,
    );
  }
}

/** Sends `request` over UDP (twice at most) and resolves with the first datagram carrying its id. */
async function exchangeUdp(server: DnsServer, request: Buffer, timeoutMs: number): Promise<Buffer> {
  const { address, family } = await resolveHost(server);
  const id = request.readUInt16BE(0);
  return new Promise<Buffer>((resolve, reject) => {
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
    let timer: NodeJS.Timeout | undefined;
    let tries = 0;
    let done = false;
    const finish = (err: Error | null, reply?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(reply as Buffer);
    };
    const send = () => {
      tries++;
      socket.send(request, (err) => {
        if (err) finish(unreachable(server, err));
      });
      timer = setTimeout(() => {
        if (tries < UDP_TRIES) send();
        else {
          finish(
            new CoreError(
              'DNS_TIMEOUT',
              `no answer from ${where(server)} in ${tries * timeoutMs} ms (${tries} tries of ${timeoutMs} ms): is a DNS server running there?`,
            ),
          );
        }
      }, timeoutMs);
    };
    // Linux reports ICMP port unreachable as ECONNREFUSED on a connected socket.
    socket.on('error', (err: NodeJS.ErrnoException) => finish(unreachable(server, err)));
    // A datagram with another id is not the answer (a late or forged one): keep waiting.
    socket.on('message', (msg: Buffer) => {
      if (msg.length >= 2 && msg.readUInt16BE(0) === id) finish(null, msg);
    });
    socket.connect(server.port, address, send);
  });
}

/** One request over TCP with the 2-byte length prefix (RFC 1035 §4.2.2). */
async function exchangeTcp(server: DnsServer, request: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const socket = connect({ host: server.host, port: server.port });
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    const finish = (err: Error | null, reply?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(reply as Buffer);
    };
    const timer = setTimeout(
      () => finish(new CoreError('DNS_TIMEOUT', `no answer from ${where(server)} over TCP in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(request.length);
    socket.on('connect', () => socket.write(Buffer.concat([prefix, request])));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(unreachable(server, err)));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received < 2) return;
      const all = Buffer.concat(chunks);
      const length = all.readUInt16BE(0);
      if (length === 0) {
        finish(new CoreError('DNS_MALFORMED_REPLY', `${where(server)} sent an empty TCP message`));
      } else if (all.length >= 2 + length) {
        finish(null, all.subarray(2, 2 + length));
      }
    });
    socket.on('close', () =>
      finish(
        new CoreError(
          'DNS_MALFORMED_REPLY',
          `${where(server)} closed the TCP connection after ${received} bytes, before a whole answer`,
        ),
      ),
    );
  });
}

async function exchange(server: DnsServer, request: Buffer, timeoutMs: number): Promise<Buffer> {
  if (request.length > UDP_MAX) return exchangeTcp(server, request, timeoutMs);
  const reply = await exchangeUdp(server, request, timeoutMs);
  // TC: the answer did not fit in a datagram; ask again over TCP for all of it.
  if (reply.length >= 4 && ((reply[2] as number) & 0x02) !== 0) return exchangeTcp(server, request, timeoutMs);
  return reply;
}

function decodeReply(server: DnsServer, reply: Buffer): DnsMessage {
  try {
    return decodeDnsMessage(reply);
  } catch (e) {
    if (e instanceof CoreError) throw new CoreError(e.code, `reply from ${where(server)}: ${e.message}`);
    throw e;
  }
}

/** The reply must answer what was asked: same id (checked on receipt), opcode and question. */
function checkEcho(server: DnsServer, request: DnsMessage, reply: DnsMessage, what: string): void {
  const bad = (why: string) => new CoreError('DNS_MALFORMED_REPLY', `reply from ${where(server)} to ${what}: ${why}`);
  if (!reply.qr) throw bad('it is not marked as a response (QR bit clear)');
  if (reply.opcode !== request.opcode) throw bad(`its opcode is ${reply.opcode}; expected ${request.opcode}`);
  // Error answers (FORMERR, NOTIMP...) may come without the question; others must echo it.
  if (reply.questions.length === 0 && reply.rcode !== DnsRcode.NOERROR && reply.rcode !== DnsRcode.NXDOMAIN) return;
  const q = request.questions[0];
  const r = reply.questions[0];
  if (
    reply.questions.length !== 1 ||
    !q ||
    !r ||
    !sameName(q.name, r.name) ||
    q.type !== r.type ||
    q.class !== r.class
  ) {
    const shown = r ? `${r.name} type ${r.type}` : 'no question';
    throw bad(`it answers ${reply.questions.length > 1 ? `${reply.questions.length} questions` : shown}`);
  }
}

async function query(server: DnsServer, name: string, type: number, options?: DnsQueryOptions): Promise<DnsMessage> {
  checkServer(server);
  nameToWire(name);
  const timeoutMs = checkTimeout(options?.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS);
  const typeName = Object.entries(DnsType).find(([, v]) => v === type)?.[0] ?? String(type);
  const what = `the ${typeName} query for ${name}`;
  // RD set: the server may be a resolver that recurses; an authoritative server ignores it.
  const request: DnsMessage = {
    ...emptyDnsMessage(randomInt(0x10000)),
    rd: true,
    questions: [{ name, type, class: DnsClass.IN }],
  };
  const reply = decodeReply(server, await exchange(server, encodeDnsMessage(request), timeoutMs));
  checkEcho(server, request, reply, what);
  switch (reply.rcode) {
    case DnsRcode.NOERROR:
    case DnsRcode.NXDOMAIN:
      return reply;
    case DnsRcode.REFUSED:
      throw new CoreError(
        'DNS_REFUSED',
        `${where(server)} refused ${what} (REFUSED): it does not serve that zone and does not recurse for this client`,
      );
    default:
      throw new CoreError(
        'DNS_SERVER_FAILURE',
        `${where(server)} answered ${what} with ${rcodeName(reply.rcode)}${reply.rcode === DnsRcode.SERVFAIL ? ': see the server log' : ''}`,
      );
  }
}

/**
 * The records of `type` for `name` in the answer, following a CNAME chain that stays
 * inside the answer (bounded: a chain longer than 8 is a loop or a misconfiguration).
 */
function answersFor(reply: DnsMessage, name: string, type: number): DnsResourceRecord[] {
  let owner = name;
  for (let hops = 0; hops <= 8; hops++) {
    const direct = reply.answers.filter((r) => r.type === type && r.class === DnsClass.IN && sameName(r.name, owner));
    if (direct.length > 0) return direct;
    const cname = reply.answers.find(
      (r) => r.type === DnsType.CNAME && r.class === DnsClass.IN && sameName(r.name, owner),
    );
    if (!cname || cname.data.kind !== 'CNAME') return [];
    owner = cname.data.target;
  }
  return [];
}

/** SRV records for `name` (e.g. `_vlmcs._tcp.corp.example`); NXDOMAIN or none → []. */
export async function querySrv(server: DnsServer, name: string, options?: DnsQueryOptions): Promise<SrvRecord[]> {
  const reply = await query(server, name, DnsType.SRV, options);
  const out: SrvRecord[] = [];
  for (const r of answersFor(reply, name, DnsType.SRV)) {
    if (r.data.kind !== 'SRV') continue;
    const { priority, weight, port, target } = r.data;
    out.push({ name: r.name, priority, weight, port, target, ttl: r.ttl });
  }
  return out;
}

/** The A then AAAA addresses of `name`; NXDOMAIN or none → []. */
export async function queryAddresses(server: DnsServer, name: string, options?: DnsQueryOptions): Promise<string[]> {
  const [v4, v6] = await Promise.all([
    query(server, name, DnsType.A, options),
    query(server, name, DnsType.AAAA, options),
  ]);
  const addresses = (reply: DnsMessage, type: number) =>
    answersFor(reply, name, type).flatMap((r) =>
      r.data.kind === 'A' || r.data.kind === 'AAAA' ? [r.data.address] : [],
    );
  return [...addresses(v4, DnsType.A), ...addresses(v6, DnsType.AAAA)];
}

// ---------------------------------------------------------------------------------------
// Updates

function recordData(record: DnsRecord): DnsRdata {
  if (record.type === 'SRV') {
    const { priority, weight, port, target } = record;
    return { kind: 'SRV', priority, weight, port, target };
  }
  return { kind: record.type, address: record.address };
}

function typeCode(type: unknown, name: string): number {
  if (type === 'SRV' || type === 'A' || type === 'AAAA') return DnsType[type];
  throw new CoreError(
    'DNS_RECORD_INVALID',
    `record type ${String(type)} for ${name} is not supported; expected SRV, A or AAAA`,
  );
}

/** RFC 2136 §2.5: the update section, deletions first so an add after them wins. */
function updateRecords(update: DnsUpdate): DnsResourceRecord[] {
  const inZone = (name: string) => {
    if (!isInZone(name, update.zone)) {
      throw new CoreError(
        'DNS_NOTZONE',
        `${name} is not inside zone ${update.zone}: every name in an update must be in the zone it updates`,
      );
    }
  };
  const out: DnsResourceRecord[] = [];
  for (const { name, type } of update.deleteRrsets ?? []) {
    inZone(name);
    out.push({
      name,
      type: typeCode(type, name),
      class: DnsClass.ANY,
      ttl: 0,
      data: { kind: 'raw', bytes: Buffer.alloc(0) },
    });
  }
  for (const r of update.deleteRecords ?? []) {
    inZone(r.name);
    out.push({ name: r.name, type: typeCode(r.type, r.name), class: DnsClass.NONE, ttl: 0, data: recordData(r) });
  }
  for (const r of update.add ?? []) {
    inZone(r.name);
    out.push({ name: r.name, type: typeCode(r.type, r.name), class: DnsClass.IN, ttl: r.ttl, data: recordData(r) });
  }
  if (out.length === 0) throw new CoreError('DNS_RECORD_INVALID', `the update of zone ${update.zone} changes nothing`);
  return out;
}

/**
 * Sends an RFC 2136 update of `update.zone` signed with `key` and checks the server's
 * signed answer. Resolves when the server applied it; otherwise throws a CoreError whose
 * message names the fix (DNS_REFUSED, DNS_NOTAUTH, DNS_NOTZONE, DNS_SERVER_FAILURE,
 * DNS_TIMEOUT, DNS_UNREACHABLE, DNS_TSIG_INVALID, DNS_MALFORMED_REPLY).
 */
export async function sendUpdate(
  server: DnsServer,
  update: DnsUpdate,
  key: TsigKey,
  options?: DnsUpdateOptions,
): Promise<void> {
  checkServer(server);
  nameToWire(update.zone);
  const timeoutMs = checkTimeout(options?.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS);
  const now = options?.now ?? Date.now;
  const request: DnsMessage = {
    ...emptyDnsMessage(randomInt(0x10000)),
    opcode: DnsOpcode.UPDATE,
    questions: [{ name: update.zone, type: DnsType.SOA, class: DnsClass.IN }],
    authorities: updateRecords(update),
  };
  const signed = signDnsMessage(encodeDnsMessage(request), key, { timeSigned: Math.floor(now() / 1000) });
  const raw = await exchange(server, signed.message, timeoutMs);
  const what = `the update of zone ${update.zone}`;
  const unverified = decodeReply(server, raw);
  checkEcho(server, request, unverified, what);
  let reply: DnsMessage;
  if (unverified.additionals.at(-1)?.type === DnsType.TSIG) {
    reply = verifyDnsReply(raw, key, signed.mac, { nowMs: now() });
  } else if (unverified.rcode === DnsRcode.NOERROR) {
    // Success must be signed; a failure is reported either way (forging one gains nothing
    // that dropping the packet would not).
    throw new CoreError('DNS_TSIG_INVALID', `${where(server)} answered ${what} unsigned: it cannot be trusted`);
  } else {
    reply = unverified;
  }
  const signedNote = reply === unverified ? ' (the answer was unsigned)' : '';
  switch (reply.rcode) {
    case DnsRcode.NOERROR:
      return;
    case DnsRcode.REFUSED:
      throw new CoreError(
        'DNS_REFUSED',
        `the server refused the update: is update allowed for the key "${key.name}" on zone ${update.zone} (allow-update)?${signedNote}`,
      );
    case DnsRcode.NOTAUTH:
      throw new CoreError(
        'DNS_NOTAUTH',
        reply === unverified
          ? `the TSIG key was not accepted (NOTAUTH): check --tsig-key-file matches the server's key, and that ${where(server)} is the primary of zone ${update.zone}`
          : `${where(server)} is not authoritative for zone ${update.zone} (NOTAUTH): send the update to the zone's primary server`,
      );
    case DnsRcode.NOTZONE:
      throw new CoreError(
        'DNS_NOTZONE',
        `the server says a name in the update is outside zone ${update.zone} (NOTZONE)${signedNote}`,
      );
    default:
      throw new CoreError(
        'DNS_SERVER_FAILURE',
        `${where(server)} answered ${what} with ${rcodeName(reply.rcode)}${reply.rcode === DnsRcode.SERVFAIL ? ': see the server log' : ''}${signedNote}`,
      );
  }
}
