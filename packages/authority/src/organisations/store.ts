import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { KeyType } from '@volact/core';
import { auditInsertSql, auditParams } from '../audit-sql.js';
import type { PostgresAccess } from '../revocation-store.js';
import type { AuditEntry, HostActivationRecord, InstallationRecord, KeyRecord } from '../store.js';
import type { ArtefactKind, Contact } from './types.js';

/**
 * The organisations module's records (docs/portal.md "Organisations"): organisations, the
 * keys' pages, issued artefacts and the audit log's pages, beside the authority's other
 * records. Every list is a keyset page: `after` is the last row's sort key, and each query
 * walks an index from there (no OFFSET, no count over the table), so the thousandth page of
 * an organisation with 100 000 keys costs what the first does. Both engines run the same SQL
 * (written with `?`, numbered for PostgreSQL), but for the few words that differ.
 */

export interface OrganisationRecord {
  readonly id: string;
  readonly name: string;
  readonly externalRef: string | null;
  readonly contacts: Contact[];
  readonly createdAt: number;
  readonly keyCount: number;
}

/** A key as lists show it: no hash, no sealed secret. `used` counts hosts for a KMS host key. */
export interface KeySummaryRecord {
  readonly id: string;
  readonly orgId: string;
  readonly type: KeyType;
  readonly groupIds: string[];
  readonly last5: string;
  readonly limit: number | null;
  readonly used: number;
  readonly activationsPerHost: number | null;
  readonly createdAt: number;
  readonly revokedAt: number | null;
  readonly note: string | null;
  readonly recoverable: boolean;
}

/** Where a page starts: after the row with this sort key (time, then id). */
export interface After {
  readonly at: number;
  readonly id: string;
}

export interface KeyFilter {
  readonly orgId?: string | undefined;
  readonly type?: KeyType | undefined;
  readonly groupId?: string | undefined;
  readonly revoked?: boolean | undefined;
  readonly q?: string | undefined;
  readonly after?: After | undefined;
  readonly limit: number;
}

export interface AuditFilter {
  readonly orgId?: string | undefined;
  readonly keyId?: string | undefined;
  readonly actor?: string | undefined;
  readonly action?: string | undefined;
  readonly from?: number | undefined;
  readonly to?: number | undefined;
  /** The last row's id: rows before it (newest first). */
  readonly beforeId?: number | undefined;
  readonly limit: number;
}

export interface AuditRecord {
  readonly id: number;
  readonly at: number;
  readonly action: string;
  readonly result: string;
  readonly actor: string | null;
  readonly orgId: string | null;
  readonly keyId: string | null;
  readonly keyLast5: string | null;
  readonly detail: string | null;
}

export interface ArtefactRecord {
  readonly id: string;
  readonly orgId: string;
  readonly kind: ArtefactKind;
  readonly name: string;
  readonly groups: string[];
  readonly subjectKeyId: string | null;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly document: unknown;
}

export interface OrganisationStore {
  /** Adds the organisation and its audit row in one transaction. */
  create(org: Omit<OrganisationRecord, 'keyCount'>, audit: AuditEntry): Promise<void>;
  /** Changes the given fields with the audit row; false when there is no such organisation. */
  update(
    id: string,
    patch: { name?: string; externalRef?: string | null; contacts?: Contact[] },
    audit: AuditEntry,
  ): Promise<boolean>;
  get(id: string): Promise<OrganisationRecord | undefined>;
  /** Oldest first; `q` matches the name or external reference (substring, case-insensitive) or the id. */
  list(query: { q?: string | undefined; after?: After | undefined; limit: number }): Promise<OrganisationRecord[]>;
  /** Newest first (created_at, id descending). */
  listKeys(filter: KeyFilter): Promise<KeySummaryRecord[]>;
  keyById(keyId: string): Promise<KeySummaryRecord | undefined>;
  /** Keys with these last five characters, within the organisation when given (at most `limit`). */
  keysByLast5(last5: string, orgId: string | null, limit: number): Promise<KeySummaryRecord[]>;
  /** The key sealed at minting (null for keys minted before), undefined when there is no such key. */
  sealedKey(keyId: string): Promise<string | null | undefined>;
  /** Sets the key's note with the audit row; false when there is no such key. */
  setNote(keyId: string, note: string | null, audit: AuditEntry): Promise<boolean>;
  /** A key's installations, oldest first (first activation, then hardware reference). */
  installations(keyId: string, after: After | undefined, limit: number): Promise<InstallationRecord[]>;
  /** A KMS host key's hosts, oldest first (first activation, then hardware id). */
  hosts(keyId: string, after: After | undefined, limit: number): Promise<HostActivationRecord[]>;
  /** The organisation's MAK and KMS host keys, newest first. */
  usage(orgId: string): Promise<KeySummaryRecord[]>;
  /** New activations per UTC day number (ms / 86 400 000) from `since`, of the organisation or one key. */
  usageHistory(orgId: string, keyId: string | undefined, since: number): Promise<{ day: number; n: number }[]>;
  /** Newest first. */
  audit(filter: AuditFilter): Promise<AuditRecord[]>;
  addArtefact(artefact: ArtefactRecord): Promise<void>;
  /** Newest first. */
  artefacts(
    orgId: string,
    kind: ArtefactKind | undefined,
    after: After | undefined,
    limit: number,
  ): Promise<ArtefactRecord[]>;
  /** Many keys in one transaction (imports, the benchmark's 100 000 keys); no audit rows. */
  addKeys(records: readonly KeyRecord[]): Promise<void>;
}

type Dialect = 'sqlite' | 'postgres';

/** What an engine lends: reads, and a transaction whose statements run in order on one connection. */
interface Engine {
  readonly dialect: Dialect;
  all<R>(sql: string, params: readonly unknown[]): Promise<R[]>;
  write<T>(work: (tx: { run(sql: string, params: readonly unknown[]): Promise<number> }) => Promise<T>): Promise<T>;
}

const numbered = (sql: string): string => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

interface OrgRow {
  id: string;
  name: string;
  external_ref: string | null;
  contacts: string;
  created_at: number | string;
  key_count: number | string;
}
interface KeyRow {
  id: string;
  org_id: string;
  type: string;
  group_ids: string | string[] | null;
  last5: string;
  host_limit: number | null;
  used_n: number | string;
  activations_per_host: number | null;
  created_at: number | string;
  revoked_at: number | string | null;
  note: string | null;
  recoverable: number | boolean;
}
interface AuditRowDb {
  id: number | string;
  at: number | string;
  action: string;
  result: string;
  actor: string | null;
  org_id: string | null;
  key_id: string | null;
  key_last5: string | null;
  detail: string | null;
}
interface ArtefactRow {
  id: string;
  org_id: string;
  kind: string;
  name: string;
  groups: string;
  subject_key_id: string | null;
  created_at: number | string;
  expires_at: number | string | null;
  document: string;
}

const num = (v: number | string): number => Number(v);
const numOrNull = (v: number | string | null): number | null => (v === null ? null : Number(v));

const toOrg = (r: OrgRow): OrganisationRecord => ({
  id: r.id,
  name: r.name,
  externalRef: r.external_ref,
  contacts: JSON.parse(r.contacts) as Contact[],
  createdAt: num(r.created_at),
  keyCount: num(r.key_count),
});

const toKey = (r: KeyRow): KeySummaryRecord => ({
  id: r.id,
  orgId: r.org_id,
  type: r.type as KeyType,
  groupIds: r.group_ids === null ? [] : Array.isArray(r.group_ids) ? r.group_ids : r.group_ids.split(','),
  last5: r.last5,
  limit: r.host_limit,
  used: num(r.used_n),
  activationsPerHost: r.activations_per_host,
  createdAt: num(r.created_at),
  revokedAt: numOrNull(r.revoked_at),
  note: r.note,
  recoverable: Boolean(r.recoverable),
});

const toAudit = (r: AuditRowDb): AuditRecord => ({
  id: num(r.id),
  at: num(r.at),
  action: r.action,
  result: r.result,
  actor: r.actor,
  orgId: r.org_id,
  keyId: r.key_id,
  keyLast5: r.key_last5,
  detail: r.detail,
});

const toArtefact = (r: ArtefactRow): ArtefactRecord => ({
  id: r.id,
  orgId: r.org_id,
  kind: r.kind as ArtefactKind,
  name: r.name,
  groups: JSON.parse(r.groups) as string[],
  subjectKeyId: r.subject_key_id,
  createdAt: num(r.created_at),
  expiresAt: numOrNull(r.expires_at),
  document: JSON.parse(r.document) as unknown,
});

/** `%` and `_` typed by a user match themselves. */
const likeEscape = (text: string): string => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Rows after `after` in descending (time, id) order: a range on the index, then one tie-break. */
const beforeKey = (col: string) => `${col}.created_at <= ? AND (${col}.created_at < ? OR ${col}.id < ?)`;
const afterKey = (at: string, id: string) => `${at} >= ? AND (${at} > ? OR ${id} > ?)`;

class SqlOrganisationStore implements OrganisationStore {
  readonly #keySelect: string;
  readonly #like: string;

  constructor(private readonly engine: Engine) {
    const groups =
      engine.dialect === 'sqlite'
        ? '(SELECT group_concat(group_id) FROM key_groups WHERE key_id = k.id)'
        : '(SELECT array_agg(group_id ORDER BY group_id) FROM key_groups WHERE key_id = k.id)';
    this.#like = engine.dialect === 'sqlite' ? "LIKE ? ESCAPE '\\'" : "ILIKE ? ESCAPE '\\'";
    this.#keySelect = `SELECT k.id, k.org_id, k.type, ${groups} AS group_ids, k.last5, k.host_limit,
        CASE WHEN k.type = 'kms-host' THEN (SELECT count(*) FROM host_activations h WHERE h.key_id = k.id)
             ELSE k.used END AS used_n,
        k.activations_per_host, k.created_at, k.revoked_at, k.note,
        CASE WHEN k.key_sealed IS NULL THEN 0 ELSE 1 END AS recoverable
      FROM product_keys k`;
  }

  #all<R>(sql: string, params: readonly unknown[]): Promise<R[]> {
    return this.engine.all<R>(sql, params);
  }

  async create(org: Omit<OrganisationRecord, 'keyCount'>, audit: AuditEntry): Promise<void> {
    await this.engine.write(async (tx) => {
      await tx.run('INSERT INTO organisations (id, name, external_ref, contacts, created_at) VALUES (?, ?, ?, ?, ?)', [
        org.id,
        org.name,
        org.externalRef,
        JSON.stringify(org.contacts),
        org.createdAt,
      ]);
      await tx.run(
        auditInsertSql(() => '?'),
        auditParams(audit),
      );
    });
  }

  async update(
    id: string,
    patch: { name?: string; externalRef?: string | null; contacts?: Contact[] },
    audit: AuditEntry,
  ): Promise<boolean> {
    const sets: string[] = [];
    const params: unknown[] = [];
    if (patch.name !== undefined) {
      sets.push('name = ?');
      params.push(patch.name);
    }
    if (patch.externalRef !== undefined) {
      sets.push('external_ref = ?');
      params.push(patch.externalRef);
    }
    if (patch.contacts !== undefined) {
      sets.push('contacts = ?');
      params.push(JSON.stringify(patch.contacts));
    }
    return this.engine.write(async (tx) => {
      const changed =
        sets.length === 0
          ? (await this.#all<{ id: string }>('SELECT id FROM organisations WHERE id = ?', [id])).length
          : await tx.run(`UPDATE organisations SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
      if (changed !== 1) return false;
      await tx.run(
        auditInsertSql(() => '?'),
        auditParams(audit),
      );
      return true;
    });
  }

  #orgSelect = `SELECT o.*, (SELECT count(*) FROM product_keys k WHERE k.org_id = o.id) AS key_count FROM organisations o`;

  async get(id: string): Promise<OrganisationRecord | undefined> {
    const rows = await this.#all<OrgRow>(`${this.#orgSelect} WHERE o.id = ?`, [id]);
    return rows[0] && toOrg(rows[0]);
  }

  async list(query: {
    q?: string | undefined;
    after?: After | undefined;
    limit: number;
  }): Promise<OrganisationRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.q !== undefined && query.q !== '') {
      const like = `%${likeEscape(query.q)}%`;
      where.push(`(o.name ${this.#like} OR o.external_ref ${this.#like} OR o.id = ?)`);
      params.push(like, like, query.q);
    }
    if (query.after) {
      where.push(afterKey('o.created_at', 'o.id'));
      params.push(query.after.at, query.after.at, query.after.id);
    }
    const sql = `${this.#orgSelect}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}
      ORDER BY o.created_at, o.id LIMIT ?`;
    return (await this.#all<OrgRow>(sql, [...params, query.limit])).map(toOrg);
  }

  async listKeys(f: KeyFilter): Promise<KeySummaryRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.orgId !== undefined) {
      where.push('k.org_id = ?');
      params.push(f.orgId);
    }
    if (f.type !== undefined) {
      where.push('k.type = ?');
      params.push(f.type);
    }
    if (f.groupId !== undefined) {
      // A per-row probe (a scalar subquery is never turned into a join): the walk stays in the
      // index's order and stops at the page's end, whatever the statistics say.
      where.push('(SELECT 1 FROM key_groups g WHERE g.key_id = k.id AND g.group_id = ?) IS NOT NULL');
      params.push(f.groupId);
    }
    if (f.revoked !== undefined) where.push(f.revoked ? 'k.revoked_at IS NOT NULL' : 'k.revoked_at IS NULL');
    if (f.q !== undefined && f.q !== '') {
      where.push(`(k.last5 = ? OR k.note ${this.#like})`);
      params.push(`…${f.q.replace(/^…/, '').toUpperCase()}`, `%${likeEscape(f.q)}%`);
    }
    if (f.after) {
      where.push(beforeKey('k'));
      params.push(f.after.at, f.after.at, f.after.id);
    }
    const sql = `${this.#keySelect}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}
      ORDER BY k.created_at DESC, k.id DESC LIMIT ?`;
    return (await this.#all<KeyRow>(sql, [...params, f.limit])).map(toKey);
  }

  async keyById(keyId: string): Promise<KeySummaryRecord | undefined> {
    const rows = await this.#all<KeyRow>(`${this.#keySelect} WHERE k.id = ?`, [keyId]);
    return rows[0] && toKey(rows[0]);
  }

  async keysByLast5(last5: string, orgId: string | null, limit: number): Promise<KeySummaryRecord[]> {
    const rows =
      orgId === null
        ? await this.#all<KeyRow>(`${this.#keySelect} WHERE k.last5 = ? ORDER BY k.created_at, k.id LIMIT ?`, [
            last5,
            limit,
          ])
        : await this.#all<KeyRow>(
            `${this.#keySelect} WHERE k.last5 = ? AND k.org_id = ? ORDER BY k.created_at, k.id LIMIT ?`,
            [last5, orgId, limit],
          );
    return rows.map(toKey);
  }

  async sealedKey(keyId: string): Promise<string | null | undefined> {
    const rows = await this.#all<{ key_sealed: string | null }>('SELECT key_sealed FROM product_keys WHERE id = ?', [
      keyId,
    ]);
    return rows[0] === undefined ? undefined : rows[0].key_sealed;
  }

  async setNote(keyId: string, note: string | null, audit: AuditEntry): Promise<boolean> {
    return this.engine.write(async (tx) => {
      if ((await tx.run('UPDATE product_keys SET note = ? WHERE id = ?', [note, keyId])) !== 1) return false;
      await tx.run(
        auditInsertSql(() => '?'),
        auditParams(audit),
      );
      return true;
    });
  }

  async installations(keyId: string, after: After | undefined, limit: number): Promise<InstallationRecord[]> {
    const rows = await this.#all<{
      hardware_ref: string;
      installation_id: string;
      channel: string;
      activation_count: number;
      first_activated_at: number | string;
      last_activated_at: number | string;
    }>(
      `SELECT hardware_ref, installation_id, channel, activation_count, first_activated_at, last_activated_at
       FROM installations WHERE key_id = ?${after ? ` AND ${afterKey('first_activated_at', 'hardware_ref')}` : ''}
       ORDER BY first_activated_at, hardware_ref LIMIT ?`,
      after ? [keyId, after.at, after.at, after.id, limit] : [keyId, limit],
    );
    return rows.map((r) => ({
      hardwareRef: r.hardware_ref,
      installationId: r.installation_id,
      channel: r.channel,
      activationCount: r.activation_count,
      firstActivatedAt: num(r.first_activated_at),
      lastActivatedAt: num(r.last_activated_at),
    }));
  }

  async hosts(keyId: string, after: After | undefined, limit: number): Promise<HostActivationRecord[]> {
    const rows = await this.#all<{
      key_id: string;
      hardware_id: string;
      host_public_key: Buffer;
      activation_count: number;
      first_activated_at: number | string;
      last_activated_at: number | string;
      certificate_serial: string;
      certificate_expires_at: number | string;
    }>(
      `SELECT * FROM host_activations WHERE key_id = ?${after ? ` AND ${afterKey('first_activated_at', 'hardware_id')}` : ''}
       ORDER BY first_activated_at, hardware_id LIMIT ?`,
      after ? [keyId, after.at, after.at, after.id, limit] : [keyId, limit],
    );
    return rows.map((r) => ({
      keyId: r.key_id,
      hardwareId: r.hardware_id,
      hostPublicKey: r.host_public_key,
      activationCount: r.activation_count,
      firstActivatedAt: num(r.first_activated_at),
      lastActivatedAt: num(r.last_activated_at),
      certificateSerial: r.certificate_serial,
      certificateExpiresAt: num(r.certificate_expires_at),
    }));
  }

  async usage(orgId: string): Promise<KeySummaryRecord[]> {
    return (
      await this.#all<KeyRow>(
        `${this.#keySelect} WHERE k.org_id = ? AND k.type IN ('mak', 'kms-host') ORDER BY k.created_at DESC, k.id DESC`,
        [orgId],
      )
    ).map(toKey);
  }

  async usageHistory(orgId: string, keyId: string | undefined, since: number): Promise<{ day: number; n: number }[]> {
    const byKey = keyId === undefined ? '' : ' AND k.id = ?';
    const part = (table: string) =>
      `SELECT t.first_activated_at / 86400000 AS day, count(*) AS n FROM ${table} t
         JOIN product_keys k ON k.id = t.key_id
       WHERE k.org_id = ? AND t.first_activated_at >= ?${byKey} GROUP BY t.first_activated_at / 86400000`;
    const one = keyId === undefined ? [orgId, since] : [orgId, since, keyId];
    const rows = await this.#all<{ day: number | string; n: number | string }>(
      `SELECT day, sum(n) AS n FROM (${part('installations')} UNION ALL ${part('host_activations')}) u
       GROUP BY day ORDER BY day`,
      [...one, ...one],
    );
    return rows.map((r) => ({ day: num(r.day), n: num(r.n) }));
  }

  async audit(f: AuditFilter): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.orgId !== undefined) {
      where.push('org_id = ?');
      params.push(f.orgId);
    }
    if (f.keyId !== undefined) {
      where.push('key_id = ?');
      params.push(f.keyId);
    }
    if (f.actor !== undefined) {
      where.push('actor = ?');
      params.push(f.actor);
    }
    if (f.action !== undefined && f.action !== '') {
      where.push('substr(action, 1, ?) = ?');
      params.push(f.action.length, f.action);
    }
    if (f.from !== undefined) {
      where.push('at >= ?');
      params.push(f.from);
    }
    if (f.to !== undefined) {
      where.push('at < ?');
      params.push(f.to);
    }
    if (f.beforeId !== undefined) {
      where.push('id < ?');
      params.push(f.beforeId);
    }
    const sql = `SELECT id, at, action, result, actor, org_id, key_id, key_last5, detail FROM audit_log
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return (await this.#all<AuditRowDb>(sql, [...params, f.limit])).map(toAudit);
  }

  async addArtefact(a: ArtefactRecord): Promise<void> {
    await this.engine.write(async (tx) => {
      await tx.run(
        `INSERT INTO issued_artefacts (id, org_id, kind, name, groups, subject_key_id, created_at, expires_at, document)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          a.id,
          a.orgId,
          a.kind,
          a.name,
          JSON.stringify(a.groups),
          a.subjectKeyId,
          a.createdAt,
          a.expiresAt,
          JSON.stringify(a.document),
        ],
      );
    });
  }

  async artefacts(
    orgId: string,
    kind: ArtefactKind | undefined,
    after: After | undefined,
    limit: number,
  ): Promise<ArtefactRecord[]> {
    const where = ['a.org_id = ?'];
    const params: unknown[] = [orgId];
    if (kind !== undefined) {
      where.push('a.kind = ?');
      params.push(kind);
    }
    if (after) {
      where.push(beforeKey('a'));
      params.push(after.at, after.at, after.id);
    }
    const rows = await this.#all<ArtefactRow>(
      `SELECT a.* FROM issued_artefacts a WHERE ${where.join(' AND ')} ORDER BY a.created_at DESC, a.id DESC LIMIT ?`,
      [...params, limit],
    );
    return rows.map(toArtefact);
  }

  async addKeys(records: readonly KeyRecord[]): Promise<void> {
    await this.engine.write(async (tx) => {
      for (const r of records) {
        await tx.run(
          `INSERT INTO product_keys (id, key_hash, type, last5, host_limit, activations_per_host, created_at,
             revoked_at, key_ref, proof_key_sealed, used, org_id, note, key_sealed)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            r.id,
            r.keyHash,
            r.type,
            r.last5,
            r.limit,
            r.activationsPerHost,
            r.createdAt,
            r.revokedAt,
            r.keyRef,
            r.proofKeySealed,
            r.used,
            r.orgId ?? 'org_default',
            r.note ?? null,
            r.keySealed ?? null,
          ],
        );
        for (const g of r.groupIds) await tx.run('INSERT INTO key_groups (key_id, group_id) VALUES (?, ?)', [r.id, g]);
      }
    });
  }
}

/**
 * SQLite: the authority store's connection and write queue; a write's statements run inside
 * BEGIN IMMEDIATE (the database's write lock, also against other processes).
 */
export class SqliteOrganisationStore extends SqlOrganisationStore {
  constructor(
    db: Database.Database,
    serial: <T>(run: () => Promise<T>) => Promise<T>,
    mapError: (err: unknown) => unknown,
  ) {
    const statements = new Map<string, Database.Statement>();
    const stmt = (sql: string) => {
      let s = statements.get(sql);
      if (!s) {
        s = db.prepare(sql);
        if (statements.size > 200) statements.clear();
        statements.set(sql, s);
      }
      return s;
    };
    const guard = async <T>(work: () => Promise<T>): Promise<T> => {
      try {
        return await work();
      } catch (err) {
        throw mapError(err);
      }
    };
    super({
      dialect: 'sqlite',
      all: <R>(sql: string, params: readonly unknown[]) => guard(async () => stmt(sql).all(...params) as R[]),
      write: <T>(work: (tx: { run(sql: string, params: readonly unknown[]): Promise<number> }) => Promise<T>) =>
        guard(() =>
          serial(async () => {
            db.exec('BEGIN IMMEDIATE');
            try {
              const result = await work({ run: async (sql, params) => stmt(sql).run(...params).changes });
              db.exec('COMMIT');
              return result;
            } catch (err) {
              db.exec('ROLLBACK');
              throw err;
            }
          }),
        ),
    });
  }
}

/** PostgreSQL: the store's guarded pool; a write is one transaction on one connection. */
export class PostgresOrganisationStore extends SqlOrganisationStore {
  readonly #access: PostgresAccess;

  /** A few statements per thousand keys (arrays unnested), not one per key. */
  override async addKeys(records: readonly KeyRecord[]): Promise<void> {
    await this.#access.transaction(async (client) => {
      for (let i = 0; i < records.length; i += 5000) {
        const chunk = records.slice(i, i + 5000);
        const col = <T>(f: (r: KeyRecord) => T) => chunk.map(f);
        await client.query(
          `INSERT INTO product_keys (id, key_hash, type, last5, host_limit, activations_per_host, created_at,
             revoked_at, key_ref, proof_key_sealed, used, org_id, note, key_sealed)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::bigint[],
             $8::bigint[], $9::text[], $10::text[], $11::int[], $12::text[], $13::text[], $14::text[])`,
          [
            col((r) => r.id),
            col((r) => r.keyHash),
            col((r) => r.type),
            col((r) => r.last5),
            col((r) => r.limit),
            col((r) => r.activationsPerHost),
            col((r) => r.createdAt),
            col((r) => r.revokedAt),
            col((r) => r.keyRef),
            col((r) => r.proofKeySealed),
            col((r) => r.used),
            col((r) => r.orgId ?? 'org_default'),
            col((r) => r.note ?? null),
            col((r) => r.keySealed ?? null),
          ],
        );
        const links = chunk.flatMap((r) => r.groupIds.map((g) => [r.id, g] as const));
        await client.query('INSERT INTO key_groups (key_id, group_id) SELECT * FROM unnest($1::text[], $2::text[])', [
          links.map((l) => l[0]),
          links.map((l) => l[1]),
        ]);
      }
      // Fresh statistics after a bulk load: without them the planner may sort the whole
      // organisation for a filtered page instead of walking the index (autovacuum comes later).
      await client.query('ANALYZE product_keys');
      await client.query('ANALYZE key_groups');
    });
  }

  constructor(access: PostgresAccess) {
    super({
      dialect: 'postgres',
      all: async <R>(sql: string, params: readonly unknown[]) =>
        (await access.query<R & pg.QueryResultRow>(numbered(sql), [...params])).rows as R[],
      write: <T>(work: (tx: { run(sql: string, params: readonly unknown[]): Promise<number> }) => Promise<T>) =>
        access.transaction((client) =>
          work({ run: async (sql, params) => (await client.query(numbered(sql), [...params])).rowCount ?? 0 }),
        ),
    });
    this.#access = access;
  }
}
