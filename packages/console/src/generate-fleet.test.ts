import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPostgres, type TestPostgres } from '@volact/authority/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { statusDigest } from './fleet.js';
import { generateFleet } from './generate-fleet.js';
import { PostgresConsoleStore } from './postgres-store.js';
import { SqliteConsoleStore } from './sqlite-store.js';
import type { ConsoleStore } from './store.js';

/** generateFleet's bulk path (each engine's insertGeneratedFleet) against the import it replaces. */
let postgres: TestPostgres;
const dirs: string[] = [];
const opened: ConsoleStore[] = [];
const NOW = Date.parse('2026-12-01T00:00:00.000Z');
const COUNT = 2000;

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

const engines: [string, () => Promise<ConsoleStore>][] = [
  [
    'sqlite',
    async () => {
      const d = mkdtempSync(join(tmpdir(), 'volact-generate-'));
      dirs.push(d);
      return new SqliteConsoleStore(join(d, 'console.db'));
    },
  ],
  ['postgres', async () => PostgresConsoleStore.open(await postgres.createDatabase())],
];

const everyMachine = async (store: ConsoleStore) =>
  (await store.views.pageMachines({ offset: 0, limit: 100_000, sort: 'name', dir: 'asc' })).machines;

describe.each(engines)('generateFleet on %s', (_engine, open) => {
  const newStore = async () => {
    const store = await open();
    opened.push(store);
    return store;
  };

  it("in bulk: each machine's latest-status columns are its latest history row, its facts are set", async () => {
    const store = await newStore();
    const generated = await generateFleet(store, COUNT, { now: NOW });
    const latest = await store.latestSnapshots();
    const views = await everyMachine(store);
    expect(views).toHaveLength(COUNT);
    let read = 0;
    for (const v of views) {
      const s = latest.get(v.machine.id);
      if (!s) {
        expect(v.latest, v.displayName).toBeNull();
        expect(v.machine.facts).toBeNull();
        continue;
      }
      read++;
      expect(v.latest, v.displayName).toEqual({
        snapshotId: s.id,
        takenAt: s.takenAt,
        state: s.state,
        method: s.method,
        group: s.group,
        clientMachineId: s.clientMachineId,
        installedKey: s.installedKey,
        installedKeyType: s.installedKeyType,
        kmsHost: s.kmsHost,
        expiresAt: s.expiresAt,
      });
    }
    expect(read).toBe(latest.size);
    expect(read).toBeGreaterThan(COUNT * 0.9);
    const dump = await store.dump();
    expect(dump.snapshots).toHaveLength(generated.snapshots);
    // The latest rows' digests are the real ones (every shape of status generated: each state, method, extra).
    const digests = new Map(dump.snapshots.map((r) => [r.id, r.digest]));
    for (const s of latest.values()) expect(digests.get(s.id), String(s.machineId)).toBe(statusDigest(s.status));
    expect(views.filter((v) => v.machine.facts !== null).length).toBeGreaterThan(COUNT / 2);
    // The latest row is the one a refresh compares with: the same status adds no row.
    const [first] = views.filter((v) => v.latest !== null);
    const s = latest.get(first?.machine.id ?? -1);
    if (!first || !s) throw new Error('no machine was read');
    expect(await store.addSnapshot(first.machine.id, NOW, s.status, statusDigest(s.status))).toBe(false);
    // The foreign keys are back (PostgreSQL's were dropped for the bulk): a removed machine takes its history.
    await store.removeMachine(first.machine.id);
    expect(await store.history(first.machine.id)).toEqual([]);
    expect((await store.dump()).snapshots).toHaveLength(generated.snapshots - 3);
  }, 60_000);

  it('in bulk writes what the import writes: the same rows, ids, latest columns and facts', async () => {
    const bulk = await newStore();
    const imported = await newStore();
    const token = { fingerprint: 'f'.repeat(64), sealed: 'sealed-token', createdAt: NOW - 5 };
    expect(await generateFleet(bulk, COUNT, { now: NOW, seed: 7, token })).toEqual(
      await generateFleet(imported, COUNT, { now: NOW, seed: 7, token, bulk: false }),
    );
    expect(await bulk.dump()).toEqual(await imported.dump());
    expect(await everyMachine(bulk)).toEqual(await everyMachine(imported));
  }, 60_000);

  it('into a store that has machines: through the import, adding to them', async () => {
    const store = await newStore();
    const tokenId = await store.findOrAddToken({ fingerprint: 'a'.repeat(64), sealed: 's', createdAt: 0 });
    await store.addMachine({ name: 'kept', address: '192.168.0.1:7070', tokenId, addedAt: 1 });
    await generateFleet(store, 50, { now: NOW });
    const views = await everyMachine(store);
    expect(views).toHaveLength(51);
    expect(views.filter((v) => v.latest !== null).length).toBe((await store.latestSnapshots()).size);
    // Again: nothing new (every row is found by its identity).
    await generateFleet(store, 50, { now: NOW });
    expect(await everyMachine(store)).toEqual(views);
  }, 60_000);
});
