/**
 * SDK import benchmark: `npm run bench:sdk [-- --json] [--runs N]`.
 *
 * What an app pays at start for embedding the SDK: the time of `await import(…)` and the growth
 * of the process's resident memory (RSS) it causes, for
 *   - `@volact/core` (the baseline: the protocol and crypto every part loads),
 *   - `@volact/client` (`import { Licence } from '@volact/client'`, what an app embeds),
 *   - `@volact/client/agent` (the local management agent, on fastify).
 * Each run is a fresh `node` (nothing cached in the process), started in the repository root so
 * that the specifiers resolve as an app's do: through node_modules to the packages' built dist
 * (`npm run bench:sdk` builds first). The entries take turns run by run, so that a change in the
 * machine's load falls on all of them alike. Lines give the median and p90 over the runs, and
 * `× core` the ratio of the medians to core's.
 *
 * Output: a table, or with --json one JSON line per entry and one with the ratios. Progress
 * goes to stderr.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { percentiles } from './load.js';
import { formatNumber, formatTable, parseRunsOptions } from './table.js';

const USAGE = `usage: npm run bench:sdk -- [options]
  --json     one JSON line per entry, then one with the ratios, on stdout (progress goes to stderr)
  --runs N   fresh processes per entry (default 15)`;

const ENTRIES = ['@volact/core', '@volact/client', '@volact/client/agent'] as const;
type Entry = (typeof ENTRIES)[number];

const ROOT = fileURLToPath(new URL('../..', import.meta.url)); // bench/dist → the repository

/**
 * The child: the memory before and after the import, and the import's wall time. RSS is read
 * without a forced collection either side (an app does not collect either); what the import
 * allocates and keeps, and the code it maps, is what grows.
 */
const CHILD = `
const rssBefore = process.memoryUsage.rss();
const start = performance.now();
await import(process.argv[1]);
const ms = performance.now() - start;
const rssAfter = process.memoryUsage.rss();
process.stdout.write(JSON.stringify({ ms, rssBefore, rssAfter }));
`;

interface Run {
  ms: number;
  rssGrowth: number;
}

const parseOptions = () => parseRunsOptions(USAGE, 15, 200);

function importOnce(entry: Entry): Run {
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, entry], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (child.status !== 0) {
    throw new Error(
      `importing ${entry} failed (exit ${child.status}${child.signal ? `, ${child.signal}` : ''}); ` +
        `is the dist built (npx tsc -b)?\n${child.stderr}`,
    );
  }
  const r = JSON.parse(child.stdout) as { ms: number; rssBefore: number; rssAfter: number };
  return { ms: r.ms, rssGrowth: r.rssAfter - r.rssBefore };
}

const round = (n: number, digits: number) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);
const mib = (bytes: number) => bytes / 2 ** 20;

interface Line {
  entry: Entry;
  runs: number;
  importMsMedian: number;
  importMsP90: number;
  rssGrowthMiBMedian: number;
  rssGrowthMiBP90: number;
}

function summarise(entry: Entry, runs: readonly Run[]): Line {
  const [msMedian = NaN, msP90 = NaN] = percentiles(Float64Array.from(runs.map((r) => r.ms)), [50, 90]);
  const [rssMedian = NaN, rssP90 = NaN] = percentiles(Float64Array.from(runs.map((r) => r.rssGrowth)), [50, 90]);
  return {
    entry,
    runs: runs.length,
    importMsMedian: round(msMedian, 1),
    importMsP90: round(msP90, 1),
    rssGrowthMiBMedian: round(mib(rssMedian), 1),
    rssGrowthMiBP90: round(mib(rssP90), 1),
  };
}

const o = parseOptions();
const runs = new Map<Entry, Run[]>(ENTRIES.map((e) => [e, []]));
// One process first, not counted: it brings the files into the page cache for all runs alike.
for (const entry of ENTRIES) importOnce(entry);
for (let i = 0; i < o.runs; i++) {
  process.stderr.write(`\rrun ${i + 1}/${o.runs}`);
  for (const entry of ENTRIES) runs.get(entry)?.push(importOnce(entry));
}
process.stderr.write('\n');

const lines = ENTRIES.map((entry) => summarise(entry, runs.get(entry) ?? []));
const core = lines[0] as Line;
const ratio = (line: Line) => ({
  time: round(line.importMsMedian / core.importMsMedian, 2),
  rss: round(line.rssGrowthMiBMedian / core.rssGrowthMiBMedian, 2),
});
const client = lines.find((l) => l.entry === '@volact/client') as Line;

if (o.json) {
  for (const line of lines) process.stdout.write(`${JSON.stringify({ ...line, timesCore: ratio(line) })}\n`);
  process.stdout.write(`${JSON.stringify({ ratio: 'client/core', ...ratio(client), node: process.version })}\n`);
} else {
  const rows = lines.map((l) => [
    l.entry,
    formatNumber(l.importMsMedian, 1),
    formatNumber(l.importMsP90, 1),
    `${formatNumber(ratio(l).time, 2)}×`,
    formatNumber(l.rssGrowthMiBMedian, 1),
    formatNumber(l.rssGrowthMiBP90, 1),
    `${formatNumber(ratio(l).rss, 2)}×`,
  ]);
  const header = ['entry', 'import ms', 'p90', '× core', 'RSS +MiB', 'p90', '× core'];
  console.log(`SDK import: fresh node ${process.version} per run, ${o.runs} runs per entry, from the built dist`);
  for (const line of formatTable(header, rows, 1)) console.log(`  ${line}`);
  const r = ratio(client);
  console.log(`  client/core: ${formatNumber(r.time, 2)}× the import time, ${formatNumber(r.rss, 2)}× the RSS growth`);
}
