import type { Inventory, Network } from './inventory.js';
import {
  KIND_LABEL,
  MACHINE_KINDS,
  METHODS,
  contextOf,
  coreKmsCandidates,
  recommendSite,
  thresholdOf,
  type Allocation,
  type ByKind,
  type MachineKind,
  type Method,
  type PlanWarning,
  type Thresholds,
} from './rules.js';

export interface SitePlan {
  readonly name: string;
  readonly network: Network;
  readonly machines: { computers: number; servers: number; retail: number; oem: number; total: number };
  readonly allocations: readonly Allocation[];
  /** Hosts of the site's own KMS (Table 1 row 5); 0 when it has none. */
  readonly kmsHosts: number;
  readonly warnings: readonly PlanWarning[];
}

export interface KmsDeployment {
  /** `core`, or the name of the site that runs its own KMS. */
  readonly name: string;
  readonly scope: 'core' | 'local';
  /** KMS clients by kind (what the host's count reaches). */
  readonly clients: ByKind<number>;
  readonly hosts: number;
}

export interface MakNeed {
  readonly machines: number;
  /** Machines plus the spare, rounded up: the activation limit to ask the publisher for. */
  readonly activations: number;
  /** One MAK per product kind in use. */
  readonly keys: number;
}

export interface Plan {
  readonly format: 'volact-plan/1';
  readonly organisation?: string;
  readonly settings: {
    readonly thresholds: Thresholds;
    readonly makSparePercent: number;
    readonly kmsHostsMinimum: number;
    readonly clientsPerKmsHost?: number;
    readonly hostsPerKmsHostKey: number;
    readonly directoryActivation: boolean;
    readonly tokenActivation: boolean;
  };
  readonly sites: readonly SitePlan[];
  readonly kms: {
    readonly deployments: readonly KmsDeployment[];
    readonly hosts: number;
    /** KMS host keys per kind: one key activates `hostsPerKmsHostKey` hosts. */
    readonly hostKeys: ByKind<number>;
  };
  readonly mak: { readonly sparePercent: number } & ByKind<MakNeed>;
  readonly directory: { readonly machines: ByKind<number>; readonly activationObjects: ByKind<number> };
  readonly token: { readonly machines: number };
  readonly totals: {
    readonly byMethod: Record<Method, number>;
    /** Machines by the row of Table 1 their method came from ("1" … "9"). */
    readonly byRow: Record<string, number>;
    /** Table 1 row 10: the sum of every method… */
    readonly planned: number;
    /** …which must match the machines in the inventory. */
    readonly inventory: number;
  };
  readonly warnings: readonly PlanWarning[];
}

const zeroByKind = (): ByKind<number> => ({ 'client-os': 0, 'server-app': 0 });

/** At least the failover minimum; more only when the inventory sizes hosts by clients. */
function hostsFor(clients: number, minimum: number, clientsPerHost: number | undefined): number {
  if (clients === 0) return 0;
  return Math.max(minimum, clientsPerHost === undefined ? 0 : Math.ceil(clients / clientsPerHost));
}

function sumOf(allocations: readonly Allocation[], method: Method, kind?: MachineKind): number {
  return allocations
    .filter((a) => a.method === method && (kind === undefined || a.kind === kind))
    .reduce((n, a) => n + a.count, 0);
}

/**
 * The plan for an inventory: first the machines that would count on the core KMS (rows 2
 * and 4) are added up by kind to see whether the core network meets the threshold, then each
 * site is given its methods by the ordered rules (rules.ts), then hosts, keys and totals.
 */
export function planInventory(inventory: Inventory): Plan {
  const { thresholds, kmsHosts } = inventory;
  const coreClients = zeroByKind();
  for (const site of inventory.sites) {
    for (const kind of MACHINE_KINDS) {
      coreClients[kind] += coreKmsCandidates(site, kind, inventory.directoryActivation);
    }
  }
  const coreMeets: ByKind<boolean> = {
    'client-os': coreClients['client-os'] >= thresholds.clientOs,
    'server-app': coreClients['server-app'] >= thresholds.serverApp,
  };
  const ctx = contextOf(inventory, coreMeets);

  const warnings: PlanWarning[] = [];
  for (const kind of MACHINE_KINDS) {
    if (coreClients[kind] > 0 && !coreMeets[kind]) {
      warnings.push({
        code: 'core-below-threshold',
        message: `the core KMS would have ${coreClients[kind]} ${KIND_LABEL[kind]} clients, below the threshold (${thresholdOf(thresholds, kind)}): they get MAK (Table 1 row 3)`,
      });
    }
  }

  const deployments: KmsDeployment[] = [];
  const sites: SitePlan[] = inventory.sites.map((site) => {
    const { allocations, warnings: siteWarnings } = recommendSite(site, ctx);
    const local = zeroByKind();
    for (const kind of MACHINE_KINDS) local[kind] = sumOf(allocations, 'kms-local', kind);
    const localHosts = hostsFor(local['client-os'] + local['server-app'], kmsHosts.minimum, kmsHosts.clientsPerHost);
    if (localHosts > 0) deployments.push({ name: site.name, scope: 'local', clients: local, hosts: localHosts });
    return {
      name: site.name,
      network: site.network,
      machines: {
        computers: site.computers,
        servers: site.servers,
        retail: site.retail,
        oem: site.oem,
        total: site.computers + site.servers + site.retail + site.oem,
      },
      allocations,
      kmsHosts: localHosts,
      warnings: siteWarnings,
    };
  });
  const everyAllocation = sites.flatMap((s) => s.allocations);

  const core = zeroByKind();
  for (const kind of MACHINE_KINDS) core[kind] = sumOf(everyAllocation, 'kms-core', kind);
  const coreHosts = hostsFor(core['client-os'] + core['server-app'], kmsHosts.minimum, kmsHosts.clientsPerHost);
  if (coreHosts > 0) deployments.unshift({ name: 'core', scope: 'core', clients: core, hosts: coreHosts });

  // A host holds one host key per product group it serves; one key activates a limited number of hosts.
  const hostKeys = zeroByKind();
  for (const kind of MACHINE_KINDS) {
    const hosts = deployments.filter((d) => d.clients[kind] > 0).reduce((n, d) => n + d.hosts, 0);
    hostKeys[kind] = Math.ceil(hosts / inventory.hostsPerKmsHostKey);
  }

  const makFor = (kind: MachineKind): MakNeed => {
    const machines = sumOf(everyAllocation, 'mak-independent', kind) + sumOf(everyAllocation, 'mak-proxy', kind);
    // Rounded to a hundredth first so 10 % of 30 is 3, not 3.0000000000000004.
    const withSpare = Math.round(machines * (1 + inventory.makSparePercent / 100) * 100) / 100;
    return { machines, activations: Math.ceil(withSpare), keys: machines > 0 ? 1 : 0 };
  };
  const directoryMachines = zeroByKind();
  const activationObjects = zeroByKind();
  for (const kind of MACHINE_KINDS) {
    directoryMachines[kind] = sumOf(everyAllocation, 'directory', kind);
    activationObjects[kind] = directoryMachines[kind] > 0 ? 1 : 0;
  }

  const byMethod = Object.fromEntries(METHODS.map((m) => [m, sumOf(everyAllocation, m)])) as Record<Method, number>;
  const byRow: Record<string, number> = {};
  for (const a of everyAllocation) byRow[String(a.row)] = (byRow[String(a.row)] ?? 0) + a.count;
  const planned = everyAllocation.reduce((n, a) => n + a.count, 0);
  const inventoryTotal = sites.reduce((n, s) => n + s.machines.total, 0);
  if (planned !== inventoryTotal) {
    // Table 1 row 10: "This total should match the total number of licensed computers".
    throw new Error(`planner bug: ${planned} machines planned for ${inventoryTotal} in the inventory`);
  }

  return {
    format: 'volact-plan/1',
    ...(inventory.organisation !== undefined ? { organisation: inventory.organisation } : {}),
    settings: {
      thresholds: { clientOs: thresholds.clientOs, serverApp: thresholds.serverApp },
      makSparePercent: inventory.makSparePercent,
      kmsHostsMinimum: kmsHosts.minimum,
      ...(kmsHosts.clientsPerHost !== undefined ? { clientsPerKmsHost: kmsHosts.clientsPerHost } : {}),
      hostsPerKmsHostKey: inventory.hostsPerKmsHostKey,
      directoryActivation: inventory.directoryActivation,
      tokenActivation: inventory.tokenActivation,
    },
    sites,
    kms: { deployments, hosts: deployments.reduce((n, d) => n + d.hosts, 0), hostKeys },
    mak: {
      sparePercent: inventory.makSparePercent,
      'client-os': makFor('client-os'),
      'server-app': makFor('server-app'),
    },
    directory: { machines: directoryMachines, activationObjects },
    token: { machines: byMethod.token },
    totals: { byMethod, byRow, planned, inventory: inventoryTotal },
    warnings: [...warnings, ...sites.flatMap((s) => s.warnings)],
  };
}
