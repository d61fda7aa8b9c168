import type { LicenceState } from '@volact/core';
import type { MachineFacts, MachineRecord, OperationRecord, SnapshotRecord } from '../store.js';
import type { MachineSort } from '../web/contract.js';
import type { MachineFilterInput, OperationFilterInput, RowReport } from './sql.js';

export type { MachineFilterInput, OperationFilterInput, RowReport } from './sql.js';

/** A machine's latest status as denormalised on its row (migration 5); null when never read. */
export type LatestStatus = Pick<
  SnapshotRecord,
  'state' | 'method' | 'group' | 'clientMachineId' | 'installedKey' | 'installedKeyType' | 'kmsHost' | 'expiresAt'
> & { readonly snapshotId: number; readonly takenAt: number };

/** A machine as the views read it: its record (with its facts), its display name and its latest status. */
export interface MachineView {
  readonly machine: MachineRecord;
  readonly displayName: string;
  readonly latest: LatestStatus | null;
}

/**
 * A row of a report selection: the machine, and what the report needs beyond it. `latest`
 * holds the columns its report reads (views/sql.ts REPORT_READS); the others are null ('' for
 * group and CMID), as `lastSeenAt` when the report does not show it.
 */
export interface ReportMachineRow {
  readonly id: number;
  readonly displayName: string;
  readonly address: string;
  readonly lastSeenAt: number | null;
  readonly latest: LatestStatus | null;
  /** duplicate-cmid: how many machines share its CMID. */
  readonly cmidMachines: number | null;
  /** The latest status as received (only when the report reads fields beyond the columns). */
  readonly statusJson: string | null;
  /** unlicensed: the last attempt's code when it failed (extracted from the status in SQL). */
  readonly lastAttemptCode: string | null;
}

export interface MachinePageQuery extends MachineFilterInput {
  readonly offset: number;
  readonly limit: number;
  readonly sort: MachineSort;
  readonly dir: 'asc' | 'desc';
}

/** The console store's part for pages, filters, sorts, counts and reports over the machines in SQL (100 000 machines) (both engines; see ../store.ts). */
export interface FleetViewStore {
  /** Writes the agents' facts (GET /v1/status `machine`) on their machines, in one transaction. */
  setMachineFacts(entries: readonly { readonly machineId: number; readonly facts: MachineFacts }[]): Promise<void>;
  /** One page of the machines matching the filter, in the sort's order (ties by id), and how many match. */
  pageMachines(query: MachinePageQuery): Promise<{ machines: MachineView[]; total: number }>;
  /** The ids of every machine matching the filter, by id. */
  machineIds(filter: MachineFilterInput): Promise<number[]>;
  /** Machines with this host name (case-insensitively; at most `limit`, by id). */
  findByHostName(hostName: string, limit: number): Promise<MachineView[]>;
  /** One machine by id. */
  machineView(id: number): Promise<MachineView | undefined>;
  /** Machines per latest licence state; `unknown`: never read. Only states that occur. */
  stateCounts(): Promise<Partial<Record<LicenceState | 'unknown', number>>>;
  /** A page of the operations log, newest first (time, then row), and how many match. */
  operationsPage(
    query: OperationFilterInput & { offset: number; limit: number },
  ): Promise<{ operations: OperationRecord[]; total: number }>;
  /**
   * A row report's machines in its order (see sql.ts reportSelection), from `offset`, at most
   * `limit` (every row when `limit` is undefined), and how many rows it has in all.
   * `endsBy`: at-risk's licence-end bound (ISO).
   */
  reportRows(
    report: RowReport,
    options: { endsBy: string; offset: number; limit: number | undefined },
  ): Promise<{ rows: ReportMachineRow[]; total: number }>;
  /** The display names of machines whose latest status shows a MAK installed, by key last five (sorted by display name). */
  makInstalls(last5: readonly string[]): Promise<{ last5: string; displayName: string; licensed: boolean }[]>;
  /**
   * The state timeline in SQL: per state, spans of day indexes [firstDay, lastDay] with how
   * many machines held that state on each of those days (see sql.ts timelineQuery).
   */
  timelineSpans(
    firstEnd: number,
    days: number,
    day: number,
  ): Promise<{ state: LicenceState; firstDay: number; lastDay: number; n: number }[]>;
}
