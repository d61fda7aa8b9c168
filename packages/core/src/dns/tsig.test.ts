import { describe, expect, it } from 'vitest';
import { CoreError } from '../errors.js';
import { DnsClass, DnsOpcode, DnsType, decodeDnsMessage, emptyDnsMessage, encodeDnsMessage } from './message.js';
import { TsigError, parseTsigKeyFile, signDnsMessage, tsigMac, verifyDnsReply, type TsigKey } from './tsig.js';

function fails(f: () => unknown, code: string, message: string | RegExp): CoreError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CoreError);
    expect((e as CoreError).code).toBe(code);
    if (typeof message === 'string') expect((e as CoreError).message).toBe(message);
    else expect((e as CoreError).message).toMatch(message);
    return e as CoreError;
  }
  throw new Error('expected a CoreError');
}

const SECRET_B64 = 'c2VjcmV0LWtleS1mb3ItdGhlLXZlY3Rvci10ZXN0IQ==';
const key: TsigKey = { name: 'volact-test-key', algorithm: 'hmac-sha256', secret: Buffer.from(SECRET_B64, 'base64') };

/**
 * A query BIND's own dig signed (captured on a UDP socket):
 *   dig @127.0.0.1 -p P +noedns +nocookie -y hmac-sha256:volact-test-key:SECRET _vlmcs._tcp.corp.test SRV
 * An independent implementation's bytes: signing the same message at the same time must
 * give exactly these.
 */
const DIG_SIGNED_QUERY = Buffer.from(
  '026c01200001000000000001065f766c6d6373045f74637004636f7270047465737400002100010f766f6c6163742d746573742d6b65790000fa00ff00000000003d0b686d61632d7368613235360000006b064de6012c0020a1703cc7de822c4832a1dd49cc5cd4cb659d4b6551532f4e15bb6a732f35b2ba026c00000000',
  'hex',
);

describe('TSIG HMAC-SHA256', () => {
  it("reproduces dig's signature byte for byte", () => {
    const tsig = decodeDnsMessage(DIG_SIGNED_QUERY).additionals[0]!;
    expect(tsig.data.kind).toBe('TSIG');
    if (tsig.data.kind !== 'TSIG') return;
    expect(tsig.data.timeSigned).toBe(0x6b064de6);
    // The unsigned query: everything before the TSIG record, ARCOUNT back to 0.
    const unsigned = Buffer.from(DIG_SIGNED_QUERY.subarray(0, 39));
    unsigned.writeUInt16BE(0, 10);
    const signed = signDnsMessage(unsigned, key, { timeSigned: tsig.data.timeSigned });
    expect(signed.message.toString('hex')).toBe(DIG_SIGNED_QUERY.toString('hex'));
    expect(signed.mac).toEqual(tsig.data.mac);
    // The key name is hashed in lower case: a key written in capitals signs the same.
    expect(
      signDnsMessage(unsigned, { ...key, name: 'VOLACT-Test-Key' }, { timeSigned: tsig.data.timeSigned }).mac,
    ).toEqual(tsig.data.mac);
  });

  const request = encodeDnsMessage({
    ...emptyDnsMessage(0x4242),
    opcode: DnsOpcode.UPDATE,
    questions: [{ name: 'corp.test', type: DnsType.SOA, class: DnsClass.IN }],
    authorities: [
      { name: 'a.corp.test', type: DnsType.A, class: DnsClass.IN, ttl: 60, data: { kind: 'A', address: '192.0.2.1' } },
    ],
  });
  const t0 = 1_800_000_000;
  const signedRequest = signDnsMessage(request, key, { timeSigned: t0 });
  // The server's side: the same message as a response, signed over the request's MAC.
  const replyFor = (opts: { key?: TsigKey; requestMac?: Buffer; time?: number; error?: number; rcode?: number } = {}) =>
    signDnsMessage(
      encodeDnsMessage({
        ...emptyDnsMessage(0x4242),
        qr: true,
        opcode: DnsOpcode.UPDATE,
        rcode: opts.rcode ?? 0,
        questions: [{ name: 'corp.test', type: DnsType.SOA, class: DnsClass.IN }],
      }),
      opts.key ?? key,
      { timeSigned: opts.time ?? t0 + 1, requestMac: opts.requestMac ?? signedRequest.mac, error: opts.error ?? 0 },
    ).message;
  const nowMs = (t0 + 2) * 1000;

  it('signing appends one TSIG record and adds one to ARCOUNT', () => {
    expect(signedRequest.message.readUInt16BE(10)).toBe(1);
    const m = decodeDnsMessage(signedRequest.message);
    expect(m.additionals).toHaveLength(1);
    expect(m.additionals[0]).toMatchObject({ name: 'volact-test-key', type: 250, class: 255, ttl: 0 });
    expect(m.additionals[0]?.data).toMatchObject({ algorithm: 'hmac-sha256', timeSigned: t0, fudge: 300, error: 0 });
  });

  it('verifies a reply signed over the request MAC', () => {
    expect(verifyDnsReply(replyFor(), key, signedRequest.mac, { nowMs }).rcode).toBe(0);
  });

  it('rejects any changed byte, another request MAC, another key, an old signature, no signature', () => {
    const reply = replyFor();
    // Every byte but the id: RFC 8945 signs the original id (in the TSIG record) instead, so
    // a forwarder may change it; the client matches the id to its request itself.
    for (let i = 2; i < reply.length; i++) {
      const bad = Buffer.from(reply);
      bad[i] = (bad[i] as number) ^ 0x01;
      let code: string | undefined;
      try {
        verifyDnsReply(bad, key, signedRequest.mac, { nowMs });
      } catch (e) {
        code = (e as CoreError).code;
      }
      // A flipped byte either breaks the structure or the signature; it never passes.
      expect(code, `byte ${i}`).toMatch(/^DNS_(TSIG_INVALID|MALFORMED_REPLY|NOTAUTH)$/);
    }
    const otherMac = Buffer.from(signedRequest.mac);
    otherMac[5] = (otherMac[5] as number) ^ 0x80;
    fails(
      () => verifyDnsReply(reply, key, otherMac, { nowMs }),
      'DNS_TSIG_INVALID',
      `the reply's TSIG signature does not verify with the key "volact-test-key": it was changed or forged`,
    );
    const otherSecret = { ...key, secret: Buffer.alloc(32, 1) };
    fails(
      () => verifyDnsReply(replyFor({ key: otherSecret }), key, signedRequest.mac, { nowMs }),
      'DNS_TSIG_INVALID',
      /does not verify/,
    );
    fails(
      () => verifyDnsReply(replyFor({ key: { ...key, name: 'other' } }), key, signedRequest.mac, { nowMs }),
      'DNS_TSIG_INVALID',
      'the reply is signed with the key "other", not "volact-test-key"',
    );
    fails(
      () => verifyDnsReply(replyFor({ time: t0 - 400 }), key, signedRequest.mac, { nowMs }),
      'DNS_TSIG_INVALID',
      /signed 402 s away from this machine's clock \(fudge 300 s\)/,
    );
    const unsigned = encodeDnsMessage({ ...emptyDnsMessage(0x4242), qr: true, opcode: DnsOpcode.UPDATE });
    fails(
      () => verifyDnsReply(unsigned, key, signedRequest.mac, { nowMs }),
      'DNS_TSIG_INVALID',
      'the reply is not signed (no TSIG record): it cannot be trusted',
    );
  });

  it("the server's BADKEY / BADSIG / BADTIME answers are DNS_NOTAUTH naming the fix", () => {
    // RFC 8945 §5.3.2: such answers carry an empty MAC; build them by hand.
    const unsignedError = (error: number) => {
      const m = decodeDnsMessage(replyFor({ rcode: 9 }));
      const tsig = m.additionals[0]!;
      if (tsig.data.kind !== 'TSIG') throw new Error('no TSIG');
      tsig.data = { ...tsig.data, mac: Buffer.alloc(0), error };
      return encodeDnsMessage(m);
    };
    fails(
      () => verifyDnsReply(unsignedError(TsigError.BADKEY), key, signedRequest.mac, { nowMs }),
      'DNS_NOTAUTH',
      /BADKEY.*--tsig-key-file/,
    );
    fails(
      () => verifyDnsReply(unsignedError(TsigError.BADSIG), key, signedRequest.mac, { nowMs }),
      'DNS_NOTAUTH',
      /BADSIG.*--tsig-key-file/,
    );
    fails(
      () => verifyDnsReply(unsignedError(TsigError.BADTIME), key, signedRequest.mac, { nowMs }),
      'DNS_NOTAUTH',
      /BADTIME.*NTP/,
    );
    // A signed BADTIME (the server's time in the record) verifies, then reports the skew.
    fails(
      () => verifyDnsReply(replyFor({ rcode: 9, error: TsigError.BADTIME }), key, signedRequest.mac, { nowMs }),
      'DNS_NOTAUTH',
      /this clock is 1 s off the server's/,
    );
  });

  it('refuses keys of other algorithms or without a secret', () => {
    fails(
      () => signDnsMessage(request, { ...key, algorithm: 'hmac-md5' as 'hmac-sha256' }, { timeSigned: t0 }),
      'TSIG_KEY_INVALID',
      'TSIG algorithm hmac-md5 is not supported; expected hmac-sha256',
    );
    fails(
      () => signDnsMessage(request, { ...key, secret: Buffer.alloc(0) }, { timeSigned: t0 }),
      'TSIG_KEY_INVALID',
      /empty secret/,
    );
  });

  it('the MAC covers the request MAC first when there is one', () => {
    const v = { timeSigned: t0, fudge: 300, error: 0, other: Buffer.alloc(0) };
    expect(tsigMac(key, request, v)).not.toEqual(tsigMac(key, request, v, Buffer.alloc(32)));
    expect(tsigMac(key, request, v, Buffer.alloc(0))).not.toEqual(tsigMac(key, request, v));
  });
});

describe('parseTsigKeyFile', () => {
  const file = `key "ddns-key" {\n\talgorithm hmac-sha256;\n\tsecret "${SECRET_B64}";\n};\n`;

  it('reads what tsig-keygen writes', () => {
    expect(parseTsigKeyFile(file)).toEqual({ name: 'ddns-key', algorithm: 'hmac-sha256', secret: key.secret });
  });

  it('accepts comments, an unquoted name, any order and spacing', () => {
    const text = `# made by hand\n// for the test\nkey ddns-key. { /* the secret */ secret "${SECRET_B64}" ; algorithm HMAC-SHA256; } ;`;
    expect(parseTsigKeyFile(text)).toEqual({ name: 'ddns-key', algorithm: 'hmac-sha256', secret: key.secret });
  });

  it('says what is wrong, and never shows the secret', () => {
    const cases: [string, RegExp][] = [
      [
        file.replace('hmac-sha256', 'hmac-sha512'),
        /uses hmac-sha512; only hmac-sha256 is supported: make a key with `tsig-keygen -a hmac-sha256 ddns-key`/,
      ],
      [file.replace(/\tsecret.*\n/, ''), /the key has no secret; expected secret "BASE64";/],
      [file.replace(/\talgorithm.*\n/, ''), /the key has no algorithm/],
      [file.replace(SECRET_B64, `${SECRET_B64}!`), /the secret on line 3 is not base64/],
      [
        file.replace(`"${SECRET_B64}"`, SECRET_B64),
        /unexpected word on line 3; expected the secret in double quotes on line 3/,
      ],
      [file.replace('secret', 'secrets'), /unknown option on line 3; expected algorithm or secret/],
      [file + file, /a second key starts on line 5; expected a file with one key/],
      [file.replace('};', '}'), /the file ends after line 4; expected ";" after the closing "}"/],
      [file.replace(`"${SECRET_B64}";`, `"${SECRET_B64};`), /quoted string on line 3 is not closed on that line/],
      ['', /the file ends after line 1; expected key "NAME" \{/],
      [`${SECRET_B64}\n`, /line 1 does not start a key statement/],
      ['key "a..b" { };', /the key name on line 1 is not a valid DNS name/],
    ];
    for (const [text, message] of cases) {
      const e = fails(() => parseTsigKeyFile(text), 'TSIG_KEY_INVALID', message);
      expect(e.message).not.toContain(SECRET_B64.slice(0, 12));
    }
  });
});
