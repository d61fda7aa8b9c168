import { describe, expect, it } from 'vitest';
import { CoreError } from '../errors.js';
import { DnsClass, DnsType, decodeDnsMessage, emptyDnsMessage, encodeDnsMessage, type DnsMessage } from './message.js';

/**
 * Whatever bytes arrive, the decoder returns a message or throws a CoreError
 * DNS_MALFORMED_REPLY, within a bounded time; and what it returns encodes back to a
 * message that decodes to the same thing. Seeded, so a failure replays.
 */
const SEED = Number(process.env.DNS_FUZZ_SEED ?? 0x5eed);

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const seeds: DnsMessage[] = [
  {
    ...emptyDnsMessage(0x1234),
    qr: true,
    aa: true,
    questions: [{ name: '_vlmcs._tcp.corp.test', type: DnsType.SRV, class: DnsClass.IN }],
    answers: [
      {
        name: '_vlmcs._tcp.corp.test',
        type: DnsType.SRV,
        class: DnsClass.IN,
        ttl: 60,
        data: { kind: 'SRV', priority: 0, weight: 5, port: 1688, target: 'kms1.corp.test' },
      },
      {
        name: 'kms1.corp.test',
        type: DnsType.A,
        class: DnsClass.IN,
        ttl: 60,
        data: { kind: 'A', address: '10.1.2.3' },
      },
      {
        name: 'kms1.corp.test',
        type: DnsType.AAAA,
        class: DnsClass.IN,
        ttl: 60,
        data: { kind: 'AAAA', address: 'fd00::3' },
      },
      {
        name: 'w.corp.test',
        type: DnsType.CNAME,
        class: DnsClass.IN,
        ttl: 60,
        data: { kind: 'CNAME', target: 'kms1.corp.test' },
      },
    ],
    authorities: [
      {
        name: 'corp.test',
        type: DnsType.SOA,
        class: DnsClass.IN,
        ttl: 300,
        data: {
          kind: 'SOA',
          mname: 'ns1.corp.test',
          rname: 'h.corp.test',
          serial: 1,
          refresh: 2,
          retry: 3,
          expire: 4,
          minimum: 5,
        },
      },
    ],
    additionals: [
      {
        name: 'ddns-key',
        type: DnsType.TSIG,
        class: DnsClass.ANY,
        ttl: 0,
        data: {
          kind: 'TSIG',
          algorithm: 'hmac-sha256',
          timeSigned: 1_800_000_000,
          fudge: 300,
          mac: Buffer.alloc(32, 9),
          originalId: 0x1234,
          error: 0,
          other: Buffer.alloc(0),
        },
      },
    ],
  },
  {
    ...emptyDnsMessage(7),
    opcode: 5,
    questions: [{ name: 'corp.test', type: DnsType.SOA, class: DnsClass.IN }],
    authorities: [
      {
        name: 'a.corp.test',
        type: DnsType.SRV,
        class: DnsClass.ANY,
        ttl: 0,
        data: { kind: 'raw', bytes: Buffer.alloc(0) },
      },
      {
        name: 'a.corp.test',
        type: 16,
        class: DnsClass.IN,
        ttl: 9,
        data: { kind: 'raw', bytes: Buffer.from('\x03abc') },
      },
    ],
  },
];

/** A hand-compressed reply: owner names and the SRV target point into the question. */
function compressedSeed(): Buffer {
  const header = Buffer.from([0xab, 0xcd, 0x84, 0, 0, 1, 0, 2, 0, 0, 0, 0]);
  const question = Buffer.from([
    6,
    ...Buffer.from('_vlmcs'),
    4,
    ...Buffer.from('_tcp'),
    4,
    ...Buffer.from('corp'),
    4,
    ...Buffer.from('test'),
    0,
    0,
    33,
    0,
    1,
  ]);
  const srv = [0, 0, 0, 5, 0x06, 0x98, 4, ...Buffer.from('kms1'), 0xc0, 24];
  const a1 = [0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, srv.length, ...srv];
  const a2 = [0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, srv.length, ...srv.slice(0, 6), 0xc0, 24];
  a2[11] = 8;
  return Buffer.concat([header, question, Buffer.from(a1), Buffer.from(a2)]);
}

const corpus: Buffer[] = [...seeds.map(encodeDnsMessage), compressedSeed()];

function mutate(next: () => number, input: Buffer): Buffer {
  const int = (n: number) => Math.floor(next() * n);
  let buf = Buffer.from(input);
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    const at = buf.length > 0 ? int(buf.length) : 0;
    switch (int(9)) {
      case 0: // flip a byte
        if (buf.length > 0) buf[at] = int(256);
        break;
      case 1: // truncate
        buf = buf.subarray(0, at);
        break;
      case 2: // a compression pointer somewhere: to itself, forward, back, anywhere
        if (at + 1 < buf.length) {
          const target = [at, at + 2, int(at + 1), int(0x4000), 12][int(5)] as number;
          buf[at] = 0xc0 | ((target >> 8) & 0x3f);
          buf[at + 1] = target & 0xff;
        }
        break;
      case 3: // a huge or random count
        if (buf.length >= 12) buf.writeUInt16BE([0xffff, int(0x10000), int(8)][int(3)] as number, 4 + 2 * int(4));
        break;
      case 4: // a label length over 63 (extended label types 0x40 / 0x80)
        if (buf.length > 0) buf[at] = 64 + int(128);
        break;
      case 5: // a long run of maximal labels (names over 255)
        buf = Buffer.concat([
          buf.subarray(0, at),
          ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x62)])),
          buf.subarray(at),
        ]);
        break;
      case 6: // junk appended
        buf = Buffer.concat([buf, Buffer.from(Array.from({ length: int(40) }, () => int(256)))]);
        break;
      case 7: // an rdlength off by a little or a lot
        if (at + 1 < buf.length) buf.writeUInt16BE((buf.readUInt16BE(at) + [1, -1, 0x8000][int(3)]!) & 0xffff, at);
        break;
      default:
        {
          // splice in a piece of another message
          const other = corpus[int(corpus.length)] as Buffer;
          const from = int(other.length);
          buf = Buffer.concat([buf.subarray(0, at), other.subarray(from, from + 1 + int(30)), buf.subarray(at)]);
        }
        break;
    }
  }
  return buf;
}

function randomMessage(next: () => number): Buffer {
  const int = (n: number) => Math.floor(next() * n);
  const length = int(600);
  const buf = Buffer.from(Array.from({ length }, () => int(256)));
  // Small counts most of the time, so the decoder gets past the header check.
  if (length >= 12 && next() < 0.7) for (let i = 0; i < 4; i++) buf.writeUInt16BE(int(4), 4 + 2 * i);
  return buf;
}

describe('DNS decoder fuzz', () => {
  it('random and mutated replies: a message or a CoreError, fast, and what decodes re-encodes', () => {
    const next = rng(SEED);
    let decoded = 0;
    let rejected = 0;
    // Inputs whose decode took over 10 ms once: timed again below, since one slow run may be a
    // GC pause or the machine's load; a decoder that loops is slow every time.
    const slow: Buffer[] = [];
    const runs = 12_000;
    for (let i = 0; i < runs; i++) {
      const input = i % 4 === 0 ? randomMessage(next) : mutate(next, corpus[i % corpus.length] as Buffer);
      const started = performance.now();
      let message: DnsMessage | undefined;
      try {
        message = decodeDnsMessage(input);
        decoded++;
      } catch (e) {
        if (!(e instanceof CoreError) || e.code !== 'DNS_MALFORMED_REPLY') {
          throw new Error(`seed ${SEED} run ${i}: ${String(e)} for ${input.toString('hex')}`);
        }
        rejected++;
      }
      if (performance.now() - started > 10) slow.push(input);
      if (message) {
        // Re-encoding (uncompressed) and decoding again gives the same message.
        expect(decodeDnsMessage(encodeDnsMessage(message)), `seed ${SEED} run ${i}`).toEqual(message);
      }
    }
    expect(decoded + rejected).toBe(runs);
    // Both paths were exercised, and no single decode took long (a loop would).
    expect(decoded).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(1000);
    const fastestOf = (input: Buffer) =>
      Math.min(
        ...[0, 1, 2].map(() => {
          const started = performance.now();
          try {
            decodeDnsMessage(input);
          } catch {
            // rejected: timed all the same
          }
          return performance.now() - started;
        }),
      );
    expect(Math.max(0, ...slow.map(fastestOf))).toBeLessThan(50);
  });

  it('the corpus itself decodes', () => {
    for (const m of corpus) expect(() => decodeDnsMessage(m)).not.toThrow();
  });

  it('the worst legal message (thousands of records, each name 128 jumps deep) decodes in milliseconds', () => {
    const msg = worstMessage();
    const started = performance.now();
    const m = decodeDnsMessage(msg);
    expect(performance.now() - started).toBeLessThan(500);
    expect(m.answers.length).toBeGreaterThan(5000);
    expect(m.answers[0]?.name).toBe('.');
  });
});

/**
 * Question: root name (offset 12), type, class. Answer 1: root owner, raw data holding a
 * chain of 127 pointers (the first to offset 12). Then as many answers as fit whose owner
 * name points at the chain's last link: 128 jumps each.
 */
function worstMessage(): Buffer {
  const head = [0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 99, 0, 1];
  const chainStart = head.length + 11;
  const chain: number[] = [];
  let last = 12;
  for (let i = 0; i < 127; i++) {
    const at = chainStart + chain.length;
    chain.push(0xc0 | (last >> 8), last & 255);
    last = at;
  }
  const first = [0, 0, 99, 0, 1, 0, 0, 0, 0, chain.length >> 8, chain.length & 255, ...chain];
  const record = [0xc0 | (last >> 8), last & 255, 0, 99, 0, 1, 0, 0, 0, 0, 0, 0];
  const count = Math.floor((65535 - head.length - first.length) / record.length);
  const out = Buffer.from([...head, ...first, ...Array.from({ length: count }, () => record).flat()]);
  out.writeUInt16BE(count + 1, 6);
  return out;
}
