/**
 * The console API's shapes: its contract (packages/console/src/web/contract.ts), the module the
 * server validates and types its answers with. Imported from there, never copied: a copy drifts.
 */
export {
  JOB_OPERATIONS,
  REPORT_NAMES,
  type Charts,
  type HistoryEntry,
  type Job,
  type JobOperation,
  type JobSummary,
  type KeySummary,
  type MachineResult,
  type MachineSummary,
  type MakCountResult,
  type OperationEntry as Operation,
  type Report,
  type ReportName,
  type SessionInfo,
  USER_ROLES,
  type UserRole,
  type UserSummary,
  type ImportSummary,
  type ReportPage,
  REPORT_COLUMN_LABELS,
  MIN_PASSPHRASE_LENGTH,
} from '../../src/web/contract';
// The machines pages (ui-machines).
export {
  MACHINE_SORTS,
  MAX_PAGE_SIZE,
  MAX_UPLOAD_BYTES,
  type DiscoverRequest,
  type JobMachines,
  type JobRequest,
  type MachineFilter,
  type MachineSort,
} from '../../src/web/contract';
export type { LicenceMethod, LicenceState } from '@volact/core';
import type { Report } from '../../src/web/contract';

/** One cell of a report row. */
export type CsvValue = Report['rows'][number][string];
