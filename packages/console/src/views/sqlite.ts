import type Database from 'better-sqlite3';
import type { LicenceState } from '@volact/core';
import * as tables from '../store-rows.js';
import type { MachineFacts, OperationRecord } from '../store.js';
import { REPORT_ROW_COLUMNS, reportRowOf, toView, type ViewRow } from './rows.js';
import * as sql from './sql.js';
import type { FleetViewStore, MachinePageQuery, MachineView, ReportMachineRow } from './store.js';

const SET_FACTS = `UPDATE machines SET ${tables.FACT_COLUMNS.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`;
const SQLITE: sql.Dialect = { engine: 'sqlite' };
/** At most this many machines matching `q`: a page sorts them all (sql.machineWhere searchById). */
const FEW_MATCHES = 10_000;

/**
 * A page of a report reads the display-name index in order and stops at the page's end: its
 * state terms are kept off the state index (unary +), which would make SQLite sort every
 * matching row first. So does every row of a report selecting most machines (at-risk,
 * by-authority: walking the index beats sorting them); the count, and unlicensed's every row
 * (a third of the machines), use the state index.
 */
const byNameOrder = (from: string) => from.replace(/\bm\.state (IN|=|IS NOT NULL)/g, '+m.state $1');

/** SQLite engine of FleetViewStore (pages, filters, sorts, counts and reports over the machines in SQL (100 000 machines)). */
export class SqliteFleetViews implements FleetViewStore {
  readonly #db: Database.Database;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  #all<R>(text: string, values: unknown[]): R[] {
    return this.#db.prepare(text).all(...values) as R[];
  }

  async setMachineFacts(entries: readonly { machineId: number; facts: MachineFacts }[]): Promise<void> {
    if (entries.length === 0) return;
    const update = this.#db.prepare(SET_FACTS);
    this.#db.transaction(() => {
      for (const e of entries) update.run(...tables.factValues(e.facts), e.machineId);
    })();
  }

  async pageMachines(query: MachinePageQuery): Promise<{ machines: MachineView[]; total: number }> {
    return this.#db.transaction(() => {
      const p = new sql.Params(SQLITE);
      const where = sql.machineWhere(p, query);
      const total = this.#all<{ n: number }>(`SELECT count(*) AS n FROM machines m ${where}`, p.values)[0]?.n ?? 0;
      const w = sql.pageWindow(total, query.offset, query.limit, query.dir);
      // Few machines match the text: sort them, found by the search index, rather than walk
      // the sort's index testing each machine until the page is full.
      const few =
        query.q?.trim() && total <= FEW_MATCHES ? sql.machineWhere(new sql.Params(SQLITE), query, true) : where;
      const rows = this.#all<ViewRow>(
        `SELECT m.* FROM machines m ${few} ${sql.orderBy(SQLITE, query.sort, w.dir)} LIMIT ? OFFSET ?`,
        [...p.values, w.limit, w.offset],
      );
      if (w.reversed) rows.reverse();
      return { machines: rows.map(toView), total };
    })();
  }

  async machineIds(filter: sql.MachineFilterInput): Promise<number[]> {
    const p = new sql.Params(SQLITE);
    const where = sql.machineWhere(p, filter);
    return this.#all<{ id: number }>(`SELECT m.id FROM machines m ${where} ORDER BY m.id`, p.values).map((r) => r.id);
  }

  async findByHostName(hostName: string, limit: number): Promise<MachineView[]> {
    return this.#all<ViewRow>('SELECT * FROM machines WHERE host_name = ? COLLATE NOCASE ORDER BY id LIMIT ?', [
      hostName,
      limit,
    ]).map(toView);
  }

  async machineView(id: number): Promise<MachineView | undefined> {
    const row = this.#all<ViewRow>('SELECT * FROM machines WHERE id = ?', [id])[0];
    return row && toView(row);
  }

  async stateCounts(): Promise<Partial<Record<LicenceState | 'unknown', number>>> {
    const rows = this.#all<{ state: string | null; n: number }>(
      'SELECT state, count(*) AS n FROM machines GROUP BY state',
      [],
    );
    return Object.fromEntries(rows.map((r) => [r.state ?? 'unknown', r.n]));
  }

  async operationsPage(
    query: sql.OperationFilterInput & { offset: number; limit: number },
  ): Promise<{ operations: OperationRecord[]; total: number }> {
    return this.#db.transaction(() => {
      const p = new sql.Params(SQLITE);
      const where = sql.operationWhere(p, query);
      const total = this.#all<{ n: number }>(`SELECT count(*) AS n FROM operations o ${where}`, p.values)[0]?.n ?? 0;
      const rows = this.#all<tables.OperationRow>(
        `SELECT o.* FROM operations o ${where} ORDER BY o.at DESC, o.id DESC LIMIT ? OFFSET ?`,
        [...p.values, query.limit, query.offset],
      );
      return { operations: rows.map(tables.toOperation), total };
    })();
  }

  async reportRows(
    report: sql.RowReport,
    options: { endsBy: string; offset: number; limit: number | undefined },
  ): Promise<{ rows: ReportMachineRow[]; total: number }> {
    return this.#db.transaction(() => {
      const p = new sql.Params(SQLITE);
      const s = sql.reportSelection(p, report, options);
      const extra = [...s.extra, ...sql.reportStatusColumns(SQLITE, report)];
      // Every row (the CSV): they are the count; no second pass over the selection.
      const whole = options.limit === undefined && options.offset === 0;
      const counted = whole
        ? 0
        : (this.#all<{ n: number }>(s.count ?? `SELECT count(*) AS n ${s.from}`, p.values)[0]?.n ?? 0);
      const rows = this.#all<{ r: string }>(
        `SELECT ${sql.reportRowJson(sql.reportMachineValues(report, REPORT_ROW_COLUMNS), extra)}
         ${options.limit === undefined && report === 'unlicensed' ? s.from : byNameOrder(s.from)} ${s.order} LIMIT ? OFFSET ?`,
        [...p.values, options.limit ?? -1, options.offset],
      );
      return {
        rows: rows.map((r) => reportRowOf(JSON.parse(r.r) as (string | number | null)[], extra)),
        total: whole ? rows.length : counted,
      };
    })();
  }

  async makInstalls(last5: readonly string[]): Promise<{ last5: string; displayName: string; licensed: boolean }[]> {
    if (last5.length === 0) return [];
    const rows = this.#all<ViewRow & { display_name: string }>(
      `SELECT m.display_name, m.installed_key, m.state, m.method FROM machines m WHERE m.latest_snapshot_id IS NOT NULL AND m.installed_key_type = 'mak'
         AND m.installed_key IN (SELECT value FROM json_each(?)) ORDER BY ${sql.folded({ engine: 'sqlite' }, sql.DISPLAY)}, m.id`,
      [JSON.stringify(last5)],
    );
    return rows.map((r) => ({
      last5: r.installed_key as string,
      displayName: r.display_name,
      licensed: r.state === 'licensed' && r.method === 'mak',
    }));
  }

  async timelineSpans(
    firstEnd: number,
    days: number,
    day: number,
  ): Promise<{ state: LicenceState; firstDay: number; lastDay: number; n: number }[]> {
    return this.#all<{ state: LicenceState; first_day: number; last_day: number; n: number }>(
      sql.timelineQuery(firstEnd, days, day),
      [],
    ).map((r) => ({ state: r.state, firstDay: Number(r.first_day), lastDay: Number(r.last_day), n: Number(r.n) }));
  }
}
