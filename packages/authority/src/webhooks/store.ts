import type Database from 'better-sqlite3';
import type pg from 'pg';
import {
  auditInsertSql as AUDIT_SQL,
  auditParams,
  postgresPlaceholder as dollar,
  sqlitePlaceholder as q,
} from '../audit-sql.js';
import type { PostgresAccess } from '../revocation-store.js';
import type { AuditEntry } from '../store.js';
import type { OutboxEvent, WebhookEventType } from './events.js';
import type { DeliveryState } from './types.js';

/**
 * The webhook endpoints and deliveries (schema.ts), for both engines. The dispatcher fans an
 * event out to its endpoints in one transaction (the delivery rows and the event's
 * `fanned_out` together), then claims due deliveries with a lease: a node that dies while
 * sending holds it until it expires, then any node takes the delivery over; PostgreSQL claims
 * with FOR UPDATE SKIP LOCKED, so nodes claiming at once never take the same row.
 */

export interface EndpointRecord {
  readonly id: string;
  readonly orgId: string | null;
  readonly url: string;
  readonly events: readonly WebhookEventType[];
  readonly secretSealed: string;
  readonly secretLast5: string;
  readonly createdAt: number;
  readonly disabledAt: number | null;
  readonly createdBy: string;
}

export interface DeliveryRecord {
  readonly id: string;
  readonly endpointId: string;
  readonly eventId: string;
  readonly eventType: WebhookEventType;
  readonly generation: number;
  readonly state: DeliveryState;
  readonly attempts: number;
  readonly nextAttemptAt: number | null;
  readonly leaseUntil: number | null;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly deliveredAt: number | null;
  readonly createdAt: number;
}

/** A claimed delivery with what sending it needs. `attempts` already counts this attempt. */
export interface ClaimedDelivery extends DeliveryRecord {
  readonly event: OutboxEvent;
  readonly url: string;
  readonly secretSealed: string;
  readonly endpointDisabled: boolean;
  /** The endpoint's organisation (null: the publisher's own): its deliveries go to public addresses only. */
  readonly endpointOrgId: string | null;
}

export interface AttemptResult {
  readonly state: DeliveryState;
  readonly nextAttemptAt: number | null;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly deliveredAt: number | null;
}

export interface DeliveryQuery {
  readonly state?: DeliveryState;
  /** Newest first; the page after this (createdAt, id). */
  readonly before?: { createdAt: number; id: string };
  readonly limit: number;
}

export interface WebhookStore {
  addEndpoint(endpoint: EndpointRecord, audit: AuditEntry): Promise<void>;
  /** Endpoints not removed; `orgId` undefined: all, null: publisher-level only. */
  listEndpoints(orgId?: string | null): Promise<EndpointRecord[]>;
  getEndpoint(id: string): Promise<EndpointRecord | undefined>;
  /** Removes (disables) an endpoint: false when there is none or it was removed already. */
  disableEndpoint(id: string, at: number, audit: AuditEntry): Promise<boolean>;
  /** Fans up to `max` new events out to their endpoints' delivery rows; returns the events fanned out. */
  fanOut(now: number, max: number, newId: () => string): Promise<number>;
  /** Claims up to `max` pending deliveries due at `now` whose lease is free, leasing them until `leaseUntil`. */
  claimDue(now: number, leaseUntil: number, max: number): Promise<ClaimedDelivery[]>;
  /** Records an attempt's result if the lease taken is still this one; false when another node took it over. */
  finishAttempt(id: string, lease: number, result: AttemptResult): Promise<boolean>;
  listDeliveries(endpointId: string, query: DeliveryQuery): Promise<DeliveryRecord[]>;
  getDelivery(id: string): Promise<DeliveryRecord | undefined>;
  /** A new pending delivery of the same event to the same endpoint (next generation), due now. */
  redeliver(deliveryId: string, newId: string, now: number, audit: AuditEntry): Promise<DeliveryRecord | undefined>;
}

interface EndpointRow {
  id: string;
  org_id: string | null;
  url: string;
  events: string;
  secret_sealed: string;
  secret_last5: string;
  created_at: number | string;
  disabled_at: number | string | null;
  created_by: string;
}
interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  generation: number;
  state: string;
  attempts: number;
  next_attempt_at: number | string | null;
  lease_until: number | string | null;
  last_status: number | null;
  last_error: string | null;
  delivered_at: number | string | null;
  created_at: number | string;
}
interface ClaimedRow extends DeliveryRow {
  occurred_at: number | string;
  org_id: string | null;
  key_id: string | null;
  data: string;
  url: string;
  secret_sealed: string;
  disabled_at: number | string | null;
  endpoint_org_id: string | null;
}
interface EventRow {
  seq: number | string;
  id: string;
  type: string;
  org_id: string | null;
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));
const toEndpoint = (r: EndpointRow): EndpointRecord => ({
  id: r.id,
  orgId: r.org_id,
  url: r.url,
  events: JSON.parse(r.events) as WebhookEventType[],
  secretSealed: r.secret_sealed,
  secretLast5: r.secret_last5,
  createdAt: Number(r.created_at),
  disabledAt: num(r.disabled_at),
  createdBy: r.created_by,
});
const toDelivery = (r: DeliveryRow): DeliveryRecord => ({
  id: r.id,
  endpointId: r.endpoint_id,
  eventId: r.event_id,
  eventType: r.event_type as WebhookEventType,
  generation: Number(r.generation),
  state: r.state as DeliveryState,
  attempts: Number(r.attempts),
  nextAttemptAt: num(r.next_attempt_at),
  leaseUntil: num(r.lease_until),
  lastStatus: r.last_status === null ? null : Number(r.last_status),
  lastError: r.last_error,
  deliveredAt: num(r.delivered_at),
  createdAt: Number(r.created_at),
});
const toClaimed = (r: ClaimedRow): ClaimedDelivery => ({
  ...toDelivery(r),
  event: {
    id: r.event_id,
    type: r.event_type as WebhookEventType,
    occurredAt: Number(r.occurred_at),
    orgId: r.org_id,
    keyId: r.key_id,
    data: JSON.parse(r.data) as Record<string, unknown>,
  },
  url: r.url,
  secretSealed: r.secret_sealed,
  endpointDisabled: r.disabled_at !== null,
  endpointOrgId: r.endpoint_org_id,
});

/** Which endpoints hear an event: publisher-level ones and its organisation's, for its type. */
export function endpointsFor(event: { type: string; org_id: string | null }, endpoints: readonly EndpointRecord[]) {
  return endpoints.filter(
    (e) =>
      e.disabledAt === null &&
      (e.orgId === null || e.orgId === event.org_id) &&
      (e.events as readonly string[]).includes(event.type),
  );
}

const ENDPOINT_COLUMNS = 'id, org_id, url, events, secret_sealed, secret_last5, created_at, disabled_at, created_by';
const INSERT_ENDPOINT = (p: (n: number) => string) =>
  `INSERT INTO webhook_endpoints (${ENDPOINT_COLUMNS}) VALUES (${[1, 2, 3, 4, 5, 6, 7, 8, 9].map(p).join(', ')})`;
const endpointParams = (e: EndpointRecord) => [
  e.id,
  e.orgId,
  e.url,
  JSON.stringify(e.events),
  e.secretSealed,
  e.secretLast5,
  e.createdAt,
  e.disabledAt,
  e.createdBy,
];
const DELIVERY_SELECT = `SELECT d.id, d.endpoint_id, d.event_id, e.type AS event_type, d.generation, d.state, d.attempts,
    d.next_attempt_at, d.lease_until, d.last_status, d.last_error, d.delivered_at, d.created_at
  FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id`;
const CLAIMED_SELECT = `SELECT d.id, d.endpoint_id, d.event_id, e.type AS event_type, d.generation, d.state, d.attempts,
    d.next_attempt_at, d.lease_until, d.last_status, d.last_error, d.delivered_at, d.created_at,
    e.occurred_at, e.org_id, e.key_id, e.data, p.url, p.secret_sealed, p.disabled_at, p.org_id AS endpoint_org_id`;
const FINISH_SQL = (p: (n: number) => string) =>
  `UPDATE webhook_deliveries SET state = ${p(1)}, next_attempt_at = ${p(2)}, last_status = ${p(3)}, last_error = ${p(4)},
     delivered_at = ${p(5)}, lease_until = NULL WHERE id = ${p(6)} AND lease_until = ${p(7)} AND state = 'pending'`;
const finishParams = (id: string, lease: number, r: AttemptResult) => [
  r.state,
  r.nextAttemptAt,
  r.lastStatus,
  r.lastError,
  r.deliveredAt,
  id,
  lease,
];
/** Whether any event waits for its fan-out (each engine's form, so that its index serves it). */
const PENDING_EVENT_SQLITE = 'SELECT 1 AS pending FROM webhook_events WHERE fanned_out = 0 LIMIT 1';
const PENDING_EVENT_POSTGRES = 'SELECT 1 AS pending FROM webhook_events WHERE NOT fanned_out LIMIT 1';
const DUE_SQL = (p: (n: number) => string) =>
  `SELECT 1 AS due FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ${p(1)}
     AND (lease_until IS NULL OR lease_until <= ${p(2)}) LIMIT 1`;
const INSERT_DELIVERY = (p: (n: number) => string) =>
  `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, generation, state, attempts, next_attempt_at, created_at)
   VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, 'pending', 0, ${p(5)}, ${p(6)}) ON CONFLICT (endpoint_id, event_id, generation) DO NOTHING`;
const listSql = (p: (n: number) => string, q: DeliveryQuery) => {
  const where = ['d.endpoint_id = ' + p(1)];
  const params: unknown[] = [];
  let n = 2;
  if (q.state) {
    where.push(`d.state = ${p(n++)}`);
    params.push(q.state);
  }
  if (q.before) {
    where.push(`(d.created_at < ${p(n)} OR (d.created_at = ${p(n + 1)} AND d.id < ${p(n + 2)}))`);
    n += 3;
    params.push(q.before.createdAt, q.before.createdAt, q.before.id);
  }
  return {
    sql: `${DELIVERY_SELECT} WHERE ${where.join(' AND ')} ORDER BY d.created_at DESC, d.id DESC LIMIT ${p(n)}`,
    params: [...params, q.limit],
  };
};

export class SqliteWebhookStore implements WebhookStore {
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

  #write<T>(work: () => T): Promise<T> {
    return this.#guard(() => this.serial(async () => this.db.transaction(work).immediate()));
  }

  addEndpoint(endpoint: EndpointRecord, audit: AuditEntry): Promise<void> {
    return this.#write(() => {
      this.db.prepare(INSERT_ENDPOINT(q)).run(...endpointParams(endpoint));
      this.db.prepare(AUDIT_SQL(q)).run(...auditParams(audit));
    });
  }

  listEndpoints(orgId?: string | null): Promise<EndpointRecord[]> {
    return this.#guard(async () => {
      const base = `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE disabled_at IS NULL`;
      const rows =
        orgId === undefined
          ? this.db.prepare(`${base} ORDER BY created_at, id`).all()
          : orgId === null
            ? this.db.prepare(`${base} AND org_id IS NULL ORDER BY created_at, id`).all()
            : this.db.prepare(`${base} AND org_id = ? ORDER BY created_at, id`).all(orgId);
      return (rows as EndpointRow[]).map(toEndpoint);
    });
  }

  getEndpoint(id: string): Promise<EndpointRecord | undefined> {
    return this.#guard(async () => {
      const row = this.db.prepare(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?`).get(id) as
        EndpointRow | undefined;
      return row && toEndpoint(row);
    });
  }

  disableEndpoint(id: string, at: number, audit: AuditEntry): Promise<boolean> {
    return this.#write(() => {
      const r = this.db
        .prepare('UPDATE webhook_endpoints SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL')
        .run(at, id);
      if (r.changes === 1) this.db.prepare(AUDIT_SQL(q)).run(...auditParams(audit));
      return r.changes === 1;
    });
  }

  async fanOut(now: number, max: number, newId: () => string): Promise<number> {
    // The loop asks every second: nothing new is answered by a read, without the write lock.
    if (!(await this.#guard(async () => this.db.prepare(PENDING_EVENT_SQLITE).get()))) return 0;
    return this.#write(() => {
      const events = this.db
        .prepare('SELECT seq, id, type, org_id FROM webhook_events WHERE fanned_out = 0 ORDER BY seq LIMIT ?')
        .all(max) as EventRow[];
      if (events.length === 0) return 0;
      const endpoints = (
        this.db
          .prepare(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE disabled_at IS NULL`)
          .all() as EndpointRow[]
      ).map(toEndpoint);
      const insert = this.db.prepare(INSERT_DELIVERY(q));
      const mark = this.db.prepare('UPDATE webhook_events SET fanned_out = 1 WHERE seq = ?');
      for (const e of events) {
        for (const p of endpointsFor(e, endpoints)) insert.run(newId(), p.id, e.id, 0, now, now);
        mark.run(e.seq);
      }
      return events.length;
    });
  }

  async claimDue(now: number, leaseUntil: number, max: number): Promise<ClaimedDelivery[]> {
    if (!(await this.#guard(async () => this.db.prepare(DUE_SQL(q)).get(now, now)))) return [];
    return this.#write(() => {
      const ids = this.db
        .prepare(
          `UPDATE webhook_deliveries SET lease_until = ?, attempts = attempts + 1
           WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?
                          AND (lease_until IS NULL OR lease_until <= ?) ORDER BY next_attempt_at LIMIT ?)
           RETURNING id`,
        )
        .all(leaseUntil, now, now, max) as { id: string }[];
      const get = this.db.prepare(
        `${CLAIMED_SELECT} FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
         JOIN webhook_endpoints p ON p.id = d.endpoint_id WHERE d.id = ?`,
      );
      return ids.map(({ id }) => toClaimed(get.get(id) as ClaimedRow));
    });
  }

  finishAttempt(id: string, lease: number, result: AttemptResult): Promise<boolean> {
    return this.#write(() => this.db.prepare(FINISH_SQL(q)).run(...finishParams(id, lease, result)).changes === 1);
  }

  listDeliveries(endpointId: string, query: DeliveryQuery): Promise<DeliveryRecord[]> {
    return this.#guard(async () => {
      const { sql, params } = listSql(q, query);
      return (this.db.prepare(sql).all(endpointId, ...params) as DeliveryRow[]).map(toDelivery);
    });
  }

  getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    return this.#guard(async () => {
      const row = this.db.prepare(`${DELIVERY_SELECT} WHERE d.id = ?`).get(id) as DeliveryRow | undefined;
      return row && toDelivery(row);
    });
  }

  redeliver(deliveryId: string, newId: string, now: number, audit: AuditEntry): Promise<DeliveryRecord | undefined> {
    return this.#write(() => {
      const old = this.db
        .prepare('SELECT endpoint_id, event_id FROM webhook_deliveries WHERE id = ?')
        .get(deliveryId) as { endpoint_id: string; event_id: string } | undefined;
      if (!old) return undefined;
      const { g } = this.db
        .prepare('SELECT max(generation) AS g FROM webhook_deliveries WHERE endpoint_id = ? AND event_id = ?')
        .get(old.endpoint_id, old.event_id) as { g: number };
      this.db.prepare(INSERT_DELIVERY(q)).run(newId, old.endpoint_id, old.event_id, g + 1, now, now);
      this.db.prepare(AUDIT_SQL(q)).run(...auditParams(audit));
      return toDelivery(this.db.prepare(`${DELIVERY_SELECT} WHERE d.id = ?`).get(newId) as DeliveryRow);
    });
  }
}

export class PostgresWebhookStore implements WebhookStore {
  constructor(private readonly pg: PostgresAccess) {}

  async addEndpoint(endpoint: EndpointRecord, audit: AuditEntry): Promise<void> {
    await this.pg.transaction(async (client) => {
      await client.query(INSERT_ENDPOINT(dollar), endpointParams(endpoint));
      await client.query(AUDIT_SQL(dollar), auditParams(audit));
    });
  }

  async listEndpoints(orgId?: string | null): Promise<EndpointRecord[]> {
    const base = `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE disabled_at IS NULL`;
    const { rows } =
      orgId === undefined
        ? await this.pg.query<EndpointRow>(`${base} ORDER BY created_at, id`)
        : orgId === null
          ? await this.pg.query<EndpointRow>(`${base} AND org_id IS NULL ORDER BY created_at, id`)
          : await this.pg.query<EndpointRow>(`${base} AND org_id = $1 ORDER BY created_at, id`, [orgId]);
    return rows.map(toEndpoint);
  }

  async getEndpoint(id: string): Promise<EndpointRecord | undefined> {
    const { rows } = await this.pg.query<EndpointRow>(
      `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1`,
      [id],
    );
    return rows[0] && toEndpoint(rows[0]);
  }

  async disableEndpoint(id: string, at: number, audit: AuditEntry): Promise<boolean> {
    return this.pg.transaction(async (client) => {
      const r = await client.query(
        'UPDATE webhook_endpoints SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL',
        [at, id],
      );
      if (r.rowCount === 1) await client.query(AUDIT_SQL(dollar), auditParams(audit));
      return r.rowCount === 1;
    });
  }

  async fanOut(now: number, max: number, newId: () => string): Promise<number> {
    if ((await this.pg.query(PENDING_EVENT_POSTGRES)).rows.length === 0) return 0; // no transaction for nothing
    return this.pg.transaction(async (client: pg.PoolClient) => {
      // Another node fanning out at once skips these events (and takes the next ones).
      const { rows: events } = await client.query<EventRow>(
        'SELECT seq, id, type, org_id FROM webhook_events WHERE NOT fanned_out ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED',
        [max],
      );
      if (events.length === 0) return 0;
      const { rows } = await client.query<EndpointRow>(
        `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE disabled_at IS NULL`,
      );
      const endpoints = rows.map(toEndpoint);
      const ids: string[] = [];
      const endpointIds: string[] = [];
      const eventIds: string[] = [];
      for (const e of events) {
        for (const p of endpointsFor(e, endpoints)) {
          ids.push(newId());
          endpointIds.push(p.id);
          eventIds.push(e.id);
        }
      }
      if (ids.length > 0) {
        await client.query(
          `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, generation, state, attempts, next_attempt_at, created_at)
           SELECT i, p, e, 0, 'pending', 0, $4, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS x(i, p, e)
           ON CONFLICT (endpoint_id, event_id, generation) DO NOTHING`,
          [ids, endpointIds, eventIds, now],
        );
      }
      await client.query('UPDATE webhook_events SET fanned_out = true WHERE seq = ANY($1::bigint[])', [
        events.map((e) => e.seq),
      ]);
      return events.length;
    });
  }

  async claimDue(now: number, leaseUntil: number, max: number): Promise<ClaimedDelivery[]> {
    const { rows } = await this.pg.query<ClaimedRow>(
      `WITH c AS (
         UPDATE webhook_deliveries SET lease_until = $1, attempts = attempts + 1
         WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $2
                        AND (lease_until IS NULL OR lease_until <= $2) ORDER BY next_attempt_at LIMIT $3
                        FOR UPDATE SKIP LOCKED)
         RETURNING *)
       ${CLAIMED_SELECT} FROM c d JOIN webhook_events e ON e.id = d.event_id JOIN webhook_endpoints p ON p.id = d.endpoint_id`,
      [leaseUntil, now, max],
    );
    return rows.map(toClaimed);
  }

  async finishAttempt(id: string, lease: number, result: AttemptResult): Promise<boolean> {
    const r = await this.pg.query(FINISH_SQL(dollar), finishParams(id, lease, result));
    return r.rowCount === 1;
  }

  async listDeliveries(endpointId: string, query: DeliveryQuery): Promise<DeliveryRecord[]> {
    const { sql, params } = listSql(dollar, query);
    return (await this.pg.query<DeliveryRow>(sql, [endpointId, ...params])).rows.map(toDelivery);
  }

  async getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    const { rows } = await this.pg.query<DeliveryRow>(`${DELIVERY_SELECT} WHERE d.id = $1`, [id]);
    return rows[0] && toDelivery(rows[0]);
  }

  async redeliver(
    deliveryId: string,
    newId: string,
    now: number,
    audit: AuditEntry,
  ): Promise<DeliveryRecord | undefined> {
    return this.pg.transaction(async (client) => {
      const { rows } = await client.query<{ endpoint_id: string; event_id: string }>(
        'SELECT endpoint_id, event_id FROM webhook_deliveries WHERE id = $1',
        [deliveryId],
      );
      const old = rows[0];
      if (!old) return undefined;
      // Two redeliveries of one event at once take the next generation one after the other.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${old.endpoint_id}/${old.event_id}`]);
      const { rows: g } = await client.query<{ g: number }>(
        'SELECT max(generation) AS g FROM webhook_deliveries WHERE endpoint_id = $1 AND event_id = $2',
        [old.endpoint_id, old.event_id],
      );
      await client.query(INSERT_DELIVERY(dollar), [
        newId,
        old.endpoint_id,
        old.event_id,
        Number(g[0]?.g ?? 0) + 1,
        now,
        now,
      ]);
      await client.query(AUDIT_SQL(dollar), auditParams(audit));
      const { rows: d } = await client.query<DeliveryRow>(`${DELIVERY_SELECT} WHERE d.id = $1`, [newId]);
      return toDelivery(d[0] as DeliveryRow);
    });
  }
}
