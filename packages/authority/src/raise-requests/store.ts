import type Database from 'better-sqlite3';
import type pg from 'pg';
import { KMS_DEFAULTS } from '@volact/core';
import {
  auditInsertSql as AUDIT_SQL,
  auditParams,
  postgresPlaceholder as dollar,
  sqlitePlaceholder as q,
} from '../audit-sql.js';
import { AuthorityError, invalidField } from '../errors.js';
import type { PostgresAccess } from '../revocation-store.js';
import type { AuditEntry } from '../store.js';
import { insertEventsPostgres, insertEventsSqlite, outboxEvent, type OutboxEvent } from '../webhooks/events.js';
import type { RaiseRequestState } from './types.js';

/**
 * The limit-raise requests' records (migration 8, raise-requests/schema.ts) in the authority's
 * database, both engines alike. A decision is ONE transaction: the request's row lock, then (on
 * approval) the key's row lock, the new limit, the request's new state, its audit row and its
 * events. A second decision of the same request, on any node, waits for the first's commit,
 * then reads `approved`/`declined` and changes nothing (RAISE_REQUEST_DECIDED).
 *
 * Lock order, and why no deadlock: a decision locks the request row, then the key row. Nothing
 * else that locks a key row ever asks for a request row afterwards (activations, setLimit,
 * revocations lock keys only; create() inserts a NEW request row, which nobody can be waiting
 * for), so no cycle can form: two decisions of one request queue on the request row, two
 * decisions of two requests of one key queue on the key row while each holds only its own
 * request row.
 */

/** The highest limit a key may have (keys.ts MAX_LIMIT): an approval beyond it is refused. */
export const MAX_KEY_LIMIT = 10_000_000;

export interface RaiseRequestRecord {
  readonly id: string;
  readonly orgId: string;
  readonly keyId: string;
  readonly keyLast5: string;
  readonly additional: number;
  readonly reason: string;
  readonly state: RaiseRequestState;
  readonly requestedBy: string;
  readonly requestedAt: number;
  readonly decidedBy: string | null;
  readonly decidedAt: number | null;
  readonly decisionReason: string | null;
  readonly limitBefore: number | null;
  readonly limitAfter: number | null;
}

export interface NewRaiseRequest {
  readonly id: string;
  readonly orgId: string;
  readonly keyId: string;
  readonly additional: number;
  readonly reason: string;
  readonly requestedBy: string;
  readonly requestedAt: number;
}

export interface RaiseDecision {
  readonly id: string;
  readonly decision: 'approve' | 'decline';
  readonly reason: string;
  readonly decidedBy: string;
  readonly decidedAt: number;
}

export interface RaiseRequestListQuery {
  readonly orgId?: string | undefined;
  readonly state?: RaiseRequestState | undefined;
  /** Newest first: the page starts after this (requestedAt, id). */
  readonly after?: { readonly at: number; readonly id: string } | undefined;
  readonly limit: number;
}

export interface RaiseRequestStore {
  /**
   * Records a pending request, with its audit row and `raise_request.created`, in one
   * transaction that checks the key: KEY_NOT_FOUND when it is not the organisation's (or does
   * not exist), KEY_REVOKED, KEY_WRONG_TYPE for a retail key.
   */
  create(input: NewRaiseRequest): Promise<RaiseRequestRecord>;
  get(id: string): Promise<RaiseRequestRecord | undefined>;
  list(query: RaiseRequestListQuery): Promise<RaiseRequestRecord[]>;
  /**
   * Decides a pending request (see above): RAISE_REQUEST_NOT_FOUND, RAISE_REQUEST_DECIDED (not
   * pending any more; nothing written), and on approval KEY_REVOKED / RAISE_REQUEST_INVALID (the
   * limit would pass MAX_KEY_LIMIT), each leaving the request pending.
   */
  decide(decision: RaiseDecision): Promise<RaiseRequestRecord>;
}

interface RequestRow {
  id: string;
  org_id: string;
  key_id: string;
  key_last5: string;
  additional: number;
  reason: string;
  state: string;
  requested_by: string;
  requested_at: number | string;
  decided_by: string | null;
  decided_at: number | string | null;
  decision_reason: string | null;
  limit_before: number | null;
  limit_after: number | null;
}

interface KeyRow {
  id: string;
  org_id: string | null;
  type: string;
  last5: string;
  host_limit: number | null;
  revoked_at: number | string | null;
}

const toRecord = (r: RequestRow): RaiseRequestRecord => ({
  id: r.id,
  orgId: r.org_id,
  keyId: r.key_id,
  keyLast5: r.key_last5,
  additional: Number(r.additional),
  reason: r.reason,
  state: r.state as RaiseRequestState,
  requestedBy: r.requested_by,
  requestedAt: Number(r.requested_at),
  decidedBy: r.decided_by,
  decidedAt: r.decided_at === null ? null : Number(r.decided_at),
  decisionReason: r.decision_reason,
  limitBefore: r.limit_before === null ? null : Number(r.limit_before),
  limitAfter: r.limit_after === null ? null : Number(r.limit_after),
});

const iso = (ms: number) => new Date(ms).toISOString();

type Placeholder = (n: number) => string;

const KEY_SQL = (p: Placeholder, lock: string) =>
  `SELECT id, org_id, type, last5, host_limit, revoked_at FROM product_keys WHERE id = ${p(1)}${lock}`;
const REQUEST_SQL = (p: Placeholder, lock: string) => `SELECT * FROM raise_requests WHERE id = ${p(1)}${lock}`;
const INSERT_SQL = (p: Placeholder) =>
  `INSERT INTO raise_requests (id, org_id, key_id, key_last5, additional, reason, state, requested_by, requested_at)
   VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, 'pending', ${p(7)}, ${p(8)})`;
const DECIDE_SQL = (p: Placeholder) =>
  `UPDATE raise_requests SET state = ${p(1)}, decided_by = ${p(2)}, decided_at = ${p(3)}, decision_reason = ${p(4)},
     limit_before = ${p(5)}, limit_after = ${p(6)} WHERE id = ${p(7)} AND state = 'pending'`;
const RAISE_SQL = (p: Placeholder) => `UPDATE product_keys SET host_limit = ${p(1)} WHERE id = ${p(2)}`;

function listSql(p: Placeholder, query: RaiseRequestListQuery): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (query.orgId !== undefined) {
    params.push(query.orgId);
    where.push(`org_id = ${p(params.length)}`);
  }
  if (query.state !== undefined) {
    params.push(query.state);
    where.push(`state = ${p(params.length)}`);
  }
  if (query.after !== undefined) {
    params.push(query.after.at, query.after.at, query.after.id);
    const n = params.length;
    where.push(`(requested_at < ${p(n - 2)} OR (requested_at = ${p(n - 1)} AND id < ${p(n)}))`);
  }
  params.push(query.limit);
  const sql = `SELECT * FROM raise_requests${where.length ? ` WHERE ${where.join(' AND ')}` : ''}
    ORDER BY requested_at DESC, id DESC LIMIT ${p(params.length)}`;
  return { sql, params };
}

/** Whether the key may be asked about by this organisation; throws the refusal otherwise. */
function checkKey(key: KeyRow | undefined, input: NewRaiseRequest): KeyRow {
  // A key of another organisation is answered as absent: a customer cannot probe other ids.
  if (!key || (key.org_id ?? 'org_default') !== input.orgId) {
    throw invalidField(
      'keyId',
      `organisation ${input.orgId} has no key with ID ${input.keyId}; list its keys to find the key ID`,
      'KEY_NOT_FOUND',
    );
  }
  if (key.revoked_at !== null) {
    throw invalidField('keyId', `key ${key.last5} was revoked: its limit cannot be raised`, 'KEY_REVOKED');
  }
  if (key.type === 'retail') {
    throw invalidField(
      'keyId',
      `key ${key.last5} is a retail key: it activates one installation and its limit stays 1; ask for a MAK instead`,
      'KEY_WRONG_TYPE',
    );
  }
  return key;
}

const notFound = (id: string) =>
  new AuthorityError(
    'RAISE_REQUEST_NOT_FOUND',
    `no limit-raise request has the id ${id}; list the requests to find it`,
  );

/** The refusal of a second decision: who decided, how, when, and that nothing changed. */
export function alreadyDecided(r: RaiseRequestRecord): AuthorityError {
  const how = r.state === 'approved' ? `approved (limit ${r.limitBefore} → ${r.limitAfter})` : 'declined';
  return new AuthorityError(
    'RAISE_REQUEST_DECIDED',
    `limit-raise request ${r.id} was already ${how} by ${r.decidedBy ?? 'unknown'} at ${
      r.decidedAt === null ? 'an unknown time' : iso(r.decidedAt)
    }; nothing changed (ask the organisation for a new request to raise the limit again)`,
  );
}

/** The key's limit before and after approving `r` (checked in the decision's transaction). */
function approval(r: RaiseRequestRecord, key: KeyRow | undefined): { before: number; after: number } {
  if (!key) throw invalidField('keyId', `the key of request ${r.id} no longer exists`, 'KEY_NOT_FOUND');
  if (key.revoked_at !== null) {
    throw invalidField(
      'keyId',
      `key ${key.last5} was revoked after request ${r.id} was made: its limit cannot be raised; decline the request`,
      'KEY_REVOKED',
    );
  }
  const before = key.host_limit ?? (key.type === 'kms-host' ? KMS_DEFAULTS.hostLimit : 0);
  const after = before + r.additional;
  if (after > MAX_KEY_LIMIT) {
    throw invalidField(
      'additional',
      `approving request ${r.id} would take key ${key.last5} from ${before} to ${after} activations, above the highest limit ${MAX_KEY_LIMIT}; decline it`,
      'RAISE_REQUEST_INVALID',
    );
  }
  return { before, after };
}

/** The decided record as the transaction writes it. */
function decided(r: RaiseRequestRecord, d: RaiseDecision, limits: { before: number; after: number } | null) {
  return {
    ...r,
    state: d.decision === 'approve' ? 'approved' : 'declined',
    decidedBy: d.decidedBy,
    decidedAt: d.decidedAt,
    decisionReason: d.reason,
    limitBefore: limits?.before ?? null,
    limitAfter: limits?.after ?? null,
  } satisfies RaiseRequestRecord;
}

const decideParams = (r: RaiseRequestRecord) => [
  r.state,
  r.decidedBy,
  r.decidedAt,
  r.decisionReason,
  r.limitBefore,
  r.limitAfter,
  r.id,
];

/** The audit row (with the organisation, key and actor columns once the audit log has them). */
function auditRow(r: RaiseRequestRecord, at: number, action: string, actor: string, detail: string): AuditEntry {
  return {
    at,
    action,
    result: 'OK',
    keyLast5: r.keyLast5,
    detail,
    orgId: r.orgId,
    keyId: r.keyId,
    actor,
  };
}

const createdAudit = (r: RaiseRequestRecord) =>
  auditRow(r, r.requestedAt, 'raise_request.create', r.requestedBy, `request ${r.id}: +${r.additional} activations`);

function decidedAudit(r: RaiseRequestRecord): AuditEntry {
  const what =
    r.state === 'approved'
      ? `request ${r.id} approved: limit ${r.limitBefore} → ${r.limitAfter}`
      : `request ${r.id} declined`;
  return auditRow(
    r,
    r.decidedAt ?? r.requestedAt,
    `raise_request.${r.state === 'approved' ? 'approve' : 'decline'}`,
    r.decidedBy ?? '',
    what,
  );
}

/** The events a request's creation writes (never a secret: the key as its last five characters). */
export const createdEvents = (r: RaiseRequestRecord): OutboxEvent[] => [
  outboxEvent(
    'raise_request.created',
    r.requestedAt,
    { orgId: r.orgId, keyId: r.keyId },
    {
      requestId: r.id,
      keyLast5: r.keyLast5,
      additional: r.additional,
      reason: r.reason,
      requestedBy: r.requestedBy,
    },
  ),
];

/** The events a decision writes: `key.limit_raised` (approval only) and `raise_request.decided`. */
export function decidedEvents(r: RaiseRequestRecord): OutboxEvent[] {
  const at = r.decidedAt ?? r.requestedAt;
  const scope = { orgId: r.orgId, keyId: r.keyId };
  const events: OutboxEvent[] = [];
  if (r.state === 'approved') {
    events.push(
      outboxEvent('key.limit_raised', at, scope, {
        keyLast5: r.keyLast5,
        limitBefore: r.limitBefore,
        limitAfter: r.limitAfter,
        by: r.decidedBy,
        requestId: r.id,
        // The names a direct raise also carries (one shape for the event, whatever raised it).
        limit: r.limitAfter,
        previousLimit: r.limitBefore,
      }),
    );
  }
  events.push(
    outboxEvent('raise_request.decided', at, scope, {
      requestId: r.id,
      keyLast5: r.keyLast5,
      decision: r.state,
      reason: r.decisionReason,
      decidedBy: r.decidedBy,
      additional: r.additional,
      limitBefore: r.limitBefore,
      limitAfter: r.limitAfter,
    }),
  );
  return events;
}

const newRecord = (input: NewRaiseRequest, key: KeyRow): RaiseRequestRecord => ({
  ...input,
  keyLast5: key.last5,
  state: 'pending',
  decidedBy: null,
  decidedAt: null,
  decisionReason: null,
  limitBefore: null,
  limitAfter: null,
});

const insertParams = (r: RaiseRequestRecord) => [
  r.id,
  r.orgId,
  r.keyId,
  r.keyLast5,
  r.additional,
  r.reason,
  r.requestedBy,
  r.requestedAt,
];

/**
 * SQLite: the authority store's connection and write queue; BEGIN IMMEDIATE takes the
 * database's write lock, which holds every row (the request's and the key's) between processes.
 */
export class SqliteRaiseRequestStore implements RaiseRequestStore {
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

  create(input: NewRaiseRequest): Promise<RaiseRequestRecord> {
    return this.#guard(() =>
      this.serial(async () =>
        this.db
          .transaction(() => {
            const key = checkKey(this.db.prepare(KEY_SQL(q, '')).get(input.keyId) as KeyRow | undefined, input);
            const record = newRecord(input, key);
            this.db.prepare(INSERT_SQL(q)).run(...insertParams(record));
            this.db.prepare(AUDIT_SQL(q)).run(...auditParams(createdAudit(record)));
            insertEventsSqlite(this.db, createdEvents(record));
            return record;
          })
          .immediate(),
      ),
    );
  }

  get(id: string): Promise<RaiseRequestRecord | undefined> {
    return this.#guard(async () => {
      const row = this.db.prepare(REQUEST_SQL(q, '')).get(id) as RequestRow | undefined;
      return row && toRecord(row);
    });
  }

  list(query: RaiseRequestListQuery): Promise<RaiseRequestRecord[]> {
    return this.#guard(async () => {
      const { sql, params } = listSql(q, query);
      return (this.db.prepare(sql).all(...params) as RequestRow[]).map(toRecord);
    });
  }

  decide(d: RaiseDecision): Promise<RaiseRequestRecord> {
    return this.#guard(() =>
      this.serial(async () =>
        this.db
          .transaction(() => {
            // BEGIN IMMEDIATE: the write lock is held from this read to the commit.
            const row = this.db.prepare(REQUEST_SQL(q, '')).get(d.id) as RequestRow | undefined;
            if (!row) throw notFound(d.id);
            const current = toRecord(row);
            if (current.state !== 'pending') throw alreadyDecided(current);
            let limits: { before: number; after: number } | null = null;
            if (d.decision === 'approve') {
              limits = approval(current, this.db.prepare(KEY_SQL(q, '')).get(current.keyId) as KeyRow | undefined);
              this.db.prepare(RAISE_SQL(q)).run(limits.after, current.keyId);
            }
            const record = decided(current, d, limits);
            const changed = this.db.prepare(DECIDE_SQL(q)).run(...decideParams(record)).changes;
            if (changed !== 1) throw new Error(`request ${d.id} changed under the write lock`);
            this.db.prepare(AUDIT_SQL(q)).run(...auditParams(decidedAudit(record)));
            insertEventsSqlite(this.db, decidedEvents(record));
            return record;
          })
          .immediate(),
      ),
    );
  }
}

/**
 * PostgreSQL: the request's row lock (SELECT … FOR UPDATE) orders every decision of it, on any
 * node; the key's row lock (taken second) orders the limit with activations and setLimit.
 */
export class PostgresRaiseRequestStore implements RaiseRequestStore {
  constructor(private readonly pg: PostgresAccess) {}

  create(input: NewRaiseRequest): Promise<RaiseRequestRecord> {
    return this.pg.transaction(async (client) => {
      const key = checkKey((await client.query<KeyRow>(KEY_SQL(dollar, ''), [input.keyId])).rows[0], input);
      const record = newRecord(input, key);
      await client.query(INSERT_SQL(dollar), insertParams(record));
      await client.query(AUDIT_SQL(dollar), auditParams(createdAudit(record)));
      await insertEventsPostgres(client, createdEvents(record));
      return record;
    });
  }

  async get(id: string): Promise<RaiseRequestRecord | undefined> {
    const row = (await this.pg.query<RequestRow>(REQUEST_SQL(dollar, ''), [id])).rows[0];
    return row && toRecord(row);
  }

  async list(query: RaiseRequestListQuery): Promise<RaiseRequestRecord[]> {
    const { sql, params } = listSql(dollar, query);
    return (await this.pg.query<RequestRow>(sql, params)).rows.map(toRecord);
  }

  decide(d: RaiseDecision): Promise<RaiseRequestRecord> {
    return this.pg.transaction(async (client: pg.PoolClient) => {
      // 1. the request's row: a second decision (any node) waits here for this one's commit,
      // then reads the state it wrote.
      const row = (await client.query<RequestRow>(REQUEST_SQL(dollar, ' FOR UPDATE'), [d.id])).rows[0];
      if (!row) throw notFound(d.id);
      const current = toRecord(row);
      if (current.state !== 'pending') throw alreadyDecided(current);
      let limits: { before: number; after: number } | null = null;
      if (d.decision === 'approve') {
        // 2. the key's row, as activations and setLimit lock it: the limit cannot move meanwhile.
        const key = (await client.query<KeyRow>(KEY_SQL(dollar, ' FOR UPDATE'), [current.keyId])).rows[0];
        limits = approval(current, key);
        await client.query(RAISE_SQL(dollar), [limits.after, current.keyId]);
      }
      const record = decided(current, d, limits);
      const { rowCount } = await client.query(DECIDE_SQL(dollar), decideParams(record));
      if (rowCount !== 1) throw new Error(`request ${d.id} changed under its row lock`);
      await client.query(AUDIT_SQL(dollar), auditParams(decidedAudit(record)));
      await insertEventsPostgres(client, decidedEvents(record));
      return record;
    });
  }
}
