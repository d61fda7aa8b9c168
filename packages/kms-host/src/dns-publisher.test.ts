import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, MINUTE } from '@volact/core';
import { startTestBind, type TestBind } from '@volact/core/testing';
import { hostStatus, startKmsHost } from './host.js';
import type { Timers } from './dns-publisher.js';
import { createActivatedHost, type HostFixture } from './test-fixture.js';

/** The published records checked against a real BIND 9 that loses them behind the host's back. */
describe('DNS publication check', () => {
  let bind: TestBind;
  let fx: HostFixture;
  beforeAll(async () => {
    [bind, fx] = await Promise.all([startTestBind({ zones: ['corp.test'] }), createActivatedHost()]);
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

  it('checks every 5 minutes by default (timers fired by hand): a record lost between refreshes is back at the next check', async () => {
    const pending = new Map<number, { callback: () => void; ms: number }>();
    let next = 0;
    const timers: Timers = {
      set: (callback, ms) => {
        pending.set(++next, { callback, ms });
        return next;
      },
      clear: (handle) => pending.delete(handle as number),
    };
    const fire = (ms: number) => {
      const entry = [...pending].find(([, t]) => t.ms === ms);
      if (!entry) throw new Error(`no timer of ${ms} ms is set`);
      pending.delete(entry[0]);
      entry[1].callback();
    };
    const host = await startKmsHost({
      dataDir: fx.hostDir,
      listen: { host: '127.0.0.1', port: 0 },
      clock: fx.clock,
      timers,
      dnsPublish: {
        server: { host: '127.0.0.1', port: bind.port },
        key: bind.key,
        domains: [{ domain: 'corp.test', priority: 0, weight: 5 }],
        service: '_vlmcs._tcp',
        hostName: 'kms2',
        address: '127.0.0.1',
        port: 0,
        ttl: 60,
        refreshMs: DAY,
      },
    });
    try {
      const srv = `0 5 ${host.address.port} kms2.corp.test.`;
      expect(dig(bind.port, '_vlmcs._tcp.corp.test', 'SRV')).toBe(srv);
      expect([...pending.values()].map((t) => t.ms).sort((a, b) => a - b)).toEqual([5 * MINUTE, DAY]);
      deleteBehindTheHostsBack();
      fire(5 * MINUTE);
      const end = Date.now() + 5_000;
      while (dig(bind.port, '_vlmcs._tcp.corp.test', 'SRV') !== srv) {
        if (Date.now() > end) throw new Error('the 5-minute check did not publish the SRV record again');
        await new Promise((r) => setTimeout(r, 50));
      }
      // The check set itself again for 5 minutes later; the 24-hour refresh is still pending.
      const deadline = Date.now() + 2_000;
      while ([...pending.values()].filter((t) => t.ms === 5 * MINUTE).length === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect([...pending.values()].map((t) => t.ms).sort((a, b) => a - b)).toEqual([5 * MINUTE, DAY]);
    } finally {
      await host.close();
    }
  }, 30_000);
});
