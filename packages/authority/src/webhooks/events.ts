import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type pg from 'pg';

/**
 * The outbox (docs/portal.md "Webhooks"): every change a webhook reports writes its event row
 * in the same transaction as the change, so an event is never lost nor invented by a crash
 * between the two; the dispatcher (webhooks/dispatcher.ts) delivers from here, at least once.
 */

export const WEBHOOK_EVENT_TYPES = [
  'key.usage',
  'key.limit_raised',
  'key.revoked',
  'host.activated',
  'activation.refused',
  'raise_request.created',
  'raise_request.decided',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Usage thresholds (percent of a key's limit) that raise `key.usage` once each when crossed. */
export const USAGE_THRESHOLDS = [80, 90, 100] as const;

/** `activation.refused` is sent at most once per key per this many ms. */
export const REFUSED_EVENT_INTERVAL_MS = 60 * 60 * 1000;

export interface OutboxEvent {
  /** `evt_` + 24 hex: receivers deduplicate on it (delivery is at least once). */
  readonly id: string;
  readonly type: WebhookEventType;
  readonly occurredAt: number;
  /** The organisation whose endpoints hear it (publisher-level endpoints hear every event). */
  readonly orgId: string | null;
  readonly keyId: string | null;
  /** What happened, in the event's own fields; never a secret (a key appears as its last five characters). */
  readonly data: Readonly<Record<string, unknown>>;
}

export const newEventId = (): string => `evt_${randomBytes(12).toString('hex')}`;

export function outboxEvent(
  type: WebhookEventType,
  at: number,
  scope: { orgId: string | null; keyId?: string | null },
  data: Record<string, unknown>,
): OutboxEvent {
  return { id: newEventId(), type, occurredAt: at, orgId: scope.orgId, keyId: scope.keyId ?? null, data };
}

export const EVENTS_MIGRATION_SQLITE = `CREATE TABLE webhook_events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
     occurred_at INTEGER NOT NULL, org_id TEXT, key_id TEXT, data TEXT NOT NULL,
     fanned_out INTEGER NOT NULL DEFAULT 0);
   CREATE INDEX webhook_events_pending ON webhook_events (fanned_out, seq);
   CREATE INDEX webhook_events_key ON webhook_events (key_id, type, occurred_at);`;

export const EVENTS_MIGRATION_POSTGRES = `CREATE TABLE webhook_events (
     seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
     occurred_at BIGINT NOT NULL, org_id TEXT, key_id TEXT, data TEXT NOT NULL,
     fanned_out BOOLEAN NOT NULL DEFAULT false);
   CREATE INDEX webhook_events_pending ON webhook_events (seq) WHERE NOT fanned_out;
   CREATE INDEX webhook_events_key ON webhook_events (key_id, type, occurred_at);`;

const params = (e: OutboxEvent): unknown[] => [e.id, e.type, e.occurredAt, e.orgId, e.keyId, JSON.stringify(e.data)];

/** Writes events inside the caller's SQLite transaction (the change's own). */
export function insertEventsSqlite(db: Database.Database, events: readonly OutboxEvent[]): void {
  if (events.length === 0) return;
  const insert = db.prepare(
    'INSERT INTO webhook_events (id, type, occurred_at, org_id, key_id, data) VALUES (?, ?, ?, ?, ?, ?)',
  );
  for (const e of events) insert.run(...params(e));
}

/** Writes events on the caller's PostgreSQL connection, inside its open transaction. */
export async function insertEventsPostgres(client: pg.PoolClient, events: readonly OutboxEvent[]): Promise<void> {
  if (events.length === 0) return;
  const values: unknown[] = [];
  const rows = events.map((e, i) => {
    values.push(...params(e));
    const b = i * 6;
    return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6})`;
  });
  await client.query(
    `INSERT INTO webhook_events (id, type, occurred_at, org_id, key_id, data) VALUES ${rows.join(', ')}`,
    values,
  );
}

/**
 * The `key.usage` events an installation decision raises: one per threshold crossed going
 * from `before` to `after` activations of `limit` (a batch that jumps 79 → 91 % raises 80 and 90).
 */
export function usageThresholdsCrossed(before: number, after: number, limit: number): number[] {
  if (limit <= 0 || after <= before) return [];
  return USAGE_THRESHOLDS.filter((t) => before * 100 < t * limit && after * 100 >= t * limit);
}
