import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, startLoopbackBind, type LoopbackBind } from '@volact/core';
import { hostStatus, startKmsHost } from './host.js';
import { createActivatedHost, type HostFixture } from './test-fixture.js';

/** The published records checked against a real BIND 9 that loses them behind the host's back. */
describe('DNS publication check', () => {
  let bind: LoopbackBind;
  let fx: HostFixture;
  beforeAll(async () => {
    [bind, fx] = await Promise.all([startLoopbackBind({ zones: ['corp.test'] }), createActivatedHost()]);
  });
  afterAll(async () => {
    await bind?.stop();
    await fx?.cleanup();
  });

  /** What BIND's own client sees. */
  const dig = (port: number, name: string, type: string) =>
    execFileSync('dig', ['@127.0.0.1', '-p', String(port), name, type, '+short', '+time=2', '+tries=1'], {
      encoding: 'utf8',
      timeout: 10_000,
    }).trim();

  /** Deletes every SRV record of the name with BIND's own nsupdate (as a rebuilt zone would). */
  const deleteBehindTheHostsBack = () =>
    execFileSync('nsupdate', ['-k', bind.keyFile], {
      input: `server 127.0.0.1 ${bind.port}\nzone corp.test\nupdate delete _vlmcs._tcp.corp.test SRV\nsend\n`,
      encoding: 'utf8',
      timeout: 10_000,
    });

  it('publishes again within the check interval when its SRV record vanishes from the server; status shows the check', async () => {
    const host = await startKmsHost({
      dataDir: fx.hostDir,
      listen: { host: '127.0.0.1', port: 0 },
      clock: fx.clock,
      dnsPublish: {
        server: { host: '127.0.0.1', port: bind.port },
        key: bind.key,
        domains: [{ domain: 'corp.test', priority: 0, weight: 5 }],
        service: '_vlmcs._tcp',
        hostName: 'kms1',
        address: '127.0.0.1',
        port: 0,
        ttl: 60,
        refreshMs: DAY, // the 24-hour refresh would not come in this test
        checkMs: 300,
      },
    });
    try {
      const srv = `0 5 ${host.address.port} kms1.corp.test.`;
      expect(dig(bind.port, '_vlmcs._tcp.corp.test', 'SRV')).toBe(srv);
      deleteBehindTheHostsBack();
      expect(dig(bind.port, '_vlmcs._tcp.corp.test', 'SRV')).toBe('');
      const end = Date.now() + 5_000;
      while (dig(bind.port, '_vlmcs._tcp.corp.test', 'SRV') !== srv) {
        if (Date.now() > end) throw new Error('the host did not publish its SRV record again');
        await new Promise((r) => setTimeout(r, 100));
      }
      const entry = host.dnsPublication()?.domains[0];
      expect(entry?.lastCheck?.result).toMatch(/missing|present/);
      await host.checkDnsNow();
      expect(host.dnsPublication()?.domains[0]?.lastCheck).toMatchObject({ result: 'present', detail: null });
      // `host status` reads what the running host wrote.
      expect(hostStatus(fx.hostDir, fx.clock).dns?.domains[0]?.lastCheck?.result).toBe('present');
    } finally {
      await host.close();
    }
  }, 30_000);
});
