/**
 * `npm run bench:simulate`: the fleet simulator at scale — 100 000 clients × 365 days, 2 hosts,
 * host 1 down on days 100-109 — on 2 worker threads. Prints wall time, client events and
 * signed exchanges per second, memory, and the baseline measured in the same run: how many
 * Ed25519 verifications one core does (each exchange costs a client two: the host certificate
 * and the batch signature), so the figure reads as a ratio to the crypto-bound floor.
 *
 * BENCH_CLIENTS, BENCH_DAYS and BENCH_WORKERS override the defaults.
 */
import { availableParallelism } from 'node:os';
import { generateSigningKeyPair, signMessage, verifyMessage } from '@volact/core';
import { parseScenario, progressReporter, simulate } from '@volact/simulator';

const clients = Number(process.env.BENCH_CLIENTS ?? 100_000);
const days = Number(process.env.BENCH_DAYS ?? 365);
const workers = Number(process.env.BENCH_WORKERS ?? Math.min(2, availableParallelism()));

function verifyRate(): number {
  const keys = generateSigningKeyPair();
  const message = Buffer.alloc(48, 7);
  const signature = signMessage(keys.privateKey, message);
  const n = 5_000;
  const start = performance.now();
  for (let i = 0; i < n; i++) verifyMessage(keys.publicKey, message, signature);
  return n / ((performance.now() - start) / 1000);
}

const baseline = verifyRate();
const scenario = parseScenario({
  days,
  clients: { count: clients, joinOverDays: Math.min(30, days) },
  hosts: { count: 2 },
  outages: days > 100 ? [{ host: 1, fromDay: 100, days: 10 }] : [],
});
const result = await simulate(scenario, { workers, onProgress: progressReporter(process.stderr) });
const s = result.summary;
const seconds = s.wallMs / 1000;
const floor = (2 * s.exchanges) / (baseline * Math.max(1, workers));
console.log(
  `simulate: ${clients} clients × ${days} days, 2 hosts, ${s.workers} worker thread(s), ${availableParallelism()} core(s)`,
);
console.log(`  wall time        ${seconds.toFixed(1)} s (${(seconds / 60).toFixed(1)} min)`);
console.log(`  client events    ${s.events} (${Math.round(s.events / seconds)}/s)`);
console.log(
  `  signed exchanges ${s.exchanges} (${Math.round(s.exchanges / seconds)}/s), host signatures ${s.signatures}`,
);
console.log(`  peak RSS         ${(s.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
console.log(`  baseline         Ed25519 verify ${Math.round(baseline)}/s on one core`);
console.log(
  `  ratio            ${(seconds / floor).toFixed(2)}× the time of the clients' 2 verifications per exchange alone (${floor.toFixed(0)} s on ${Math.max(1, workers)} core(s))`,
);
console.log(`  clients that left licensed: ${s.clientsLeftLicensed}; final licensed ${s.final.licensed}`);
