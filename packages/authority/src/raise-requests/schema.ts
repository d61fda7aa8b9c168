/**
 * Limit-raise requests (migration 8). Owner: the raise-requests module. One row per request;
 * its `state` leaves `pending` once, under the row's lock, in the transaction that raises the
 * key's limit (raise-requests/store.ts). Times are ms since the epoch.
 */
export const RAISE_REQUESTS_MIGRATION_SQLITE = `CREATE TABLE raise_requests (
     id TEXT PRIMARY KEY, org_id TEXT NOT NULL, key_id TEXT NOT NULL REFERENCES product_keys(id),
     key_last5 TEXT NOT NULL, additional INTEGER NOT NULL, reason TEXT NOT NULL,
     state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'declined')),
     requested_by TEXT NOT NULL, requested_at INTEGER NOT NULL,
     decided_by TEXT, decided_at INTEGER, decision_reason TEXT,
     limit_before INTEGER, limit_after INTEGER);
   CREATE INDEX raise_requests_org ON raise_requests (org_id, requested_at, id);
   CREATE INDEX raise_requests_state ON raise_requests (state, requested_at, id);
   CREATE INDEX raise_requests_at ON raise_requests (requested_at, id);
   CREATE INDEX raise_requests_key ON raise_requests (key_id);`;

export const RAISE_REQUESTS_MIGRATION_POSTGRES = `CREATE TABLE raise_requests (
     id TEXT PRIMARY KEY, org_id TEXT NOT NULL, key_id TEXT NOT NULL REFERENCES product_keys(id),
     key_last5 TEXT NOT NULL, additional INTEGER NOT NULL, reason TEXT NOT NULL,
     state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'declined')),
     requested_by TEXT NOT NULL, requested_at BIGINT NOT NULL,
     decided_by TEXT, decided_at BIGINT, decision_reason TEXT,
     limit_before INTEGER, limit_after INTEGER);
   CREATE INDEX raise_requests_org ON raise_requests (org_id, requested_at, id);
   CREATE INDEX raise_requests_state ON raise_requests (state, requested_at, id);
   CREATE INDEX raise_requests_at ON raise_requests (requested_at, id);
   CREATE INDEX raise_requests_key ON raise_requests (key_id);`;
