import type Database from 'better-sqlite3';
import type { FleetViewStore } from './store.js';

/** SQLite engine of FleetViewStore (pages, filters, sorts, counts and reports over the machines in SQL (100 000 machines)). */
export class SqliteFleetViews implements FleetViewStore {
  readonly #db: Database.Database;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Scaffolding: keeps the handle referenced until the first method uses it. */
  get database(): Database.Database {
    return this.#db;
  }
}
