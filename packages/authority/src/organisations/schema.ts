/**
 * Organisations, key ownership, issued artefacts, audit columns (migration 6). Every key of a
 * database from before lands in `org_default` (the column's default); lists page by keyset on
 * the indexes made here, so a page costs the same on the first and the thousandth page.
 * Every activation writes an audit row, so the audit log's indexes are kept few and cheap to
 * extend: by organisation; by key and by actor only for rows with an actor (what people and
 * tokens did: an activation has none, and indexing its key — a random spot in the index per
 * row — cost 18 % of SQLite's throughput over 1 000 keys); a key's activation rows are found
 * through its organisation's rows; a time filter walks the rows newest first by id.
 */
export const ORGANISATIONS_MIGRATION_SQLITE = `CREATE TABLE organisations (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, external_ref TEXT, contacts TEXT NOT NULL DEFAULT '[]',
     created_at INTEGER NOT NULL);
   CREATE INDEX organisations_created ON organisations (created_at, id);
   INSERT INTO organisations (id, name, external_ref, contacts, created_at)
     VALUES ('org_default', 'Default organisation', NULL, '[]', 0);
   ALTER TABLE product_keys ADD COLUMN org_id TEXT NOT NULL DEFAULT 'org_default';
   ALTER TABLE product_keys ADD COLUMN note TEXT;
   ALTER TABLE product_keys ADD COLUMN key_sealed TEXT;
   ALTER TABLE product_keys ADD COLUMN refused_event_at INTEGER;
   CREATE INDEX product_keys_org ON product_keys (org_id, created_at, id);
   CREATE INDEX product_keys_created ON product_keys (created_at, id);
   CREATE INDEX product_keys_last5 ON product_keys (last5, org_id);
   CREATE TABLE issued_artefacts (
     id TEXT PRIMARY KEY, org_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
     groups TEXT NOT NULL, subject_key_id TEXT, created_at INTEGER NOT NULL, expires_at INTEGER,
     document TEXT NOT NULL);
   CREATE INDEX issued_artefacts_org ON issued_artefacts (org_id, created_at, id);
   ALTER TABLE audit_log ADD COLUMN org_id TEXT;
   ALTER TABLE audit_log ADD COLUMN key_id TEXT;
   ALTER TABLE audit_log ADD COLUMN actor TEXT;
   CREATE INDEX audit_log_org ON audit_log (org_id, id);
   CREATE INDEX audit_log_key ON audit_log (key_id, id) WHERE actor IS NOT NULL;
   CREATE INDEX audit_log_actor ON audit_log (actor, id) WHERE actor IS NOT NULL;`;

export const ORGANISATIONS_MIGRATION_POSTGRES = `CREATE TABLE organisations (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, external_ref TEXT, contacts TEXT NOT NULL DEFAULT '[]',
     created_at BIGINT NOT NULL);
   CREATE INDEX organisations_created ON organisations (created_at, id);
   INSERT INTO organisations (id, name, external_ref, contacts, created_at)
     VALUES ('org_default', 'Default organisation', NULL, '[]', 0);
   ALTER TABLE product_keys ADD COLUMN org_id TEXT NOT NULL DEFAULT 'org_default';
   ALTER TABLE product_keys ADD COLUMN note TEXT;
   ALTER TABLE product_keys ADD COLUMN key_sealed TEXT;
   ALTER TABLE product_keys ADD COLUMN refused_event_at BIGINT;
   CREATE INDEX product_keys_org ON product_keys (org_id, created_at, id);
   CREATE INDEX product_keys_created ON product_keys (created_at, id);
   CREATE INDEX product_keys_last5 ON product_keys (last5, org_id);
   CREATE TABLE issued_artefacts (
     id TEXT PRIMARY KEY, org_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
     groups TEXT NOT NULL, subject_key_id TEXT, created_at BIGINT NOT NULL, expires_at BIGINT,
     document TEXT NOT NULL);
   CREATE INDEX issued_artefacts_org ON issued_artefacts (org_id, created_at, id);
   ALTER TABLE audit_log ADD COLUMN org_id TEXT;
   ALTER TABLE audit_log ADD COLUMN key_id TEXT;
   ALTER TABLE audit_log ADD COLUMN actor TEXT;
   CREATE INDEX audit_log_org ON audit_log (org_id, id);
   CREATE INDEX audit_log_key ON audit_log (key_id, id) WHERE actor IS NOT NULL;
   CREATE INDEX audit_log_actor ON audit_log (actor, id) WHERE actor IS NOT NULL;`;
