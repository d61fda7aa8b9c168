/**
 * Console benchmark: `npm run bench:console [-- --json] [--agents N] [--concurrency 16,64]`.
 *
 * Refreshes the status of 1 000 machines (`VolumeConsole.refresh`, what `volact console
 * refresh` runs) and measures its wall time. The machines are real: 1 000 installations
 * (`Licence.init`, a state directory each) with a real agent in front of each
 * (`createAgentServer`), all on 127.0.0.1, each on its own free port, one admin token (see
 * console-fleet.ts). They run either in one child process (`--agents-in child`: the console
 * has this process to itself, as when the agents are other machines) or in this process
 * (`process`: one event loop for the console and all the agents); by default both, the child
 * first (so this process's memory is the console's alone then). For each concurrency (the
 * console's `concurrency` option: machines called at once), `--rounds` times, in this order:
 *   - `baseline`: as many bare HTTP GET round trips at the same concurrency to a minimal
 *     node:http server (next to the agents) answering a fixed JSON body as large as an agent's
 *     status, made as the console makes its calls (packages/console/src/http.ts: `agent: false`,
 *     a new connection per request, `Connection: close`, the body read whole and parsed);
 *   - `agents direct`: the same bare GETs of /v1/status with the token, one to each real agent:
 *     what the agents cost, without the console's work;
 *   - a new console with the machines added (`machine add`, timed), then `refresh first` (the
 *     first refresh writes a history row per machine) and `refresh steady` (the second: the
 *     machines are unchanged, no history row).
 * Each line gives the median over the rounds; `× baseline` = its wall time ÷ the baseline's at
 * the same concurrency. A warm-up pass of each kind runs first, unmeasured. The CPU time of
 * this process, of the child and of the whole machine (/proc/stat) is read around every pass:
 * the machine is shared, and `other` shows what else ran meanwhile.
 *
 * Output: one JSON line per scenario with --json, else a table. Progress goes to stderr. The
 * servers are closed at the end; the child and the temporary directory go on exit, on
 * SIGINT/SIGTERM and by a watchdog.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AGENT_CONNECTION_DEFAULTS, VolumeConsole, type MachineResult } from '@volact/console';
import { BenchChild } from './child.js';
import { runStoreBench, type Engine } from './console-store.js';
import { fileDescriptors, openFleetToEnrolment, roundTrips, startMachines, type RoundTrips } from './console-fleet.js';
import { percentiles, sleep } from './load.js';
import { formatNumber, formatTable } from './table.js';

const USAGE = `usage: npm run bench:console -- [options]
  --json               one JSON line per scenario on stdout (progress goes to stderr)
  --mode MODE          refresh (default): agents refreshed; store: a console of --machines
                       generated machines, its pages, reports and counts timed
  --keep-alive LIST    refresh: the console's connections to agents: on (kept alive), off (one
                       per call); default on,off (both, each pass of each round)
  --machines N         store: machines generated (default 100000)
  --engines LIST       store: sqlite, postgres (a throwaway server); default sqlite,postgres
  --runs N             store: calls per page case (reports: a fifth); default 50
  --agents N           machines, each a real agent on its own port (default 1000)
  --concurrency LIST   comma-separated console concurrencies (default 16,64)
  --rounds N           passes of each scenario per concurrency; lines give the median (default 3)
  --agents-in LIST     where the agents run: child (one child process), process (this one);
                       default child,process
  --profile DIR        CPU profiles of this process over one more first and steady refresh
                       per concurrency, after the measured ones; and of the agents' child`;

const TOKEN = 'volact-bench-console-agent-token-0123456789';

type Where = 'process' | 'child';

interface Options {
  json: boolean;
  agents: number;
  concurrency: number[];
  rounds: number;
  agentsIn: Where[];
  profileDir: string | undefined;
  mode: 'refresh' | 'store';
  keepAlive: boolean[];
  machines: number;
  engines: Engine[];
  runs: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      agents: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '16,64' },
      rounds: { type: 'string', default: '3' },
      'agents-in': { type: 'string', default: 'child,process' },
      profile: { type: 'string' },
      mode: { type: 'string', default: 'refresh' },
      'keep-alive': { type: 'string', default: 'on,off' },
      machines: { type: 'string', default: '100000' },
      engines: { type: 'string', default: 'sqlite,postgres' },
      runs: { type: 'string', default: '50' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const whole = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) usage(`--${name} must be whole numbers from ${min} to ${max}`);
    return n;
  };
  const list = (v: string) => [...new Set(v.split(',').map((s) => s.trim()))];
  const agentsIn = list(values['agents-in']);
  for (const w of agentsIn) if (w !== 'process' && w !== 'child') usage(`--agents-in: unknown place "${w}"`);
  const mode = values.mode;
  if (mode !== 'refresh' && mode !== 'store') usage(`--mode: refresh or store, not "${mode}"`);
  const keepAlive = list(values['keep-alive']).map((k) =>
    k === 'on' ? true : k === 'off' ? false : usage(`--keep-alive: on or off, not "${k}"`),
  );
  const engines = list(values.engines);
  for (const e of engines) if (e !== 'sqlite' && e !== 'postgres') usage(`--engines: unknown engine "${e}"`);
  return {
    mode,
    keepAlive,
    machines: whole('machines', values.machines, 1, 1_000_000),
    engines: engines as Engine[],
    runs: whole('runs', values.runs, 1, 10_000),
    json: values.json,
    agents: whole('agents', values.agents, 1, 10_000),
    concurrency: list(values.concurrency).map((c) => whole('concurrency', c, 1, 1024)),
    rounds: whole('rounds', values.rounds, 1, 20),
    agentsIn: agentsIn as Where[],
    profileDir: values.profile === undefined ? undefined : resolve(values.profile),
  };
}

function usage(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

type Line = Record<string, string | number | boolean | number[] | null | undefined>;

const round = (n: number, digits: number) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const progress = (text: string) => process.stderr.write(text);
const mb = (bytes: number) => round(bytes / 2 ** 20, 1);
const script = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));

interface Memory {
  rss: number;
  heapUsed: number;
}

/** A full collection first, so that the heap in use is what is held, not garbage. */
const collectGarbage = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function memory(): Memory {
  collectGarbage();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed };
}

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total }; // all but idle and iowait
}

/** The agents and the baseline server, wherever they run. */
interface Fleet {
  readonly where: Where;
  readonly addresses: readonly string[];
  readonly agentPorts: readonly number[];
  /** The baseline server's port, once per request. */
  readonly baselinePorts: readonly number[];
  readonly statusBytes: number;
  readonly fds: { open: number; limit: number };
  /** RSS of the agents' process before they started. */
  readonly rssBefore: number;
  /** CPU time of the agents' process (µs); NaN when they run in this one. */
  agentsCpuMicros(): number;
  agentsMemory(): Promise<Memory>;
  close(): Promise<void>;
}

async function openFleet(where: Where, dir: string, o: Options, children: BenchChild[]): Promise<Fleet> {
  mkdirSync(dir);
  const onProgress = (n: number) => {
    if (n % 50 === 0 || n === o.agents) progress(`\rstarting agents: ${n} of ${o.agents}   `);
  };
  const ports = (addresses: readonly string[]) => addresses.map((a) => Number(a.slice(a.lastIndexOf(':') + 1)));
  if (where === 'process') {
    const rssBefore = memory().rss;
    const m = await startMachines(dir, o.agents, TOKEN, onProgress);
    return {
      where,
      addresses: m.addresses,
      agentPorts: ports(m.addresses),
      baselinePorts: m.addresses.map(() => m.baselinePort),
      statusBytes: Buffer.byteLength(m.statusBody),
      fds: fileDescriptors(),
      rssBefore,
      agentsCpuMicros: () => NaN,
      agentsMemory: async () => memory(),
      close: () => m.close(),
    };
  }
  const execArgv = [
    '--expose-gc',
    ...(o.profileDir
      ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, '--cpu-prof-name=agents-child.cpuprofile']
      : []),
  ];
  const { child } = await BenchChild.start('agents', script('console-fleet.js'), [], execArgv);
  children.push(child);
  const started = await child.command('start', { dir, agents: o.agents, token: TOKEN }, 60_000 + o.agents * 100);
  if (typeof started.error === 'string') throw new Error(`the agents' child: ${started.error}`);
  const addresses = started.addresses as string[];
  const baselinePort = Number(started.baselinePort);
  const fds = started.fds as { open: number; limit: number | null };
  return {
    where,
    addresses,
    agentPorts: ports(addresses),
    baselinePorts: addresses.map(() => baselinePort),
    statusBytes: Buffer.byteLength(String(started.statusBody)),
    // JSON has no Infinity: an unlimited limit comes back as null.
    fds: { open: fds.open, limit: fds.limit ?? Infinity },
    rssBefore: Number(started.rssBefore),
    agentsCpuMicros: () => child.cpuMicros(),
    // A full collection of 10 000 agents' heap on a busy machine takes a while.
    agentsMemory: async () => (await child.command('memory', {}, 300_000)) as unknown as Memory,
    close: () => child.stop(30_000),
  };
}

interface Pass {
  seconds: number;
  /** This process (user + system, all threads). */
  cpuMicros: number;
  /** The agents' child process; NaN when the agents run in this one. */
  agentsCpuMicros: number;
  /** Cores the whole machine kept busy (all processes). */
  machineCores: number;
  trips?: RoundTrips;
  results?: MachineResult[];
}

async function timed(fleet: Fleet, work: () => Promise<RoundTrips | MachineResult[]>): Promise<Pass> {
  const cpu0 = process.cpuUsage();
  const agents0 = fleet.agentsCpuMicros();
  const machine0 = machineCpu();
  const t0 = performance.now();
  const value = await work();
  const seconds = (performance.now() - t0) / 1000;
  const machine1 = machineCpu();
  const cpu = process.cpuUsage(cpu0);
  return {
    seconds,
    cpuMicros: cpu.user + cpu.system,
    agentsCpuMicros: fleet.agentsCpuMicros() - agents0,
    machineCores: ((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * cpus().length,
    ...(Array.isArray(value) ? { results: value } : { trips: value }),
  };
}

/** A profiler over this process, on during `work` when `--profile` is given. Never in a timed pass. */
class Profiler {
  #session: Session | undefined;

  constructor(private readonly dir: string | undefined) {}

  async around<T>(name: string, work: () => Promise<T>): Promise<T> {
    if (!this.dir) return work();
    if (!this.#session) {
      this.#session = new Session();
      this.#session.connect();
      await this.#session.post('Profiler.enable');
    }
    await this.#session.post('Profiler.start');
    try {
      return await work();
    } finally {
      const { profile } = await this.#session.post('Profiler.stop');
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(join(this.dir, `${name}.cpuprofile`), JSON.stringify(profile));
    }
  }

  close(): void {
    this.#session?.disconnect();
  }
}

/** One line from the passes of one scenario: medians over the passes, all latencies pooled. */
function line(scenario: string, where: Where, concurrency: number, passes: readonly Pass[]): Line {
  const seconds = median(passes.map((p) => p.seconds));
  const count = passes[0]?.trips?.requests ?? passes[0]?.results?.length ?? 0;
  const cpu = median(passes.map((p) => p.cpuMicros));
  const agentsCpu = median(passes.map((p) => p.agentsCpuMicros));
  const out: Line = {
    scenario,
    agentsIn: where,
    concurrency,
    machines: count,
    seconds: round(seconds, 3),
    perSec: Math.round(count / seconds),
  };
  const trips = passes.flatMap((p) => (p.trips ? [p.trips] : []));
  if (trips.length) {
    const all = new Float64Array(trips.reduce((a, t) => a + t.latenciesMs.length, 0));
    let at = 0;
    for (const t of trips) {
      all.set(t.latenciesMs, at);
      at += t.latenciesMs.length;
    }
    const [p50 = NaN, p95 = NaN, p99 = NaN] = percentiles(all, [50, 95, 99]);
    Object.assign(out, { p50Ms: round(p50, 2), p95Ms: round(p95, 2), p99Ms: round(p99, 2) });
    out.failed = trips.reduce((a, t) => a + t.failed, 0);
    out.bodyBytes = Math.round(trips[0]?.bodyBytes ?? NaN);
  }
  const results = passes.flatMap((p) => p.results ?? []);
  if (results.length) {
    out.failed = results.filter((r) => !r.ok).length;
    // History rows written, per pass.
    out.changed = Math.round(results.filter((r) => r.changed === true).length / passes.length);
    // Refresh gives no per-machine timings: Little's law gives the mean time in flight.
    out.meanMsInFlight = round((concurrency * seconds * 1000) / count, 2);
  }
  out.mainCpuUsPerMachine = Math.round(cpu / count);
  if (Number.isFinite(agentsCpu)) out.agentsCpuUsPerMachine = Math.round(agentsCpu / count);
  const ours = (cpu + (Number.isFinite(agentsCpu) ? agentsCpu : 0)) / 1e6 / seconds;
  out.coresBusy = round(ours, 2);
  // What else the machine ran meanwhile (kernel threads, other programs), in cores.
  out.otherCores = round(Math.max(0, median(passes.map((p) => p.machineCores)) - ours), 2);
  if (passes.length > 1) out.roundsSeconds = passes.map((p) => round(p.seconds, 3));
  return out;
}

/** Every scenario at every concurrency against one fleet. */
async function measure(
  fleet: Fleet,
  fleetDir: string,
  dir: string,
  o: Options,
  profiler: Profiler,
  emit: (l: Line) => void,
) {
  const { where } = fleet;
  const bare = (ports: readonly number[], concurrency: number) => () =>
    roundTrips(ports, concurrency, '/v1/status', TOKEN);
  /** A new console with the machines; the first and second refresh. */
  const consolePasses = async (
    name: string,
    concurrency: number,
    keepAlive = true,
    addresses: readonly string[] = fleet.addresses,
  ) => {
    const consoleDir = join(dir, name);
    const vc = VolumeConsole.init(consoleDir, { concurrency, agentConnections: { keepAlive } });
    try {
      const add = await timed(fleet, async () => {
        await vc.addMachines(addresses, TOKEN);
        return [];
      });
      const first = await timed(fleet, () => vc.refresh([]));
      const steady = await timed(fleet, () => vc.refresh([]));
      return { add, first, steady };
    } finally {
      await vc.close();
      rmSync(consoleDir, { recursive: true, force: true });
      openFleetToEnrolment(fleetDir);
    }
  };

  progress('warm-up… ');
  const c0 = o.concurrency[0] as number;
  await bare(fleet.agentPorts, c0)();
  await bare(fleet.baselinePorts, c0)();
  // The console's warm-up on 1 000 machines at most (JIT, caches): a whole pass of a large fleet adds time, not warmth.
  for (const keepAlive of o.keepAlive) {
    await consolePasses(`console-warm-up-${keepAlive}`, c0, keepAlive, fleet.addresses.slice(0, 1000));
  }
  progress('done\n');

  for (const concurrency of o.concurrency) {
    const passes = new Map<string, Pass[]>();
    /** A console's passes are kept per keep-alive setting (` keep-alive` / ` no keep-alive`). */
    const tag = (keepAlive: boolean) => (keepAlive ? ' keep-alive' : ' no keep-alive');
    const record = (kind: string, p: Pass) => {
      passes.set(kind, [...(passes.get(kind) ?? []), p]);
      return p.seconds.toFixed(2);
    };
    for (let r = 0; r < o.rounds; r++) {
      progress(`agents in ${where}, C=${concurrency}, round ${r + 1}/${o.rounds}: baseline… `);
      progress(`${record('baseline', await timed(fleet, bare(fleet.baselinePorts, concurrency)))} s; direct… `);
      progress(`${record('agents direct', await timed(fleet, bare(fleet.agentPorts, concurrency)))} s; refresh… `);
      for (const keepAlive of o.keepAlive) {
        const c = await consolePasses(`console-c${concurrency}-${r}-${keepAlive}`, concurrency, keepAlive);
        record(`machine add${tag(keepAlive)}`, c.add);
        progress(
          `${tag(keepAlive).trim()}: first ${record(`refresh first${tag(keepAlive)}`, c.first)} s, steady ${record(`refresh steady${tag(keepAlive)}`, c.steady)} s; `,
        );
      }
      progress('\n');
    }
    if (o.profileDir) {
      progress('profiling… ');
      const consoleDir = join(dir, `console-c${concurrency}-profiled`);
      const vc = VolumeConsole.init(consoleDir, { concurrency });
      try {
        await vc.addMachines(fleet.addresses, TOKEN);
        await profiler.around(`refresh-first-${where}-c${concurrency}`, () => vc.refresh([]));
        await profiler.around(`refresh-steady-${where}-c${concurrency}`, () => vc.refresh([]));
      } finally {
        await vc.close();
        rmSync(consoleDir, { recursive: true, force: true });
        openFleetToEnrolment(fleetDir);
      }
      progress('done\n');
    }
    const [main, agents] = [memory(), await fleet.agentsMemory()];
    const baseLine = line('baseline', where, concurrency, passes.get('baseline') ?? []);
    const vs = (l: Line) => ({ ...l, timeVsBaseline: round(Number(l.seconds) / Number(baseLine.seconds), 2) });
    emit(baseLine);
    emit(vs(line('agents direct', where, concurrency, passes.get('agents direct') ?? [])));
    const perSec: Record<string, number> = {};
    for (const keepAlive of o.keepAlive) {
      const t = tag(keepAlive);
      const add = passes.get(`machine add${t}`) ?? [];
      const first = line(`refresh first${t}`, where, concurrency, passes.get(`refresh first${t}`) ?? []);
      const steady = line(`refresh steady${t}`, where, concurrency, passes.get(`refresh steady${t}`) ?? []);
      perSec[`first${t}`] = Number(first.perSec);
      perSec[`steady${t}`] = Number(steady.perSec);
      emit({
        ...vs(first),
        keepAlive,
        machineAddSeconds: round(median(add.map((p) => p.seconds)), 3),
      });
      emit({
        ...vs(steady),
        keepAlive,
        mainRssMB: mb(main.rss),
        mainHeapUsedMB: mb(main.heapUsed),
        mainMaxRssMB: mb(process.resourceUsage().maxRSS * 1024),
        ...(where === 'child' ? { agentsRssMB: mb(agents.rss), agentsHeapUsedMB: mb(agents.heapUsed) } : {}),
      });
    }
    if (o.keepAlive.length === 2) {
      // Machines a second with keep-alive ÷ without, measured in the same run.
      emit({
        scenario: 'keep-alive ratio',
        agentsIn: where,
        concurrency,
        firstKeepAliveVsNot: round(perSec['first keep-alive']! / perSec['first no keep-alive']!, 2),
        steadyKeepAliveVsNot: round(perSec['steady keep-alive']! / perSec['steady no keep-alive']!, 2),
      });
    }
  }
}

async function storeMain(o: Options): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'volact-bench-console-store-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  const lines: Record<string, string | number | null>[] = [];
  await runStoreBench({
    machines: o.machines,
    engines: o.engines,
    runs: o.runs,
    dir,
    progress,
    emit: (l) => {
      lines.push(l);
      if (o.json) process.stdout.write(`${JSON.stringify(l)}\n`);
    },
  });
  if (!o.json) {
    const n = formatNumber;
    const rows = lines
      .filter((l) => l.case !== 'generate')
      .map((l) => [
        String(l.engine),
        String(l.case),
        n(l.rows),
        n(l.runs),
        n(l.p50Ms, 1),
        n(l.p99Ms, 1),
        n(l.maxMs, 1),
      ]);
    const out = ['', ...formatTable(['engine', 'case', 'rows', 'runs', 'p50 ms', 'p99 ms', 'max ms'], rows, 2), ''];
    for (const g of lines.filter((l) => l.case === 'generate')) {
      out.push(
        `${String(g.engine)}: ${n(g.machines)} machines, ${n(g.snapshots)} status rows generated in ${n(g.seconds, 1)} s.`,
      );
    }
    out.push('Targets: a machines page p99 < 100 ms, each report (whole) < 1 s.', '');
    process.stdout.write(`${out.join('\n')}\n`);
  }
  return 0;
}

async function main(): Promise<number> {
  const o = parseOptions();
  if (o.mode === 'store') return storeMain(o);
  const maxC = Math.max(...o.concurrency);
  const passCount = o.agentsIn.length * (o.concurrency.length * o.rounds + 1) * (2 + 3 * o.keepAlive.length);
  const budgetMs = 120_000 + o.agentsIn.length * o.agents * 100 + passCount * (10_000 + o.agents * 20);
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: still running after ${Math.round(budgetMs / 1000)} s; aborting\n`);
    process.exit(1); // the exit handler kills the child and removes the temp dir
  }, budgetMs);
  watchdog.unref();

  // A listening socket per agent, two per call in flight (both ends in the same process when
  // the agents run in this one), SQLite, node's own: say so now rather than fail with EMFILE.
  const fds = fileDescriptors();
  // Kept-alive connections: up to the pool's idle bounds, both ends when the agents run here.
  const kept = AGENT_CONNECTION_DEFAULTS.maxIdle + AGENT_CONNECTION_DEFAULTS.maxBriefIdle;
  const needed = fds.open + o.agents + 4 * maxC + 2 * Math.min(o.agents, kept) + 64;
  if (needed > fds.limit) {
    process.stderr.write(
      `bench: ${o.agents} agents and ${maxC} calls in flight need about ${needed} file descriptors; ` +
        `the limit (ulimit -n) is ${fds.limit}: raise it (ulimit -n ${needed}) or pass fewer --agents\n`,
    );
    return 2;
  }

  // Other programs on the machine share its cores with the bench: say so.
  const idle0 = machineCpu();
  await sleep(1000);
  const idle1 = machineCpu();
  const busyBefore = (idle1.busy - idle0.busy) / (idle1.total - idle0.total);
  if (busyBefore > 0.1) progress(`warning: the machine was ${Math.round(busyBefore * 100)} % busy before the bench\n`);

  const dir = mkdtempSync(join(tmpdir(), 'volact-bench-console-'));
  const children: BenchChild[] = [];
  process.once('exit', () => {
    for (const c of children) c.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

  const lines: Line[] = [];
  const emit = (l: Line) => {
    lines.push(l);
    if (o.json) process.stdout.write(`${JSON.stringify(l)}\n`);
  };
  const profiler = new Profiler(o.profileDir);

  for (const where of o.agentsIn) {
    const t0 = performance.now();
    const fleetDir = join(dir, `fleet-${where}`);
    const fleet = await openFleet(where, fleetDir, o, children);
    try {
      const startSeconds = (performance.now() - t0) / 1000;
      const agentsMem = await fleet.agentsMemory();
      progress(
        `in ${startSeconds.toFixed(1)} s (${where}); ${fleet.fds.open} file descriptors open there (limit ${fleet.fds.limit})\n`,
      );
      emit({
        scenario: 'setup',
        agentsIn: where,
        machines: o.agents,
        agentsStartSeconds: round(startSeconds, 1),
        statusBodyBytes: fleet.statusBytes,
        fdsOpen: fleet.fds.open,
        fdLimit: Number.isFinite(fleet.fds.limit) ? fleet.fds.limit : null,
        rssBeforeAgentsMB: mb(fleet.rssBefore),
        rssWithAgentsMB: mb(agentsMem.rss),
        kBPerAgent: Math.round((agentsMem.rss - fleet.rssBefore) / 1024 / o.agents),
        heapUsedWithAgentsMB: mb(agentsMem.heapUsed),
        cores: cpus().length,
        cpuBusyBeforeBench: round(busyBefore, 2),
        node: process.version,
      });
      await measure(fleet, fleetDir, join(dir, `consoles-${where}`), o, profiler, emit);
    } finally {
      progress('stopping the agents… ');
      await fleet.close();
      progress('done\n');
    }
  }
  profiler.close();
  if (o.profileDir) progress(`CPU profiles written to ${o.profileDir}\n`);
  if (!o.json) printReport(lines);
  const failed = lines.reduce((a, l) => a + Number(l.failed ?? 0), 0);
  if (failed) process.stderr.write(`${failed} calls or machines failed (see "failed")\n`);
  return failed ? 1 : 0;
}

function printReport(lines: readonly Line[]): void {
  const n = formatNumber;
  const rows = lines
    .filter((l) => l.concurrency !== undefined && l.scenario !== 'keep-alive ratio')
    .map((l) => [
      String(l.agentsIn),
      String(l.scenario),
      n(l.concurrency),
      n(l.seconds, 3),
      n(l.perSec),
      n(l.p50Ms, 2),
      n(l.p95Ms, 2),
      n(l.p99Ms, 2),
      n(l.meanMsInFlight, 2),
      n(l.mainCpuUsPerMachine),
      n(l.agentsCpuUsPerMachine),
      n(l.coresBusy, 2),
      n(l.otherCores, 2),
      n(l.timeVsBaseline, 2),
      l.changed === undefined ? '' : n(l.changed),
      n(l.failed),
    ]);
  const header = ['agents in', 'scenario', 'C', 'wall s', 'per s', 'p50 ms', 'p95 ms', 'p99 ms', 'mean ms'];
  const out = [
    '',
    ...formatTable([...header, 'main µs', 'agents µs', 'cores', 'other', '× baseline', 'changed', 'failed'], rows, 2),
    '',
    'C: machines (or bare round trips) in flight. Each line: the median over the rounds.',
    'p50-p99: per round trip (bare GETs only). mean ms: a machine in flight, C × wall ÷ N (Little).',
    'main µs: CPU of this process per machine (the console, or the bare client; with the agents in',
    'process, theirs too); agents µs: the agents’ (or baseline server’s) child process. cores: their',
    'CPU ÷ wall; other: cores the rest of the machine used meanwhile. × baseline: wall ÷ the baseline',
    'wall at the same C. changed: history rows written per refresh.',
    '',
  ];
  for (const r of lines.filter((l) => l.scenario === 'keep-alive ratio')) {
    out.push(
      `Agents in ${String(r.agentsIn)}, C=${n(r.concurrency)}: machines a second with keep-alive ÷ without: ` +
        `first refresh ${n(r.firstKeepAliveVsNot, 2)}×, steady ${n(r.steadyKeepAliveVsNot, 2)}×.`,
    );
  }
  for (const s of lines.filter((l) => l.scenario === 'setup')) {
    const where = String(s.agentsIn);
    const mem = `${where === 'process' ? 'this process' : "the child's"} RSS ${n(s.rssBeforeAgentsMB, 1)} → ${n(s.rssWithAgentsMB, 1)} MB`;
    out.push(
      `Agents in ${where}: ${n(s.machines)} started in ${n(s.agentsStartSeconds, 1)} s; ${mem} ` +
        `(${n(s.kBPerAgent)} kB per agent), heap in use ${n(s.heapUsedWithAgentsMB, 1)} MB; ` +
        `${n(s.fdsOpen)} file descriptors open (limit ${s.fdLimit === null ? 'none' : n(s.fdLimit)}).`,
    );
    const steady = lines.filter((l) => l.agentsIn === where && l.scenario === 'refresh steady').at(-1);
    if (steady) {
      out.push(
        `  After its refreshes: this process RSS ${n(steady.mainRssMB, 1)} MB, heap in use ${n(steady.mainHeapUsedMB, 1)} MB` +
          ` (after a full GC), peak RSS so far ${n(steady.mainMaxRssMB, 1)} MB` +
          (where === 'child'
            ? `; the agents' child RSS ${n(steady.agentsRssMB, 1)} MB, heap ${n(steady.agentsHeapUsedMB, 1)} MB.`
            : '.'),
      );
    }
  }
  const setup = lines.find((l) => l.scenario === 'setup');
  out.push(
    `Status body ${n(setup?.statusBodyBytes)} bytes; ${n(setup?.cores)} cores, ` +
      `${Math.round(Number(setup?.cpuBusyBeforeBench) * 100)} % busy before the bench; node ${String(setup?.node)}.`,
    '',
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`\nbench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
