import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DAY, LICENCE_STATES, type AgentStatus, type LicenceState } from '@volact/core';
import { startTestPostgres, type TestPostgres } from '@volact/authority/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Fleet, statusDigest } from '../fleet.js';
import { generateFleet } from '../generate-fleet.js';
import { PostgresConsoleStore } from '../postgres-store.js';
import * as reportOps from '../report-operations.js';
import {
  atRiskReport,
  byAuthorityReport,
  duplicateCmidReport,
  makUsageReport,
  unlicensedReport,
  type ReportInput,
} from '../reports-reference.js';
import { REPORT_COLUMNS, REPORT_NAMES } from '../reports.js';
import { SqliteConsoleStore } from '../sqlite-store.js';
import type { ConsoleStore, ImportData, SnapshotRecord } from '../store.js';
import { MACHINE_SORTS, REPORT_COLUMN_LABELS, type MachineSort } from '../web/contract.js';
import * as views from './operations.js';
import { displayName } from './rows.js';
import type { MachineView } from './store.js';

/** The views (pages, filters, sorts, counts, reports in SQL) on both engines: the same answers. */
let postgres: TestPostgres;
const dirs: string[] = [];
const opened: ConsoleStore[] = [];
const NOW = Date.parse('2026-12-01T00:00:00.000Z');

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
      const d = mkdtempSync(join(tmpdir(), 'volact-views-'));
      dirs.push(d);
      return new SqliteConsoleStore(join(d, 'console.db'));
    },
  ],
  ['postgres', async () => PostgresConsoleStore.open(await postgres.createDatabase())],
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

const fleetOf = (store: ConsoleStore) => new Fleet(store, {} as never, { clock: { now: () => NOW } });

describe.each(engines)('views: %s', (_engine, open) => {
  let store: ConsoleStore;
  beforeEach(async () => {
    store = await open();
    opened.push(store);
  });

  async function machine(name: string, address: string) {
    const tokenId = await store.findOrAddToken({ fingerprint: 'fp', sealed: 'v1:x', createdAt: 1 });
    return store.addMachine({ name, address, tokenId, addedAt: 1 });
  }
  const view = async (id: number) => (await store.views.machineView(id)) as MachineView;

  it('addSnapshot keeps the latest status on the machine row, in the same write; a repeated status changes nothing', async () => {
    const pc = await machine('pc-01', '10.0.0.1:7390');
    expect((await view(pc.id)).latest).toBeNull();
    const first = status();
    expect(await store.addSnapshot(pc.id, 10, first, statusDigest(first))).toBe(true);
    const licensed = status({ state: 'licensed', method: 'kms', host: 'kms.example:1688', installedKey: '…XYZ12' });
    expect(await store.addSnapshot(pc.id, 20, licensed, statusDigest(licensed))).toBe(true);
    expect(await store.addSnapshot(pc.id, 30, licensed, statusDigest(licensed))).toBe(false);
    const history = await store.history(pc.id);
    expect((await view(pc.id)).latest).toEqual({
      snapshotId: history[1]?.id,
      takenAt: 20,
      state: 'licensed',
      method: 'kms',
      group: 'office14',
      clientMachineId: first.clientMachineId,
      installedKey: '…XYZ12',
      installedKeyType: 'gvlk',
      kmsHost: 'kms.example:1688',
      expiresAt: '2026-12-25T09:00:00.000Z',
    });
    expect(await store.views.stateCounts()).toEqual({ licensed: 1 });
  });

  it('importData recomputes the latest status of the machines it touched (an older row merged in keeps the newest)', async () => {
    const data = (snapshots: ImportData['snapshots']): ImportData => ({
      machines: [{ name: 'pc-01', address: '10.0.0.1:7390', addedAt: 1, lastSeenAt: 50, lastError: null, token: null }],
      snapshots,
      keys: [],
      confirmations: [],
      operations: [],
    });
    const a = status({ state: 'licensed', method: 'mak' });
    await store.importData(data([{ address: '10.0.0.1:7390', takenAt: 20, digest: 'd20', status: a }]));
    const [pc] = await store.listMachines();
    expect((await view(pc!.id)).latest).toMatchObject({ state: 'licensed', method: 'mak', takenAt: 20 });
    // A newer row: the latest moves; an older one merged in (history rewritten): it stays the newest.
    const b = status({ state: 'notification' });
    await store.importData(data([{ address: '10.0.0.1:7390', takenAt: 30, digest: 'd30', status: b }]));
    expect((await view(pc!.id)).latest).toMatchObject({ state: 'notification', method: null, takenAt: 30 });
    await store.importData(data([{ address: '10.0.0.1:7390', takenAt: 5, digest: 'd5', status: status() }]));
    const latest = (await view(pc!.id)).latest;
    expect(latest).toMatchObject({ state: 'notification', takenAt: 30 });
    const history = await store.history(pc!.id);
    expect(latest?.snapshotId).toBe(history[history.length - 1]?.id);
    expect((await store.latestSnapshots()).get(pc!.id)?.id).toBe(latest?.snapshotId);
  });

  it('facts: written without a history row, shown as the display name of a machine added by address, found by host name (any case)', async () => {
    const byAddress = await machine('10.0.0.1:7390', '10.0.0.1:7390');
    const named = await machine('reception', '10.0.0.2:7390');
    const facts = { hostName: 'PC-Front.corp', os: 'Linux', osVersion: '6.8', productVersion: null, lastBootAt: 7 };
    await store.views.setMachineFacts([
      { machineId: byAddress.id, facts },
      { machineId: named.id, facts: { ...facts, hostName: 'pc-back.corp' } },
    ]);
    expect(await store.history(byAddress.id)).toEqual([]);
    expect((await store.getMachine(byAddress.id))?.facts).toEqual(facts);
    expect((await view(byAddress.id)).displayName).toBe('PC-Front.corp');
    expect((await view(named.id)).displayName).toBe('reception');
    expect((await store.views.findByHostName('pc-front.CORP', 2)).map((v) => v.machine.id)).toEqual([byAddress.id]);
    const page = await store.views.pageMachines({ offset: 0, limit: 10, sort: 'name', dir: 'asc' });
    expect(page.machines.map((v) => v.displayName)).toEqual(['PC-Front.corp', 'reception']);
    expect((await store.views.pageMachines({ offset: 0, limit: 10, sort: 'name', dir: 'asc', q: 'FRONT' })).total).toBe(
      1,
    );
    // A host name two machines share names neither.
    await store.views.setMachineFacts([{ machineId: named.id, facts }]);
    expect(await store.views.findByHostName('pc-front.corp', 2)).toHaveLength(2);
    const fleet = fleetOf(store);
    await expect(fleet.resolve(['pc-front.corp'])).rejects.toMatchObject({ code: 'MACHINE_NOT_FOUND' });
    await store.views.setMachineFacts([{ machineId: named.id, facts: { ...facts, hostName: 'pc-back.corp' } }]);
    expect((await fleet.resolve(['PC-FRONT.corp'])).map((m) => m.id)).toEqual([byAddress.id]);
    expect((await views.findMachineSummary(fleet, 'pc-back.corp'))?.name).toBe('reception');
    expect(await views.findMachineSummary(fleet, 'nobody.corp')).toBeUndefined();
  });

  it('a refresh keeps the agent facts on the machine (no history row for facts alone); its result names the machine as of then', async () => {
    const pc = await machine('10.0.0.9:7390', '10.0.0.9:7390');
    const fleet = fleetOf(store);
    const facts = { hostName: 'lab-7', os: 'Linux', osVersion: '6.8', productVersion: '16.0', lastBootAt: null };
    const first = { ...status(), machine: facts };
    expect(await fleet.recordStatus(pc, first)).toBe(true);
    const seen = (await store.getMachine(pc.id)) as NonNullable<Awaited<ReturnType<typeof store.getMachine>>>;
    expect(seen.facts).toEqual(facts);
    expect(seen.lastSeenAt).toBe(NOW);
    const rebooted = { ...facts, lastBootAt: '2026-11-30T08:00:00.000Z' };
    expect(await fleet.recordStatus(seen, { ...status(), machine: rebooted })).toBe(false);
    expect(await store.history(pc.id)).toHaveLength(1);
    expect((await store.getMachine(pc.id))?.facts?.lastBootAt).toBe(Date.parse('2026-11-30T08:00:00.000Z'));
    const result = fleet.success(seen, first, 'ok');
    expect(result).toMatchObject({ displayName: 'lab-7', lastSeenAt: new Date(NOW).toISOString() });
    expect(
      (await views.pageMachines(fleet, { offset: 0, limit: 5, sort: 'name', dir: 'asc' })).machines[0],
    ).toMatchObject({
      displayName: 'lab-7',
      hostName: 'lab-7',
      os: 'Linux',
      productVersion: '16.0',
      state: 'initial-grace',
    });
  });

  it('the status digest leaves the agent facts out: facts alone write no history row', () => {
    const s = status();
    const withFacts = {
      ...s,
      machine: { hostName: 'h', os: 'Linux', osVersion: '1', productVersion: null, lastBootAt: null },
    };
    expect(statusDigest(withFacts)).toBe(statusDigest(s));
  });

  describe('over a generated fleet', () => {
    const COUNT = 700;
    let all: MachineView[];
    beforeEach(async () => {
      await generateFleet(store, COUNT, { now: NOW });
      all = (await store.views.pageMachines({ offset: 0, limit: 10_000, sort: 'name', dir: 'asc' })).machines;
    }, 60_000);

    it('spreads the machines over every state (and never read), every method, duplicate CMIDs and MAKs', async () => {
      expect(all).toHaveLength(COUNT);
      const counts = await views.stateCounts(fleetOf(store));
      for (const s of [...LICENCE_STATES, 'unknown' as const]) expect(counts[s]).toBeGreaterThan(0);
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(COUNT);
      const methods = new Set(all.map((v) => v.latest?.method ?? null));
      expect(methods.size).toBe(7);
      expect(all.some((v) => v.latest?.installedKeyType === 'mak')).toBe(true);
      expect(all.filter((v) => v.machine.facts !== null).length).toBeGreaterThan(COUNT / 2);
    });

    it.each(MACHINE_SORTS)('sort %s: pages in both directions hold every machine once, in order', async (sort) => {
      for (const dir of ['asc', 'desc'] as const) {
        const seen: number[] = [];
        const pages: MachineView[] = [];
        for (let offset = 0; offset < COUNT; offset += 97) {
          const page = await store.views.pageMachines({ offset, limit: 97, sort, dir });
          expect(page.total).toBe(COUNT);
          pages.push(...page.machines);
          seen.push(...page.machines.map((v) => v.machine.id));
        }
        expect(new Set(seen).size).toBe(COUNT);
        const keys = pages.map((v) => sortKey(v, sort));
        for (let i = 1; i < keys.length; i++) {
          const c = compareKeys(keys[i - 1] as Key[], keys[i] as Key[]);
          expect(dir === 'asc' ? c <= 0 : c >= 0, `${sort} ${dir} at ${i}`).toBe(true);
        }
      }
    });

    it.each(['expiresAt', 'method', 'installedKey', 'lastSeenAt'] as const)(
      'a state filter sorted by %s: pages in both directions hold each machine of the state once, in order',
      async (sort) => {
        for (const state of ['licensed', 'unlicensed', 'initial-grace']) {
          for (const dir of ['asc', 'desc'] as const) {
            const expected = all
              .filter((v) => v.latest?.state === state)
              .sort((a, b) => compareKeys(sortKey(a, sort), sortKey(b, sort)) * (dir === 'asc' ? 1 : -1))
              .map((v) => v.machine.id);
            const seen: number[] = [];
            for (let offset = 0; offset < expected.length; offset += 37) {
              const page = await store.views.pageMachines({ offset, limit: 37, sort, dir, state });
              expect(page.total).toBe(expected.length);
              seen.push(...page.machines.map((v) => v.machine.id));
            }
            expect(seen, `${state} ${dir}`).toEqual(expected);
          }
        }
      },
    );

    it('filters: state (unknown: never read), method (none), text in any case; totals and ids agree', async () => {
      const fleet = fleetOf(store);
      const page = (filter: { q?: string; state?: string; method?: string }) =>
        views.pageMachines(fleet, { offset: 0, limit: 500, sort: 'name', dir: 'asc', ...filter });
      const unknown = await page({ state: 'unknown' });
      expect(unknown.total).toBe(all.filter((v) => v.latest === null).length);
      expect(unknown.machines.every((m) => m.state === null)).toBe(true);
      const none = await page({ method: 'none' });
      expect(none.total).toBe(all.filter((v) => (v.latest?.method ?? null) === null).length);
      const kms = await page({ state: 'licensed', method: 'kms' });
      expect(kms.total).toBe(all.filter((v) => v.latest?.state === 'licensed' && v.latest.method === 'kms').length);
      expect(kms.total).toBeGreaterThan(0);
      const host = await page({ q: 'HOST-00012' });
      expect(host.machines.map((m) => m.hostName)).toEqual(
        all.filter((v) => v.machine.facts?.hostName.startsWith('host-00012')).map((v) => v.machine.facts?.hostName),
      );
      expect(host.total).toBeGreaterThan(0);
      // LIKE's wildcards are text here.
      expect((await page({ q: '%' })).total).toBe(0);
      expect((await page({ q: 'host_0' })).total).toBe(0);
      const cmid = all.find((v) => v.latest)?.latest?.clientMachineId as string;
      expect((await page({ q: cmid.toUpperCase() })).total).toBeGreaterThanOrEqual(1);
      expect(await views.machineIds(fleet, { state: 'licensed', method: 'kms' })).toEqual(
        kms.machines.map((m) => String(m.id)).sort((a, b) => Number(a) - Number(b)),
      );
      // The last page of a filter.
      const last = await views.pageMachines(fleet, {
        offset: none.total - 3,
        limit: 50,
        sort: 'name',
        dir: 'asc',
        method: 'none',
      });
      expect(last.machines.map((m) => m.id)).toEqual(
        all
          .filter((v) => (v.latest?.method ?? null) === null)
          .slice(-3)
          .map((v) => v.machine.id),
      );
    });

    it('reports in SQL give the rows the reports over records gave (the display name as the machine)', async () => {
      const fleet = fleetOf(store);
      const latest = await store.latestSnapshots();
      const input: ReportInput = {
        now: NOW,
        machines: (await store.listMachines()).map((m) => ({ ...m, name: displayName(m) })),
        latest,
        keys: await store.listKeys(),
      };
      const reference = {
        'at-risk': atRiskReport(input, 30),
        'duplicate-cmid': duplicateCmidReport(input),
        'mak-usage': makUsageReport(input, new Map()),
        unlicensed: unlicensedReport(input),
        'by-authority': byAuthorityReport(input),
      };
      for (const name of REPORT_NAMES) {
        const sql = await reportOps.report(fleet, name, { days: 30 });
        expect(sql.columns, name).toEqual(reference[name].columns);
        expect(sql.rows.length, name).toBeGreaterThan(0);
        expect(sql.rows, name).toEqual(reference[name].rows);
        // Pages: the same rows, with every column labelled.
        const page = await reportOps.reportPage(fleet, name, { days: 30, offset: 2, limit: 5 });
        expect(page.total, name).toBe(sql.rows.length);
        expect(page.rows, name).toEqual(sql.rows.slice(2, 7));
        for (const c of page.columns) expect(page.labels[c], `${name}.${c}`).toBe(REPORT_COLUMN_LABELS[c]);
      }
      expect(reference['duplicate-cmid'].rows.length).toBeGreaterThanOrEqual(2);
    });

    it('the state timeline in SQL counts as the sweep over every history row did', async () => {
      const fleet = fleetOf(store);
      for (const days of [1, 30, 45]) {
        expect(await reportOps.stateTimeline(fleet, days)).toEqual(await referenceTimeline(store, days));
      }
    });

    it('operations page: newest first, filtered by text, operation and outcome', async () => {
      const fleet = fleetOf(store);
      const everything = await views.operationsPage(fleet, { offset: 0, limit: 500 });
      expect(everything.total).toBe(Math.ceil(COUNT / 10));
      const ats = everything.operations.map((o) => o.at);
      expect(ats).toEqual([...ats].sort((a, b) => b - a));
      const failed = await views.operationsPage(fleet, { offset: 0, limit: 500, outcome: 'failed' });
      expect(failed.total).toBe(everything.operations.filter((o) => !o.ok).length);
      expect(failed.operations.every((o) => !o.ok)).toBe(true);
      const activate = await views.operationsPage(fleet, { offset: 1, limit: 3, operation: 'activate', q: 'LICENSED' });
      const expected = everything.operations.filter((o) => o.operation === 'activate' && o.detail === 'licensed');
      expect(activate.total).toBe(expected.length);
      expect(activate.operations).toEqual(expected.slice(1, 4));
    });
  });
});

type Key = string | number | null;
/** A sort key as the SQL compares it: ASCII case folded for names, NULL first. */
function sortKey(v: MachineView, sort: MachineSort): [Key, string, number] {
  const f = v.machine.facts;
  const l = v.latest;
  const fold = (s: string | null | undefined) => (s == null ? null : s.replace(/[A-Z]/g, (c) => c.toLowerCase()));
  const name = fold(v.displayName) as string;
  const key: Record<MachineSort, Key> = {
    name,
    address: v.machine.address,
    hostName: fold(f?.hostName),
    os: f?.os ?? null,
    productVersion: f?.productVersion ?? null,
    state: l?.state ?? null,
    method: l?.method ?? null,
    group: l?.group ?? null,
    installedKey: l?.installedKey ?? null,
    kmsHost: l?.kmsHost ?? null,
    expiresAt: l?.expiresAt ?? null,
    lastSeenAt: v.machine.lastSeenAt,
    lastBootAt: f?.lastBootAt ?? null,
  };
  return [key[sort], sort === 'address' ? '' : name, v.machine.id];
}
function compareKeys(a: Key | Key[], b: Key | Key[]): number {
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < a.length; i++) {
      const c = compareKeys(a[i] as Key, b[i] as Key);
      if (c !== 0) return c;
    }
    return 0;
  }
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  // Byte order of UTF-8 = code point order.
  const x = [...String(a)].map((c) => c.codePointAt(0) as number);
  const y = [...String(b)].map((c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

/** The timeline as it was computed before (every history row swept in JS). */
async function referenceTimeline(store: ConsoleStore, days: number) {
  const span = Math.max(1, Math.min(Math.trunc(days), 3660));
  const today = Math.floor(NOW / DAY) * DAY;
  const ends = Array.from({ length: span }, (_, i) => today - (span - 1 - i) * DAY + DAY);
  const rows = await store.snapshotsBefore(ends[ends.length - 1] as number);
  const byMachine = new Map<number, SnapshotRecord[]>();
  for (const r of rows) byMachine.set(r.machineId, [...(byMachine.get(r.machineId) ?? []), r]);
  const perDay = ends.map(
    () => Object.fromEntries(LICENCE_STATES.map((st) => [st, 0])) as Record<LicenceState, number>,
  );
  for (const history of byMachine.values()) {
    history.sort((a, b) => a.takenAt - b.takenAt);
    let next = 0;
    let state: LicenceState | undefined;
    ends.forEach((end, day) => {
      while (next < history.length && (history[next] as SnapshotRecord).takenAt < end) {
        state = (history[next++] as SnapshotRecord).state;
      }
      if (state !== undefined) (perDay[day] as Record<LicenceState, number>)[state]++;
    });
  }
  return ends.map((end, day) => ({ day: new Date(end - DAY).toISOString().slice(0, 10), counts: perDay[day] }));
}

void REPORT_COLUMNS;
