/**
 * The key ring's tables (roots and online keys), shared by every node of an authority: the
 * third schema migration of both engines. Times are ms since the epoch.
 *
 * ring_roots: one row per root, `ordinal` 1, 2, … in order of creation; `state` prepared |
 * published | current | previous | retired; `transition` the record (signed by the root before
 * and by this one) that introduced it, null for the first; `signer` where its private key is
 * (`file` — roots/<keyId>.pem or the legacy root-signing-key.pem — or the PKCS#11 spec without PIN).
 *
 * ring_online_keys: one row per delegated online key, `sequence` 0, 1, …; its private key sealed
 * under the key-hash secret (sealing.ts), its delegation certificate by `issuer_key_id`; `state`
 * next | current | previous (prepared: made by a prepare of an older volact, never signs).
 */
export const KEY_RING_MIGRATION_SQLITE = `CREATE TABLE ring_roots (
     key_id TEXT PRIMARY KEY, ordinal INTEGER NOT NULL UNIQUE, public_key BLOB NOT NULL, state TEXT NOT NULL,
     signer TEXT NOT NULL, valid_from INTEGER NOT NULL, valid_until INTEGER, transition BLOB,
     created_at INTEGER NOT NULL, changed_at INTEGER NOT NULL);
   CREATE TABLE ring_online_keys (
     sequence INTEGER PRIMARY KEY, key_id TEXT NOT NULL UNIQUE, public_key BLOB NOT NULL,
     private_sealed TEXT NOT NULL, issuer_key_id TEXT NOT NULL, delegation BLOB NOT NULL,
     purposes INTEGER NOT NULL, valid_from INTEGER NOT NULL, valid_until INTEGER NOT NULL,
     state TEXT NOT NULL, created_at INTEGER NOT NULL, changed_at INTEGER NOT NULL);`;

export const KEY_RING_MIGRATION_POSTGRES = `CREATE TABLE ring_roots (
     key_id TEXT PRIMARY KEY, ordinal INTEGER NOT NULL UNIQUE, public_key BYTEA NOT NULL, state TEXT NOT NULL,
     signer TEXT NOT NULL, valid_from BIGINT NOT NULL, valid_until BIGINT, transition BYTEA,
     created_at BIGINT NOT NULL, changed_at BIGINT NOT NULL);
   CREATE TABLE ring_online_keys (
     sequence INTEGER PRIMARY KEY, key_id TEXT NOT NULL UNIQUE, public_key BYTEA NOT NULL,
     private_sealed TEXT NOT NULL, issuer_key_id TEXT NOT NULL, delegation BYTEA NOT NULL,
     purposes INTEGER NOT NULL, valid_from BIGINT NOT NULL, valid_until BIGINT NOT NULL,
     state TEXT NOT NULL, created_at BIGINT NOT NULL, changed_at BIGINT NOT NULL);`;
