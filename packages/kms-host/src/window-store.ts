import Database from 'better-sqlite3';
import { LICENCE_STATES, applyMigrations } from '@volact/core';
import { KmsHostError } from './errors.js';

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

/** The SQLite result code of an error (`SQLITE_FULL`, `SQLITE_CORRUPT_INDEX`, …), if it is one. */
export function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** A damaged database file (as opposed to a disk, permission or lock problem). */
export function isCorruption(err: unknown): boolean {
  const code =
    sqliteCode(err) ?? (err instanceof KmsHostError && err.code === 'HOST_STORE_CORRUPT' ? 'SQLITE_CORRUPT' : '');
  return code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB';
}

/**
 * An SQLite error as the host reports it: the file, what happened and the fix. Non-SQLite
 * errors (bugs) pass through unchanged.
 */
export function storeError(path: string, err: unknown, doing: string): unknown {
  const code = sqliteCode(err);
  if (!code) return err;
  const detail = `${code}: ${(err as Error).message}`;
  if (isCorruption(err))
    return new KmsHostError(
      'HOST_STORE_CORRUPT',
      `${path} is damaged (${detail}) while ${doing}: the host moves it aside and starts an empty window at its next start; restart it (\`volact host serve\`)`,
    );
  if (code.startsWith('SQLITE_FULL') || /SQLITE_IOERR.*(WRITE|FSYNC|TRUNCATE)/.test(code))
    return new KmsHostError(
      'HOST_STORE_FULL',
      `cannot write ${path} (${detail}) while ${doing}: the disk is full; free space on its file system (the host keeps the unsaved client IDs and retries)`,
    );
  return new KmsHostError(
    'HOST_STORE_FAILED',
    `${path}: ${detail} while ${doing}; check the file's owner and mode (0600, the user running the host) and the disk`,
  );
}

export class WindowStore {
  readonly #path: string;
  readonly #db: Database.Database;
  readonly #upsert: Database.Statement;
  readonly #purge: Database.Statement;
  readonly #setStat: Database.Statement;

  constructor(path: string, options: { readonly?: boolean } = {}) {
    this.#path = path;
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { readonly: options.readonly ?? false });
      if (!options.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        // A checkpoint cuts the WAL back to 1 MiB: on a small or full disk a WAL that only
        // grows takes the space a flush needs (it once held all the space freed on a full disk).
        db.pragma('journal_size_limit = 1048576');
        applyMigrations(db, MIGRATIONS, 'the host database');
      }
      db.pragma('busy_timeout = 5000');
    } catch (err) {
      db?.close();
      throw storeError(path, err, 'opening it');
    }
    this.#db = db;
    const opened = db;
    const prepare = (sql: string) => {
      try {
        return opened.prepare(sql); // reads the schema: the first read of a damaged file
      } catch (err) {
        opened.close();
        throw storeError(path, err, 'opening it');
      }
    };
    if (options.readonly) {
      // statements below are never run on a read-only store
      this.#upsert = this.#purge = this.#setStat = prepare('SELECT 1 FROM sqlite_schema');
      return;
    }
    this.#upsert = prepare(
      `INSERT INTO client_ids (group_no, client_id, expires_s) VALUES (?, ?, ?)
       ON CONFLICT (group_no, client_id) DO UPDATE SET expires_s = excluded.expires_s`,
    );
    // At most 1 000 expired rows per flush, so a day when many IDs expire never stalls the host.
    this.#purge = prepare(
      `DELETE FROM client_ids WHERE (group_no, client_id) IN
         (SELECT group_no, client_id FROM client_ids WHERE expires_s <= ? LIMIT 1000)`,
    );
    this.#setStat = prepare(
      'INSERT INTO statistics (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
    );
  }

  get path(): string {
    return this.#path;
  }

  groupNumber(groupId: string): number {
    try {
      return this.#groupNumber(groupId);
    } catch (err) {
      throw storeError(this.#path, err, 'reading its groups');
    }
  }

  #groupNumber(groupId: string): number {
    const row = this.#db.prepare('SELECT group_no FROM window_groups WHERE group_id = ?').get(groupId) as
      { group_no: number } | undefined;
    if (row) return row.group_no;
    return Number(this.#db.prepare('INSERT INTO window_groups (group_id) VALUES (?)').run(groupId).lastInsertRowid);
  }

  /** Live entries of a group in expiry order, for restoring the window. */
  *liveEntries(groupId: string, nowSeconds: number): Generator<{ clientId: Buffer; expiresSeconds: number }> {
    try {
      const rows = this.#db
        .prepare(
          `SELECT c.client_id AS clientId, c.expires_s AS expiresSeconds FROM client_ids c
           JOIN window_groups g ON g.group_no = c.group_no
           WHERE g.group_id = ? AND c.expires_s > ? ORDER BY c.expires_s`,
        )
        .iterate(groupId, nowSeconds) as IterableIterator<{ clientId: Buffer; expiresSeconds: number }>;
      yield* rows;
    } catch (err) {
      throw storeError(this.#path, err, 'reading the client-ID window');
    }
  }

  liveCount(groupId: string, nowSeconds: number): number {
    try {
      const row = this.#db
        .prepare(
          `SELECT count(*) AS n FROM client_ids c JOIN window_groups g ON g.group_no = c.group_no
           WHERE g.group_id = ? AND c.expires_s > ?`,
        )
        .get(groupId, nowSeconds) as { n: number };
      return row.n;
    } catch (err) {
      throw storeError(this.#path, err, 'counting the client-ID window');
    }
  }

  loadStatistics(): HostStatistics {
    const stats = emptyStatistics();
    let rows: { name: string; value: number }[];
    try {
      rows = this.#db.prepare('SELECT name, value FROM statistics').all() as { name: string; value: number }[];
    } catch (err) {
      throw storeError(this.#path, err, 'reading the statistics');
    }
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
    try {
      this.#flush(changes, stats, purgeBefore);
    } catch (err) {
      throw storeError(this.#path, err, 'writing the client-ID window');
    }
  }

  #flush(
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

  /**
   * `PRAGMA quick_check` (run once at start): damage anywhere in the file is found before the
   * host counts on it, not at some later write. Throws HOST_STORE_CORRUPT naming the file.
   */
  verify(): void {
    let problems: string[];
    try {
      problems = (this.#db.pragma('quick_check(5)') as { quick_check: string }[]).map((r) => r.quick_check);
    } catch (err) {
      throw storeError(this.#path, err, 'checking it');
    }
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw storeError(
        this.#path,
        Object.assign(new Error(problems.join('; ')), { code: 'SQLITE_CORRUPT' }),
        'checking it',
      );
    }
  }

  /**
   * Moves the WAL into host.db and cuts the WAL file to nothing: after a failed write, the
   * space the WAL took goes back to the file system before the next try. Returns false when
   * it could not (the disk is still full); never throws.
   */
  checkpoint(): boolean {
    try {
      const [row] = this.#db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      return row?.busy === 0;
    } catch {
      return false;
    }
  }

  close(): void {
    this.#db.close();
  }
}
