import type { PgAccess } from '../pg-access.js';
import type { WebStateStore } from './store.js';

/** PostgreSQL engine of WebStateStore (web sessions and jobs that survive a restart). */
export class PostgresWebState implements WebStateStore {
  readonly #pg: PgAccess;

  constructor(pg: PgAccess) {
    this.#pg = pg;
  }

  /** Scaffolding: keeps the handle referenced until the first method uses it. */
  get access(): PgAccess {
    return this.#pg;
  }
}
