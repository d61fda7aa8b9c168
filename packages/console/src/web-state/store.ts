import type { JobOperation, UserRole } from '../web/contract.js';

/** A web session as stored: the SHA-256 of its token (never the token), its user and times. */
export interface SessionRecord {
  /** hex SHA-256 of the cookie's token. */
  readonly digest: string;
  readonly user: string;
  readonly createdAt: number;
  readonly lastUsedAt: number;
}

/** A session read back with its user's role NOW (a role change takes effect at the next request). */
export interface SessionWithRole extends SessionRecord {
  readonly role: UserRole;
}

export type JobState = 'running' | 'finished' | 'failed' | 'interrupted';

/** A web UI job as stored (its results are rows of job_results). */
export interface JobRecord {
  readonly id: string;
  readonly operation: JobOperation;
  readonly user: string;
  readonly detail: string | null;
  readonly startedAt: number;
  readonly finishedAt: number | null;
  readonly total: number;
  readonly done: number;
  /** Results with ok false (ok = results stored − failed). */
  readonly failed: number;
  readonly state: JobState;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly outcome: string | null;
  readonly proxyFileId: string | null;
  /** What the job was asked, as JSON: never a secret (enrolment token, passphrase). */
  readonly paramsJson: string | null;
}

/** A job with how many results it has stored. */
export interface StoredJob extends JobRecord {
  readonly resultsTotal: number;
}

/** One result of a job, as stored (seq: 0, 1, … in the order they came). */
export interface JobResultRecord {
  readonly seq: number;
  readonly ok: boolean;
  readonly json: string;
}

/** How a job ends (state finished | failed | interrupted). */
export interface JobEnd {
  readonly state: Exclude<JobState, 'running'>;
  readonly finishedAt: number;
  readonly total: number;
  readonly done: number;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly outcome: string | null;
  readonly proxyFileId: string | null;
}

/** The console store's part for web sessions and jobs that survive a restart (both engines; see ../store.ts). */
export interface WebStateStore {
  // ---- sessions (web/sessions.ts SessionStore decides expiry; this only keeps rows) ----
  createSession(session: SessionRecord): Promise<void>;
  /** The session joined with its user's current role; undefined when none, or its user is gone. */
  findSession(digest: string): Promise<SessionWithRole | undefined>;
  touchSession(digest: string, lastUsedAt: number): Promise<void>;
  deleteSession(digest: string): Promise<void>;
  /** Ends every session of a user (case-insensitively); how many. */
  deleteUserSessions(user: string): Promise<number>;
  /** Deletes sessions idle since `idleBefore` or made before `createdBefore` (≤); how many. */
  sweepSessions(idleBefore: number, createdBefore: number): Promise<number>;
  /** Keeps the `keep` most recently used sessions (of `user` only, when given), deleting the rest; how many deleted. */
  capSessions(keep: number, user?: string): Promise<number>;
  countSessions(): Promise<number>;

  // ---- jobs (web/jobs.ts JobRunner) ----
  insertJob(job: JobRecord): Promise<void>;
  /** Appends results (their seq given) and sets done / total / failed += failures, in one transaction. */
  appendJobResults(
    id: string,
    results: readonly JobResultRecord[],
    progress: { done: number; total: number },
  ): Promise<void>;
  finishJob(id: string, end: JobEnd): Promise<void>;
  /** Every job still `running` becomes `interrupted` (outcome: how far it got), finished at `at`; how many. */
  interruptRunningJobs(at: number): Promise<number>;
  getJob(id: string): Promise<StoredJob | undefined>;
  /** Newest first. */
  listJobs(limit: number): Promise<JobRecord[]>;
  /** A page of a job's results, in seq order. */
  jobResults(id: string, offset: number, limit: number): Promise<JobResultRecord[]>;
  /** Deletes the finished jobs (with their results) beyond the newest `keep` jobs; how many. */
  pruneJobs(keep: number): Promise<number>;
}

/** What an interrupted job's outcome says. */
export const interruptedOutcome = (done: number, total: number): string =>
  `interrupted by a restart after ${done} of ${total} machines`;
