import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { describe, expect, it } from 'vitest';
import { orderSrv, systemResolverFailure } from './discovery.js';

/** A seeded generator: the statistical bounds below hold for any seed; a fixed one keeps runs equal. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('RFC 2782 ordering', () => {
  const records = [
    { id: 'a', priority: 0, weight: 1 },
    { id: 'b', priority: 0, weight: 3 },
    { id: 'c', priority: 10, weight: 1 },
  ];

  it('never picks the priority-10 host first while priority-0 hosts exist; weights 1:3 share the first pick close to 1:3', () => {
    const random = seeded(42);
    const first = { a: 0, b: 0, c: 0 };
    for (let round = 0; round < 2000; round++) {
      const order = orderSrv(records, random);
      expect(order.map((r) => r.id).sort()).toEqual(['a', 'b', 'c']);
      expect(order[2]?.id).toBe('c');
      first[order[0]!.id as 'a' | 'b' | 'c']++;
    }
    expect(first.c).toBe(0);
    // Binomial(2000, 1/4): mean 500, sd 19.4; |x - 500| ≥ 100 has probability < 3e-7.
    expect(Math.abs(first.a - 500)).toBeLessThan(100);
    expect(first.a + first.b).toBe(2000);
  });

  it('orders by priority, and gives weight-0 records a turn only after the weighted ones', () => {
    const random = seeded(7);
    for (let i = 0; i < 200; i++) {
      const order = orderSrv(
        [
          { id: 'z', priority: 5, weight: 0 },
          { id: 'w', priority: 5, weight: 10 },
          { id: 'p', priority: 1, weight: 0 },
        ],
        random,
      );
      expect(order.map((r) => r.id)).toEqual(['p', 'w', 'z']);
    }
  });
});

describe('a failed look-up through the system resolver', () => {
  const name = '_vlmcs._tcp.corp.example';
  const failure = (code: string) => systemResolverFailure(name, Object.assign(new Error(code), { code }), 1500);

  it('no such name (ENOTFOUND) and no SRV record (ENODATA) are no hosts, not a failure', () => {
    expect(failure('ENOTFOUND')).toBeNull();
    expect(failure('ENODATA')).toBeNull();
  });

  it('ETIMEOUT is DNS_TIMEOUT, naming the name and the time waited', () => {
    const e = failure('ETIMEOUT');
    expect(e?.code).toBe('DNS_TIMEOUT');
    expect(e?.message).toContain(name);
    expect(e?.message).toContain('3000 ms (2 tries of 1500 ms)');
  });

  it('EREFUSED is DNS_REFUSED', () => {
    expect(failure('EREFUSED')?.code).toBe('DNS_REFUSED');
  });

  it('ESERVFAIL, EFORMERR and ENOTIMP are DNS_SERVER_FAILURE, naming the answer', () => {
    for (const code of ['ESERVFAIL', 'EFORMERR', 'ENOTIMP']) {
      const e = failure(code);
      expect(e?.code).toBe('DNS_SERVER_FAILURE');
      expect(e?.message).toContain(`answered ${code.slice(1)}`);
    }
  });

  it('EBADRESP is DNS_MALFORMED_REPLY', () => {
    expect(failure('EBADRESP')?.code).toBe('DNS_MALFORMED_REPLY');
  });

  it('EBADNAME and EBADQUERY are DNS_NAME_INVALID', () => {
    expect(failure('EBADNAME')?.code).toBe('DNS_NAME_INVALID');
    expect(failure('EBADQUERY')?.code).toBe('DNS_NAME_INVALID');
  });

  it('ECONNREFUSED, a missing resolv.conf (EFILE) or an unknown fault is DNS_UNREACHABLE, naming the fault', () => {
    for (const code of ['ECONNREFUSED', 'EFILE', 'ECANCELLED']) {
      const e = failure(code);
      expect(e?.code).toBe('DNS_UNREACHABLE');
      expect(e?.message).toContain(code);
    }
    expect(systemResolverFailure(name, new Error('boom'), 1500)?.code).toBe('DNS_UNREACHABLE');
  });

  /** A loopback "DNS server" answering every query with its own header, flagged as a response with `rcode`. */
  async function answeringWith(rcode: number) {
    const server = createSocket('udp4');
    server.on('message', (query, peer) => {
      const reply = Buffer.from(query);
      reply.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x0100) | rcode, 2);
      server.send(reply, peer.port, peer.address);
    });
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
    return server;
  }

  /** What node:dns really rejects with, asking `port` on loopback once. */
  async function resolverError(port: number): Promise<unknown> {
    const resolver = new Resolver({ timeout: 1500, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    return resolver.resolveSrv(name).then(
      () => new Error('resolved'),
      (e: unknown) => e,
    );
  }

  it.each([
    [2, 'ESERVFAIL', 'DNS_SERVER_FAILURE'],
    [3, 'ENOTFOUND', null],
    [5, 'EREFUSED', 'DNS_REFUSED'],
  ] as const)('maps what node:dns really reports: RCODE %i is %s, so %s', async (rcode, nodeCode, code) => {
    const server = await answeringWith(rcode);
    try {
      const err = await resolverError(server.address().port);
      expect((err as NodeJS.ErrnoException).code).toBe(nodeCode);
      expect(systemResolverFailure(name, err, 1500)?.code ?? null).toBe(code);
    } finally {
      server.close();
    }
  });

  it('maps what node:dns really reports: nothing listening is ECONNREFUSED, so DNS_UNREACHABLE', async () => {
    const closed = createSocket('udp4');
    await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
    const port = closed.address().port;
    await new Promise<void>((resolve) => closed.close(resolve));
    const err = await resolverError(port);
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(systemResolverFailure(name, err, 1500)?.code).toBe('DNS_UNREACHABLE');
  });
});
