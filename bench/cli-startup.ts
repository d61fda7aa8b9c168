/**
 * CLI start-up benchmark: `npm run bench:cli [-- --json] [--runs N]`.
 *
 * What a `volact` command costs in CPU (user + system) from `node` starting to its exit, and how
 * many modules it loads, for a handful of everyday commands, two ways in the same run:
 *   - `group`: the built bin (bin/volact.js), which loads only the command's group (launch.ts);
 *   - `full`:  the same command through `main()` of the CLI package, which loads every group
 *              (what bin/volact.js did before launch.ts: the baseline).
 * Each run is a fresh `node`; the two ways take turns run by run, so that a change in the
 * machine's load falls on both alike. The CPU is the process's own (process.cpuUsage at exit,
 * from a tiny --import preload, the same for both); the modules are counted in one more run of
 * each with an ESM loader hook (ESM, and CommonJS reached from ESM) and what the CommonJS loader
 * holds at exit. The fixtures (an authority, a KMS host, an installation, a console) are made
 * first in a temporary directory, with the CLI.
 *
 * Output: a table (CPU ms p50 and p99 per way, modules per way, full/group ratio of the p50s),
 * or with --json one JSON line per command and one with the overall ratio. Progress: stderr.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { percentiles } from './load.js';
import { formatNumber, formatTable, parseRunsOptions } from './table.js';

const USAGE = `usage: npm run bench:cli -- [options]
  --json     one JSON line per command, then one with the overall ratio, on stdout (progress goes to stderr)
  --runs N   fresh processes per command and way (default 15)`;

const ROOT = fileURLToPath(new URL('../..', import.meta.url)); // bench/dist → the repository
const BIN = join(ROOT, 'bin', 'volact.js');
const CLI_INDEX = pathToFileURL(join(ROOT, 'packages', 'cli', 'dist', 'index.js')).href;

const WAYS = ['group', 'full'] as const;
type Way = (typeof WAYS)[number];

const parseOptions = () => parseRunsOptions(USAGE, 15, 500);

const dir = mkdtempSync(join(tmpdir(), 'volact-bench-cli-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

/** The baseline: the command through main(), which registers every group (as bin did before launch.ts). */
const FULL = join(dir, 'full.mjs');
writeFileSync(FULL, `const { main } = await import(${JSON.stringify(CLI_INDEX)});\nawait main(process.argv);\n`);

const HOOKS = join(dir, 'hooks.mjs');
writeFileSync(
  HOOKS,
  `import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function load(url, context, next) {
  appendFileSync(file, url + '\\n');
  return next(url, context);
}
`,
);

const preload = (code: string) => `data:text/javascript,${encodeURIComponent(code)}`;

/** Runs `volact ...args` one way; returns its exit code and output. */
function volact(way: Way, args: readonly string[], nodeArgs: readonly string[] = []) {
  const r = spawnSync(process.execPath, [...nodeArgs, way === 'group' ? BIN : FULL, ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  return r;
}

/** The CPU (user + system, ms) of one run of the command. */
function cpuOnce(way: Way, args: readonly string[], expectCode: number): number {
  const file = join(dir, 'cpu.json');
  const code =
    `import { writeFileSync } from 'node:fs';` +
    `process.on('exit', () => { const u = process.cpuUsage(); writeFileSync(${JSON.stringify(file)}, String((u.user + u.system) / 1000)); });`;
  const r = volact(way, args, ['--import', preload(code)]);
  if (r.status !== expectCode) {
    throw new Error(`volact ${args.join(' ')} (${way}) exited ${r.status}, not ${expectCode}: ${r.stderr}`);
  }
  return Number(readFileSync(file, 'utf8'));
}

/** The modules (files, node: builtins aside) one run of the command loads. */
function modulesOnce(way: Way, args: readonly string[]): number {
  const record = join(dir, `modules-${way}.txt`);
  writeFileSync(record, '');
  const code =
    `import { register, createRequire } from 'node:module';` +
    `import { appendFileSync } from 'node:fs';` +
    `register(${JSON.stringify(pathToFileURL(HOOKS).href)}, { data: { file: ${JSON.stringify(record)} } });` +
    `const cache = createRequire(${JSON.stringify(BIN)}).cache;` +
    `process.on('exit', () => appendFileSync(${JSON.stringify(record)}, Object.keys(cache).join('\\n') + '\\n'));`;
  volact(way, args, ['--import', preload(code)]);
  const files = readFileSync(record, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('node:') && !line.startsWith('data:'))
    .map((line) => (line.startsWith('file:') ? fileURLToPath(line) : line));
  return new Set(files).size;
}

/** The fixtures, made with the CLI (the group way): fresh stores, as a first command sees them. */
function fixtures(): { name: string; args: string[]; code: number }[] {
  const ok = (...args: string[]) => {
    const r = volact('group', args);
    if (r.status !== 0) throw new Error(`volact ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  const A = join(dir, 'authority');
  const H = join(dir, 'host');
  const C = join(dir, 'client');
  const D = join(dir, 'console');
  const product = join(dir, 'product.json');
  ok('authority', 'init', '--data-dir', A);
  ok('authority', 'group', 'add', '--data-dir', A, '--name', 'office14');
  writeFileSync(product, ok('authority', 'product-config', '--data-dir', A, '--group', 'office14'));
  ok('client', 'init', '--state-dir', C, '--product', product, '--hardware-id', 'bench-1');
  const minted = ok('authority', 'key', 'mint', '--data-dir', A, '--type', 'kms-host', '--group', 'office14', '--json');
  ok('host', 'install-key', '--data-dir', H, (JSON.parse(minted) as { key: string }).key);
  ok('console', 'init', '--data-dir', D);
  return [
    { name: '--help', args: ['--help'], code: 0 },
    {
      name: 'client status --json',
      args: ['client', 'status', '--state-dir', C, '--json', '--hardware-id', 'bench-1'],
      code: 0,
    },
    { name: 'authority key list --json', args: ['authority', 'key', 'list', '--data-dir', A, '--json'], code: 0 },
    { name: 'console machines --json', args: ['console', 'machines', '--data-dir', D, '--json'], code: 0 },
    { name: 'host status', args: ['host', 'status', '--data-dir', H], code: 10 }, // installed, not activated
  ];
}

const round = (n: number, digits: number) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);

interface Line {
  command: string;
  runs: number;
  groupCpuMsP50: number;
  groupCpuMsP99: number;
  fullCpuMsP50: number;
  fullCpuMsP99: number;
  groupModules: number;
  fullModules: number;
  fullOverGroup: number;
}

const o = parseOptions();
process.stderr.write('making the fixtures (an authority, a KMS host, an installation, a console)\n');
const commands = fixtures();
const cpu = new Map<string, Record<Way, number[]>>(commands.map((c) => [c.name, { group: [], full: [] }]));
// One process each first, not counted: it brings the files into the page cache for all runs alike.
for (const c of commands) for (const way of WAYS) cpuOnce(way, c.args, c.code);
for (let i = 0; i < o.runs; i++) {
  process.stderr.write(`\rrun ${i + 1}/${o.runs}`);
  for (const c of commands) for (const way of WAYS) cpu.get(c.name)?.[way].push(cpuOnce(way, c.args, c.code));
}
process.stderr.write('\n');

const lines: Line[] = commands.map((c) => {
  const samples = cpu.get(c.name) as Record<Way, number[]>;
  const [g50 = NaN, g99 = NaN] = percentiles(Float64Array.from(samples.group), [50, 99]);
  const [f50 = NaN, f99 = NaN] = percentiles(Float64Array.from(samples.full), [50, 99]);
  return {
    command: c.name,
    runs: o.runs,
    groupCpuMsP50: round(g50, 0),
    groupCpuMsP99: round(g99, 0),
    fullCpuMsP50: round(f50, 0),
    fullCpuMsP99: round(f99, 0),
    groupModules: modulesOnce('group', c.args),
    fullModules: modulesOnce('full', c.args),
    fullOverGroup: round(f50 / g50, 2),
  };
});
// Over the commands that name a group (--help loads the full program either way).
const grouped = lines.filter((l) => l.command !== '--help');
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const overall = round(sum(grouped.map((l) => l.fullCpuMsP50)) / sum(grouped.map((l) => l.groupCpuMsP50)), 2);

if (o.json) {
  for (const line of lines) process.stdout.write(`${JSON.stringify(line)}\n`);
  process.stdout.write(`${JSON.stringify({ ratio: 'full/group', cpu: overall, node: process.version })}\n`);
} else {
  const rows = lines.map((l) => [
    l.command,
    formatNumber(l.groupCpuMsP50),
    formatNumber(l.groupCpuMsP99),
    String(l.groupModules),
    formatNumber(l.fullCpuMsP50),
    formatNumber(l.fullCpuMsP99),
    String(l.fullModules),
    `${formatNumber(l.fullOverGroup, 2)}×`,
  ]);
  const header = ['command', 'group CPU ms', 'p99', 'modules', 'full CPU ms', 'p99', 'modules', 'full/group'];
  console.log(`CLI start-up: fresh node ${process.version} per run, ${o.runs} runs per command and way, user+sys CPU`);
  for (const line of formatTable(header, rows, 1)) console.log(`  ${line}`);
  console.log(`  the commands naming a group: ${formatNumber(overall, 2)}× the CPU through the full program`);
}
