import type pg from 'pg';

/**
 * What the PostgreSQL store lends its sub-stores (views, web-state, proxy-files): its pool's
 * queries and transactions, with its error mapping (DATABASE_UNREACHABLE) applied.
 */
export interface PgAccess {
  query<R extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** BEGIN `mode` … COMMIT on one connection (ROLLBACK when `work` throws). */
  transaction<T>(work: (client: pg.PoolClient) => Promise<T>, mode?: string): Promise<T>;
}
