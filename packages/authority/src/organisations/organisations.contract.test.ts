import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import pg from 'pg';
import { randomGuid, type KeyType } from '@volact/core';
import { PostgresAuthorityStore } from '../postgres-store.js';
import { SqliteAuthorityStore } from '../sqlite-store.js';
import { startTestPostgres, type TestPostgres } from '../postgres-test-server.js';
import type { AuthorityStore, KeyRecord } from '../store.js';
import type { After, KeyFilter, KeySummaryRecord } from './store.js';

/** The organisations store on both engines: keyset pages, filters, the default organisation. */
let postgres: TestPostgres;
const dirs: string[] = [];
const stores: AuthorityStore[] = [];

beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});
afterAll(() => {
  postgres?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const engines: [string, () => Promise<AuthorityStore>][] = [
  [
    'sqlite',
    async () => {
      const d = mkdtempSync(join(tmpdir(), 'volact-orgs-'));
      dirs.push(d);
      return new SqliteAuthorityStore(join(d, 'authority.db'));
    },
  ],
  [
    'postgres',
    async () => {
      lastPgUrl = await postgres.createDatabase();
      return new PostgresAuthorityStore(lastPgUrl);
    },
  ],
];
/** The database of the PostgreSQL store opened last (the events are read back from it). */
let lastPgUrl = '';

const GROUP_A = randomGuid();
const GROUP_B = randomGuid();

function keyRecord(i: number, overrides: Partial<KeyRecord> = {}): KeyRecord {
  const types: KeyType[] = ['mak', 'kms-host', 'retail'];
  return {
    id: randomGuid(),
    keyHash: randomBytes(32).toString('hex'),
    type: types[i % 3] as KeyType,
    last5: `…${String(i).padStart(5, '0')}`,
    groupIds: [i % 4 === 0 ? GROUP_B : GROUP_A],
    limit: 10,
    activationsPerHost: null,
    // Many keys share a creation time: the id breaks the tie, so none is skipped or repeated.
    createdAt: 1_700_000_000_000 + Math.floor(i / 7),
    revokedAt: i % 5 === 0 ? 1_800_000_000_000 : null,
    keyRef: randomBytes(8).toString('hex'),
    proofKeySealed: null,
    used: 0,
    note: i % 6 === 0 ? `Site ${i} Paris` : null,
    ...overrides,
  };
}

async function allPages(store: AuthorityStore, filter: Omit<KeyFilter, 'after' | 'limit'>, limit: number) {
  const seen: KeySummaryRecord[] = [];
  let after: After | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const rows = await store.organisations.listKeys({ ...filter, after, limit });
    seen.push(...rows);
    if (rows.length < limit) return seen;
    const last = rows[rows.length - 1] as KeySummaryRecord;
    after = { at: last.createdAt, id: last.id };
  }
  throw new Error('paging did not end');
}

describe.each(engines)('organisations store: %s', (_name, open) => {
  const setUp = async () => {
    const store = await open();
    stores.push(store);
    for (const [id, name] of [
      [GROUP_A, 'office'],
      [GROUP_B, 'windows'],
    ] as const) {
      await store.addGroup({ id, name, kind: 'app', threshold: 5, createdAt: 1 });
    }
    return store;
  };

  it('a key added without an organisation belongs to org_default, which exists from the migration', async () => {
    const store = await setUp();
    const legacy = keyRecord(1); // no orgId, as the store's callers from before organisations
    expect('orgId' in legacy).toBe(false);
    await store.addKey(legacy);
    const org = await store.organisations.get('org_default');
    expect(org).toMatchObject({ id: 'org_default', name: 'Default organisation', keyCount: 1 });
    const [k] = await store.organisations.listKeys({ orgId: 'org_default', limit: 10 });
    expect(k).toMatchObject({ id: legacy.id, orgId: 'org_default', recoverable: false, note: null });
    expect((await store.findKeyByHash(legacy.keyHash))?.orgId).toBe('org_default');
    expect(await store.organisations.sealedKey(legacy.id)).toBeNull();
  });

  it('pages cover every key exactly once, newest first, with and without filters', async () => {
    const store = await setUp();
    const now = 1;
    await store.organisations.create(
      { id: 'org_a', name: 'A', externalRef: null, contacts: [], createdAt: now },
      { at: now, action: 'org.create', result: 'OK', orgId: 'org_a', actor: 'cli' },
    );
    await store.organisations.create(
      { id: 'org_b', name: 'B', externalRef: 'AG-1', contacts: [{ name: 'Bo', email: 'bo@b.example' }], createdAt: 2 },
      { at: 2, action: 'org.create', result: 'OK', orgId: 'org_b', actor: 'cli' },
    );
    const records = Array.from({ length: 230 }, (_, i) => keyRecord(i, { orgId: i % 3 === 1 ? 'org_b' : 'org_a' }));
    await store.organisations.addKeys(records);
    const expectIds = (rows: KeySummaryRecord[], wanted: KeyRecord[]) => {
      const ids = rows.map((r) => r.id);
      expect(new Set(ids).size).toBe(ids.length); // none twice
      expect([...ids].sort()).toEqual(wanted.map((r) => r.id).sort()); // none missing
      for (let i = 1; i < rows.length; i++) {
        const [a, b] = [rows[i - 1]!, rows[i]!];
        expect(a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.id > b.id)).toBe(true);
      }
    };
    const inA = records.filter((r) => r.orgId === 'org_a');
    expectIds(await allPages(store, { orgId: 'org_a' }, 10), inA);
    expectIds(await allPages(store, {}, 7), records);
    expectIds(
      await allPages(store, { orgId: 'org_a', type: 'mak' }, 9),
      inA.filter((r) => r.type === 'mak'),
    );
    expectIds(
      await allPages(store, { orgId: 'org_a', groupId: GROUP_B }, 4),
      inA.filter((r) => r.groupIds.includes(GROUP_B)),
    );
    expectIds(
      await allPages(store, { orgId: 'org_a', revoked: true }, 5),
      inA.filter((r) => r.revokedAt !== null),
    );
    expectIds(
      await allPages(store, { orgId: 'org_a', revoked: false, type: 'retail' }, 6),
      inA.filter((r) => r.revokedAt === null && r.type === 'retail'),
    );
    // q: the last five exactly, or the note as a substring in any case ("%" and "_" match themselves).
    expectIds(
      await allPages(store, { orgId: 'org_a', q: 'paris' }, 3),
      inA.filter((r) => r.note?.includes('Paris')),
    );
    expectIds(
      await allPages(store, { q: '00012' }, 3),
      records.filter((r) => r.last5 === '…00012'),
    );
    expectIds(await allPages(store, { orgId: 'org_a', q: '%' }, 3), []);

    const b = await store.organisations.get('org_b');
    expect(b).toMatchObject({ externalRef: 'AG-1', contacts: [{ name: 'Bo', email: 'bo@b.example' }] });
    expect(b?.keyCount).toBe(records.length - inA.length);
    // Organisations page oldest first, org_default (created at 0) first.
    const first = await store.organisations.list({ limit: 2 });
    expect(first.map((o) => o.id)).toEqual(['org_default', 'org_a']);
    const rest = await store.organisations.list({ limit: 2, after: { at: 1, id: 'org_a' } });
    expect(rest.map((o) => o.id)).toEqual(['org_b']);
    expect((await store.organisations.list({ q: 'ag-', limit: 5 })).map((o) => o.id)).toEqual(['org_b']);
  });

  it('last five within an organisation; keysByLast5 across organisations', async () => {
    const store = await setUp();
    await store.organisations.addKeys([
      keyRecord(1, { orgId: 'org_x', last5: '…AAAAA' }),
      keyRecord(2, { orgId: 'org_y', last5: '…AAAAA' }),
    ]);
    expect(await store.organisations.keysByLast5('…AAAAA', 'org_x', 5)).toHaveLength(1);
    expect(await store.organisations.keysByLast5('…AAAAA', null, 5)).toHaveLength(2);
    expect(await store.organisations.keysByLast5('…AAAAA', 'org_z', 5)).toHaveLength(0);
  });

  it('limit and revocation events commit with the change, and not when it is refused', async () => {
    const store = await setUp();
    const k = keyRecord(0, { type: 'mak', used: 5, limit: 10, revokedAt: null });
    await store.addKey(k);
    const ev = (type: 'key.limit_raised' | 'key.revoked') => ({
      id: `evt_${randomBytes(12).toString('hex')}`,
      type,
      occurredAt: 1,
      orgId: 'org_default',
      keyId: k.id,
      data: { keyLast5: k.last5 },
    });
    expect(await store.setLimit(k.id, 4, [ev('key.limit_raised')])).toBe(false);
    expect(await store.setLimit(k.id, 20, [ev('key.limit_raised')])).toBe(true);
    expect(await store.revokeKey(k.id, 5, [ev('key.revoked')])).toBe(true);
    expect(await store.revokeKey(k.id, 6, [ev('key.revoked')])).toBe(false); // revoked already: no second event
    expect((await store.findKeyByHash(k.keyHash))?.revokedAt).toBe(5);
    const count = await countEvents(store, k.id);
    expect(count).toEqual({ 'key.limit_raised': 1, 'key.revoked': 1 });
  });

  it('audit pages by organisation, key, actor, action prefix and time, newest first', async () => {
    const store = await setUp();
    for (let i = 0; i < 30; i++) {
      await store.audit({
        at: 1000 + i,
        action: i % 2 ? 'key.limit' : 'org.update',
        result: 'OK',
        orgId: i % 3 ? 'org_a' : 'org_b',
        keyId: i % 2 ? `k${i % 4}` : null,
        actor: i % 5 ? 'cli' : 'ann@example.com',
      });
    }
    const all = await store.organisations.audit({ limit: 100 });
    expect(all.map((r) => r.at)).toEqual(Array.from({ length: 30 }, (_, i) => 1029 - i));
    const pageA = await store.organisations.audit({ orgId: 'org_a', limit: 5 });
    const pageB = await store.organisations.audit({ orgId: 'org_a', limit: 100, beforeId: pageA[4]!.id });
    expect(pageA.length + pageB.length).toBe(20);
    expect([...pageA, ...pageB].every((r) => r.orgId === 'org_a')).toBe(true);
    expect((await store.organisations.audit({ actor: 'ann@example.com', limit: 100 })).length).toBe(6);
    expect((await store.organisations.audit({ action: 'key.', limit: 100 })).length).toBe(15);
    expect((await store.organisations.audit({ keyId: 'k1', limit: 100 })).length).toBe(8);
    expect((await store.organisations.audit({ from: 1010, to: 1020, limit: 100 })).length).toBe(10);
  });
});

async function countEvents(store: AuthorityStore, keyId: string): Promise<Record<string, number>> {
  // Read back through the store's own connection: the SQLite file or the PostgreSQL pool.
  const rows: { type: string }[] = [];
  if (store instanceof SqliteAuthorityStore) {
    const db = new Database(store.path, { readonly: true });
    rows.push(...(db.prepare('SELECT type FROM webhook_events WHERE key_id = ?').all(keyId) as { type: string }[]));
    db.close();
  } else {
    const url = lastPgUrl;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    rows.push(
      ...(await client.query<{ type: string }>('SELECT type FROM webhook_events WHERE key_id = $1', [keyId])).rows,
    );
    await client.end();
  }
  const out: Record<string, number> = {};
  for (const r of rows) out[r.type] = (out[r.type] ?? 0) + 1;
  return out;
}
