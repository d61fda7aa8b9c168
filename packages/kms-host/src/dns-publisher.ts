import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  CoreError,
  HOUR,
  MINUTE,
  querySrv,
  sendUpdate,
  systemClock,
  type Clock,
  type DnsRecord,
  type TsigKey,
} from '@volact/core';

/** One domain the host publishes in, with its SRV priority and weight (DnsDomainPublishList). */
export interface PublishDomain {
  readonly domain: string;
  readonly priority: number;
  readonly weight: number;
}

export interface DnsPublishConfig {
  readonly server: { host: string; port: number };
  readonly key: TsigKey;
  readonly domains: readonly PublishDomain[];
  /** The SRV service label, `_vlmcs._tcp` by default. */
  readonly service: string;
  /** This host's name in each domain: the SRV target is `<hostName>.<domain>`. */
  readonly hostName: string;
  /** The address its A/AAAA record carries. */
  readonly address: string;
  /** The KMS port the SRV record announces. */
  readonly port: number;
  readonly ttl: number;
  /** How often the records are published again (the reference: every 24 hours). */
  readonly refreshMs: number;
  /**
   * How often the host looks its SRV record up on the server (one query) and publishes again
   * when it is missing: a DNS server rebuilt without its journal forgets dynamic records, and
   * 24 hours is long to wait (default 5 minutes; 0 turns the check off).
   */
  readonly checkMs?: number;
  readonly timeoutMs?: number;
}

const STATUS_FILE = 'dns-publication.json';

/**
 * The publisher's timers (refresh, check), injected so tests fire a 5-minute check or a
 * 24-hour refresh at once. The default is node's, unref'd (they never keep a process alive).
 */
export interface Timers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const systemTimers: Timers = {
  set: (callback, ms) => setTimeout(callback, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

const entrySchema = z.object({
  domain: z.string(),
  srv: z.string(),
  target: z.string(),
  address: z.string(),
  priority: z.number(),
  weight: z.number(),
  port: z.number(),
  publishedAt: z.string().nullable(),
  removedAt: z.string().nullable(),
  lastError: z.object({ at: z.string(), code: z.string(), message: z.string() }).nullable(),
  /** The last look-up of the SRV record: found, missing (then published again), or failed. */
  lastCheck: z
    .object({ at: z.string(), result: z.enum(['present', 'missing', 'failed']), detail: z.string().nullable() })
    .nullable()
    .default(null),
});
const statusSchema = z.object({
  domains: z.array(entrySchema),
  /** Records an earlier configuration published that are not yet confirmed deleted. */
  stale: z.array(entrySchema).default([]),
});
export type DnsPublicationStatus = z.infer<typeof statusSchema>;

/** What was published and when, as the running host last wrote it (for `host status`). */
export function readDnsPublicationStatus(dataDir: string): DnsPublicationStatus | undefined {
  try {
    const parsed = statusSchema.safeParse(JSON.parse(readFileSync(join(dataDir, STATUS_FILE), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

type Entry = DnsPublicationStatus['domains'][number];

/**
 * Publishes the host in DNS by RFC 2136 updates signed with TSIG: an SRV record
 * `<service>.<domain>` → `<hostName>.<domain>:<port>` and that name's A/AAAA record, per
 * domain. Other hosts' SRV records under the same name are never touched: only this host's
 * own record is deleted (by its exact data) before the current one is added. DNS being down
 * never stops the host: failures are recorded and retried every 5 minutes.
 */
export class DnsPublisher {
  readonly #config: DnsPublishConfig;
  readonly #dataDir: string;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #timers: Timers;
  #timer: unknown;
  #checkTimer: unknown;
  #entries: Entry[];
  #stale: Entry[];
  #stopped = false;
  #running: Promise<void> = Promise.resolve();

  constructor(
    config: DnsPublishConfig,
    dataDir: string,
    options: { clock?: Clock; logger?: Logger; timers?: Timers } = {},
  ) {
    this.#timers = options.timers ?? systemTimers;
    this.#config = config;
    this.#dataDir = dataDir;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    const previous = readDnsPublicationStatus(dataDir);
    this.#entries = config.domains.map((d) => {
      const target = `${config.hostName}.${d.domain}`;
      return {
        domain: d.domain,
        srv: `${config.service}.${d.domain}`,
        target,
        address: config.address,
        priority: d.priority,
        weight: d.weight,
        port: config.port,
        publishedAt: null,
        removedAt: null,
        lastError: null,
        lastCheck: null,
      };
    });
    // Records an earlier run published and did not remove (a crash, a changed port, address,
    // priority or domain): kept until deleted by their exact data, so nothing stale survives.
    const published = [...(previous?.stale ?? []), ...(previous?.domains ?? [])].filter(
      (p) => p.publishedAt !== null && p.removedAt === null,
    );
    this.#stale = published.filter((p) => !this.#entries.some((e) => sameRecord(p, e)));
  }

  get status(): DnsPublicationStatus {
    return { domains: this.#entries.map((e) => ({ ...e })), stale: this.#stale.map((e) => ({ ...e })) };
  }

  /** Publishes now, then every refresh interval (every 5 minutes while a domain fails). */
  start(): Promise<void> {
    const cycle = async () => {
      await this.publishNow();
      if (this.#stopped) return; // stopped while publishing: no new timer
      const failing = this.#entries.some((e) => e.lastError !== null) || this.#stale.length > 0;
      this.#timer = this.#timers.set(
        () => void cycle().catch((err: unknown) => this.#logger?.error({ err }, 'DNS publication cycle failed')),
        failing ? Math.min(5 * MINUTE, this.#config.refreshMs) : this.#config.refreshMs,
      );
    };
    const checkMs = this.#config.checkMs ?? DNS_PUBLISH_DEFAULTS.checkMs;
    const check = () => {
      this.#checkTimer = this.#timers.set(() => {
        void this.checkNow()
          .catch((err: unknown) => this.#logger?.error({ err }, 'DNS check failed'))
          .finally(() => {
            if (!this.#stopped) check();
          });
      }, checkMs);
    };
    if (checkMs > 0) check();
    return cycle();
  }

  /**
   * Looks up each published SRV record on the server and publishes again where this host's
   * record is missing. A failed look-up changes nothing (it is recorded; the next check tries).
   */
  checkNow(): Promise<void> {
    // After a run that failed, the next still runs: the chain only orders them.
    this.#running = this.#running.catch(() => undefined).then(() => (this.#stopped ? undefined : this.#checkAll()));
    return this.#running;
  }

  async #checkAll(): Promise<void> {
    let missing = false;
    for (const entry of this.#entries) {
      // Failing domains are retried every 5 minutes anyway; removed ones are meant to be absent.
      if (entry.publishedAt === null || entry.removedAt !== null || entry.lastError !== null) continue;
      const at = new Date(this.#clock.now()).toISOString();
      try {
        const records = await querySrv(this.#config.server, entry.srv, {
          timeoutMs: this.#config.timeoutMs ?? 3_000,
        });
        const found = records.some(
          (r) =>
            sameName(r.target, entry.target) &&
            r.port === entry.port &&
            r.priority === entry.priority &&
            r.weight === entry.weight,
        );
        entry.lastCheck = { at, result: found ? 'present' : 'missing', detail: null };
        if (!found) {
          missing = true;
          this.#logger?.warn(
            { domain: entry.domain, srv: entry.srv, target: entry.target, server: this.#config.server },
            'DNS record of this host missing on the server (zone reloaded without its journal?): publishing again',
          );
        }
      } catch (err) {
        if (!(err instanceof CoreError)) throw err;
        entry.lastCheck = { at, result: 'failed', detail: `${err.code}: ${err.message}` };
        this.#logger?.warn({ domain: entry.domain, code: err.code, err: err.message }, 'DNS check failed');
      }
    }
    if (missing) await this.#publishAll();
    else this.#save();
  }

  publishNow(): Promise<void> {
    this.#running = this.#running.catch(() => undefined).then(() => (this.#stopped ? undefined : this.#publishAll()));
    return this.#running;
  }

  /** This host's own records, deleted by their data: another host's under the same names stay. */
  #ownRecords(e: Entry): DnsRecord[] {
    return [srvRecord(e, this.#config.ttl), addressRecord(e, this.#config.ttl)];
  }

  async #publishAll(): Promise<void> {
    for (const entry of this.#entries) {
      const stale = this.#stale.filter((p) => p.domain === entry.domain);
      const update = {
        zone: entry.domain,
        deleteRecords: [...stale, entry].flatMap((e) => this.#ownRecords(e)),
        add: this.#ownRecords(entry),
      };
      if (await this.#apply(entry, update, 'published')) this.#stale = this.#stale.filter((p) => !stale.includes(p));
    }
    // Domains no longer published in: their records go too.
    for (const domain of new Set(this.#stale.map((p) => p.domain))) {
      const stale = this.#stale.filter((p) => p.domain === domain);
      const probe = { ...(stale[0] as Entry) };
      const update = { zone: domain, deleteRecords: stale.flatMap((e) => this.#ownRecords(e)), add: [] };
      if (await this.#apply(probe, update, 'removed')) this.#stale = this.#stale.filter((p) => !stale.includes(p));
    }
    this.#save();
  }

  /** Stops refreshing; removes this host's records (a clean stop) unless told not to. */
  async stop(options: { removeRecords?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    this.#timers.clear(this.#timer);
    this.#timers.clear(this.#checkTimer);
    await this.#running.catch(() => undefined);
    if (options.removeRecords === false) return;
    for (const entry of this.#entries) {
      if (entry.publishedAt === null) continue;
      await this.#apply(entry, { zone: entry.domain, deleteRecords: this.#ownRecords(entry), add: [] }, 'removed');
    }
    this.#save();
  }

  async #apply(
    entry: Entry,
    update: Parameters<typeof sendUpdate>[1],
    outcome: 'published' | 'removed',
  ): Promise<boolean> {
    const at = new Date(this.#clock.now()).toISOString();
    try {
      // TSIG signs with the wall clock, never the injected one: the server checks it against its own.
      await sendUpdate(this.#config.server, update, this.#config.key, { timeoutMs: this.#config.timeoutMs ?? 3_000 });
      if (outcome === 'published') Object.assign(entry, { publishedAt: at, removedAt: null, lastError: null });
      else Object.assign(entry, { removedAt: at, lastError: null });
      this.#logger?.info(
        { domain: entry.domain, srv: entry.srv, target: entry.target, outcome },
        `DNS records ${outcome}`,
      );
      return true;
    } catch (err) {
      if (!(err instanceof CoreError)) throw err;
      entry.lastError = { at, code: err.code, message: err.message };
      this.#logger?.warn({ domain: entry.domain, code: err.code, err: err.message }, `DNS records not ${outcome}`);
      return false;
    }
  }

  #save(): void {
    const path = join(this.#dataDir, STATUS_FILE);
    try {
      writeFileSync(`${path}.tmp`, JSON.stringify(this.status, null, 2), { mode: 0o600 });
      renameSync(`${path}.tmp`, path);
    } catch (err) {
      this.#logger?.warn({ err }, 'could not write the DNS publication status');
    }
  }
}

function sameName(a: string, b: string): boolean {
  return a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();
}

function sameRecord(a: Entry, b: Entry): boolean {
  return (
    a.domain === b.domain &&
    a.target === b.target &&
    a.address === b.address &&
    a.priority === b.priority &&
    a.weight === b.weight &&
    a.port === b.port
  );
}

function srvRecord(e: Entry, ttl: number): DnsRecord {
  return { type: 'SRV', name: e.srv, ttl, priority: e.priority, weight: e.weight, port: e.port, target: e.target };
}

function addressRecord(e: Entry, ttl: number): DnsRecord {
  return { type: isIPv6(e.address) ? 'AAAA' : 'A', name: e.target, ttl, address: e.address };
}

export const DNS_PUBLISH_DEFAULTS = {
  service: '_vlmcs._tcp',
  ttl: 300,
  refreshMs: 24 * HOUR,
  checkMs: 5 * MINUTE,
} as const;
