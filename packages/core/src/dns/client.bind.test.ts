import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreError } from '../errors.js';
import { dig, startTestBind, type TestBind } from './bind-test-server.js';
import { queryAddresses, querySrv, sendUpdate } from './client.js';
import { DnsClass, DnsOpcode, DnsType, emptyDnsMessage, encodeDnsMessage } from './message.js';
import { parseTsigKeyFile, signDnsMessage, verifyDnsReply, type TsigKey } from './tsig.js';

/** Against a real BIND 9 named: what it accepts, what it refuses, and what dig sees after. */
let bind: TestBind;
const zone = 'corp.test';
const srvName = '_vlmcs._tcp.corp.test';
const server = () => ({ host: '127.0.0.1', port: bind.port });

beforeAll(async () => {
  bind = await startTestBind({ zones: [zone] });
});
afterAll(async () => {
  // DNS_BIND_LOG=1 shows what named made of the requests (it logs each refused update).
  if (process.env.DNS_BIND_LOG) console.log(bind?.log());
  await bind?.stop();
});

async function rejection(p: Promise<unknown>): Promise<CoreError> {
  const e: unknown = await p.then(
    () => new Error('expected a rejection'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CoreError);
  return e as CoreError;
}

describe('against a real named', () => {
  it('reads the key file tsig-keygen wrote', () => {
    const key = parseTsigKeyFile(readFileSync(bind.keyFile, 'utf8'));
    expect(key.name).toBe('ddns-key');
    expect(key.algorithm).toBe('hmac-sha256');
    expect(key.secret.length).toBe(32);
    expect(key).toEqual(bind.key);
  });

  it('an update adds SRV and A records; dig and querySrv both see them; deleting removes them', async () => {
    await sendUpdate(
      server(),
      {
        zone,
        add: [
          { type: 'SRV', name: srvName, ttl: 60, priority: 0, weight: 10, port: 1688, target: 'kms1.corp.test' },
          { type: 'SRV', name: srvName, ttl: 60, priority: 10, weight: 5, port: 1689, target: 'kms2.corp.test' },
          { type: 'A', name: 'kms1.corp.test', ttl: 60, address: '192.0.2.10' },
          { type: 'AAAA', name: 'kms1.corp.test', ttl: 60, address: '2001:db8::10' },
        ],
      },
      bind.key,
    );
    expect(dig(bind.port, srvName, 'SRV').split('\n').sort()).toEqual([
      '0 10 1688 kms1.corp.test.',
      '10 5 1689 kms2.corp.test.',
    ]);
    expect(dig(bind.port, 'kms1.corp.test', 'A')).toBe('192.0.2.10');
    const srv = await querySrv(server(), srvName);
    expect(srv.sort((a, b) => a.priority - b.priority)).toEqual([
      { name: srvName, priority: 0, weight: 10, port: 1688, target: 'kms1.corp.test', ttl: 60 },
      { name: srvName, priority: 10, weight: 5, port: 1689, target: 'kms2.corp.test', ttl: 60 },
    ]);
    expect(await queryAddresses(server(), 'KMS1.corp.test.')).toEqual(['192.0.2.10', '2001:db8::10']);

    // One record, then the whole RRset and the address, in one update each.
    await sendUpdate(
      server(),
      {
        zone,
        deleteRecords: [
          { type: 'SRV', name: srvName, ttl: 0, priority: 10, weight: 5, port: 1689, target: 'kms2.corp.test' },
        ],
      },
      bind.key,
    );
    expect(dig(bind.port, srvName, 'SRV')).toBe('0 10 1688 kms1.corp.test.');
    await sendUpdate(
      server(),
      {
        zone,
        deleteRrsets: [
          { name: srvName, type: 'SRV' },
          { name: 'kms1.corp.test', type: 'A' },
          { name: 'kms1.corp.test', type: 'AAAA' },
        ],
      },
      bind.key,
    );
    expect(dig(bind.port, srvName, 'SRV')).toBe('');
    expect(await querySrv(server(), srvName)).toEqual([]);
    expect(await queryAddresses(server(), 'kms1.corp.test')).toEqual([]);
  });

  it('delete-then-add in one update replaces a host record', async () => {
    const a = (address: string) => ({ type: 'A' as const, name: 'kms9.corp.test', ttl: 30, address });
    await sendUpdate(server(), { zone, add: [a('192.0.2.1')] }, bind.key);
    await sendUpdate(
      server(),
      { zone, deleteRrsets: [{ name: 'kms9.corp.test', type: 'A' }], add: [a('192.0.2.2')] },
      bind.key,
    );
    expect(dig(bind.port, 'kms9.corp.test', 'A')).toBe('192.0.2.2');
  });

  it('a name that does not exist is [] (NXDOMAIN), not an error', async () => {
    expect(await querySrv(server(), '_vlmcs._tcp.nowhere.corp.test')).toEqual([]);
  });

  it('a query for a zone the server does not serve is DNS_REFUSED', async () => {
    const e = await rejection(querySrv(server(), '_vlmcs._tcp.example.org'));
    expect(e.code).toBe('DNS_REFUSED');
  });

  const add = { zone, add: [{ type: 'A' as const, name: 'x.corp.test', ttl: 60, address: '192.0.2.99' }] };

  it('a key with the wrong secret is DNS_NOTAUTH naming the key file', async () => {
    const wrong: TsigKey = { ...bind.key, secret: Buffer.alloc(32, 7) };
    const e = await rejection(sendUpdate(server(), add, wrong));
    expect(e.code).toBe('DNS_NOTAUTH');
    expect(e.message).toContain('check --tsig-key-file');
    expect(e.message).not.toContain(wrong.secret.toString('base64'));
    expect(dig(bind.port, 'x.corp.test', 'A')).toBe('');
  });

  it('a key the server does not know is DNS_NOTAUTH', async () => {
    const unknown: TsigKey = { ...bind.key, name: 'no-such-key' };
    const e = await rejection(sendUpdate(server(), add, unknown));
    expect(e.code).toBe('DNS_NOTAUTH');
    expect(e.message).toBe(
      'the server does not know the TSIG key "no-such-key" (NOTAUTH, BADKEY): check --tsig-key-file holds the key the server is configured with',
    );
  });

  it('a valid key without allow-update on the zone is DNS_REFUSED naming allow-update', async () => {
    const e = await rejection(sendUpdate(server(), add, bind.otherKey));
    expect(e.code).toBe('DNS_REFUSED');
    expect(e.message).toBe(
      'the server refused the update: is update allowed for the key "other-key" on zone corp.test (allow-update)?',
    );
  });

  it('an unsigned update is refused by the server (REFUSED)', async () => {
    const request = encodeDnsMessage({
      ...emptyDnsMessage(4242),
      opcode: DnsOpcode.UPDATE,
      questions: [{ name: zone, type: DnsType.SOA, class: DnsClass.IN }],
      authorities: [
        {
          name: 'x.corp.test',
          type: DnsType.A,
          class: DnsClass.IN,
          ttl: 60,
          data: { kind: 'A', address: '192.0.2.9' },
        },
      ],
    });
    const reply = await udpExchange(bind.port, request);
    expect(reply.readUInt16BE(2) & 0xf).toBe(5);
  });

  it('an update of a zone the server does not serve is DNS_NOTAUTH', async () => {
    const e = await rejection(
      sendUpdate(
        server(),
        { zone: 'other.test', add: [{ type: 'A', name: 'x.other.test', ttl: 60, address: '192.0.2.1' }] },
        bind.key,
      ),
    );
    expect(e.code).toBe('DNS_NOTAUTH');
    expect(e.message).toBe(
      `127.0.0.1:${bind.port} is not authoritative for zone other.test (NOTAUTH): send the update to the zone's primary server`,
    );
  });

  it("named's signed reply verifies; one changed byte makes it DNS_TSIG_INVALID", async () => {
    const request = encodeDnsMessage({
      ...emptyDnsMessage(777),
      opcode: DnsOpcode.UPDATE,
      questions: [{ name: zone, type: DnsType.SOA, class: DnsClass.IN }],
      authorities: [
        {
          name: 'y.corp.test',
          type: DnsType.A,
          class: DnsClass.IN,
          ttl: 60,
          data: { kind: 'A', address: '192.0.2.8' },
        },
      ],
    });
    const nowMs = Date.now();
    const signed = signDnsMessage(request, bind.key, { timeSigned: Math.floor(nowMs / 1000) });
    const reply = await udpExchange(bind.port, signed.message);
    expect(verifyDnsReply(reply, bind.key, signed.mac, { nowMs }).rcode).toBe(0);
    const tampered = Buffer.from(reply);
    tampered[3] = (tampered[3] as number) ^ 0x05; // NOERROR → REFUSED
    expect(() => verifyDnsReply(tampered, bind.key, signed.mac, { nowMs })).toThrow(
      expect.objectContaining({ code: 'DNS_TSIG_INVALID' }),
    );
    const otherRequestMac = Buffer.from(signed.mac);
    otherRequestMac[0] = (otherRequestMac[0] as number) ^ 1;
    expect(() => verifyDnsReply(reply, bind.key, otherRequestMac, { nowMs })).toThrow(
      expect.objectContaining({ code: 'DNS_TSIG_INVALID' }),
    );
    expect(dig(bind.port, 'y.corp.test', 'A')).toBe('192.0.2.8');
  });
});

async function udpExchange(port: number, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('no answer'));
    }, 3000);
    socket.on('message', (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(msg);
    });
    socket.send(request, port, '127.0.0.1');
  });
}
