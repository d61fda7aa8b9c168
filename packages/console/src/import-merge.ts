/**
 * The merge of an export into a console store, decided once for both engines: `planImport`
 * reads what the store holds (`ImportState`, read in the import's transaction) and the file
 * (`ImportData`), and returns every row to write with the counts, or throws before anything
 * is written. Each engine then writes the plan in the same transaction. Pure: no I/O.
 *
 * Identities (see ImportData): a machine by address, a history row by machine + time +
 * digest, a key by fingerprint, a confirmation ID by machine + installation ID, an operation
 * by all its fields (as many times as the file has it). Rows the plan adds are seen by the
 * file's later entries, as if each entry had been written before the next was read.
 */
import type { AgentStatus } from '@volact/core';
import { ConsoleError } from './errors.js';
import { MISSING_SECRET } from './secrets.js';
import type {
  ConfirmationRecord,
  ImportCount,
  ImportCounts,
  ImportData,
  MachineRecord,
  MakCountersRecord,
  NewOperation,
  StoredKeyRecord,
  TokenRecord,
} from './store.js';

/** What the store holds, as far as an import needs it (history rows by identity only). */
export interface ImportState {
  readonly tokens: readonly TokenRecord[];
  readonly machines: readonly MachineRecord[];
  readonly snapshots: readonly { readonly machineId: number; readonly takenAt: number; readonly digest: string }[];
  /** In id order. */
  readonly keys: readonly StoredKeyRecord[];
  readonly confirmations: readonly ConfirmationRecord[];
  readonly operations: readonly NewOperation[];
}

export interface PlannedToken {
  readonly fingerprint: string;
  readonly sealed: string;
  readonly createdAt: number;
}

/** A machine's row; its token by fingerprint (a token the plan adds has no id yet). */
export interface PlannedMachine {
  readonly name: string;
  readonly address: string;
  readonly tokenFingerprint: string;
  readonly addedAt: number;
  readonly lastSeenAt: number | null;
  readonly lastError: MachineRecord['lastError'];
}

export interface PlannedSnapshot {
  readonly takenAt: number;
  readonly digest: string;
  readonly status: AgentStatus;
}

/**
 * One machine's new history rows. `rewrite`: some are older than the machine's newest row, so
 * the engine rewrites its whole history in time order (`mergeHistory`), keeping the latest
 * row (the highest id) the latest status; else they are appended in order.
 */
export interface PlannedHistory {
  readonly address: string;
  readonly rewrite: boolean;
  readonly rows: readonly PlannedSnapshot[];
}

export interface PlannedKey {
  readonly name: string;
  readonly type: StoredKeyRecord['type'];
  readonly last5: string;
  readonly fingerprint: string;
  readonly sealed: string;
  readonly addedAt: number;
  readonly counters: MakCountersRecord | null;
}

/** Written as an upsert on (machine, installation ID). */
export interface PlannedConfirmation extends Omit<ConfirmationRecord, 'machineId'> {
  readonly address: string;
}

/** The writes of an import, in the order to make them (new rows' ids follow the file's order). */
export interface ImportPlan {
  readonly tokens: readonly PlannedToken[];
  readonly newMachines: readonly PlannedMachine[];
  /** Existing machines' merged rows (token, added, last seen, last error). */
  readonly changedMachines: readonly (PlannedMachine & { readonly id: number })[];
  readonly history: readonly PlannedHistory[];
  /** Existing keys' merged rows (a missing secret given, newer counters). */
  readonly changedKeys: readonly (PlannedKey & { readonly id: number })[];
  readonly newKeys: readonly PlannedKey[];
  readonly confirmations: readonly PlannedConfirmation[];
  readonly operations: readonly NewOperation[];
  readonly counts: ImportCounts;
}

/** The fingerprint of the one agent-token row that stands for "token missing" (real ones are hex). */
export const MISSING_TOKEN_FINGERPRINT = 'missing';
const MISSING_TOKEN: PlannedToken = { fingerprint: MISSING_TOKEN_FINGERPRINT, sealed: MISSING_SECRET, createdAt: 0 };

/** A key imported without its secret keeps the exporting console's fingerprint, marked. */
const missingKeyFingerprint = (fingerprint: string) =>
  fingerprint.startsWith(MISSING_SECRET) ? fingerprint : `${MISSING_SECRET}${fingerprint}`;

/**
 * A name as the stores compare names: ASCII letters ignore case, nothing else does (SQLite's
 * NOCASE; PostgreSQL's lower() under the "C" collation).
 */
export const nameKey = (name: string) => name.replace(/[A-Z]+/g, (s) => s.toLowerCase());

/** The id a plan's row got (or had), by its natural identity. */
export function idOf(ids: ReadonlyMap<string, number>, identity: string): number {
  const id = ids.get(identity);
  if (id === undefined) throw new RangeError(`import: no row for ${identity}`);
  return id;
}

/** A history row to write; a stored one keeps its JSON as it was. */
export type HistoryRow = PlannedSnapshot & { readonly json?: string };

/** Existing and new history rows of one machine, in time order (existing first at equal times). */
export function mergeHistory(existing: readonly HistoryRow[], fresh: readonly PlannedSnapshot[]): HistoryRow[] {
  return [...existing, ...fresh].sort((a, b) => a.takenAt - b.takenAt);
}

/** A planned machine's token_id, added_at, last_seen_at and last_error_* columns, in that order. */
export const machineValues = (m: PlannedMachine, tokenIds: ReadonlyMap<string, number>) => [
  idOf(tokenIds, m.tokenFingerprint),
  m.addedAt,
  m.lastSeenAt,
  m.lastError?.code ?? null,
  m.lastError?.message ?? null,
  m.lastError?.at ?? null,
];

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type MachineEntry = Mutable<PlannedMachine> & { readonly id: number | null };
type KeyEntry = Mutable<PlannedKey> & { readonly id: number | null };

const sameError = (a: MachineRecord['lastError'], b: MachineRecord['lastError']) =>
  a === b || (a !== null && b !== null && a.code === b.code && a.message === b.message && a.at === b.at);

const count = (): ImportCount => ({ added: 0, updated: 0, unchanged: 0 });

/** Decides the whole import; throws MACHINE_EXISTS / KEY_EXISTS when a name in the file is taken. */
export function planImport(state: ImportState, data: ImportData): ImportPlan {
  const counts = {
    machines: count(),
    statusHistory: count(),
    keys: count(),
    confirmationIds: count(),
    operations: count(),
  };
  const machines = planMachines(state, data, counts.machines);
  const history = planHistory(state, data, machines.fileAddress, counts.statusHistory);
  const keys = planKeys(state, data, counts.keys);
  const confirmations = planConfirmations(state, data, machines.fileAddress, counts.confirmationIds);
  const operations = planOperations(state, data, counts.operations);
  return {
    tokens: machines.tokens,
    newMachines: machines.inserted,
    changedMachines: machines.changed,
    history,
    changedKeys: keys.changed,
    newKeys: keys.inserted,
    confirmations,
    operations,
    counts: {
      ...counts,
      secretsMissing: {
        keys: keys.all.filter((k) => k.sealed === MISSING_SECRET).length,
        machines: machines.all.filter((m) => machines.tokenSealed.get(m.tokenFingerprint) === MISSING_SECRET).length,
      },
    },
  };
}

/** Machines by address: a new one must not take a name in use; a known one merges its contact times. */
function planMachines(state: ImportState, data: ImportData, counts: ImportCount) {
  const tokenSealed = new Map(state.tokens.map((t) => [t.fingerprint, t.sealed]));
  const tokenFingerprint = new Map(state.tokens.map((t) => [t.id, t.fingerprint]));
  const tokens: PlannedToken[] = [];
  const tokenRef = (token: ImportData['machines'][number]['token']): string => {
    const t = token ?? MISSING_TOKEN;
    if (!tokenSealed.has(t.fingerprint)) {
      tokenSealed.set(t.fingerprint, t.sealed);
      tokens.push({ fingerprint: t.fingerprint, sealed: t.sealed, createdAt: t.createdAt });
    }
    return t.fingerprint;
  };

  const all: MachineEntry[] = state.machines.map((m) => ({
    id: m.id,
    name: m.name,
    address: m.address,
    tokenFingerprint: tokenFingerprint.get(m.tokenId) ?? MISSING_TOKEN_FINGERPRINT,
    addedAt: m.addedAt,
    lastSeenAt: m.lastSeenAt,
    lastError: m.lastError,
  }));
  const byAddress = new Map(all.map((m) => [m.address, m]));
  const byName = new Map(all.map((m) => [nameKey(m.name), m]));
  const inserted: MachineEntry[] = [];
  const changed = new Set<MachineEntry & { id: number }>();

  for (const m of data.machines) {
    const here = byAddress.get(m.address);
    const fileError = m.lastError && { code: m.lastError.code, message: m.lastError.message, at: m.lastError.at };
    if (!here) {
      const other = byName.get(nameKey(m.name));
      if (other) {
        throw new ConsoleError(
          'MACHINE_EXISTS',
          `the machine "${m.name}" is at ${m.address} in the file but "${m.name}" is ${other.address} here; nothing was imported`,
        );
      }
      const entry: MachineEntry = {
        id: null,
        name: m.name,
        address: m.address,
        tokenFingerprint: tokenRef(m.token),
        addedAt: m.addedAt,
        lastSeenAt: m.lastSeenAt,
        lastError: fileError,
      };
      all.push(entry);
      inserted.push(entry);
      byAddress.set(entry.address, entry);
      byName.set(nameKey(entry.name), entry);
      counts.added++;
      continue;
    }
    const lastSeenAt =
      here.lastSeenAt === null || m.lastSeenAt === null
        ? (here.lastSeenAt ?? m.lastSeenAt)
        : Math.max(here.lastSeenAt, m.lastSeenAt);
    let lastError = !here.lastError || (fileError && fileError.at > here.lastError.at) ? fileError : here.lastError;
    // A success after the error cleared it (as recordContact does).
    if (lastError && lastSeenAt !== null && lastError.at < lastSeenAt) lastError = null;
    const addedAt = Math.min(here.addedAt, m.addedAt);
    const tokenMissing = tokenSealed.get(here.tokenFingerprint) === MISSING_SECRET;
    const token = tokenMissing && m.token ? tokenRef(m.token) : here.tokenFingerprint;
    if (
      lastSeenAt === here.lastSeenAt &&
      addedAt === here.addedAt &&
      token === here.tokenFingerprint &&
      sameError(lastError, here.lastError)
    ) {
      counts.unchanged++;
      continue;
    }
    Object.assign(here, { lastSeenAt, lastError, addedAt, tokenFingerprint: token });
    if (here.id !== null) changed.add(here as MachineEntry & { id: number });
    counts.updated++;
  }
  return {
    tokens,
    inserted,
    changed: [...changed],
    all,
    tokenSealed,
    fileAddress: new Set(data.machines.map((m) => m.address)),
  };
}

/** The file's rows refer to its own machines only. */
function checkAddress(fileAddress: ReadonlySet<string>, address: string): void {
  if (!fileAddress.has(address)) throw new RangeError(`import: ${address} is not among the machines`);
}

/** History rows by machine + time + digest. */
function planHistory(
  state: ImportState,
  data: ImportData,
  fileAddress: ReadonlySet<string>,
  counts: ImportCount,
): PlannedHistory[] {
  const address = new Map(state.machines.map((m) => [m.id, m.address]));
  const identity = (machine: string | undefined, takenAt: number, digest: string) =>
    `${machine}\0${takenAt}\0${digest}`;
  const known = new Set<string>();
  const newest = new Map<string, number>();
  for (const s of state.snapshots) {
    const machine = address.get(s.machineId);
    known.add(identity(machine, s.takenAt, s.digest));
    if (machine !== undefined) newest.set(machine, Math.max(newest.get(machine) ?? s.takenAt, s.takenAt));
  }
  const fresh = new Map<string, PlannedSnapshot[]>();
  for (const s of data.snapshots) {
    checkAddress(fileAddress, s.address);
    const id = identity(s.address, s.takenAt, s.digest);
    if (known.has(id)) {
      counts.unchanged++;
      continue;
    }
    known.add(id);
    const rows = fresh.get(s.address) ?? [];
    rows.push({ takenAt: s.takenAt, digest: s.digest, status: s.status });
    fresh.set(s.address, rows);
    counts.added++;
  }
  return [...fresh].map(([machine, rows]) => {
    const before = newest.get(machine);
    const oldest = rows.reduce((t, r) => Math.min(t, r.takenAt), Infinity);
    return { address: machine, rewrite: before !== undefined && before > oldest, rows };
  });
}

/** Newer counters (by countedAt) replace the entry's; returns whether they did. */
function takeCounters(entry: KeyEntry, counters: MakCountersRecord | null): boolean {
  if (counters === null || (entry.counters !== null && counters.countedAt <= entry.counters.countedAt)) return false;
  entry.counters = { ...counters };
  return true;
}

/**
 * Keys by fingerprint. With its secret: a stored key "secret missing" of the same type and
 * last five gets it. Without: the same type and last five is taken for the same key.
 */
function planKeys(state: ImportState, data: ImportData, counts: ImportCount) {
  const all: KeyEntry[] = state.keys.map((k) => ({
    id: k.id,
    name: k.name,
    type: k.type,
    last5: k.last5,
    fingerprint: k.fingerprint,
    sealed: k.sealed,
    addedAt: k.addedAt,
    counters: k.counters,
  }));
  const byFingerprint = new Map(all.map((k) => [k.fingerprint, k]));
  const byName = new Map(all.map((k) => [nameKey(k.name), k]));
  const inserted: KeyEntry[] = [];
  const changed = new Set<KeyEntry & { id: number }>();
  const touch = (k: KeyEntry) => {
    if (k.id !== null) changed.add(k as KeyEntry & { id: number });
  };

  for (const k of data.keys) {
    const sameKey = (r: KeyEntry | undefined) =>
      r !== undefined && r.type === k.type && r.last5 === k.last5 ? r : undefined;
    // The first in id order (new rows come after the stored ones).
    const byTypeLast5 = (sealed?: string) =>
      all.find((r) => r.type === k.type && r.last5 === k.last5 && (sealed === undefined || r.sealed === sealed));
    let match: KeyEntry | undefined;
    if (k.sealed !== null) {
      match = byFingerprint.get(k.fingerprint);
      const placeholder = match ? undefined : byTypeLast5(MISSING_SECRET);
      if (placeholder) {
        byFingerprint.delete(placeholder.fingerprint);
        placeholder.fingerprint = k.fingerprint;
        placeholder.sealed = k.sealed;
        byFingerprint.set(placeholder.fingerprint, placeholder);
        takeCounters(placeholder, k.counters);
        touch(placeholder);
        counts.updated++;
        continue;
      }
    } else {
      match =
        sameKey(byFingerprint.get(k.fingerprint)) ??
        sameKey(byFingerprint.get(missingKeyFingerprint(k.fingerprint))) ??
        byTypeLast5();
    }
    if (match) {
      if (takeCounters(match, k.counters)) {
        touch(match);
        counts.updated++;
      } else {
        counts.unchanged++;
      }
      continue;
    }
    const taken = byName.get(nameKey(k.name));
    if (taken) {
      throw new ConsoleError(
        'KEY_EXISTS',
        `the key "${k.name}" (${k.last5}) in the file is another key here (${taken.last5}); nothing was imported`,
      );
    }
    const fingerprint = k.sealed === null ? missingKeyFingerprint(k.fingerprint) : k.fingerprint;
    const other = byFingerprint.get(fingerprint);
    if (other) {
      throw new ConsoleError(
        'KEY_EXISTS',
        `the key "${k.name}" (${k.last5}) in the file is stored here as "${other.name}" (${other.last5}); nothing was imported`,
      );
    }
    const entry: KeyEntry = {
      id: null,
      name: k.name,
      type: k.type,
      last5: k.last5,
      fingerprint,
      sealed: k.sealed ?? MISSING_SECRET,
      addedAt: k.addedAt,
      counters: k.counters && { ...k.counters },
    };
    all.push(entry);
    inserted.push(entry);
    byFingerprint.set(fingerprint, entry);
    byName.set(nameKey(entry.name), entry);
    counts.added++;
  }
  return { all, inserted, changed: [...changed] };
}

/** Confirmation IDs by machine + installation ID: the newer one wins. */
function planConfirmations(
  state: ImportState,
  data: ImportData,
  fileAddress: ReadonlySet<string>,
  counts: ImportCount,
): PlannedConfirmation[] {
  const address = new Map(state.machines.map((m) => [m.id, m.address]));
  const identity = (machine: string | undefined, installationId: string) => `${machine}\0${installationId}`;
  const stored = new Map<string, Mutable<PlannedConfirmation>>();
  for (const c of state.confirmations) {
    const machine = address.get(c.machineId) ?? '';
    stored.set(identity(machine, c.installationId), {
      address: machine,
      installationId: c.installationId,
      confirmationId: c.confirmationId,
      authority: c.authority,
      obtainedAt: c.obtainedAt,
    });
  }
  const written = new Map<string, PlannedConfirmation>();
  for (const c of data.confirmations) {
    checkAddress(fileAddress, c.address);
    const id = identity(c.address, c.installationId);
    const row = stored.get(id);
    if (!row) {
      const entry = {
        address: c.address,
        installationId: c.installationId,
        confirmationId: c.confirmationId,
        authority: c.authority,
        obtainedAt: c.obtainedAt,
      };
      stored.set(id, entry);
      written.set(id, entry);
      counts.added++;
    } else if (
      c.obtainedAt > row.obtainedAt &&
      (c.confirmationId !== row.confirmationId || c.authority !== row.authority)
    ) {
      Object.assign(row, { confirmationId: c.confirmationId, authority: c.authority, obtainedAt: c.obtainedAt });
      written.set(id, row);
      counts.updated++;
    } else {
      counts.unchanged++;
    }
  }
  return [...written.values()];
}

/** Operations by all their fields, as many times as the file has each. */
function planOperations(state: ImportState, data: ImportData, counts: ImportCount): NewOperation[] {
  const identity = (o: NewOperation) => JSON.stringify([o.at, o.operation, o.machine, o.ok, o.code, o.detail]);
  const stored = new Map<string, number>();
  for (const o of state.operations) stored.set(identity(o), (stored.get(identity(o)) ?? 0) + 1);
  const added: NewOperation[] = [];
  for (const o of data.operations) {
    const left = stored.get(identity(o)) ?? 0;
    if (left > 0) {
      stored.set(identity(o), left - 1);
      counts.unchanged++;
      continue;
    }
    added.push(o);
    counts.added++;
  }
  return added;
}
