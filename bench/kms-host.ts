/**
 * KMS host benchmark: `npm run bench:kms-host [-- --json] [--duration S]`.
 *
 * Sets up a real authority and an activated KMS host in a temporary directory, runs the host
 * in a child process (so its CPU time is its own) and drives it over 127.0.0.1 from this
 * process: concurrency 1, 8 and 32, on persistent connections and with a new connection per
 * request. Each scenario is measured against a bare TCP server (baseline) under the same load
 * generator. Then it fills one group with 1 000 000 client IDs and reads the host's RSS.
 * Sampled responses are verified (Merkle path + Ed25519 signature) outside the timed parts.
 *
 * Output: one JSON line per scenario with --json, else a table with the targets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BenchChild } from './child.js';
import { FramePool, RequestFactory } from './frames.js';
import { fillClientIds, percentiles, runScenario, sleep, type ConnectionMode, type ScenarioResult } from './load.js';
import { prepareHost } from './setup.js';
import { ResponseVerifier } from './verify.js';

const USAGE = `usage: npm run bench:kms-host -- [options]
  --json               one JSON line per scenario on stdout (progress goes to stderr)
  --duration SECONDS   timed window per scenario (default 3)
  --warmup SECONDS     warm-up before each timed window (default 0.5)
  --clients N          client IDs for the memory scenario (default 1000000)
  --host-log FILE      where the host writes its request log (default /dev/null)
  --profile DIR        run the host under --cpu-prof, writing the profile to DIR`;

const CONCURRENCY = [1, 8, 32] as const;
const MODES: readonly ConnectionMode[] = ['reused', 'per-request'];
/** Distinct pre-built request frames the timed scenarios cycle through. */
const POOL_SIZE = 100_000;
const SAMPLES_PER_SCENARIO = 32;

/** Targets from the issue: shown next to the figures, never asserted. */
const TARGETS = {
  reusedPerSec: 25_000,
  perRequestPerSec: 7_000,
  p99Ms: 2,
  memoryBytes: 150 * 1024 * 1024,
};

interface Options {
  json: boolean;
  durationMs: number;
  warmupMs: number;
  clients: number;
  hostLog: string;
  profileDir: string | undefined;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      duration: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '0.5' },
      clients: { type: 'string', default: '1000000' },
      'host-log': { type: 'string', default: '/dev/null' },
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
  const clients = Number(values.clients);
  if (!Number.isInteger(clients) || clients < 1 || clients > 5_000_000) usage('--clients must be a whole number from 1 to 5000000');
  return {
    json: values.json,
    durationMs: seconds('duration', values.duration, 60),
    warmupMs: seconds('warmup', values.warmup, 10),
    clients,
    hostLog: values['host-log'],
    profileDir: values.profile === undefined ? undefined : resolve(values.profile),
  };
}

function usage(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

type Line = Record<string, string | number | boolean | undefined>;

const round = (n: number, digits: number) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);

function scenarioLine(scenario: string, mode: ConnectionMode, concurrency: number, r: ScenarioResult): Line {
  const [p50 = NaN, p99 = NaN] = percentiles(r.latenciesMs, [50, 99]);
  return {
    scenario,
    concurrency,
    connection: mode,
    activationsPerSec: Math.round(r.requests / r.seconds),
    p50Ms: round(p50, 3),
    p99Ms: round(p99, 3),
    serverCpuUsPerRequest: r.requests ? round(r.serverCpuMicros / r.requests, 1) : NaN,
    requests: r.requests,
    seconds: round(r.seconds, 3),
    responseBytes: Math.round(r.meanResponseBytes),
    ...(r.refusals ? { refusals: r.refusals } : {}),
    ...(r.connectionErrors ? { connectionErrors: r.connectionErrors } : {}),
  };
}

/** Counters from the host's Prometheus endpoint (read between scenarios, never during). */
async function hostCounters(metricsPort: number): Promise<{ counted: number; signatures: number }> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  return {
    counted: value(/^volact_kms_requests_total\{result="counted"\} (\d+)/m),
    signatures: value(/^volact_kms_signatures_total (\d+)/m),
  };
}

const progress = (text: string) => process.stderr.write(text);

/** The live count of the bench group, as the host reports it. */
async function groupCount(child: BenchChild): Promise<number> {
  const counts = (await child.command('counts')).counts as { name: string; count: number }[];
  return counts.find((g) => g.name === 'bench')?.count ?? 0;
}

async function main(): Promise<number> {
  const o = parseOptions();
  const scenarios = MODES.length * CONCURRENCY.length * 2;
  const budgetMs = 60_000 + scenarios * (o.warmupMs + o.durationMs + 2_000) + 150_000;
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: still running after ${Math.round(budgetMs / 1000)} s; aborting\n`);
    process.exit(1); // the exit handler kills the children and removes the temp dir
  }, budgetMs);
  watchdog.unref();

  const dir = mkdtempSync(join(tmpdir(), 'volact-bench-'));
  const children: BenchChild[] = [];
  const cleanup = () => {
    for (const c of children) c.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

  progress('setting up authority and host… ');
  const setup = await prepareHost(dir);
  const verifier = new ResponseVerifier(setup.certificate, setup.authorityRootPublicKey);
  const script = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));
  const hostExecArgv = ['--expose-gc', ...(o.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`] : [])];
  const [host, baseline] = await Promise.all([
    BenchChild.start('kms-host', script('host-process.js'), [setup.hostDir, o.hostLog], hostExecArgv),
    BenchChild.start('baseline', script('baseline-process.js')),
  ]);
  children.push(host.child, baseline.child);
  const hostPort = Number(host.ready.port);
  const metricsPort = Number(host.ready.metricsPort);
  const factory = new RequestFactory(setup.groupId);
  const pool = new FramePool(factory, Math.min(POOL_SIZE, o.clients));
  progress(`host pid ${host.child.pid} on port ${hostPort}, baseline pid ${baseline.child.pid}\n`);

  const lines: Line[] = [];
  const emit = (line: Line) => {
    lines.push(line);
    if (o.json) process.stdout.write(`${JSON.stringify(line)}\n`);
  };

  for (const mode of MODES) {
    for (const concurrency of CONCURRENCY) {
      progress(`${mode} C=${concurrency}: kms-host… `);
      const before = await hostCounters(metricsPort);
      const hostRun = await runScenario({
        port: hostPort,
        mode,
        concurrency,
        warmupMs: o.warmupMs,
        durationMs: o.durationMs,
        pool,
        serverCpuMicros: () => host.child.cpuMicros(),
        samples: SAMPLES_PER_SCENARIO,
      });
      await sleep(300); // let the host finish its flush before the baseline runs
      const after = await hostCounters(metricsPort);
      const check = verifier.verify(hostRun.samples);
      if (check.verified === 0) throw new Error(`no response could be sampled in ${mode} C=${concurrency}`);

      // The baseline answers with a frame as large as the host's average answer just now.
      progress('baseline… ');
      await baseline.child.command('response', { size: Math.round(hostRun.meanResponseBytes) });
      const baseRun = await runScenario({
        port: Number(baseline.ready.port),
        mode,
        concurrency,
        warmupMs: o.warmupMs,
        durationMs: o.durationMs,
        pool,
        serverCpuMicros: () => baseline.child.cpuMicros(),
        samples: 0,
      });
      await sleep(100);
      const baseLine = scenarioLine('baseline', mode, concurrency, baseRun);
      const hostLine = scenarioLine('kms-host', mode, concurrency, hostRun);
      hostLine.vsBaseline = round(Number(hostLine.activationsPerSec) / Number(baseLine.activationsPerSec), 2);
      // Includes the warm-up: both counters are read between scenarios.
      hostLine.responsesPerSignature = round((after.counted - before.counted) / (after.signatures - before.signatures), 2);
      hostLine.verifiedSamples = check.verified;
      hostLine.maxProofSteps = check.maxProofSteps;
      progress(`${hostLine.activationsPerSec}/s (baseline ${baseLine.activationsPerSec}/s)\n`);
      emit(baseLine);
      emit(hostLine);
    }
  }

  // Memory: one group holding o.clients distinct client IDs. The pool's IDs are the first
  // indices of the fill, so the group ends with exactly o.clients IDs.
  await sleep(600);
  const before = await host.child.command('settle');
  const rssBefore = host.child.memory().rss;
  let peakRss = rssBefore;
  const fillStart = Date.now();
  const fill = await fillClientIds({
    port: hostPort,
    factory,
    total: o.clients,
    connections: 4,
    window: 4096,
    batch: 512,
    timeoutMs: 150_000,
    onProgress: (_sent, answered) => {
      peakRss = Math.max(peakRss, host.child.memory().rss);
      const rate = Math.round(answered / Math.max(0.001, (Date.now() - fillStart) / 1000));
      progress(`\rfilling client IDs: ${answered.toLocaleString('en')} of ${o.clients.toLocaleString('en')} answered (${rate.toLocaleString('en')}/s)   `);
    },
  });
  progress('\n');
  await sleep(600); // two flush intervals: the host's pending window entries are on disk
  const settled = await host.child.command('settle', {}, 30_000);
  const mem = host.child.memory();
  const held = await groupCount(host.child);

  // The same window after a restart: restored from the host's database, never touched by a burst.
  progress('restarting the host to measure it restored from disk… ');
  await host.child.stop(30_000);
  const restartStart = Date.now();
  const restarted = await BenchChild.start('kms-host', script('host-process.js'), [setup.hostDir, o.hostLog], hostExecArgv);
  children.push(restarted.child);
  const restoreSeconds = (Date.now() - restartStart) / 1000;
  await restarted.child.command('settle', {}, 30_000);
  const memRestored = restarted.child.memory();
  const heldRestored = await groupCount(restarted.child);
  progress(`${heldRestored.toLocaleString('en')} client IDs restored in ${restoreSeconds.toFixed(1)} s\n`);

  emit({
    scenario: 'memory',
    clientIds: held,
    rssBytes: mem.rss,
    rssMB: round(mem.rss / 2 ** 20, 1),
    rssAnonBytes: mem.anon,
    rssFileBytes: mem.file,
    heapUsedBytes: Number(settled.heapUsed),
    heapTotalBytes: Number(settled.heapTotal),
    rssBeforeFillBytes: rssBefore,
    heapUsedBeforeFillBytes: Number(before.heapUsed),
    peakRssDuringFillBytes: peakRss,
    gcForced: Boolean(settled.gcForced),
    logDrainMs: round(Number(settled.logDrainMs), 1),
    lastResponseCount: fill.maxCount,
    fillPerSec: Math.round(fill.answered / fill.seconds),
    ...(fill.refusals ? { refusals: fill.refusals } : {}),
    clientIdsAfterRestart: heldRestored,
    rssAfterRestartBytes: memRestored.rss,
    restoreSeconds: round(restoreSeconds, 2),
  });

  if (!o.json) printReport(lines);
  progress('stopping… ');
  await Promise.all([restarted.child.stop(), baseline.child.stop()]);
  progress(o.profileDir ? `host CPU profiles written to ${o.profileDir}\n` : 'done\n');
  if (held !== o.clients || fill.maxCount !== o.clients || heldRestored !== o.clients) {
    process.stderr.write(
      `expected ${o.clients} client IDs; the host held ${held} (last response said ${fill.maxCount}), ${heldRestored} after a restart\n`,
    );
    return 1;
  }
  return 0;
}

function printReport(lines: readonly Line[]): void {
  const rows = lines.filter((l) => l.scenario !== 'memory');
  const header = ['scenario', 'conn', 'C', 'act/s', 'p50 ms', 'p99 ms', 'srv µs/req', 'vs base', 'resp/sig', 'requests'];
  const table = rows.map((l) => [
    String(l.scenario),
    String(l.connection),
    String(l.concurrency),
    Number(l.activationsPerSec).toLocaleString('en'),
    Number(l.p50Ms).toFixed(3),
    Number(l.p99Ms).toFixed(3),
    Number(l.serverCpuUsPerRequest).toFixed(1),
    l.vsBaseline === undefined ? '' : Number(l.vsBaseline).toFixed(2),
    l.responsesPerSignature === undefined ? '' : Number(l.responsesPerSignature).toFixed(2),
    Number(l.requests).toLocaleString('en'),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => (r[i] ?? '').length)));
  const fmt = (r: readonly string[]) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const out: string[] = ['', fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...table.map(fmt)];

  const find = (connection: ConnectionMode, c: number) =>
    lines.find((l) => l.scenario === 'kms-host' && l.connection === connection && l.concurrency === c);
  const reused8 = find('reused', 8);
  const perRequest8 = find('per-request', 8);
  const memory = lines.find((l) => l.scenario === 'memory');
  const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const mb = (bytes: unknown) => (Number(bytes) / 2 ** 20).toFixed(1);
  out.push('', 'targets (for comparison, not asserted):');
  if (reused8) {
    const v = Number(reused8.activationsPerSec);
    out.push(`  ≥ ${TARGETS.reusedPerSec.toLocaleString('en')} signed activations/s, 8 reused connections: ${v.toLocaleString('en')}/s — ${mark(v >= TARGETS.reusedPerSec)}`);
    const p99 = Number(reused8.p99Ms);
    out.push(`  p99 < ${TARGETS.p99Ms} ms at 8 clients (reused):                 ${p99.toFixed(3)} ms — ${mark(p99 < TARGETS.p99Ms)}`);
  }
  if (perRequest8) {
    const v = Number(perRequest8.activationsPerSec);
    out.push(`  ≥ ${TARGETS.perRequestPerSec.toLocaleString('en')}/s with a connection per request (C=8):     ${v.toLocaleString('en')}/s — ${mark(v >= TARGETS.perRequestPerSec)}`);
  }
  if (memory) {
    const rss = Number(memory.rssBytes);
    out.push(
      `  ${Number(memory.clientIds).toLocaleString('en')} client IDs in < ${TARGETS.memoryBytes / 2 ** 20} MB RSS:           ${(rss / 2 ** 20).toFixed(1)} MB — ${mark(rss < TARGETS.memoryBytes)}`,
      `  (V8 heap in use ${mb(memory.heapUsedBytes)} MB; RSS before the fill ${mb(memory.rssBeforeFillBytes)} MB, peak during the` +
        ` pipelined fill at ${Number(memory.fillPerSec).toLocaleString('en')}/s ${mb(memory.peakRssDuringFillBytes)} MB,` +
        ` after a restart (${Number(memory.clientIdsAfterRestart).toLocaleString('en')} IDs restored from disk) ${mb(memory.rssAfterRestartBytes)} MB)`,
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
