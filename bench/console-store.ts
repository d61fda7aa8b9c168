/**
 * The store half of `npm run bench:console -- --mode store`: a console of N generated machines
 * (`generateFleet` of `@volact/console/testing`: names, facts, statuses over every state and
 * method, status history, MAKs, an operations log) on SQLite and on PostgreSQL (a throwaway
 * server, `startTestPostgres`), timed through VolumeConsole as the web UI and the CLI call it:
 *   - `pageMachines`: the first page (50 rows by name), each sort key (ascending), one sort
 *     descending, a filter by state, a text search, the last page: p50/p99 over `--runs` calls;
 *   - each of the five reports: one page (`reportPage`, 50 rows) and the whole report (`report`,
 *     what the CSV download reads);
 *   - `stateCounts` (the charts' states) and `stateTimeline(30)`.
 * Each case is called once unmeasured first. Targets (docs/console.md, Performance): a page
 * p99 < 100 ms, each report < 1 s.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startTestPostgres, type TestPostgres } from '@volact/authority/testing';
import { ManualClock } from '@volact/core';
import { REPORT_NAMES, SecretBox, VolumeConsole, openConsoleStore } from '@volact/console';
import { generateFleet } from '@volact/console/testing';
import { percentiles } from './load.js';

export type Engine = 'sqlite' | 'postgres';

type MachinesQuery = Parameters<VolumeConsole['pageMachines']>[0];
/** The machines table's sort keys (MACHINE_SORTS of the web contract); the type checks each. */
const SORTS: readonly MachinesQuery['sort'][] = [
  'name',
  'address',
  'hostName',
  'os',
  'productVersion',
  'state',
  'method',
  'group',
  'installedKey',
  'kmsHost',
  'expiresAt',
  'lastSeenAt',
  'lastBootAt',
];

export interface StoreBenchOptions {
  readonly machines: number;
  readonly engines: readonly Engine[];
  /** Calls per page case (reports: a fifth of it, at least 3). */
  readonly runs: number;
  readonly dir: string;
  readonly emit: (line: Record<string, string | number | null>) => void;
  readonly progress: (text: string) => void;
}

const NOW = Date.parse('2026-12-01T00:00:00.000Z');
const round = (n: number, digits: number) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);

async function timeRuns(
  runs: number,
  call: () => Promise<unknown>,
): Promise<{ p50: number; p99: number; max: number }> {
  await call(); // unmeasured: the first call of a case warms its statement and the page cache
  const ms = new Float64Array(runs);
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await call();
    ms[i] = performance.now() - t0;
  }
  const [p50 = NaN, p99 = NaN, max = NaN] = percentiles(ms, [50, 99, 100]);
  return { p50, p99, max };
}

export async function runStoreBench(o: StoreBenchOptions): Promise<void> {
  let postgres: TestPostgres | undefined;
  try {
    for (const engine of o.engines) {
      const dataDir = join(o.dir, `store-${engine}`);
      mkdirSync(dataDir, { recursive: true });
      let databaseUrl: string | undefined;
      if (engine === 'postgres') {
        o.progress('starting PostgreSQL… ');
        postgres ??= await startTestPostgres();
        databaseUrl = await postgres.createDatabase();
        o.progress('done\n');
      }
      const store = await openConsoleStore(dataDir, databaseUrl);
      o.progress(`${engine}: generating ${o.machines} machines… `);
      const g0 = performance.now();
      const generated = await generateFleet(store, o.machines, { now: NOW });
      const generateSeconds = (performance.now() - g0) / 1000;
      o.progress(`${generateSeconds.toFixed(1)} s (${generated.snapshots} status rows)\n`);
      o.emit({
        engine,
        case: 'generate',
        machines: generated.machines,
        snapshots: generated.snapshots,
        seconds: round(generateSeconds, 2),
      });
      const vc = VolumeConsole.withStore(store, new SecretBox(randomBytes(32)), { clock: new ManualClock(NOW) });
      try {
        const first = await vc.pageMachines({ offset: 0, limit: 50, sort: 'name', dir: 'asc' });
        const total = first.total;
        const page = (q: Partial<MachinesQuery>): MachinesQuery => ({
          offset: 0,
          limit: 50,
          sort: 'name',
          dir: 'asc',
          ...q,
        });
        const licensed = await vc.pageMachines(page({ state: 'licensed' }));
        const cases: [string, MachinesQuery][] = [
          ['page first (name)', page({})],
          ...SORTS.filter((s) => s !== 'name').map((s): [string, MachinesQuery] => [
            `page sort ${s}`,
            page({ sort: s }),
          ]),
          ['page sort lastSeenAt desc', page({ sort: 'lastSeenAt', dir: 'desc' })],
          [`page state=licensed (${licensed.total})`, page({ state: 'licensed' })],
          ['page state=licensed, 3rd page by expiresAt', page({ state: 'licensed', sort: 'expiresAt', offset: 100 })],
          ['page q=ubuntu', page({ q: 'ubuntu' })],
          ['page q=pc-04242', page({ q: 'pc-04242' })],
          ['page last', page({ offset: Math.max(0, total - 50) })],
        ];
        for (const [name, query] of cases) {
          o.progress(`${engine}: ${name}… `);
          let rows = 0;
          const t = await timeRuns(o.runs, async () => {
            rows = (await vc.pageMachines(query)).machines.length;
          });
          o.progress(`p99 ${t.p99.toFixed(1)} ms\n`);
          o.emit({
            engine,
            case: name,
            rows,
            runs: o.runs,
            p50Ms: round(t.p50, 2),
            p99Ms: round(t.p99, 2),
            maxMs: round(t.max, 2),
          });
        }
        const reportRuns = Math.max(3, Math.round(o.runs / 5));
        for (const report of REPORT_NAMES) {
          o.progress(`${engine}: report ${report}… `);
          let total = 0;
          const pageT = await timeRuns(o.runs, async () => {
            total = (await vc.reportPage(report, { days: 30, offset: 0, limit: 50 })).total;
          });
          let rows = 0;
          const fullT = await timeRuns(reportRuns, async () => {
            rows = (await vc.report(report, { days: 30 })).rows.length;
          });
          o.progress(`page p99 ${pageT.p99.toFixed(1)} ms, whole p50 ${fullT.p50.toFixed(0)} ms\n`);
          o.emit({
            engine,
            case: `report ${report} page`,
            rows: total,
            runs: o.runs,
            p50Ms: round(pageT.p50, 2),
            p99Ms: round(pageT.p99, 2),
            maxMs: round(pageT.max, 2),
          });
          o.emit({
            engine,
            case: `report ${report} whole`,
            rows,
            runs: reportRuns,
            p50Ms: round(fullT.p50, 1),
            p99Ms: round(fullT.p99, 1),
            maxMs: round(fullT.max, 1),
          });
        }
        const small = Math.max(3, Math.round(o.runs / 2));
        for (const [name, call] of [
          ['stateCounts', () => vc.stateCounts()],
          ['stateTimeline 30 days', () => vc.stateTimeline(30)],
        ] as const) {
          o.progress(`${engine}: ${name}… `);
          const t = await timeRuns(small, call);
          o.progress(`p99 ${t.p99.toFixed(1)} ms\n`);
          o.emit({
            engine,
            case: name,
            rows: null,
            runs: small,
            p50Ms: round(t.p50, 2),
            p99Ms: round(t.p99, 2),
            maxMs: round(t.max, 2),
          });
        }
      } finally {
        await vc.close();
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
  } finally {
    postgres?.stop();
  }
}
