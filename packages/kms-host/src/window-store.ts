import Database from 'better-sqlite3';
import { LICENCE_STATES, applyMigrations } from '@volact/core';

/**
 * Persists the client-ID windows and the cumulative statistics, so a restart loses neither
 * (the reference host starts counting again after a restart; we do better). Writes are
 * batched: the server hands over what changed every flush interval, in one transaction.
 */
const MIGRATIONS = [
  `CREATE TABLE window_groups (group_no INTEGER PRIMARY KEY, group_id TEXT NOT NULL UNIQUE);
   CREATE TABLE client_ids (
     group_no INTEGER NOT NULL, client_id BLOB NOT NULL, expires_s INTEGER NOT NULL,
     PRIMARY KEY (group_no, client_id)) WITHOUT ROWID;
   CREATE INDEX client_ids_expiry ON client_ids (expires_s);
   CREATE TABLE statistics (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
];

export interface HostStatistics {
  totalRequests: number;
  failedRequests: number;
  /** Requests by the licence state the client reported, indexed by state code. */
  byLicenceState: number[];
}

export function emptyStatistics(): HostStatistics {
  return { totalRequests: 0, failedRequests: 0, byLicenceState: LICENCE_STATES.map(() => 0) };
}

export class WindowStore {
  readonly #db: Database.Database;
  readonly #upsert: Database.Statement;
  readonly #purge: Database.Statement;
  readonly #setStat: Database.Statement;

  constructor(path: string, options: { readonly?: boolean } = {}) {
    this.#db = new Database(path, { readonly: options.readonly ?? false });
    if (!options.readonly) {
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      applyMigrations(this.#db, MIGRATIONS, 'the host database');
    }
    this.#db.pragma('busy_timeout = 5000');
    if (options.readonly) {
      // statements below are never run on a read-only store
      this.#upsert = this.#purge = this.#setStat = this.#db.prepare('SELECT 1');
      return;
    }
    this.#upsert = this.#db.prepare(
      `INSERT INTO client_ids (group_no, client_id, expires_s) VALUES (?, ?, ?)
       ON CONFLICT (group_no, client_id) DO UPDATE SET expires_s = excluded.expires_s`,
    );
    // At most 1 000 expired rows per flush, so a day when many IDs expire never stalls the host.
    this.#purge = this.#db.prepare(
      `DELETE FROM client_ids WHERE (group_no, client_id) IN
         (SELECT group_no, client_id FROM client_ids WHERE expires_s <= ? LIMIT 1000)`,
    );
    this.#setStat = this.#db.prepare(
      'INSERT INTO statistics (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
    );
  }

  groupNumber(groupId: string): number {
    const row = this.#db.prepare('SELECT group_no FROM window_groups WHERE group_id = ?').get(groupId) as
      { group_no: number } | undefined;
    if (row) return row.group_no;
    return Number(this.#db.prepare('INSERT INTO window_groups (group_id) VALUES (?)').run(groupId).lastInsertRowid);
  }

  /** Live entries of a group in expiry order, for restoring the window. */
  *liveEntries(groupId: string, nowSeconds: number): Generator<{ clientId: Buffer; expiresSeconds: number }> {
    const rows = this.#db
      .prepare(
        `SELECT c.client_id AS clientId, c.expires_s AS expiresSeconds FROM client_ids c
         JOIN window_groups g ON g.group_no = c.group_no
         WHERE g.group_id = ? AND c.expires_s > ? ORDER BY c.expires_s`,
      )
      .iterate(groupId, nowSeconds) as IterableIterator<{ clientId: Buffer; expiresSeconds: number }>;
    yield* rows;
  }

  liveCount(groupId: string, nowSeconds: number): number {
    const row = this.#db
      .prepare(
        `SELECT count(*) AS n FROM client_ids c JOIN window_groups g ON g.group_no = c.group_no
         WHERE g.group_id = ? AND c.expires_s > ?`,
      )
      .get(groupId, nowSeconds) as { n: number };
    return row.n;
  }

  loadStatistics(): HostStatistics {
    const stats = emptyStatistics();
    const rows = this.#db.prepare('SELECT name, value FROM statistics').all() as { name: string; value: number }[];
    for (const { name, value } of rows) {
      if (name === 'total') stats.totalRequests = value;
      else if (name === 'failed') stats.failedRequests = value;
      else if (name.startsWith('state:')) {
        const i = LICENCE_STATES.indexOf(name.slice(6) as (typeof LICENCE_STATES)[number]);
        if (i >= 0) stats.byLicenceState[i] = value;
      }
    }
    return stats;
  }

  /** One transaction: changed entries, purge of expired rows, statistics. */
  flush(
    changes: Iterable<[groupNo: number, clientId: string, expiresSeconds: number]>,
    stats: HostStatistics,
    purgeBefore: number,
  ): void {
    this.#db
      .transaction(() => {
        for (const [groupNo, clientId, expires] of changes)
          this.#upsert.run(groupNo, Buffer.from(clientId, 'latin1'), expires);
        this.#purge.run(purgeBefore);
        this.#setStat.run('total', stats.totalRequests);
        this.#setStat.run('failed', stats.failedRequests);
        LICENCE_STATES.forEach((s, i) => this.#setStat.run(`state:${s}`, stats.byLicenceState[i] ?? 0));
      })
      .immediate();
  }

  close(): void {
    this.#db.close();
  }
}
