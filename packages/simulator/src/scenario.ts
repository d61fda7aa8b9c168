import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SimulatorError } from './errors.js';

const MAX_DAYS = 3650;
const MAX_CLIENTS = 1_000_000;
/** More hosts than this is not a fleet the reference plans for (a host key activates 6 by default). */
const MAX_HOSTS = 64;
const MAX_FILE_BYTES = 1 << 20;

const day = z.number().int().min(0).max(MAX_DAYS);
const span = z.number().int().min(1).max(MAX_DAYS);

export const scenarioSchema = z
  .object({
    /** Length of the run, in days. */
    days: z.number().int().min(1).max(MAX_DAYS).default(365),
    /** Seed of every random draw (client IDs, nonces, DNS orders, re-imaged machines). */
    seed: z.number().int().min(0).max(0xffffffff).default(1),
    /** The product group's activation threshold (reference: 5 for apps and servers, 25 for client OSes). */
    threshold: z.number().int().min(1).max(1_000_000).default(5),
    clients: z
      .object({
        count: z.number().int().min(1).max(MAX_CLIENTS).default(1000),
        /** Clients join one after another, evenly over this many days (0: all at the start). */
        joinOverDays: z.number().int().min(0).max(MAX_DAYS).default(30),
      })
      .strict()
      .default({ count: 1000, joinOverDays: 30 }),
    hosts: z
      .object({ count: z.number().int().min(1).max(MAX_HOSTS).default(2) })
      .strict()
      .default({ count: 2 }),
    /** Host caching on the clients (the reference's default: on). */
    caching: z.boolean().default(true),
    /** Host N (1-based) does not answer from the start of day `fromDay`, for `days` days. */
    outages: z
      .array(z.object({ host: z.number().int().min(1), fromDay: day, days: span }).strict())
      .max(1000)
      .default([]),
    /** DNS does not answer SRV look-ups from the start of `fromDay`, for `days` days. */
    dnsOutages: z
      .array(z.object({ fromDay: day, days: span }).strict())
      .max(1000)
      .default([]),
    /** On `day`, `count` machines that have joined are re-imaged: a new client ID, a fresh licence store. */
    reimages: z
      .array(z.object({ day, count: z.number().int().min(1).max(MAX_CLIENTS) }).strict())
      .max(1000)
      .default([]),
    /** The first `clients` machines install a MAK instead of the GVLK; the MAK activates `limit` installations. */
    mak: z
      .object({ clients: z.number().int().min(0).max(MAX_CLIENTS), limit: z.number().int().min(1).max(MAX_CLIENTS) })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    s.outages.forEach((o, i) => {
      if (o.host > s.hosts.count)
        ctx.addIssue({
          code: 'custom',
          path: ['outages', i, 'host'],
          message: `there are ${s.hosts.count} host(s); hosts are numbered from 1`,
        });
    });
    const inRun = (path: (string | number)[], d: number) => {
      if (d >= s.days) ctx.addIssue({ code: 'custom', path, message: `day ${d} is after the run (${s.days} days)` });
    };
    s.outages.forEach((o, i) => inRun(['outages', i, 'fromDay'], o.fromDay));
    s.dnsOutages.forEach((o, i) => inRun(['dnsOutages', i, 'fromDay'], o.fromDay));
    s.reimages.forEach((r, i) => {
      inRun(['reimages', i, 'day'], r.day);
      if (r.count > s.clients.count)
        ctx.addIssue({
          code: 'custom',
          path: ['reimages', i, 'count'],
          message: `more machines than the ${s.clients.count} clients`,
        });
    });
    if (s.clients.joinOverDays > s.days)
      ctx.addIssue({
        code: 'custom',
        path: ['clients', 'joinOverDays'],
        message: `longer than the run (${s.days} days)`,
      });
    if (s.mak && s.mak.clients > s.clients.count)
      ctx.addIssue({
        code: 'custom',
        path: ['mak', 'clients'],
        message: `more MAK clients than the ${s.clients.count} clients`,
      });
  });

export type Scenario = z.infer<typeof scenarioSchema>;
export type ScenarioInput = z.input<typeof scenarioSchema>;

/** Validates a scenario (an object read from YAML or JSON); defaults fill what it leaves out. */
export function parseScenario(value: unknown): Scenario {
  const input: unknown = isRecord(value) ? { ...value } : (value ?? {});
  // Clients join over 30 days by default, or over the whole run when it is shorter.
  if (isRecord(input) && typeof input.days === 'number' && input.days < 30) {
    const clients = input.clients === undefined ? {} : input.clients;
    if (isRecord(clients) && clients.joinOverDays === undefined)
      Object.assign(input, { clients: { ...clients, joinOverDays: input.days } });
  }
  const result = scenarioSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.join('.') || '(top level)';
    throw new SimulatorError('SCENARIO_INVALID', `scenario: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  return Object.freeze(result.data);
}

/**
 * The default scenario: 1 000 clients joining over 30 days, 2 hosts, host 1 down on days
 * 100–109 (back on day 110), 365 days.
 */
export function defaultScenario(): Scenario {
  return parseScenario({ outages: [{ host: 1, fromDay: 100, days: 10 }] });
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads a scenario file: YAML (a superset of JSON), at most 1 MiB. */
export function loadScenario(path: string): Scenario {
  let text: string;
  try {
    const bytes = readFileSync(path);
    if (bytes.length > MAX_FILE_BYTES)
      throw new SimulatorError('SCENARIO_UNREADABLE', `${path}: larger than ${MAX_FILE_BYTES} bytes`);
    text = bytes.toString('utf8');
  } catch (err) {
    if (err instanceof SimulatorError) throw err;
    throw new SimulatorError('SCENARIO_UNREADABLE', `${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new SimulatorError(
      'SCENARIO_UNREADABLE',
      `${path}: not YAML or JSON: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  try {
    return parseScenario(value);
  } catch (err) {
    if (err instanceof SimulatorError) throw new SimulatorError(err.code, `${path}: ${err.message}`);
    throw err;
  }
}
