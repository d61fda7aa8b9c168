import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteConsoleStore } from './sqlite-store.js';

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
  it('WAL, schema version 2, reopened without migrating again', async () => {
    await store.close();
    const db = new Database(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    db.close();
    store = new SqliteConsoleStore(path);
    expect(await store.listMachines()).toEqual([]);
    expect(await store.countAdmins()).toBe(0);
  });

  it('a version-1 database (before admins and MAK counters) is migrated: its keys uncounted', async () => {
    await store.close();
    // Back to schema 1: what an existing console's database holds.
    const db = new Database(path);
    db.exec(`DROP TABLE admins;
      ALTER TABLE product_keys DROP COLUMN mak_limit; ALTER TABLE product_keys DROP COLUMN mak_used;
      ALTER TABLE product_keys DROP COLUMN mak_remaining; ALTER TABLE product_keys DROP COLUMN mak_authority;
      ALTER TABLE product_keys DROP COLUMN counted_at;
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
    await store.addAdmin({ name: 'admin', passwordHash: 'h', createdAt: 1 });
    expect(await store.countAdmins()).toBe(1);
  });

  it('a database newer than this volact is refused', async () => {
    await store.close();
    const db = new Database(path);
    db.pragma('user_version = 3');
    db.close();
    expect(() => new SqliteConsoleStore(path)).toThrow(/schema version 3, newer than this volact knows/);
    store = new SqliteConsoleStore(join(dir, 'other.db'));
  });
});
