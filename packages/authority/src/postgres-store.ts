import pg from 'pg';
import { performance } from 'node:perf_hooks';
import { PostgresKeyRingStore, type KeyRingStore } from './key-ring-store.js';
import { EVENTS_MIGRATION_POSTGRES } from './webhooks/events.js';
import { ORGANISATIONS_MIGRATION_POSTGRES } from './organisations/schema.js';
import { ACCESS_MIGRATION_POSTGRES } from './access/schema.js';
import { RAISE_REQUESTS_MIGRATION_POSTGRES } from './raise-requests/schema.js';
import { PostgresRaiseRequestStore, type RaiseRequestStore } from './raise-requests/store.js';
import { WEBHOOKS_MIGRATION_POSTGRES } from './webhooks/schema.js';
import { PostgresWebhookStore, type WebhookStore } from './webhooks/store.js';
import { insertEventsPostgres, type OutboxEvent } from './webhooks/events.js';
import { PostgresOrganisationStore, type OrganisationStore } from './organisations/store.js';
import { auditInsertSql, auditParams, postgresPlaceholder } from './audit-sql.js';
import type { GroupKind, KeyType, ProductGroup } from '@volact/core';
import { AuthorityError } from './errors.js';
import { KEY_RING_MIGRATION_POSTGRES } from './key-ring-schema.js';
import { POSTGRES_REVOCATION_MIGRATION, PostgresRevocationStore, type RevocationStore } from './revocation-store.js';
import { PostgresAccessStore, type AccessStore } from './access/access-store.js';
import { decideInstallations, installationKey, type KeyCounter } from './store.js';
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

/**
 * Schema migrations, applied in order at first use under an advisory lock, so that several
 * authority nodes starting together migrate once. Times are ms since the epoch (bigint).
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE product_groups (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL,
     threshold INTEGER NOT NULL, created_at BIGINT NOT NULL);
   CREATE UNIQUE INDEX product_groups_name ON product_groups (lower(name));
   CREATE TABLE product_keys (
     id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, type TEXT NOT NULL, last5 TEXT NOT NULL,
     host_limit INTEGER, activations_per_host INTEGER, created_at BIGINT NOT NULL, revoked_at BIGINT);
   CREATE TABLE key_groups (
     key_id TEXT NOT NULL REFERENCES product_keys(id), group_id TEXT NOT NULL REFERENCES product_groups(id),
     PRIMARY KEY (key_id, group_id));
   CREATE TABLE host_activations (
     key_id TEXT NOT NULL REFERENCES product_keys(id), hardware_id TEXT NOT NULL,
     host_public_key BYTEA NOT NULL, activation_count INTEGER NOT NULL,
     first_activated_at BIGINT NOT NULL, last_activated_at BIGINT NOT NULL,
     certificate_serial TEXT NOT NULL, certificate_expires_at BIGINT NOT NULL,
     PRIMARY KEY (key_id, hardware_id));
   CREATE TABLE audit_log (
     id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, action TEXT NOT NULL,
     result TEXT NOT NULL, key_last5 TEXT, detail TEXT);`,
  `ALTER TABLE product_keys ADD COLUMN key_ref TEXT;
   ALTER TABLE product_keys ADD COLUMN proof_key_sealed TEXT;
   ALTER TABLE product_keys ADD COLUMN used INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX product_keys_ref ON product_keys (key_ref);
   CREATE TABLE installations (
     key_id TEXT NOT NULL REFERENCES product_keys(id), hardware_ref TEXT NOT NULL,
     installation_id TEXT NOT NULL, channel TEXT NOT NULL, activation_count INTEGER NOT NULL,
     first_activated_at BIGINT NOT NULL, last_activated_at BIGINT NOT NULL,
     PRIMARY KEY (key_id, hardware_ref));`,
  KEY_RING_MIGRATION_POSTGRES, // the key ring: roots and online keys (key-ring-schema.ts)
  POSTGRES_REVOCATION_MIGRATION, // the revocation list and its entries (revocation-store.ts)
  EVENTS_MIGRATION_POSTGRES, // the webhook events outbox (webhooks/events.ts)
  ORGANISATIONS_MIGRATION_POSTGRES, // organisations, key ownership, artefacts (organisations/schema.ts)
  ACCESS_MIGRATION_POSTGRES, // users, sessions, API tokens (access/schema.ts)
  RAISE_REQUESTS_MIGRATION_POSTGRES, // limit-raise requests (raise-requests/schema.ts)
  WEBHOOKS_MIGRATION_POSTGRES, // webhook endpoints and deliveries (webhooks/schema.ts)
];

/** Any constant: the advisory lock that serialises migrations across nodes. */
const MIGRATION_LOCK = 0x766f6c61;
const UNIQUE_VIOLATION = '23505';

interface HostRow {
  key_id: string;
  hardware_id: string;
  host_public_key: Buffer;
  activation_count: number;
  first_activated_at: string;
  last_activated_at: string;
  certificate_serial: string;
  certificate_expires_at: string;
}

const toHost = (r: HostRow): HostActivationRecord => ({
  keyId: r.key_id,
  hardwareId: r.hardware_id,
  hostPublicKey: r.host_public_key,
  activationCount: r.activation_count,
  firstActivatedAt: Number(r.first_activated_at),
  lastActivatedAt: Number(r.last_activated_at),
  certificateSerial: r.certificate_serial,
  certificateExpiresAt: Number(r.certificate_expires_at),
});

interface KeyRow {
  id: string;
  key_hash: string;
  type: string;
  last5: string;
  host_limit: number | null;
  activations_per_host: number | null;
  created_at: string;
  revoked_at: string | null;
  group_ids: string[] | null;
  key_ref: string | null;
  proof_key_sealed: string | null;
  used: number;
  org_id: string;
  note: string | null;
  key_sealed: string | null;
}

const toKey = (r: KeyRow): KeyRecord => ({
  id: r.id,
  keyHash: r.key_hash,
  type: r.type as KeyType,
  last5: r.last5,
  groupIds: r.group_ids ?? [],
  limit: r.host_limit,
  activationsPerHost: r.activations_per_host,
  createdAt: Number(r.created_at),
  revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
  keyRef: r.key_ref,
  proofKeySealed: r.proof_key_sealed,
  used: r.used,
  orgId: r.org_id,
  note: r.note,
  keySealed: r.key_sealed,
});

/** Every audit row names its organisation, key and actor when known (audit-sql.ts). */
const AUDIT_SQL = auditInsertSql(postgresPlaceholder);
const KEY_SELECT = `SELECT k.*, (SELECT array_agg(group_id ORDER BY group_id) FROM key_groups WHERE key_id = k.id) AS group_ids
  FROM product_keys k`;

export interface PostgresStoreOptions {
  readonly maxConnections?: number;
  readonly connectTimeoutMs?: number;
  /** Back-off of the connection and migration retries while the database is down: first and longest wait. */
  readonly retryFirstMs?: number;
  readonly retryMaxMs?: number;
}

/**
 * SQLSTATEs and socket errors that mean "the database is not there right now", not "this
 * request is wrong": admin shutdown (57P01-57P03, a restart), connection exceptions (08…),
 * too many connections (53300), and the node's own socket errors.
 */
const UNAVAILABLE_STATES = /^(57P0[123]|08...|53300|53400)$/;
const UNAVAILABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
]);
const UNAVAILABLE_MESSAGES =
  /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Client was closed|Connection ended/i;

export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_STATES.test(code) || UNAVAILABLE_ERRNOS.has(code))) return true;
  if (err instanceof AggregateError) return err.errors.some(isConnectionError);
  return UNAVAILABLE_MESSAGES.test(err.message);
}

/** host:port/database of a connection string, never its password. */
function describeServer(connectionString: string): string {
  try {
    const u = new URL(connectionString);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return 'the database URL';
  }
}

/**
 * PostgreSQL engine, for many stateless authority nodes on one database. Counts stay exact
 * across nodes: a host activation locks its key's row (SELECT … FOR UPDATE) for the whole
 * decision, so concurrent activations of one key run one after another, on any node.
 */
export class PostgresAuthorityStore implements AuthorityStore {
  readonly #pool: pg.Pool;
  readonly #where: string;
  /** Batches of installation activations in flight at once (each on its own connection; see InstallationQueue). */
  readonly installationBatchesInFlight: number;
  readonly keyRing: KeyRingStore = new PostgresKeyRingStore({
    transaction: <T>(work: (client: pg.PoolClient) => Promise<T>) => this.#transaction(work),
    query: <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => this.#query<R>(sql, params),
  });
  readonly #retry: { firstMs: number; maxMs: number };
  /** The migration: done, in flight, or failed (then retried, never kept as the answer). */
  #ready: Promise<void> | undefined;
  #migrated = false;
  /** A permanent failure (schema newer than this volact): kept, never retried. */
  #fatal: Error | undefined;
  #lastFailure: { at: number; message: string } | undefined;
  #backoffMs: number;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly access: AccessStore = new PostgresAccessStore({
    transaction: <T>(work: (client: pg.PoolClient) => Promise<T>) => this.#transaction(work),
    query: <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => this.#query<R>(sql, params),
  });
  readonly revocations: RevocationStore = new PostgresRevocationStore({
    transaction: <T>(work: (client: pg.PoolClient) => Promise<T>) => this.#transaction(work),
    query: <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => this.#query<R>(sql, params),
  });
  readonly organisations: OrganisationStore = new PostgresOrganisationStore({
    transaction: <T>(work: (client: pg.PoolClient) => Promise<T>) => this.#transaction(work),
    query: <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => this.#query<R>(sql, params),
  });
  readonly webhooks: WebhookStore = new PostgresWebhookStore({
    transaction: <T>(work: (client: pg.PoolClient) => Promise<T>) => this.#transaction(work),
    query: <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => this.#query<R>(sql, params),
  });
  readonly raiseRequests: RaiseRequestStore = new PostgresRaiseRequestStore({
    transaction: <T>(work: (client: pg.PoolClient) => Promise<T>) => this.#transaction(work),
    query: <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => this.#query<R>(sql, params),
  });

  constructor(connectionString: string, options: PostgresStoreOptions = {}) {
    this.#pool = new pg.Pool({
      connectionString,
      max: options.maxConnections ?? 10,
      // A database host that drops packets must not hold requests forever.
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    });
    this.#where = describeServer(connectionString);
    this.installationBatchesInFlight = Math.max(1, Math.min(2, (options.maxConnections ?? 10) - 2));
    this.#retry = { firstMs: options.retryFirstMs ?? 500, maxMs: options.retryMaxMs ?? 15_000 };
    this.#backoffMs = this.#retry.firstMs;
    // Errors of idle clients (the server restarting) must not crash the process.
    this.#pool.on('error', () => undefined);
    // A checked-out client's error (the server terminating it between two queries of a
    // transaction) is an 'error' event too: without a listener it would end the process.
    this.#pool.on('connect', (client) => client.on('error', () => undefined));
    void this.#ensureReady().catch(() => undefined); // migrate now; failures are retried with back-off
  }

  /**
   * The schema is migrated before any statement. A failed attempt (database down) is not kept:
   * a timer retries with doubling back-off, and a request after the back-off tries at once; in
   * between, requests fail fast with STORE_UNAVAILABLE instead of queueing behind a dead server.
   */
  #ensureReady(): Promise<void> {
    if (this.#migrated) return Promise.resolve();
    if (this.#fatal) return Promise.reject(this.#fatal);
    if (this.#ready) return this.#ready;
    const last = this.#lastFailure;
    if (last && performance.now() - last.at < Math.min(this.#backoffMs, 1000)) {
      return Promise.reject(this.#unavailable(last.message));
    }
    clearTimeout(this.#retryTimer);
    const attempt = this.#migrate().then(
      () => {
        this.#migrated = true;
        this.#lastFailure = undefined;
        this.#backoffMs = this.#retry.firstMs;
        this.#ready = undefined;
      },
      (err: unknown) => {
        this.#ready = undefined;
        const mapped = this.#map(err);
        if (mapped instanceof AuthorityError && mapped.code === 'STORE_UNAVAILABLE') {
          // Back-off is real elapsed time (a network's), not the authority's injected business clock.
          this.#lastFailure = { at: performance.now(), message: (err as Error).message };
          if (!this.#closed) {
            this.#retryTimer = setTimeout(() => void this.#ensureReady().catch(() => undefined), this.#backoffMs);
            this.#retryTimer.unref();
          }
          this.#backoffMs = Math.min(this.#backoffMs * 2, this.#retry.maxMs);
        } else {
          this.#fatal = mapped instanceof Error ? mapped : new Error(String(mapped));
        }
        throw mapped;
      },
    );
    this.#ready = attempt;
    return attempt;
  }

  #unavailable(cause: string): AuthorityError {
    return new AuthorityError(
      'STORE_UNAVAILABLE',
      `the authority database at ${this.#where} is unreachable (${cause.slice(0, 200)}); nothing was decided: retry shortly`,
    );
  }

  /** Connection-class failures become STORE_UNAVAILABLE (retryable); others pass through. */
  #map(err: unknown): unknown {
    if (err instanceof AuthorityError) return err;
    return isConnectionError(err) ? this.#unavailable((err as Error).message) : err;
  }

  /** A failed statement of a request: the node keeps serving; the caller gets a retryable error. */
  async #guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      await this.#ensureReady();
      return await work();
    } catch (err) {
      throw this.#map(err);
    }
  }

  async ping(): Promise<void> {
    await this.#guard(() => this.#pool.query('SELECT 1'));
  }

  async #migrate(): Promise<void> {
    await this.#inTransaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS volact_schema (version INTEGER NOT NULL)');
      const row = (await client.query<{ version: number }>('SELECT version FROM volact_schema')).rows[0];
      const current = row?.version ?? 0;
      if (current > MIGRATIONS.length) {
        throw new Error(
          `the authority database at ${this.#where} has schema version ${current}, newer than this volact knows; upgrade volact`,
        );
      }
      for (let v = current; v < MIGRATIONS.length; v++) await client.query(MIGRATIONS[v] as string);
      if (row) await client.query('UPDATE volact_schema SET version = $1', [MIGRATIONS.length]);
      else await client.query('INSERT INTO volact_schema (version) VALUES ($1)', [MIGRATIONS.length]);
    });
  }

  #query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) {
    return this.#guard(() => this.#pool.query<R>(sql, params));
  }

  async addGroup(group: ProductGroup & { createdAt: number }): Promise<void> {
    try {
      await this.#query(
        'INSERT INTO product_groups (id, name, kind, threshold, created_at) VALUES ($1, $2, $3, $4, $5)',
        [group.id, group.name, group.kind, group.threshold, group.createdAt],
      );
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) {
        throw new AuthorityError('GROUP_EXISTS', `a product group named "${group.name}" exists already`);
      }
      throw err;
    }
  }

  async findGroup(nameOrId: string): Promise<ProductGroup | undefined> {
    const { rows } = await this.#query<{ id: string; name: string; kind: string; threshold: number }>(
      'SELECT id, name, kind, threshold FROM product_groups WHERE lower(name) = lower($1) OR id = lower($1)',
      [nameOrId],
    );
    const r = rows[0];
    return r && { id: r.id, name: r.name, kind: r.kind as GroupKind, threshold: r.threshold };
  }

  async listGroups(): Promise<ProductGroup[]> {
    const { rows } = await this.#query<{ id: string; name: string; kind: string; threshold: number }>(
      'SELECT id, name, kind, threshold FROM product_groups ORDER BY name',
    );
    return rows.map((r) => ({ id: r.id, name: r.name, kind: r.kind as GroupKind, threshold: r.threshold }));
  }

  async addKey(record: KeyRecord): Promise<void> {
    await this.#transaction(async (client) => {
      await client.query(
        `INSERT INTO product_keys (id, key_hash, type, last5, host_limit, activations_per_host, created_at,
           revoked_at, key_ref, proof_key_sealed, used, org_id, note, key_sealed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
        [
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
        ],
      );
      for (const g of record.groupIds) {
        await client.query('INSERT INTO key_groups (key_id, group_id) VALUES ($1, $2)', [record.id, g]);
      }
    });
  }

  async findKeyByHash(keyHash: string): Promise<KeyRecord | undefined> {
    const { rows } = await this.#query<KeyRow>(`${KEY_SELECT} WHERE key_hash = $1`, [keyHash]);
    return rows[0] && toKey(rows[0]);
  }

  async findKeyByRef(keyRef: string): Promise<KeyRecord[]> {
    const { rows } = await this.#query<KeyRow>(`${KEY_SELECT} WHERE key_ref = $1`, [keyRef]);
    return rows.map(toKey);
  }

  async listInstallations(keyId: string): Promise<InstallationRecord[]> {
    const { rows } = await this.#query<{
      hardware_ref: string;
      installation_id: string;
      channel: string;
      activation_count: number;
      first_activated_at: string;
      last_activated_at: string;
    }>('SELECT * FROM installations WHERE key_id = $1 ORDER BY first_activated_at, hardware_ref', [keyId]);
    return rows.map((r) => ({
      hardwareRef: r.hardware_ref,
      installationId: r.installation_id,
      channel: r.channel,
      activationCount: r.activation_count,
      firstActivatedAt: Number(r.first_activated_at),
      lastActivatedAt: Number(r.last_activated_at),
    }));
  }

  /**
   * One transaction per batch, whatever keys it holds: lock the keys' rows in id order (two
   * nodes never wait on each other in a cycle), read which installations exist, decide, then
   * write rows, repeats and audit rows with one statement and the counters with another. A
   * batch costs one round of row locks and one commit however many requests it carries: that
   * is what lifts a hot key above one-transaction-per-activation, and many keys above one
   * commit each. Six round trips (BEGIN, lock, read, write, count, COMMIT) whatever its size,
   * each statement but the read prepared once per connection.
   */
  async activateInstallations(requests: readonly InstallationRequest[]): Promise<InstallationOutcome[]> {
    return this.#transaction(async (client) => {
      const keyIds = [...new Set(requests.map((r) => r.keyId))];
      const { rows: keyRows } = await client.query<{
        id: string;
        host_limit: number;
        used: number;
        revoked_at: string | null;
        org_id: string | null;
        refused_event_at: string | null;
      }>({
        name: 'volact_installations_lock',
        // The organisation (for webhook events) comes with the lock: no round trip of its own.
        text: `SELECT id, host_limit, used, revoked_at, org_id, refused_event_at FROM product_keys
               WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
        values: [keyIds],
      });
      const counters = new Map<string, KeyCounter>(
        keyRows.map((k) => [
          k.id,
          {
            limit: k.host_limit,
            used: k.used,
            revoked: k.revoked_at !== null,
            orgId: k.org_id,
            refusedEventAt: k.refused_event_at === null ? null : Number(k.refused_event_at),
          },
        ]),
      );
      // A statement of its own, after the locks: it reads what the previous holder of each lock committed.
      const { rows: found } = await client.query<{ key_id: string; hardware_ref: string }>({
        // Unnamed, so planned for these rows: a generic plan may scan every installation of a hot key.
        text: `SELECT i.key_id, i.hardware_ref FROM installations i
               JOIN unnest($1::text[], $2::text[]) AS t(k, h) ON i.key_id = t.k AND i.hardware_ref = t.h`,
        values: [requests.map((r) => r.keyId), requests.map((r) => r.hardwareRef)],
      });
      const decision = decideInstallations(
        requests,
        counters,
        new Set(found.map((f) => installationKey(f.key_id, f.hardware_ref))),
      );
      // The sub-statements of one statement do not see each other's rows: a repeat of an
      // installation admitted in this batch goes into its new row, the others update theirs.
      const fresh = new Map(
        decision.admitted.map((r) => [installationKey(r.keyId, r.hardwareRef), { r, count: 1, last: r.at }]),
      );
      const repeats: typeof decision.repeats = [];
      for (const x of decision.repeats) {
        const row = fresh.get(installationKey(x.keyId, x.hardwareRef));
        if (row) {
          row.count += x.times;
          row.last = Math.max(row.last, x.at);
        } else repeats.push(x);
      }
      const rows = [...fresh.values()];
      const audit = decision.audit;
      const events = decision.events;
      await client.query({
        name: 'volact_installations_write',
        text: `WITH ev AS (
                 INSERT INTO webhook_events (id, type, occurred_at, org_id, key_id, data)
                 SELECT * FROM unnest($19::text[], $20::text[], $21::bigint[], $22::text[], $23::text[], $24::text[])
               ), ins AS (
                 INSERT INTO installations (key_id, hardware_ref, installation_id, channel, activation_count,
                   first_activated_at, last_activated_at)
                 SELECT k, h, i, c, n, t, l
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::bigint[])
                   AS x(k, h, i, c, n, t, l)
               ), rep AS (
                 UPDATE installations SET activation_count = activation_count + x.n,
                   last_activated_at = greatest(last_activated_at, x.t)
                 FROM unnest($8::text[], $9::text[], $10::int[], $11::bigint[]) AS x(k, h, n, t)
                 WHERE installations.key_id = x.k AND installations.hardware_ref = x.h
               )
               INSERT INTO audit_log (at, action, result, key_last5, detail, org_id, key_id)
               SELECT a, b, c, d, e, f, g
                 FROM unnest($12::bigint[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[])
                 WITH ORDINALITY AS x(a, b, c, d, e, f, g, o) ORDER BY o`,
        values: [
          rows.map((x) => x.r.keyId),
          rows.map((x) => x.r.hardwareRef),
          rows.map((x) => x.r.installationId),
          rows.map((x) => x.r.channel),
          rows.map((x) => x.count),
          rows.map((x) => x.r.at),
          rows.map((x) => x.last),
          repeats.map((x) => x.keyId),
          repeats.map((x) => x.hardwareRef),
          repeats.map((x) => x.times),
          repeats.map((x) => x.at),
          audit.map((x) => x.at),
          audit.map((x) => x.action),
          audit.map((x) => x.result),
          audit.map((x) => x.keyLast5 ?? null),
          audit.map((x) => x.detail ?? null),
          audit.map((x) => x.orgId ?? null),
          audit.map((x) => x.keyId ?? null),
          // Webhook events (webhooks/events.ts), in the same statement: committed with the decision.
          events.map((e) => e.id),
          events.map((e) => e.type),
          events.map((e) => e.occurredAt),
          events.map((e) => e.orgId),
          events.map((e) => e.keyId),
          events.map((e) => JSON.stringify(e.data)),
        ],
      });
      // The counters after the rows: the rows' foreign-key checks then lock key rows not yet
      // updated in this transaction (checking a row the same statement updated costs far more).
      // A key that raised activation.refused records when, in the same statement.
      const counts = [...new Set([...decision.usedByKey.keys(), ...decision.refusedEventAt.keys()])];
      if (counts.length > 0) {
        await client.query({
          name: 'volact_installations_count',
          text: `UPDATE product_keys SET used = coalesce(x.u, used), refused_event_at = coalesce(x.r, refused_event_at)
                 FROM unnest($1::text[], $2::int[], $3::bigint[]) AS x(id, u, r) WHERE product_keys.id = x.id`,
          values: [
            counts,
            counts.map((id) => decision.usedByKey.get(id) ?? null),
            counts.map((id) => decision.refusedEventAt.get(id) ?? null),
          ],
        });
      }
      return decision.outcomes;
    });
  }

  async listHosts(keyId: string): Promise<HostActivationRecord[]> {
    const { rows } = await this.#query<HostRow>(
      'SELECT * FROM host_activations WHERE key_id = $1 ORDER BY first_activated_at',
      [keyId],
    );
    return rows.map(toHost);
  }

  /** Runs `work` on one connection inside BEGIN … COMMIT (ROLLBACK when it throws). */
  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#guard(() => this.#inTransaction(work));
  }

  /** BEGIN … COMMIT on one pooled connection, for requests and the migration alike. */
  async #inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      if (isConnectionError(err)) broken = err as Error;
      else await client.query('ROLLBACK').catch((e: unknown) => (broken = e as Error));
      throw err;
    } finally {
      // A connection that failed is destroyed, not handed to the next request.
      client.release(broken);
    }
  }

  async setLimit(keyId: string, limit: number, events: readonly OutboxEvent[] = []): Promise<boolean> {
    // Under the key's row lock, like an activation: the counts cannot move meanwhile.
    return this.#transaction(async (client) => {
      const used = (
        await client.query<{ used: number }>('SELECT used FROM product_keys WHERE id = $1 FOR UPDATE', [keyId])
      ).rows[0]?.used;
      const { rows } = await client.query<{ n: string }>(
        'SELECT count(*) AS n FROM host_activations WHERE key_id = $1',
        [keyId],
      );
      if (Number(rows[0]?.n ?? 0) > limit || (used ?? 0) > limit) return false;
      await client.query('UPDATE product_keys SET host_limit = $1 WHERE id = $2', [limit, keyId]);
      await insertEventsPostgres(client, events); // with the change, or not at all
      return true;
    });
  }

  async revokeKey(keyId: string, at: number, events: readonly OutboxEvent[] = []): Promise<boolean> {
    return this.#transaction(async (client) => {
      const r = await client.query('UPDATE product_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [
        at,
        keyId,
      ]);
      if (r.rowCount !== 1) return false;
      await insertEventsPostgres(client, events);
      return true;
    });
  }

  async withHostActivation<T>(keyId: string, work: (tx: HostActivationTx) => Promise<T>): Promise<T> {
    return this.#transaction(async (client) => {
      // The key's row lock: every node's activation of this key waits here for the one before.
      const { rows: locked } = await client.query<{ org_id: string | null; refused_event_at: string | null }>(
        'SELECT org_id, refused_event_at FROM product_keys WHERE id = $1 FOR UPDATE',
        [keyId],
      );
      const state = {
        orgId: locked[0]?.org_id ?? null,
        refusedEventAt: locked[0]?.refused_event_at == null ? null : Number(locked[0].refused_event_at),
      };
      const tx: HostActivationTx = {
        keyState: async () => state,
        emit: async (events, refusedEventAt) => {
          await insertEventsPostgres(client, events);
          if (refusedEventAt !== undefined) {
            await client.query('UPDATE product_keys SET refused_event_at = $1 WHERE id = $2', [refusedEventAt, keyId]);
          }
        },
        findHost: async (k, hardwareId) => {
          const { rows } = await client.query<HostRow>(
            'SELECT * FROM host_activations WHERE key_id = $1 AND hardware_id = $2',
            [k, hardwareId],
          );
          return rows[0] && toHost(rows[0]);
        },
        countHosts: async (k) =>
          Number(
            (await client.query<{ n: string }>('SELECT count(*) AS n FROM host_activations WHERE key_id = $1', [k]))
              .rows[0]?.n ?? 0,
          ),
        audit: async (a) => {
          await client.query(AUDIT_SQL, auditParams(a));
        },
        saveHost: async (r) => {
          await client.query(
            `INSERT INTO host_activations (key_id, hardware_id, host_public_key, activation_count,
               first_activated_at, last_activated_at, certificate_serial, certificate_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (key_id, hardware_id) DO UPDATE SET host_public_key = excluded.host_public_key,
               activation_count = excluded.activation_count, last_activated_at = excluded.last_activated_at,
               certificate_serial = excluded.certificate_serial, certificate_expires_at = excluded.certificate_expires_at`,
            [
              r.keyId,
              r.hardwareId,
              r.hostPublicKey,
              r.activationCount,
              r.firstActivatedAt,
              r.lastActivatedAt,
              r.certificateSerial,
              r.certificateExpiresAt,
            ],
          );
        },
      };
      return work(tx);
    });
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.#query(AUDIT_SQL, auditParams(entry));
  }

  async recentAudit(limit: number): Promise<AuditEntry[]> {
    const { rows } = await this.#query<{
      at: string;
      action: string;
      result: string;
      key_last5: string | null;
      detail: string | null;
    }>('SELECT at, action, result, key_last5, detail FROM audit_log ORDER BY id DESC LIMIT $1', [limit]);
    return rows.map((r) => ({
      at: Number(r.at),
      action: r.action,
      result: r.result,
      keyLast5: r.key_last5 ?? undefined,
      detail: r.detail ?? undefined,
    }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    await this.#ready?.catch(() => undefined);
    await this.#pool.end();
  }
}
