import { DAY } from '@volact/core';
import type { SnapshotRecord, StoredKeyRecord } from './store.js';
import type { ReportMachineRow } from './views/store.js';

import type { Report, ReportName } from './web/contract.js';

/**
 * The five licensing reports of the reference's management tool (VAMT 3.0). A report's shape
 * (its `columns`: the CSV's, in order; every row has these keys) is the web API's contract.
 */
export { REPORT_NAMES, type Report, type ReportName } from './web/contract.js';

export type ReportRow = Report['rows'][number];

/**
 * The reports are computed in SQL (views/: the machines' denormalised latest status, one page
 * or every row); the row builders below turn a selected machine into its report row. The JS
 * reports the SQL ones are tested against are in reports-reference.ts (tests only).
 */

/** Each report's columns (the CSV's, in order). */
export const REPORT_COLUMNS: Readonly<Record<ReportName, readonly string[]>> = {
  'at-risk': ['machine', 'address', 'group', 'state', 'expiresAt', 'daysLeft', 'reason', 'lastSeenAt'],
  'duplicate-cmid': ['clientMachineId', 'machines', 'machine', 'address', 'group', 'state'],
  'mak-usage': [
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
  unlicensed: [
    'machine',
    'address',
    'group',
    'state',
    'installedKey',
    'installedKeyType',
    'lastAttemptCode',
    'lastSeenAt',
  ],
  'by-authority': ['machine', 'address', 'group', 'state', 'activatedBy', 'authority', 'keyName', 'expiresAt'],
};

/** at-risk's bound: a licensed machine whose licence ends by then is at risk (ISO, compared as text in SQL). */
export const atRiskEndsBy = (now: number, days: number) => new Date(now + days * DAY).toISOString();

const statusOf = (row: ReportMachineRow): Partial<SnapshotRecord['status']> =>
  row.statusJson === null ? {} : (JSON.parse(row.statusJson) as SnapshotRecord['status']);

/** One report row of a machine the report's SQL selected. */
export function reportRow(
  name: Exclude<ReportName, 'mak-usage'>,
  row: ReportMachineRow,
  context: { now: number; days: number; makByLast5: ReadonlyMap<string, StoredKeyRecord> },
): ReportRow {
  const s = row.latest;
  if (s === null) throw new Error('a report row without a status');
  // Each row written out (no spread of a shared part): a whole report builds 100 000 of them.
  const machine = row.displayName;
  const address = row.address;
  switch (name) {
    case 'at-risk': {
      const ends = s.expiresAt === null ? null : Date.parse(s.expiresAt);
      const daysLeft = ends === null ? null : Math.max(0, Math.floor((ends - context.now) / DAY));
      const reason = RISK_REASON[s.state] ?? `licence ends within ${context.days} days: renew it`;
      return {
        machine,
        address,
        group: s.group,
        state: s.state,
        expiresAt: s.expiresAt,
        daysLeft,
        reason,
        lastSeenAt: iso(row.lastSeenAt),
      };
    }
    case 'duplicate-cmid':
      return {
        clientMachineId: s.clientMachineId,
        machines: row.cmidMachines ?? 0,
        machine,
        address,
        group: s.group,
        state: s.state,
      };
    case 'unlicensed':
      return {
        machine,
        address,
        group: s.group,
        state: s.state,
        installedKey: s.installedKey,
        installedKeyType: s.installedKeyType,
        lastAttemptCode: row.lastAttemptCode,
        lastSeenAt: iso(row.lastSeenAt),
      };
    case 'by-authority': {
      const by = activatedByOf(s, statusOf(row), context.makByLast5);
      return {
        machine,
        address,
        group: s.group,
        state: s.state,
        activatedBy: by.activatedBy,
        authority: by.authority,
        keyName: by.keyName,
        expiresAt: s.expiresAt,
      };
    }
  }
}

/** mak-usage's row of one stored MAK, given the machines showing it installed (sorted by display name). */
export function makUsageRow(
  key: StoredKeyRecord,
  using: readonly { displayName: string; licensed: boolean }[],
  authorityError: string | null,
): ReportRow {
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
    machines: using.map((u) => u.displayName),
    authorityError,
  };
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Why a machine in a grace state is at risk (at-risk's `reason`). */
export const RISK_REASON: Partial<Record<SnapshotRecord['state'], string>> = {
  'initial-grace': 'in initial grace: never activated; activate it',
  'out-of-tolerance': 'licence lapsed (out-of-tolerance grace): renew it; is its KMS host reachable?',
  'non-genuine-grace': 'the stored activation does not verify (altered licence store): activate it again',
  notification: 'grace period over (notification): activate it',
};

function textField(status: object, object: string, field: string): string | null {
  const value = (status as Record<string, unknown>)[object];
  if (value === null || typeof value !== 'object') return null;
  const text = (value as Record<string, unknown>)[field];
  return typeof text === 'string' ? text.slice(0, 200) : null;
}

type StatusColumns = Pick<SnapshotRecord, 'method' | 'kmsHost' | 'installedKey'>;

/** by-authority's columns of one machine (its latest status's columns and the status as received). */
export function activatedByOf(
  snapshot: StatusColumns,
  status: Partial<SnapshotRecord['status']>,
  keyByLast5: ReadonlyMap<string, StoredKeyRecord>,
): { activatedBy: string | null; authority: string | null; keyName: string | null } {
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
      authority = status.directoryObject ? `${status.directoryObject.name}@${status.directoryObject.domain}` : null;
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
      authority = textField(status, 'oem', 'manufacturer');
      break;
    case 'token':
      activatedBy = 'token';
      authority = textField(status, 'token', 'organisation');
      break;
    case null:
      break;
  }
  return { activatedBy, authority, keyName };
}
