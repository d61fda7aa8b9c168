import type { PgAccess } from '../pg-access.js';
import { JOB_COLUMNS, jobValues, toJob, toSession, type JobRow } from './sqlite.js';
import {
  interruptedOutcome,
  type JobEnd,
  type JobRecord,
  type JobResultRecord,
  type SessionRecord,
  type SessionWithRole,
  type StoredJob,
  type WebStateStore,
} from './store.js';

/** Names compare as the store's admins do: lower() of ASCII under the C collation. */
const lowerC = (column: string) => `lower(${column} COLLATE "C")`;

/** PostgreSQL engine of WebStateStore (web sessions and jobs that survive a restart). */
export class PostgresWebState implements WebStateStore {
  readonly #pg: PgAccess;

  constructor(pg: PgAccess) {
    this.#pg = pg;
  }

  async createSession(s: SessionRecord): Promise<void> {
    await this.#pg.query(
      'INSERT INTO web_sessions (digest, user_name, created_at, last_used_at) VALUES ($1, $2, $3, $4)',
      [s.digest, s.user, s.createdAt, s.lastUsedAt],
    );
  }

  async findSession(digest: string): Promise<SessionWithRole | undefined> {
    const { rows } = await this.#pg.query(
      `SELECT s.*, a.role FROM web_sessions s JOIN admins a ON ${lowerC('a.name')} = ${lowerC('s.user_name')}
       WHERE s.digest = $1`,
      [digest],
    );
    const row = rows[0] as Parameters<typeof toSession>[0] | undefined;
    return row && toSession(row);
  }

  async touchSession(digest: string, lastUsedAt: number): Promise<void> {
    await this.#pg.query('UPDATE web_sessions SET last_used_at = $1 WHERE digest = $2', [lastUsedAt, digest]);
  }

  async deleteSession(digest: string): Promise<void> {
    await this.#pg.query('DELETE FROM web_sessions WHERE digest = $1', [digest]);
  }

  async deleteUserSessions(user: string): Promise<number> {
    const { rowCount } = await this.#pg.query(
      `DELETE FROM web_sessions WHERE ${lowerC('user_name')} = lower($1::text COLLATE "C")`,
      [user],
    );
    return rowCount ?? 0;
  }

  async sweepSessions(idleBefore: number, createdBefore: number): Promise<number> {
    const { rowCount } = await this.#pg.query('DELETE FROM web_sessions WHERE last_used_at <= $1 OR created_at <= $2', [
      idleBefore,
      createdBefore,
    ]);
    return rowCount ?? 0;
  }

  async capSessions(keep: number, user?: string): Promise<number> {
    const mine = `${lowerC('user_name')} = lower($2::text COLLATE "C")`;
    const { rowCount } =
      user === undefined
        ? await this.#pg.query(
            `DELETE FROM web_sessions WHERE digest NOT IN
               (SELECT digest FROM web_sessions ORDER BY last_used_at DESC, created_at DESC LIMIT $1)`,
            [keep],
          )
        : await this.#pg.query(
            `DELETE FROM web_sessions WHERE ${mine} AND digest NOT IN
               (SELECT digest FROM web_sessions WHERE ${mine} ORDER BY last_used_at DESC, created_at DESC LIMIT $1)`,
            [keep, user],
          );
    return rowCount ?? 0;
  }

  async countSessions(): Promise<number> {
    return (await this.#pg.query<{ n: number }>('SELECT count(*) AS n FROM web_sessions')).rows[0]?.n ?? 0;
  }

  async insertJob(job: JobRecord): Promise<void> {
    const values = jobValues(job);
    await this.#pg.query(
      `INSERT INTO jobs (${JOB_COLUMNS}) VALUES (${values.map((_, i) => `$${i + 1}`).join(', ')})`,
      values,
    );
  }

  async appendJobResults(
    id: string,
    results: readonly JobResultRecord[],
    progress: { done: number; total: number },
  ): Promise<void> {
    await this.#pg.transaction(async (client) => {
      // One statement per batch: unnest of the columns.
      if (results.length > 0) {
        await client.query(
          `INSERT INTO job_results (job_id, seq, ok, result_json)
           SELECT $1, * FROM unnest($2::int[], $3::boolean[], $4::text[])`,
          [id, results.map((r) => r.seq), results.map((r) => r.ok), results.map((r) => r.json)],
        );
      }
      await client.query('UPDATE jobs SET done = $1, total = $2, failed = failed + $3 WHERE id = $4', [
        progress.done,
        progress.total,
        results.filter((r) => !r.ok).length,
        id,
      ]);
    });
  }

  async finishJob(id: string, end: JobEnd): Promise<void> {
    await this.#pg.query(
      `UPDATE jobs SET state = $1, finished_at = $2, total = $3, done = $4, error_code = $5, error_message = $6,
         outcome = $7, proxy_file_id = $8 WHERE id = $9`,
      [
        end.state,
        end.finishedAt,
        end.total,
        end.done,
        end.errorCode,
        end.errorMessage,
        end.outcome,
        end.proxyFileId,
        id,
      ],
    );
  }

  async interruptRunningJobs(at: number): Promise<number> {
    return this.#pg.transaction(async (client) => {
      const { rows } = await client.query<{ id: string; done: number; total: number }>(
        "SELECT id, done, total FROM jobs WHERE state = 'running' FOR UPDATE",
      );
      for (const j of rows) {
        await client.query(
          "UPDATE jobs SET state = 'interrupted', finished_at = $1, outcome = $2 WHERE id = $3 AND state = 'running'",
          [at, interruptedOutcome(j.done, j.total), j.id],
        );
      }
      return rows.length;
    });
  }

  async getJob(id: string): Promise<StoredJob | undefined> {
    const { rows } = await this.#pg.query<JobRow>(
      `SELECT j.*, (SELECT count(*) FROM job_results r WHERE r.job_id = j.id) AS results_total
       FROM jobs j WHERE id = $1`,
      [id],
    );
    const row = rows[0];
    return row && { ...toJob(row), resultsTotal: Number(row.results_total ?? 0) };
  }

  async listJobs(limit: number): Promise<JobRecord[]> {
    const { rows } = await this.#pg.query<JobRow>('SELECT * FROM jobs ORDER BY started_at DESC, n DESC LIMIT $1', [
      limit,
    ]);
    return rows.map(toJob);
  }

  async jobResults(id: string, offset: number, limit: number): Promise<JobResultRecord[]> {
    const { rows } = await this.#pg.query<{ seq: number; ok: boolean; result_json: string }>(
      'SELECT seq, ok, result_json FROM job_results WHERE job_id = $1 ORDER BY seq LIMIT $2 OFFSET $3',
      [id, limit, offset],
    );
    return rows.map((r) => ({ seq: r.seq, ok: r.ok, json: r.result_json }));
  }

  async pruneJobs(keep: number): Promise<number> {
    return this.#pg.transaction(async (client) => {
      const { rows } = await client.query<{ id: string }>(
        `SELECT id FROM jobs WHERE state <> 'running' AND n NOT IN
           (SELECT n FROM jobs ORDER BY started_at DESC, n DESC LIMIT $1)`,
        [keep],
      );
      const ids = rows.map((r) => r.id);
      if (ids.length > 0) {
        await client.query('DELETE FROM job_results WHERE job_id = ANY($1::text[])', [ids]);
        await client.query('DELETE FROM jobs WHERE id = ANY($1::text[])', [ids]);
      }
      return ids.length;
    });
  }
}
