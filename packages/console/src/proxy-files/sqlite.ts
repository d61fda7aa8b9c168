import type Database from 'better-sqlite3';
import type { ProxyFileStore } from './store.js';

/** SQLite engine of ProxyFileStore (installation-ID files collected for isolated networks). */
export class SqliteProxyFiles implements ProxyFileStore {
  readonly #db: Database.Database;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Scaffolding: keeps the handle referenced until the first method uses it. */
  get database(): Database.Database {
    return this.#db;
  }
}
