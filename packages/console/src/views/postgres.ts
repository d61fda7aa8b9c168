import type { PgAccess } from '../pg-access.js';
import * as tables from '../store-rows.js';
import type { MachineFacts } from '../store.js';
import type { FleetViewStore } from './store.js';

const FACT_TYPES = ['text', 'text', 'text', 'text', 'bigint'];
const SET_FACTS = `UPDATE machines m SET ${tables.FACT_COLUMNS.map((c) => `${c} = f.${c}`).join(', ')}
  FROM unnest($1::integer[], ${FACT_TYPES.map((t, i) => `$${i + 2}::${t}[]`).join(', ')})
    AS f(id, ${tables.FACT_COLUMNS.join(', ')})
  WHERE m.id = f.id`;

/** PostgreSQL engine of FleetViewStore (pages, filters, sorts, counts and reports over the machines in SQL (100 000 machines)). */
export class PostgresFleetViews implements FleetViewStore {
  readonly #pg: PgAccess;

  constructor(pg: PgAccess) {
    this.#pg = pg;
  }

  async setMachineFacts(entries: readonly { machineId: number; facts: MachineFacts }[]): Promise<void> {
    if (entries.length === 0) return;
    const values = entries.map((e) => tables.factValues(e.facts));
    await this.#pg.query(SET_FACTS, [
      entries.map((e) => e.machineId),
      ...tables.FACT_COLUMNS.map((_, i) => values.map((v) => v[i])),
    ]);
  }
}
