import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { DEFAULT_THRESHOLD, KMS_DEFAULTS } from '@volact/core';
import { PlannerError } from './errors.js';

/**
 * Where a site sits, in the words of plan-for-volume-activation.txt ("Network and
 * connectivity"): the core network; a branch office or other semi-isolated segment; an
 * isolated network (for geography or connectivity); a network isolated for security (a
 * "high-security zone"); a test and development lab; roaming computers (a "network" of one).
 */
export const NETWORKS = ['core', 'branch', 'isolated', 'high-security', 'lab', 'roaming'] as const;
export type Network = (typeof NETWORKS)[number];

/** Bounds: an inventory is read once, at the edge, and nothing in it may be unbounded. */
export const INVENTORY_LIMITS = {
  maxBytes: 4 * 1024 * 1024,
  maxSites: 10_000,
  maxCount: 10_000_000,
  maxDays: 36_500,
  maxName: 100,
} as const;

const COUNT = 'expected a whole number ≥ 0';
const count = z
  .number({ error: COUNT })
  .int({ error: COUNT })
  .min(0, { error: COUNT })
  .max(INVENTORY_LIMITS.maxCount, { error: `expected at most ${INVENTORY_LIMITS.maxCount}` });
const DAYS = `expected a whole number of days from 1 to ${INVENTORY_LIMITS.maxDays}`;
const days = z
  .number({ error: DAYS })
  .int({ error: DAYS })
  .min(1, { error: DAYS })
  .max(INVENTORY_LIMITS.maxDays, { error: DAYS });
const THRESHOLD = 'expected a whole number from 1 to 1000000';
const threshold = z
  .number({ error: THRESHOLD })
  .int({ error: THRESHOLD })
  .min(1, { error: THRESHOLD })
  .max(1_000_000, { error: THRESHOLD });
const flag = z.boolean({ error: 'expected true or false' });

const siteSchema = z
  .object({
    name: z
      .string({ error: 'expected a name (text)' })
      .trim()
      .min(1, { error: 'expected a name (text)' })
      .max(INVENTORY_LIMITS.maxName, { error: `expected at most ${INVENTORY_LIMITS.maxName} characters` }),
    network: z.enum(NETWORKS, { error: `expected one of ${NETWORKS.join(', ')}` }),
    /** Volume-licensed machines running a client-OS-kind product (threshold 25). */
    computers: count,
    /** Volume-licensed machines running a server- or app-kind product (threshold 5). */
    servers: count.default(0),
    /** How many of `computers` are members of the directory domain. */
    domainJoined: count.default(0),
    /** How many of `servers` are members of the directory domain. */
    domainJoinedServers: count.default(0),
    /** How often the domain members reach a domain controller, directly or by VPN. */
    domainContactDays: days.optional(),
    /** Whether the site reaches the core network's KMS (TCP 1688), directly, by WAN or VPN. */
    coreKms: flag.optional(),
    /** How often the site's machines reach the core network. */
    contactDays: days.optional(),
    /** false: a lab whose machines are not activated (Table 1 row 7). */
    activate: flag.default(true),
    /** Machines with a retail licence (activated with their own retail key). */
    retail: count.default(0),
    /** Machines with an OEM licence (activated at the factory). */
    oem: count.default(0),
    notes: z.string({ error: 'expected text' }).max(500, { error: 'expected at most 500 characters' }).optional(),
  })
  .strict();

const inventorySchema = z
  .object({
    organisation: z
      .string({ error: 'expected text' })
      .max(200, { error: 'expected at most 200 characters' })
      .optional(),
    /** KMS activation thresholds by product kind (plan-for-volume-activation.txt: 25 and 5). */
    thresholds: z
      .object({
        clientOs: threshold.default(DEFAULT_THRESHOLD['client-os']),
        serverApp: threshold.default(DEFAULT_THRESHOLD.server),
      })
      .strict()
      .default({ clientOs: DEFAULT_THRESHOLD['client-os'], serverApp: DEFAULT_THRESHOLD.server }),
    /** MAK activations to ask for beyond the machines counted, in percent. */
    makSparePercent: z
      .number({ error: 'expected a percentage from 0 to 100' })
      .min(0, { error: 'expected a percentage from 0 to 100' })
      .max(100, { error: 'expected a percentage from 0 to 100' })
      .default(10),
    kmsHosts: z
      .object({
        /** "a minimum of two KMS hosts for failover purposes" (plan-for-volume-activation.txt). */
        minimum: z
          .number({ error: 'expected a whole number from 1 to 100' })
          .int({ error: 'expected a whole number from 1 to 100' })
          .min(1, { error: 'expected a whole number from 1 to 100' })
          .max(100, { error: 'expected a whole number from 1 to 100' })
          .default(2),
        /** Optional sizing: more hosts when one deployment has more clients than this. */
        clientsPerHost: z
          .number({ error: 'expected a whole number ≥ 1' })
          .int({ error: 'expected a whole number ≥ 1' })
          .min(1, { error: 'expected a whole number ≥ 1' })
          .max(INVENTORY_LIMITS.maxCount, { error: `expected at most ${INVENTORY_LIMITS.maxCount}` })
          .optional(),
      })
      .strict()
      .default({ minimum: 2 }),
    /** Hosts one KMS host key activates (the authority's host limit). */
    hostsPerKmsHostKey: z
      .number({ error: 'expected a whole number from 1 to 1000' })
      .int({ error: 'expected a whole number from 1 to 1000' })
      .min(1, { error: 'expected a whole number from 1 to 1000' })
      .max(1000, { error: 'expected a whole number from 1 to 1000' })
      .default(KMS_DEFAULTS.hostLimit),
    /** Whether directory-based activation is in use (published activation objects). */
    directoryActivation: flag.default(true),
    /** Whether token-based activation is offered to high-security networks. */
    tokenActivation: flag.default(true),
    sites: z
      .array(siteSchema, { error: 'expected a list of sites' })
      .min(1, { error: 'expected at least one site' })
      .max(INVENTORY_LIMITS.maxSites, { error: `expected at most ${INVENTORY_LIMITS.maxSites} sites` }),
  })
  .strict()
  .superRefine((inv, ctx) => {
    const seen = new Map<string, number>();
    inv.sites.forEach((site, i) => {
      const key = site.name.toLowerCase();
      const first = seen.get(key);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['sites', i, 'name'], message: `same name as sites[${first}]` });
      } else seen.set(key, i);
      if (site.domainJoined > site.computers) {
        ctx.addIssue({
          code: 'custom',
          path: ['sites', i, 'domainJoined'],
          message: `${site.domainJoined} is more than the site's ${site.computers} computers`,
        });
      }
      if (site.domainJoinedServers > site.servers) {
        ctx.addIssue({
          code: 'custom',
          path: ['sites', i, 'domainJoinedServers'],
          message: `${site.domainJoinedServers} is more than the site's ${site.servers} servers`,
        });
      }
      if (!site.activate && site.network !== 'lab') {
        ctx.addIssue({
          code: 'custom',
          path: ['sites', i, 'activate'],
          message: 'only a lab (network: lab) may be left unactivated',
        });
      }
      if (site.network === 'core' && site.coreKms === false) {
        ctx.addIssue({
          code: 'custom',
          path: ['sites', i, 'coreKms'],
          message: 'a core-network site reaches the core KMS (use network: isolated or branch)',
        });
      }
    });
  });

export type InventoryInput = z.input<typeof inventorySchema>;
export type Inventory = z.output<typeof inventorySchema>;
export type Site = Inventory['sites'][number];

/** "sites[2].computers" from zod's path. */
function pathText(path: readonly PropertyKey[]): string {
  let text = '';
  for (const part of path) {
    if (typeof part === 'number') text += `[${part}]`;
    else text += text === '' ? String(part) : `.${String(part)}`;
  }
  return text === '' ? 'inventory' : text;
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const part of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

/** The site a path points into, for the message: (site "Leeds"). */
function siteOf(data: unknown, path: readonly PropertyKey[]): string {
  if (path[0] !== 'sites' || typeof path[1] !== 'number') return '';
  const name = valueAt(data, ['sites', path[1], 'name']);
  return typeof name === 'string' && name.trim() !== '' ? ` (site "${name.trim().slice(0, 100)}")` : '';
}

/**
 * Checks an inventory (already parsed from YAML or JSON) once, at the edge, and returns it
 * typed, with every default filled in, and frozen. Every fault is named by its path:
 * "sites[2].computers: expected a whole number ≥ 0 (site "Leeds")".
 */
export function parseInventory(data: unknown, source = 'inventory'): Inventory {
  const result = inventorySchema.safeParse(data);
  if (!result.success) {
    const lines = result.error.issues.slice(0, 10).map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        const where = pathText(issue.path);
        const fields = issue.keys.map((k) => `"${k}"`).join(', ');
        return `${where}: unknown field${issue.keys.length > 1 ? 's' : ''} ${fields}${siteOf(data, issue.path)}`;
      }
      const missing = issue.code === 'invalid_type' && valueAt(data, issue.path) === undefined;
      return `${pathText(issue.path)}: ${missing ? `missing (${issue.message})` : issue.message}${siteOf(data, issue.path)}`;
    });
    const more = result.error.issues.length > 10 ? ` (and ${result.error.issues.length - 10} more)` : '';
    throw new PlannerError('INVENTORY_INVALID', `${source}: ${lines.join('; ')}${more}`);
  }
  return deepFreeze(result.data);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export type InventoryFormat = 'yaml' | 'json';

/** JSON when the text starts with `{` (after white space), else YAML (of which JSON is a subset). */
export function sniffFormat(text: string): InventoryFormat {
  return /^\s*\{/.test(text) ? 'json' : 'yaml';
}

/** Parses inventory text (YAML or JSON, sniffed when not given) and checks it. */
export function parseInventoryText(
  text: string,
  format: InventoryFormat = sniffFormat(text),
  source = 'inventory',
): Inventory {
  if (Buffer.byteLength(text) > INVENTORY_LIMITS.maxBytes) {
    throw new PlannerError('INVENTORY_UNREADABLE', `${source} is larger than ${INVENTORY_LIMITS.maxBytes} bytes`);
  }
  let data: unknown;
  if (format === 'json') {
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new PlannerError('INVENTORY_SYNTAX', `${source} is not JSON: ${(err as Error).message}`);
    }
  } else {
    // YAML 1.2 core schema; duplicate keys are an error; aliases bounded (no "billion laughs").
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
    const first = doc.errors[0];
    if (first !== undefined) {
      throw new PlannerError('INVENTORY_SYNTAX', `${source} is not YAML: ${first.message.split('\n')[0] ?? ''}`);
    }
    try {
      data = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      throw new PlannerError('INVENTORY_SYNTAX', `${source} is not usable YAML: ${(err as Error).message}`);
    }
  }
  return parseInventory(data, source);
}

/** Reads an inventory file: .json as JSON, .yaml/.yml as YAML, anything else sniffed. */
export function loadInventory(file: string): Inventory {
  let text: string;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
    if (stat.size > INVENTORY_LIMITS.maxBytes) {
      throw new PlannerError('INVENTORY_UNREADABLE', `${file} is larger than ${INVENTORY_LIMITS.maxBytes} bytes`);
    }
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof PlannerError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new PlannerError('INVENTORY_UNREADABLE', `${file} cannot be read (${code})`);
  }
  const ext = extname(file).toLowerCase();
  const format: InventoryFormat =
    ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : sniffFormat(text);
  return parseInventoryText(text, format, file);
}
