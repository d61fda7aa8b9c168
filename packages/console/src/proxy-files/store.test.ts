import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '@volact/authority/testing';
import { PostgresConsoleStore } from '../postgres-store.js';
import { SqliteConsoleStore } from '../sqlite-store.js';
import type { ConsoleStore } from '../store.js';

/** ProxyFileStore: one interface, two engines, one suite (the pattern of store.contract.test.ts). */
let postgres: TestPostgres;
const dirs: string[] = [];
const opened: ConsoleStore[] = [];

beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});
afterAll(() => {
  postgres?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const keep = <S extends ConsoleStore>(store: S): S => (opened.push(store), store);
const engines: [string, () => Promise<() => Promise<ConsoleStore>>][] = [
  [
    'sqlite',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'volact-proxy-store-'));
      dirs.push(dir);
      const path = join(dir, 'console.db');
      return async () => keep(new SqliteConsoleStore(path));
    },
  ],
  [
    'postgres',
    async () => {
      const url = await postgres.createDatabase();
      return async () => keep(await PostgresConsoleStore.open(url));
    },
  ],
];

const fileWith = (machines: number) =>
  JSON.stringify({
    format: 'volact-iid-file/1',
    entries: Array.from({ length: machines }, (_, i) => ({ machineId: i })),
  });

describe.each(engines)('ProxyFileStore: %s', (_engine, database) => {
  it('keeps collected files, lists them newest first with their machine count, marks them applied, across handles', async () => {
    const open = await database();
    const store = await open();
    expect(await store.proxyFiles.listRequests()).toEqual([]);
    expect(await store.proxyFiles.getRequest('nothing-here')).toBeUndefined();
    await store.proxyFiles.addRequest({
      id: 'first-file',
      createdAt: 1_000,
      createdBy: 'alice',
      digest: 'a'.repeat(64),
      fileJson: fileWith(3),
    });
    await store.proxyFiles.addRequest({
      id: 'second-file',
      createdAt: 2_000,
      createdBy: null,
      digest: 'b'.repeat(64),
      fileJson: fileWith(0),
    });
    // The same id twice is refused (a file id names one collection).
    await expect(
      store.proxyFiles.addRequest({
        id: 'first-file',
        createdAt: 3_000,
        createdBy: null,
        digest: 'c'.repeat(64),
        fileJson: fileWith(1),
      }),
    ).rejects.toThrow();
    await store.proxyFiles.markApplied('first-file', 5_000);

    const again = await open();
    expect(await again.proxyFiles.listRequests()).toEqual([
      { id: 'second-file', createdAt: 2_000, createdBy: null, machines: 0, appliedAt: null },
      { id: 'first-file', createdAt: 1_000, createdBy: 'alice', machines: 3, appliedAt: 5_000 },
    ]);
    expect(await again.proxyFiles.getRequest('first-file')).toEqual({
      id: 'first-file',
      createdAt: 1_000,
      createdBy: 'alice',
      digest: 'a'.repeat(64),
      fileJson: fileWith(3),
      appliedAt: 5_000,
    });
  });
});
