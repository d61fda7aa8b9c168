/**
 * One authority node under test, in its own process: `node authority-node.js DATA_DIR [DATABASE_URL]`.
 * Opens the authority (SQLite in DATA_DIR, or PostgreSQL at DATABASE_URL with the root key of
 * DATA_DIR) and drives it in-process: `concurrency` loops, each with one
 * `activateInstallation` outstanding at a time. No HTTP: the figures are the authority's
 * (parsing, checks, the store's batched transaction, the confirmation's signature).
 *
 * Commands on stdin (see child.ts):
 *   prepare {keys, groupId, node, count} — builds `count` installation IDs outside any timed
 *            part: installation i is hardware `n<node>-pc-<i>` under a key drawn at random;
 *   run {startAt, warmupMs, durationMs, concurrency} — starts at the wall-clock time startAt,
 *            measures from startAt + warmupMs for durationMs, stops issuing, waits for the
 *            requests in flight, verifies a few confirmation IDs, and reports.
 */
import { performance } from 'node:perf_hooks';
import {
  makeInstallationId,
  parseConfirmationId,
  parseInstallationId,
  TrustStore,
  parseKey,
  trustConfirmationKeys,
  verifyInstallationConfirmation,
} from '@volact/core';
import { Authority, AuthorityError } from '@volact/authority';
import { serveParent, type ChildMessage } from './child.js';

const [dataDir, databaseUrl] = process.argv.slice(2);
if (!dataDir) {
  process.stderr.write('usage: authority-node.js DATA_DIR [DATABASE_URL]\n');
  process.exit(2);
}

const authority = Authority.open(dataDir, databaseUrl ? { databaseUrl } : {});

interface Item {
  readonly key: number;
  readonly iid: string;
}

let keys: string[] = [];
let groupId = '';
let items: Item[] = [];

const SAMPLES = 32;

function prepare(msg: ChildMessage): Record<string, unknown> {
  keys = msg.keys as string[];
  groupId = String(msg.groupId);
  const node = Number(msg.node);
  const count = Number(msg.count);
  const parsed = keys.map((k) => parseKey(k));
  const start = performance.now();
  items = new Array<Item>(count);
  for (let i = 0; i < count; i++) {
    const key = parsed.length === 1 ? 0 : Math.floor(Math.random() * parsed.length);
    const iid = makeInstallationId({
      kind: 'installation',
      key: parsed[key]!,
      hardwareId: `n${node}-pc-${i}`,
      groupIds: [groupId],
    });
    items[i] = { key, iid: iid.text };
  }
  return { prepared: count, ms: Math.round(performance.now() - start) };
}

async function run(msg: ChildMessage): Promise<Record<string, unknown>> {
  const warmupMs = Number(msg.warmupMs);
  const durationMs = Number(msg.durationMs);
  const concurrency = Number(msg.concurrency);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(msg.startAt) - Date.now())));

  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  let next = 0;
  let exhausted = false;
  const latencies: number[] = [];
  /** For every key, the `used` count each new activation of it was answered with (all phases). */
  const usedByKey: number[][] = keys.map(() => []);
  let again = 0;
  const errors: Record<string, number> = {};
  const samples: { iid: string; cid: string }[] = [];
  let windowStart = 0;
  let windowEnd = 0;
  let cpuStart = process.cpuUsage();
  let cpuWindow = { user: 0, system: 0 };

  const open = () => {
    windowStart = performance.now();
    cpuStart = process.cpuUsage();
    phase = 'measure';
  };
  const close = () => {
    if (phase !== 'measure') return;
    windowEnd = performance.now();
    cpuWindow = process.cpuUsage(cpuStart);
    phase = 'stop';
  };
  const openTimer = setTimeout(open, warmupMs);
  const closeTimer = setTimeout(close, warmupMs + durationMs);

  const worker = async () => {
    while (phase !== 'stop') {
      const item = items[next++];
      if (!item) {
        exhausted = true;
        if (phase === 'warmup') throw new Error('the installation IDs ran out during the warm-up');
        close();
        break;
      }
      const sentAt = performance.now();
      try {
        const r = await authority.activateInstallation({ key: keys[item.key]!, installationId: item.iid });
        if (r.again) again++;
        else usedByKey[item.key]!.push(r.used);
        if (phase === 'measure') {
          latencies.push(performance.now() - sentAt);
          if (samples.length < SAMPLES && latencies.length % 97 === 1) {
            samples.push({ iid: item.iid, cid: r.confirmationId });
          }
        }
      } catch (err) {
        const code = err instanceof AuthorityError ? err.code : (err as Error).message.slice(0, 80);
        errors[code] = (errors[code] ?? 0) + 1;
      }
    }
  };
  const workers = Array.from({ length: concurrency }, () => worker());
  await Promise.all(workers);
  clearTimeout(openTimer);
  clearTimeout(closeTimer);

  let verified = 0;
  // As a client of this product would: the root, and the online key its product config delegates.
  const product = await authority.productConfig((await authority.group(groupId)).name);
  const cidKeys = trustConfirmationKeys(TrustStore.fromProductConfig(product));
  for (const s of samples) {
    const ok = verifyInstallationConfirmation(parseInstallationId(s.iid), groupId, parseConfirmationId(s.cid), cidKeys);
    if (!ok) throw new Error(`confirmation ${s.cid} does not verify for ${s.iid}`);
    verified++;
  }
  return {
    completed: latencies.length,
    seconds: (windowEnd - windowStart) / 1000,
    latencies: latencies.map((l) => Math.round(l * 1000) / 1000),
    cpuMicros: cpuWindow.user + cpuWindow.system,
    issued: Math.min(next, items.length),
    exhausted,
    again,
    errors,
    usedByKey,
    verified,
  };
}

serveParent({ pid: process.pid }, { prepare, run }, () => authority.close());
