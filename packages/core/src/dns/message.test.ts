import { describe, expect, it } from 'vitest';
import { CoreError } from '../errors.js';
import {
  DnsClass,
  DnsOpcode,
  DnsType,
  decodeDnsMessage,
  emptyDnsMessage,
  encodeDnsMessage,
  isInZone,
  nameToWire,
  sameName,
  type DnsMessage,
} from './message.js';

function fails(f: () => unknown, code: string, message: string | RegExp): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CoreError);
    expect((e as CoreError).code).toBe(code);
    if (typeof message === 'string') expect((e as CoreError).message).toBe(message);
    else expect((e as CoreError).message).toMatch(message);
    return;
  }
  throw new Error('expected a CoreError');
}

const full: DnsMessage = {
  ...emptyDnsMessage(0xbeef),
  qr: true,
  aa: true,
  rd: true,
  ad: true,
  rcode: 3,
  questions: [{ name: '_vlmcs._tcp.corp.test', type: DnsType.SRV, class: DnsClass.IN }],
  answers: [
    {
      name: '_vlmcs._tcp.corp.test',
      type: DnsType.SRV,
      class: DnsClass.IN,
      ttl: 60,
      data: { kind: 'SRV', priority: 0, weight: 100, port: 1688, target: 'kms1.corp.test' },
    },
    {
      name: 'kms.corp.test',
      type: DnsType.CNAME,
      class: DnsClass.IN,
      ttl: 60,
      data: { kind: 'CNAME', target: 'kms1.corp.test' },
    },
    {
      name: 'kms1.corp.test',
      type: DnsType.A,
      class: DnsClass.IN,
      ttl: 2 ** 32 - 1,
      data: { kind: 'A', address: '192.0.2.1' },
    },
    {
      name: 'kms1.corp.test',
      type: DnsType.AAAA,
      class: DnsClass.IN,
      ttl: 0,
      data: { kind: 'AAAA', address: '2001:db8::1' },
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
        rname: 'hostmaster.corp.test',
        serial: 2026112501,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 300,
      },
    },
  ],
  additionals: [
    { name: 'corp.test', type: 16, class: DnsClass.IN, ttl: 5, data: { kind: 'raw', bytes: Buffer.from('\x05hello') } },
    {
      name: 'ddns-key',
      type: DnsType.TSIG,
      class: DnsClass.ANY,
      ttl: 0,
      data: {
        kind: 'TSIG',
        algorithm: 'hmac-sha256',
        timeSigned: 2 ** 40 + 5,
        fudge: 300,
        mac: Buffer.alloc(32, 0xab),
        originalId: 0xbeef,
        error: 0,
        other: Buffer.alloc(0),
      },
    },
  ],
};

describe('DNS message codec', () => {
  it('round-trips every record kind, flags and sections', () => {
    expect(decodeDnsMessage(encodeDnsMessage(full))).toEqual(full);
  });

  it('round-trips an RFC 2136 update: zone, class ANY and NONE deletions, additions', () => {
    const update: DnsMessage = {
      ...emptyDnsMessage(1),
      opcode: DnsOpcode.UPDATE,
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
          type: DnsType.A,
          class: DnsClass.NONE,
          ttl: 0,
          data: { kind: 'A', address: '10.0.0.1' },
        },
        { name: 'a.corp.test', type: DnsType.A, class: DnsClass.IN, ttl: 60, data: { kind: 'A', address: '10.0.0.2' } },
      ],
    };
    const wire = encodeDnsMessage(update);
    expect(wire.readUInt16BE(2)).toBe(5 << 11);
    expect(decodeDnsMessage(wire)).toEqual(update);
  });

  it('writes IPv6 addresses in RFC 5952 form', () => {
    const cases: [string, string][] = [
      ['::1', '::1'],
      ['::', '::'],
      ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['::ffff:192.0.2.1', '::ffff:c000:201'],
      ['fe80::1:2', 'fe80::1:2'],
      ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ];
    for (const [input, shown] of cases) {
      const m = decodeDnsMessage(
        encodeDnsMessage({
          ...emptyDnsMessage(1),
          answers: [
            { name: 'h', type: DnsType.AAAA, class: DnsClass.IN, ttl: 1, data: { kind: 'AAAA', address: input } },
          ],
        }),
      );
      expect(m.answers[0]?.data).toEqual({ kind: 'AAAA', address: shown });
    }
  });

  it('reads compressed names (answer owner, SRV target pointing into the question)', () => {
    // Question _vlmcs._tcp.corp.test at 12; "corp.test" starts at 12 + 7 + 5 = 24.
    const question = Buffer.concat([nameToWire('_vlmcs._tcp.corp.test'), Buffer.from([0, 33, 0, 1])]);
    const rdata = Buffer.concat([
      Buffer.from([0, 1, 0, 2, 0x06, 0x98]),
      Buffer.from([4, ...Buffer.from('kms1'), 0xc0, 24]),
    ]);
    const answer = Buffer.concat([Buffer.from([0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, rdata.length]), rdata]);
    const header = Buffer.from([0x12, 0x34, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0]);
    const m = decodeDnsMessage(Buffer.concat([header, question, answer]));
    expect(m.answers).toEqual([
      {
        name: '_vlmcs._tcp.corp.test',
        type: 33,
        class: 1,
        ttl: 60,
        data: { kind: 'SRV', priority: 1, weight: 2, port: 1688, target: 'kms1.corp.test' },
      },
    ]);
  });

  it('escapes odd label bytes so names round-trip', () => {
    const name = 'a\\.b\\032c\\\\d\\255.corp.test';
    const wire = nameToWire(name);
    expect([...wire.subarray(0, 10)]).toEqual([8, 0x61, 0x2e, 0x62, 0x20, 0x63, 0x5c, 0x64, 0xff, 4]);
    const m = decodeDnsMessage(encodeDnsMessage({ ...emptyDnsMessage(1), questions: [{ name, type: 1, class: 1 }] }));
    expect(m.questions[0]?.name).toBe(name);
  });

  it('checks names given to the encoder', () => {
    expect(nameToWire('corp.test.')).toEqual(nameToWire('corp.test'));
    expect(nameToWire('.')).toEqual(Buffer.from([0]));
    fails(
      () => nameToWire('a..b'),
      'DNS_NAME_INVALID',
      '"a..b" has an empty label; expected labels separated by single dots',
    );
    fails(() => nameToWire(`${'x'.repeat(64)}.test`), 'DNS_NAME_INVALID', /has a label over 63 bytes/);
    fails(
      () => nameToWire(Array(64).fill('abc').join('.')),
      'DNS_NAME_INVALID',
      /is 257 bytes on the wire; at most 255/,
    );
    fails(
      () => nameToWire('bücher.test'),
      'DNS_NAME_INVALID',
      /non-ASCII character; expected printable ASCII \(xn-- for IDNs\)/,
    );
    fails(() => nameToWire('a b.test'), 'DNS_NAME_INVALID', /space/);
    fails(() => nameToWire('a\\'), 'DNS_NAME_INVALID', /backslash/);
    fails(() => nameToWire('a\\300'), 'DNS_NAME_INVALID', /\\300, over 255/);
  });

  it('compares names ignoring case and tells zones apart label-wise', () => {
    expect(sameName('KMS1.Corp.Test.', 'kms1.corp.test')).toBe(true);
    expect(sameName('kms1.corp.test', 'kms2.corp.test')).toBe(false);
    expect(isInZone('_vlmcs._tcp.CORP.test', 'corp.test')).toBe(true);
    expect(isInZone('corp.test.', 'corp.test')).toBe(true);
    expect(isInZone('xcorp.test', 'corp.test')).toBe(false);
    expect(isInZone('corp.test', 'a.corp.test')).toBe(false);
    expect(isInZone('anything', '.')).toBe(true);
  });

  it('checks records given to the encoder', () => {
    const one = (data: DnsMessage['answers'][number]) => () =>
      encodeDnsMessage({ ...emptyDnsMessage(1), answers: [data] });
    fails(
      one({ name: 'h', type: 1, class: 1, ttl: 1, data: { kind: 'A', address: '300.1.1.1' } }),
      'DNS_RECORD_INVALID',
      'record h (type 1): "300.1.1.1" is not an IPv4 address',
    );
    fails(
      one({ name: 'h', type: 28, class: 1, ttl: 1, data: { kind: 'AAAA', address: 'fe80::1%eth0' } }),
      'DNS_RECORD_INVALID',
      /is not an IPv6 address/,
    );
    fails(
      one({
        name: 'h',
        type: 33,
        class: 1,
        ttl: 1,
        data: { kind: 'SRV', priority: 0, weight: 0, port: 70000, target: 't' },
      }),
      'DNS_RECORD_INVALID',
      'SRV port of h is 70000; expected an integer from 0 to 65535',
    );
    fails(
      one({ name: 'h', type: 1, class: 1, ttl: -1, data: { kind: 'A', address: '1.1.1.1' } }),
      'DNS_RECORD_INVALID',
      /TTL of h is -1/,
    );
    fails(
      one({ name: 'h', type: 28, class: 1, ttl: 1, data: { kind: 'A', address: '1.1.1.1' } }),
      'DNS_RECORD_INVALID',
      'record h (type 28) has A data; expected data of its own type',
    );
  });
});

describe('DNS message decoder: strict and bounded', () => {
  const header = (qd: number, an: number, ns = 0, ar = 0) =>
    Buffer.from([0, 1, 0x80, 0, qd >> 8, qd & 255, an >> 8, an & 255, ns >> 8, ns & 255, ar >> 8, ar & 255]);

  it('a short header', () => {
    fails(
      () => decodeDnsMessage(Buffer.alloc(11)),
      'DNS_MALFORMED_REPLY',
      'message of 11 bytes is shorter than the 12-byte header',
    );
  });

  it('a reply claiming 65535 answers in 40 bytes fails before reading any', () => {
    const msg = Buffer.concat([header(0, 65535), Buffer.alloc(28)]);
    fails(
      () => decodeDnsMessage(msg),
      'DNS_MALFORMED_REPLY',
      'header claims 0 questions and 65535 records, which need at least 720885 bytes; the message has 28 after the header',
    );
  });

  it('compression pointers to themselves or forward', () => {
    const self = Buffer.concat([header(1, 0), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    fails(
      () => decodeDnsMessage(self),
      'DNS_MALFORMED_REPLY',
      'compression pointer at offset 12 points to itself; pointers must point to an earlier name',
    );
    const forward = Buffer.concat([header(1, 0), Buffer.from([0xc0, 14, 0, 0, 1, 0, 1])]);
    fails(() => decodeDnsMessage(forward), 'DNS_MALFORMED_REPLY', /pointer at offset 12 points forward to 14/);
  });

  it('a chain of over 128 pointer jumps fails; 100 is read', () => {
    fails(
      () => decodeDnsMessage(jumpMessage(130)),
      'DNS_MALFORMED_REPLY',
      /follows more than 128 compression pointers/,
    );
    expect(decodeDnsMessage(jumpMessage(100)).answers[1]?.name).toBe('a');
  });

  it('labels over 63 and names over 255', () => {
    const label64 = Buffer.concat([
      header(1, 0),
      Buffer.from([0x40]),
      Buffer.alloc(64, 0x61),
      Buffer.from([0, 0, 1, 0, 1]),
    ]);
    fails(
      () => decodeDnsMessage(label64),
      'DNS_MALFORMED_REPLY',
      /label length byte 0x40 at offset 12: labels are at most 63 bytes/,
    );
    const long = Buffer.concat([
      header(1, 0),
      ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])),
      Buffer.from([0, 0, 1, 0, 1]),
    ]);
    fails(() => decodeDnsMessage(long), 'DNS_MALFORMED_REPLY', 'name at offset 12 is longer than 255 bytes');
  });

  it('records cut off, data of the wrong size, trailing bytes, TSIG not last', () => {
    const a = (rdata: number[]) =>
      Buffer.concat([header(0, 1), Buffer.from([0, 0, 1, 0, 1, 0, 0, 0, 60, 0, rdata.length, ...rdata])]);
    expect(decodeDnsMessage(a([10, 0, 0, 1])).answers[0]?.data).toEqual({ kind: 'A', address: '10.0.0.1' });
    fails(
      () => decodeDnsMessage(a([10, 0, 0])),
      'DNS_MALFORMED_REPLY',
      'A record data at offset 23 is 3 bytes; expected 4',
    );
    const cut = a([10, 0, 0, 1]).subarray(0, 26);
    fails(
      () => decodeDnsMessage(cut),
      'DNS_MALFORMED_REPLY',
      'answer record 1 at offset 12 declares 4 bytes of data; only 3 remain',
    );
    fails(
      () => decodeDnsMessage(Buffer.concat([a([1, 2, 3, 4]), Buffer.from([0])])),
      'DNS_MALFORMED_REPLY',
      '1 bytes follow the last record',
    );
    const tsigFirst = encodeDnsMessage({ ...full, additionals: [...full.additionals].reverse() });
    fails(
      () => decodeDnsMessage(tsigFirst),
      'DNS_MALFORMED_REPLY',
      'a TSIG record is not the last record of the additional section',
    );
  });
});

/**
 * A message whose second answer's owner name takes `links` pointer jumps to reach the name
 * "a": the question is "a" (offset 12), the first answer's raw data is a chain of pointers
 * (the first to offset 12, each next to the one before), the second answer's name points
 * at the chain's last link.
 */
function jumpMessage(links: number): Buffer {
  const head = Buffer.from([0, 1, 0x80, 0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0x61, 0, 0, 1, 0, 1]);
  const chainStart = head.length + 11; // answer 1: root name, 10 fixed bytes
  const chain: number[] = [];
  let last = 12;
  for (let i = 0; i < links - 1; i++) {
    const at = chainStart + chain.length;
    chain.push(0xc0 | (last >> 8), last & 255);
    last = at;
  }
  const answer1 = [0, 0, 99, 0, 1, 0, 0, 0, 0, chain.length >> 8, chain.length & 255, ...chain];
  const answer2 = [0xc0 | (last >> 8), last & 255, 0, 99, 0, 1, 0, 0, 0, 0, 0, 0];
  return Buffer.concat([head, Buffer.from(answer1), Buffer.from(answer2)]);
}
