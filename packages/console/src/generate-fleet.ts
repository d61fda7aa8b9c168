import { createHash } from 'node:crypto';
import { DAY, LICENCE_METHODS, LICENCE_STATES, type AgentStatus, type LicenceState } from '@volact/core';
import { MISSING_TOKEN_FINGERPRINT } from './import-merge.js';
import { MISSING_SECRET } from './secrets.js';
import type { GeneratedFleetWriter, GeneratedMachineRows } from './store-rows.js';
import type { ConsoleStore, ImportData } from './store.js';

/** What `generateFleet` makes (all optional). */
export interface GenerateFleetOptions {
  /** "Now" in ms (the last history row and last contact are shortly before); default 2026-12-01T00:00Z. */
  readonly now?: number;
  /** Seeds the pseudo-random spread (same seed, same fleet); default 1. */
  readonly seed?: number;
  /** Status history rows per machine that was ever read (default 3; the last is the current status). */
  readonly history?: number;
  /** The agent token every generated machine refers to (sealed under the store's key); default none (token missing). */
  readonly token?: { readonly fingerprint: string; readonly sealed: string; readonly createdAt: number } | null;
  /** How many stored MAKs (a few machines have each installed); default 3. */
  readonly maks?: number;
  /** Operations log entries (default: one per 10 machines). */
  readonly operations?: number;
  /** Address of machine i (0-based); default 10.x.y.z:7070 (unique up to 16 million). */
  readonly address?: (i: number) => string;
  /** Name prefix (default "pc-"): names are PREFIX + a 6-digit number, so they sort as numbers. */
  readonly namePrefix?: string;
  /**
   * false: write through `importData` (the reference the bulk path is tested against; ≈45 s
   * for 100 000 machines on SQLite). Default true: machines and history written in bulk by the
   * engine when the store has no machine yet (else through importData too).
   */
  readonly bulk?: boolean;
}

export interface GeneratedFleet {
  readonly machines: number;
  readonly snapshots: number;
  /** The stored MAKs' names and last five (…ABCDE), as their machines show them. */
  readonly maks: readonly { readonly name: string; readonly last5: string }[];
}

/** mulberry32: small, fast, deterministic. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0').slice(-width);
const cmidOf = (n: number) =>
  `${hex(n * 2654435761, 8)}-${hex(n, 4)}-4${hex(n * 7, 3)}-8${hex(n * 13, 3)}-${hex(n * 31337, 12)}`;
const LAST5 = 'BCDFGHJKMPQRTVWXY2346789';
const last5Of = (n: number) =>
  `…${Array.from({ length: 5 }, (_, i) => LAST5[Math.floor(n / LAST5.length ** i) % LAST5.length]).join('')}`;

/**
 * Every key of a status generated here, sorted: JSON.stringify with it writes each object's
 * keys sorted, which is statusDigest's canonical JSON (generate-fleet.test.ts checks every
 * latest row's digest against statusDigest) at a fraction of its cost.
 */
const STATUS_KEYS = [
  ...['state', 'method', 'expiresAt', 'host', 'group', 'threshold', 'clientMachineId', 'installedKey'],
  ...['installedKeyType', 'installationId', 'count', 'directoryObject', 'lastAttempt', 'nextAttemptAt'],
  ...['name', 'domain', 'at', 'ok', 'code', 'message', 'oem', 'manufacturer', 'token', 'organisation'],
].sort();
const digestOf = (status: AgentStatus) =>
  createHash('sha256').update(JSON.stringify(status, STATUS_KEYS)).digest('hex');

/** The token machines refer to when none is given (as importData records "token missing"). */
const MISSING_TOKEN = { fingerprint: MISSING_TOKEN_FINGERPRINT, sealed: MISSING_SECRET, createdAt: 0 };

const isFleetWriter = (store: ConsoleStore): store is ConsoleStore & GeneratedFleetWriter =>
  typeof (store as Partial<GeneratedFleetWriter>).insertGeneratedFleet === 'function';

/**
 * Fills `store` with `count` generated machines, fast (100 000 in seconds: an empty store's
 * engine writes the rows importData would write, in bulk, in one transaction): names and addresses, the agents' facts, latest statuses spread over every licence
 * state and method (and some never read: state unknown), some duplicate client machine IDs,
 * a few stored MAKs installed on a few machines, `history` status rows each, some last errors
 * and an operations log. Deterministic for a seed. For benches and UI tests only.
 */
export async function generateFleet(
  store: ConsoleStore,
  count: number,
  options: GenerateFleetOptions = {},
): Promise<GeneratedFleet> {
  const now = options.now ?? Date.parse('2026-12-01T00:00:00.000Z');
  const rnd = random(options.seed ?? 1);
  const historyRows = Math.max(1, options.history ?? 3);
  const prefix = options.namePrefix ?? 'pc-';
  const address = options.address ?? ((i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7070`);
  const maks = Array.from({ length: options.maks ?? 3 }, (_, k) => ({
    name: `generated-mak-${k + 1}`,
    last5: last5Of(7919 * (k + 1)),
  }));

  const machines: GeneratedMachineRows[] = [];
  let snapshotCount = 0;
  const iso = (ms: number) => new Date(ms).toISOString();
  // The times every machine shares, formatted once (100 000 machines: ~500 000 fewer dates).
  const dayBefore = iso(now - DAY);
  const dayAfter = iso(now + DAY);
  const olderExpires = Array.from({ length: historyRows }, (_, h) => iso(now - h * 10 * DAY + 30 * DAY));
  const olderNextAttempt = Array.from({ length: historyRows }, (_, h) => iso(now - h * 10 * DAY + DAY));
  const osList = [
    ['Windows_NT', '10.0.19045 Windows 10 Pro'],
    ['Windows_NT', '10.0.22631 Windows 11 Enterprise'],
    ['Linux', '6.8.0-45-generic #45-Ubuntu SMP'],
    ['Darwin', '24.1.0 Darwin Kernel Version 24.1.0'],
  ] as const;

  for (let i = 0; i < count; i++) {
    const addr = address(i);
    const seq = String(i + 1).padStart(6, '0');
    // Every 7th machine was added by address only (its display name is the host name).
    const name = i % 7 === 3 ? addr : `${prefix}${seq}`;
    const lastSeenAt = i % 50 === 49 ? null : now - Math.floor(rnd() * 7 * DAY);
    const lastError =
      i % 23 === 0
        ? { code: 'AGENT_UNREACHABLE', message: `no answer from ${addr}`, at: now - Math.floor(rnd() * DAY) }
        : null;
    const row = { name, address: addr, addedAt: now - 90 * DAY + (i % 1000), lastSeenAt, lastError };
    if (lastSeenAt === null) {
      machines.push({ ...row, facts: null, history: [] }); // never read: state unknown, no facts
      continue;
    }
    let facts: GeneratedMachineRows['facts'] = null;
    if (i % 11 !== 5) {
      const [os, osVersion] = osList[i % osList.length] as readonly [string, string];
      facts = {
        hostName: `host-${seq}.corp.example`,
        os,
        osVersion,
        productVersion: i % 3 === 0 ? null : `16.0.${1000 + (i % 17)}`,
        lastBootAt: now - Math.floor(rnd() * 30 * DAY),
      };
    }
    const state = LICENCE_STATES[i % LICENCE_STATES.length] as LicenceState;
    const method = state === 'licensed' ? (LICENCE_METHODS[Math.floor(i / LICENCE_STATES.length) % 6] ?? null) : null;
    // Every 97th machine has the previous one's CMID (a cloned image).
    const cmid = cmidOf(i % 97 === 96 ? i - 1 : i);
    const mak = maks.length > 0 && (method === 'mak' || i % 211 === 0) ? maks[i % maks.length] : undefined;
    const expires = state === 'unlicensed' ? null : now + Math.floor((rnd() * 200 - 20) * DAY);
    const final: AgentStatus = {
      state,
      method,
      expiresAt: expires === null ? null : iso(expires),
      host: method === 'kms' ? `kms${i % 4}.corp.example:1688` : null,
      group: i % 5 === 0 ? 'office16' : 'windows',
      threshold: 5,
      clientMachineId: cmid,
      installedKey: mak ? mak.last5 : state === 'unlicensed' ? null : last5Of(i % 40),
      installedKeyType: mak ? 'mak' : state === 'unlicensed' ? null : method === 'retail' ? 'retail' : 'gvlk',
      installationId: null,
      count: null,
      directoryObject: method === 'directory' ? { name: `AO-${i % 3}`, domain: 'corp.example' } : null,
      lastAttempt:
        state === 'unlicensed' || state === 'notification'
          ? { at: dayBefore, ok: false, code: i % 2 ? 'KMS_UNREACHABLE' : 'KEY_BLOCKED', message: 'failed' }
          : null,
      nextAttemptAt: dayAfter,
    };
    const extra: Record<string, unknown> =
      method === 'oem'
        ? { oem: { manufacturer: `Maker ${i % 5}` } }
        : method === 'token'
          ? { token: { organisation: `Org ${i % 3}` } }
          : {};
    const history: GeneratedMachineRows['history'][number][] = [];
    for (let h = historyRows - 1; h >= 0; h--) {
      const status: AgentStatus =
        h === 0
          ? { ...final, ...extra }
          : {
              ...final,
              state: 'initial-grace',
              method: null,
              expiresAt: olderExpires[h] as string,
              host: null,
              lastAttempt: null,
              nextAttemptAt: olderNextAttempt[h] as string,
              threshold: h,
            };
      history.push({
        takenAt: lastSeenAt - h * 10 * DAY - (i % 1000),
        // The current status's digest is the real one (a refresh of the same status adds no row);
        // older rows only need to differ (hashing 300 000 statuses would take seconds).
        digest: h === 0 ? digestOf(status) : `generated:${i}:${h}`,
        status,
      });
    }
    snapshotCount += history.length;
    machines.push({ ...row, facts, history });
  }

  const operations: ImportData['operations'][number][] = Array.from(
    { length: options.operations ?? Math.ceil(count / 10) },
    (_, k) => {
      const i = Math.floor(rnd() * Math.max(1, count));
      const ok = k % 9 !== 0;
      return {
        at: now - (options.operations ?? count) * 1000 + k * 1000,
        operation: ['refresh', 'activate', 'install-key', 'set-kms-host'][k % 4] as string,
        machine: machines[i]?.name ?? null,
        ok,
        code: ok ? null : 'AGENT_UNREACHABLE',
        detail: ok ? 'licensed' : 'no answer',
      };
    },
  );

  const keys: ImportData['keys'][number][] = maks.map((k, n) => ({
    name: k.name,
    type: 'mak',
    last5: k.last5,
    addedAt: now - 100 * DAY,
    counters: {
      limit: 500,
      used: 10 * (n + 1),
      remaining: 500 - 10 * (n + 1),
      authority: 'https://authority.example',
      countedAt: now - DAY,
    },
    fingerprint: `generated-${n}`,
    sealed: null,
  }));
  const generated = { machines: count, snapshots: snapshotCount, maks };

  if (options.bulk !== false && isFleetWriter(store)) {
    // Keys and operations (a few thousand rows) as an import makes them; then the machines and
    // their history in bulk, unless the store has machines already (then all through importData,
    // where the keys and operations just written are found unchanged).
    await store.importData({ machines: [], snapshots: [], keys, confirmations: [], operations });
    if (await store.insertGeneratedFleet(options.token ?? MISSING_TOKEN, machines)) return generated;
  }

  await store.importData({
    machines: machines.map((m) => ({
      name: m.name,
      address: m.address,
      addedAt: m.addedAt,
      lastSeenAt: m.lastSeenAt,
      lastError: m.lastError,
      token: options.token ?? null,
    })),
    snapshots: machines.flatMap((m) => m.history.map((h) => ({ address: m.address, ...h }))),
    keys,
    confirmations: [],
    operations,
  });
  const withFacts = machines.filter((m) => m.facts !== null);
  if (withFacts.length > 0) {
    const ids = new Map((await store.listMachines()).map((m) => [m.address, m.id]));
    const entries = withFacts.flatMap((m) => {
      const machineId = ids.get(m.address);
      return machineId === undefined || m.facts === null ? [] : [{ machineId, facts: m.facts }];
    });
    await store.views.setMachineFacts(entries);
  }
  return generated;
}
