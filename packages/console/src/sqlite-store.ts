import { closeSync, openSync, readSync } from 'node:fs';
import Database from 'better-sqlite3';
import { prepareStoreDatabase } from '@volact/core';
import type { AgentStatus } from '@volact/core';
import { ConsoleError } from './errors.js';
import * as merge from './import-merge.js';
import { MISSING_SECRET } from './secrets.js';
import { SqliteProxyFiles } from './proxy-files/sqlite.js';
import * as tables from './store-rows.js';
import { searchExpression } from './views/sql.js';
import { SqliteFleetViews } from './views/sqlite.js';
import { SqliteWebState } from './web-state/sqlite.js';
import type {
  AdminRecord,
  ConfirmationRecord,
  ConsoleDump,
  ConsoleStore,
  ImportCounts,
  ImportData,
  MachineRecord,
  MakCountersRecord,
  NewOperation,
  OperationRecord,
  SnapshotRecord,
  StatusWrite,
  StoredKeyRecord,
  TokenRecord,
} from './store.js';

/** Schema migrations, applied in order at open; the applied version is kept in user_version. */
const MIGRATIONS: string[] = [
  `CREATE TABLE agent_tokens (
     id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL UNIQUE, sealed TEXT NOT NULL, created_at INTEGER NOT NULL);
   CREATE TABLE machines (
     id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE, address TEXT NOT NULL UNIQUE,
     token_id INTEGER NOT NULL REFERENCES agent_tokens(id), added_at INTEGER NOT NULL, last_seen_at INTEGER,
     last_error_code TEXT, last_error_message TEXT, last_error_at INTEGER);
   CREATE TABLE status_snapshots (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     machine_id INTEGER NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
     taken_at INTEGER NOT NULL, digest TEXT NOT NULL, state TEXT NOT NULL, method TEXT,
     product_group TEXT NOT NULL, client_machine_id TEXT NOT NULL, installed_key TEXT, installed_key_type TEXT,
     installation_id TEXT, kms_host TEXT, expires_at TEXT, status_json TEXT NOT NULL);
   CREATE INDEX status_snapshots_machine ON status_snapshots (machine_id, id);
   CREATE INDEX status_snapshots_cmid ON status_snapshots (client_machine_id);
   CREATE TABLE product_keys (
     id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE, type TEXT NOT NULL, last5 TEXT NOT NULL,
     fingerprint TEXT NOT NULL UNIQUE, sealed TEXT NOT NULL, added_at INTEGER NOT NULL);
   CREATE TABLE confirmations (
     machine_id INTEGER NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
     installation_id TEXT NOT NULL, confirmation_id TEXT NOT NULL, authority TEXT, obtained_at INTEGER NOT NULL,
     PRIMARY KEY (machine_id, installation_id));
   CREATE INDEX confirmations_iid ON confirmations (installation_id);
   CREATE TABLE operations (
     id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, operation TEXT NOT NULL, machine TEXT,
     ok INTEGER NOT NULL, code TEXT, detail TEXT);`,
  // Console users, and each MAK's counters as the authority last gave them (all null before).
  `CREATE TABLE admins (
     name TEXT PRIMARY KEY COLLATE NOCASE, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);
   ALTER TABLE product_keys ADD COLUMN mak_limit INTEGER;
   ALTER TABLE product_keys ADD COLUMN mak_used INTEGER;
   ALTER TABLE product_keys ADD COLUMN mak_remaining INTEGER;
   ALTER TABLE product_keys ADD COLUMN mak_authority TEXT;
   ALTER TABLE product_keys ADD COLUMN counted_at INTEGER;`,
  // A machine whose proof failed (PROOF_FAILED) is not called again until re-enrolled.
  `ALTER TABLE machines ADD COLUMN untrusted_at INTEGER;
   ALTER TABLE machines ADD COLUMN untrusted_reason TEXT;`,
  // The token sent to the agent and not yet confirmed (enrolment, rotation): a lost answer
  // must not leave the console without the token the agent holds.
  `ALTER TABLE machines ADD COLUMN pending_token_id INTEGER;`,
  // Issue 15 (one migration for all of it): the machine as people know it (its agent's facts),
  // its latest status denormalised (pages, filters and reports in SQL over 100 000 machines),
  // console user roles, sessions and jobs that survive a restart, isolated-network proxy files.
  `${tables.MACHINE_COLUMNS_15.map((c) => `ALTER TABLE machines ADD COLUMN ${c};`).join('\n   ')}
   UPDATE machines SET latest_snapshot_id = (SELECT max(id) FROM status_snapshots s WHERE s.machine_id = machines.id);
   UPDATE machines SET (state, method, product_group, client_machine_id, installed_key, installed_key_type,
       kms_host, expires_at, status_at) =
     (SELECT state, method, product_group, client_machine_id, installed_key, installed_key_type,
       kms_host, expires_at, taken_at FROM status_snapshots s WHERE s.id = machines.latest_snapshot_id)
     WHERE latest_snapshot_id IS NOT NULL;
   ALTER TABLE machines ADD COLUMN display_name TEXT GENERATED ALWAYS AS (${tables.DISPLAY_NAME_SQL}) VIRTUAL;
   ${tables.MACHINE_SORT_INDEXES.map(([name, key]) => `CREATE INDEX ${name} ON machines (${key}, display_name COLLATE NOCASE);`).join('\n   ')}
   CREATE INDEX machines_display ON machines (display_name COLLATE NOCASE);
   CREATE INDEX machines_search ON machines (${searchExpression({ engine: 'sqlite' })});
   CREATE INDEX status_snapshots_machine_time ON status_snapshots (machine_id, taken_at, id, state);
   CREATE INDEX operations_at ON operations (at);
   ALTER TABLE admins ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
   CREATE TABLE web_sessions (
     digest TEXT PRIMARY KEY, user_name TEXT NOT NULL COLLATE NOCASE, created_at INTEGER NOT NULL,
     last_used_at INTEGER NOT NULL);
   CREATE INDEX web_sessions_user ON web_sessions (user_name);
   CREATE TABLE jobs (
     id TEXT PRIMARY KEY, operation TEXT NOT NULL, user_name TEXT NOT NULL, detail TEXT,
     started_at INTEGER NOT NULL, finished_at INTEGER, total INTEGER NOT NULL, done INTEGER NOT NULL,
     state TEXT NOT NULL, error_code TEXT, error_message TEXT, outcome TEXT, params_json TEXT,
     failed INTEGER NOT NULL DEFAULT 0, proxy_file_id TEXT);
   CREATE INDEX jobs_started ON jobs (started_at);
   CREATE TABLE job_results (
     job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, seq INTEGER NOT NULL, ok INTEGER NOT NULL,
     result_json TEXT NOT NULL, PRIMARY KEY (job_id, seq));
   CREATE TABLE proxy_requests (
     id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, created_by TEXT, digest TEXT NOT NULL,
     file_json TEXT NOT NULL, applied_at INTEGER);`,
];

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** The fix, in every message about a broken console.db. */
const restoreHint =
  'restore it from the backup of the data directory (console.db with its console.key), or make a new console with `volact console init` in another --data-dir';

/** Refuses an empty file or one that is not an SQLite database, before SQLite would take it as new. */
function checkDatabaseFile(path: string): void {
  const header = Buffer.alloc(SQLITE_HEADER.length);
  let read = 0;
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    read = readSync(fd, header, 0, header.length, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ConsoleError('CONSOLE_NOT_INITIALISED', `${path} is missing: ${restoreHint}`);
    }
    throw err;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (read === 0) throw new ConsoleError('CONSOLE_DB_INVALID', `${path} is empty (0 bytes): ${restoreHint}`);
  if (read < header.length || !header.equals(SQLITE_HEADER)) {
    throw new ConsoleError(
      'CONSOLE_DB_INVALID',
      `${path} is not an SQLite database (damaged or overwritten): ${restoreHint}`,
    );
  }
}

/** SQLite's own codes for a damaged file, as an error naming the file and the fix. */
export function databaseError(path: string, err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^SQLITE_(CORRUPT|NOTADB)/.test(code)) {
    return new ConsoleError('CONSOLE_DB_INVALID', `${path} is damaged (${code}): ${restoreHint}`);
  }
  return err;
}

const isUniqueViolation = (err: unknown) =>
  (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' ||
  (err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY';

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');
const INSERT_SNAPSHOT = `INSERT INTO status_snapshots (${tables.SNAPSHOT_COLUMNS.join(', ')})
  VALUES (${placeholders(tables.SNAPSHOT_COLUMNS.length)})`;
const SET_COUNTERS = tables.COUNTER_COLUMNS.map((c) => `${c} = ?`).join(', ');
/** The machine's denormalised latest-status columns (tables.latestValues, then the machine's id). */
const SET_LATEST = `UPDATE machines SET ${tables.LATEST_COLUMNS.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`;
/** A call that the agent answered: last seen (never moved back), last error cleared (as recordContact). */
const SET_SEEN = `UPDATE machines SET last_seen_at = max(coalesce(last_seen_at, 0), ?), last_error_code = NULL,
  last_error_message = NULL, last_error_at = NULL WHERE id = ?`;
/** Recomputes the latest-status columns of the machines whose ids are in the JSON array `?`. */
const RECOMPUTE_LATEST = `UPDATE machines SET (${tables.LATEST_COLUMNS.join(', ')}) =
  (SELECT ${tables.LATEST_SOURCES.join(', ')} FROM status_snapshots s WHERE s.machine_id = machines.id
   ORDER BY s.id DESC LIMIT 1)
  WHERE id IN (SELECT value FROM json_each(?))`;
const UPSERT_CONFIRMATION = `INSERT INTO confirmations (machine_id, installation_id, confirmation_id, authority, obtained_at)
  VALUES (?, ?, ?, ?, ?)
  ON CONFLICT (machine_id, installation_id) DO UPDATE SET confirmation_id = excluded.confirmation_id,
    authority = excluded.authority, obtained_at = excluded.obtained_at`;
/** Rows per statement of insertGeneratedFleet (fewer calls into SQLite; under its 32 766 parameters). */
const INSERTER_ROWS = 64;
const INSERT_OPERATION = 'INSERT INTO operations (at, operation, machine, ok, code, detail) VALUES (?, ?, ?, ?, ?, ?)';

/**
 * SQLite engine (better-sqlite3, WAL): one file in the console's data directory. Several
 * `volact console` processes may use it at once: SQLite's write lock serialises them, and a
 * busy timeout lets one wait for the other.
 */
export class SqliteConsoleStore implements ConsoleStore, tables.GeneratedFleetWriter {
  readonly #db: Database.Database;
  readonly views: SqliteFleetViews;
  readonly webState: SqliteWebState;
  readonly proxyFiles: SqliteProxyFiles;

  /**
   * With `mustExist` (every console command but init) the file must exist and be an SQLite
   * database: an empty or foreign file is refused (CONSOLE_DB_INVALID), never replaced by a new
   * empty console (which would drop its admins). `readOnly` opens it for reading only: no
   * schema upgrade, nothing written.
   */
  constructor(path: string, options: { mustExist?: boolean; readOnly?: boolean } = {}) {
    if (options.mustExist || options.readOnly) checkDatabaseFile(path);
    try {
      this.#db = new Database(path, {
        ...(options.mustExist || options.readOnly ? { fileMustExist: true } : {}),
        ...(options.readOnly ? { readonly: true } : {}),
      });
      if (options.readOnly) {
        this.#db.pragma('busy_timeout = 5000');
        this.#db.pragma('foreign_keys = ON');
        const version = Number(this.#db.pragma('user_version', { simple: true }));
        if (version !== MIGRATIONS.length) {
          throw new ConsoleError(
            'CONSOLE_DB_INVALID',
            version > MIGRATIONS.length
              ? `${path} has schema version ${version}, newer than this volact knows (${MIGRATIONS.length}); upgrade volact`
              : `${path} has schema version ${version} (this volact's is ${MIGRATIONS.length}): run a command that changes the console once (e.g. \`volact console refresh\`) to upgrade it, then read it`,
          );
        }
      } else {
        prepareStoreDatabase(this.#db, MIGRATIONS, 'the console database');
      }
    } catch (err) {
      throw databaseError(path, err);
    }
    this.views = new SqliteFleetViews(this.#db);
    this.webState = new SqliteWebState(this.#db);
    this.proxyFiles = new SqliteProxyFiles(this.#db);
  }

  async findOrAddToken(token: { fingerprint: string; sealed: string; createdAt: number }): Promise<number> {
    return this.#db
      .transaction(() => {
        const found = this.#db.prepare('SELECT id FROM agent_tokens WHERE fingerprint = ?').get(token.fingerprint) as
          { id: number } | undefined;
        if (found) return found.id;
        return Number(
          this.#db
            .prepare('INSERT INTO agent_tokens (fingerprint, sealed, created_at) VALUES (?, ?, ?)')
            .run(token.fingerprint, token.sealed, token.createdAt).lastInsertRowid,
        );
      })
      .immediate();
  }

  async getToken(id: number): Promise<TokenRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM agent_tokens WHERE id = ?').get(id) as tables.TokenRow | undefined;
    return row && tables.toToken(row);
  }

  async addMachine(m: { name: string; address: string; tokenId: number; addedAt: number }): Promise<MachineRecord> {
    try {
      const id = this.#db
        .prepare('INSERT INTO machines (name, address, token_id, added_at) VALUES (?, ?, ?, ?)')
        .run(m.name, m.address, m.tokenId, m.addedAt).lastInsertRowid;
      return tables.toMachine(this.#db.prepare('SELECT * FROM machines WHERE id = ?').get(id) as tables.MachineRow);
    } catch (err) {
      if (isUniqueViolation(err)) throw tables.machineExists(m.name, m.address);
      throw err;
    }
  }

  async listMachines(): Promise<MachineRecord[]> {
    return (this.#db.prepare('SELECT * FROM machines ORDER BY name').all() as tables.MachineRow[]).map(
      tables.toMachine,
    );
  }

  async findMachine(nameOrAddress: string): Promise<MachineRecord | undefined> {
    const row = this.#db
      .prepare('SELECT * FROM machines WHERE name = ? OR address = ? ORDER BY name = ? DESC LIMIT 1')
      .get(nameOrAddress, nameOrAddress, nameOrAddress) as tables.MachineRow | undefined;
    return row && tables.toMachine(row);
  }

  async getMachine(id: number): Promise<MachineRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM machines WHERE id = ?').get(id) as tables.MachineRow | undefined;
    return row && tables.toMachine(row);
  }

  async removeMachine(id: number): Promise<void> {
    this.#db.prepare('DELETE FROM machines WHERE id = ?').run(id);
  }

  async setMachineToken(machineId: number, tokenId: number): Promise<void> {
    this.#db.prepare('UPDATE machines SET token_id = ?, pending_token_id = NULL WHERE id = ?').run(tokenId, machineId);
  }

  async setPendingToken(machineId: number, tokenId: number | null): Promise<void> {
    this.#db.prepare('UPDATE machines SET pending_token_id = ? WHERE id = ?').run(tokenId, machineId);
  }

  async setUntrusted(machineId: number, mark: { at: number; reason: string } | null): Promise<void> {
    this.#db
      .prepare('UPDATE machines SET untrusted_at = ?, untrusted_reason = ? WHERE id = ?')
      .run(mark?.at ?? null, mark?.reason.slice(0, 1000) ?? null, machineId);
  }

  async recordContact(
    machineId: number,
    outcome: { at: number; ok: true } | { at: number; ok: false; code: string; message: string },
  ): Promise<void> {
    if (outcome.ok) {
      this.#db
        .prepare(
          `UPDATE machines SET last_seen_at = max(coalesce(last_seen_at, 0), ?), last_error_code = NULL,
             last_error_message = NULL, last_error_at = NULL WHERE id = ?`,
        )
        .run(outcome.at, machineId);
    } else {
      this.#db
        .prepare('UPDATE machines SET last_error_code = ?, last_error_message = ?, last_error_at = ? WHERE id = ?')
        .run(outcome.code, outcome.message.slice(0, 1000), outcome.at, machineId);
    }
  }

  async addSnapshot(machineId: number, takenAt: number, status: AgentStatus, digest: string): Promise<boolean> {
    return this.#db
      .transaction(() => {
        const latest = this.#db
          .prepare('SELECT digest FROM status_snapshots WHERE machine_id = ? ORDER BY id DESC LIMIT 1')
          .get(machineId) as { digest: string } | undefined;
        if (latest?.digest === digest) return false;
        const id = Number(
          this.#db.prepare(INSERT_SNAPSHOT).run(...tables.snapshotValues(machineId, takenAt, digest, status))
            .lastInsertRowid,
        );
        this.#db.prepare(SET_LATEST).run(...tables.latestValues(id, takenAt, status), machineId);
        return true;
      })
      .immediate();
  }

  /** Statements of recordStatuses, prepared once (a refresh runs them for every machine). */
  #statusStatements:
    | {
        latest: Database.Statement;
        insert: Database.Statement;
        setLatest: Database.Statement;
        seen: Database.Statement;
      }
    | undefined;

  async recordStatuses(entries: readonly StatusWrite[]): Promise<boolean[]> {
    if (entries.length === 0) return [];
    const s = (this.#statusStatements ??= {
      latest: this.#db.prepare('SELECT digest FROM status_snapshots WHERE machine_id = ? ORDER BY id DESC LIMIT 1'),
      insert: this.#db.prepare(INSERT_SNAPSHOT),
      setLatest: this.#db.prepare(SET_LATEST),
      seen: this.#db.prepare(SET_SEEN),
    });
    return this.#db
      .transaction(() =>
        entries.map((e) => {
          const latest = s.latest.get(e.machineId) as { digest: string } | undefined;
          const changed = latest?.digest !== e.digest;
          if (changed) {
            const id = Number(
              s.insert.run(...tables.snapshotValues(e.machineId, e.takenAt, e.digest, e.status)).lastInsertRowid,
            );
            s.setLatest.run(...tables.latestValues(id, e.takenAt, e.status), e.machineId);
          }
          s.seen.run(e.takenAt, e.machineId);
          return changed;
        }),
      )
      .immediate();
  }

  async latestSnapshots(): Promise<Map<number, SnapshotRecord>> {
    const rows = this.#db
      .prepare(
        `SELECT s.* FROM status_snapshots s
         JOIN (SELECT machine_id, max(id) AS id FROM status_snapshots GROUP BY machine_id) l ON l.id = s.id`,
      )
      .all() as tables.SnapshotRow[];
    return new Map(rows.map((r) => [r.machine_id, tables.toSnapshot(r)]));
  }

  async history(machineId: number): Promise<SnapshotRecord[]> {
    return (
      this.#db
        .prepare('SELECT * FROM status_snapshots WHERE machine_id = ? ORDER BY id')
        .all(machineId) as tables.SnapshotRow[]
    ).map(tables.toSnapshot);
  }

  async snapshotsBefore(before: number): Promise<SnapshotRecord[]> {
    return (
      this.#db
        .prepare('SELECT * FROM status_snapshots WHERE taken_at < ? ORDER BY machine_id, id')
        .all(before) as tables.SnapshotRow[]
    ).map(tables.toSnapshot);
  }

  async addKey(key: Omit<StoredKeyRecord, 'id' | 'counters'>): Promise<StoredKeyRecord> {
    try {
      // A key imported without its secret (same type and last five) gets it now, keeping its name.
      const placeholder = this.#db
        .prepare('SELECT * FROM product_keys WHERE sealed = ? AND type = ? AND last5 = ? ORDER BY id LIMIT 1')
        .get(MISSING_SECRET, key.type, key.last5) as tables.KeyRow | undefined;
      if (placeholder) {
        this.#db
          .prepare('UPDATE product_keys SET fingerprint = ?, sealed = ? WHERE id = ?')
          .run(key.fingerprint, key.sealed, placeholder.id);
        return { ...tables.toKey(placeholder), fingerprint: key.fingerprint, sealed: key.sealed };
      }
      const id = this.#db
        .prepare(
          'INSERT INTO product_keys (name, type, last5, fingerprint, sealed, added_at) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run(key.name, key.type, key.last5, key.fingerprint, key.sealed, key.addedAt).lastInsertRowid;
      return tables.toKey(this.#db.prepare('SELECT * FROM product_keys WHERE id = ?').get(id) as tables.KeyRow);
    } catch (err) {
      if (isUniqueViolation(err)) throw tables.keyExists(key, await this.findKeyByFingerprint(key.fingerprint));
      throw err;
    }
  }

  async setKeyCounters(keyId: number, counters: MakCountersRecord): Promise<void> {
    this.#db
      .prepare(`UPDATE product_keys SET ${SET_COUNTERS} WHERE id = ?`)
      .run(...tables.counterValues(counters), keyId);
  }

  async listKeys(): Promise<StoredKeyRecord[]> {
    return (this.#db.prepare('SELECT * FROM product_keys ORDER BY name').all() as tables.KeyRow[]).map(tables.toKey);
  }

  async findKeyByName(name: string): Promise<StoredKeyRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM product_keys WHERE name = ?').get(name) as tables.KeyRow | undefined;
    return row && tables.toKey(row);
  }

  async findKeyByFingerprint(fingerprint: string): Promise<StoredKeyRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM product_keys WHERE fingerprint = ?').get(fingerprint) as
      tables.KeyRow | undefined;
    return row && tables.toKey(row);
  }

  async saveConfirmation(r: ConfirmationRecord): Promise<void> {
    this.#db
      .prepare(UPSERT_CONFIRMATION)
      .run(r.machineId, r.installationId, r.confirmationId, r.authority, r.obtainedAt);
  }

  async findConfirmation(machineId: number, installationId: string): Promise<ConfirmationRecord | undefined> {
    const row = this.#db
      .prepare(
        `SELECT * FROM confirmations WHERE installation_id = ?
         ORDER BY machine_id = ? DESC, obtained_at DESC LIMIT 1`,
      )
      .get(installationId, machineId) as tables.ConfirmationRow | undefined;
    return row && tables.toConfirmation(row);
  }

  async listConfirmations(): Promise<ConfirmationRecord[]> {
    return (
      this.#db.prepare('SELECT * FROM confirmations ORDER BY obtained_at, machine_id').all() as tables.ConfirmationRow[]
    ).map(tables.toConfirmation);
  }

  async addAdmin(admin: AdminRecord): Promise<void> {
    try {
      this.#db
        .prepare('INSERT INTO admins (name, password_hash, created_at, role) VALUES (?, ?, ?, ?)')
        .run(admin.name, admin.passwordHash, admin.createdAt, admin.role);
    } catch (err) {
      if (isUniqueViolation(err)) throw tables.adminExists(admin.name);
      throw err;
    }
  }

  async findAdmin(name: string): Promise<AdminRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM admins WHERE name = ?').get(name) as tables.AdminRow | undefined;
    return row && tables.toAdmin(row);
  }

  async setAdminPassword(name: string, passwordHash: string): Promise<boolean> {
    return this.#db.prepare('UPDATE admins SET password_hash = ? WHERE name = ?').run(passwordHash, name).changes > 0;
  }

  async countAdmins(): Promise<number> {
    return (this.#db.prepare('SELECT count(*) AS n FROM admins').get() as { n: number }).n;
  }

  async listAdmins(): Promise<AdminRecord[]> {
    return (this.#db.prepare('SELECT * FROM admins ORDER BY name COLLATE NOCASE').all() as tables.AdminRow[]).map(
      tables.toAdmin,
    );
  }

  /** Throws LAST_ADMIN when `name` is the only user with the admin role (inside the caller's transaction). */
  #keepAnAdmin(row: tables.AdminRow): void {
    if (row.role !== 'admin') return;
    const { n } = this.#db.prepare("SELECT count(*) AS n FROM admins WHERE role = 'admin'").get() as { n: number };
    if (n <= 1) throw tables.lastAdmin(row.name);
  }

  async removeAdmin(name: string): Promise<boolean> {
    return this.#db
      .transaction(() => {
        const row = this.#db.prepare('SELECT * FROM admins WHERE name = ?').get(name) as tables.AdminRow | undefined;
        if (!row) return false;
        this.#keepAnAdmin(row);
        this.#db.prepare('DELETE FROM admins WHERE name = ?').run(name);
        return true;
      })
      .immediate();
  }

  async setAdminRole(name: string, role: AdminRecord['role']): Promise<AdminRecord | undefined> {
    return this.#db
      .transaction(() => {
        const row = this.#db.prepare('SELECT * FROM admins WHERE name = ?').get(name) as tables.AdminRow | undefined;
        if (!row) return undefined;
        if (role !== 'admin') this.#keepAnAdmin(row);
        this.#db.prepare('UPDATE admins SET role = ? WHERE name = ?').run(role, name);
        return tables.toAdmin({ ...row, role });
      })
      .immediate();
  }

  async logOperation(e: NewOperation): Promise<void> {
    this.#db.prepare(INSERT_OPERATION).run(e.at, e.operation, e.machine, e.ok ? 1 : 0, e.code, e.detail);
  }

  async listOperations(limit: number): Promise<OperationRecord[]> {
    // By time: imported entries are older than their row ids say.
    return (
      this.#db.prepare('SELECT * FROM operations ORDER BY at DESC, id DESC LIMIT ?').all(limit) as tables.OperationRow[]
    ).map(tables.toOperation);
  }

  /** Every table but the history, in dump order (call inside a transaction). */
  #tables() {
    const all = <R>(sql: string) => this.#db.prepare(sql).all() as R[];
    return {
      tokens: all<tables.TokenRow>('SELECT * FROM agent_tokens ORDER BY id').map(tables.toToken),
      machines: all<tables.MachineRow>('SELECT * FROM machines ORDER BY id').map(tables.toMachine),
      keys: all<tables.KeyRow>('SELECT * FROM product_keys ORDER BY id').map(tables.toKey),
      confirmations: all<tables.ConfirmationRow>(
        'SELECT * FROM confirmations ORDER BY machine_id, installation_id',
      ).map(tables.toConfirmation),
      operations: all<tables.OperationRow>('SELECT * FROM operations ORDER BY id').map(tables.toOperation),
    };
  }

  async dump(): Promise<ConsoleDump> {
    return this.#db.transaction(() => ({
      ...this.#tables(),
      snapshots: (this.#db.prepare('SELECT * FROM status_snapshots ORDER BY id').all() as tables.SnapshotRow[]).map(
        (r) => ({
          ...tables.toSnapshot(r),
          digest: r.digest,
        }),
      ),
    }))();
  }

  async importData(data: ImportData): Promise<ImportCounts> {
    // Under the write lock from the first read (IMMEDIATE): the plan is made on what is written.
    return this.#db
      .transaction((): ImportCounts => {
        const state: merge.ImportState = {
          ...this.#tables(),
          snapshots: (
            this.#db.prepare('SELECT machine_id, taken_at, digest FROM status_snapshots').all() as tables.SnapshotRow[]
          ).map((r) => ({ machineId: r.machine_id, takenAt: r.taken_at, digest: r.digest })),
        };
        const plan = merge.planImport(state, data);
        this.#write(state, plan);
        return plan.counts;
      })
      .immediate();
  }

  /** Writes an import's plan (inside its transaction). */
  #write(state: merge.ImportState, plan: merge.ImportPlan): void {
    const db = this.#db;
    const tokenIds = new Map(state.tokens.map((t) => [t.fingerprint, t.id]));
    const insertToken = db.prepare('INSERT INTO agent_tokens (fingerprint, sealed, created_at) VALUES (?, ?, ?)');
    for (const t of plan.tokens) {
      tokenIds.set(t.fingerprint, Number(insertToken.run(t.fingerprint, t.sealed, t.createdAt).lastInsertRowid));
    }

    const machineIds = new Map(state.machines.map((m) => [m.address, m.id]));
    const insertMachine = db.prepare(
      `INSERT INTO machines (name, address, token_id, added_at, last_seen_at, last_error_code, last_error_message,
         last_error_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const m of plan.newMachines) {
      const id = insertMachine.run(m.name, m.address, ...merge.machineValues(m, tokenIds)).lastInsertRowid;
      machineIds.set(m.address, Number(id));
    }
    const updateMachine = db.prepare(
      `UPDATE machines SET token_id = ?, added_at = ?, last_seen_at = ?, last_error_code = ?,
         last_error_message = ?, last_error_at = ? WHERE id = ?`,
    );
    for (const m of plan.changedMachines) updateMachine.run(...merge.machineValues(m, tokenIds), m.id);

    const insertSnapshot = db.prepare(INSERT_SNAPSHOT);
    const touched: number[] = [];
    for (const h of plan.history) {
      const id = merge.idOf(machineIds, h.address);
      touched.push(id);
      let rows: readonly merge.HistoryRow[] = h.rows;
      if (h.rewrite) {
        const existing = db
          .prepare('SELECT * FROM status_snapshots WHERE machine_id = ? ORDER BY id')
          .all(id) as tables.SnapshotRow[];
        rows = merge.mergeHistory(
          existing.map((r) => ({
            takenAt: r.taken_at,
            digest: r.digest,
            status: tables.toSnapshot(r).status,
            json: r.status_json,
          })),
          h.rows,
        );
        db.prepare('DELETE FROM status_snapshots WHERE machine_id = ?').run(id);
      }
      for (const r of rows) {
        insertSnapshot.run(...tables.snapshotValues(id, r.takenAt, r.digest, r.status, r.json));
      }
    }

    if (touched.length > 0) db.prepare(RECOMPUTE_LATEST).run(JSON.stringify(touched));

    const updateKey = db.prepare(`UPDATE product_keys SET fingerprint = ?, sealed = ?, ${SET_COUNTERS} WHERE id = ?`);
    for (const k of plan.changedKeys) updateKey.run(k.fingerprint, k.sealed, ...tables.counterValues(k.counters), k.id);
    const insertKey = db.prepare(
      `INSERT INTO product_keys (name, type, last5, fingerprint, sealed, added_at, ${tables.COUNTER_COLUMNS.join(', ')})
       VALUES (${placeholders(6 + tables.COUNTER_COLUMNS.length)})`,
    );
    for (const k of plan.newKeys) {
      insertKey.run(k.name, k.type, k.last5, k.fingerprint, k.sealed, k.addedAt, ...tables.counterValues(k.counters));
    }

    const saveConfirmation = db.prepare(UPSERT_CONFIRMATION);
    for (const c of plan.confirmations) {
      saveConfirmation.run(
        merge.idOf(machineIds, c.address),
        c.installationId,
        c.confirmationId,
        c.authority,
        c.obtainedAt,
      );
    }
    const insertOperation = db.prepare(INSERT_OPERATION);
    for (const o of plan.operations) insertOperation.run(o.at, o.operation, o.machine, o.ok ? 1 : 0, o.code, o.detail);
  }

  /**
   * Testing only (tables.GeneratedFleetWriter, for generateFleet): the rows importData would
   * write into an empty store, written directly (ids chosen as SQLite would choose them).
   */
  async insertGeneratedFleet(
    token: { readonly fingerprint: string; readonly sealed: string; readonly createdAt: number },
    machines: readonly tables.GeneratedMachineRows[],
  ): Promise<boolean> {
    const db = this.#db;
    const cacheSize = db.pragma('cache_size', { simple: true }) as number;
    db.pragma('cache_size = -262144');
    try {
      return this.#insertGenerated(token, machines);
    } finally {
      db.pragma(`cache_size = ${cacheSize}`);
    }
  }

  /** Inserts rows of `columns` into `table` INSERTER_ROWS at a time (one statement each); flush() writes the rest. */
  #inserter(table: string, columns: readonly string[]) {
    const statement = (rows: number) =>
      this.#db.prepare(
        `INSERT INTO ${table} (${columns.join(', ')})
         VALUES ${Array.from({ length: rows }, () => `(${placeholders(columns.length)})`).join(', ')}`,
      );
    const many = statement(INSERTER_ROWS);
    const one = statement(1);
    let values: unknown[] = [];
    let rows = 0;
    return {
      add(row: readonly unknown[]): void {
        for (const v of row) values.push(v);
        if (++rows < INSERTER_ROWS) return;
        many.run(values);
        values = [];
        rows = 0;
      },
      flush(): void {
        for (let k = 0; k < rows; k++) one.run(values.slice(k * columns.length, (k + 1) * columns.length));
        values = [];
        rows = 0;
      },
    };
  }

  #insertGenerated(
    token: { readonly fingerprint: string; readonly sealed: string; readonly createdAt: number },
    machines: readonly tables.GeneratedMachineRows[],
  ): boolean {
    const db = this.#db;
    return db
      .transaction((): boolean => {
        if (db.prepare('SELECT 1 FROM machines LIMIT 1').get() !== undefined) return false;
        if (machines.length === 0) return true;
        db.prepare(
          'INSERT INTO agent_tokens (fingerprint, sealed, created_at) VALUES (?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING',
        ).run(token.fingerprint, token.sealed, token.createdAt);
        const { id: tokenId } = db
          .prepare('SELECT id FROM agent_tokens WHERE fingerprint = ?')
          .get(token.fingerprint) as {
          id: number;
        };
        // An empty table's next rowid is 1; AUTOINCREMENT's is past every id it ever gave.
        const { seq } = db
          .prepare("SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'status_snapshots'), 0) AS seq")
          .get() as { seq: number };
        // The tables are empty: their indexes (not the UNIQUE ones) are built once after the
        // rows, sorted, rather than row by row (in this transaction: a failure leaves them as they were).
        const indexes = db
          .prepare(
            `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
             AND tbl_name IN ('machines', 'status_snapshots')`,
          )
          .all() as { name: string; sql: string }[];
        for (const index of indexes) db.exec(`DROP INDEX "${index.name}"`);
        const machineRows = this.#inserter('machines', tables.GENERATED_MACHINE_COLUMNS);
        let latest = seq;
        machines.forEach((m, i) => {
          latest += m.history.length;
          machineRows.add(tables.generatedMachineValues(i + 1, tokenId, m, latest));
        });
        machineRows.flush();
        const snapshotRows = this.#inserter('status_snapshots', ['id', ...tables.SNAPSHOT_COLUMNS]);
        let snapshotId = seq;
        machines.forEach((m, i) => {
          for (const h of m.history) {
            snapshotRows.add([++snapshotId, ...tables.snapshotValues(i + 1, h.takenAt, h.digest, h.status)]);
          }
        });
        snapshotRows.flush();
        for (const index of indexes) db.exec(index.sql);
        return true;
      })
      .immediate();
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
