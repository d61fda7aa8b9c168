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

export const toReportRow = (r: ViewRow & { display_name: string }): ReportMachineRow => ({
  id: r.id,
  displayName: r.display_name,
  address: r.address,
  lastSeenAt: r.last_seen_at === null ? null : Number(r.last_seen_at),
  latest: latestOf(r),
  cmidMachines: r.cmid_machines === undefined || r.cmid_machines === null ? null : Number(r.cmid_machines),
  statusJson: r.status_json ?? null,
  lastAttemptCode: r.last_attempt_code ?? null,
});
