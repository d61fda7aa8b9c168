import type Database from 'better-sqlite3';
import type pg from 'pg';
import {
  auditInsertSql as AUDIT_SQL,
  auditParams,
  postgresPlaceholder as dollar,
  sqlitePlaceholder as q,
} from './audit-sql.js';
import type { AuditEntry } from './store.js';

/**
 * The key ring's records (tables in key-ring-schema.ts), shared by every node of an authority:
 * its roots and its online keys. Private keys of roots are never here (they live in the data
 * directory or a token); an online key's private key is, sealed under the key-hash secret.
 */

export type RootState = 'prepared' | 'published' | 'current' | 'previous' | 'retired';
/** prepared: made by a prepare before next keys existed (kept, never signs). */
export type OnlineKeyState = 'prepared' | 'next' | 'current' | 'previous';

export interface RootRecord {
  /** Key ID, 16 hex digits. */
  readonly keyId: string;
  /** 1, 2, …: the order in which the roots were made. */
  readonly ordinal: number;
  readonly publicKey: Buffer;
  readonly state: RootState;
  /** Where its private key is: `file` (the data directory) or a PKCS#11 spec without PIN. */
  readonly signer: string;
  readonly validFrom: number;
  readonly validUntil: number | null;
  /** The root-transition record that introduced it (signed by the root before and by itself); null for the first. */
  readonly transition: Buffer | null;
  readonly createdAt: number;
  readonly changedAt: number;
}

export interface OnlineKeyRecord {
  readonly sequence: number;
  readonly keyId: string;
  readonly publicKey: Buffer;
  /** Its private key (PEM), sealed under the key-hash secret (sealing.ts). */
  readonly privateSealed: string;
  /** The root that certified it (key ID hex). */
  readonly issuerKeyId: string;
  /** Its delegation certificate (126 bytes). */
  readonly delegation: Buffer;
  readonly purposes: number;
  readonly validFrom: number;
  readonly validUntil: number;
  readonly state: OnlineKeyState;
  readonly createdAt: number;
  readonly changedAt: number;
}

export interface RingSnapshot {
  /** Oldest first. */
  readonly roots: readonly RootRecord[];
  /** Lowest sequence first. */
  readonly onlineKeys: readonly OnlineKeyRecord[];
}

/** What one ring transaction writes: rows inserted or replaced, and its audit row. */
export interface RingChange<T> {
  readonly roots?: readonly RootRecord[];
  readonly onlineKeys?: readonly OnlineKeyRecord[];
  readonly audit?: AuditEntry;
  readonly result: T;
}

export interface KeyRingStore {
  load(): Promise<RingSnapshot>;
  /**
   * Reads the ring and writes what `decide` returns, in one transaction that holds the ring's
   * lock (SQLite's write lock; PostgreSQL: the ring tables locked exclusively), so two nodes
   * running a step together decide one after the other, each on the ring as the other left it.
   * `decide` may throw: nothing is written.
   */
  change<T>(decide: (ring: RingSnapshot) => RingChange<T>): Promise<T>;
}

interface RootRow {
  key_id: string;
  ordinal: number;
  public_key: Buffer;
  state: string;
  signer: string;
  valid_from: number | string;
  valid_until: number | string | null;
  transition: Buffer | null;
  created_at: number | string;
  changed_at: number | string;
}
interface OnlineKeyRow {
  sequence: number;
  key_id: string;
  public_key: Buffer;
  private_sealed: string;
  issuer_key_id: string;
  delegation: Buffer;
  purposes: number;
  valid_from: number | string;
  valid_until: number | string;
  state: string;
  created_at: number | string;
  changed_at: number | string;
}

const toRoot = (r: RootRow): RootRecord => ({
  keyId: r.key_id,
  ordinal: Number(r.ordinal),
  publicKey: Buffer.from(r.public_key),
  state: r.state as RootState,
  signer: r.signer,
  validFrom: Number(r.valid_from),
  validUntil: r.valid_until === null ? null : Number(r.valid_until),
  transition: r.transition === null ? null : Buffer.from(r.transition),
  createdAt: Number(r.created_at),
  changedAt: Number(r.changed_at),
});
const toOnlineKey = (r: OnlineKeyRow): OnlineKeyRecord => ({
  sequence: Number(r.sequence),
  keyId: r.key_id,
  publicKey: Buffer.from(r.public_key),
  privateSealed: r.private_sealed,
  issuerKeyId: r.issuer_key_id,
  delegation: Buffer.from(r.delegation),
  purposes: Number(r.purposes),
  validFrom: Number(r.valid_from),
  validUntil: Number(r.valid_until),
  state: r.state as OnlineKeyState,
  createdAt: Number(r.created_at),
  changedAt: Number(r.changed_at),
});

const ROOTS_SQL = 'SELECT * FROM ring_roots ORDER BY ordinal';
const ONLINE_KEYS_SQL = 'SELECT * FROM ring_online_keys ORDER BY sequence';
const UPSERT_ROOT_SQL = (p: (n: number) => string) =>
  `INSERT INTO ring_roots (key_id, ordinal, public_key, state, signer, valid_from, valid_until, transition, created_at, changed_at)
   VALUES (${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(p).join(', ')})
   ON CONFLICT (key_id) DO UPDATE SET state = excluded.state, signer = excluded.signer,
     valid_from = excluded.valid_from, valid_until = excluded.valid_until, changed_at = excluded.changed_at`;
const UPSERT_ONLINE_KEY_SQL = (p: (n: number) => string) =>
  `INSERT INTO ring_online_keys (sequence, key_id, public_key, private_sealed, issuer_key_id, delegation, purposes,
     valid_from, valid_until, state, created_at, changed_at)
   VALUES (${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map(p).join(', ')})
   ON CONFLICT (sequence) DO UPDATE SET state = excluded.state, valid_until = excluded.valid_until,
     changed_at = excluded.changed_at`;
const rootParams = (r: RootRecord) => [
  r.keyId,
  r.ordinal,
  r.publicKey,
  r.state,
  r.signer,
  r.validFrom,
  r.validUntil,
  r.transition,
  r.createdAt,
  r.changedAt,
];
const onlineKeyParams = (k: OnlineKeyRecord) => [
  k.sequence,
  k.keyId,
  k.publicKey,
  k.privateSealed,
  k.issuerKeyId,
  k.delegation,
  k.purposes,
  k.validFrom,
  k.validUntil,
  k.state,
  k.createdAt,
  k.changedAt,
];

/** SQLite: the store's own connection and write queue; BEGIN IMMEDIATE is the ring's lock between processes. */
export class SqliteKeyRingStore implements KeyRingStore {
  constructor(
    private readonly db: Database.Database,
    private readonly serial: <T>(run: () => Promise<T>) => Promise<T>,
    private readonly mapError: (err: unknown) => unknown,
  ) {}

  async #guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw this.mapError(err);
    }
  }

  #read(): RingSnapshot {
    return {
      roots: (this.db.prepare(ROOTS_SQL).all() as RootRow[]).map(toRoot),
      onlineKeys: (this.db.prepare(ONLINE_KEYS_SQL).all() as OnlineKeyRow[]).map(toOnlineKey),
    };
  }

  /** Both tables in one read transaction (WAL: one snapshot, another process's step seen whole or not at all). */
  load(): Promise<RingSnapshot> {
    return this.#guard(async () => this.db.transaction(() => this.#read())());
  }

  change<T>(decide: (ring: RingSnapshot) => RingChange<T>): Promise<T> {
    return this.#guard(() =>
      this.serial(async () =>
        this.db
          .transaction(() => {
            const change = decide(this.#read());
            for (const r of change.roots ?? []) this.db.prepare(UPSERT_ROOT_SQL(q)).run(...rootParams(r));
            for (const k of change.onlineKeys ?? [])
              this.db.prepare(UPSERT_ONLINE_KEY_SQL(q)).run(...onlineKeyParams(k));
            if (change.audit) this.db.prepare(AUDIT_SQL(q)).run(...auditParams(change.audit));
            return change.result;
          })
          .immediate(),
      ),
    );
  }
}

/** PostgreSQL: the store's guarded pool (STORE_UNAVAILABLE when the database is down). */
export class PostgresKeyRingStore implements KeyRingStore {
  constructor(
    private readonly pool: {
      transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>;
      query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
    },
  ) {}

  /** One snapshot of both tables (REPEATABLE READ): a step committed between the two reads is seen whole or not at all. */
  load(): Promise<RingSnapshot> {
    return this.pool.transaction(async (client) => {
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const roots = await client.query<RootRow>(ROOTS_SQL);
      const keys = await client.query<OnlineKeyRow>(ONLINE_KEYS_SQL);
      return { roots: roots.rows.map(toRoot), onlineKeys: keys.rows.map(toOnlineKey) };
    });
  }

  change<T>(decide: (ring: RingSnapshot) => RingChange<T>): Promise<T> {
    return this.pool.transaction(async (client) => {
      // Readers (signing paths, the trust bundle) never wait: EXCLUSIVE mode only excludes writers.
      await client.query('LOCK TABLE ring_roots, ring_online_keys IN EXCLUSIVE MODE');
      const roots = (await client.query<RootRow>(ROOTS_SQL)).rows.map(toRoot);
      const onlineKeys = (await client.query<OnlineKeyRow>(ONLINE_KEYS_SQL)).rows.map(toOnlineKey);
      const change = decide({ roots, onlineKeys });
      for (const r of change.roots ?? []) await client.query(UPSERT_ROOT_SQL(dollar), rootParams(r));
      for (const k of change.onlineKeys ?? []) await client.query(UPSERT_ONLINE_KEY_SQL(dollar), onlineKeyParams(k));
      if (change.audit) await client.query(AUDIT_SQL(dollar), auditParams(change.audit));
      return change.result;
    });
  }
}
