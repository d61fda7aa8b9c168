import { join } from 'node:path';
import { PostgresConsoleStore } from './postgres-store.js';
import { SqliteConsoleStore } from './sqlite-store.js';
import type { ConsoleStore } from './store.js';

/** The SQLite engine's file in the console's data directory. */
export const DB_FILE = 'console.db';

/**
 * Opens the console's store: PostgreSQL when a `postgres://` URL is given (its schema migrated
 * first; DATABASE_URL_INVALID / DATABASE_UNREACHABLE otherwise), else SQLite in `console.db`
 * of the data directory.
 */
export async function openConsoleStore(dataDir: string, databaseUrl?: string): Promise<ConsoleStore> {
  if (databaseUrl === undefined) return new SqliteConsoleStore(join(dataDir, DB_FILE));
  return PostgresConsoleStore.open(databaseUrl);
}
