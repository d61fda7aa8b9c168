import type { PgAccess } from '../pg-access.js';
import type { ProxyFileStore } from './store.js';

/** PostgreSQL engine of ProxyFileStore (installation-ID files collected for isolated networks). */
export class PostgresProxyFiles implements ProxyFileStore {
  readonly #pg: PgAccess;

  constructor(pg: PgAccess) {
    this.#pg = pg;
  }

  /** Scaffolding: keeps the handle referenced until the first method uses it. */
  get access(): PgAccess {
    return this.#pg;
  }
}
