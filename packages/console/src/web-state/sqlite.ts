import type Database from 'better-sqlite3';
import type { WebStateStore } from './store.js';

/** SQLite engine of WebStateStore (web sessions and jobs that survive a restart). */
export class SqliteWebState implements WebStateStore {
  readonly #db: Database.Database;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Scaffolding: keeps the handle referenced until the first method uses it. */
  get database(): Database.Database {
    return this.#db;
  }
}
