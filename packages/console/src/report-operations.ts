import { DAY, LICENCE_STATES, type LicenceState } from '@volact/core';
import { authorityOrigin, makCounters, type AuthorityConnection } from './authority-client.js';
import { ConsoleError } from './errors.js';
import { mapLimit, type Fleet } from './fleet.js';
import {
  REPORT_NAMES,
  atRiskReport,
  byAuthorityReport,
  duplicateCmidReport,
  makUsageReport,
  unlicensedReport,
  type Report,
  type ReportInput,
  type ReportName,
} from './reports.js';
import type { MakCountResult, TimelineDay } from './results.js';
import type { SnapshotRecord } from './store.js';

/** What the console reports: the five reports, the MAK counters they show, the state timeline. */

export async function stateTimeline(fleet: Fleet, days: number): Promise<TimelineDay[]> {
  const span = Math.max(1, Math.min(Math.trunc(days), 3660));
  const today = Math.floor(fleet.clock.now() / DAY) * DAY;
  const ends = Array.from({ length: span }, (_, i) => today - (span - 1 - i) * DAY + DAY);
  const rows = await fleet.store.snapshotsBefore(ends[ends.length - 1] as number);
  const byMachine = new Map<number, SnapshotRecord[]>();
  for (const r of rows) {
    const history = byMachine.get(r.machineId);
    if (history) history.push(r);
    else byMachine.set(r.machineId, [r]);
  }
  const perDay = ends.map(
    () => Object.fromEntries(LICENCE_STATES.map((st) => [st, 0])) as Record<LicenceState, number>,
  );
  // One sweep per machine over its rows in time order, the days ascending.
  for (const history of byMachine.values()) {
    history.sort((a, b) => a.takenAt - b.takenAt);
    let next = 0;
    let state: LicenceState | undefined;
    ends.forEach((end, day) => {
      while (next < history.length && (history[next] as SnapshotRecord).takenAt < end) {
        state = (history[next++] as SnapshotRecord).state;
      }
      if (state !== undefined) (perDay[day] as Record<LicenceState, number>)[state]++;
    });
  }
  return ends.map((end, day) => ({
    day: new Date(end - DAY).toISOString().slice(0, 10),
    counts: perDay[day] as Record<LicenceState, number>,
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

export async function report(
  fleet: Fleet,
  name: string,
  options: { days?: number; authority?: AuthorityConnection & { adminToken: string } } = {},
): Promise<Report> {
  if (!(REPORT_NAMES as readonly string[]).includes(name)) {
    throw new ConsoleError('REPORT_UNKNOWN', `no report "${name.slice(0, 100)}": choose ${REPORT_NAMES.join(', ')}`);
  }
  const input: { -readonly [K in keyof ReportInput]: ReportInput[K] } = {
    now: fleet.clock.now(),
    machines: await fleet.store.listMachines(),
    latest: await fleet.store.latestSnapshots(),
    keys: await fleet.store.listKeys(),
  };
  switch (name as ReportName) {
    case 'at-risk':
      return atRiskReport(input, options.days ?? 30);
    case 'duplicate-cmid':
      return duplicateCmidReport(input);
    case 'unlicensed':
      return unlicensedReport(input);
    case 'by-authority':
      return byAuthorityReport(input);
    case 'mak-usage': {
      // With the authority: read the counters now (kept); without: the ones last read.
      const errors = new Map<string, string>();
      if (options.authority) {
        for (const r of await refreshMakCounts(fleet, options.authority)) {
          if (!r.ok) errors.set(r.name, `${r.code}: ${r.message}`);
        }
        input.keys = await fleet.store.listKeys();
      }
      return makUsageReport(input, errors);
    }
  }
}
