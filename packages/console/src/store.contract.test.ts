import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '@volact/core/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PostgresAuthorityStore } from '../../authority/src/postgres-store.js';
import { startTestPostgres, type TestPostgres } from '@volact/authority/testing';
import type { AgentStatus } from '@volact/core';
import { ConsoleError } from './errors.js';
import { openConsoleStore } from './open-store.js';
import { PostgresConsoleStore } from './postgres-store.js';
import { MISSING_SECRET } from './secrets.js';
import { SqliteConsoleStore } from './sqlite-store.js';
import type { ConsoleStore, ImportData, MakCountersRecord } from './store.js';

/** One store interface, two engines, one suite: both must behave the same. */
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

const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'volact-console-store-'));
  dirs.push(d);
  return d;
};

const keep = <S extends ConsoleStore>(store: S): S => (opened.push(store), store);

/** Each engine: a new, empty database, and a function that opens another handle on it. */
const engines: [string, () => Promise<() => Promise<ConsoleStore>>][] = [
  [
    'sqlite',
    async () => {
      const path = join(tempDir(), 'console.db');
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

const status = (over: Partial<AgentStatus> = {}): AgentStatus => ({
  state: 'initial-grace',
  method: null,
  expiresAt: '2026-12-25T09:00:00.000Z',
  host: null,
  group: 'office14',
  threshold: 5,
  clientMachineId: '2f0c5a8e-1b3d-4c5e-8f9a-0b1c2d3e4f50',
  installedKey: '…ABCDE',
  installedKeyType: 'gvlk',
  installationId: null,
  count: null,
  directoryObject: null,
  lastAttempt: null,
  nextAttemptAt: '2026-11-25T09:00:00.000Z',
  ...over,
});

const failure = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ConsoleError) return err.code;
    throw err;
  }
  return 'no error';
};

const counters = (countedAt: number, used = 3): MakCountersRecord => ({
  limit: 10,
  used,
  remaining: 10 - used,
  authority: 'https://authority.example',
  countedAt,
});

const mak = {
  name: 'office-mak',
  type: 'mak' as const,
  last5: '…ABCDE',
  fingerprint: 'k1',
  sealed: 'v1:k',
  addedAt: 1,
};

/** An export of two machines (one with history and a CID), a key with counters, operations. */
function exportData(over: Partial<ImportData> = {}): ImportData {
  return {
    machines: [
      {
        name: 'pc-01',
        address: '10.0.0.1:7390',
        addedAt: 5,
        lastSeenAt: 50,
        lastError: null,
        token: { fingerprint: 'tfp', sealed: 'v1:t', createdAt: 5 },
      },
      { name: 'pc-02', address: '10.0.0.2:7390', addedAt: 6, lastSeenAt: null, lastError: null, token: null },
    ],
    snapshots: [
      { address: '10.0.0.1:7390', takenAt: 10, digest: 'd1', status: status() },
      { address: '10.0.0.1:7390', takenAt: 20, digest: 'd2', status: status({ state: 'licensed', method: 'kms' }) },
    ],
    keys: [{ ...mak, counters: counters(100) }],
    confirmations: [
      { address: '10.0.0.1:7390', installationId: 'I1', confirmationId: 'C1', authority: null, obtainedAt: 30 },
    ],
    operations: [
      { at: 40, operation: 'refresh', machine: 'pc-01', ok: true, code: null, detail: null },
      { at: 40, operation: 'refresh', machine: 'pc-01', ok: true, code: null, detail: null },
    ],
    ...over,
  };
}

describe.each(engines)('console store: %s', (_engine, database) => {
  let store: ConsoleStore;
  let reopen: () => Promise<ConsoleStore>;
  beforeEach(async () => {
    reopen = await database();
    store = await reopen();
  });

  async function machine(name: string, address: string, on = store) {
    const tokenId = await on.findOrAddToken({ fingerprint: 'fp', sealed: 'v1:x', createdAt: 1 });
    return on.addMachine({ name, address, tokenId, addedAt: 1 });
  }

  it('one token row per fingerprint, shared by machines; kept across reopening', async () => {
    const a = await store.findOrAddToken({ fingerprint: 'fp1', sealed: 'v1:a', createdAt: 1 });
    expect(await store.findOrAddToken({ fingerprint: 'fp1', sealed: 'v1:other', createdAt: 2 })).toBe(a);
    const b = await store.findOrAddToken({ fingerprint: 'fp2', sealed: 'v1:b', createdAt: 3 });
    expect(b).not.toBe(a);
    expect(await store.getToken(a)).toEqual({ id: a, fingerprint: 'fp1', sealed: 'v1:a', createdAt: 1 });
    expect(await store.getToken(b + 100)).toBeUndefined();
    expect(await (await reopen()).getToken(b)).toMatchObject({ fingerprint: 'fp2', createdAt: 3 });
  });

  it('a machine gets its own token (enrolment, rotation) and an untrusted mark, kept across reopening; the mark clears', async () => {
    const pc = await machine('pc-01', '10.0.0.1:7390');
    expect(pc.untrusted).toBeNull();
    const own = await store.findOrAddToken({ fingerprint: 'own', sealed: 'v1:own', createdAt: 2 });
    await store.setMachineToken(pc.id, own);
    await store.setUntrusted(pc.id, { at: 7, reason: 'x'.repeat(2000) });
    const again = await (await reopen()).getMachine(pc.id);
    expect(again).toMatchObject({ tokenId: own, untrusted: { at: 7, reason: 'x'.repeat(1000) } });
    expect((await store.listMachines())[0]?.untrusted?.at).toBe(7);
    await store.setUntrusted(pc.id, null);
    expect((await store.findMachine('pc-01'))?.untrusted).toBeNull();
  });

  it('a pending token (sent, not yet confirmed) is kept across reopening; setting the token clears it', async () => {
    const pc = await machine('pc-01', '10.0.0.1:7390');
    expect(pc.pendingTokenId).toBeNull();
    const fresh = await store.findOrAddToken({ fingerprint: 'fresh', sealed: 'v1:fresh', createdAt: 2 });
    await store.setPendingToken(pc.id, fresh);
    const again = await (await reopen()).getMachine(pc.id);
    expect(again).toMatchObject({ tokenId: pc.tokenId, pendingTokenId: fresh });
    expect((await store.listMachines())[0]?.pendingTokenId).toBe(fresh);
    expect((await store.findMachine('pc-01'))?.pendingTokenId).toBe(fresh);
    await store.setMachineToken(pc.id, fresh);
    expect(await store.getMachine(pc.id)).toMatchObject({ tokenId: fresh, pendingTokenId: null });
    await store.setPendingToken(pc.id, pc.tokenId);
    await store.setPendingToken(pc.id, null);
    expect((await store.getMachine(pc.id))?.pendingTokenId).toBeNull();
  });

  it('machines: names unique case-insensitively, addresses exactly; found by name, address or id', async () => {
    const pc = await machine('PC-01', 'Host-A:7390');
    expect(pc).toMatchObject({
      name: 'PC-01',
      address: 'Host-A:7390',
      addedAt: 1,
      lastSeenAt: null,
      lastError: null,
      untrusted: null,
    });
    expect(await failure(machine('pc-01', '10.0.0.2:7390'))).toBe('MACHINE_EXISTS');
    expect(await failure(machine('pc-02', 'Host-A:7390'))).toBe('MACHINE_EXISTS');
    await machine('pc-02', 'host-a:7390'); // another address: case counts
    await machine('b-pc', '10.0.0.3:7390');
    // Only ASCII letters ignore case (SQLite's NOCASE), whatever the database's locale.
    await machine('Émile', '10.0.0.4:7390');
    await machine('émile', '10.0.0.5:7390');
    expect((await store.findMachine('ÉMILE'))?.address).toBe('10.0.0.4:7390');
    expect((await store.findMachine('pc-01'))?.address).toBe('Host-A:7390');
    expect((await store.findMachine('Host-A:7390'))?.name).toBe('PC-01');
    expect((await store.findMachine('host-a:7390'))?.name).toBe('pc-02');
    expect(await store.findMachine('HOST-A:7390')).toBeUndefined();
    expect(await store.getMachine(pc.id)).toEqual(pc);
    expect(await store.getMachine(pc.id + 100)).toBeUndefined();
    expect((await store.listMachines()).map((m) => m.name)).toEqual(['b-pc', 'PC-01', 'pc-02', 'Émile', 'émile']);
  });

  it('a machine named like another one’s address: the name wins', async () => {
    await machine('pc-01', '10.0.0.1:7390');
    await machine('10.0.0.1:7390', '10.0.0.2:7390');
    expect((await store.findMachine('10.0.0.1:7390'))?.address).toBe('10.0.0.2:7390');
  });

  it('a snapshot per change: the same digest twice writes one row; latest per machine', async () => {
    const m = await machine('pc-01', '10.0.0.1:7390');
    const n = await machine('pc-02', '10.0.0.2:7390');
    expect(await store.addSnapshot(m.id, 10, status(), 'd1')).toBe(true);
    expect(await store.addSnapshot(m.id, 20, status(), 'd1')).toBe(false);
    expect(await store.addSnapshot(m.id, 30, status({ state: 'licensed', method: 'kms' }), 'd2')).toBe(true);
    expect(await store.addSnapshot(m.id, 40, status(), 'd1')).toBe(true); // back again: a change
    await store.addSnapshot(n.id, 50, status({ clientMachineId: 'other' }), 'd9');
    expect((await store.history(m.id)).map((s) => [s.takenAt, s.state])).toEqual([
      [10, 'initial-grace'],
      [30, 'licensed'],
      [40, 'initial-grace'],
    ]);
    const latest = await store.latestSnapshots();
    expect([...latest.keys()].sort()).toEqual([m.id, n.id].sort());
    expect(latest.get(m.id)).toMatchObject({
      machineId: m.id,
      takenAt: 40,
      state: 'initial-grace',
      method: null,
      installedKey: '…ABCDE',
      installedKeyType: 'gvlk',
      group: 'office14',
      kmsHost: null,
      expiresAt: '2026-12-25T09:00:00.000Z',
      status: status(),
    });
    expect(latest.get(n.id)?.clientMachineId).toBe('other');
  });

  it('recordStatuses: a batch writes what addSnapshot and recordContact would, in one transaction; all or nothing', async () => {
    const m = await machine('pc-01', '10.0.0.1:7390');
    const n = await machine('pc-02', '10.0.0.2:7390');
    await store.addSnapshot(m.id, 10, status(), 'd1');
    await store.recordContact(n.id, { at: 5, ok: false, code: 'AGENT_TIMEOUT', message: 'no answer' });
    const licensed = status({ state: 'licensed', method: 'kms' });
    expect(
      await store.recordStatuses([
        { machineId: m.id, takenAt: 20, status: status(), digest: 'd1' }, // unchanged: no row
        { machineId: n.id, takenAt: 21, status: licensed, digest: 'd2' },
        { machineId: m.id, takenAt: 22, status: licensed, digest: 'd2' }, // the same machine again: sees the row above
      ]),
    ).toEqual([false, true, true]);
    expect(await store.recordStatuses([])).toEqual([]);
    expect((await store.history(m.id)).map((s) => [s.takenAt, s.state])).toEqual([
      [10, 'initial-grace'],
      [22, 'licensed'],
    ]);
    const [pm, pn] = [await store.getMachine(m.id), await store.getMachine(n.id)];
    expect(pm?.lastSeenAt).toBe(22);
    expect(pn).toMatchObject({ lastSeenAt: 21, lastError: null });
    const page = await store.views.pageMachines({ offset: 0, limit: 10, sort: 'name', dir: 'asc' });
    expect(page.machines.map((v) => [v.machine.name, v.latest?.state ?? null])).toEqual([
      ['pc-01', 'licensed'],
      ['pc-02', 'licensed'],
    ]);
    // A machine removed meanwhile: the whole batch fails, nothing of it is written.
    const gone = await machine('pc-03', '10.0.0.3:7390');
    await store.removeMachine(gone.id);
    await expect(
      store.recordStatuses([
        { machineId: m.id, takenAt: 30, status: status(), digest: 'd3' },
        { machineId: gone.id, takenAt: 31, status: status(), digest: 'd3' },
      ]),
    ).rejects.toThrow();
    expect((await store.history(m.id)).map((s) => s.takenAt)).toEqual([10, 22]);
    expect((await store.getMachine(m.id))?.lastSeenAt).toBe(22);
  });

  it('snapshotsBefore: rows taken before the time, by machine then row', async () => {
    const m = await machine('pc-01', '10.0.0.1:7390');
    const n = await machine('pc-02', '10.0.0.2:7390');
    await store.addSnapshot(n.id, 5, status(), 'n1');
    await store.addSnapshot(m.id, 10, status(), 'm1');
    await store.addSnapshot(n.id, 15, status(), 'n2');
    await store.addSnapshot(m.id, 20, status(), 'm2');
    await store.addSnapshot(m.id, 30, status(), 'm3');
    expect((await store.snapshotsBefore(30)).map((s) => [s.machineId, s.takenAt])).toEqual([
      [m.id, 10],
      [m.id, 20],
      [n.id, 5],
      [n.id, 15],
    ]);
    expect(await store.snapshotsBefore(5)).toEqual([]);
  });

  it('contact: last seen kept, last error set and cleared', async () => {
    const m = await machine('pc-01', '10.0.0.1:7390');
    await store.recordContact(m.id, { at: 100, ok: true });
    await store.recordContact(m.id, { at: 50, ok: true }); // an older answer does not move it back
    await store.recordContact(m.id, { at: 200, ok: false, code: 'AGENT_TIMEOUT', message: 'slow' });
    expect(await store.findMachine('pc-01')).toMatchObject({
      lastSeenAt: 100,
      lastError: { code: 'AGENT_TIMEOUT', message: 'slow', at: 200 },
    });
    await store.recordContact(m.id, { at: 300, ok: true });
    expect(await store.getMachine(m.id)).toMatchObject({ lastSeenAt: 300, lastError: null });
  });

  it("confirmations per (machine, IID); another machine's record for the same IID is found too", async () => {
    const m = await machine('pc-01', '10.0.0.1:7390');
    const n = await machine('pc-02', '10.0.0.2:7390');
    const cid = { machineId: m.id, installationId: 'I1', confirmationId: 'C1', authority: null, obtainedAt: 1 };
    await store.saveConfirmation(cid);
    await store.saveConfirmation({ ...cid, confirmationId: 'C2', authority: 'https://a', obtainedAt: 2 });
    expect(await store.findConfirmation(m.id, 'I1')).toEqual({
      ...cid,
      confirmationId: 'C2',
      authority: 'https://a',
      obtainedAt: 2,
    });
    expect(await store.findConfirmation(n.id, 'I1')).toMatchObject({ machineId: m.id, confirmationId: 'C2' });
    await store.saveConfirmation({ ...cid, machineId: n.id, confirmationId: 'C3', obtainedAt: 3 });
    expect(await store.findConfirmation(m.id, 'I1')).toMatchObject({ machineId: m.id, confirmationId: 'C2' });
    expect(await store.findConfirmation(n.id, 'I2')).toBeUndefined();
    expect((await store.listConfirmations()).map((c) => c.confirmationId)).toEqual(['C2', 'C3']);
    await store.addSnapshot(m.id, 1, status(), 'd');
    await store.removeMachine(m.id);
    expect((await store.listConfirmations()).map((c) => c.confirmationId)).toEqual(['C3']);
    expect(await store.history(m.id)).toEqual([]);
    expect(await store.getMachine(m.id)).toBeUndefined();
  });

  it('keys unique by fingerprint and name (any case); MAK counters null until set, then read everywhere', async () => {
    const added = await store.addKey(mak);
    expect(added).toEqual({ ...mak, id: added.id, counters: null });
    expect(await failure(store.addKey({ ...mak, name: 'other' }))).toBe('KEY_EXISTS');
    expect(await failure(store.addKey({ ...mak, name: 'OFFICE-MAK', fingerprint: 'k2' }))).toBe('KEY_EXISTS');
    const gvlk = await store.addKey({ ...mak, name: 'A-gvlk', type: 'gvlk', fingerprint: 'k3', last5: '…GGGGG' });
    expect((await store.findKeyByName('OFFICE-MAK'))?.fingerprint).toBe('k1');
    expect(await store.findKeyByName('nope')).toBeUndefined();
    await store.setKeyCounters(added.id, counters(100));
    await store.setKeyCounters(added.id, {
      limit: null,
      used: 7,
      remaining: null,
      authority: 'https://b',
      countedAt: 200,
    });
    const counted = { limit: null, used: 7, remaining: null, authority: 'https://b', countedAt: 200 };
    expect((await store.findKeyByFingerprint('k1'))?.counters).toEqual(counted);
    expect((await store.findKeyByName('office-mak'))?.counters).toEqual(counted);
    expect((await store.listKeys()).map((k) => [k.name, k.counters])).toEqual([
      ['A-gvlk', null],
      ['office-mak', counted],
    ]);
    expect((await store.dump()).keys).toEqual([{ ...added, counters: counted }, gvlk]);
  });

  it('admins: names unique case-insensitively, found in any case; a password replaced; counted', async () => {
    expect(await store.countAdmins()).toBe(0);
    await store.addAdmin({ name: 'Admin', passwordHash: 'scrypt$1', createdAt: 1, role: 'admin' });
    expect(
      await failure(store.addAdmin({ name: 'ADMIN', passwordHash: 'scrypt$2', createdAt: 2, role: 'viewer' })),
    ).toBe('ADMIN_EXISTS');
    await store.addAdmin({ name: 'ops', passwordHash: 'scrypt$3', createdAt: 3, role: 'viewer' });
    expect(await store.findAdmin('admin')).toEqual({
      name: 'Admin',
      passwordHash: 'scrypt$1',
      createdAt: 1,
      role: 'admin',
    });
    expect(await store.findAdmin('nobody')).toBeUndefined();
    expect(await store.setAdminPassword('ADMIN', 'scrypt$4')).toBe(true);
    expect(await store.setAdminPassword('nobody', 'scrypt$5')).toBe(false);
    expect((await store.findAdmin('Admin'))?.passwordHash).toBe('scrypt$4');
    expect(await store.countAdmins()).toBe(2);
    // Roles: listed by name; the last admin neither removed nor demoted (LAST_ADMIN).
    expect((await store.listAdmins()).map((a) => [a.name, a.role])).toEqual([
      ['Admin', 'admin'],
      ['ops', 'viewer'],
    ]);
    expect(await failure(store.removeAdmin('admin'))).toBe('LAST_ADMIN');
    expect(await failure(store.setAdminRole('ADMIN', 'viewer'))).toBe('LAST_ADMIN');
    expect(await store.setAdminRole('nobody', 'admin')).toBeUndefined();
    expect(await store.removeAdmin('nobody')).toBe(false);
    expect(await store.setAdminRole('OPS', 'admin')).toMatchObject({ name: 'ops', role: 'admin' });
    expect(await store.removeAdmin('admin')).toBe(true);
    expect((await store.listAdmins()).map((a) => a.name)).toEqual(['ops']);
  });

  it('operations newest first, by time then row', async () => {
    const op = { operation: 'a', machine: null, ok: true, code: null, detail: null };
    await store.logOperation({ ...op, at: 5 });
    await store.logOperation({ ...op, at: 1, operation: 'imported-older' });
    await store.logOperation({ ...op, at: 5, operation: 'b', machine: 'pc', ok: false, code: 'X', detail: 'd' });
    const list = await store.listOperations(10);
    expect(list.map((o) => [o.operation, o.at, o.ok])).toEqual([
      ['b', 5, false],
      ['a', 5, true],
      ['imported-older', 1, true],
    ]);
    expect(list[0]).toMatchObject({ machine: 'pc', code: 'X', detail: 'd' });
    expect((await store.listOperations(1)).map((o) => o.operation)).toEqual(['b']);
  });

  it('dump: every table in row order, history with its digests', async () => {
    const m = await machine('pc-01', '10.0.0.1:7390');
    await store.addSnapshot(m.id, 10, status(), 'd1');
    const key = await store.addKey(mak);
    await store.saveConfirmation({
      machineId: m.id,
      installationId: 'I',
      confirmationId: 'C',
      authority: null,
      obtainedAt: 2,
    });
    await store.logOperation({ at: 3, operation: 'x', machine: null, ok: true, code: null, detail: null });
    const dump = await store.dump();
    expect(dump.tokens).toEqual([{ id: m.tokenId, fingerprint: 'fp', sealed: 'v1:x', createdAt: 1 }]);
    expect(dump.machines).toEqual([m]);
    expect(dump.snapshots).toEqual([
      expect.objectContaining({ machineId: m.id, takenAt: 10, digest: 'd1', status: status() }),
    ]);
    expect(dump.keys).toEqual([key]);
    expect(dump.confirmations).toEqual([
      { machineId: m.id, installationId: 'I', confirmationId: 'C', authority: null, obtainedAt: 2 },
    ]);
    expect(dump.operations).toEqual([expect.objectContaining({ at: 3, operation: 'x', ok: true })]);
  });

  it('import: everything added; the same twice changes nothing; missing secrets counted', async () => {
    const counts = await store.importData(exportData());
    expect(counts).toEqual({
      machines: { added: 2, updated: 0, unchanged: 0 },
      statusHistory: { added: 2, updated: 0, unchanged: 0 },
      keys: { added: 1, updated: 0, unchanged: 0 },
      confirmationIds: { added: 1, updated: 0, unchanged: 0 },
      operations: { added: 2, updated: 0, unchanged: 0 },
      secretsMissing: { keys: 0, machines: 1 },
    });
    const pc = await store.findMachine('pc-01');
    expect(pc).toMatchObject({ address: '10.0.0.1:7390', addedAt: 5, lastSeenAt: 50, lastError: null });
    expect((await store.getToken(pc!.tokenId))?.sealed).toBe('v1:t');
    expect((await store.getToken((await store.findMachine('pc-02'))!.tokenId))?.sealed).toBe(MISSING_SECRET);
    expect((await store.latestSnapshots()).get(pc!.id)).toMatchObject({ takenAt: 20, state: 'licensed' });
    expect((await store.findKeyByName('office-mak'))?.counters).toEqual(counters(100));
    expect(await store.findConfirmation(pc!.id, 'I1')).toMatchObject({ confirmationId: 'C1' });
    expect(await store.listOperations(10)).toHaveLength(2);

    const before = await store.dump();
    const again = await store.importData(exportData());
    expect(again).toEqual({
      machines: { added: 0, updated: 0, unchanged: 2 },
      statusHistory: { added: 0, updated: 0, unchanged: 2 },
      keys: { added: 0, updated: 0, unchanged: 1 },
      confirmationIds: { added: 0, updated: 0, unchanged: 1 },
      operations: { added: 0, updated: 0, unchanged: 2 },
      secretsMissing: { keys: 0, machines: 1 },
    });
    expect(await store.dump()).toEqual(before);
  });

  it("import merges with this console's rows: contact times, a missing token, newer counters, newer CIDs", async () => {
    await store.importData(exportData());
    const keyId = (await store.findKeyByName('office-mak'))!.id;
    const file = exportData();
    const [first, second] = file.machines;
    const counts = await store.importData({
      ...file,
      machines: [
        { ...first!, addedAt: 1, lastSeenAt: 40, lastError: { code: 'AGENT_TIMEOUT', message: 'slow', at: 60 } },
        { ...second!, token: { fingerprint: 'tfp2', sealed: 'v1:t2', createdAt: 7 } },
      ],
      keys: [{ ...mak, counters: counters(200, 5) }],
      confirmations: [
        {
          address: '10.0.0.1:7390',
          installationId: 'I1',
          confirmationId: 'C9',
          authority: 'https://a',
          obtainedAt: 31,
        },
        { address: '10.0.0.2:7390', installationId: 'I2', confirmationId: 'C2', authority: null, obtainedAt: 1 },
      ],
    });
    expect(counts).toMatchObject({
      machines: { added: 0, updated: 2, unchanged: 0 },
      keys: { added: 0, updated: 1, unchanged: 0 },
      confirmationIds: { added: 1, updated: 1, unchanged: 0 },
      secretsMissing: { keys: 0, machines: 0 },
    });
    expect(await store.findMachine('pc-01')).toMatchObject({
      addedAt: 1,
      lastSeenAt: 50,
      lastError: { code: 'AGENT_TIMEOUT', message: 'slow', at: 60 },
    });
    expect((await store.getToken((await store.findMachine('pc-02'))!.tokenId))?.sealed).toBe('v1:t2');
    expect((await store.findKeyByFingerprint('k1'))?.counters).toEqual(counters(200, 5));
    expect((await store.listConfirmations()).map((c) => c.confirmationId)).toEqual(['C2', 'C9']);

    // Older counters than this console's, or none: kept as they are.
    await store.setKeyCounters(keyId, counters(300, 6));
    const older = await store.importData({ ...exportData(), keys: [{ ...mak, counters: counters(250, 9) }] });
    expect(older.keys).toEqual({ added: 0, updated: 0, unchanged: 1 });
    expect((await store.importData({ ...exportData(), keys: [{ ...mak, counters: null }] })).keys.unchanged).toBe(1);
    expect((await store.findKeyByFingerprint('k1'))?.counters).toEqual(counters(300, 6));
  });

  it('import: counters taken for a key that has none; a key without its secret, then given it', async () => {
    await store.addKey(mak);
    const file = exportData({ machines: [], snapshots: [], confirmations: [], operations: [] });
    expect((await store.importData(file)).keys).toEqual({ added: 0, updated: 1, unchanged: 0 });
    expect((await store.findKeyByFingerprint('k1'))?.counters).toEqual(counters(100));

    const other = { name: 'win-mak', type: 'mak' as const, last5: '…WWWWW', addedAt: 2, counters: null };
    const missing = await store.importData({ ...file, keys: [{ ...other, fingerprint: 'theirs', sealed: null }] });
    expect(missing.keys).toEqual({ added: 1, updated: 0, unchanged: 0 });
    expect(missing.secretsMissing.keys).toBe(1);
    expect((await store.findKeyByName('win-mak'))?.sealed).toBe(MISSING_SECRET);
    const given = await store.importData({
      ...file,
      keys: [{ ...other, fingerprint: 'k-win', sealed: 'v1:w', counters: counters(5) }],
    });
    expect(given.keys).toEqual({ added: 0, updated: 1, unchanged: 0 });
    expect(given.secretsMissing.keys).toBe(0);
    expect(await store.findKeyByName('win-mak')).toMatchObject({
      fingerprint: 'k-win',
      sealed: 'v1:w',
      counters: counters(5),
    });
    // The same key added by hand after an import without its secret keeps the imported name.
    await store.importData({
      ...file,
      keys: [{ ...other, name: 'kms', last5: '…KKKKK', fingerprint: 'x', sealed: null }],
    });
    const byHand = await store.addKey({
      ...mak,
      name: 'typed',
      last5: '…KKKKK',
      fingerprint: 'k-kms',
      sealed: 'v1:kms',
    });
    expect(byHand).toMatchObject({ name: 'kms', fingerprint: 'k-kms', sealed: 'v1:kms' });
  });

  it('import: older history rows than the newest go before it; the newest stays the latest', async () => {
    await store.importData(
      exportData({
        snapshots: [{ address: '10.0.0.1:7390', takenAt: 20, digest: 'd2', status: status({ state: 'licensed' }) }],
      }),
    );
    const id = (await store.findMachine('pc-01'))!.id;
    const counts = await store.importData(
      exportData({
        snapshots: [
          { address: '10.0.0.1:7390', takenAt: 10, digest: 'd1', status: status() },
          { address: '10.0.0.1:7390', takenAt: 20, digest: 'd2', status: status({ state: 'licensed' }) },
        ],
      }),
    );
    expect(counts.statusHistory).toEqual({ added: 1, updated: 0, unchanged: 1 });
    expect((await store.dump()).snapshots.map((s) => [s.machineId, s.takenAt, s.digest])).toEqual([
      [id, 10, 'd1'],
      [id, 20, 'd2'],
    ]);
    expect((await store.latestSnapshots()).get(id)?.state).toBe('licensed');
  });

  it('import: a name taken here by another machine or key refuses the whole file, the store untouched', async () => {
    await machine('PC-01', '10.9.9.9:7390');
    await store.addKey({ ...mak, name: 'taken', fingerprint: 'mine', last5: '…MMMMM' });
    const before = await store.dump();
    expect(await failure(store.importData(exportData()))).toBe('MACHINE_EXISTS');
    expect(await store.dump()).toEqual(before);
    const keyTaken = exportData({
      machines: exportData().machines.slice(1),
      snapshots: [],
      confirmations: [],
      keys: [
        { ...mak, counters: null },
        { ...mak, name: 'TAKEN', fingerprint: 'k2', last5: '…ZZZZZ', counters: null },
      ],
    });
    expect(await failure(store.importData(keyTaken))).toBe('KEY_EXISTS');
    expect(await store.dump()).toEqual(before);
  });
});

describe('PostgresConsoleStore', () => {
  it('refuses a malformed URL by name, never echoing it', async () => {
    for (const url of [
      'not a url',
      'mysql://u:pw@h/db',
      'postgres://u:hunter2pass@h:5432',
      'postgres://h/db',
      'postgres://u@/db',
    ]) {
      const err = await PostgresConsoleStore.open(url).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConsoleError);
      expect((err as ConsoleError).code).toBe('DATABASE_URL_INVALID');
      expect((err as ConsoleError).message).not.toContain('hunter2pass');
    }
  });

  it('names host:port when nothing answers or the database is missing, never the password', async () => {
    const port = await freeLoopbackPort();
    const err = await PostgresConsoleStore.open(`postgres://volact:hunter2pass@127.0.0.1:${port}/console`).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConsoleError);
    expect((err as ConsoleError).code).toBe('DATABASE_UNREACHABLE');
    expect((err as ConsoleError).message).toContain(`127.0.0.1:${port}`);
    expect((err as ConsoleError).message).not.toContain('hunter2pass');
    const missing = new URL(postgres.url);
    missing.pathname = '/no_such_database';
    expect(await failure(PostgresConsoleStore.open(missing.href))).toBe('DATABASE_UNREACHABLE');
  });

  it('two processes at once: one migration, one token row, one snapshot per change, one import', async () => {
    const url = await postgres.createDatabase();
    const [a, b] = (await Promise.all([PostgresConsoleStore.open(url), PostgresConsoleStore.open(url)])).map(keep);
    const both = <T>(n: number, call: (s: ConsoleStore, i: number) => Promise<T>) =>
      Promise.all(Array.from({ length: n }, (_, i) => call(i % 2 ? a! : b!, i)));
    const tokenIds = await both(20, (s) => s.findOrAddToken({ fingerprint: 'fp', sealed: 'v1:x', createdAt: 1 }));
    expect(new Set(tokenIds).size).toBe(1);
    const m = await a!.addMachine({ name: 'pc-01', address: '10.0.0.1:7390', tokenId: tokenIds[0]!, addedAt: 1 });
    const written = await both(20, (s, i) => s.addSnapshot(m.id, i, status(), 'same'));
    expect(written.filter(Boolean)).toHaveLength(1);
    const imports = await both(4, (s) => s.importData(exportData()));
    expect(imports.map((c) => c.machines.added + c.operations.added).sort()).toEqual([0, 0, 0, 3]);
    expect((await a!.dump()).operations).toHaveLength(2);
  });

  it('shares a database with the authority: its tables in a schema of their own', async () => {
    const url = await postgres.createDatabase();
    const authority = new PostgresAuthorityStore(url);
    try {
      await authority.recentAudit(1); // the authority's migrations (it has a product_keys too)
      const store = keep(await PostgresConsoleStore.open(url));
      await store.addKey(mak);
      expect((await store.listKeys()).map((k) => k.name)).toEqual(['office-mak']);
      expect(await authority.findKeyByHash('k1')).toBeUndefined();
    } finally {
      await authority.close();
    }
  });

  it('openConsoleStore: SQLite console.db in the data directory without a URL, PostgreSQL with one', async () => {
    const dir = tempDir();
    const sqlite = keep(await openConsoleStore(dir));
    expect(sqlite).toBeInstanceOf(SqliteConsoleStore);
    await sqlite.addAdmin({ name: 'a', passwordHash: 'h', createdAt: 1, role: 'admin' });
    expect(await keep(new SqliteConsoleStore(join(dir, 'console.db'))).countAdmins()).toBe(1);
    expect(keep(await openConsoleStore(dir, await postgres.createDatabase()))).toBeInstanceOf(PostgresConsoleStore);
    expect(await failure(openConsoleStore(dir, 'sqlite:console.db'))).toBe('DATABASE_URL_INVALID');
  });
});
