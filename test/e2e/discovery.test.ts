import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority, createAuthorityServer } from '@volact/authority';
import {
  HostState,
  activateHostOnline,
  startKmsHost,
  type RunningKmsHost,
  type DnsPublishConfig,
} from '@volact/kms-host';
import { Licence } from '@volact/client';
import { publishEntry, removeEntry } from '@volact/directory';
import {
  DAY,
  DELEGATION_PURPOSE,
  ManualClock,
  TrustStore,
  activationObjectFromConfirmation,
  activationObjectInstallationId,
  parseKey,
  fileSigner,
  generateSigningKeyPair,
  querySrv,
  signActivationObject,
  randomGuid,
  trustConfirmationKeys,
  type ProductConfig,
} from '@volact/core';
import { dig, startTestBind, type TestBind } from '@volact/core/testing';
import { startTestSlapd, type TestSlapd } from '@volact/directory/testing';

/**
 * The reference's "Publication of the KMS service" and "Client discovery of KMS" against a
 * real named, and Active Directory-Based activation against a real slapd.
 */
let bind: TestBind;
let slapd: TestSlapd;
let root: string;
let clock: ManualClock;
let authority: Authority;
let authorityUrl: string;
let product: ProductConfig;
let hostKey: string;
let closeApi: () => Promise<void>;

beforeAll(async () => {
  [bind, slapd] = await Promise.all([
    startTestBind({ zones: ['corp.test', 'other.test', 'empty.test'] }),
    startTestSlapd(),
  ]);
  root = mkdtempSync(join(tmpdir(), 'volact-discovery-'));
  clock = new ManualClock(Date.UTC(2026, 10, 25, 8));
  authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 1 });
  await authority.addGroup({ name: 'visio14', threshold: 1 });
  hostKey = (await authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 50 })).key;
  const api = createAuthorityServer(authority);
  await api.listen({ host: '127.0.0.1', port: 0 });
  authorityUrl = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
  closeApi = () => api.close();
  product = await authority.productConfig('office14');
}, 60_000);

afterAll(async () => {
  await closeApi?.();
  await authority?.close();
  await Promise.all([bind?.stop(), slapd?.stop()]);
  rmSync(root, { recursive: true, force: true });
});

const dnsServer = () => ({ host: '127.0.0.1', port: bind.port });

async function startPublishedHost(
  name: string,
  publish: { domain: string; priority: number; weight: number }[],
  key = bind.key,
): Promise<RunningKmsHost> {
  const dir = join(root, 'hosts', name);
  await activateHostOnline(HostState.installKey(dir, hostKey, `hw-${name}`, clock.now()), authorityUrl, { clock });
  const dnsPublish: DnsPublishConfig = {
    server: dnsServer(),
    key,
    domains: publish,
    service: '_vlmcs._tcp',
    hostName: name,
    address: '127.0.0.1',
    port: 0,
    ttl: 60,
    refreshMs: DAY,
    timeoutMs: 2_000,
  };
  return startKmsHost({ dataDir: dir, listen: { host: '127.0.0.1', port: 0 }, clock, flushIntervalMs: 50, dnsPublish });
}

let clients = 0;
function newClient(options: { random?: () => number } = {}): Licence {
  const stateDir = join(root, 'clients', `c${++clients}`);
  Licence.init({ stateDir, product, hardwareId: `hw-c${clients}`, clock });
  return Licence.open({ stateDir, clock, timeoutMs: 2_000, ...options });
}

describe('DNS publication (RFC 2136 + TSIG) and discovery (RFC 2782)', () => {
  it('publishes SRV and A records that dig and the client see; a clean stop removes them', async () => {
    const host = await startPublishedHost('kms1', [{ domain: 'corp.test', priority: 0, weight: 0 }]);
    const published = host.dnsPublication()?.domains[0];
    expect(published).toMatchObject({ domain: 'corp.test', srv: '_vlmcs._tcp.corp.test', lastError: null });
    expect(dig(bind.port, '_vlmcs._tcp.corp.test', 'SRV')).toContain(`0 0 ${host.address.port} kms1.corp.test.`);
    expect(dig(bind.port, 'kms1.corp.test', 'A')).toContain('127.0.0.1');

    const client = newClient();
    client.setDiscoveryDomains(['corp.test'], `127.0.0.1:${bind.port}`);
    const outcome = await client.activate();
    expect(outcome).toMatchObject({ ok: true, status: { state: 'licensed', method: 'kms', hostSource: 'dns' } });
    expect(outcome.status.host).toBe(`kms1.corp.test:${host.address.port}`);

    await host.close();
    expect(dig(bind.port, '_vlmcs._tcp.corp.test', 'SRV')).toBe('');
    expect(await querySrv(dnsServer(), '_vlmcs._tcp.corp.test')).toEqual([]);
  }, 30_000);

  it('a key the server does not accept gives a clear error, and the host serves anyway', async () => {
    const wrong = { ...bind.key, secret: generateSigningKeyPair().publicKeyRaw };
    const host = await startPublishedHost('kms-badkey', [{ domain: 'corp.test', priority: 0, weight: 0 }], wrong);
    try {
      const d = host.dnsPublication()?.domains[0];
      expect(d?.publishedAt).toBeNull();
      expect(d?.lastError?.code).toMatch(/^DNS_(NOTAUTH|TSIG_INVALID)$/);
      expect(d?.lastError?.message).toMatch(/tsig-key-file|key/i);
      const client = newClient();
      client.setKmsHost(`127.0.0.1:${host.address.port}`);
      expect((await client.activate()).ok).toBe(true);
    } finally {
      await host.close();
    }
  }, 30_000);

  it('orders hosts by priority and weight: the priority-10 host is tried only when the others fail', async () => {
    const hosts = await Promise.all([
      startPublishedHost('p0w1', [{ domain: 'other.test', priority: 0, weight: 1 }]),
      startPublishedHost('p0w3', [{ domain: 'other.test', priority: 0, weight: 3 }]),
      startPublishedHost('p10', [{ domain: 'other.test', priority: 10, weight: 1 }]),
    ]);
    try {
      const client = newClient();
      client.setDiscoveryDomains(['other.test'], `127.0.0.1:${bind.port}`);
      const first: Record<string, number> = {};
      for (let round = 0; round < 2000; round++) {
        const found = await client.discover();
        expect(found.hosts).toHaveLength(3);
        expect(found.hosts[2]?.address).toMatch(/^p10\./);
        const name = found.hosts[0]!.address.split('.')[0] as string;
        first[name] = (first[name] ?? 0) + 1;
      }
      expect(first.p10 ?? 0).toBe(0);
      // Binomial(2000, 1/4): mean 500, sd 19.4; |x - 500| ≥ 100 has probability < 3e-7.
      expect(Math.abs((first.p0w1 ?? 0) - 500)).toBeLessThan(100);
    } finally {
      await Promise.all(hosts.map((h) => h.close()));
    }
  }, 60_000);

  it('caches the host that answered; when it dies the next renewal discovers another; caching off asks DNS every time', async () => {
    const a = await startPublishedHost('cache-a', [{ domain: 'corp.test', priority: 0, weight: 1 }]);
    const b = await startPublishedHost('cache-b', [{ domain: 'corp.test', priority: 5, weight: 1 }]);
    try {
      const client = newClient();
      client.setDiscoveryDomains(['corp.test'], `127.0.0.1:${bind.port}`);
      expect((await client.activate()).status.host).toMatch(/^cache-a\./);
      expect(client.status().discovery.cachedHost).toMatch(/^cache-a\./);
      expect((await client.activate()).status.hostSource).toBe('cache');

      await a.close({ removeDnsRecords: false }); // dies: its records stay in DNS
      clock.advance(7 * DAY);
      const renewed = await client.activate();
      expect(renewed).toMatchObject({ ok: true, status: { state: 'licensed', hostSource: 'dns' } });
      expect(renewed.status.host).toMatch(/^cache-b\./);

      client.setHostCaching(false);
      expect(client.status().discovery.cachedHost).toBeNull();
      expect((await client.activate()).status.hostSource).toBe('dns');
      expect(client.status().discovery.cachedHost).toBeNull();
    } finally {
      await b.close();
    }
  }, 60_000);

  it('a host restarted after a crash on another port deletes the record it left, and only its own', async () => {
    const other = await startPublishedHost('neighbour', [{ domain: 'empty.test', priority: 0, weight: 1 }]);
    const first = await startPublishedHost('restarted', [{ domain: 'empty.test', priority: 0, weight: 1 }]);
    const oldPort = first.address.port;
    await first.close({ removeDnsRecords: false }); // a crash
    const second = await startPublishedHost('restarted', [{ domain: 'empty.test', priority: 3, weight: 1 }]);
    try {
      const srv = dig(bind.port, '_vlmcs._tcp.empty.test', 'SRV');
      expect(srv).toContain(`3 1 ${second.address.port} restarted.empty.test.`);
      expect(srv).not.toContain(` ${oldPort} restarted.empty.test.`);
      expect(srv).toContain(`0 1 ${other.address.port} neighbour.empty.test.`);
    } finally {
      await second.close();
      await other.close();
    }
    expect(dig(bind.port, '_vlmcs._tcp.empty.test', 'SRV')).toBe('');
  }, 30_000);

  it('with no record in the domain, says which name was looked up and what to check', async () => {
    const client = newClient();
    client.setDiscoveryDomains(['empty.test'], `127.0.0.1:${bind.port}`);
    const outcome = await client.activate();
    expect(outcome.code).toBe('NO_KMS_HOST');
    expect(outcome.message).toMatch(/_vlmcs\._tcp\.empty\.test/);
  }, 30_000);
});

describe('client doctor', () => {
  it('names the failing step and its fix: no SRV record, then a dead host, then all well', async () => {
    const client = newClient();
    client.setDiscoveryDomains(['empty.test'], `127.0.0.1:${bind.port}`);
    let report = await client.doctor();
    expect(report).toMatchObject({ ok: false, failedAt: 'dns empty.test' });
    expect(report.steps.find((s) => s.step === 'dns empty.test')).toMatchObject({
      detail: 'no SRV record for _vlmcs._tcp.empty.test',
      fix: 'is the host publishing? see `volact host status`',
    });

    const live = await startPublishedHost('doc2', [{ domain: 'other.test', priority: 0, weight: 1 }]);
    client.setDiscoveryDomains(['other.test'], `127.0.0.1:${bind.port}`);
    report = await client.doctor();
    expect(report.ok).toBe(true);
    expect(report.steps.map((s) => s.step)).toEqual(
      expect.arrayContaining(['config', 'dns other.test', expect.stringMatching(/^host doc2\.other\.test:\d+ count$/)]),
    );
    await live.close({ removeDnsRecords: false });
    report = await client.doctor();
    const tcp = report.steps.find((s) => /^host doc2\.other\.test:\d+ tcp$/.test(s.step));
    expect(tcp).toMatchObject({ status: 'fail', fix: 'is `volact host serve` running, and the port open?' });
  }, 30_000);
});

describe('directory-based activation (reference: Active Directory-Based activation)', () => {
  const conn = () => ({ url: slapd.url, bindDn: slapd.adminDn, password: slapd.adminPassword });
  const location = () => ({ base: slapd.base });
  const member = (client: Licence) =>
    client.joinDomain({
      url: slapd.url,
      domain: 'corp.test',
      base: slapd.base,
      bindDn: slapd.userDn,
      password: slapd.userPassword,
    });

  it('a member activates from the published object with no KMS host; leaving the domain ends it', async () => {
    const object = await authority.createActivationObject({
      group: 'office14',
      domain: 'corp.test',
      name: 'office14-corp',
    });
    await publishEntry(conn(), location(), object.name, JSON.stringify(object));
    try {
      const client = newClient();
      member(client);
      const outcome = await client.activate();
      expect(outcome).toMatchObject({
        ok: true,
        status: {
          state: 'licensed',
          method: 'directory',
          directoryObject: { name: 'office14-corp', domain: 'corp.test' },
        },
      });
      expect(Date.parse(outcome.status.expiresAt ?? '')).toBe(clock.now() + 180 * DAY);
      client.leaveDomain();
      expect(client.status()).toMatchObject({ method: null });
      expect(client.status().state).not.toBe('licensed');
    } finally {
      await removeEntry(conn(), location(), 'office14-corp');
    }
  }, 30_000);

  it('rejects an object of another authority, another domain or another group with its own code', async () => {
    const foreignRoot = generateSigningKeyPair();
    const visio = (await authority.listGroups()).find((g) => g.name === 'visio14')!;
    const office = (await authority.listGroups()).find((g) => g.name === 'office14')!;
    const cases = [
      {
        name: 'foreign',
        object: signActivationObject(
          { name: 'foreign', objectId: randomGuid(), group: office, domain: 'corp.test', issuedAt: clock.now() },
          fileSigner(foreignRoot),
        ),
        code: 'DIRECTORY_OBJECT_UNTRUSTED',
      },
      {
        name: 'elsewhere',
        object: await authority.createActivationObject({ group: 'office14', domain: 'other.test', name: 'elsewhere' }),
        code: 'DIRECTORY_OBJECT_DOMAIN_MISMATCH',
      },
      {
        name: 'visio',
        object: await authority.createActivationObject({ group: visio.name, domain: 'corp.test', name: 'visio' }),
        code: 'DIRECTORY_OBJECT_GROUP_MISMATCH',
      },
    ];
    for (const c of cases) {
      await publishEntry(conn(), location(), c.name, JSON.stringify(c.object));
      try {
        const client = newClient();
        member(client);
        const outcome = await client.activate();
        expect(outcome.ok).toBe(false);
        expect(outcome.code).toBe(c.code);
      } finally {
        await removeEntry(conn(), location(), c.name);
      }
    }
  }, 30_000);

  it('a disconnected forest makes its object by phone with its KMS host key; a member activates from it', async () => {
    const office = (await authority.listGroups()).find((g) => g.name === 'office14')!;
    const forestKey = parseKey((await authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 1 })).key);
    const iid = activationObjectInstallationId({ key: forestKey, domain: 'corp.test', groupId: office.id });
    expect(iid.text).toMatch(/^(\d{6}-){19}\d{6}$/);
    const confirmation = await authority.confirm(iid.text);
    expect(confirmation).toMatchObject({ kind: 'activation-object', group: 'office14', hostsUsed: 1 });
    const build = (domain: string) =>
      activationObjectFromConfirmation({
        key: forestKey,
        domain,
        group: office,
        name: 'forest-office14',
        rootPublicKeyRaw: authority.rootPublicKeyRaw,
        keys: trustConfirmationKeys(TrustStore.fromProductConfig(product), DELEGATION_PURPOSE.phoneActivationObjects),
        confirmationId: confirmation.confirmationId,
      });
    expect(() => build('other.test')).toThrow(/not issued for this installation ID/);
    const object = build('corp.test');
    await publishEntry(conn(), location(), object.name, JSON.stringify(object));
    try {
      const client = newClient();
      member(client);
      expect(await client.activate()).toMatchObject({
        ok: true,
        status: { method: 'directory', directoryObject: { name: 'forest-office14' } },
      });
    } finally {
      await removeEntry(conn(), location(), object.name);
    }
    // The key's one host activation is spent on the object.
    const second = activationObjectInstallationId({ key: forestKey, domain: 'other.test', groupId: office.id });
    await expect(authority.confirm(second.text)).rejects.toThrow(/activated 1 of 1 hosts/);
  }, 30_000);

  it('a stored check time from the future (an edited store) is not a licence: non-genuine grace', async () => {
    const object = await authority.createActivationObject({
      group: 'office14',
      domain: 'corp.test',
      name: 'tamper-check',
    });
    await publishEntry(conn(), location(), object.name, JSON.stringify(object));
    try {
      const client = newClient();
      member(client);
      expect((await client.activate()).ok).toBe(true);
      const stateDir = join(root, 'clients', `c${clients}`);
      const file = join(stateDir, 'licence.json');
      const record = JSON.parse(readFileSync(file, 'utf8')) as { activation: { checkedAt: number } };
      record.activation.checkedAt = Date.UTC(9999, 0, 1);
      writeFileSync(file, JSON.stringify(record));
      expect(Licence.open({ stateDir, clock }).status().state).toBe('non-genuine-grace');
    } finally {
      await removeEntry(conn(), location(), 'tamper-check');
    }
  }, 30_000);

  it('falls back to KMS discovery when the directory cannot be read', async () => {
    const host = await startPublishedHost('fallback', [{ domain: 'corp.test', priority: 0, weight: 1 }]);
    try {
      const client = newClient();
      client.joinDomain({ url: 'ldap://127.0.0.1:1', domain: 'corp.test', base: slapd.base });
      client.setDiscoveryDomains(['corp.test'], `127.0.0.1:${bind.port}`);
      const outcome = await client.activate();
      expect(outcome).toMatchObject({ ok: true, status: { method: 'kms', hostSource: 'dns' } });
    } finally {
      await host.close();
    }
  }, 30_000);
});
