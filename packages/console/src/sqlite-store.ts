import Database from 'better-sqlite3';
import { prepareStoreDatabase, type KeyType, type LicenceState } from '@volact/core';
import type { AgentStatus } from './agent-status.js';
import { ConsoleError } from './errors.js';
import type {
  ConfirmationRecord,
  ConsoleStore,
  MachineRecord,
  NewOperation,
  OperationRecord,
  SnapshotRecord,
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
];

interface MachineRow {
  id: number;
  name: string;
  address: string;
  token_id: number;
  added_at: number;
  last_seen_at: number | null;
  last_error_code: string | null;
  last_error_message: string | null;
  last_error_at: number | null;
}
interface SnapshotRow {
  id: number;
  machine_id: number;
  taken_at: number;
  digest: string;
  state: string;
  method: string | null;
  product_group: string;
  client_machine_id: string;
  installed_key: string | null;
  installed_key_type: string | null;
  installation_id: string | null;
  kms_host: string | null;
  expires_at: string | null;
  status_json: string;
}
interface KeyRow {
  id: number;
  name: string;
  type: string;
  last5: string;
  fingerprint: string;
  sealed: string;
  added_at: number;
}
interface ConfirmationRow {
  machine_id: number;
  installation_id: string;
  confirmation_id: string;
  authority: string | null;
  obtained_at: number;
}
interface OperationRow {
  id: number;
  at: number;
  operation: string;
  machine: string | null;
  ok: number;
  code: string | null;
  detail: string | null;
}

const toMachine = (r: MachineRow): MachineRecord => ({
  id: r.id,
  name: r.name,
  address: r.address,
  tokenId: r.token_id,
  addedAt: r.added_at,
  lastSeenAt: r.last_seen_at,
  lastError:
    r.last_error_code === null
      ? null
      : { code: r.last_error_code, message: r.last_error_message ?? '', at: r.last_error_at ?? 0 },
});
const toSnapshot = (r: SnapshotRow): SnapshotRecord => ({
  id: r.id,
  machineId: r.machine_id,
  takenAt: r.taken_at,
  state: r.state as LicenceState,
  method: r.method as AgentStatus['method'],
  group: r.product_group,
  clientMachineId: r.client_machine_id,
  installedKey: r.installed_key,
  installedKeyType: r.installed_key_type as AgentStatus['installedKeyType'],
  installationId: r.installation_id,
  kmsHost: r.kms_host,
  expiresAt: r.expires_at,
  status: JSON.parse(r.status_json) as AgentStatus,
});
const toKey = (r: KeyRow): StoredKeyRecord => ({
  id: r.id,
  name: r.name,
  type: r.type as KeyType,
  last5: r.last5,
  fingerprint: r.fingerprint,
  sealed: r.sealed,
  addedAt: r.added_at,
});
const toConfirmation = (r: ConfirmationRow): ConfirmationRecord => ({
  machineId: r.machine_id,
  installationId: r.installation_id,
  confirmationId: r.confirmation_id,
  authority: r.authority,
  obtainedAt: r.obtained_at,
});

const isUniqueViolation = (err: unknown) =>
  (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' ||
  (err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY';

/**
 * SQLite engine (better-sqlite3, WAL): one file in the console's data directory. Several
 * `volact console` processes may use it at once: SQLite's write lock serialises them, and a
 * busy timeout lets one wait for the other.
 */
export class SqliteConsoleStore implements ConsoleStore {
  readonly #db: Database.Database;

  constructor(path: string) {
    this.#db = new Database(path);
    prepareStoreDatabase(this.#db, MIGRATIONS, 'the console database');
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
    const row = this.#db.prepare('SELECT * FROM agent_tokens WHERE id = ?').get(id) as
      { id: number; fingerprint: string; sealed: string; created_at: number } | undefined;
    return row && { id: row.id, fingerprint: row.fingerprint, sealed: row.sealed, createdAt: row.created_at };
  }

  async addMachine(m: { name: string; address: string; tokenId: number; addedAt: number }): Promise<MachineRecord> {
    try {
      const id = this.#db
        .prepare('INSERT INTO machines (name, address, token_id, added_at) VALUES (?, ?, ?, ?)')
        .run(m.name, m.address, m.tokenId, m.addedAt).lastInsertRowid;
      return toMachine(this.#db.prepare('SELECT * FROM machines WHERE id = ?').get(id) as MachineRow);
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new ConsoleError(
          'MACHINE_EXISTS',
          `a machine named "${m.name}" or at ${m.address} is already in the console; \`volact console machine list\``,
        );
      }
      throw err;
    }
  }

  async listMachines(): Promise<MachineRecord[]> {
    return (this.#db.prepare('SELECT * FROM machines ORDER BY name').all() as MachineRow[]).map(toMachine);
  }

  async findMachine(nameOrAddress: string): Promise<MachineRecord | undefined> {
    const row = this.#db
      .prepare('SELECT * FROM machines WHERE name = ? OR address = ? ORDER BY name = ? DESC LIMIT 1')
      .get(nameOrAddress, nameOrAddress, nameOrAddress) as MachineRow | undefined;
    return row && toMachine(row);
  }

  async removeMachine(id: number): Promise<void> {
    this.#db.prepare('DELETE FROM machines WHERE id = ?').run(id);
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
        this.#db
          .prepare(
            `INSERT INTO status_snapshots (machine_id, taken_at, digest, state, method, product_group, client_machine_id,
             installed_key, installed_key_type, installation_id, kms_host, expires_at, status_json)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            machineId,
            takenAt,
            digest,
            status.state,
            status.method,
            status.group,
            status.clientMachineId,
            status.installedKey,
            status.installedKeyType,
            status.installationId,
            status.host,
            status.expiresAt,
            JSON.stringify(status),
          );
        return true;
      })
      .immediate();
  }

  async latestSnapshots(): Promise<Map<number, SnapshotRecord>> {
    const rows = this.#db
      .prepare(
        `SELECT s.* FROM status_snapshots s
         JOIN (SELECT machine_id, max(id) AS id FROM status_snapshots GROUP BY machine_id) l ON l.id = s.id`,
      )
      .all() as SnapshotRow[];
    return new Map(rows.map((r) => [r.machine_id, toSnapshot(r)]));
  }

  async history(machineId: number): Promise<SnapshotRecord[]> {
    return (
      this.#db
        .prepare('SELECT * FROM status_snapshots WHERE machine_id = ? ORDER BY id')
        .all(machineId) as SnapshotRow[]
    ).map(toSnapshot);
  }

  async addKey(key: Omit<StoredKeyRecord, 'id'>): Promise<StoredKeyRecord> {
    try {
      const id = this.#db
        .prepare(
          'INSERT INTO product_keys (name, type, last5, fingerprint, sealed, added_at) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run(key.name, key.type, key.last5, key.fingerprint, key.sealed, key.addedAt).lastInsertRowid;
      return { ...key, id: Number(id) };
    } catch (err) {
      if (isUniqueViolation(err)) {
        const same = await this.findKeyByFingerprint(key.fingerprint);
        throw new ConsoleError(
          'KEY_EXISTS',
          same
            ? `key ${key.last5} is already stored as "${same.name}"`
            : `a key named "${key.name}" is already stored; choose another --name`,
        );
      }
      throw err;
    }
  }

  async listKeys(): Promise<StoredKeyRecord[]> {
    return (this.#db.prepare('SELECT * FROM product_keys ORDER BY name').all() as KeyRow[]).map(toKey);
  }

  async findKeyByName(name: string): Promise<StoredKeyRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM product_keys WHERE name = ?').get(name) as KeyRow | undefined;
    return row && toKey(row);
  }

  async findKeyByFingerprint(fingerprint: string): Promise<StoredKeyRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM product_keys WHERE fingerprint = ?').get(fingerprint) as
      KeyRow | undefined;
    return row && toKey(row);
  }

  async saveConfirmation(r: ConfirmationRecord): Promise<void> {
    this.#db
      .prepare(
        `INSERT INTO confirmations (machine_id, installation_id, confirmation_id, authority, obtained_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (machine_id, installation_id) DO UPDATE SET confirmation_id = excluded.confirmation_id,
           authority = excluded.authority, obtained_at = excluded.obtained_at`,
      )
      .run(r.machineId, r.installationId, r.confirmationId, r.authority, r.obtainedAt);
  }

  async findConfirmation(machineId: number, installationId: string): Promise<ConfirmationRecord | undefined> {
    const row = this.#db
      .prepare(
        `SELECT * FROM confirmations WHERE installation_id = ?
         ORDER BY machine_id = ? DESC, obtained_at DESC LIMIT 1`,
      )
      .get(installationId, machineId) as ConfirmationRow | undefined;
    return row && toConfirmation(row);
  }

  async listConfirmations(): Promise<ConfirmationRecord[]> {
    return (
      this.#db.prepare('SELECT * FROM confirmations ORDER BY obtained_at, machine_id').all() as ConfirmationRow[]
    ).map(toConfirmation);
  }

  async logOperation(e: NewOperation): Promise<void> {
    this.#db
      .prepare('INSERT INTO operations (at, operation, machine, ok, code, detail) VALUES (?, ?, ?, ?, ?, ?)')
      .run(e.at, e.operation, e.machine, e.ok ? 1 : 0, e.code, e.detail);
  }

  async listOperations(limit: number): Promise<OperationRecord[]> {
    return (this.#db.prepare('SELECT * FROM operations ORDER BY id DESC LIMIT ?').all(limit) as OperationRow[]).map(
      (r) => ({
        id: r.id,
        at: r.at,
        operation: r.operation,
        machine: r.machine,
        ok: r.ok === 1,
        code: r.code,
        detail: r.detail,
      }),
    );
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
