/**
 * Webhook endpoints and deliveries (migration 9; the events outbox is migration 5, events.ts).
 * An endpoint's signing secret is sealed with the authority's secret (sealing.ts): the
 * dispatcher must recover it to sign, a database copy alone cannot. A delivery is one event
 * for one endpoint; a redelivery is a new row of the next `generation` (the fan-out's row is
 * generation 0, so fanning out twice makes one row).
 */
export const WEBHOOKS_MIGRATION_SQLITE = `CREATE TABLE webhook_endpoints (
     id TEXT PRIMARY KEY, org_id TEXT, url TEXT NOT NULL, events TEXT NOT NULL,
     secret_sealed TEXT NOT NULL, secret_last5 TEXT NOT NULL, created_at INTEGER NOT NULL,
     disabled_at INTEGER, created_by TEXT NOT NULL);
   CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id);
   CREATE TABLE webhook_deliveries (
     id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id),
     event_id TEXT NOT NULL REFERENCES webhook_events(id), generation INTEGER NOT NULL DEFAULT 0,
     state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER,
     lease_until INTEGER, last_status INTEGER, last_error TEXT, delivered_at INTEGER,
     created_at INTEGER NOT NULL, UNIQUE (endpoint_id, event_id, generation));
   CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
   CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at, id);`;

export const WEBHOOKS_MIGRATION_POSTGRES = `CREATE TABLE webhook_endpoints (
     id TEXT PRIMARY KEY, org_id TEXT, url TEXT NOT NULL, events TEXT NOT NULL,
     secret_sealed TEXT NOT NULL, secret_last5 TEXT NOT NULL, created_at BIGINT NOT NULL,
     disabled_at BIGINT, created_by TEXT NOT NULL);
   CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id);
   CREATE TABLE webhook_deliveries (
     id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id),
     event_id TEXT NOT NULL REFERENCES webhook_events(id), generation INTEGER NOT NULL DEFAULT 0,
     state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at BIGINT,
     lease_until BIGINT, last_status INTEGER, last_error TEXT, delivered_at BIGINT,
     created_at BIGINT NOT NULL, UNIQUE (endpoint_id, event_id, generation));
   CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
   CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at, id);`;
