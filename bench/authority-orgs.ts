/**
 * The organisation key-listing scenario of `npm run bench:authority` (issue 14: "listing keys of
 * an organisation with 100 000 keys, p99 < 50 ms per page of 100"). One organisation gets
 * 100 000 keys (a third each MAK, KMS host, retail; one in five revoked; two product groups; a
 * note on one in ten), written in bulk through the store (OrganisationStore.addKeys), beside a
 * second organisation's 2 000; then pages of 100 are read through Authority#organisations.listKeys
 * as the REST API and the CLI read them: every page of the whole set, and up to 200 pages of each
 * filter. Each page's time is measured; the pages must cover each key exactly once (`exact`).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Authority, CLI_PRINCIPAL, type KeyListQuery } from '@volact/authority';
import { PostgresAuthorityStore, SqliteAuthorityStore } from '@volact/authority/testing';
import { randomGuid, type KeyType } from '@volact/core';
import { percentiles } from './load.js';

type Line = Record<string, string | number | boolean | null | undefined>;

/** The target: p99 per page of 100. */
export const ORG_LIST_TARGET_P99_MS = 50;

const TYPES: KeyType[] = ['mak', 'kms-host', 'retail'];

interface Loaded {
  readonly orgId: string;
  readonly expected: Map<string, number>;
}

/** 100 000 keys of one organisation (+ 2 000 of another), in bulk through the store. */
async function load(dataDir: string, databaseUrl: string | undefined, keys: number): Promise<Loaded> {
  const a = Authority.init(dataDir, databaseUrl ? { databaseUrl } : {});
  let orgId: string;
  let groups: string[];
  try {
    groups = [
      (await a.addGroup({ name: 'office', threshold: 5 })).id,
      (await a.addGroup({ name: 'windows', kind: 'client-os' })).id,
    ];
    orgId = (await a.organisations.create({ name: 'Big customer', externalRef: 'EA-100000' }, CLI_PRINCIPAL)).id;
    await a.organisations.create({ name: 'Small customer' }, CLI_PRINCIPAL);
  } finally {
    await a.close();
  }
  const other =
    (await reopen(dataDir, databaseUrl, async (o) => (await o.organisations.list({ q: 'Small' })).items[0]?.id)) ??
    'org_default';
  const store = databaseUrl
    ? new PostgresAuthorityStore(databaseUrl)
    : new SqliteAuthorityStore(join(dataDir, 'authority.db'));
  const expected = new Map<string, number>([
    ['all', 0],
    ['mak', 0],
    ['revoked', 0],
    ['windows', 0],
    ['note', 0],
  ]);
  const bump = (k: string) => expected.set(k, (expected.get(k) ?? 0) + 1);
  try {
    const t0 = Date.UTC(2026, 0, 1);
    const batch = 10_000;
    for (let start = 0; start < keys + 2000; start += batch) {
      const records = [];
      for (let i = start; i < Math.min(start + batch, keys + 2000); i++) {
        const mine = i < keys;
        const type = TYPES[i % 3] as KeyType;
        const revoked = i % 5 === 0;
        const group = groups[i % 4 === 0 ? 1 : 0] as string;
        const note = i % 10 === 0 ? `site ${i} order ${1000 + (i % 97)}` : null;
        if (mine) {
          bump('all');
          if (type === 'mak') bump('mak');
          if (revoked) bump('revoked');
          if (group === groups[1]) bump('windows');
          if (note?.includes('order 1042')) bump('note');
        }
        records.push({
          id: randomGuid(),
          keyHash: randomBytes(32).toString('hex'),
          type,
          last5: `…${randomBytes(4).toString('hex').slice(0, 5).toUpperCase()}`,
          groupIds: [group],
          limit: type === 'retail' ? 1 : 100,
          activationsPerHost: type === 'kms-host' ? 10 : null,
          // Several keys a second: ties on the time are broken by the id.
          createdAt: t0 + Math.floor(i / 3) * 1000,
          revokedAt: revoked ? t0 + i * 1000 + 1 : null,
          keyRef: randomBytes(8).toString('hex'),
          proofKeySealed: null,
          used: 0,
          orgId: mine ? orgId : other,
          note,
        });
      }
      await store.organisations.addKeys(records);
    }
  } finally {
    await store.close();
  }
  return { orgId, expected };
}

async function reopen<T>(
  dataDir: string,
  databaseUrl: string | undefined,
  work: (a: Authority) => Promise<T>,
): Promise<T> {
  const a = Authority.open(dataDir, databaseUrl ? { databaseUrl } : {});
  try {
    return await work(a);
  } finally {
    await a.close();
  }
}

/** Lines, one per filter: pages read, p50/p99 ms per page, whether they covered each key once. */
export async function orgListingScenario(
  store: 'sqlite' | 'postgres',
  dir: string,
  databaseUrl: string | undefined,
  keys = 100_000,
  progress: (text: string) => void = () => undefined,
): Promise<Line[]> {
  const dataDir = join(dir, `orgs-${store}`);
  mkdirSync(dir, { recursive: true });
  progress(`organisation listing, ${store}: loading ${keys} keys… `);
  const loadStart = performance.now();
  const { orgId, expected } = await load(dataDir, databaseUrl, keys);
  progress(`${((performance.now() - loadStart) / 1000).toFixed(1)} s; paging… `);
  const filters: [string, Omit<KeyListQuery, 'cursor' | 'limit'>, number][] = [
    ['all', { orgId }, Number.POSITIVE_INFINITY],
    ['mak', { orgId, type: 'mak' }, 200],
    ['revoked', { orgId, revoked: true }, 200],
    ['windows', { orgId, group: 'windows' }, 200],
    ['note', { orgId, q: 'order 1042' }, 200],
  ];
  const lines: Line[] = [];
  await reopen(dataDir, databaseUrl, async (a) => {
    await a.organisations.listKeys({ orgId, limit: 100 }); // warm: statements prepared, caches filled
    for (const [name, filter, maxPages] of filters) {
      const times: number[] = [];
      const seen = new Set<string>();
      let rows = 0;
      let cursor: string | undefined;
      do {
        const t = performance.now();
        const page = await a.organisations.listKeys({ ...filter, limit: 100, ...(cursor ? { cursor } : {}) });
        times.push(performance.now() - t);
        rows += page.items.length;
        for (const k of page.items) seen.add(k.keyId);
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined && times.length < maxPages);
      const [p50, p99, max] = percentiles(Float64Array.from(times), [50, 99, 100]);
      const whole = cursor === undefined;
      lines.push({
        scenario: 'org-keys',
        store,
        keys,
        filter: name,
        pages: times.length,
        rows,
        p50Ms: Number((p50 as number).toFixed(2)),
        p99Ms: Number((p99 as number).toFixed(2)),
        maxMs: Number((max as number).toFixed(2)),
        // Every key once (and, when paged to the end, every key of the filter).
        exact: seen.size === rows && (!whole || rows === expected.get(name)),
        met: (p99 as number) < ORG_LIST_TARGET_P99_MS,
      });
    }
  });
  progress('done\n');
  return lines;
}
