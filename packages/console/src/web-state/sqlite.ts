import type Database from 'better-sqlite3';
import type { JobOperation } from '../web/contract.js';
import {
  interruptedOutcome,
  type JobEnd,
  type JobRecord,
  type JobResultRecord,
  type JobState,
  type SessionRecord,
  type SessionWithRole,
  type StoredJob,
  type WebStateStore,
} from './store.js';

interface SessionRow {
  digest: string;
  user_name: string;
  created_at: number;
  last_used_at: number;
  role: string | null;
}

/** A jobs row (both engines; PostgreSQL adds `n`, its insertion order). */
export interface JobRow {
  id: string;
  operation: string;
  user_name: string;
  detail: string | null;
  started_at: number;
  finished_at: number | null;
  total: number;
  done: number;
  failed: number;
  state: string;
  error_code: string | null;
  error_message: string | null;
  outcome: string | null;
  proxy_file_id: string | null;
  params_json: string | null;
  results_total?: number;
}

export const toSession = (r: SessionRow): SessionWithRole => ({
  digest: r.digest,
  user: r.user_name,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  role: r.role === 'admin' ? 'admin' : 'viewer',
});

export const toJob = (r: JobRow): JobRecord => ({
  id: r.id,
  operation: r.operation as JobOperation,
  user: r.user_name,
  detail: r.detail,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  total: r.total,
  done: r.done,
  failed: r.failed,
  state: r.state as JobState,
  errorCode: r.error_code,
  errorMessage: r.error_message,
  outcome: r.outcome,
  proxyFileId: r.proxy_file_id,
  paramsJson: r.params_json,
});

export const jobValues = (j: JobRecord) => [
  j.id,
  j.operation,
  j.user,
  j.detail,
  j.startedAt,
  j.finishedAt,
  j.total,
  j.done,
  j.failed,
  j.state,
  j.errorCode,
  j.errorMessage,
  j.outcome,
  j.proxyFileId,
  j.paramsJson,
];
export const JOB_COLUMNS =
  'id, operation, user_name, detail, started_at, finished_at, total, done, failed, state, error_code, error_message, outcome, proxy_file_id, params_json';

/** SQLite engine of WebStateStore (web sessions and jobs that survive a restart). */
export class SqliteWebState implements WebStateStore {
  readonly #db: Database.Database;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  async createSession(s: SessionRecord): Promise<void> {
    this.#db
      .prepare('INSERT INTO web_sessions (digest, user_name, created_at, last_used_at) VALUES (?, ?, ?, ?)')
      .run(s.digest, s.user, s.createdAt, s.lastUsedAt);
  }

  async findSession(digest: string): Promise<SessionWithRole | undefined> {
    const row = this.#db
      .prepare(
        `SELECT s.*, a.role FROM web_sessions s JOIN admins a ON a.name = s.user_name COLLATE NOCASE
         WHERE s.digest = ?`,
      )
      .get(digest) as SessionRow | undefined;
    return row && toSession(row);
  }

  async touchSession(digest: string, lastUsedAt: number): Promise<void> {
    this.#db.prepare('UPDATE web_sessions SET last_used_at = ? WHERE digest = ?').run(lastUsedAt, digest);
  }

  async deleteSession(digest: string): Promise<void> {
    this.#db.prepare('DELETE FROM web_sessions WHERE digest = ?').run(digest);
  }

  async deleteUserSessions(user: string): Promise<number> {
    return this.#db.prepare('DELETE FROM web_sessions WHERE user_name = ? COLLATE NOCASE').run(user).changes;
  }

  async sweepSessions(idleBefore: number, createdBefore: number): Promise<number> {
    return this.#db
      .prepare('DELETE FROM web_sessions WHERE last_used_at <= ? OR created_at <= ?')
      .run(idleBefore, createdBefore).changes;
  }

  async capSessions(keep: number, user?: string): Promise<number> {
    if (user === undefined) {
      return this.#db
        .prepare(
          `DELETE FROM web_sessions WHERE digest NOT IN
             (SELECT digest FROM web_sessions ORDER BY last_used_at DESC, created_at DESC LIMIT ?)`,
        )
        .run(keep).changes;
    }
    return this.#db
      .prepare(
        `DELETE FROM web_sessions WHERE user_name = ? AND digest NOT IN
           (SELECT digest FROM web_sessions WHERE user_name = ? ORDER BY last_used_at DESC, created_at DESC LIMIT ?)`,
      )
      .run(user, user, keep).changes;
  }

  async countSessions(): Promise<number> {
    return (this.#db.prepare('SELECT count(*) AS n FROM web_sessions').get() as { n: number }).n;
  }

  async insertJob(job: JobRecord): Promise<void> {
    this.#db
      .prepare(
        `INSERT INTO jobs (${JOB_COLUMNS}) VALUES (${JOB_COLUMNS.split(',')
          .map(() => '?')
          .join(', ')})`,
      )
      .run(...jobValues(job));
  }

  async appendJobResults(
    id: string,
    results: readonly JobResultRecord[],
    progress: { done: number; total: number },
  ): Promise<void> {
    const insert = this.#db.prepare('INSERT INTO job_results (job_id, seq, ok, result_json) VALUES (?, ?, ?, ?)');
    this.#db.transaction(() => {
      for (const r of results) insert.run(id, r.seq, r.ok ? 1 : 0, r.json);
      this.#db
        .prepare('UPDATE jobs SET done = ?, total = ?, failed = failed + ? WHERE id = ?')
        .run(progress.done, progress.total, results.filter((r) => !r.ok).length, id);
    })();
  }

  async finishJob(id: string, end: JobEnd): Promise<void> {
    this.#db
      .prepare(
        `UPDATE jobs SET state = ?, finished_at = ?, total = ?, done = ?, error_code = ?, error_message = ?,
           outcome = ?, proxy_file_id = ? WHERE id = ?`,
      )
      .run(
        end.state,
        end.finishedAt,
        end.total,
        end.done,
        end.errorCode,
        end.errorMessage,
        end.outcome,
        end.proxyFileId,
        id,
      );
  }

  async interruptRunningJobs(at: number): Promise<number> {
    return this.#db.transaction(() => {
      const running = this.#db.prepare("SELECT id, done, total FROM jobs WHERE state = 'running'").all() as {
        id: string;
        done: number;
        total: number;
      }[];
      const update = this.#db.prepare(
        "UPDATE jobs SET state = 'interrupted', finished_at = ?, outcome = ? WHERE id = ? AND state = 'running'",
      );
      for (const j of running) update.run(at, interruptedOutcome(j.done, j.total), j.id);
      return running.length;
    })();
  }

  async getJob(id: string): Promise<StoredJob | undefined> {
    const row = this.#db
      .prepare(
        'SELECT j.*, (SELECT count(*) FROM job_results r WHERE r.job_id = j.id) AS results_total FROM jobs j WHERE id = ?',
      )
      .get(id) as JobRow | undefined;
    return row && { ...toJob(row), resultsTotal: row.results_total ?? 0 };
  }

  async listJobs(limit: number): Promise<JobRecord[]> {
    return (
      this.#db.prepare('SELECT * FROM jobs ORDER BY started_at DESC, rowid DESC LIMIT ?').all(limit) as JobRow[]
    ).map(toJob);
  }

  async jobResults(id: string, offset: number, limit: number): Promise<JobResultRecord[]> {
    const rows = this.#db
      .prepare('SELECT seq, ok, result_json FROM job_results WHERE job_id = ? ORDER BY seq LIMIT ? OFFSET ?')
      .all(id, limit, offset) as { seq: number; ok: number; result_json: string }[];
    return rows.map((r) => ({ seq: r.seq, ok: r.ok === 1, json: r.result_json }));
  }

  async pruneJobs(keep: number): Promise<number> {
    return this.#db.transaction(() => {
      const old = this.#db
        .prepare(
          `SELECT id FROM jobs WHERE state <> 'running' AND rowid NOT IN
             (SELECT rowid FROM jobs ORDER BY started_at DESC, rowid DESC LIMIT ?)`,
        )
        .all(keep) as { id: string }[];
      const results = this.#db.prepare('DELETE FROM job_results WHERE job_id = ?');
      const job = this.#db.prepare('DELETE FROM jobs WHERE id = ?');
      for (const { id } of old) {
        results.run(id);
        job.run(id);
      }
      return old.length;
    })();
  }
}
