/**
 * Authority benchmark: `npm run bench:authority [-- --json] [--duration S]`.
 *
 * Online MAK activations (key + installation ID → signed confirmation ID) against a real
 * authority, in-process (no HTTP): each node is its own process that opens the authority and
 * keeps `concurrency / nodes` activations in flight (see authority-node.ts). Scenarios:
 *   - SQLite, one node;
 *   - PostgreSQL (our own server in a temporary directory, fsync and synchronous_commit on),
 *     one node and two nodes on the same database;
 * each with one hot key and with 1 000 keys (a key drawn at random per activation). Every
 * scenario starts from a new database and new keys whose limit is never reached; at its end
 * the keys' `used` counts, their installation rows and the `used` numbers the nodes were
 * answered with must agree exactly (`exact`).
 *
 * `ceiling` lines: the bare transaction — one statement that increments the key's `used` when
 * below its limit and inserts the installation row (tables shaped like the authority's) —
 * driven by pgbench with 8 clients on the same server, once per key count. Each PostgreSQL
 * line carries `ratio` = its activations/s ÷ that ceiling.
 *
 * Also reported: the CPU of the nodes and of PostgreSQL per activation, the CPU of the
 * confirmation's short Schnorr signature (measured apart, `signing` line), how busy the
 * machine's cores were, and for PostgreSQL the commits per activation (batching).
 *
 * Output: one JSON line per scenario with --json, else a table with the targets. Progress goes
 * to stderr. The server, the nodes and the temporary directories go on exit, on SIGINT/SIGTERM
 * and by a watchdog.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Authority } from '@volact/authority';
import {
  confirmInstallation,
  generateSigningKeyPair,
  keyRefOf,
  keyedHash,
  installationProofValid,
  makeInstallationId,
  makeKey,
  parseInstallationId,
  parseKey,
  proofKeyOf,
  randomGuid,
  shortSigningKey,
} from '@volact/core';
import { startBenchPostgres, type BenchPostgres } from './authority-postgres.js';
import { ORG_LIST_TARGET_P99_MS, orgListingScenario } from './authority-orgs.js';
import { BenchChild } from './child.js';
import { percentiles, sleep } from './load.js';
import { formatNumber, formatTable } from './table.js';

const USAGE = `usage: npm run bench:authority -- [options]
  --json                one JSON line per scenario on stdout (progress goes to stderr)
  --duration SECONDS    timed window per scenario (default 5)
  --warmup SECONDS      warm-up before each timed window (default 1)
  --concurrency N       activations in flight per scenario, shared by its nodes (default 64)
  --keys N              keys of the many-keys scenarios (default 1000)
  --org-keys N          keys of the organisation listed page by page (default 100000; 0 skips it)
  --ceiling-clients N   pgbench clients of the ceiling lines (default 8)
  --only LIST           comma-separated subset of sqlite,postgres (default both)
  --profile DIR         run the nodes under --cpu-prof, writing their profiles to DIR`;

/** Targets from the issue: shown next to the figures, never asserted. */
const TARGETS = { sqlitePerSec: 2_000, postgresRatio: 0.7, hotKeyRatio: 1 };

/** Installation IDs built per scenario before its clock starts (split among its nodes). */
const IIDS_PER_SCENARIO = 48_000;

interface Options {
  json: boolean;
  durationMs: number;
  warmupMs: number;
  concurrency: number;
  manyKeys: number;
  orgKeys: number;
  ceilingClients: number;
  stores: Set<'sqlite' | 'postgres'>;
  profileDir: string | undefined;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '64' },
      keys: { type: 'string', default: '1000' },
      'org-keys': { type: 'string', default: '100000' },
      'ceiling-clients': { type: 'string', default: '8' },
      only: { type: 'string', default: 'sqlite,postgres' },
      profile: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const seconds = (name: string, v: string, max: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > max) usage(`--${name} must be a number of seconds in (0, ${max}]`);
    return Math.round(n * 1000);
  };
  const whole = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) usage(`--${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
  const stores = new Set(values.only.split(',').map((s) => s.trim()));
  for (const s of stores) if (s !== 'sqlite' && s !== 'postgres') usage(`--only: unknown store "${s}"`);
  return {
    json: values.json,
    durationMs: seconds('duration', values.duration, 60),
    warmupMs: seconds('warmup', values.warmup, 10),
    concurrency: whole('concurrency', values.concurrency, 2, 1024),
    manyKeys: whole('keys', values.keys, 2, 10_000),
    orgKeys: whole('org-keys', values['org-keys'], 0, 1_000_000),
    ceilingClients: whole('ceiling-clients', values['ceiling-clients'], 1, 64),
    stores: stores as Set<'sqlite' | 'postgres'>,
    profileDir: values.profile === undefined ? undefined : resolve(values.profile),
  };
}

function usage(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

type Line = Record<string, string | number | boolean | null | undefined>;

const round = (n: number, digits: number) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);
const progress = (text: string) => process.stderr.write(text);

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/** /proc/stat and /proc/<pid>/stat count in USER_HZ ticks, 100 a second on Linux. */
const jiffiesToMicros = (ticks: number) => ticks * 10_000;

/** CPU of this process's children that have exited (pgbench), from cutime + cstime, µs. */
function reapedChildrenMicros(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return jiffiesToMicros(Number(f[13]) + Number(f[14]));
}

/** Waits (at most 5 s) until no backend serves `db`, then a little more for the postmaster to reap them. */
async function backendsGone(adminUrl: string, db: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (let i = 0; i < 100; i++) {
      const { rows } = await client.query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1',
        [db],
      );
      if (Number(rows[0]?.n) === 0) break;
      await sleep(50);
    }
  } finally {
    await client.end();
  }
  await sleep(100);
}

/** The CPU cost of the work every activation does in the node besides the database. */
function measureSigning(): Line {
  const root = shortSigningKey(generateSigningKeyPair().privateKey);
  const key = makeKey('mak');
  const groupId = randomGuid();
  const secret = Buffer.alloc(32, 7);
  const n = 2_000;
  const iids = Array.from({ length: n }, (_, i) =>
    makeInstallationId({ kind: 'installation', key, hardwareId: `pc-${i}`, groupIds: [groupId] }),
  );
  const time = (work: (i: number) => void) => {
    for (let i = 0; i < 200; i++) work(i); // warm-up
    const start = performance.now();
    for (let i = 0; i < n; i++) work(i);
    return ((performance.now() - start) * 1000) / n;
  };
  const signer = { keyIndex: 1 as const, short: root };
  const sign = time((i) => confirmInstallation(iids[i]!, groupId, 20_000 + (i % 7), signer));
  const checks = time((i) => {
    const parsed = parseKey(key.text);
    const iid = parseInstallationId(iids[i]!.text);
    keyedHash(secret, parsed.text);
    if (!iid.keyRef.equals(keyRefOf(parsed)) || !installationProofValid(iid, proofKeyOf(parsed))) {
      throw new Error('the installation ID does not check out');
    }
  });
  return {
    scenario: 'signing',
    usPerSignature: round(sign, 1),
    signaturesPerSecPerCore: Math.round(1e6 / sign),
    usPerParseAndCheck: round(checks, 1),
    cores: cpus().length,
  };
}

interface NodeReport {
  completed: number;
  seconds: number;
  latencies: number[];
  cpuMicros: number;
  issued: number;
  exhausted: boolean;
  again: number;
  errors: Record<string, number>;
  usedByKey: number[][];
  verified: number;
}

interface Bench {
  readonly o: Options;
  readonly dir: string;
  readonly children: BenchChild[];
  pg: BenchPostgres | undefined;
  readonly signing: Line;
}

const script = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));

/** Runs `work` over `items` with at most `parallel` at a time. */
async function inParallel<T, R>(items: readonly T[], parallel: number, work: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await work(items[i] as T);
      }
    }),
  );
  return out;
}

async function pgCommits(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()',
    );
    return Number(rows[0]?.n ?? NaN);
  } finally {
    await client.end();
  }
}

async function authorityScenario(b: Bench, store: 'sqlite' | 'postgres', nodes: number, keyCount: number) {
  const name = `${store}_${nodes}n_${keyCount}k`;
  progress(`${store}, ${nodes} node${nodes > 1 ? 's' : ''}, ${keyCount} key${keyCount > 1 ? 's' : ''}: setup… `);
  const dataDir = join(b.dir, name);
  const databaseUrl = store === 'postgres' ? await b.pg!.createDatabase(name) : undefined;
  const options = databaseUrl ? { databaseUrl } : {};

  // Setup as an operator would: one group, the keys, limits that the run cannot reach.
  const setup = Authority.init(dataDir, { ...options, name: 'volact bench authority' });
  let keys: string[];
  let groupId: string;
  try {
    groupId = (await setup.addGroup({ name: 'bench' })).id;
    const limit = keyCount === 1 ? 10_000_000 : 1_000_000;
    keys = (
      await inParallel(
        Array.from({ length: keyCount }, (_, i) => i),
        8,
        () => setup.mintKey({ type: 'mak', groups: ['bench'], limit }),
      )
    ).map((m) => m.key);
  } finally {
    await setup.close();
  }
  // Statistics reach pg_stat_database when a backend exits: wait for the setup's to go.
  if (databaseUrl) await backendsGone(b.pg!.adminUrl, name);
  const commitsBefore = databaseUrl ? await pgCommits(databaseUrl) : NaN;

  const started = await Promise.all(
    Array.from({ length: nodes }, (_, i) =>
      BenchChild.start(
        `node-${i}`,
        script('authority-node.js'),
        databaseUrl ? [dataDir, databaseUrl] : [dataDir],
        b.o.profileDir
          ? ['--cpu-prof', `--cpu-prof-dir=${b.o.profileDir}`, `--cpu-prof-name=${name}-node${i}.cpuprofile`]
          : [],
      ),
    ),
  );
  const children = started.map((s) => s.child);
  b.children.push(...children);
  progress('installation IDs… ');
  await Promise.all(
    children.map((c, i) =>
      c.command('prepare', { keys, groupId, node: i, count: Math.ceil(IIDS_PER_SCENARIO / nodes) }, 60_000),
    ),
  );

  progress('running… ');
  const { warmupMs, durationMs } = b.o;
  const startAt = Date.now() + 300;
  const perNode = Math.ceil(b.o.concurrency / nodes);
  const marks: { machine: ReturnType<typeof machineCpu>; pg: number }[] = [];
  const mark = () => marks.push({ machine: machineCpu(), pg: b.pg && databaseUrl ? b.pg.cpuMicros() : NaN });
  const timers = [
    setTimeout(mark, startAt + warmupMs - Date.now()),
    setTimeout(mark, startAt + warmupMs + durationMs - Date.now()),
  ];
  let reports: NodeReport[];
  try {
    reports = (await Promise.all(
      children.map((c) =>
        c.command('run', { startAt, warmupMs, durationMs, concurrency: perNode }, warmupMs + durationMs + 60_000),
      ),
    )) as unknown as NodeReport[];
  } finally {
    for (const t of timers) clearTimeout(t);
  }
  for (const r of reports)
    if ((r as { error?: string }).error) throw new Error(String((r as { error?: string }).error));
  await Promise.all(children.map((c) => c.stop()));

  // Commits per activation (PostgreSQL): the nodes' backends have exited, so their statistics are in.
  let commits = NaN;
  if (databaseUrl) {
    await backendsGone(b.pg!.adminUrl, name);
    commits = (await pgCommits(databaseUrl)) - commitsBefore;
  }

  // Exactness: every key's used count, its installation rows and the used numbers its
  // activations were answered with (across nodes) must be the same 1..n.
  progress('checking… ');
  const check = Authority.open(dataDir, options);
  let exact = true;
  let granted = 0;
  let usedInDb = 0;
  try {
    await inParallel(
      keys.map((k, i) => [k, i] as const),
      8,
      async ([key, i]) => {
        const answered = reports.flatMap((r) => r.usedByKey[i] ?? []).sort((x, y) => x - y);
        const shown = await check.showKey(key);
        granted += answered.length;
        usedInDb += shown.used;
        const sequence = answered.every((u, j) => u === j + 1);
        if (!sequence || shown.used !== answered.length || shown.activations.length !== answered.length) {
          if (exact) {
            progress(
              `\n  key ${i}: answered ${answered.length} new activations (1..n: ${sequence}), used ${shown.used}, ${shown.activations.length} installations\n`,
            );
          }
          exact = false;
        }
      },
    );
  } finally {
    await check.close();
  }

  const completed = reports.reduce((a, r) => a + r.completed, 0);
  const perSec = reports.reduce((a, r) => a + r.completed / r.seconds, 0);
  const latencies = Float64Array.from(reports.flatMap((r) => r.latencies));
  const [p50 = NaN, p99 = NaN] = percentiles(latencies, [50, 99]);
  const [m0, m1] = marks;
  const machine = m0 && m1 ? (m1.machine.busy - m0.machine.busy) / (m1.machine.total - m0.machine.total) : NaN;
  const pgCpu = m0 && m1 ? m1.pg - m0.pg : NaN;
  const machineBusyUs = m0 && m1 ? jiffiesToMicros(m1.machine.busy - m0.machine.busy) : NaN;
  const windowUs = m0 && m1 ? jiffiesToMicros(m1.machine.total - m0.machine.total) / cpus().length : NaN;
  const nodeCpu = reports.reduce((a, r) => a + r.cpuMicros, 0);
  const errors: Record<string, number> = {};
  for (const r of reports) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const totalRequests = granted + reports.reduce((a, r) => a + r.again, 0);
  const line: Line = {
    scenario: 'authority',
    store,
    nodes,
    keys: keyCount,
    via: 'in-process',
    concurrency: perNode * nodes,
    activationsPerSec: Math.round(perSec),
    p50Ms: round(p50, 2),
    p99Ms: round(p99, 2),
    exact,
    activations: completed,
    seconds: round(reports.reduce((a, r) => a + r.seconds, 0) / reports.length, 3),
    grantedAllPhases: granted,
    usedInDatabase: usedInDb,
    nodeCpuUsPerActivation: round(nodeCpu / completed, 0),
    signUsPerActivation: b.signing.usPerSignature,
    ...(databaseUrl ? { pgCpuUsPerActivation: round(pgCpu / completed, 0) } : {}),
    cpuBusy: round(machine, 2),
    // CPU used by anything but the nodes and PostgreSQL (kernel threads, other programs), in cores.
    otherCpuCores: round((machineBusyUs - nodeCpu - (databaseUrl ? pgCpu : 0)) / windowUs, 2),
    ...(databaseUrl
      ? {
          pgCommitsPerActivation: round(commits / totalRequests, 3),
          // Keys and groups are cached by the nodes: nearly every commit is a batch (plus a few
          // lookups and each node's migration check), so this is a slight underestimate.
          meanBatch: round(totalRequests / Math.max(1, commits), 1),
        }
      : {}),
    verifiedConfirmations: reports.reduce((a, r) => a + r.verified, 0),
    ...(Object.keys(errors).length
      ? {
          errors: Object.entries(errors)
            .map(([code, count]) => `${code} ×${count}`)
            .join(', '),
        }
      : {}),
    ...(reports.some((r) => r.exhausted) ? { iidsExhausted: true } : {}),
  };
  progress(`${line.activationsPerSec}/s, exact: ${exact}\n`);
  return line;
}

function runProcess(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The bare transaction, driven by pgbench with `clients` connections. */
async function ceilingScenario(b: Bench, keyCount: number): Promise<Line> {
  const server = b.pg!;
  progress(`ceiling, ${keyCount} key${keyCount > 1 ? 's' : ''} (pgbench, ${b.o.ceilingClients} clients)… `);
  const dbName = `ceiling_${keyCount}k`;
  const url = await server.createDatabase(dbName);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // The authority's shapes: text ids (GUIDs), the installation row with its key reference.
    await client.query(`
      CREATE TABLE ceiling_keys (id TEXT PRIMARY KEY, host_limit INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE ceiling_installations (
        key_id TEXT NOT NULL REFERENCES ceiling_keys(id), hardware_ref TEXT NOT NULL,
        installation_id TEXT NOT NULL, channel TEXT NOT NULL, activation_count INTEGER NOT NULL,
        first_activated_at BIGINT NOT NULL, last_activated_at BIGINT NOT NULL,
        PRIMARY KEY (key_id, hardware_ref));
      INSERT INTO ceiling_keys (id, host_limit) SELECT md5(i::text)::uuid::text, 10000000 FROM generate_series(1, ${keyCount}) i;`);
    await client.query('VACUUM ANALYZE ceiling_keys');
  } finally {
    await client.end();
  }
  const work = mkdtempSync(join(b.dir, 'pgbench-'));
  const iidText = makeInstallationId({
    kind: 'installation',
    key: makeKey('mak'),
    hardwareId: 'pc',
    groupIds: [randomGuid()],
  }).text;
  // One statement, so one round trip: the increment only while below the limit, the row only with it.
  const file = join(work, 'activation.sql');
  writeFileSync(
    file,
    [
      `\\set k random(1, ${keyCount})`,
      '\\set h random(1, 4611686018427387903)',
      'WITH u AS (UPDATE ceiling_keys SET used = used + 1',
      '           WHERE id = md5(:k::text)::uuid::text AND used < host_limit RETURNING id)',
      'INSERT INTO ceiling_installations (key_id, hardware_ref, installation_id, channel, activation_count,',
      '                                   first_activated_at, last_activated_at)',
      `SELECT id, to_hex(:h::bigint), '${iidText}', 'online', 1, :h::bigint, :h::bigint FROM u;`,
      '',
    ].join('\n'),
  );
  const pgbench = join(server.binDir, 'pgbench');
  const common = ['-n', '-M', 'prepared', '-c', String(b.o.ceilingClients), '-j', '2', '-f', file];
  const target = ['-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', dbName];
  const seconds = (ms: number) => String(Math.max(1, Math.round(ms / 1000)));
  await runProcess(pgbench, [...common, '-T', seconds(b.o.warmupMs), ...target], work, 120_000);

  const cpu0 = { machine: machineCpu(), pg: server.cpuMicros(), pgbench: reapedChildrenMicros() };
  const out = await runProcess(
    pgbench,
    [...common, '-T', seconds(b.o.durationMs), '-l', '--log-prefix', join(work, 'tx'), ...target],
    work,
    120_000,
  );
  const machine1 = machineCpu();
  // The backends' CPU reaches the postmaster's account once they have exited and been reaped.
  await backendsGone(server.adminUrl, dbName);
  const cpu1 = { machine: machine1, pg: server.cpuMicros(), pgbench: reapedChildrenMicros() };
  const tps = Number(/^tps = ([\d.]+) \(without initial connection time\)/m.exec(out)?.[1] ?? NaN);
  const processed = Number(/^number of transactions actually processed: (\d+)/m.exec(out)?.[1] ?? NaN);
  const failed = Number(/^number of failed transactions: (\d+)/m.exec(out)?.[1] ?? 0);
  // Per-transaction log: client_id transaction_no time_us script_no epoch epoch_us.
  const latencies: number[] = [];
  for (const f of readdirSync(work).filter((n) => n.startsWith('tx.'))) {
    for (const row of readFileSync(join(work, f), 'utf8').split('\n')) {
      const us = Number(row.split(' ')[2]);
      if (row && Number.isFinite(us)) latencies.push(us / 1000);
    }
  }
  const [p50 = NaN, p99 = NaN] = percentiles(Float64Array.from(latencies), [50, 99]);

  const check = new pg.Client({ connectionString: url });
  await check.connect();
  let exact: boolean;
  try {
    const { rows } = await check.query<{ used: string; rows: string }>(
      'SELECT (SELECT sum(used) FROM ceiling_keys) AS used, (SELECT count(*) FROM ceiling_installations) AS rows',
    );
    exact = rows[0] !== undefined && rows[0].used === rows[0].rows;
  } finally {
    await check.end();
  }
  rmSync(work, { recursive: true, force: true });
  const line: Line = {
    scenario: 'ceiling',
    store: 'postgres',
    nodes: 0,
    keys: keyCount,
    via: 'pgbench',
    concurrency: b.o.ceilingClients,
    activationsPerSec: Math.round(tps),
    p50Ms: round(p50, 2),
    p99Ms: round(p99, 2),
    ratio: 1,
    exact,
    activations: processed,
    pgCpuUsPerActivation: round((cpu1.pg - cpu0.pg) / processed, 0),
    pgbenchCpuUsPerActivation: round((cpu1.pgbench - cpu0.pgbench) / processed, 0),
    cpuBusy: round((cpu1.machine.busy - cpu0.machine.busy) / (cpu1.machine.total - cpu0.machine.total), 2),
    otherCpuCores: round(
      (jiffiesToMicros(cpu1.machine.busy - cpu0.machine.busy) - (cpu1.pg - cpu0.pg) - (cpu1.pgbench - cpu0.pgbench)) /
        (jiffiesToMicros(cpu1.machine.total - cpu0.machine.total) / cpus().length),
      2,
    ),
    ...(failed ? { failed } : {}),
  };
  progress(`${line.activationsPerSec}/s\n`);
  return line;
}

async function main(): Promise<number> {
  const o = parseOptions();
  const scenarioCount = (o.stores.has('sqlite') ? 2 : 0) + (o.stores.has('postgres') ? 6 : 0);
  const budgetMs =
    60_000 + scenarioCount * (o.warmupMs + o.durationMs + 30_000) + (o.orgKeys > 0 ? o.stores.size * 300_000 : 0);
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: still running after ${Math.round(budgetMs / 1000)} s; aborting\n`);
    process.exit(1); // the exit handler stops the server and the nodes and removes the directory
  }, budgetMs);
  watchdog.unref();

  const dir = mkdtempSync(join(tmpdir(), 'volact-bench-authority-'));
  // Other programs on the machine share its cores with the nodes and PostgreSQL: say so.
  const idle0 = machineCpu();
  await sleep(1000);
  const idle1 = machineCpu();
  const busyBefore = (idle1.busy - idle0.busy) / (idle1.total - idle0.total);
  if (busyBefore > 0.1) progress(`warning: the machine was ${Math.round(busyBefore * 100)} % busy before the bench\n`);
  progress('measuring the signature… ');
  const signing: Line = { ...measureSigning(), cpuBusyBeforeBench: round(busyBefore, 2) };
  progress(`${signing.usPerSignature} µs\n`);
  const b: Bench = { o, dir, children: [], pg: undefined, signing };
  const cleanup = () => {
    for (const c of b.children) c.kill();
    try {
      b.pg?.stop();
    } finally {
      b.pg = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  };
  process.once('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

  const lines: Line[] = [];
  const emit = (line: Line) => {
    lines.push(line);
    if (o.json) process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  emit(signing);
  const keyCounts = [1, o.manyKeys];

  if (o.stores.has('sqlite')) {
    for (const k of keyCounts) emit(await authorityScenario(b, 'sqlite', 1, k));
    if (o.orgKeys > 0) for (const l of await orgListingScenario('sqlite', dir, undefined, o.orgKeys, progress)) emit(l);
  }
  if (o.stores.has('postgres')) {
    progress('starting PostgreSQL… ');
    b.pg = await startBenchPostgres();
    const settings = await b.pg.settings();
    progress(
      `${Object.entries(settings)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}\n`,
    );
    if (settings.fsync !== 'on' || settings.synchronous_commit !== 'on') {
      throw new Error('PostgreSQL runs without durable commits');
    }
    for (const k of keyCounts) {
      const ceiling = await ceilingScenario(b, k);
      ceiling.postgres = settings.server_version;
      ceiling.fsync = settings.fsync;
      emit(ceiling);
      for (const nodes of [1, 2]) {
        const line = await authorityScenario(b, 'postgres', nodes, k);
        line.ceiling = ceiling.activationsPerSec;
        line.ratio = round(Number(line.activationsPerSec) / Number(ceiling.activationsPerSec), 2);
        emit(line);
      }
    }
    if (o.orgKeys > 0) {
      const url = await b.pg.createDatabase('bench_orgs');
      for (const l of await orgListingScenario('postgres', dir, url, o.orgKeys, progress)) emit(l);
    }
  }

  if (!o.json) printReport(lines);
  progress('stopping… ');
  b.pg?.stop();
  b.pg = undefined;
  progress('done\n');
  return lines.every((l) => l.exact !== false) ? 0 : 1;
}

function printReport(lines: readonly Line[]): void {
  const n = formatNumber;
  const rows = lines
    .filter((l) => l.scenario === 'authority' || l.scenario === 'ceiling')
    .map((l) => [
      String(l.scenario),
      String(l.store),
      l.scenario === 'ceiling' ? '-' : String(l.nodes),
      n(l.keys),
      String(l.via),
      n(l.concurrency),
      n(l.activationsPerSec),
      n(l.p50Ms, 2),
      n(l.p99Ms, 2),
      n(l.ratio, 2),
      String(l.exact),
      n(l.nodeCpuUsPerActivation),
      n(l.pgCpuUsPerActivation),
      n(l.cpuBusy, 2),
      n(l.otherCpuCores, 2),
      n(l.meanBatch, 1),
    ]);
  const header = ['scenario', 'store', 'nodes', 'keys', 'via', 'in flight', 'per s', 'p50 ms', 'p99 ms'];
  const out = [
    '',
    ...formatTable(
      [...header, 'ratio', 'exact', 'node µs/act', 'pg µs/act', 'cpu busy', 'other cores', 'batch'],
      rows,
      5,
    ),
  ];

  const find = (store: string, nodes: number, keys: number) =>
    lines.find((l) => l.scenario === 'authority' && l.store === store && l.nodes === nodes && l.keys === keys);
  const many = Math.max(...lines.map((l) => Number(l.keys ?? 0)));
  const targets: string[][] = [];
  const target = (what: string, measured: string, met: boolean) =>
    targets.push([what, measured, met ? 'met' : 'NOT met']);
  for (const keys of [1, many]) {
    const l = find('sqlite', 1, keys);
    if (l) {
      target(
        `SQLite, one node, ${n(keys)} key${keys > 1 ? 's' : ''}: ≥ 2,000 activations/s`,
        `${n(l.activationsPerSec)}/s`,
        Number(l.activationsPerSec) >= TARGETS.sqlitePerSec,
      );
    }
  }
  for (const nodes of [1, 2]) {
    const l = find('postgres', nodes, many);
    if (l) {
      target(
        `PostgreSQL, ${nodes} node${nodes > 1 ? 's' : ''}, ${n(many)} keys: ≥ 0.7 × ceiling`,
        `${n(l.ratio, 2)} × (${n(l.activationsPerSec)}/s of ${n(l.ceiling)}/s)`,
        Number(l.ratio) >= TARGETS.postgresRatio,
      );
    }
  }
  for (const nodes of [1, 2]) {
    const l = find('postgres', nodes, 1);
    if (l) {
      target(
        `PostgreSQL, ${nodes} node${nodes > 1 ? 's' : ''}, one hot key: above its naive ceiling`,
        `${n(l.ratio, 2)} × (${n(l.activationsPerSec)}/s of ${n(l.ceiling)}/s)`,
        Number(l.ratio) > TARGETS.hotKeyRatio,
      );
    }
  }
  const orgLines = lines.filter((l) => l.scenario === 'org-keys');
  if (orgLines.length > 0) {
    out.push(
      '',
      `Listing an organisation's keys, pages of 100 (target p99 < ${ORG_LIST_TARGET_P99_MS} ms per page):`,
      ...formatTable(
        ['store', 'keys', 'filter', 'pages', 'rows', 'p50 ms', 'p99 ms', 'max ms', 'exact', 'target'],
        orgLines.map((l) => [
          String(l.store),
          n(l.keys),
          String(l.filter),
          n(l.pages),
          n(l.rows),
          n(l.p50Ms, 2),
          n(l.p99Ms, 2),
          n(l.maxMs, 2),
          String(l.exact),
          l.met ? 'met' : 'NOT met',
        ]),
        2,
      ),
    );
  }
  const signing = lines.find((l) => l.scenario === 'signing');
  out.push(
    '',
    'Targets (shown for comparison, not asserted):',
    ...formatTable(['target', 'measured', 'status'], targets, 1),
    '',
    'via in-process: each node is a process calling Authority.activateInstallation (no HTTP).',
    'ceiling: pgbench, one statement per activation (increment used below the limit + insert the',
    'installation row), fsync and synchronous_commit on. ratio = per s ÷ the ceiling with as many keys.',
    'node/pg µs/act: CPU of the nodes / of all PostgreSQL processes per activation in the timed window;',
    'cpu busy: share of all cores in use; other cores: CPU of everything else (kernel threads, other',
    'programs: not the bench if well above 0); batch: mean activations per key transaction (from commits).',
  );
  if (signing) {
    out.push(
      `Signing a confirmation ID (short Schnorr): ${n(signing.usPerSignature, 1)} µs of CPU` +
        ` (${n(signing.signaturesPerSecPerCore)}/s per core); parsing and checking the key and` +
        ` installation ID: ${n(signing.usPerParseAndCheck, 1)} µs; ${n(signing.cores)} cores.`,
    );
  }
  out.push('');
  process.stdout.write(`${out.join('\n')}\n`);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`\nbench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
