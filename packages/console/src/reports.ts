import { DAY } from '@volact/core';
import type { CsvValue } from './csv.js';
import type { MachineRecord, SnapshotRecord, StoredKeyRecord } from './store.js';

import type { Report } from './web/contract.js';

/**
 * The five licensing reports of the reference's management tool (VAMT 3.0). A report's shape
 * (its `columns`: the CSV's, in order; every row has these keys) is the web API's contract.
 */
export { REPORT_NAMES, type Report, type ReportName } from './web/contract.js';

export type ReportRow = Report['rows'][number];

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

const RISK_REASON: Partial<Record<SnapshotRecord['state'], string>> = {
  'initial-grace': 'in initial grace: never activated; activate it',
  'out-of-tolerance': 'licence lapsed (out-of-tolerance grace): renew it; is its KMS host reachable?',
  'non-genuine-grace': 'the stored activation does not verify (altered licence store): activate it again',
  notification: 'grace period over (notification): activate it',
};

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
function textField(status: object, object: string, field: string): string | null {
  const value = (status as Record<string, unknown>)[object];
  if (value === null || typeof value !== 'object') return null;
  const text = (value as Record<string, unknown>)[field];
  return typeof text === 'string' ? text.slice(0, 200) : null;
}

/**
 * What activated each machine: a KMS host (its address), an activation object (name and
 * domain), a MAK (last five, and the stored key's name), a retail key (last five), an OEM marker
 * (the manufacturer) or a token (the issuing CA's organisation); null when not activated.
 */
export function byAuthorityReport(input: ReportInput): Report {
  const keyByLast5 = new Map(input.keys.filter((k) => k.type === 'mak').map((k) => [k.last5, k]));
  const rows = withStatus(input).map(({ machine, snapshot }) => {
    let activatedBy: string | null = null;
    let authority: string | null = null;
    let keyName: string | null = null;
    switch (snapshot.method) {
      case 'kms':
        activatedBy = 'kms-host';
        authority = snapshot.kmsHost;
        break;
      case 'directory':
        activatedBy = 'directory-object';
        authority = snapshot.status.directoryObject
          ? `${snapshot.status.directoryObject.name}@${snapshot.status.directoryObject.domain}`
          : null;
        break;
      case 'mak':
        activatedBy = 'mak';
        authority = snapshot.installedKey;
        keyName = (snapshot.installedKey && keyByLast5.get(snapshot.installedKey)?.name) ?? null;
        break;
      case 'retail':
        // The machine's own retail key (last five); the console keeps no retail keys.
        activatedBy = 'retail';
        authority = snapshot.installedKey;
        break;
      case 'oem':
        activatedBy = 'oem-marker';
        authority = textField(snapshot.status, 'oem', 'manufacturer');
        break;
      case 'token':
        activatedBy = 'token';
        authority = textField(snapshot.status, 'token', 'organisation');
        break;
      case null:
        break;
    }
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
