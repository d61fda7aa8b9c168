import type { PgAccess } from '../pg-access.js';
import type { FleetViewStore } from './store.js';

/** PostgreSQL engine of FleetViewStore (pages, filters, sorts, counts and reports over the machines in SQL (100 000 machines)). */
export class PostgresFleetViews implements FleetViewStore {
  readonly #pg: PgAccess;

  constructor(pg: PgAccess) {
    this.#pg = pg;
  }

  /** Scaffolding: keeps the handle referenced until the first method uses it. */
  get access(): PgAccess {
    return this.#pg;
  }
}
