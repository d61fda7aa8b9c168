import type { AgentStatus, LicenceState } from '@volact/core';
import * as tables from '../store-rows.js';
import type { MachineRecord } from '../store.js';
import type { LatestStatus, MachineView, ReportMachineRow } from './store.js';

/** A `machines` row with the latest-status columns (migration 5), as both engines read it. */
export interface ViewRow extends tables.MachineRow {
  latest_snapshot_id: number | null;
  state: string | null;
  method: string | null;
  product_group: string | null;
  client_machine_id: string | null;
  installed_key: string | null;
  installed_key_type: string | null;
  kms_host: string | null;
  expires_at: string | null;
  status_at: number | null;
  cmid_machines?: number | null;
  status_json?: string | null;
  last_attempt_code?: string | null;
}

/** The name given, else the agent's host name, else the address (as sql.ts DISPLAY). */
export const displayName = (m: MachineRecord): string =>
  m.name !== m.address ? m.name : (m.facts?.hostName ?? m.address);

function latestOf(r: ViewRow): LatestStatus | null {
  if (r.latest_snapshot_id === null || r.state === null) return null;
  return {
    snapshotId: Number(r.latest_snapshot_id),
    takenAt: Number(r.status_at),
    state: r.state as LicenceState,
    method: r.method as AgentStatus['method'],
    group: r.product_group ?? '',
    clientMachineId: r.client_machine_id ?? '',
    installedKey: r.installed_key,
    installedKeyType: r.installed_key_type as AgentStatus['installedKeyType'],
    kmsHost: r.kms_host,
    expiresAt: r.expires_at,
  };
}

export function toView(r: ViewRow): MachineView {
  const machine = tables.toMachine(r);
  return {
    machine,
    displayName: displayName(machine),
    latest: latestOf(r),
  };
}

/** The columns a report row reads (views/sql.ts reportSelection's machines `m`). */
export const REPORT_ROW_COLUMNS: readonly string[] = [
  'id',
  'address',
  'display_name',
  'last_seen_at',
  ...tables.LATEST_COLUMNS,
];

/**
 * A report row from its values (REPORT_ROW_COLUMNS, then `extra` by name: sql.reportRowJson's
 * array on SQLite, the row as an array on PostgreSQL), read by position into one object
 * literal per row: a whole report builds 100 000 of them, and naming each value first (an
 * object per row, its keys added one by one) cost as much again as parsing them.
 */
export function reportRowOf(
  v: readonly (string | number | null)[],
  extra: readonly (readonly [string, string])[],
): ReportMachineRow {
  let cmidMachines: number | null = null;
  let statusJson: string | null = null;
  let lastAttemptCode: string | null = null;
  for (let i = 0; i < extra.length; i++) {
    const value = v[REPORT_ROW_COLUMNS.length + i] ?? null;
    const name = (extra[i] as readonly [string, string])[0];
    if (name === 'cmid_machines') cmidMachines = value === null ? null : Number(value);
    else if (name === 'status_json') statusJson = value as string | null;
    else if (name === 'last_attempt_code') lastAttemptCode = value as string | null;
  }
  const [
    id,
    address,
    displayName,
    lastSeenAt,
    snapshotId,
    state,
    method,
    group,
    cmid,
    key,
    keyType,
    kmsHost,
    expiresAt,
    at,
  ] = v;
  return {
    id: id as number,
    displayName: displayName as string,
    address: address as string,
    lastSeenAt: lastSeenAt === null ? null : Number(lastSeenAt),
    // As latestOf.
    latest:
      snapshotId === null || state === null
        ? null
        : {
            snapshotId: Number(snapshotId),
            takenAt: Number(at),
            state: state as LicenceState,
            method: method as AgentStatus['method'],
            group: (group as string | null) ?? '',
            clientMachineId: (cmid as string | null) ?? '',
            installedKey: key as string | null,
            installedKeyType: keyType as AgentStatus['installedKeyType'],
            kmsHost: kmsHost as string | null,
            expiresAt: expiresAt as string | null,
          },
    cmidMachines,
    statusJson,
    lastAttemptCode,
  };
}
// reportRowOf reads REPORT_ROW_COLUMNS by position: they must be in this order.
const POSITIONS =
  'id address display_name last_seen_at latest_snapshot_id state method product_group client_machine_id installed_key installed_key_type kms_host expires_at status_at';
if (REPORT_ROW_COLUMNS.join(' ') !== POSITIONS)
  throw new Error(`REPORT_ROW_COLUMNS changed order: ${REPORT_ROW_COLUMNS.join(' ')}`);
