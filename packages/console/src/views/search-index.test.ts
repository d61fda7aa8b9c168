import pg from 'pg';
import { startTestPostgres, type TestPostgres } from '@volact/authority/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateFleet } from '../generate-fleet.js';
import { PostgresConsoleStore } from '../postgres-store.js';
import * as sql from './sql.js';

/**
 * PostgreSQL's text search index (pg_trgm's GIN index on `search_text`): built when the console's
 * role can create the extension; a role that cannot still opens its store and searches (a scan),
 * with the same answers; the index is built at the next open once an administrator has created
 * the extension.
 */
let postgres: TestPostgres;
const opened: PostgresConsoleStore[] = [];
const clients: pg.Client[] = [];
const NOW = Date.parse('2026-12-01T00:00:00.000Z');
const COUNT = 700;
/** Searches of every length (1–2 characters: no trigram), cases, LIKE wildcards, separators, non-ASCII, no match. */
const SEARCHES = [
  'ubuntu',
  'UBUNTU',
  'pc-0004',
  'host-00012',
  'corp.example',
  '10.0.0.1',
  '10.0.0.1:7070',
  'Windows 10',
  'u',
  'ub',
  '7',
  '…',
  '…a',
  '%',
  '_',
  'host_0',
  '\\',
  'é',
  'no-such-machine',
];

beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  for (const c of clients.splice(0)) await c.end();
});
afterAll(() => postgres?.stop());

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, options: '-c search_path=volact_console' });
  await client.connect();
  clients.push(client);
  return client;
}
async function open(url: string): Promise<PostgresConsoleStore> {
  const store = await PostgresConsoleStore.open(url);
  opened.push(store);
  return store;
}
const indexOf = async (admin: pg.Client) =>
  (await admin.query<{ def: string | null }>("SELECT pg_get_indexdef(to_regclass('machines_search_trgm')) AS def"))
    .rows[0]?.def ?? null;

/** Every search's total, ids and first page, as the machines table and the CLI read them. */
async function answers(store: PostgresConsoleStore) {
  const out: Record<string, unknown> = {};
  for (const q of SEARCHES) {
    const page = await store.views.pageMachines({ offset: 0, limit: 40, sort: 'name', dir: 'asc', q });
    const byExpiry = await store.views.pageMachines({ offset: 5, limit: 40, sort: 'expiresAt', dir: 'desc', q });
    out[q] = {
      total: page.total,
      page: page.machines.map((v) => v.machine.id),
      byExpiry: byExpiry.machines.map((v) => v.machine.id),
      ids: await store.views.machineIds({ q }),
    };
  }
  return out;
}

describe('PostgreSQL text search index (pg_trgm)', () => {
  it('built where pg_trgm can be created, not needed where it cannot: the same answers; built at the next open once an administrator adds pg_trgm', async () => {
    // A console whose role may create the (trusted) extension: the index is there.
    const ownerUrl = await postgres.createDatabase();
    const withIndex = await open(ownerUrl);
    const owner = await connect(ownerUrl);
    expect(await indexOf(owner)).toMatch(/USING gin \(search_text \S*gin_trgm_ops\)/);

    // A least-privilege role: it owns the schema an administrator made for it, and has no CREATE
    // on the database, so it can create no extension. Its store opens and migrates all the same.
    const lowUrl = await postgres.createDatabase();
    const dbName = new URL(lowUrl).pathname.slice(1);
    const admin = await connect(lowUrl);
    await admin.query(`REVOKE CREATE ON DATABASE ${dbName} FROM PUBLIC`);
    await admin.query('CREATE ROLE console_low LOGIN');
    await admin.query('CREATE SCHEMA volact_console AUTHORIZATION console_low');
    const roleUrl = new URL(lowUrl);
    roleUrl.username = 'console_low';
    let withoutIndex = await open(roleUrl.toString());
    expect(await indexOf(admin)).toBeNull();
    expect((await admin.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).rows).toEqual([]);

    await generateFleet(withIndex, COUNT, { now: NOW });
    await generateFleet(withoutIndex, COUNT, { now: NOW });
    // The bulk load rebuilt the index (dropped before the rows, made again after).
    expect(await indexOf(owner)).not.toBeNull();
    const expected = await answers(withIndex);
    expect(await answers(withoutIndex)).toEqual(expected);
    // The fleet has matches: the comparison is not of empty answers.
    expect((expected['ubuntu'] as { total: number }).total).toBeGreaterThan(50);
    expect((expected['ub'] as { total: number }).total).toBe((expected['ubuntu'] as { total: number }).total);
    expect((expected['%'] as { total: number }).total).toBe(0);

    // The planner can read the index for a search of 3 characters or more (this small table is
    // cheaper to scan, so scans are priced out here; at 100 000 machines it picks the index itself).
    await owner.query('SET enable_seqscan = off');
    for (const q of ['ubuntu', 'pc-0004']) {
      const p = new sql.Params({ engine: 'postgres' });
      const where = sql.machineWhere(p, { q });
      const plan = await owner.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT count(*) FROM machines m ${where}`,
        p.values,
      );
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n'), q).toContain('machines_search_trgm');
    }

    // An administrator adds the extension (in public); the console's next open builds the index.
    await withoutIndex.close();
    await admin.query('CREATE EXTENSION pg_trgm SCHEMA public');
    withoutIndex = await open(roleUrl.toString());
    expect(await indexOf(admin)).toMatch(/USING gin \(search_text public\.gin_trgm_ops\)/);
    expect(await answers(withoutIndex)).toEqual(expected);
  }, 180_000);
});
