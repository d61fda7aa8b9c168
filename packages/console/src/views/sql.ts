/**
 * The views' SQL, written once for both engines: the machines table's filters and sorts, the
 * reports' row selections, the operations log's filters, the state timeline. Each builder takes
 * the engine's dialect (placeholders, case-insensitive text, NULL order) and gives SQL text with
 * its values. SQLite orders NULL first ascending; PostgreSQL is told to do the same (NULLS FIRST
 * ascending, NULLS LAST descending), so both engines give the same pages.
 */
import type { MachineSort } from '../web/contract.js';

export interface Dialect {
  readonly engine: 'sqlite' | 'postgres';
}

/** Collects a statement's values and gives each its placeholder. */
export class Params {
  readonly values: unknown[] = [];
  constructor(readonly dialect: Dialect) {}
  add(value: unknown): string {
    this.values.push(value);
    return this.dialect.engine === 'sqlite' ? '?' : `$${this.values.length}`;
  }
}

/** What the UI shows for a machine (the generated column: store-rows.ts DISPLAY_NAME_SQL). */
export const DISPLAY = 'm.display_name';

/** A text compared ignoring the case of ASCII letters (SQLite NOCASE; PostgreSQL lower() under "C"). */
export const folded = (d: Dialect, expr: string) =>
  d.engine === 'sqlite' ? `${expr} COLLATE NOCASE` : `lower(${expr} COLLATE "C")`;
/** A text compared byte by byte (SQLite BINARY; PostgreSQL "C"). */
const binary = (d: Dialect, expr: string) => (d.engine === 'sqlite' ? expr : `(${expr} COLLATE "C")`);

/**
 * Each sort key's expression over `machines m`: exactly the expressions of migration 5's
 * indexes (store-rows.ts MACHINE_SORT_INDEXES), so each sort reads an index in order.
 */
export function sortExpression(d: Dialect, sort: MachineSort): string {
  switch (sort) {
    case 'name':
      return folded(d, DISPLAY);
    case 'address':
      return binary(d, 'm.address');
    case 'hostName':
      return folded(d, 'm.host_name');
    case 'os':
      return binary(d, 'm.os');
    case 'productVersion':
      return binary(d, 'm.product_version');
    case 'state':
      return binary(d, 'm.state');
    case 'method':
      return binary(d, 'm.method');
    case 'group':
      return binary(d, 'm.product_group');
    case 'installedKey':
      return binary(d, 'm.installed_key');
    case 'kmsHost':
      return binary(d, 'm.kms_host');
    case 'expiresAt':
      return binary(d, 'm.expires_at');
    case 'lastSeenAt':
      return 'm.last_seen_at';
    case 'lastBootAt':
      return 'm.last_boot_at';
  }
}

/**
 * ORDER BY the key, then the display name, then the id (a stable order: a page never repeats
 * or skips a machine); NULL first ascending on both engines.
 */
export function orderBy(d: Dialect, sort: MachineSort, dir: 'asc' | 'desc'): string {
  const way = dir.toUpperCase();
  const nulls = d.engine === 'postgres' ? (dir === 'asc' ? ' NULLS FIRST' : ' NULLS LAST') : '';
  const name = `${folded(d, DISPLAY)} ${way}, m.id ${way}`;
  if (sort === 'name') return `ORDER BY ${name}`;
  if (sort === 'address') return `ORDER BY ${sortExpression(d, sort)} ${way}, m.id ${way}`;
  return `ORDER BY ${sortExpression(d, sort)} ${way}${nulls}, ${name}`;
}

/** `%text%` for LIKE with its wildcards escaped (ESCAPE '\'). */
export const containing = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** The columns `q` searches (contract.ts machineFilter), in the order they are joined. */
export const SEARCHED_COLUMNS = [
  'name',
  'address',
  'host_name',
  'os',
  'os_version',
  'product_version',
  'client_machine_id',
  'installed_key',
] as const;

/**
 * The searched columns joined by a line feed (a pattern has none: no match spans two), over
 * `prefix` (`m.` in queries, none in the index). SQLite: the expression of migration 5's index
 * `machines_search` (a search reads that index, not the rows); PostgreSQL lowers it (ASCII
 * only, "C") into the stored generated column `search_text` a search reads.
 */
export function searchExpression(d: Dialect, prefix = ''): string {
  const joined = SEARCHED_COLUMNS.map((c) => `coalesce(${prefix}${c}, '')`).join(
    d.engine === 'sqlite' ? ' || char(10) || ' : ' || chr(10) || ',
  );
  return d.engine === 'sqlite' ? joined : `lower((${joined}) COLLATE "C")`;
}

/** ASCII letters lowered (as SQLite LIKE and PostgreSQL lower() under "C" fold case). */
const asciiLower = (text: string) => text.replace(/[A-Z]+/g, (s) => s.toLowerCase());

/**
 * A case-insensitive substring match of any of `columns` (SQLite LIKE folds ASCII; PostgreSQL
 * ILIKE): one match over the columns joined by a line feed (a pattern has none: no match spans two).
 */
export function textMatch(p: Params, columns: readonly string[], text: string): string {
  const pattern = p.add(containing(text.replace(/\n/g, ' ')));
  const like = p.dialect.engine === 'sqlite' ? 'LIKE' : 'ILIKE';
  const joined = columns.map((c) => `coalesce(${c}, '')`).join(' || char(10) || ');
  const all = p.dialect.engine === 'sqlite' ? joined : joined.replace(/char\(10\)/g, 'chr(10)');
  return `((${all}) ${like} ${pattern} ESCAPE '\\')`;
}

/**
 * `q` over a machine (ASCII case ignored): SQLite LIKE over searchExpression (its index holds
 * it), PostgreSQL LIKE of the lowered text over the precomputed `search_text`.
 */
function machineTextMatch(p: Params, text: string, byId: boolean): string {
  const oneLine = text.replace(/\n/g, ' ');
  if (p.dialect.engine === 'sqlite') {
    const like = (prefix: string) =>
      `${searchExpression(p.dialect, prefix)} LIKE ${p.add(containing(oneLine))} ESCAPE '\\'`;
    return byId ? `m.id IN (SELECT s.id FROM machines s WHERE ${like('s.')})` : `(${like('m.')})`;
  }
  return `(m.search_text LIKE ${p.add(containing(asciiLower(oneLine)))} ESCAPE '\\')`;
}

export interface MachineFilterInput {
  readonly q?: string | undefined;
  readonly state?: string | undefined;
  readonly method?: string | undefined;
}

/**
 * WHERE for the machines table: `q` a substring (any case) of name, address, host name, OS,
 * its version, product version, CMID or key last five; `state` (`unknown`: never read);
 * `method` (`none`: no activation method, never read included). `searchById` (SQLite): `q`
 * as the ids its index finds (a page of few matches sorts them rather than walk the sort's index).
 */
export function machineWhere(p: Params, filter: MachineFilterInput, searchById = false): string {
  const parts: string[] = [];
  const q = filter.q?.trim();
  if (q) parts.push(machineTextMatch(p, q, searchById));
  // Compared under "C" on PostgreSQL, as the indexes hold them: an equality under the
  // database's collation cannot use a "C" index (it would read every entry of machines_state).
  const is = (column: string, value: string) => `${binary(p.dialect, column)} = ${p.add(value)}`;
  if (filter.state) parts.push(filter.state === 'unknown' ? 'm.state IS NULL' : is('m.state', filter.state));
  if (filter.method) parts.push(filter.method === 'none' ? 'm.method IS NULL' : is('m.method', filter.method));
  return parts.length === 0 ? '' : `WHERE ${parts.join(' AND ')}`;
}

/** Columns read for a machine row of a page (its record, facts and latest status). */
export const MACHINE_SELECT = 'm.*';

export interface OperationFilterInput {
  readonly q?: string | undefined;
  readonly operation?: string | undefined;
  readonly outcome?: 'ok' | 'failed' | undefined;
}

export function operationWhere(p: Params, filter: OperationFilterInput): string {
  const parts: string[] = [];
  const q = filter.q?.trim();
  if (q) parts.push(textMatch(p, ['o.machine', 'o.operation', 'o.code', 'o.detail'], q));
  if (filter.operation) parts.push(`o.operation = ${p.add(filter.operation)}`);
  if (filter.outcome) {
    const ok = filter.outcome === 'ok';
    parts.push(p.dialect.engine === 'sqlite' ? `o.ok = ${ok ? 1 : 0}` : `o.ok = ${ok ? 'true' : 'false'}`);
  }
  return parts.length === 0 ? '' : `WHERE ${parts.join(' AND ')}`;
}

/** The row-selecting reports (mak-usage is per stored key: see reports.ts). */
export type RowReport = 'at-risk' | 'duplicate-cmid' | 'unlicensed' | 'by-authority';

const GRACE_STATES = `('initial-grace', 'out-of-tolerance', 'non-genuine-grace', 'notification')`;

/**
 * FROM … WHERE … of a row report over `machines m` (machines with a status only: a state is
 * set exactly when the latest status is, so the state index alone finds them), and its
 * ORDER BY (by display name as the UI shows it, then id; duplicate-cmid by CMID first), and
 * (duplicate-cmid) a cheaper statement counting its rows.
 * `endsBy`: at-risk's "licence ends within the days" as an ISO time (agents write ISO UTC times,
 * which compare as text).
 */
export function reportSelection(
  p: Params,
  report: RowReport,
  options: { endsBy: string },
): { from: string; order: string; extra: ReportColumns; count?: string } {
  const byName = `ORDER BY ${folded(p.dialect, DISPLAY)}, m.id`;
  // The state under "C" (PostgreSQL), as machines_state holds it: a count reads the index's range.
  const state = binary(p.dialect, 'm.state');
  switch (report) {
    case 'at-risk':
      return {
        from: `FROM machines m WHERE (${state} IN ${GRACE_STATES}
          OR (${state} = 'licensed' AND m.expires_at IS NOT NULL AND ${binary(p.dialect, 'm.expires_at')} <= ${p.add(options.endsBy)}))`,
        order: byName,
        extra: [],
      };
    case 'unlicensed':
      return {
        from: `FROM machines m WHERE ${state} IN ('unlicensed', 'notification')`,
        order: byName,
        extra: [],
      };
    case 'by-authority':
      return { from: 'FROM machines m WHERE m.state IS NOT NULL', order: byName, extra: [] };
    case 'duplicate-cmid': {
      // A CMID is set exactly when the machine has a status: the index alone answers the groups.
      // PostgreSQL reads them in the index's order only when told NULLS FIRST as the index has
      // it (else it sorts every CMID again); no CMID here is NULL, so the order is the same.
      const nulls = p.dialect.engine === 'postgres' ? ' NULLS FIRST' : '';
      const groups = `SELECT ${binary(p.dialect, 'client_machine_id')} AS cmid, count(*) AS n
            FROM machines WHERE client_machine_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1 ORDER BY 1${nulls}`;
      return {
        from: `FROM machines m JOIN (${groups}) d ON d.cmid = ${binary(p.dialect, 'm.client_machine_id')}`,
        order: `ORDER BY ${binary(p.dialect, 'm.client_machine_id')}${nulls}, ${folded(p.dialect, DISPLAY)}, m.id`,
        extra: [['cmid_machines', 'd.n']],
        count: `SELECT coalesce(sum(n), 0) AS n FROM (${groups}) d`,
      };
    }
  }
}

/**
 * The columns a row report reads from its machine's latest status as received (beyond the
 * denormalised ones): unlicensed its last failed attempt's code (extracted in SQL), by-authority
 * the whole status of the machines activated by a directory object, OEM marker or token.
 */
export function reportStatusColumns(d: Dialect, report: RowReport): ReportColumns {
  const latest = (expr: string) => `(SELECT ${expr} FROM status_snapshots s WHERE s.id = m.latest_snapshot_id)`;
  switch (report) {
    case 'unlicensed':
      return [
        [
          'last_attempt_code',
          d.engine === 'sqlite'
            ? latest(`CASE WHEN json_type(s.status_json, '$.lastAttempt.ok') = 'false'
            THEN json_extract(s.status_json, '$.lastAttempt.code') END`)
            : // The status parsed once (OFFSET 0: the subquery is not merged, which would parse it twice).
              `(SELECT CASE WHEN (j #> '{lastAttempt,ok}') = 'false'::jsonb THEN j #>> '{lastAttempt,code}' END
              FROM (SELECT s.status_json::jsonb AS j FROM status_snapshots s WHERE s.id = m.latest_snapshot_id OFFSET 0) s)`,
        ],
      ];
    case 'by-authority':
      return [
        ['status_json', `CASE WHEN m.method IN ('directory', 'oem', 'token') THEN ${latest('s.status_json')} END`],
      ];
    case 'at-risk':
    case 'duplicate-cmid':
      return [];
  }
}

/** Columns of a report row beyond the machine's: [name, SQL expression]. */
export type ReportColumns = readonly (readonly [string, string])[];

/**
 * The machine columns a row report's rows read (reports.ts reportRow) beyond those every row
 * reads (REPORT_ALWAYS); a whole report of 100 000 rows costs per value read.
 */
const REPORT_READS: Readonly<Record<RowReport, readonly string[]>> = {
  'at-risk': ['product_group', 'expires_at', 'last_seen_at'],
  'duplicate-cmid': ['product_group', 'client_machine_id'],
  unlicensed: ['product_group', 'installed_key', 'installed_key_type', 'last_seen_at'],
  'by-authority': ['product_group', 'method', 'kms_host', 'installed_key', 'expires_at'],
};
/** Every report row: the machine, its display name and address, whether it has a status and its state. */
const REPORT_ALWAYS = ['id', 'address', 'display_name', 'latest_snapshot_id', 'state'];

/**
 * A report's values of `columns` of `machines m`, in that order: NULL for the columns the
 * report does not read (its rows' `latest` holds null or '' there: see ReportMachineRow).
 */
export function reportMachineValues(report: RowReport, columns: readonly string[]): string[] {
  return columns.map((c) => (REPORT_ALWAYS.includes(c) || REPORT_READS[report].includes(c) ? `m.${c}` : 'NULL'));
}

/** A report row's select list (PostgreSQL, read as an array): `values` (reportMachineValues), then `extra`. */
export function reportColumns(values: readonly string[], extra: ReportColumns): string {
  return [...values, ...extra.map(([name, expr]) => `${expr} AS ${name}`)].join(', ');
}

/**
 * SQLite: a report row as one JSON array (one text per row: better-sqlite3 makes one string,
 * not an object of a dozen values; rows.ts reportRowOf reads them by position): `values`
 * (reportMachineValues), then `extra`. (PostgreSQL reads reportColumns as arrays: its json_build_array
 * cost more than the values themselves.)
 */
export function reportRowJson(values: readonly string[], extra: ReportColumns): string {
  return `json_array(${[...values, ...extra.map(([, expr]) => expr)].join(', ')}) AS r`;
}

/** Shifts times before the timeline's first day into positive numbers, so integer division floors. */
const DAY_SHIFT = 100_000;

/**
 * The state timeline in one pass over the history (see report-operations.ts stateTimeline):
 * each history row holds its state from its time until the machine's next row, so it counts on
 * each day whose end falls in (taken_at, next row's taken_at]. Answers per state and span of day
 * indexes [first_day, last_day] how many rows; the caller adds them up per day. The numbers are
 * the caller's integers (never user text), written into the SQL.
 */
export function timelineQuery(firstEnd: number, days: number, day: number): string {
  for (const n of [firstEnd, days, day]) if (!Number.isSafeInteger(n)) throw new Error(`not an integer: ${n}`);
  const lastEnd = firstEnd + (days - 1) * day;
  const index = (t: string) => `((${t} - ${firstEnd} + ${day * DAY_SHIFT}) / ${day} - ${DAY_SHIFT})`;
  const spans = `SELECT state, taken_at,
      LEAD(taken_at) OVER (PARTITION BY machine_id ORDER BY taken_at, id) AS next_at
    FROM status_snapshots`;
  const first = `(${index('taken_at')} + 1)`;
  const last = `(CASE WHEN next_at IS NULL OR next_at > ${lastEnd} THEN ${days - 1} ELSE ${index('next_at')} END)`;
  return `SELECT state, CASE WHEN first_day < 0 THEN 0 ELSE first_day END AS first_day, last_day, count(*) AS n
    FROM (SELECT state, ${first} AS first_day, ${last} AS last_day FROM (${spans}) s WHERE taken_at < ${lastEnd}) r
    WHERE last_day >= 0 AND last_day >= first_day
    GROUP BY state, CASE WHEN first_day < 0 THEN 0 ELSE first_day END, last_day`;
}

/**
 * A page past the middle is read from the other end (the order reversed, then the rows): the
 * last page costs what the first does, each engine walking its index from the nearer end.
 */
export function pageWindow(
  total: number,
  offset: number,
  limit: number,
  dir: 'asc' | 'desc',
): { offset: number; limit: number; dir: 'asc' | 'desc'; reversed: boolean } {
  if (offset <= total / 2 || offset >= total) return { offset, limit, dir, reversed: false };
  const end = Math.min(total, offset + limit);
  return { offset: total - end, limit: end - offset, dir: dir === 'asc' ? 'desc' : 'asc', reversed: true };
}
