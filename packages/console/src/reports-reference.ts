import { DAY } from '@volact/core';
import type { CsvValue } from './csv.js';
import { RISK_REASON, activatedByOf, type Report } from './reports.js';
import type { MachineRecord, SnapshotRecord, StoredKeyRecord } from './store.js';

/**
 * The five reports as the console computed them in JS before they moved to SQL (views/): kept,
 * for the tests only, as the reference the SQL reports are compared to on a generated fleet
 * (views/views.contract.test.ts). Not exported by the package; nothing in the console calls it.
 */

/** What a report reads: every machine with its latest snapshot (when it ever answered). */
export interface ReportInput {
  readonly now: number;
  readonly machines: readonly MachineRecord[];
  readonly latest: ReadonlyMap<number, SnapshotRecord>;
  readonly keys: readonly StoredKeyRecord[];
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const byName = (a: { machine: CsvValue }, b: { machine: CsvValue }) =>
  String(a.machine).localeCompare(String(b.machine));

function withStatus(input: ReportInput): { machine: MachineRecord; snapshot: SnapshotRecord }[] {
  return input.machines.flatMap((machine) => {
    const snapshot = input.latest.get(machine.id);
    return snapshot ? [{ machine, snapshot }] : [];
  });
}

/**
 * At risk: in a grace period (initial, out-of-tolerance, non-genuine), in notification, or
 * licensed with a licence that ends within `days`.
 */
export function atRiskReport(input: ReportInput, days: number): Report {
  const rows = withStatus(input).flatMap(({ machine, snapshot }) => {
    const ends = snapshot.expiresAt === null ? null : Date.parse(snapshot.expiresAt);
    const daysLeft = ends === null ? null : Math.max(0, Math.floor((ends - input.now) / DAY));
    let reason = RISK_REASON[snapshot.state];
    if (!reason && snapshot.state === 'licensed' && ends !== null && ends - input.now <= days * DAY) {
      reason = `licence ends within ${days} days: renew it`;
    }
    if (!reason) return [];
    return [
      {
        machine: machine.name,
        address: machine.address,
        group: snapshot.group,
        state: snapshot.state,
        expiresAt: snapshot.expiresAt,
        daysLeft,
        reason,
        lastSeenAt: iso(machine.lastSeenAt),
      },
    ];
  });
  return {
    report: 'at-risk',
    generatedAt: iso(input.now) as string,
    columns: ['machine', 'address', 'group', 'state', 'expiresAt', 'daysLeft', 'reason', 'lastSeenAt'],
    rows: rows.sort(byName),
  };
}

/** The same client machine ID on several machines (cloned images not generalised): one row per machine. */
export function duplicateCmidReport(input: ReportInput): Report {
  const byCmid = new Map<string, { machine: MachineRecord; snapshot: SnapshotRecord }[]>();
  for (const entry of withStatus(input)) {
    const list = byCmid.get(entry.snapshot.clientMachineId) ?? [];
    list.push(entry);
    byCmid.set(entry.snapshot.clientMachineId, list);
  }
  const rows = [...byCmid.entries()]
    .filter(([, list]) => list.length > 1)
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([cmid, list]) =>
      list
        .map(({ machine, snapshot }) => ({
          clientMachineId: cmid,
          machines: list.length,
          machine: machine.name,
          address: machine.address,
          group: snapshot.group,
          state: snapshot.state,
        }))
        .sort(byName),
    );
  return {
    report: 'duplicate-cmid',
    generatedAt: iso(input.now) as string,
    columns: ['clientMachineId', 'machines', 'machine', 'address', 'group', 'state'],
    rows,
  };
}

/**
 * Per stored MAK: the authority's counters as last read (`refresh-mak`, or the report with
 * --authority; `countedAt` says when) and the machines whose latest status shows that MAK
 * installed (matched on its last five characters).
 */
export function makUsageReport(input: ReportInput, authorityErrors: ReadonlyMap<string, string>): Report {
  const entries = withStatus(input);
  const rows = input.keys
    .filter((k) => k.type === 'mak')
    .map((key) => {
      const using = entries
        .filter((e) => e.snapshot.installedKeyType === 'mak' && e.snapshot.installedKey === key.last5)
        .map((e) => ({
          name: e.machine.name,
          licensed: e.snapshot.state === 'licensed' && e.snapshot.method === 'mak',
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
      const c = key.counters;
      return {
        name: key.name,
        key: key.last5,
        limit: c?.limit ?? null,
        used: c?.used ?? null,
        remaining: c?.remaining ?? null,
        countedAt: iso(c?.countedAt ?? null),
        installedOn: using.length,
        activatedOn: using.filter((u) => u.licensed).length,
        machines: using.map((u) => u.name),
        authorityError: authorityErrors.get(key.name) ?? null,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  return {
    report: 'mak-usage',
    generatedAt: iso(input.now) as string,
    columns: [
      'name',
      'key',
      'limit',
      'used',
      'remaining',
      'countedAt',
      'installedOn',
      'activatedOn',
      'machines',
      'authorityError',
    ],
    rows,
  };
}

/** Unlicensed: no key installed (unlicensed) or every grace period over (notification). */
export function unlicensedReport(input: ReportInput): Report {
  const rows = withStatus(input)
    .filter(({ snapshot }) => snapshot.state === 'unlicensed' || snapshot.state === 'notification')
    .map(({ machine, snapshot }) => ({
      machine: machine.name,
      address: machine.address,
      group: snapshot.group,
      state: snapshot.state,
      installedKey: snapshot.installedKey,
      installedKeyType: snapshot.installedKeyType,
      lastAttemptCode: snapshot.status.lastAttempt?.ok === false ? (snapshot.status.lastAttempt.code ?? null) : null,
      lastSeenAt: iso(machine.lastSeenAt),
    }));
  return {
    report: 'unlicensed',
    generatedAt: iso(input.now) as string,
    columns: [
      'machine',
      'address',
      'group',
      'state',
      'installedKey',
      'installedKeyType',
      'lastAttemptCode',
      'lastSeenAt',
    ],
    rows: rows.sort(byName),
  };
}

/** A text field of an object the agent's status carries beyond the console's schema (kept as received). */
/**
 * What activated each machine: a KMS host (its address), an activation object (name and
 * domain), a MAK (last five, and the stored key's name), a retail key (last five), an OEM marker
 * (the manufacturer) or a token (the issuing CA's organisation); null when not activated.
 */
export function byAuthorityReport(input: ReportInput): Report {
  const keyByLast5 = new Map(input.keys.filter((k) => k.type === 'mak').map((k) => [k.last5, k]));
  const rows = withStatus(input).map(({ machine, snapshot }) => {
    const { activatedBy, authority, keyName } = activatedByOf(snapshot, snapshot.status, keyByLast5);
    return {
      machine: machine.name,
      address: machine.address,
      group: snapshot.group,
      state: snapshot.state,
      activatedBy,
      authority,
      keyName,
      expiresAt: snapshot.expiresAt,
    };
  });
  return {
    report: 'by-authority',
    generatedAt: iso(input.now) as string,
    columns: ['machine', 'address', 'group', 'state', 'activatedBy', 'authority', 'keyName', 'expiresAt'],
    rows: rows.sort(byName),
  };
}
