/**
 * Users, sessions, API tokens, sign-in throttling (migration 7). Owner: the access module.
 * Times are ms since the epoch. Secrets are stored only as SHA-256 (sessions, tokens) or scrypt
 * (passwords). `sign_in_failures` counts failed sign-ins per account: keyed by a hash of the
 * lower-cased email, whether or not a user has it (a lock must not tell an attacker which
 * emails exist), shared by every node and kept across restarts.
 */
export const ACCESS_MIGRATION_SQLITE = `CREATE TABLE users (
     id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, role TEXT NOT NULL, org_id TEXT,
     password_hash TEXT NOT NULL, created_at INTEGER NOT NULL, disabled_at INTEGER, last_sign_in_at INTEGER);
   CREATE INDEX users_org ON users (org_id, email);
   CREATE TABLE sessions (
     id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL, created_at INTEGER NOT NULL,
     last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER, source TEXT);
   CREATE INDEX sessions_user ON sessions (user_id);
   CREATE TABLE api_tokens (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE, last5 TEXT NOT NULL,
     scopes TEXT NOT NULL, created_by TEXT, org_id TEXT, created_at INTEGER NOT NULL, last_used_at INTEGER,
     expires_at INTEGER, revoked_at INTEGER);
   CREATE INDEX api_tokens_org ON api_tokens (org_id, created_at);
   CREATE INDEX api_tokens_creator ON api_tokens (created_by, created_at);
   CREATE TABLE sign_in_failures (
     subject TEXT PRIMARY KEY, failed_count INTEGER NOT NULL, first_failed_at INTEGER NOT NULL, locked_until INTEGER);`;

export const ACCESS_MIGRATION_POSTGRES = `CREATE TABLE users (
     id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, role TEXT NOT NULL, org_id TEXT,
     password_hash TEXT NOT NULL, created_at BIGINT NOT NULL, disabled_at BIGINT, last_sign_in_at BIGINT);
   CREATE INDEX users_org ON users (org_id, email);
   CREATE TABLE sessions (
     id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL, created_at BIGINT NOT NULL,
     last_seen_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT, source TEXT);
   CREATE INDEX sessions_user ON sessions (user_id);
   CREATE TABLE api_tokens (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE, last5 TEXT NOT NULL,
     scopes TEXT NOT NULL, created_by TEXT, org_id TEXT, created_at BIGINT NOT NULL, last_used_at BIGINT,
     expires_at BIGINT, revoked_at BIGINT);
   CREATE INDEX api_tokens_org ON api_tokens (org_id, created_at);
   CREATE INDEX api_tokens_creator ON api_tokens (created_by, created_at);
   CREATE TABLE sign_in_failures (
     subject TEXT PRIMARY KEY, failed_count INTEGER NOT NULL, first_failed_at BIGINT NOT NULL, locked_until BIGINT);`;
