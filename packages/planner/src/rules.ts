import type { Inventory, Site } from './inventory.js';

/**
 * The two kinds of product the thresholds tell apart (plan-for-volume-activation.txt: "at
 * least five computers to activate … Windows Server and at least 25 … client computers";
 * office2013-plan-volume-activation.txt: five for Office). `computers` in an inventory are
 * client-OS machines, `servers` run a server- or app-kind product.
 */
export const MACHINE_KINDS = ['client-os', 'server-app'] as const;
export type MachineKind = (typeof MACHINE_KINDS)[number];
export type ByKind<T> = Record<MachineKind, T>;

export const KIND_LABEL: ByKind<string> = { 'client-os': 'client OS', 'server-app': 'server/app' };

export const METHODS = [
  'directory',
  'kms-core',
  'kms-local',
  'mak-independent',
  'mak-proxy',
  'token',
  'none',
  'retail',
  'oem',
] as const;
export type Method = (typeof METHODS)[number];

export const METHOD_LABEL: Record<Method, string> = {
  directory: 'directory-based',
  'kms-core': 'KMS (core)',
  'kms-local': 'KMS (local)',
  'mak-independent': 'MAK (independent)',
  'mak-proxy': 'MAK (proxy)',
  token: 'token',
  none: 'none',
  retail: 'retail',
  oem: 'OEM',
};

/** "Table 1. Criteria for activation methods", plan-for-volume-activation.txt, row by row. */
export const TABLE_1 = [
  {
    row: 1,
    criterion:
      'Domain-joined computers that connect to a domain controller at least every 180 days (mobile, semi-isolated, branch office or core network)',
    method: 'Active Directory-based activation',
  },
  {
    row: 2,
    criterion:
      'Computers in the core network that connect at least every 180 days, directly or through VPN; the core network meets the KMS activation threshold',
    method: 'KMS (central)',
  },
  {
    row: 3,
    criterion:
      "Computers that don't connect to the network at least once every 180 days, or if no network meets the activation threshold",
    method: 'MAK',
  },
  {
    row: 4,
    criterion: 'Computers in semi-isolated networks that have connectivity to the KMS in the core network',
    method: 'KMS (central)',
  },
  {
    row: 5,
    criterion: 'Computers in isolated networks where the KMS activation threshold is met',
    method: 'KMS (local)',
  },
  { row: 6, criterion: "Computers in isolated networks where the KMS activation threshold isn't met", method: 'MAK' },
  { row: 7, criterion: "Computers in test and development labs that won't be activated", method: 'None' },
  { row: 8, criterion: 'Computers with a retail licence', method: 'Retail (online or phone)' },
  { row: 9, criterion: 'Computers with an OEM licence', method: 'OEM (at factory)' },
  {
    row: 10,
    criterion: 'Total number of computer activations: should match the total number of licensed computers',
    method: '(total)',
  },
] as const;

/** The activation validity: a machine must reach its KMS or domain at least this often. */
export const MAX_CONTACT_DAYS = 180;

export interface Thresholds {
  readonly clientOs: number;
  readonly serverApp: number;
}

export function thresholdOf(thresholds: Thresholds, kind: MachineKind): number {
  return kind === 'client-os' ? thresholds.clientOs : thresholds.serverApp;
}

/** What the rules need beyond the site: settings, and whether the core KMS meets its threshold. */
export interface SiteContext {
  readonly thresholds: Thresholds;
  readonly directoryActivation: boolean;
  readonly tokenActivation: boolean;
  /** Per kind: the machines of every site that would use the core KMS reach the threshold. */
  readonly coreMeetsThreshold: ByKind<boolean>;
}

export function contextOf(inventory: Inventory, coreMeetsThreshold: ByKind<boolean>): SiteContext {
  return {
    thresholds: inventory.thresholds,
    directoryActivation: inventory.directoryActivation,
    tokenActivation: inventory.tokenActivation,
    coreMeetsThreshold,
  };
}

/** How the site reaches the core network: declared link, how often, and whether that is enough. */
export interface CoreLink {
  /** A link to the core KMS is declared (core network, or `coreKms: true`). */
  readonly declared: boolean;
  /** Days between contacts with the core network; undefined: never. */
  readonly contactDays: number | undefined;
  /** Declared, and contact at least every 180 days: the core KMS can keep these machines activated. */
  readonly usable: boolean;
  /** Out of touch with the core network for more than 180 days (or a roaming site that never is). */
  readonly disconnected: boolean;
}

export function coreLinkOf(site: Site): CoreLink {
  const declared = site.coreKms ?? site.network === 'core';
  const contactDays = site.contactDays ?? (declared ? 1 : undefined);
  const usable = declared && contactDays !== undefined && contactDays <= MAX_CONTACT_DAYS;
  const disconnected =
    (contactDays !== undefined && contactDays > MAX_CONTACT_DAYS) || (site.network === 'roaming' && !usable);
  return { declared, contactDays, usable, disconnected };
}

/** Days between the domain members' contacts with a domain controller; undefined: never. */
export function domainContactDaysOf(site: Site): number | undefined {
  return site.domainContactDays ?? coreLinkOf(site).contactDays;
}

function machinesOf(site: Site, kind: MachineKind): number {
  return kind === 'client-os' ? site.computers : site.servers;
}

function domainJoinedOf(site: Site, kind: MachineKind): number {
  return kind === 'client-os' ? site.domainJoined : site.domainJoinedServers;
}

function labUnactivated(site: Site): boolean {
  return site.network === 'lab' && !site.activate;
}

/** Domain members of that kind activated from the directory (Table 1 row 1). */
export function directoryMembers(site: Site, kind: MachineKind, directoryActivation: boolean): number {
  if (!directoryActivation || labUnactivated(site)) return 0;
  const contact = domainContactDaysOf(site);
  return contact !== undefined && contact <= MAX_CONTACT_DAYS ? domainJoinedOf(site, kind) : 0;
}

/** Machines of that kind that would count on the core KMS (rows 2 and 4), before its threshold is known. */
export function coreKmsCandidates(site: Site, kind: MachineKind, directoryActivation: boolean): number {
  if (labUnactivated(site) || !coreLinkOf(site).usable) return 0;
  return machinesOf(site, kind) - directoryMembers(site, kind, directoryActivation);
}

/** One kind of machine at one site, while the rules take their share in order. */
export interface Slice {
  readonly site: Site;
  readonly kind: MachineKind;
  readonly ctx: SiteContext;
  /** Machines of this kind not yet given a method by an earlier rule. */
  readonly remaining: number;
}

export type RuleId =
  | 'lab-not-activated'
  | 'domain-member'
  | 'core-network'
  | 'semi-isolated'
  | 'core-below-threshold'
  | 'high-security-token'
  | 'roaming'
  | 'isolated-threshold-met'
  | 'disconnected-below-threshold'
  | 'isolated-below-threshold-proxy'
  | 'isolated-below-threshold';

export interface Rule {
  readonly id: RuleId;
  /** The row(s) of Table 1 the rule applies; `rowFor` picks one when there are two. */
  readonly rows: readonly [number, ...number[]];
  readonly method: Method;
  /** The condition in words (docs/planner.md lists them in this order). */
  readonly condition: string;
  /** How many of the remaining machines the rule takes (0: it does not apply). */
  readonly takes: (s: Slice) => number;
  readonly rowFor?: (s: Slice) => number;
}

const all = (s: Slice): number => s.remaining;
const below = (s: Slice): boolean => s.remaining < thresholdOf(s.ctx.thresholds, s.kind);

/**
 * Table 1 as ordered checks (Keygen's habit): the first rule that takes the machines decides,
 * except the directory rule, which takes the domain members and leaves the rest to the next.
 */
export const RULES: readonly Rule[] = [
  {
    id: 'lab-not-activated',
    rows: [7],
    method: 'none',
    condition: 'a lab with `activate: false` (rebuilt often, within the licence agreement)',
    takes: (s) => (labUnactivated(s.site) ? all(s) : 0),
  },
  {
    id: 'domain-member',
    rows: [1],
    method: 'directory',
    condition:
      'domain members (`domainJoined`, `domainJoinedServers`) that reach a domain controller at least every 180 days, with `directoryActivation` on',
    takes: (s) => Math.min(s.remaining, directoryMembers(s.site, s.kind, s.ctx.directoryActivation)),
  },
  {
    id: 'core-network',
    rows: [2],
    method: 'kms-core',
    condition: 'a core-network site, in contact at least every 180 days, and the core KMS meets the threshold',
    takes: (s) =>
      s.site.network === 'core' && coreLinkOf(s.site).usable && s.ctx.coreMeetsThreshold[s.kind] ? all(s) : 0,
  },
  {
    id: 'semi-isolated',
    rows: [4],
    method: 'kms-core',
    condition:
      'any other site with `coreKms: true` (WAN, VPN, TCP 1688 allowed out), in contact at least every 180 days, and the core KMS meets the threshold',
    takes: (s) =>
      s.site.network !== 'core' && coreLinkOf(s.site).usable && s.ctx.coreMeetsThreshold[s.kind] ? all(s) : 0,
  },
  {
    id: 'core-below-threshold',
    rows: [3],
    method: 'mak-independent',
    condition: 'a site linked to the core KMS, but all the sites using it together stay below the threshold',
    takes: (s) => (coreLinkOf(s.site).usable ? all(s) : 0),
  },
  {
    id: 'high-security-token',
    rows: [5, 6],
    method: 'token',
    condition:
      'a network isolated for security (`high-security`) without a core KMS link, with `tokenActivation` on (the note on token-based activation: isolated, high-security, PKI)',
    takes: (s) => (s.site.network === 'high-security' && s.ctx.tokenActivation ? all(s) : 0),
    rowFor: (s) => (below(s) ? 6 : 5),
  },
  {
    id: 'roaming',
    rows: [3],
    method: 'mak-independent',
    condition: 'roaming computers without a usable core link (each one is an isolated network of one)',
    takes: (s) => (s.site.network === 'roaming' ? all(s) : 0),
  },
  {
    id: 'isolated-threshold-met',
    rows: [5],
    method: 'kms-local',
    condition: 'an isolated site (no usable core link) whose machines of that kind reach the threshold',
    takes: (s) => (below(s) ? 0 : all(s)),
  },
  {
    id: 'disconnected-below-threshold',
    rows: [3],
    method: 'mak-independent',
    condition: 'below the threshold, and in contact with the core network less than once every 180 days',
    takes: (s) => (coreLinkOf(s.site).disconnected ? all(s) : 0),
  },
  {
    id: 'isolated-below-threshold-proxy',
    rows: [6],
    method: 'mak-proxy',
    condition: 'a lab or high-security network below the threshold: MAK by proxy through the console',
    takes: (s) => (s.site.network === 'lab' || s.site.network === 'high-security' ? all(s) : 0),
  },
  {
    id: 'isolated-below-threshold',
    rows: [6],
    method: 'mak-independent',
    condition: 'any other isolated site below the threshold',
    takes: all,
  },
];

export interface Allocation {
  readonly kind: MachineKind | 'any';
  readonly method: Method;
  readonly count: number;
  /** The row of Table 1 this recommendation comes from. */
  readonly row: number;
  /** The rule that decided (a RuleId, or `retail` / `oem` for the machines passed through). */
  readonly rule: RuleId | 'retail' | 'oem';
}

export type WarningCode =
  'below-threshold' | 'disconnected' | 'domain-contact' | 'lab-kms-count' | 'core-below-threshold';

export interface PlanWarning {
  readonly code: WarningCode;
  /** The site the warning is about; absent for the whole organisation. */
  readonly site?: string;
  readonly message: string;
}

export interface SiteRecommendation {
  readonly allocations: readonly Allocation[];
  readonly warnings: readonly PlanWarning[];
}

/**
 * The recommendation for one site: every machine of each kind given exactly one method by the
 * ordered rules, retail and OEM machines passed through (rows 8 and 9), and the site's warnings.
 * Pure: the same site and context give the same answer.
 */
export function recommendSite(site: Site, ctx: SiteContext): SiteRecommendation {
  const allocations: Allocation[] = [];
  const warnings: PlanWarning[] = [];
  const warn = (code: WarningCode, message: string): void => {
    const text = `${site.name}: ${message}`;
    if (!warnings.some((w) => w.message === text)) warnings.push({ code, site: site.name, message: text });
  };
  const link = coreLinkOf(site);

  if (link.contactDays !== undefined && link.contactDays > MAX_CONTACT_DAYS && !labUnactivated(site)) {
    warn(
      'disconnected',
      `reaches the core network every ${link.contactDays} days, more than the 180 days an activation is valid: no core KMS, no directory`,
    );
  }
  const domainContact = domainContactDaysOf(site);
  const joined = site.domainJoined + site.domainJoinedServers;
  if (
    joined > 0 &&
    ctx.directoryActivation &&
    !labUnactivated(site) &&
    (domainContact === undefined || domainContact > MAX_CONTACT_DAYS)
  ) {
    warn(
      'domain-contact',
      `${joined} domain members reach a domain controller ${domainContact === undefined ? 'never (set domainContactDays)' : `every ${domainContact} days (more than 180)`}: not directory-based`,
    );
  }

  for (const kind of MACHINE_KINDS) {
    let remaining = machinesOf(site, kind);
    for (const rule of RULES) {
      if (remaining === 0) break;
      const slice: Slice = { site, kind, ctx, remaining };
      const taken = Math.min(remaining, rule.takes(slice));
      if (taken <= 0) continue;
      const row = rule.rowFor?.(slice) ?? rule.rows[0];
      allocations.push({ kind, method: rule.method, count: taken, row, rule: rule.id });
      remaining -= taken;
      const threshold = thresholdOf(ctx.thresholds, kind);
      if (rule.method === 'mak-independent' || rule.method === 'mak-proxy') {
        if (rule.id !== 'roaming' && rule.id !== 'core-below-threshold') {
          warn(
            'below-threshold',
            `${taken} ${KIND_LABEL[kind]} machines without a usable core KMS link are below the KMS threshold (${threshold}): MAK`,
          );
        }
      }
      if (rule.id === 'roaming' && link.contactDays === undefined) {
        warn('disconnected', `${taken} ${KIND_LABEL[kind]} machines never reach the core network: MAK`);
      }
      if (site.network === 'lab' && (rule.method === 'kms-local' || rule.method === 'kms-core')) {
        warn(
          'lab-kms-count',
          'a lab on KMS: watch the host count as machines are rebuilt, and shorten the client-ID window (30 days) if turnover is high',
        );
      }
    }
  }
  if (site.retail > 0) allocations.push({ kind: 'any', method: 'retail', count: site.retail, row: 8, rule: 'retail' });
  if (site.oem > 0) allocations.push({ kind: 'any', method: 'oem', count: site.oem, row: 9, rule: 'oem' });
  return { allocations, warnings };
}
