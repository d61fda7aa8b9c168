import type Database from 'better-sqlite3';
import type pg from 'pg';
import {
  auditInsertSql as AUDIT_SQL,
  auditParams,
  postgresPlaceholder as dollar,
  sqlitePlaceholder as q,
} from './audit-sql.js';
import type { AuditEntry, HostActivationRecord } from './store.js';

/**
 * The revocation list's records: its entries, and the latest list issued with the counter
 * its version comes from. Each engine keeps them beside the authority's other records; every
 * issue runs in one transaction that holds the counter (SQLite's write lock, a PostgreSQL row
 * lock), so two nodes issuing at once make two versions, never one version twice.
 */

export type RevocationKind = 'host' | 'manufacturer' | 'tokenCa';

export interface StoredRevocation {
  readonly kind: RevocationKind;
  /** 16 bytes, hex: a host key reference, or a key ID padded with 8 zero bytes. */
  readonly subject: string;
  readonly revokedAt: number;
  readonly reason: string | null;
}

/** The latest list as issued: its signed bytes and what they say. */
export interface IssuedList {
  readonly listVersion: number;
  readonly issuedAt: number;
  readonly nextUpdate: number;
  readonly encoded: Buffer;
}

/** Signs the next list: its version (the counter + 1) and every entry, in the store's transaction. */
export type IssueList = (next: { listVersion: number; entries: readonly StoredRevocation[] }) => IssuedList;

export interface RevocationStore {
  /**
   * Adds the entries not on the list yet and, when one was new, issues the next list: one
   * transaction with the audit row (`audit` learns which were new). Returns those added (none:
   * all were on it already, no new version) and the latest list.
   */
  revoke(
    entries: readonly StoredRevocation[],
    issue: IssueList,
    audit: (added: readonly StoredRevocation[]) => AuditEntry,
  ): Promise<{ added: StoredRevocation[]; list: IssuedList }>;
  /**
   * The latest list; when `stale` says it must be replaced (none yet, too old, signed by a root
   * no longer current) the next one is issued first. Decided again under the counter's lock, so
   * nodes asking together issue once.
   */
  current(stale: (list: IssuedList | null) => boolean, issue: IssueList): Promise<IssuedList>;
  entries(): Promise<StoredRevocation[]>;
  isRevoked(kind: RevocationKind, subject: string): Promise<StoredRevocation | undefined>;
  /** Hosts whose latest certificate has this serial. */
  hostsBySerial(serial: string): Promise<HostActivationRecord[]>;
  /** Hosts recorded with this host key reference (hex). */
  hostsByKeyRef(hostKeyRef: string): Promise<HostActivationRecord[]>;
  /** Hosts recorded under this host record ID (`hw:…`, as `key show` lists them), of any key. */
  hostsByRecord(hostRecord: string): Promise<HostActivationRecord[]>;
  /** When the product key with this record ID was revoked: null when it is not, undefined when there is no such key. */
  keyRevokedAt(keyId: string): Promise<number | null | undefined>;
}

/** The migrations that add the revocation records (appended to each engine's list). */
export const SQLITE_REVOCATION_MIGRATION = `CREATE TABLE revocations (
     kind TEXT NOT NULL, subject TEXT NOT NULL, revoked_at INTEGER NOT NULL, reason TEXT,
     PRIMARY KEY (kind, subject));
   CREATE TABLE revocation_list (
     id INTEGER PRIMARY KEY CHECK (id = 1), list_version INTEGER NOT NULL,
     issued_at INTEGER NOT NULL, next_update INTEGER NOT NULL, encoded BLOB);
   INSERT INTO revocation_list (id, list_version, issued_at, next_update, encoded) VALUES (1, 0, 0, 0, NULL);
   CREATE INDEX host_activations_serial ON host_activations (certificate_serial);
   CREATE INDEX host_activations_host_key ON host_activations (host_public_key);`;

export const POSTGRES_REVOCATION_MIGRATION = `CREATE TABLE revocations (
     kind TEXT NOT NULL, subject TEXT NOT NULL, revoked_at BIGINT NOT NULL, reason TEXT,
     PRIMARY KEY (kind, subject));
   CREATE TABLE revocation_list (
     id INTEGER PRIMARY KEY CHECK (id = 1), list_version BIGINT NOT NULL,
     issued_at BIGINT NOT NULL, next_update BIGINT NOT NULL, encoded BYTEA);
   INSERT INTO revocation_list (id, list_version, issued_at, next_update, encoded) VALUES (1, 0, 0, 0, NULL);
   CREATE INDEX host_activations_serial ON host_activations (certificate_serial);
   CREATE INDEX host_activations_host_key ON host_activations (host_public_key);`;

interface EntryRow {
  kind: string;
  subject: string;
  revoked_at: number | string;
  reason: string | null;
}
interface ListRow {
  list_version: number | string;
  issued_at: number | string;
  next_update: number | string;
  encoded: Buffer | null;
}
interface HostRow {
  key_id: string;
  hardware_id: string;
  host_public_key: Buffer;
  activation_count: number;
  first_activated_at: number | string;
  last_activated_at: number | string;
  certificate_serial: string;
  certificate_expires_at: number | string;
}

const toEntry = (r: EntryRow): StoredRevocation => ({
  kind: r.kind as RevocationKind,
  subject: r.subject,
  revokedAt: Number(r.revoked_at),
  reason: r.reason,
});
const toList = (r: ListRow | undefined): IssuedList | null =>
  r?.encoded
    ? {
        listVersion: Number(r.list_version),
        issuedAt: Number(r.issued_at),
        nextUpdate: Number(r.next_update),
        encoded: Buffer.from(r.encoded),
      }
    : null;
const toHost = (r: HostRow): HostActivationRecord => ({
  keyId: r.key_id,
  hardwareId: r.hardware_id,
  hostPublicKey: Buffer.from(r.host_public_key),
  activationCount: r.activation_count,
  firstActivatedAt: Number(r.first_activated_at),
  lastActivatedAt: Number(r.last_activated_at),
  certificateSerial: r.certificate_serial,
  certificateExpiresAt: Number(r.certificate_expires_at),
});

const ENTRIES_SQL = 'SELECT kind, subject, revoked_at, reason FROM revocations ORDER BY kind, subject';
const LIST_SQL = 'SELECT list_version, issued_at, next_update, encoded FROM revocation_list WHERE id = 1';
const SAVE_LIST_SQL = (p: (n: number) => string) =>
  `UPDATE revocation_list SET list_version = ${p(1)}, issued_at = ${p(2)}, next_update = ${p(3)}, encoded = ${p(4)} WHERE id = 1`;
const INSERT_ENTRY_SQL = (p: (n: number) => string) =>
  `INSERT INTO revocations (kind, subject, revoked_at, reason) VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}) ON CONFLICT (kind, subject) DO NOTHING`;
const saveParams = (l: IssuedList) => [l.listVersion, l.issuedAt, l.nextUpdate, l.encoded];

/**
 * SQLite: the authority store's own connection and its write queue (a statement must never
 * land inside another's open transaction); BEGIN IMMEDIATE takes the database's write lock,
 * which is the counter's lock between processes.
 */
export class SqliteRevocationStore implements RevocationStore {
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

  #issueNext(issue: IssueList): IssuedList {
    const row = this.db.prepare(LIST_SQL).get() as ListRow;
    const entries = (this.db.prepare(ENTRIES_SQL).all() as EntryRow[]).map(toEntry);
    const list = issue({ listVersion: Number(row.list_version) + 1, entries });
    this.db.prepare(SAVE_LIST_SQL(q)).run(...saveParams(list));
    return list;
  }

  revoke(
    entries: readonly StoredRevocation[],
    issue: IssueList,
    audit: (added: readonly StoredRevocation[]) => AuditEntry,
  ): Promise<{ added: StoredRevocation[]; list: IssuedList }> {
    return this.#guard(() =>
      this.serial(async () =>
        this.db
          .transaction(() => {
            const insert = this.db.prepare(INSERT_ENTRY_SQL(q));
            const added = entries.filter((e) => insert.run(e.kind, e.subject, e.revokedAt, e.reason).changes === 1);
            const list = added.length > 0 ? this.#issueNext(issue) : toList(this.db.prepare(LIST_SQL).get() as ListRow);
            this.db.prepare(AUDIT_SQL(q)).run(...auditParams(audit(added)));
            return { added, list: list ?? this.#issueNext(issue) };
          })
          .immediate(),
      ),
    );
  }

  current(stale: (list: IssuedList | null) => boolean, issue: IssueList): Promise<IssuedList> {
    return this.#guard(async () => {
      const seen = toList(this.db.prepare(LIST_SQL).get() as ListRow);
      if (seen && !stale(seen)) return seen; // the common case: no write, no queue
      return this.serial(async () =>
        this.db
          .transaction(() => {
            const latest = toList(this.db.prepare(LIST_SQL).get() as ListRow);
            return latest && !stale(latest) ? latest : this.#issueNext(issue);
          })
          .immediate(),
      );
    });
  }

  entries(): Promise<StoredRevocation[]> {
    return this.#guard(async () => (this.db.prepare(ENTRIES_SQL).all() as EntryRow[]).map(toEntry));
  }

  isRevoked(kind: RevocationKind, subject: string): Promise<StoredRevocation | undefined> {
    return this.#guard(async () => {
      const row = this.db
        .prepare('SELECT kind, subject, revoked_at, reason FROM revocations WHERE kind = ? AND subject = ?')
        .get(kind, subject) as EntryRow | undefined;
      return row && toEntry(row);
    });
  }

  hostsBySerial(serial: string): Promise<HostActivationRecord[]> {
    return this.#guard(async () =>
      (this.db.prepare('SELECT * FROM host_activations WHERE certificate_serial = ?').all(serial) as HostRow[]).map(
        toHost,
      ),
    );
  }

  hostsByRecord(hostRecord: string): Promise<HostActivationRecord[]> {
    return this.#guard(async () =>
      (this.db.prepare('SELECT * FROM host_activations WHERE hardware_id = ?').all(hostRecord) as HostRow[]).map(
        toHost,
      ),
    );
  }

  keyRevokedAt(keyId: string): Promise<number | null | undefined> {
    return this.#guard(async () => {
      const row = this.db.prepare('SELECT revoked_at FROM product_keys WHERE id = ?').get(keyId) as
        { revoked_at: number | null } | undefined;
      return row === undefined ? undefined : row.revoked_at;
    });
  }

  hostsByKeyRef(hostKeyRef: string): Promise<HostActivationRecord[]> {
    return this.#guard(async () =>
      (
        this.db
          .prepare('SELECT * FROM host_activations WHERE host_public_key = ?')
          .all(Buffer.from(hostKeyRef, 'hex')) as HostRow[]
      ).map(toHost),
    );
  }
}

/** What the PostgreSQL store lends: its guarded transaction and query (STORE_UNAVAILABLE mapping, migration first). */
export interface PostgresAccess {
  transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * PostgreSQL: the counter is the one row of revocation_list, locked FOR UPDATE by every issue:
 * a second node waits, then reads the version the first committed and issues the next.
 */
export class PostgresRevocationStore implements RevocationStore {
  constructor(private readonly pg: PostgresAccess) {}

  async #issueNext(client: pg.PoolClient, version: number, issue: IssueList): Promise<IssuedList> {
    const entries = (await client.query<EntryRow>(ENTRIES_SQL)).rows.map(toEntry);
    const list = issue({ listVersion: version + 1, entries });
    await client.query(SAVE_LIST_SQL(dollar), saveParams(list));
    return list;
  }

  async #locked(client: pg.PoolClient): Promise<ListRow> {
    return (await client.query<ListRow>(`${LIST_SQL} FOR UPDATE`)).rows[0] as ListRow;
  }

  revoke(
    entries: readonly StoredRevocation[],
    issue: IssueList,
    audit: (added: readonly StoredRevocation[]) => AuditEntry,
  ): Promise<{ added: StoredRevocation[]; list: IssuedList }> {
    return this.pg.transaction(async (client) => {
      const row = await this.#locked(client);
      const added: StoredRevocation[] = [];
      for (const e of entries) {
        const r = await client.query(INSERT_ENTRY_SQL(dollar), [e.kind, e.subject, e.revokedAt, e.reason]);
        if (r.rowCount === 1) added.push(e);
      }
      const held = toList(row);
      const list = added.length > 0 || !held ? await this.#issueNext(client, Number(row.list_version), issue) : held;
      await client.query(AUDIT_SQL(dollar), auditParams(audit(added)));
      return { added, list };
    });
  }

  async current(stale: (list: IssuedList | null) => boolean, issue: IssueList): Promise<IssuedList> {
    const seen = toList((await this.pg.query<ListRow>(LIST_SQL)).rows[0]);
    if (seen && !stale(seen)) return seen;
    return this.pg.transaction(async (client) => {
      const row = await this.#locked(client);
      const latest = toList(row);
      return latest && !stale(latest) ? latest : this.#issueNext(client, Number(row.list_version), issue);
    });
  }

  async entries(): Promise<StoredRevocation[]> {
    return (await this.pg.query<EntryRow>(ENTRIES_SQL)).rows.map(toEntry);
  }

  async isRevoked(kind: RevocationKind, subject: string): Promise<StoredRevocation | undefined> {
    const { rows } = await this.pg.query<EntryRow>(
      'SELECT kind, subject, revoked_at, reason FROM revocations WHERE kind = $1 AND subject = $2',
      [kind, subject],
    );
    return rows[0] && toEntry(rows[0]);
  }

  async hostsBySerial(serial: string): Promise<HostActivationRecord[]> {
    const { rows } = await this.pg.query<HostRow>('SELECT * FROM host_activations WHERE certificate_serial = $1', [
      serial,
    ]);
    return rows.map(toHost);
  }

  async hostsByRecord(hostRecord: string): Promise<HostActivationRecord[]> {
    const { rows } = await this.pg.query<HostRow>('SELECT * FROM host_activations WHERE hardware_id = $1', [
      hostRecord,
    ]);
    return rows.map(toHost);
  }

  async keyRevokedAt(keyId: string): Promise<number | null | undefined> {
    const { rows } = await this.pg.query<{ revoked_at: string | null }>(
      'SELECT revoked_at FROM product_keys WHERE id = $1',
      [keyId],
    );
    const row = rows[0];
    return row === undefined ? undefined : row.revoked_at === null ? null : Number(row.revoked_at);
  }

  async hostsByKeyRef(hostKeyRef: string): Promise<HostActivationRecord[]> {
    const { rows } = await this.pg.query<HostRow>('SELECT * FROM host_activations WHERE host_public_key = $1', [
      Buffer.from(hostKeyRef, 'hex'),
    ]);
    return rows.map(toHost);
  }
}
