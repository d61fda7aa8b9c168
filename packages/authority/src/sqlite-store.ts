import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteKeyRingStore, type KeyRingStore } from './key-ring-store.js';
import { prepareStoreDatabase, type GroupKind, type KeyType, type ProductGroup } from '@volact/core';
import { AuthorityError } from './errors.js';
import { KEY_RING_MIGRATION_SQLITE } from './key-ring-schema.js';
import { SQLITE_REVOCATION_MIGRATION, SqliteRevocationStore, type RevocationStore } from './revocation-store.js';
import { SqliteAccessStore, type AccessStore } from './access/access-store.js';
import { EVENTS_MIGRATION_SQLITE } from './webhooks/events.js';
import { ORGANISATIONS_MIGRATION_SQLITE } from './organisations/schema.js';
import { ACCESS_MIGRATION_SQLITE } from './access/schema.js';
import { RAISE_REQUESTS_MIGRATION_SQLITE } from './raise-requests/schema.js';
import { SqliteRaiseRequestStore, type RaiseRequestStore } from './raise-requests/store.js';
import { WEBHOOKS_MIGRATION_SQLITE } from './webhooks/schema.js';
import { SqliteWebhookStore, type WebhookStore } from './webhooks/store.js';
import { insertEventsSqlite, type OutboxEvent } from './webhooks/events.js';
import { SqliteOrganisationStore, type OrganisationStore } from './organisations/store.js';
import { auditInsertSql, auditParams, sqlitePlaceholder } from './audit-sql.js';
import type {
  AuditEntry,
  AuthorityStore,
  HostActivationRecord,
  HostActivationTx,
  InstallationOutcome,
  InstallationRecord,
  InstallationRequest,
  KeyRecord,
} from './store.js';
import { decideInstallations, installationKey, type KeyCounter } from './store.js';

/** Schema migrations, applied in order at open; the applied version is kept in user_version. */
const MIGRATIONS: string[] = [
  `CREATE TABLE product_groups (
     id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE, kind TEXT NOT NULL,
     threshold INTEGER NOT NULL, created_at INTEGER NOT NULL);
   CREATE TABLE product_keys (
     id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, type TEXT NOT NULL, last5 TEXT NOT NULL,
     host_limit INTEGER, activations_per_host INTEGER, created_at INTEGER NOT NULL, revoked_at INTEGER);
   CREATE TABLE key_groups (
     key_id TEXT NOT NULL REFERENCES product_keys(id), group_id TEXT NOT NULL REFERENCES product_groups(id),
     PRIMARY KEY (key_id, group_id));
   CREATE TABLE host_activations (
     key_id TEXT NOT NULL REFERENCES product_keys(id), hardware_id TEXT NOT NULL,
     host_public_key BLOB NOT NULL, activation_count INTEGER NOT NULL,
     first_activated_at INTEGER NOT NULL, last_activated_at INTEGER NOT NULL,
     certificate_serial TEXT NOT NULL, certificate_expires_at INTEGER NOT NULL,
     PRIMARY KEY (key_id, hardware_id));
   CREATE TABLE audit_log (
     id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, action TEXT NOT NULL,
     result TEXT NOT NULL, key_last5 TEXT, detail TEXT);`,
  `ALTER TABLE product_keys ADD COLUMN key_ref TEXT;
   ALTER TABLE product_keys ADD COLUMN proof_key_sealed TEXT;
   ALTER TABLE product_keys ADD COLUMN used INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX product_keys_ref ON product_keys (key_ref);
   CREATE TABLE installations (
     key_id TEXT NOT NULL REFERENCES product_keys(id), hardware_ref TEXT NOT NULL,
     installation_id TEXT NOT NULL, channel TEXT NOT NULL, activation_count INTEGER NOT NULL,
     first_activated_at INTEGER NOT NULL, last_activated_at INTEGER NOT NULL,
     PRIMARY KEY (key_id, hardware_ref));`,
  KEY_RING_MIGRATION_SQLITE, // the key ring: roots and online keys (key-ring-schema.ts)
  SQLITE_REVOCATION_MIGRATION, // the revocation list and its entries (revocation-store.ts)
  EVENTS_MIGRATION_SQLITE, // the webhook events outbox (webhooks/events.ts)
  ORGANISATIONS_MIGRATION_SQLITE, // organisations, key ownership, artefacts (organisations/schema.ts)
  ACCESS_MIGRATION_SQLITE, // users, sessions, API tokens (access/schema.ts)
  RAISE_REQUESTS_MIGRATION_SQLITE, // limit-raise requests (raise-requests/schema.ts)
  WEBHOOKS_MIGRATION_SQLITE, // webhook endpoints and deliveries (webhooks/schema.ts)
];

interface GroupRow {
  id: string;
  name: string;
  kind: string;
  threshold: number;
}
interface KeyRow {
  id: string;
  key_hash: string;
  type: string;
  last5: string;
  host_limit: number | null;
  activations_per_host: number | null;
  created_at: number;
  revoked_at: number | null;
  group_ids: string | null;
  key_ref: string | null;
  proof_key_sealed: string | null;
  used: number;
  org_id: string;
  note: string | null;
  key_sealed: string | null;
}
interface InstallationRow {
  hardware_ref: string;
  installation_id: string;
  channel: string;
  activation_count: number;
  first_activated_at: number;
  last_activated_at: number;
}
interface HostRow {
  key_id: string;
  hardware_id: string;
  host_public_key: Buffer;
  activation_count: number;
  first_activated_at: number;
  last_activated_at: number;
  certificate_serial: string;
  certificate_expires_at: number;
}

const toGroup = (r: GroupRow): ProductGroup => ({
  id: r.id,
  name: r.name,
  kind: r.kind as GroupKind,
  threshold: r.threshold,
});
const toKey = (row: KeyRow): KeyRecord => ({
  id: row.id,
  keyHash: row.key_hash,
  type: row.type as KeyType,
  last5: row.last5,
  groupIds: row.group_ids ? row.group_ids.split(',') : [],
  limit: row.host_limit,
  activationsPerHost: row.activations_per_host,
  createdAt: row.created_at,
  revokedAt: row.revoked_at,
  keyRef: row.key_ref,
  proofKeySealed: row.proof_key_sealed,
  used: row.used,
  orgId: row.org_id,
  note: row.note,
  keySealed: row.key_sealed,
});
const toInstallation = (r: InstallationRow): InstallationRecord => ({
  hardwareRef: r.hardware_ref,
  installationId: r.installation_id,
  channel: r.channel,
  activationCount: r.activation_count,
  firstActivatedAt: r.first_activated_at,
  lastActivatedAt: r.last_activated_at,
});
/** Every audit row names its organisation, key and actor when known (audit-sql.ts). */
const AUDIT_SQL = auditInsertSql(sqlitePlaceholder);
const KEY_SELECT = `SELECT k.*, (SELECT group_concat(group_id) FROM key_groups WHERE key_id = k.id) AS group_ids
  FROM product_keys k`;
const toHost = (r: HostRow): HostActivationRecord => ({
  keyId: r.key_id,
  hardwareId: r.hardware_id,
  hostPublicKey: r.host_public_key,
  activationCount: r.activation_count,
  firstActivatedAt: r.first_activated_at,
  lastActivatedAt: r.last_activated_at,
  certificateSerial: r.certificate_serial,
  certificateExpiresAt: r.certificate_expires_at,
});

/**
 * SQLite engine (better-sqlite3, WAL). Writes from several processes on the same file are
 * serialised by SQLite's write lock (BEGIN IMMEDIATE); within one process by a promise chain.
 */
export class SqliteAuthorityStore implements AuthorityStore {
  readonly #db: Database.Database;
  readonly keyRing: KeyRingStore;
  readonly #statements = new Map<string, Database.Statement>();
  #queue: Promise<unknown> = Promise.resolve();
  readonly revocations: RevocationStore;
  readonly raiseRequests: RaiseRequestStore;
  readonly organisations: OrganisationStore;
  readonly webhooks: WebhookStore;
  readonly access: AccessStore;

  constructor(readonly path: string) {
    // SQLite takes an empty file for an empty database: an authority whose records were lost
    // would start over with no keys, and every activation would be KEY_NOT_FOUND.
    if (existsSync(path) && statSync(path).size === 0) {
      throw new AuthorityError(
        'STORE_DAMAGED',
        `${path} is empty (0 bytes): the authority's records are lost; stop the authority and restore ${basename(path)} from its backup`,
      );
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      prepareStoreDatabase(db, MIGRATIONS, `the authority database ${path}`);
    } catch (err) {
      db?.close();
      throw sqliteStoreError(path, err);
    }
    this.keyRing = new SqliteKeyRingStore(
      db,
      <T>(run: () => Promise<T>) => this.#serial(run),
      (err) => sqliteStoreError(path, err),
    );
    this.#db = db;
    this.revocations = new SqliteRevocationStore(
      db,
      <T>(run: () => Promise<T>) => this.#serial(run),
      (err) => sqliteStoreError(path, err),
    );
    this.access = new SqliteAccessStore(
      db,
      <T>(run: () => Promise<T>) => this.#serial(run),
      (err) => sqliteStoreError(path, err),
    );
    this.raiseRequests = new SqliteRaiseRequestStore(
      db,
      <T>(run: () => Promise<T>) => this.#serial(run),
      (err) => sqliteStoreError(path, err),
    );
    this.webhooks = new SqliteWebhookStore(
      db,
      <T>(run: () => Promise<T>) => this.#serial(run),
      (err) => sqliteStoreError(path, err),
    );
    this.organisations = new SqliteOrganisationStore(
      db,
      <T>(run: () => Promise<T>) => this.#serial(run),
      (err) => sqliteStoreError(path, err),
    );
  }

  async ping(): Promise<void> {
    this.#db.prepare('SELECT count(*) AS n FROM product_keys').get();
  }

  addGroup(group: ProductGroup & { createdAt: number }): Promise<void> {
    return this.#serial(async () => {
      try {
        this.#db
          .prepare('INSERT INTO product_groups (id, name, kind, threshold, created_at) VALUES (?, ?, ?, ?, ?)')
          .run(group.id, group.name, group.kind, group.threshold, group.createdAt);
      } catch (err) {
        // Another process raced past the caller's check: the UNIQUE constraint decides.
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
          throw new AuthorityError('GROUP_EXISTS', `a product group named "${group.name}" exists already`);
        }
        throw err;
      }
    });
  }

  async findGroup(nameOrId: string): Promise<ProductGroup | undefined> {
    const row = this.#db
      .prepare('SELECT id, name, kind, threshold FROM product_groups WHERE name = ? OR id = ?')
      .get(nameOrId, nameOrId.toLowerCase()) as GroupRow | undefined;
    return row && toGroup(row);
  }

  async listGroups(): Promise<ProductGroup[]> {
    const rows = this.#db
      .prepare('SELECT id, name, kind, threshold FROM product_groups ORDER BY name')
      .all() as GroupRow[];
    return rows.map(toGroup);
  }

  addKey(record: KeyRecord): Promise<void> {
    return this.#serial(async () =>
      this.#db.transaction(() => {
        this.#db
          .prepare(
            `INSERT INTO product_keys (id, key_hash, type, last5, host_limit, activations_per_host, created_at,
               revoked_at, key_ref, proof_key_sealed, used, org_id, note, key_sealed)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            record.id,
            record.keyHash,
            record.type,
            record.last5,
            record.limit,
            record.activationsPerHost,
            record.createdAt,
            record.revokedAt,
            record.keyRef,
            record.proofKeySealed,
            record.used,
            record.orgId ?? 'org_default',
            record.note ?? null,
            record.keySealed ?? null,
          );
        const link = this.#db.prepare('INSERT INTO key_groups (key_id, group_id) VALUES (?, ?)');
        for (const g of record.groupIds) link.run(record.id, g);
      })(),
    );
  }

  async findKeyByHash(keyHash: string): Promise<KeyRecord | undefined> {
    const row = this.#stmt(`${KEY_SELECT} WHERE key_hash = ?`).get(keyHash) as KeyRow | undefined;
    return row && toKey(row);
  }

  async findKeyByRef(keyRef: string): Promise<KeyRecord[]> {
    return (this.#db.prepare(`${KEY_SELECT} WHERE key_ref = ?`).all(keyRef) as KeyRow[]).map(toKey);
  }

  async listInstallations(keyId: string): Promise<InstallationRecord[]> {
    const rows = this.#db
      .prepare('SELECT * FROM installations WHERE key_id = ? ORDER BY first_activated_at, hardware_ref')
      .all(keyId) as InstallationRow[];
    return rows.map(toInstallation);
  }

  /** Statements are prepared once: preparing costs more than running these small ones. */
  #stmt(sql: string): Database.Statement {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  activateInstallations(requests: readonly InstallationRequest[]): Promise<InstallationOutcome[]> {
    return this.#serial(async () =>
      this.#db
        .transaction(() => {
          // BEGIN IMMEDIATE holds the database's write lock: every key's counter is locked.
          const counters = new Map<string, KeyCounter>();
          for (const keyId of new Set(requests.map((r) => r.keyId))) {
            const row = this.#stmt(
              'SELECT host_limit, used, revoked_at, org_id, refused_event_at FROM product_keys WHERE id = ?',
            ).get(keyId) as
              | {
                  host_limit: number;
                  used: number;
                  revoked_at: number | null;
                  org_id: string | null;
                  refused_event_at: number | null;
                }
              | undefined;
            if (row) {
              counters.set(keyId, {
                limit: row.host_limit,
                used: row.used,
                revoked: row.revoked_at !== null,
                orgId: row.org_id,
                refusedEventAt: row.refused_event_at,
              });
            }
          }
          const find = this.#stmt('SELECT 1 FROM installations WHERE key_id = ? AND hardware_ref = ?');
          const recorded = new Set(
            requests
              .filter((r) => find.get(r.keyId, r.hardwareRef))
              .map((r) => installationKey(r.keyId, r.hardwareRef)),
          );
          const decision = decideInstallations(requests, counters, recorded);
          const insert = this.#stmt(
            `INSERT INTO installations (key_id, hardware_ref, installation_id, channel, activation_count,
               first_activated_at, last_activated_at) VALUES (?, ?, ?, ?, 1, ?, ?)`,
          );
          for (const r of decision.admitted)
            insert.run(r.keyId, r.hardwareRef, r.installationId, r.channel, r.at, r.at);
          const again = this.#stmt(
            `UPDATE installations SET activation_count = activation_count + ?, last_activated_at = max(last_activated_at, ?)
             WHERE key_id = ? AND hardware_ref = ?`,
          );
          for (const r of decision.repeats) again.run(r.times, r.at, r.keyId, r.hardwareRef);
          const setUsed = this.#stmt('UPDATE product_keys SET used = ? WHERE id = ?');
          for (const [keyId, used] of decision.usedByKey) setUsed.run(used, keyId);
          const audit = this.#stmt(AUDIT_SQL);
          for (const a of decision.audit) audit.run(...auditParams(a));
          // Webhook events (webhooks/events.ts) commit with the decision, or not at all.
          if (decision.events.length > 0) insertEventsSqlite(this.#db, decision.events);
          for (const [keyId, at] of decision.refusedEventAt) {
            this.#stmt('UPDATE product_keys SET refused_event_at = ? WHERE id = ?').run(at, keyId);
          }
          return decision.outcomes;
        })
        .immediate(),
    );
  }

  async listHosts(keyId: string): Promise<HostActivationRecord[]> {
    const rows = this.#db
      .prepare('SELECT * FROM host_activations WHERE key_id = ? ORDER BY first_activated_at')
      .all(keyId) as HostRow[];
    return rows.map(toHost);
  }

  setLimit(keyId: string, limit: number, events: readonly OutboxEvent[] = []): Promise<boolean> {
    return this.#serial(async () =>
      this.#db
        .transaction(() => {
          // One statement: the check against the activations made and the update cannot interleave.
          const r = this.#db
            .prepare(
              `UPDATE product_keys SET host_limit = ? WHERE id = ?
                 AND ? >= (SELECT count(*) FROM host_activations WHERE key_id = ?) AND ? >= used`,
            )
            .run(limit, keyId, limit, keyId, limit);
          if (r.changes !== 1) return false;
          insertEventsSqlite(this.#db, events); // with the change, or not at all
          return true;
        })
        .immediate(),
    );
  }

  revokeKey(keyId: string, at: number, events: readonly OutboxEvent[] = []): Promise<boolean> {
    return this.#serial(async () =>
      this.#db
        .transaction(() => {
          const r = this.#db
            .prepare('UPDATE product_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
            .run(at, keyId);
          if (r.changes !== 1) return false;
          insertEventsSqlite(this.#db, events);
          return true;
        })
        .immediate(),
    );
  }

  /** Writes run one at a time so none lands inside another's open transaction. */
  #serial<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  withHostActivation<T>(keyId: string, work: (tx: HostActivationTx) => Promise<T>): Promise<T> {
    return this.#serial(async (): Promise<T> => {
      const db = this.#db;
      const tx: HostActivationTx = {
        keyState: async () => {
          const row = db.prepare('SELECT org_id, refused_event_at FROM product_keys WHERE id = ?').get(keyId) as
            { org_id: string | null; refused_event_at: number | null } | undefined;
          return { orgId: row?.org_id ?? null, refusedEventAt: row?.refused_event_at ?? null };
        },
        emit: async (events, refusedEventAt) => {
          insertEventsSqlite(db, events);
          if (refusedEventAt !== undefined) {
            db.prepare('UPDATE product_keys SET refused_event_at = ? WHERE id = ?').run(refusedEventAt, keyId);
          }
        },
        findHost: async (keyId, hardwareId) => {
          const row = db
            .prepare('SELECT * FROM host_activations WHERE key_id = ? AND hardware_id = ?')
            .get(keyId, hardwareId) as HostRow | undefined;
          return row && toHost(row);
        },
        countHosts: async (keyId) =>
          (db.prepare('SELECT count(*) AS n FROM host_activations WHERE key_id = ?').get(keyId) as { n: number }).n,
        audit: async (a) => {
          db.prepare(AUDIT_SQL).run(...auditParams(a));
        },
        saveHost: async (r) => {
          db.prepare(
            `INSERT INTO host_activations (key_id, hardware_id, host_public_key, activation_count,
               first_activated_at, last_activated_at, certificate_serial, certificate_expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (key_id, hardware_id) DO UPDATE SET host_public_key = excluded.host_public_key,
               activation_count = excluded.activation_count, last_activated_at = excluded.last_activated_at,
               certificate_serial = excluded.certificate_serial, certificate_expires_at = excluded.certificate_expires_at`,
          ).run(
            r.keyId,
            r.hardwareId,
            r.hostPublicKey,
            r.activationCount,
            r.firstActivatedAt,
            r.lastActivatedAt,
            r.certificateSerial,
            r.certificateExpiresAt,
          );
        },
      };
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = await work(tx);
        db.exec('COMMIT');
        return result;
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  audit(entry: AuditEntry): Promise<void> {
    return this.#serial(async () => {
      this.#stmt(AUDIT_SQL).run(...auditParams(entry));
    });
  }

  async recentAudit(limit: number): Promise<AuditEntry[]> {
    const rows = this.#db
      .prepare('SELECT at, action, result, key_last5, detail FROM audit_log ORDER BY id DESC LIMIT ?')
      .all(limit) as { at: number; action: string; result: string; key_last5: string | null; detail: string | null }[];
    return rows.map((r) => ({
      at: r.at,
      action: r.action,
      result: r.result,
      keyLast5: r.key_last5 ?? undefined,
      detail: r.detail ?? undefined,
    }));
  }

  async close(): Promise<void> {
    await this.#queue;
    this.#db.close();
  }
}

/**
 * An SQLite failure as the operator must read it: which file, what is wrong, what to do.
 * A lock held too long is retryable (STORE_UNAVAILABLE); the rest needs a hand (STORE_DAMAGED).
 * Other errors (constraints, the authority's own) pass through unchanged.
 */
export function sqliteStoreError(path: string, err: unknown): unknown {
  if (err instanceof AuthorityError) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
  const what = `${(err as Error).message} (${code})`;
  const file = basename(path);
  const damaged = (message: string) => new AuthorityError('STORE_DAMAGED', message);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new AuthorityError(
      'STORE_UNAVAILABLE',
      `${path} is locked by another process (${what}); nothing was decided: retry, and if it stays locked stop the other process using it`,
    );
  }
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return damaged(
      `${path} is not a readable database: ${what}; stop the authority and restore ${file} from its backup (\`sqlite3 ${path} .recover\` may save its rows)`,
    );
  }
  if (code.startsWith('SQLITE_READONLY')) {
    return damaged(
      `${path} is read-only (${what}): give the authority's user write access (\`chmod 600 ${path}\`, owned by that user)`,
    );
  }
  if (code === 'SQLITE_FULL') return damaged(`the disk holding ${path} is full (${what}): free space, then retry`);
  if (code.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_PERM' || code.startsWith('SQLITE_AUTH')) {
    return damaged(
      `${path} cannot be opened (${what}): check that the data directory exists and this user may read and write it`,
    );
  }
  if (code.startsWith('SQLITE_IOERR'))
    return damaged(
      `I/O error on ${path} (${what}): check the disk (dmesg), then restore ${file} from its backup if it is damaged`,
    );
  return err;
}

// Every store call reports SQLite failures by file and fix (the methods are sync inside async).
for (const name of Object.getOwnPropertyNames(SqliteAuthorityStore.prototype)) {
  const method = (SqliteAuthorityStore.prototype as unknown as Record<string, unknown>)[name];
  if (name === 'constructor' || typeof method !== 'function') continue;
  Object.defineProperty(SqliteAuthorityStore.prototype, name, {
    value: async function (this: SqliteAuthorityStore, ...args: unknown[]) {
      try {
        return await (method as (...a: unknown[]) => Promise<unknown>).apply(this, args);
      } catch (err) {
        throw sqliteStoreError(this.path, err);
      }
    },
  });
}
