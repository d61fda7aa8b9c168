import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteConsoleStore } from './sqlite-store.js';
import { MACHINE_COLUMNS_15, MACHINE_SORT_INDEXES } from './store-rows.js';

/** SQLite specifics; what both engines do is in store.contract.test.ts. */
let dir: string;
let path: string;
let store: SqliteConsoleStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'volact-console-store-'));
  path = join(dir, 'console.db');
  store = new SqliteConsoleStore(path);
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('SqliteConsoleStore', () => {
  it('WAL, schema version 5, reopened without migrating again', async () => {
    await store.close();
    const db = new Database(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(5);
    db.close();
    store = new SqliteConsoleStore(path);
    expect(await store.listMachines()).toEqual([]);
    expect(await store.countAdmins()).toBe(0);
  });

  it('a version-1 database (before admins and MAK counters) is migrated: its keys uncounted', async () => {
    await store.close();
    // Back to schema 1: what an existing console's database holds.
    const db = new Database(path);
    // Migration 5 (issue 15) first: its indexes, tables and machine columns.
    db.exec(`${[
      ...MACHINE_SORT_INDEXES.map(([name]) => name),
      'machines_display',
      'machines_search',
      'status_snapshots_machine_time',
      'operations_at',
    ]
      .map((name) => `DROP INDEX ${name};`)
      .join(' ')}
      DROP TABLE job_results; DROP TABLE jobs; DROP TABLE web_sessions; DROP TABLE proxy_requests;
      ALTER TABLE machines DROP COLUMN display_name;
      ${MACHINE_COLUMNS_15.map((c) => `ALTER TABLE machines DROP COLUMN ${c.split(' ')[0]};`).join(' ')}`);
    db.exec(`DROP TABLE admins;
      ALTER TABLE product_keys DROP COLUMN mak_limit; ALTER TABLE product_keys DROP COLUMN mak_used;
      ALTER TABLE product_keys DROP COLUMN mak_remaining; ALTER TABLE product_keys DROP COLUMN mak_authority;
      ALTER TABLE product_keys DROP COLUMN counted_at;
      ALTER TABLE machines DROP COLUMN untrusted_at; ALTER TABLE machines DROP COLUMN untrusted_reason;
      ALTER TABLE machines DROP COLUMN pending_token_id;
      INSERT INTO product_keys (name, type, last5, fingerprint, sealed, added_at)
        VALUES ('office-mak', 'mak', '…ABCDE', 'k1', 'v1:k', 1);
      PRAGMA user_version = 1;`);
    db.close();
    store = new SqliteConsoleStore(path);
    const [key] = await store.listKeys();
    expect(key).toMatchObject({ name: 'office-mak', counters: null });
    const counters = { limit: 5, used: 1, remaining: 4, authority: 'https://a', countedAt: 9 };
    await store.setKeyCounters(key!.id, counters);
    expect((await store.findKeyByName('office-mak'))?.counters).toEqual(counters);
    await store.addAdmin({ name: 'admin', passwordHash: 'h', createdAt: 1, role: 'admin' });
    expect(await store.countAdmins()).toBe(1);
  });

  it('mustExist: an empty file, a foreign file or a missing one is refused naming the file and the fix, never made a new store', async () => {
    await store.close();
    const { writeFileSync, statSync } = await import('node:fs');
    const empty = join(dir, 'empty.db');
    writeFileSync(empty, '');
    expect(() => new SqliteConsoleStore(empty, { mustExist: true })).toThrow(
      expect.objectContaining({
        code: 'CONSOLE_DB_INVALID',
        message: expect.stringMatching(/empty\.db is empty.*restore it from the backup.*console init/),
      }),
    );
    expect(statSync(empty).size).toBe(0);
    const garbage = join(dir, 'garbage.db');
    writeFileSync(garbage, Buffer.alloc(8192, 0x5a));
    expect(() => new SqliteConsoleStore(garbage, { mustExist: true, readOnly: true })).toThrow(
      expect.objectContaining({
        code: 'CONSOLE_DB_INVALID',
        message: expect.stringMatching(/garbage\.db is not an SQLite database/),
      }),
    );
    expect(() => new SqliteConsoleStore(join(dir, 'none.db'), { mustExist: true })).toThrow(
      expect.objectContaining({ code: 'CONSOLE_NOT_INITIALISED' }),
    );
    // A damaged page after a good header: SQLite's own code, named and with the fix.
    const damaged = join(dir, 'damaged.db');
    const good = new SqliteConsoleStore(damaged);
    await good.close();
    const bytes = (await import('node:fs')).readFileSync(damaged);
    bytes.fill(0xa5, 16, 100);
    writeFileSync(damaged, bytes);
    expect(() => new SqliteConsoleStore(damaged, { mustExist: true })).toThrow(
      expect.objectContaining({
        code: 'CONSOLE_DB_INVALID',
        message: expect.stringMatching(/damaged\.db is damaged \(SQLITE_/),
      }),
    );
    store = new SqliteConsoleStore(join(dir, 'other.db'));
  });

  it('readOnly: reads a current database, writes nothing, and refuses an old schema instead of upgrading it', async () => {
    await store.addAdmin({ name: 'admin', passwordHash: 'h', createdAt: 1, role: 'admin' });
    await store.close();
    const reader = new SqliteConsoleStore(path, { readOnly: true });
    expect(await reader.countAdmins()).toBe(1);
    await expect(reader.addAdmin({ name: 'other', passwordHash: 'h', createdAt: 2, role: 'admin' })).rejects.toThrow(
      /readonly/,
    );
    await reader.close();
    const db = new Database(path);
    db.pragma('user_version = 2');
    db.close();
    expect(() => new SqliteConsoleStore(path, { readOnly: true })).toThrow(/schema version 2 .*upgrade it/);
    const check = new Database(path);
    expect(check.pragma('user_version', { simple: true })).toBe(2);
    check.close();
    store = new SqliteConsoleStore(join(dir, 'other.db'));
  });

  it('a database newer than this volact is refused', async () => {
    await store.close();
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    expect(() => new SqliteConsoleStore(path)).toThrow(/schema version 99, newer than this volact knows/);
    store = new SqliteConsoleStore(join(dir, 'other.db'));
  });
});
