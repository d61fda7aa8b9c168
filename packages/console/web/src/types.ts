/** The console API's shapes, as the server sends them (see packages/console/src/web/api.ts). */

export const LICENCE_STATES = [
  'licensed',
  'initial-grace',
  'out-of-tolerance',
  'non-genuine-grace',
  'notification',
  'unlicensed',
] as const;
export type LicenceState = (typeof LICENCE_STATES)[number];
export type Method = 'kms' | 'mak' | 'directory' | null;

export interface MachineSummary {
  readonly id: number;
  readonly name: string;
  readonly address: string;
  readonly addedAt: string;
  readonly lastSeenAt: string | null;
  readonly lastError: { code: string; message: string; at: string } | null;
  /** Set when the machine failed its proof: no call reaches it until `console machine enrol`. */
  readonly untrusted?: { at: string; reason: string } | null;
  readonly state: LicenceState | null;
  readonly method: Method;
  readonly group: string | null;
  readonly clientMachineId: string | null;
  readonly installedKey: string | null;
  readonly installedKeyType?: 'gvlk' | 'mak' | null;
  readonly kmsHost?: string | null;
  readonly expiresAt: string | null;
}

export interface AgentStatus {
  readonly state: LicenceState;
  readonly method: Method;
  readonly expiresAt: string | null;
  readonly host: string | null;
  readonly group: string;
  readonly clientMachineId: string;
  readonly installedKey: string | null;
  readonly installedKeyType: 'gvlk' | 'mak' | null;
  readonly installationId: string | null;
  readonly lastAttempt: { at: string; ok: boolean; code?: string; message: string } | null;
}

export interface HistoryEntry {
  readonly takenAt: string;
  readonly status: AgentStatus;
}

export interface KeySummary {
  readonly name: string;
  readonly type: 'mak' | 'gvlk' | 'kms-host';
  readonly key: string;
  readonly addedAt: string;
}

export interface Operation {
  readonly id: number;
  readonly at: string;
  readonly operation: string;
  readonly machine: string | null;
  readonly ok: boolean;
  readonly code: string | null;
  readonly detail: string | null;
}

export interface MachineResult {
  readonly machine: string;
  readonly address: string;
  readonly ok: boolean;
  readonly code: string | null;
  readonly message: string;
  readonly state: LicenceState | null;
  readonly method: Method;
  readonly changed?: boolean;
  readonly installationId?: string;
  readonly confirmationId?: string;
}

export const JOB_OPERATIONS = ['refresh', 'install-key', 'activate', 'proxy-activate', 'reactivate'] as const;
export type JobOperation = (typeof JOB_OPERATIONS)[number];

export interface JobSummary {
  readonly id: string;
  readonly operation: JobOperation;
  readonly user: string;
  readonly detail: string | null;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly total: number;
  readonly done: number;
  readonly finished: boolean;
  readonly ok: number;
  readonly failed: number;
  readonly error?: { code: string; message: string };
}

export interface Job extends Omit<JobSummary, 'ok' | 'failed'> {
  readonly results: MachineResult[];
}

export const REPORT_NAMES = ['at-risk', 'duplicate-cmid', 'mak-usage', 'unlicensed', 'by-authority'] as const;
export type ReportName = (typeof REPORT_NAMES)[number];
export type CsvValue = string | number | boolean | null | readonly string[];

export interface Report {
  readonly report: ReportName;
  readonly generatedAt: string;
  readonly columns: readonly string[];
  readonly rows: readonly Readonly<Record<string, CsvValue>>[];
}

export interface Charts {
  readonly states: Readonly<Record<LicenceState | 'unknown', number>>;
  readonly timeline: readonly ({ readonly day: string } & Readonly<Record<LicenceState, number>>)[];
}

export interface SessionInfo {
  readonly user: string;
  /** The server's default authority (origin only), for proxy activation. */
  readonly authority: string | null;
  /** Whether the server can read the MAK counters from that authority (it has its admin token). */
  readonly makCounters: boolean;
}

export interface MakCountResult {
  readonly name: string;
  readonly key: string;
  readonly ok: boolean;
  readonly code: string | null;
  readonly message: string;
}
