/**
 * Signing benchmark: `npm run bench:signing [-- --json] [--n N] [--rounds R]`.
 *
 * The CPU an authority spends signing one confirmation ID, per scheme, in one process:
 *   - `v1`: short Schnorr v1 (`shortSign`, k·B in JavaScript with @noble/curves) — what every
 *     CID cost before online keys, and what a root still signs (key index 0, vectors);
 *   - `v2`: short Schnorr v2 (`shortSignV2`, the nonce commitment by node's native Ed25519) —
 *     what the online key signs on every activation;
 *   - `ed25519`: node's native Ed25519 sign of the same message (`crypto.sign`), the baseline
 *     v2 builds on;
 *   - `confirm`: `confirmInstallation` as the authority calls it (v2, message building and CID
 *     digit groups included).
 * Each signature is timed alone (performance.now around one call), after a warm-up; the
 * schemes take turns round by round so that a change in the machine's load falls on all alike.
 * Lines give µs per signature: mean, p50, p90, p99, and signatures/s on one core.
 *
 * Output: a table, or with --json one JSON line per scheme. Progress goes to stderr.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  confirmInstallation,
  makeInstallationId,
  makeKey,
  randomGuid,
  shortSign,
  shortSignV2,
  shortSigningKey,
} from '@volact/core';
import { percentiles } from './load.js';
import { formatNumber, formatTable } from './table.js';

const USAGE = `usage: npm run bench:signing -- [options]
  --json        one JSON line per scheme on stdout (progress goes to stderr)
  --n N         signatures per scheme per round (default 2000)
  --rounds R    rounds (default 5)`;

/** Target from issue 13: the online key's signature per activation. */
const TARGET_US = 60;

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    n: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const n = Number(values.n);
const rounds = Number(values.rounds);
if (!Number.isInteger(n) || n < 1 || !Number.isInteger(rounds) || rounds < 1) {
  console.error(USAGE);
  process.exit(2);
}

const pair = generateKeyPairSync('ed25519');
const short = shortSigningKey(pair.privateKey);
const signer = { keyIndex: 1 as const, short };
const groupId = randomGuid();
const key = makeKey('mak');
const iids = Array.from({ length: n }, (_, i) =>
  makeInstallationId({ kind: 'installation', key, hardwareId: `pc-${i}`, groupIds: [groupId] }),
);
// The message an installation confirmation signs: IID (25) ‖ group id (16) ‖ day (2).
const messages = iids.map((iid) => Buffer.concat([iid.bytes, Buffer.alloc(18, 1)]));

const SCHEMES: Record<string, (i: number) => unknown> = {
  v1: (i) => shortSign(short, 'installation-confirmation', messages[i]!),
  v2: (i) => shortSignV2(short, 'installation-confirmation', messages[i]!),
  ed25519: (i) => sign(null, messages[i]!, pair.privateKey),
  confirm: (i) => confirmInstallation(iids[i]!, groupId, 20_000 + (i % 7), signer),
};

const samples: Record<string, number[]> = Object.fromEntries(Object.keys(SCHEMES).map((s) => [s, []]));
for (const work of Object.values(SCHEMES)) for (let i = 0; i < Math.min(n, 500); i++) work(i); // warm-up
for (let r = 0; r < rounds; r++) {
  for (const [name, work] of Object.entries(SCHEMES)) {
    const out = samples[name]!;
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      work(i);
      out.push((performance.now() - start) * 1000);
    }
  }
  process.stderr.write(`round ${r + 1}/${rounds}\n`);
}

const lines = Object.entries(samples).map(([scheme, us]) => {
  const [p50, p90, p99] = percentiles(Float64Array.from(us), [50, 90, 99]) as [number, number, number];
  const mean = us.reduce((a, b) => a + b, 0) / us.length;
  const round1 = (x: number) => Math.round(x * 10) / 10;
  return {
    scenario: 'signing',
    scheme,
    signatures: us.length,
    usMean: round1(mean),
    usP50: round1(p50),
    usP90: round1(p90),
    usP99: round1(p99),
    perSecPerCore: Math.round(1e6 / mean),
  };
});

if (values.json) {
  for (const l of lines) console.log(JSON.stringify(l));
} else {
  console.log(
    formatTable(
      ['scheme', 'signatures', 'µs mean', 'p50', 'p90', 'p99', 'per s/core'],
      lines.map((l) => [
        l.scheme,
        formatNumber(l.signatures),
        String(l.usMean),
        String(l.usP50),
        String(l.usP90),
        String(l.usP99),
        formatNumber(l.perSecPerCore),
      ]),
      1,
    ).join('\n'),
  );
  console.log(`target: v2 under ${TARGET_US} µs per signature`);
}
