import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CoreError } from '../errors.js';
import { queryAddresses, querySrv, sendUpdate, type DnsUpdate } from './client.js';
import {
  DnsClass,
  DnsOpcode,
  DnsType,
  decodeDnsMessage,
  decodeDnsMessageLayout,
  encodeDnsMessage,
  type DnsMessage,
  type DnsResourceRecord,
} from './message.js';
import { signDnsMessage, type TsigKey } from './tsig.js';

/**
 * The client against scripted servers on loopback: what it sends, and what it makes of
 * odd, hostile or failing answers. (client.bind.test.ts runs it against a real named.)
 */
type Handler = (request: DnsMessage, raw: Buffer) => Buffer | Buffer[] | null;

interface Fake {
  port: number;
  requests: DnsMessage[];
  tcpRequests: DnsMessage[];
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

async function fakeServer(udp: Handler, tcp?: Handler): Promise<Fake> {
  // DNS answers UDP and TCP on one port number: a UDP port whose TCP twin is taken (by any other
  // process on a busy machine) is given back and another one tried.
  for (let attempt = 0; ; attempt++) {
    const socket: Socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const port = socket.address().port;
    const closeSocket = () => new Promise<void>((resolve) => socket.close(() => resolve()));
    let server: Server | undefined;
    const fake: Fake = { port, requests: [], tcpRequests: [] };
    if (tcp) {
      server = createServer((conn) => {
        let buf = Buffer.alloc(0);
        conn.on('data', (chunk: Buffer) => {
          buf = Buffer.concat([buf, chunk]);
          if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
          const raw = buf.subarray(2, 2 + buf.readUInt16BE(0));
          const request = decodeDnsMessage(raw);
          fake.tcpRequests.push(request);
          const out = tcp(request, raw);
          for (const b of out === null ? [] : Array.isArray(out) ? out : [out]) {
            const prefix = Buffer.alloc(2);
            prefix.writeUInt16BE(b.length);
            conn.write(Buffer.concat([prefix, b]));
          }
        });
      });
      const listening = server;
      const taken = await new Promise<boolean>((resolve, reject) => {
        listening.once('error', (err: NodeJS.ErrnoException) =>
          err.code === 'EADDRINUSE' && attempt < 20 ? resolve(true) : reject(err),
        );
        listening.listen(port, '127.0.0.1', () => resolve(false));
      });
      if (taken) {
        await closeSocket();
        continue;
      }
    }
    socket.on('message', (raw, rinfo) => {
      const request = decodeDnsMessage(raw);
      fake.requests.push(request);
      const out = udp(request, raw);
      for (const b of out === null ? [] : Array.isArray(out) ? out : [out]) socket.send(b, rinfo.port, rinfo.address);
    });
    closers.push(closeSocket);
    if (server) {
      const listening = server;
      closers.push(() => new Promise<void>((resolve) => listening.close(() => resolve())));
    }
    return fake;
  }
}

const srv = (name: string, port: number, target: string, ttl = 60): DnsResourceRecord => ({
  name,
  type: DnsType.SRV,
  class: DnsClass.IN,
  ttl,
  data: { kind: 'SRV', priority: 0, weight: 1, port, target },
});

function answer(request: DnsMessage, fields: Partial<DnsMessage>): Buffer {
  return encodeDnsMessage({ ...request, qr: true, aa: true, ...fields });
}

async function rejection(p: Promise<unknown>): Promise<CoreError> {
  const e: unknown = await p.then(
    () => new Error('expected a rejection'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CoreError);
  return e as CoreError;
}

const NAME = '_vlmcs._tcp.corp.test';

describe('querySrv / queryAddresses', () => {
  it('sends one SRV question with RD set and returns the SRV answers for the name', async () => {
    const fake = await fakeServer((req) =>
      answer(req, {
        answers: [
          srv('_VLMCS._tcp.corp.test', 1688, 'kms1.corp.test'),
          srv('_other._tcp.corp.test', 1, 'x.corp.test'),
          {
            name: 'kms1.corp.test',
            type: DnsType.A,
            class: DnsClass.IN,
            ttl: 5,
            data: { kind: 'A', address: '10.0.0.1' },
          },
        ],
      }),
    );
    const records = await querySrv({ host: '127.0.0.1', port: fake.port }, NAME);
    expect(records).toEqual([
      { name: '_VLMCS._tcp.corp.test', priority: 0, weight: 1, port: 1688, target: 'kms1.corp.test', ttl: 60 },
    ]);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({ rd: true, opcode: 0, questions: [{ name: NAME, type: 33, class: 1 }] });
  });

  it('NXDOMAIN is an empty list', async () => {
    const fake = await fakeServer((req) => answer(req, { rcode: 3 }));
    expect(await querySrv({ host: '127.0.0.1', port: fake.port }, NAME)).toEqual([]);
  });

  it('ignores datagrams with another id, then takes the answer', async () => {
    const fake = await fakeServer((req) => [
      answer({ ...req, id: (req.id + 1) & 0xffff }, { answers: [srv(NAME, 1, 'forged.corp.test')] }),
      Buffer.from([1]),
      answer(req, { answers: [srv(NAME, 1688, 'kms1.corp.test')] }),
    ]);
    const records = await querySrv({ host: '127.0.0.1', port: fake.port }, NAME);
    expect(records.map((r) => r.target)).toEqual(['kms1.corp.test']);
  });

  it('an answer to another question is DNS_MALFORMED_REPLY', async () => {
    const fake = await fakeServer((req) =>
      answer(req, { questions: [{ name: '_x._tcp.corp.test', type: 33, class: 1 }], answers: [] }),
    );
    const e = await rejection(querySrv({ host: '127.0.0.1', port: fake.port }, NAME));
    expect(e.code).toBe('DNS_MALFORMED_REPLY');
    expect(e.message).toBe(
      `reply from 127.0.0.1:${fake.port} to the SRV query for ${NAME}: it answers _x._tcp.corp.test type 33`,
    );
  });

  it('an undecodable answer is DNS_MALFORMED_REPLY naming the fault', async () => {
    const fake = await fakeServer((req) => {
      const b = answer(req, {});
      b.writeUInt16BE(65535, 6);
      return b;
    });
    const e = await rejection(querySrv({ host: '127.0.0.1', port: fake.port }, NAME));
    expect(e.code).toBe('DNS_MALFORMED_REPLY');
    expect(e.message).toMatch(/^reply from 127\.0\.0\.1:\d+: header claims 1 questions and 65535 records/);
  });

  it('a truncated answer (TC) is asked again over TCP', async () => {
    const many = Array.from({ length: 40 }, (_, i) => srv(NAME, 1688, `kms${i}.corp.test`));
    const fake = await fakeServer(
      (req) => answer(req, { tc: true }),
      (req) => answer(req, { answers: many }),
    );
    const records = await querySrv({ host: '127.0.0.1', port: fake.port }, NAME);
    expect(records).toHaveLength(40);
    expect(fake.requests).toHaveLength(1);
    expect(fake.tcpRequests).toHaveLength(1);
  });

  it('SERVFAIL and REFUSED are errors that say so', async () => {
    const servfail = await fakeServer((req) => answer(req, { rcode: 2 }));
    const e1 = await rejection(querySrv({ host: '127.0.0.1', port: servfail.port }, NAME));
    expect(e1.code).toBe('DNS_SERVER_FAILURE');
    expect(e1.message).toBe(
      `127.0.0.1:${servfail.port} answered the SRV query for ${NAME} with SERVFAIL: see the server log`,
    );
    const refused = await fakeServer((req) => answer(req, { rcode: 5 }));
    const e2 = await rejection(querySrv({ host: '127.0.0.1', port: refused.port }, NAME));
    expect(e2.code).toBe('DNS_REFUSED');
  });

  it('addresses: A then AAAA, following a CNAME inside the answer', async () => {
    const fake = await fakeServer((req) => {
      const q = req.questions[0]!;
      const cname: DnsResourceRecord = {
        name: 'kms.corp.test',
        type: DnsType.CNAME,
        class: DnsClass.IN,
        ttl: 60,
        data: { kind: 'CNAME', target: 'kms1.corp.test' },
      };
      const data =
        q.type === DnsType.A
          ? ({ kind: 'A', address: '192.0.2.7' } as const)
          : ({ kind: 'AAAA', address: '2001:db8::7' } as const);
      return answer(req, {
        answers: [cname, { name: 'kms1.corp.test', type: q.type, class: DnsClass.IN, ttl: 60, data }],
      });
    });
    expect(await queryAddresses({ host: '127.0.0.1', port: fake.port }, 'kms.corp.test')).toEqual([
      '192.0.2.7',
      '2001:db8::7',
    ]);
  });

  it('no answer: two tries, then DNS_TIMEOUT naming server and time', async () => {
    const fake = await fakeServer(() => null);
    const started = Date.now();
    const e = await rejection(querySrv({ host: '127.0.0.1', port: fake.port }, NAME, { timeoutMs: 100 }));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(e.code).toBe('DNS_TIMEOUT');
    expect(e.message).toBe(
      `no answer from 127.0.0.1:${fake.port} in 200 ms (2 tries of 100 ms): is a DNS server running there?`,
    );
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[0]?.id).toBe(fake.requests[1]?.id);
  });

  it('a closed port is DNS_UNREACHABLE (ICMP port unreachable), at once', async () => {
    const fake = await fakeServer(() => null);
    const port = fake.port;
    await closers.splice(0)[0]!();
    const started = Date.now();
    const e = await rejection(querySrv({ host: '127.0.0.1', port }, NAME, { timeoutMs: 500 }));
    expect(['DNS_UNREACHABLE', 'DNS_TIMEOUT']).toContain(e.code);
    expect(Date.now() - started).toBeLessThan(1500);
    if (e.code === 'DNS_UNREACHABLE') {
      expect(e.message).toBe(
        `nothing listens on 127.0.0.1:${port} (connection refused): is the DNS server running, on that port?`,
      );
    }
  });

  it('bad arguments fail before anything is sent', async () => {
    expect((await rejection(querySrv({ host: '127.0.0.1', port: 0 }, NAME))).code).toBe('DNS_RECORD_INVALID');
    expect((await rejection(querySrv({ host: '127.0.0.1', port: 53 }, 'a..b'))).code).toBe('DNS_NAME_INVALID');
    expect((await rejection(querySrv({ host: '127.0.0.1', port: 53 }, NAME, { timeoutMs: 0 }))).code).toBe(
      'DNS_RECORD_INVALID',
    );
  });
});

describe('sendUpdate', () => {
  const key: TsigKey = { name: 'ddns-key', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 3) };
  const now = () => 1_800_000_000_000;
  const update: DnsUpdate = {
    zone: 'corp.test',
    deleteRrsets: [{ name: NAME, type: 'SRV' }],
    deleteRecords: [{ type: 'A', name: 'old.corp.test', ttl: 60, address: '192.0.2.1' }],
    add: [
      { type: 'SRV', name: NAME, ttl: 60, priority: 0, weight: 0, port: 1688, target: 'kms1.corp.test' },
      { type: 'AAAA', name: 'kms1.corp.test', ttl: 60, address: '2001:db8::1' },
    ],
  };

  /** Plays the server: answers with `rcode`, signed over the request's MAC with `signKey`. */
  const server =
    (rcode: number, signKey: TsigKey | null = key): Handler =>
    (request, raw) => {
      const reply = encodeDnsMessage({ ...request, qr: true, rcode, authorities: [], additionals: [] });
      if (!signKey) return reply;
      const tsig = request.additionals.at(-1)!;
      const requestMac = tsig.data.kind === 'TSIG' ? tsig.data.mac : Buffer.alloc(0);
      expect(decodeDnsMessageLayout(raw).lastRecordOffset).toBeGreaterThan(12);
      return signDnsMessage(reply, signKey, { timeSigned: now() / 1000, requestMac }).message;
    };

  it('sends zone, no prerequisites, deletions (ANY, NONE) then additions (IN), signed last', async () => {
    const fake = await fakeServer(server(0));
    await sendUpdate({ host: '127.0.0.1', port: fake.port }, update, key, { now });
    const sent = fake.requests[0]!;
    expect(sent.opcode).toBe(DnsOpcode.UPDATE);
    expect(sent.questions).toEqual([{ name: 'corp.test', type: DnsType.SOA, class: DnsClass.IN }]);
    expect(sent.answers).toEqual([]);
    expect(sent.authorities).toEqual([
      { name: NAME, type: DnsType.SRV, class: DnsClass.ANY, ttl: 0, data: { kind: 'raw', bytes: Buffer.alloc(0) } },
      {
        name: 'old.corp.test',
        type: DnsType.A,
        class: DnsClass.NONE,
        ttl: 0,
        data: { kind: 'A', address: '192.0.2.1' },
      },
      {
        name: NAME,
        type: DnsType.SRV,
        class: DnsClass.IN,
        ttl: 60,
        data: { kind: 'SRV', priority: 0, weight: 0, port: 1688, target: 'kms1.corp.test' },
      },
      {
        name: 'kms1.corp.test',
        type: DnsType.AAAA,
        class: DnsClass.IN,
        ttl: 60,
        data: { kind: 'AAAA', address: '2001:db8::1' },
      },
    ]);
    expect(sent.additionals).toHaveLength(1);
    expect(sent.additionals[0]).toMatchObject({ name: 'ddns-key', type: DnsType.TSIG });
    expect(sent.additionals[0]?.data).toMatchObject({ timeSigned: 1_800_000_000, fudge: 300 });
  });

  it('a reply signed with another key is DNS_TSIG_INVALID, even a success', async () => {
    const fake = await fakeServer(server(0, { ...key, secret: Buffer.alloc(32, 4) }));
    const e = await rejection(sendUpdate({ host: '127.0.0.1', port: fake.port }, update, key, { now }));
    expect(e.code).toBe('DNS_TSIG_INVALID');
  });

  it('an unsigned success is DNS_TSIG_INVALID; an unsigned failure is reported as what it says', async () => {
    const ok = await fakeServer(server(0, null));
    const e1 = await rejection(sendUpdate({ host: '127.0.0.1', port: ok.port }, update, key, { now }));
    expect(e1.code).toBe('DNS_TSIG_INVALID');
    expect(e1.message).toBe(
      `127.0.0.1:${ok.port} answered the update of zone corp.test unsigned: it cannot be trusted`,
    );
    const refused = await fakeServer(server(5, null));
    const e2 = await rejection(sendUpdate({ host: '127.0.0.1', port: refused.port }, update, key, { now }));
    expect(e2.code).toBe('DNS_REFUSED');
    expect(e2.message).toBe(
      'the server refused the update: is update allowed for the key "ddns-key" on zone corp.test (allow-update)? (the answer was unsigned)',
    );
  });

  it('maps NOTZONE and SERVFAIL', async () => {
    const notzone = await fakeServer(server(10));
    const e1 = await rejection(sendUpdate({ host: '127.0.0.1', port: notzone.port }, update, key, { now }));
    expect(e1.code).toBe('DNS_NOTZONE');
    const servfail = await fakeServer(server(2));
    const e2 = await rejection(sendUpdate({ host: '127.0.0.1', port: servfail.port }, update, key, { now }));
    expect(e2.code).toBe('DNS_SERVER_FAILURE');
    expect(e2.message).toBe(
      `127.0.0.1:${servfail.port} answered the update of zone corp.test with SERVFAIL: see the server log`,
    );
  });

  it('checks the update before sending: names in the zone, something to do, valid records', async () => {
    const where = { host: '127.0.0.1', port: 9 };
    const e1 = await rejection(
      sendUpdate(
        where,
        { zone: 'corp.test', add: [{ type: 'A', name: 'kms.corp.tes', ttl: 1, address: '1.2.3.4' }] },
        key,
      ),
    );
    expect(e1.code).toBe('DNS_NOTZONE');
    expect(e1.message).toBe(
      'kms.corp.tes is not inside zone corp.test: every name in an update must be in the zone it updates',
    );
    expect((await rejection(sendUpdate(where, { zone: 'corp.test' }, key))).code).toBe('DNS_RECORD_INVALID');
    const bad = { zone: 'corp.test', add: [{ type: 'A' as const, name: 'a.corp.test', ttl: 1, address: '1.2.3' }] };
    expect((await rejection(sendUpdate(where, bad, key))).code).toBe('DNS_RECORD_INVALID');
    const txt = { zone: 'corp.test', deleteRrsets: [{ name: 'a.corp.test', type: 'TXT' as 'A' }] };
    expect((await rejection(sendUpdate(where, txt, key))).message).toBe(
      'record type TXT for a.corp.test is not supported; expected SRV, A or AAAA',
    );
  });

  it('an update too big for a datagram goes over TCP', async () => {
    const fake = await fakeServer(() => null, server(0));
    const big: DnsUpdate = {
      zone: 'corp.test',
      add: Array.from({ length: 30 }, (_, i) => ({
        type: 'SRV' as const,
        name: NAME,
        ttl: 60,
        priority: 0,
        weight: 0,
        port: 1688,
        target: `kms${i}.corp.test`,
      })),
    };
    await sendUpdate({ host: '127.0.0.1', port: fake.port }, big, key, { now });
    expect(fake.requests).toHaveLength(0);
    expect(fake.tcpRequests[0]?.authorities).toHaveLength(30);
  });
});
