import type Database from 'better-sqlite3';
import * as tables from '../store-rows.js';
import type { MachineFacts } from '../store.js';
import type { FleetViewStore } from './store.js';

const SET_FACTS = `UPDATE machines SET ${tables.FACT_COLUMNS.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`;

/** SQLite engine of FleetViewStore (pages, filters, sorts, counts and reports over the machines in SQL (100 000 machines)). */
export class SqliteFleetViews implements FleetViewStore {
  readonly #db: Database.Database;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  async setMachineFacts(entries: readonly { machineId: number; facts: MachineFacts }[]): Promise<void> {
    if (entries.length === 0) return;
    const update = this.#db.prepare(SET_FACTS);
    this.#db.transaction(() => {
      for (const e of entries) update.run(...tables.factValues(e.facts), e.machineId);
    })();
  }
}
