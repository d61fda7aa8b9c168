import { DAY, LICENCE_STATES, type LicenceState } from '@volact/core';
import { authorityOrigin, makCounters, type AuthorityConnection } from './authority-client.js';
import { ConsoleError } from './errors.js';
import { mapLimit, type Fleet } from './fleet.js';
import {
  REPORT_COLUMNS,
  REPORT_NAMES,
  atRiskEndsBy,
  makUsageRow,
  reportRow,
  type Report,
  type ReportName,
  type ReportRow,
} from './reports.js';
import type { MakCountResult, TimelineDay } from './results.js';
import { REPORT_COLUMN_LABELS, type ReportPage } from './web/contract.js';

/** What the console reports: the five reports, the MAK counters they show, the state timeline. */

/**
 * Machines per state at the end of each of the last `days` days (today included), computed in
 * SQL (views timelineSpans: one pass over the history, no snapshot loaded here).
 */
export async function stateTimeline(fleet: Fleet, days: number): Promise<TimelineDay[]> {
  const span = Math.max(1, Math.min(Math.trunc(days), 3660));
  const today = Math.floor(fleet.clock.now() / DAY) * DAY;
  const firstEnd = today - (span - 1) * DAY + DAY;
  const perDay = Array.from(
    { length: span },
    () => Object.fromEntries(LICENCE_STATES.map((st) => [st, 0])) as Record<LicenceState, number>,
  );
  for (const r of await fleet.store.views.timelineSpans(firstEnd, span, DAY)) {
    for (let d = Math.max(0, r.firstDay); d <= Math.min(span - 1, r.lastDay); d++) {
      const counts = perDay[d] as Record<LicenceState, number>;
      if (r.state in counts) counts[r.state] += r.n;
    }
  }
  return perDay.map((counts, d) => ({
    day: new Date(firstEnd + d * DAY - DAY).toISOString().slice(0, 10),
    counts,
  }));
}

/**
 * Reads each stored MAK's counters from the authority and keeps them. `adminToken` is the
 * token the console was given: the authority's admin token (or a publisher token), or an
 * organisation's read token (`org:<id>:read`), with which only that organisation's MAKs answer.
 */
export async function refreshMakCounts(
  fleet: Fleet,
  authority: AuthorityConnection & { adminToken: string },
): Promise<MakCountResult[]> {
  const origin = authorityOrigin(authority.url);
  const keys = (await fleet.store.listKeys()).filter((k) => k.type === 'mak');
  const results = await mapLimit(keys, 4, async (key): Promise<MakCountResult> => {
    const base = { name: key.name, key: key.last5 };
    try {
      const text = fleet.box.unseal(key.sealed, `key:${key.fingerprint}`, `stored key "${key.name}"`);
      const shown = await makCounters(authority, authority.adminToken, text);
      const counters = {
        limit: shown.limit ?? null,
        used: shown.used ?? 0,
        remaining: shown.remaining ?? null,
        authority: origin,
        countedAt: fleet.clock.now(),
      };
      await fleet.store.setKeyCounters(key.id, counters);
      return {
        ...base,
        ok: true,
        code: null,
        message: `${counters.used} used of ${counters.limit ?? 'no limit'}`,
        limit: counters.limit,
        used: counters.used,
        remaining: counters.remaining,
      };
    } catch (err) {
      if (!(err instanceof ConsoleError)) throw err;
      return { ...base, ok: false, code: err.code, message: err.message, limit: null, used: null, remaining: null };
    }
  });
  const failed = results.filter((r) => !r.ok).length;
  await fleet.log(
    'refresh-mak',
    null,
    failed === 0,
    null,
    `${origin}: ${results.length - failed} read, ${failed} failed`,
  );
  return results;
}

function checkName(name: string): ReportName {
  if (!(REPORT_NAMES as readonly string[]).includes(name)) {
    throw new ConsoleError('REPORT_UNKNOWN', `no report "${name.slice(0, 100)}": choose ${REPORT_NAMES.join(', ')}`);
  }
  return name as ReportName;
}

/**
 * A report's rows from `offset` (at most `limit`; every row without), and how many it has,
 * computed in SQL over the machines' latest status (views reportRows / makInstalls).
 */
async function reportRowsOf(
  fleet: Fleet,
  name: ReportName,
  options: { days: number; offset: number; limit: number | undefined; errors?: ReadonlyMap<string, string> },
): Promise<{ rows: ReportRow[]; total: number }> {
  const now = fleet.clock.now();
  const keys = await fleet.store.listKeys();
  const maks = keys.filter((k) => k.type === 'mak');
  if (name === 'mak-usage') {
    const sorted = [...maks].sort((a, b) => a.name.localeCompare(b.name));
    const page = sorted.slice(options.offset, options.limit === undefined ? undefined : options.offset + options.limit);
    const installs = await fleet.store.views.makInstalls([...new Set(page.map((k) => k.last5))]);
    return {
      rows: page.map((key) =>
        makUsageRow(
          key,
          installs.filter((i) => i.last5 === key.last5),
          options.errors?.get(key.name) ?? null,
        ),
      ),
      total: sorted.length,
    };
  }
  const { rows, total } = await fleet.store.views.reportRows(name, {
    endsBy: atRiskEndsBy(now, options.days),
    offset: options.offset,
    limit: options.limit,
  });
  const context = { now, days: options.days, makByLast5: new Map(maks.map((k) => [k.last5, k])) };
  return { rows: rows.map((r) => reportRow(name, r, context)), total };
}

/** Every row of a report (the CLI and the CSV). */
export async function report(
  fleet: Fleet,
  name: string,
  options: { days?: number; authority?: AuthorityConnection & { adminToken: string } } = {},
): Promise<Report> {
  const checked = checkName(name);
  // mak-usage with the authority: read the counters now (kept); without: the ones last read.
  const errors = new Map<string, string>();
  if (checked === 'mak-usage' && options.authority) {
    for (const r of await refreshMakCounts(fleet, options.authority)) {
      if (!r.ok) errors.set(r.name, `${r.code}: ${r.message}`);
    }
  }
  const { rows } = await reportRowsOf(fleet, checked, {
    days: options.days ?? 30,
    offset: 0,
    limit: undefined,
    errors,
  });
  return {
    report: checked,
    generatedAt: new Date(fleet.clock.now()).toISOString(),
    columns: REPORT_COLUMNS[checked],
    rows,
  };
}

/** One page of a report, with its columns' human names (REPORT_COLUMN_LABELS). */
export async function reportPage(
  fleet: Fleet,
  name: string,
  options: { days: number; offset: number; limit: number },
): Promise<ReportPage> {
  const checked = checkName(name);
  const { rows, total } = await reportRowsOf(fleet, checked, options);
  const columns = REPORT_COLUMNS[checked];
  return {
    report: checked,
    generatedAt: new Date(fleet.clock.now()).toISOString(),
    columns,
    labels: Object.fromEntries(columns.map((c) => [c, REPORT_COLUMN_LABELS[c] ?? c])),
    rows,
    total,
    offset: options.offset,
  };
}
