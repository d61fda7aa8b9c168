import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, generateSigningKeyPair, randomGuid } from '@volact/core';
import { Authority } from './authority.js';
import { AuthorityError } from './errors.js';
import { PostgresAuthorityStore } from './postgres-store.js';
import { SqliteAuthorityStore } from './sqlite-store.js';
import { startTestPostgres, type TestPostgres } from './postgres-test-server.js';
import { decideInstallations, installationKey } from './store.js';
import type {
  AuditEntry,
  AuthorityStore,
  HostActivationRecord,
  InstallationRequest,
  KeyCounter,
  KeyRecord,
} from './store.js';

/** One store interface, two engines, one suite: both must behave the same. */
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

const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'volact-store-'));
  dirs.push(d);
  return d;
};

const engines: [string, () => Promise<{ open: () => AuthorityStore }>][] = [
  [
    'sqlite',
    async () => {
      const path = join(tempDir(), 'authority.db');
      return { open: () => new SqliteAuthorityStore(path) };
    },
  ],
  [
    'postgres',
    async () => {
      const url = await postgres.createDatabase();
      return { open: () => new PostgresAuthorityStore(url) };
    },
  ],
];

function keyRecord(groupIds: string[], overrides: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id: randomGuid(),
    keyHash: randomBytes(32).toString('hex'),
    type: 'kms-host',
    last5: '…ABCDE',
    groupIds,
    limit: 6,
    activationsPerHost: 10,
    createdAt: 1_700_000_000_000,
    revokedAt: null,
    keyRef: randomBytes(8).toString('hex'),
    proofKeySealed: null,
    used: 0,
    // As the store reads a key back since organisations (migration 6).
    orgId: 'org_default',
    note: null,
    keySealed: null,
    ...overrides,
  };
}

/** A host activation record as a decision would save it. */
function hostRecord(keyId: string, hardwareId: string, fill = 0): HostActivationRecord {
  return {
    keyId,
    hardwareId,
    hostPublicKey: Buffer.alloc(32, fill),
    activationCount: 1,
    firstActivatedAt: fill || 1,
    lastActivatedAt: fill || 1,
    certificateSerial: randomGuid(),
    certificateExpiresAt: 10,
  };
}

describe.each(engines)('authority store: %s', (name, database) => {
  const open = async () => {
    const db = await database();
    const store = db.open();
    stores.push(store);
    return { store, reopen: () => (stores.push(db.open()), stores[stores.length - 1]!) };
  };

  it('keeps groups: found by name (any case) or id, listed by name; a duplicate name is GROUP_EXISTS', async () => {
    const { store } = await open();
    const office = { id: randomGuid(), name: 'office14', kind: 'app' as const, threshold: 5, createdAt: 1 };
    await store.addGroup(office);
    await store.addGroup({ id: randomGuid(), name: 'apps', kind: 'client-os', threshold: 25, createdAt: 2 });
    expect(await store.findGroup('OFFICE14')).toEqual({ id: office.id, name: 'office14', kind: 'app', threshold: 5 });
    expect(await store.findGroup(office.id.toUpperCase())).toMatchObject({ name: 'office14' });
    expect(await store.findGroup('nope')).toBeUndefined();
    expect((await store.listGroups()).map((g) => g.name)).toEqual(['apps', 'office14']);
    const dup = await store.addGroup({ ...office, id: randomGuid(), name: 'Office14' }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(AuthorityError);
    expect((dup as AuthorityError).code).toBe('GROUP_EXISTS');
  });

  it('keeps keys with their groups, found by keyed hash; data survives reopening (migrations run once)', async () => {
    const { store, reopen } = await open();
    const g1 = randomGuid();
    const g2 = randomGuid();
    await store.addGroup({ id: g1, name: 'a', kind: 'app', threshold: 5, createdAt: 1 });
    await store.addGroup({ id: g2, name: 'b', kind: 'app', threshold: 5, createdAt: 1 });
    const key = keyRecord([g1, g2].sort());
    await store.addKey(key);
    expect(await store.findKeyByHash(key.keyHash)).toEqual(key);
    expect(await store.findKeyByHash('0'.repeat(64))).toBeUndefined();
    const again = reopen();
    expect(await again.findKeyByHash(key.keyHash)).toEqual(key);
  });

  it('serialises host activations of one key: 20 concurrent decisions admit exactly 6 hosts', async () => {
    const { store, reopen } = await open();
    const g = randomGuid();
    await store.addGroup({ id: g, name: 'g', kind: 'app', threshold: 5, createdAt: 1 });
    const key = keyRecord([g]);
    await store.addKey(key);
    // On PostgreSQL: two handles, as two nodes' connection pools. SQLite's engine is
    // synchronous, so several writers are several processes (its file lock serialises them);
    // within one process the handle's queue does, so one handle stands for both here.
    const other = name === 'postgres' ? reopen() : store;
    const attempt = (s: AuthorityStore, i: number) =>
      s.withHostActivation(key.id, async (tx) => {
        const used = await tx.countHosts(key.id);
        if (used >= 6) return false;
        await new Promise((r) => setImmediate(r)); // widen the race window
        await tx.saveHost(hostRecord(key.id, `hw-${i}`, i));
        return true;
      });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => attempt(i % 2 ? store : other, i)));
    expect(results.filter(Boolean).length).toBe(6);
    expect((await store.listHosts(key.id)).length).toBe(6);
  });

  it('rolls back a decision that fails: nothing of it is kept', async () => {
    const { store } = await open();
    const g = randomGuid();
    await store.addGroup({ id: g, name: 'g', kind: 'app', threshold: 5, createdAt: 1 });
    const key = keyRecord([g]);
    await store.addKey(key);
    const failed = store.withHostActivation(key.id, async (tx) => {
      await tx.saveHost(hostRecord(key.id, 'hw'));
      throw new Error('certificate could not be issued');
    });
    await expect(failed).rejects.toThrow('certificate could not be issued');
    expect(await store.listHosts(key.id)).toEqual([]);
  });

  it('sets a host limit only at or above the hosts in use, and revokes a key once (the first time stays)', async () => {
    const { store } = await open();
    const g = randomGuid();
    await store.addGroup({ id: g, name: 'g', kind: 'app', threshold: 5, createdAt: 1 });
    const key = keyRecord([g], { limit: 2 });
    await store.addKey(key);
    for (const hw of ['a', 'b']) {
      await store.withHostActivation(key.id, (tx) => tx.saveHost(hostRecord(key.id, hw)));
    }
    expect(await store.setLimit(key.id, 1)).toBe(false);
    expect((await store.findKeyByHash(key.keyHash))?.limit).toBe(2);
    expect(await store.setLimit(key.id, 2)).toBe(true);
    expect(await store.setLimit(key.id, 9)).toBe(true);
    expect((await store.findKeyByHash(key.keyHash))?.limit).toBe(9);
    await store.revokeKey(key.id, 100);
    await store.revokeKey(key.id, 200);
    expect((await store.findKeyByHash(key.keyHash))?.revokedAt).toBe(100);
    expect((await store.listHosts(key.id)).length).toBe(2);
  });

  it('decides a batch of installations in order: new ones up to the limit, the same one again free', async () => {
    const { store } = await open();
    const g = randomGuid();
    await store.addGroup({ id: g, name: 'g', kind: 'app', threshold: 5, createdAt: 1 });
    const key = keyRecord([g], { type: 'mak', limit: 2 });
    await store.addKey(key);
    const req = (hw: string, at = 10, keyId = key.id) => ({
      keyId,
      keyLast5: '…ABCDE',
      hardwareRef: hw,
      installationId: `iid-${hw}`,
      channel: 'online' as const,
      at,
    });
    const outcomes = await store.activateInstallations([req('a'), req('a'), req('b'), req('c')]);
    expect(outcomes.map((o) => `${o.outcome}:${o.used}/${o.limit}`)).toEqual([
      'new:1/2',
      'existing:1/2',
      'new:2/2',
      'limit:2/2',
    ]);
    expect((await store.activateInstallations([req('b', 20)]))[0]?.outcome).toBe('existing');
    expect((await store.activateInstallations([req('d')]))[0]?.outcome).toBe('limit');
    const rows = await store.listInstallations(key.id);
    expect(rows.map((r) => [r.hardwareRef, r.activationCount])).toEqual([
      ['a', 2],
      ['b', 2],
    ]);
    expect(rows[1]?.lastActivatedAt).toBe(20);
    expect((await store.findKeyByHash(key.keyHash))?.used).toBe(2);
    expect(await store.setLimit(key.id, 1)).toBe(false);
    expect(await store.setLimit(key.id, 3)).toBe(true);
    expect((await store.activateInstallations([req('d')]))[0]).toEqual({
      outcome: 'new',
      used: 3,
      limit: 3,
    });
    expect((await store.findKeyByRef(key.keyRef as string)).map((k) => k.id)).toEqual([key.id]);
    const audit = await store.recentAudit(20);
    expect(audit.filter((a) => a.result === 'MAK_LIMIT_REACHED').length).toBe(2);
    expect(audit.filter((a) => a.action === 'installation.activate.online').length).toBe(7);

    // One batch over several keys: each key counted on its own; a repeat counted per request;
    // a revoked key refused.
    const other = keyRecord([g], { type: 'mak', limit: 1 });
    const revoked = keyRecord([g], { type: 'mak', limit: 5 });
    await store.addKey(other);
    await store.addKey(revoked);
    await store.revokeKey(revoked.id, 5);
    const mixed = await store.activateInstallations([
      req('x', 30, other.id),
      req('a', 30),
      req('y', 30, other.id),
      req('a', 31),
      req('z', 30, revoked.id),
    ]);
    expect(mixed.map((o) => o.outcome)).toEqual(['new', 'existing', 'limit', 'existing', 'revoked']);
    expect((await store.listInstallations(key.id)).find((r) => r.hardwareRef === 'a')).toMatchObject({
      activationCount: 4,
      lastActivatedAt: 31,
    });
    expect((await store.findKeyByHash(other.keyHash))?.used).toBe(1);
    expect(await store.listInstallations(revoked.id)).toEqual([]);
  });

  it('decides random batches exactly as decideInstallations: outcomes, rows, counts and audit rows', async () => {
    const { store } = await open();
    const g = randomGuid();
    await store.addGroup({ id: g, name: 'g', kind: 'app', threshold: 5, createdAt: 1 });
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const keys = Array.from({ length: 5 }, () => keyRecord([g], { type: 'mak', limit: 1 + rnd(5) }));
    for (const k of keys) await store.addKey(k);
    const ids = [...keys.map((k) => k.id), randomGuid()]; // the last was never minted
    // The model: each key's counter and the installations recorded, updated from each decision.
    const counters = new Map<string, KeyCounter>(keys.map((k) => [k.id, { limit: k.limit!, used: 0, revoked: false }]));
    const recorded = new Set<string>();
    const rows = new Map<string, { count: number; first: number; last: number }>();
    const audit: AuditEntry[] = [];
    for (let round = 0; round < 60; round++) {
      if (round === 20) {
        await store.revokeKey(keys[0]!.id, 5);
        counters.set(keys[0]!.id, { ...counters.get(keys[0]!.id)!, revoked: true });
      }
      if (round === 40) {
        const c = counters.get(keys[1]!.id)!;
        expect(await store.setLimit(keys[1]!.id, c.used + 2)).toBe(true);
        counters.set(keys[1]!.id, { ...c, limit: c.used + 2 });
      }
      const batch: InstallationRequest[] = Array.from({ length: 1 + rnd(10) }, () => {
        const hw = `hw${rnd(6)}`;
        return {
          keyId: ids[rnd(ids.length)]!,
          keyLast5: `…K${rnd(3)}`,
          hardwareRef: hw,
          installationId: `iid-${hw}`,
          channel: rnd(2) ? ('online' as const) : ('phone' as const),
          at: round * 10 + rnd(9),
          ...(rnd(4) === 0 ? { limitCode: 'RETAIL_ALREADY_ACTIVATED' as const } : {}),
        };
      });
      const expected = decideInstallations(batch, counters, recorded);
      expect(await store.activateInstallations(batch)).toEqual(expected.outcomes);
      for (const [id, used] of expected.usedByKey) counters.set(id, { ...counters.get(id)!, used });
      for (const r of expected.admitted) {
        recorded.add(installationKey(r.keyId, r.hardwareRef));
        rows.set(installationKey(r.keyId, r.hardwareRef), { count: 1, first: r.at, last: r.at });
      }
      for (const r of expected.repeats) {
        const row = rows.get(installationKey(r.keyId, r.hardwareRef))!;
        rows.set(installationKey(r.keyId, r.hardwareRef), {
          ...row,
          count: row.count + r.times,
          last: Math.max(row.last, r.at),
        });
      }
      audit.push(...expected.audit);
    }
    for (const k of keys) {
      expect((await store.findKeyByHash(k.keyHash))?.used).toBe(counters.get(k.id)!.used);
      const stored = (await store.listInstallations(k.id)).map((r) => [
        r.hardwareRef,
        r.activationCount,
        r.firstActivatedAt,
        r.lastActivatedAt,
      ]);
      const model = [...rows]
        .filter(([id]) => id.startsWith(`${k.id}\0`))
        .map(([id, r]) => [id.split('\0')[1], r.count, r.first, r.last]);
      const byHw = (a: unknown[], b: unknown[]) => String(a[0]).localeCompare(String(b[0]));
      expect(stored.sort(byHw)).toEqual(model.sort(byHw));
    }
    // recentAudit reads the row's first columns (the organisation and key are read by organisations/store.ts).
    const newestFirst = audit
      .reverse()
      .map((a) => ({ at: a.at, action: a.action, result: a.result, keyLast5: a.keyLast5, detail: a.detail }));
    expect(await store.recentAudit(audit.length)).toEqual(newestFirst);
  });

  it('keeps a retail key (limit 1) like a MAK: one installation, the same again free, another refused and audited as such', async () => {
    const { store, reopen } = await open();
    const g = randomGuid();
    await store.addGroup({ id: g, name: 'g', kind: 'app', threshold: 5, createdAt: 1 });
    const key = keyRecord([g], { type: 'retail', limit: 1, activationsPerHost: null });
    await store.addKey(key);
    expect(await reopen().findKeyByHash(key.keyHash)).toEqual(key);
    const req = (hw: string, channel: 'online' | 'phone') => ({
      keyId: key.id,
      keyLast5: '…ABCDE',
      hardwareRef: hw,
      installationId: `iid-${hw}`,
      channel,
      at: 10,
      limitCode: 'RETAIL_ALREADY_ACTIVATED' as const,
    });
    const outcomes = await store.activateInstallations([req('a', 'online'), req('b', 'online'), req('a', 'phone')]);
    expect(outcomes.map((o) => `${o.outcome}:${o.used}/${o.limit}`)).toEqual(['new:1/1', 'limit:1/1', 'existing:1/1']);
    expect((await store.activateInstallations([req('c', 'phone')]))[0]?.outcome).toBe('limit');
    expect((await store.listInstallations(key.id)).map((r) => [r.hardwareRef, r.activationCount])).toEqual([['a', 2]]);
    expect((await store.findKeyByHash(key.keyHash))?.used).toBe(1);
    const audit = await store.recentAudit(10);
    expect(audit.filter((a) => a.result === 'RETAIL_ALREADY_ACTIVATED').map((a) => a.action)).toEqual([
      'installation.activate.phone',
      'installation.activate.online',
    ]);
    expect(audit.some((a) => a.result === 'MAK_LIMIT_REACHED')).toBe(false);
  });

  it('keeps the audit log, newest first', async () => {
    const { store } = await open();
    await store.audit({ at: 1, action: 'key.mint', result: 'OK', keyLast5: '…AAAAA' });
    await store.audit({ at: 2, action: 'host.activate', result: 'HOST_LIMIT_REACHED', detail: 'x' });
    expect(await store.recentAudit(10)).toEqual([
      { at: 2, action: 'host.activate', result: 'HOST_LIMIT_REACHED', keyLast5: undefined, detail: 'x' },
      { at: 1, action: 'key.mint', result: 'OK', keyLast5: '…AAAAA', detail: undefined },
    ]);
  });
});

describe('several authority nodes on one PostgreSQL database', () => {
  it('keep a 6-host key exact: 12 hosts activating at once through two nodes, 6 succeed', async () => {
    const url = await postgres.createDatabase();
    const clock = new ManualClock();
    const dataDir = join(tempDir(), 'authority');
    const first = Authority.init(dataDir, { clock, databaseUrl: url });
    const second = Authority.open(dataDir, { clock, databaseUrl: url }); // another node: same keys, own pool
    try {
      await first.addGroup({ name: 'office14', threshold: 5 });
      const { key } = await second.mintKey({ type: 'kms-host', groups: ['office14'] });
      const outcomes = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 ? first : second).activateHost({
            hostKey: key,
            hostPublicKey: generateSigningKeyPair().publicKeyRaw,
            hardwareId: `host-${i}`,
          }),
        ),
      );
      const refused = outcomes.filter((o) => o.status === 'rejected').map((o) => (o.reason as AuthorityError).code);
      expect(outcomes.filter((o) => o.status === 'fulfilled').length).toBe(6);
      expect(refused).toEqual(Array(6).fill('HOST_LIMIT_REACHED'));
    } finally {
      await first.close();
      await second.close();
    }
  });
});
