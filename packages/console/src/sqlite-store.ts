import Database from 'better-sqlite3';
import { prepareStoreDatabase, type KeyType, type LicenceState } from '@volact/core';
import type { AgentStatus } from './agent-status.js';
import { ConsoleError } from './errors.js';
import { MISSING_SECRET } from './secrets.js';
import type {
  ConfirmationRecord,
  ConsoleDump,
  ConsoleStore,
  ImportCount,
  ImportCounts,
  ImportData,
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

const toOperation = (r: OperationRow): OperationRecord => ({
  id: r.id,
  at: r.at,
  operation: r.operation,
  machine: r.machine,
  ok: r.ok === 1,
  code: r.code,
  detail: r.detail,
});

/** The fingerprint of the one agent-token row that stands for "token missing" (real ones are hex). */
const MISSING_TOKEN_FINGERPRINT = 'missing';
/** A key imported without its secret keeps the exporting console's fingerprint, marked. */
const missingKeyFingerprint = (fingerprint: string) =>
  fingerprint.startsWith(MISSING_SECRET) ? fingerprint : `${MISSING_SECRET}${fingerprint}`;

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

  /** One status snapshot row: the status's fields for queries, and the whole status as JSON. */
  #writeSnapshot(machineId: number, takenAt: number, digest: string, status: AgentStatus, json?: string): void {
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
        json ?? JSON.stringify(status),
      );
  }

  async addSnapshot(machineId: number, takenAt: number, status: AgentStatus, digest: string): Promise<boolean> {
    return this.#db
      .transaction(() => {
        const latest = this.#db
          .prepare('SELECT digest FROM status_snapshots WHERE machine_id = ? ORDER BY id DESC LIMIT 1')
          .get(machineId) as { digest: string } | undefined;
        if (latest?.digest === digest) return false;
        this.#writeSnapshot(machineId, takenAt, digest, status);
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
      // A key imported without its secret (same type and last five) gets it now, keeping its name.
      const placeholder = this.#db
        .prepare('SELECT * FROM product_keys WHERE sealed = ? AND type = ? AND last5 = ? ORDER BY id LIMIT 1')
        .get(MISSING_SECRET, key.type, key.last5) as KeyRow | undefined;
      if (placeholder) {
        this.#db
          .prepare('UPDATE product_keys SET fingerprint = ?, sealed = ? WHERE id = ?')
          .run(key.fingerprint, key.sealed, placeholder.id);
        return { ...toKey(placeholder), fingerprint: key.fingerprint, sealed: key.sealed };
      }
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
    // By time: imported entries are older than their row ids say.
    return (
      this.#db.prepare('SELECT * FROM operations ORDER BY at DESC, id DESC LIMIT ?').all(limit) as OperationRow[]
    ).map(toOperation);
  }

  async dump(): Promise<ConsoleDump> {
    const db = this.#db;
    return db.transaction(() => ({
      tokens: (
        db.prepare('SELECT * FROM agent_tokens ORDER BY id').all() as {
          id: number;
          fingerprint: string;
          sealed: string;
          created_at: number;
        }[]
      ).map((r) => ({ id: r.id, fingerprint: r.fingerprint, sealed: r.sealed, createdAt: r.created_at })),
      machines: (db.prepare('SELECT * FROM machines ORDER BY id').all() as MachineRow[]).map(toMachine),
      snapshots: (db.prepare('SELECT * FROM status_snapshots ORDER BY id').all() as SnapshotRow[]).map((r) => ({
        ...toSnapshot(r),
        digest: r.digest,
      })),
      keys: (db.prepare('SELECT * FROM product_keys ORDER BY id').all() as KeyRow[]).map(toKey),
      confirmations: (
        db.prepare('SELECT * FROM confirmations ORDER BY machine_id, installation_id').all() as ConfirmationRow[]
      ).map(toConfirmation),
      operations: (db.prepare('SELECT * FROM operations ORDER BY id').all() as OperationRow[]).map(toOperation),
    }))();
  }

  async importData(data: ImportData): Promise<ImportCounts> {
    const db = this.#db;
    const count = (): ImportCount => ({ added: 0, updated: 0, unchanged: 0 });
    const counts = {
      machines: count(),
      statusHistory: count(),
      keys: count(),
      confirmationIds: count(),
      operations: count(),
    };
    return db
      .transaction((): ImportCounts => {
        // ---- agent tokens and machines (by address) ----
        const tokenId = (token: ImportData['machines'][number]['token']): number => {
          const t = token ?? { fingerprint: MISSING_TOKEN_FINGERPRINT, sealed: MISSING_SECRET, createdAt: 0 };
          const found = db.prepare('SELECT id FROM agent_tokens WHERE fingerprint = ?').get(t.fingerprint) as
            { id: number } | undefined;
          if (found) return found.id;
          return Number(
            db
              .prepare('INSERT INTO agent_tokens (fingerprint, sealed, created_at) VALUES (?, ?, ?)')
              .run(t.fingerprint, t.sealed, t.createdAt).lastInsertRowid,
          );
        };
        const machineIds = new Map<string, number>();
        for (const m of data.machines) {
          const row = db.prepare('SELECT * FROM machines WHERE address = ?').get(m.address) as MachineRow | undefined;
          if (!row) {
            const other = db.prepare('SELECT address FROM machines WHERE name = ?').get(m.name) as
              { address: string } | undefined;
            if (other) {
              throw new ConsoleError(
                'MACHINE_EXISTS',
                `the machine "${m.name}" is at ${m.address} in the file but "${m.name}" is ${other.address} here; nothing was imported`,
              );
            }
            const id = db
              .prepare(
                `INSERT INTO machines (name, address, token_id, added_at, last_seen_at, last_error_code,
                   last_error_message, last_error_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
              )
              .run(
                m.name,
                m.address,
                tokenId(m.token),
                m.addedAt,
                m.lastSeenAt,
                m.lastError?.code ?? null,
                m.lastError?.message ?? null,
                m.lastError?.at ?? null,
              ).lastInsertRowid;
            machineIds.set(m.address, Number(id));
            counts.machines.added++;
            continue;
          }
          machineIds.set(m.address, row.id);
          const here = toMachine(row);
          const lastSeenAt =
            here.lastSeenAt === null || m.lastSeenAt === null
              ? (here.lastSeenAt ?? m.lastSeenAt)
              : Math.max(here.lastSeenAt, m.lastSeenAt);
          let lastError =
            !here.lastError || (m.lastError && m.lastError.at > here.lastError.at) ? m.lastError : here.lastError;
          // A success after the error cleared it (as recordContact does).
          if (lastError && lastSeenAt !== null && lastError.at < lastSeenAt) lastError = null;
          const addedAt = Math.min(here.addedAt, m.addedAt);
          const tokenMissing =
            (db.prepare('SELECT sealed FROM agent_tokens WHERE id = ?').get(row.token_id) as { sealed: string })
              .sealed === MISSING_SECRET;
          const newTokenId = tokenMissing && m.token ? tokenId(m.token) : row.token_id;
          const same =
            lastSeenAt === here.lastSeenAt &&
            addedAt === here.addedAt &&
            newTokenId === row.token_id &&
            JSON.stringify(lastError) === JSON.stringify(here.lastError);
          if (same) {
            counts.machines.unchanged++;
            continue;
          }
          db.prepare(
            `UPDATE machines SET token_id = ?, added_at = ?, last_seen_at = ?, last_error_code = ?,
               last_error_message = ?, last_error_at = ? WHERE id = ?`,
          ).run(
            newTokenId,
            addedAt,
            lastSeenAt,
            lastError?.code ?? null,
            lastError?.message ?? null,
            lastError?.at ?? null,
            row.id,
          );
          counts.machines.updated++;
        }
        const machineId = (address: string): number => {
          const id = machineIds.get(address);
          if (id === undefined) throw new RangeError(`import: ${address} is not among the machines`);
          return id;
        };

        // ---- status history (by machine + time + digest) ----
        const writeSnapshot = (id: number, takenAt: number, digest: string, status: AgentStatus, json?: string) =>
          this.#writeSnapshot(id, takenAt, digest, status, json);
        const known = new Set(
          (db.prepare('SELECT machine_id, taken_at, digest FROM status_snapshots').all() as SnapshotRow[]).map(
            (r) => `${r.machine_id}\0${r.taken_at}\0${r.digest}`,
          ),
        );
        const fresh = new Map<number, ImportData['snapshots'][number][]>();
        for (const s of data.snapshots) {
          const id = machineId(s.address);
          const identity = `${id}\0${s.takenAt}\0${s.digest}`;
          if (known.has(identity)) {
            counts.statusHistory.unchanged++;
            continue;
          }
          known.add(identity);
          fresh.set(id, [...(fresh.get(id) ?? []), s]);
          counts.statusHistory.added++;
        }
        for (const [id, rows] of fresh) {
          const newest = (
            db.prepare('SELECT max(taken_at) AS t FROM status_snapshots WHERE machine_id = ?').get(id) as {
              t: number | null;
            }
          ).t;
          if (newest === null || newest <= Math.min(...rows.map((r) => r.takenAt))) {
            for (const r of rows) writeSnapshot(id, r.takenAt, r.digest, r.status);
            continue;
          }
          // Older rows than this machine's newest: rewrite its history in time order, so the
          // latest row (the highest id) stays the latest status.
          const existing = db
            .prepare('SELECT * FROM status_snapshots WHERE machine_id = ? ORDER BY id')
            .all(id) as SnapshotRow[];
          const merged = [
            ...existing.map((r) => ({
              takenAt: r.taken_at,
              digest: r.digest,
              status: toSnapshot(r).status,
              json: r.status_json,
            })),
            ...rows.map((r) => ({ ...r, json: undefined })),
          ].sort((a, b) => a.takenAt - b.takenAt);
          db.prepare('DELETE FROM status_snapshots WHERE machine_id = ?').run(id);
          for (const r of merged) writeSnapshot(id, r.takenAt, r.digest, r.status, r.json);
        }

        // ---- product keys (by fingerprint) ----
        for (const k of data.keys) {
          const byFingerprint = (fp: string) =>
            db.prepare('SELECT * FROM product_keys WHERE fingerprint = ?').get(fp) as KeyRow | undefined;
          const sameKey = (r: KeyRow | undefined) => r !== undefined && r.type === k.type && r.last5 === k.last5;
          const byTypeLast5 = (sealed?: string) =>
            db
              .prepare(
                `SELECT * FROM product_keys WHERE type = ? AND last5 = ? ${sealed === undefined ? '' : 'AND sealed = ?'} ORDER BY id LIMIT 1`,
              )
              .get(k.type, k.last5, ...(sealed === undefined ? [] : [sealed])) as KeyRow | undefined;
          if (k.sealed !== null) {
            if (byFingerprint(k.fingerprint)) {
              counts.keys.unchanged++;
              continue;
            }
            const placeholder = byTypeLast5(MISSING_SECRET);
            if (placeholder) {
              db.prepare('UPDATE product_keys SET fingerprint = ?, sealed = ? WHERE id = ?').run(
                k.fingerprint,
                k.sealed,
                placeholder.id,
              );
              counts.keys.updated++;
              continue;
            }
          } else if (
            sameKey(byFingerprint(k.fingerprint)) ||
            sameKey(byFingerprint(missingKeyFingerprint(k.fingerprint))) ||
            byTypeLast5()
          ) {
            // Without the secret, the same type and last five is taken for the same key.
            counts.keys.unchanged++;
            continue;
          }
          const taken = db.prepare('SELECT * FROM product_keys WHERE name = ?').get(k.name) as KeyRow | undefined;
          if (taken) {
            throw new ConsoleError(
              'KEY_EXISTS',
              `the key "${k.name}" (${k.last5}) in the file is another key here (${taken.last5}); nothing was imported`,
            );
          }
          db.prepare(
            'INSERT INTO product_keys (name, type, last5, fingerprint, sealed, added_at) VALUES (?, ?, ?, ?, ?, ?)',
          ).run(
            k.name,
            k.type,
            k.last5,
            k.sealed === null ? missingKeyFingerprint(k.fingerprint) : k.fingerprint,
            k.sealed ?? MISSING_SECRET,
            k.addedAt,
          );
          counts.keys.added++;
        }

        // ---- confirmation IDs (by machine + installation ID; the newer one wins) ----
        for (const c of data.confirmations) {
          const id = machineId(c.address);
          const row = db
            .prepare('SELECT * FROM confirmations WHERE machine_id = ? AND installation_id = ?')
            .get(id, c.installationId) as ConfirmationRow | undefined;
          if (!row) {
            db.prepare(
              `INSERT INTO confirmations (machine_id, installation_id, confirmation_id, authority, obtained_at)
               VALUES (?, ?, ?, ?, ?)`,
            ).run(id, c.installationId, c.confirmationId, c.authority, c.obtainedAt);
            counts.confirmationIds.added++;
          } else if (
            c.obtainedAt > row.obtained_at &&
            (c.confirmationId !== row.confirmation_id || c.authority !== row.authority)
          ) {
            db.prepare(
              `UPDATE confirmations SET confirmation_id = ?, authority = ?, obtained_at = ?
               WHERE machine_id = ? AND installation_id = ?`,
            ).run(c.confirmationId, c.authority, c.obtainedAt, id, c.installationId);
            counts.confirmationIds.updated++;
          } else {
            counts.confirmationIds.unchanged++;
          }
        }

        // ---- operations (by all their fields, as many times as the file has each) ----
        const opIdentity = (o: NewOperation) => JSON.stringify([o.at, o.operation, o.machine, o.ok, o.code, o.detail]);
        const stored = new Map<string, number>();
        for (const r of db.prepare('SELECT * FROM operations').all() as OperationRow[]) {
          const identity = opIdentity(toOperation(r));
          stored.set(identity, (stored.get(identity) ?? 0) + 1);
        }
        const insertOperation = db.prepare(
          'INSERT INTO operations (at, operation, machine, ok, code, detail) VALUES (?, ?, ?, ?, ?, ?)',
        );
        for (const o of data.operations) {
          const identity = opIdentity(o);
          const left = stored.get(identity) ?? 0;
          if (left > 0) {
            stored.set(identity, left - 1);
            counts.operations.unchanged++;
            continue;
          }
          insertOperation.run(o.at, o.operation, o.machine, o.ok ? 1 : 0, o.code, o.detail);
          counts.operations.added++;
        }

        const secretsMissing = {
          keys: (
            db.prepare('SELECT count(*) AS n FROM product_keys WHERE sealed = ?').get(MISSING_SECRET) as { n: number }
          ).n,
          machines: (
            db
              .prepare(
                'SELECT count(*) AS n FROM machines m JOIN agent_tokens t ON t.id = m.token_id WHERE t.sealed = ?',
              )
              .get(MISSING_SECRET) as { n: number }
          ).n,
        };
        return { ...counts, secretsMissing };
      })
      .immediate();
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
