import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentStatus } from './agent-status.js';
import { ConsoleError } from './errors.js';
import { SqliteConsoleStore } from './sqlite-store.js';

let dir: string;
let store: SqliteConsoleStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'volact-console-store-'));
  store = new SqliteConsoleStore(join(dir, 'console.db'));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

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

async function machine(name: string, address: string) {
  const tokenId = await store.findOrAddToken({ fingerprint: 'fp', sealed: 'v1:x', createdAt: 1 });
  return store.addMachine({ name, address, tokenId, addedAt: 1 });
}

describe('SqliteConsoleStore', () => {
  it('WAL, schema version 1, reopened without migrating again', async () => {
    await store.close();
    const db = new Database(join(dir, 'console.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    db.close();
    store = new SqliteConsoleStore(join(dir, 'console.db'));
    expect(await store.listMachines()).toEqual([]);
  });

  it('one token row per fingerprint, shared by machines; names unique case-insensitively, addresses exactly', async () => {
    const a = await store.findOrAddToken({ fingerprint: 'fp1', sealed: 'v1:a', createdAt: 1 });
    expect(await store.findOrAddToken({ fingerprint: 'fp1', sealed: 'v1:other', createdAt: 2 })).toBe(a);
    expect((await store.getToken(a))?.sealed).toBe('v1:a');
    await machine('PC-01', '10.0.0.1:7390');
    expect(await failure(machine('pc-01', '10.0.0.2:7390'))).toBe('MACHINE_EXISTS');
    expect(await failure(machine('pc-02', '10.0.0.1:7390'))).toBe('MACHINE_EXISTS');
    expect((await store.findMachine('pc-01'))?.address).toBe('10.0.0.1:7390');
    expect((await store.findMachine('10.0.0.1:7390'))?.name).toBe('PC-01');
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
    expect(latest.get(m.id)).toMatchObject({ takenAt: 40, installedKey: '…ABCDE', group: 'office14' });
    expect(latest.get(n.id)?.clientMachineId).toBe('other');
  });

  it('contact: last seen kept, last error set and cleared', async () => {
    const m = await machine('pc-01', '10.0.0.1:7390');
    await store.recordContact(m.id, { at: 100, ok: true });
    await store.recordContact(m.id, { at: 200, ok: false, code: 'AGENT_TIMEOUT', message: 'slow' });
    expect(await store.findMachine('pc-01')).toMatchObject({
      lastSeenAt: 100,
      lastError: { code: 'AGENT_TIMEOUT', message: 'slow', at: 200 },
    });
    await store.recordContact(m.id, { at: 300, ok: true });
    expect(await store.findMachine('pc-01')).toMatchObject({ lastSeenAt: 300, lastError: null });
  });

  it("confirmations per (machine, IID); another machine's record for the same IID is found too", async () => {
    const m = await machine('pc-01', '10.0.0.1:7390');
    const n = await machine('pc-02', '10.0.0.2:7390');
    await store.saveConfirmation({
      machineId: m.id,
      installationId: 'I1',
      confirmationId: 'C1',
      authority: null,
      obtainedAt: 1,
    });
    await store.saveConfirmation({
      machineId: m.id,
      installationId: 'I1',
      confirmationId: 'C2',
      authority: 'https://a',
      obtainedAt: 2,
    });
    expect(await store.findConfirmation(m.id, 'I1')).toMatchObject({ confirmationId: 'C2', authority: 'https://a' });
    expect(await store.findConfirmation(n.id, 'I1')).toMatchObject({ machineId: m.id, confirmationId: 'C2' });
    expect(await store.findConfirmation(n.id, 'I2')).toBeUndefined();
    expect(await store.listConfirmations()).toHaveLength(1);
    await store.removeMachine(m.id);
    expect(await store.listConfirmations()).toHaveLength(0);
  });

  it('keys unique by fingerprint and name; operations newest first', async () => {
    const key = {
      name: 'office-mak',
      type: 'mak' as const,
      last5: '…ABCDE',
      fingerprint: 'k1',
      sealed: 'v1:k',
      addedAt: 1,
    };
    await store.addKey(key);
    expect(await failure(store.addKey({ ...key, name: 'other' }))).toBe('KEY_EXISTS');
    expect(await failure(store.addKey({ ...key, fingerprint: 'k2' }))).toBe('KEY_EXISTS');
    expect((await store.findKeyByName('OFFICE-MAK'))?.fingerprint).toBe('k1');
    await store.logOperation({ at: 1, operation: 'a', machine: null, ok: true, code: null, detail: null });
    await store.logOperation({ at: 2, operation: 'b', machine: 'pc', ok: false, code: 'X', detail: 'd' });
    expect((await store.listOperations(10)).map((o) => [o.operation, o.ok])).toEqual([
      ['b', false],
      ['a', true],
    ]);
  });
});
