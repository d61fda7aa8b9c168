import { join } from 'node:path';
import { DB_FILE, secureDataDir } from './data-dir.js';
import { invalidField } from './errors.js';
import { PostgresAuthorityStore } from './postgres-store.js';
import { SqliteAuthorityStore } from './sqlite-store.js';
import type { AuthorityStore } from './store.js';

/**
 * Where the records live: PostgreSQL when a database URL is given (many nodes on one
 * database), otherwise SQLite in the data directory. The root key stays in the data directory.
 */
export function openAuthorityStore(dataDir: string, databaseUrl: string | undefined): AuthorityStore {
  if (databaseUrl === undefined) {
    const store = new SqliteAuthorityStore(join(dataDir, DB_FILE));
    secureDataDir(dataDir); // the database (and its -wal, -shm) SQLite just made with the umask's mode
    return store;
  }
  checkDatabaseUrl(databaseUrl);
  return new PostgresAuthorityStore(databaseUrl);
}

/** Refuses what is not a PostgreSQL URL, before anything is made with it. */
export function checkDatabaseUrl(databaseUrl: string): void {
  if (!/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw invalidField('databaseUrl', `the database URL must be a postgres:// URL, got "${databaseUrl.slice(0, 40)}"`);
  }
}
