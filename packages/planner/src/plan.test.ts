import { describe, expect, it } from 'vitest';
import { parseInventory, type InventoryInput } from './inventory.js';
import { planInventory, type Plan, type SitePlan } from './plan.js';
import { RULES, TABLE_1, type Allocation } from './rules.js';

type SiteInput = InventoryInput['sites'][number];

/** A head office whose 100 computers and 10 servers make the core KMS meet both thresholds. */
const HQ: SiteInput = { name: 'HQ', network: 'core', computers: 100, servers: 10 };

function plan(sites: SiteInput[], extra: Partial<InventoryInput> = {}): Plan {
  return planInventory(parseInventory({ ...extra, sites }));
}

function siteOf(p: Plan, name: string): SitePlan {
  const site = p.sites.find((s) => s.name === name);
  if (site === undefined) throw new Error(`no site ${name}`);
  return site;
}

/** The allocations as "method kind count row" strings, easy to read in a failure. */
const summary = (allocations: readonly Allocation[]): string[] =>
  allocations.map((a) => `${a.method} ${a.kind} ${a.count} row ${a.row}`);

describe('Table 1, one crafted site per row', () => {
  it('row 1: domain members that reach a domain controller every 30 days get directory-based activation', () => {
    const p = plan([HQ, { name: 'Remote', network: 'branch', computers: 12, domainJoined: 12, domainContactDays: 30 }]);
    expect(summary(siteOf(p, 'Remote').allocations)).toEqual(['directory client-os 12 row 1']);
  });

  it('row 2: a core-network site uses the central KMS when the core meets the threshold', () => {
    const p = plan([HQ]);
    expect(summary(siteOf(p, 'HQ').allocations)).toEqual([
      'kms-core client-os 100 row 2',
      'kms-core server-app 10 row 2',
    ]);
    expect(p.kms.deployments).toEqual([
      { name: 'core', scope: 'core', clients: { 'client-os': 100, 'server-app': 10 }, hosts: 2 },
    ]);
  });

  it('row 3: computers that reach the core network less than once every 180 days get MAK', () => {
    const p = plan([HQ, { name: 'Ship', network: 'isolated', coreKms: true, contactDays: 240, computers: 9 }]);
    expect(summary(siteOf(p, 'Ship').allocations)).toEqual(['mak-independent client-os 9 row 3']);
    expect(siteOf(p, 'Ship').warnings.map((w) => w.code)).toContain('disconnected');
  });

  it('row 3 (second clause): no network meets the threshold, so the core-linked machines get MAK', () => {
    const p = plan([{ name: 'Small HQ', network: 'core', computers: 10 }]);
    expect(summary(siteOf(p, 'Small HQ').allocations)).toEqual(['mak-independent client-os 10 row 3']);
    expect(p.warnings.map((w) => w.code)).toEqual(['core-below-threshold']);
    expect(p.kms.hosts).toBe(0);
  });

  it('row 4: a semi-isolated branch with a VPN to the core KMS counts on it, however small', () => {
    const p = plan([HQ, { name: 'VPN branch', network: 'branch', coreKms: true, contactDays: 7, computers: 6 }]);
    expect(summary(siteOf(p, 'VPN branch').allocations)).toEqual(['kms-core client-os 6 row 4']);
    expect(p.kms.deployments[0]?.clients['client-os']).toBe(106);
  });

  it('row 5: an isolated network that meets the threshold gets its own KMS, with two hosts', () => {
    const p = plan([HQ, { name: 'Plant', network: 'isolated', computers: 40, servers: 5 }]);
    expect(summary(siteOf(p, 'Plant').allocations)).toEqual([
      'kms-local client-os 40 row 5',
      'kms-local server-app 5 row 5',
    ]);
    expect(siteOf(p, 'Plant').kmsHosts).toBe(2);
  });

  it('row 6: an isolated network below the threshold gets MAK, with a warning', () => {
    const p = plan([HQ, { name: 'Depot', network: 'isolated', computers: 8, servers: 4 }]);
    expect(summary(siteOf(p, 'Depot').allocations)).toEqual([
      'mak-independent client-os 8 row 6',
      'mak-independent server-app 4 row 6',
    ]);
    expect(siteOf(p, 'Depot').warnings.map((w) => w.code)).toEqual(['below-threshold', 'below-threshold']);
  });

  it("row 7: a lab whose machines won't be activated gets none", () => {
    const p = plan([HQ, { name: 'Lab', network: 'lab', activate: false, computers: 50, servers: 3 }]);
    expect(summary(siteOf(p, 'Lab').allocations)).toEqual(['none client-os 50 row 7', 'none server-app 3 row 7']);
    expect(siteOf(p, 'Lab').warnings).toEqual([]);
  });

  it('rows 8 and 9: retail and OEM machines are passed through', () => {
    const p = plan([{ ...HQ, retail: 3, oem: 7 }]);
    expect(summary(siteOf(p, 'HQ').allocations).slice(2)).toEqual(['retail any 3 row 8', 'oem any 7 row 9']);
  });

  it('every rule cites a row of Table 1', () => {
    const rows = new Set<number>(TABLE_1.map((r) => r.row));
    for (const rule of RULES) for (const row of rule.rows) expect(rows.has(row), rule.id).toBe(true);
  });
});

describe('the thresholds', () => {
  it('a site of 20 client-OS machines with no core link gets MAK (below 25)', () => {
    const p = plan([HQ, { name: 'Branch 20', network: 'branch', computers: 20 }]);
    expect(summary(siteOf(p, 'Branch 20').allocations)).toEqual(['mak-independent client-os 20 row 6']);
    expect(siteOf(p, 'Branch 20').warnings[0]?.message).toMatch(/below the KMS threshold \(25\)/);
    expect(p.mak['client-os']).toEqual({ machines: 20, activations: 22, keys: 1 });
  });

  it('a site of 30 client-OS machines with no core link gets a local KMS', () => {
    const p = plan([HQ, { name: 'Branch 30', network: 'branch', computers: 30 }]);
    expect(summary(siteOf(p, 'Branch 30').allocations)).toEqual(['kms-local client-os 30 row 5']);
    expect(siteOf(p, 'Branch 30').kmsHosts).toBe(2);
    expect(siteOf(p, 'Branch 30').warnings).toEqual([]);
  });

  it('the product kind decides: 6 servers reach the server/app threshold where 6 computers do not', () => {
    const p = plan([HQ, { name: 'Small', network: 'isolated', computers: 6, servers: 6 }]);
    expect(summary(siteOf(p, 'Small').allocations)).toEqual([
      'mak-independent client-os 6 row 6',
      'kms-local server-app 6 row 5',
    ]);
  });

  it('the thresholds are configurable in the inventory', () => {
    const p = plan([HQ, { name: 'Branch 20', network: 'branch', computers: 20 }], {
      thresholds: { clientOs: 20, serverApp: 5 },
    });
    expect(summary(siteOf(p, 'Branch 20').allocations)).toEqual(['kms-local client-os 20 row 5']);
  });

  it('sizes KMS deployments by clientsPerHost when given, never below the minimum', () => {
    const p = plan([{ name: 'HQ', network: 'core', computers: 25_000 }], {
      kmsHosts: { minimum: 2, clientsPerHost: 10_000 },
    });
    expect(p.kms.deployments[0]?.hosts).toBe(3);
    expect(plan([HQ], { kmsHosts: { minimum: 3 } }).kms.hosts).toBe(3);
  });
});

describe('directory, token, MAK', () => {
  it('splits a site: domain members directory-based, the rest on the core KMS', () => {
    const p = plan([{ name: 'HQ', network: 'core', computers: 100, domainJoined: 60 }]);
    expect(summary(siteOf(p, 'HQ').allocations)).toEqual([
      'directory client-os 60 row 1',
      'kms-core client-os 40 row 2',
    ]);
    expect(p.directory.activationObjects).toEqual({ 'client-os': 1, 'server-app': 0 });
  });

  it('domain members out of contact for more than 180 days are not directory-based, and warned about', () => {
    const p = plan([HQ, { name: 'Far', network: 'isolated', computers: 30, domainJoined: 30, domainContactDays: 365 }]);
    expect(summary(siteOf(p, 'Far').allocations)).toEqual(['kms-local client-os 30 row 5']);
    expect(siteOf(p, 'Far').warnings.map((w) => w.code)).toEqual(['domain-contact']);
  });

  it('a high-security network gets tokens, or MAK by proxy when token activation is off', () => {
    const site: SiteInput = { name: 'Vault', network: 'high-security', computers: 10 };
    expect(summary(siteOf(plan([HQ, site]), 'Vault').allocations)).toEqual(['token client-os 10 row 6']);
    expect(summary(siteOf(plan([HQ, site], { tokenActivation: false }), 'Vault').allocations)).toEqual([
      'mak-proxy client-os 10 row 6',
    ]);
  });

  it('roaming computers that never reach the core network get MAK with a warning', () => {
    const p = plan([HQ, { name: 'Road', network: 'roaming', computers: 7 }]);
    expect(summary(siteOf(p, 'Road').allocations)).toEqual(['mak-independent client-os 7 row 3']);
    expect(siteOf(p, 'Road').warnings.map((w) => w.code)).toEqual(['disconnected']);
  });

  it('adds the spare to MAK activations, rounded up', () => {
    const p = plan([HQ, { name: 'B', network: 'branch', computers: 21 }], { makSparePercent: 15 });
    expect(p.mak['client-os']).toEqual({ machines: 21, activations: 25, keys: 1 });
    expect(
      plan([HQ, { name: 'B', network: 'branch', computers: 20 }], { makSparePercent: 0 }).mak['client-os'],
    ).toEqual({ machines: 20, activations: 20, keys: 0 + 1 });
  });

  it('counts KMS host keys by the hosts each key activates', () => {
    const sites: SiteInput[] = [
      HQ,
      ...[1, 2, 3].map((i) => ({ name: `Plant ${i}`, network: 'isolated' as const, computers: 30 })),
    ];
    const p = plan(sites);
    expect(p.kms.hosts).toBe(8);
    expect(p.kms.hostKeys).toEqual({ 'client-os': 2, 'server-app': 1 });
  });
});

describe('totals (Table 1 row 10)', () => {
  it('add up to the inventory, by method, by row and by site', () => {
    const sites: SiteInput[] = [
      { ...HQ, domainJoined: 50, retail: 4, oem: 9 },
      { name: 'VPN', network: 'branch', coreKms: true, computers: 12 },
      { name: 'B20', network: 'branch', computers: 20, servers: 1 },
      { name: 'B30', network: 'branch', computers: 30, oem: 2 },
      { name: 'Lab', network: 'lab', activate: false, computers: 40 },
      { name: 'Vault', network: 'high-security', computers: 15, servers: 2 },
      { name: 'Road', network: 'roaming', computers: 11 },
    ];
    const p = plan(sites);
    const inventory = sites.reduce((n, s) => n + s.computers + (s.servers ?? 0) + (s.retail ?? 0) + (s.oem ?? 0), 0);
    expect(p.totals.inventory).toBe(inventory);
    expect(p.totals.planned).toBe(inventory);
    expect(Object.values(p.totals.byMethod).reduce((a, b) => a + b, 0)).toBe(inventory);
    expect(Object.values(p.totals.byRow).reduce((a, b) => a + b, 0)).toBe(inventory);
    for (const site of p.sites) {
      expect(
        site.allocations.reduce((n, a) => n + a.count, 0),
        site.name,
      ).toBe(site.machines.total);
    }
    expect(p.totals.byMethod.retail).toBe(4);
    expect(p.totals.byMethod.oem).toBe(11);
  });
});
