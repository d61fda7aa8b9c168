import type { KeyType, LicenceState } from '@volact/core';
import type { AgentStatus } from '@volact/core';
import type { ProxyFileStore } from './proxy-files/store.js';
import type { FleetViewStore } from './views/store.js';
import type { WebStateStore } from './web-state/store.js';

/** An agent token, sealed; machines refer to it by id (agents may share one). */
export interface TokenRecord {
  readonly id: number;
  /** Keyed fingerprint (HMAC) of the token: finds the same token again without unsealing. */
  readonly fingerprint: string;
  readonly sealed: string;
  readonly createdAt: number;
}

export interface MachineRecord {
  readonly id: number;
  readonly name: string;
  /** HOST:PORT (plain HTTP) or https://HOST:PORT of the machine's agent. */
  readonly address: string;
  readonly tokenId: number;
  /**
   * A new token recorded before it was sent to the agent (enrolment, rotation) and not yet
   * confirmed: when the agent took it but its answer was lost, the current token fails the
   * proof and this one passes (then it becomes the machine's token). Null otherwise.
   */
  readonly pendingTokenId: number | null;
  readonly addedAt: number;
  /** Last time the agent answered a call with its data. */
  readonly lastSeenAt: number | null;
  /** The last call's failure (cleared by the next success). */
  readonly lastError: { readonly code: string; readonly message: string; readonly at: number } | null;
  /**
   * Set when what answered at the address failed its proof (PROOF_FAILED): the console calls
   * the machine no more until an operator re-enrols it. Not exported: an import re-checks.
   */
  readonly untrusted: { readonly at: number; readonly reason: string } | null;
  /** What the agent last said of its machine (GET /v1/status `machine`); null before, or from an older agent. */
  readonly facts: MachineFacts | null;
}

/** The machine as people know it, as its agent reports it (core's agentStatusSchema `machine`). */
export interface MachineFacts {
  readonly hostName: string;
  readonly os: string;
  readonly osVersion: string;
  readonly productVersion: string | null;
  /** ms */
  readonly lastBootAt: number | null;
}

/** One row of a machine's status history: written when the status changed. */
export interface SnapshotRecord {
  readonly id: number;
  readonly machineId: number;
  readonly takenAt: number;
  readonly state: LicenceState;
  readonly method: AgentStatus['method'];
  readonly group: string;
  readonly clientMachineId: string;
  /** The installed key's last five characters (…ABCDE), as the agent reports it. */
  readonly installedKey: string | null;
  readonly installedKeyType: AgentStatus['installedKeyType'];
  readonly installationId: string | null;
  readonly kmsHost: string | null;
  readonly expiresAt: string | null;
  /** The agent's whole answer, as received. */
  readonly status: AgentStatus;
}

/** One machine's answer to a status read, as ConsoleStore.recordStatuses writes it. */
export interface StatusWrite {
  readonly machineId: number;
  /** When it answered (ms): the history row's time and the machine's last contact. */
  readonly takenAt: number;
  readonly status: AgentStatus;
  /** statusDigest of `status`: a history row is written when it differs from the latest one. */
  readonly digest: string;
}

export interface StoredKeyRecord {
  readonly id: number;
  readonly name: string;
  readonly type: KeyType;
  /** …ABCDE: what the console shows of a key. */
  readonly last5: string;
  readonly fingerprint: string;
  readonly sealed: string;
  readonly addedAt: number;
  /** A MAK's counters as the authority last gave them (`console refresh-mak`); null before. */
  readonly counters: MakCountersRecord | null;
}

/** A MAK's activation counters read from the authority's admin API, kept with the time read. */
export interface MakCountersRecord {
  readonly limit: number | null;
  readonly used: number;
  readonly remaining: number | null;
  /** The authority's origin (no credentials, no path). */
  readonly authority: string;
  readonly countedAt: number;
}

/** A console user who may log in to the web UI (`console init --admin-password-file`). */
export interface AdminRecord {
  /** Unique case-insensitively. */
  readonly name: string;
  /** scrypt$N$r$p$salt$hash (see admins.ts): never the password. */
  readonly passwordHash: string;
  readonly createdAt: number;
  /** admin: everything; viewer: reads only (web/contract.ts USER_ROLES). */
  readonly role: 'admin' | 'viewer';
}

export interface ConfirmationRecord {
  readonly machineId: number;
  readonly installationId: string;
  readonly confirmationId: string;
  /** The authority's origin that issued it (no credentials, no path). */
  readonly authority: string | null;
  readonly obtainedAt: number;
}

export interface OperationRecord {
  readonly id: number;
  readonly at: number;
  readonly operation: string;
  readonly machine: string | null;
  readonly ok: boolean;
  readonly code: string | null;
  /** Never a secret: key last-five, states, origins. */
  readonly detail: string | null;
}

export type NewOperation = Omit<OperationRecord, 'id'>;

/** Everything the store holds, read in one transaction (for an export, or to compare two states). */
export interface ConsoleDump {
  readonly tokens: readonly TokenRecord[];
  readonly machines: readonly MachineRecord[];
  /** In row order (per machine: oldest first), with the digest that decides "changed". */
  readonly snapshots: readonly (SnapshotRecord & { readonly digest: string })[];
  readonly keys: readonly StoredKeyRecord[];
  readonly confirmations: readonly ConfirmationRecord[];
  /** Oldest first (row order). */
  readonly operations: readonly OperationRecord[];
}

/**
 * What an import merges into the store, by natural identity: a machine by address, a history
 * row by machine + time + digest, a key by fingerprint, a confirmation ID by machine +
 * installation ID, an operation by all its fields (as many times as the file has it).
 */
export interface ImportData {
  readonly machines: readonly {
    readonly name: string;
    readonly address: string;
    readonly addedAt: number;
    readonly lastSeenAt: number | null;
    readonly lastError: MachineRecord['lastError'];
    /** Sealed under this console's key; null when the file had no secret for it. */
    readonly token: { readonly fingerprint: string; readonly sealed: string; readonly createdAt: number } | null;
  }[];
  /** By machine address (every one in `machines`), in the file's order. */
  readonly snapshots: readonly { address: string; takenAt: number; digest: string; status: AgentStatus }[];
  readonly keys: readonly {
    readonly name: string;
    readonly type: KeyType;
    readonly last5: string;
    readonly addedAt: number;
    /** Kept when newer (countedAt) than this console's, or when it has none. */
    readonly counters: MakCountersRecord | null;
    /** This console's fingerprint when `sealed` is given; else the exporting console's. */
    readonly fingerprint: string;
    /** Sealed under this console's key; null when the file had no secret for it. */
    readonly sealed: string | null;
  }[];
  readonly confirmations: readonly (Omit<ConfirmationRecord, 'machineId'> & { readonly address: string })[];
  readonly operations: readonly NewOperation[];
}

export interface ImportCount {
  added: number;
  updated: number;
  unchanged: number;
}

export interface ImportCounts {
  readonly machines: ImportCount;
  readonly statusHistory: ImportCount;
  readonly keys: ImportCount;
  readonly confirmationIds: ImportCount;
  readonly operations: ImportCount;
  /** After the import: stored keys and machines whose secret (key, agent token) is missing. */
  readonly secretsMissing: { readonly keys: number; readonly machines: number };
}

/**
 * The console's persistence, with two engines run by one contract test (store.contract.test.ts):
 * SQLite (sqlite-store.ts) and PostgreSQL (postgres-store.ts); `openConsoleStore` picks one.
 * Names are unique ignoring the case of ASCII letters; addresses exactly.
 */
export interface ConsoleStore {
  /** Finds a token by fingerprint, or adds it; returns its id. */
  findOrAddToken(token: { fingerprint: string; sealed: string; createdAt: number }): Promise<number>;
  getToken(id: number): Promise<TokenRecord | undefined>;

  /** Throws MACHINE_EXISTS when the name or address is taken. */
  addMachine(machine: { name: string; address: string; tokenId: number; addedAt: number }): Promise<MachineRecord>;
  listMachines(): Promise<MachineRecord[]>;
  /** By name (case-insensitive) or address. */
  findMachine(nameOrAddress: string): Promise<MachineRecord | undefined>;
  /** Removes the machine with its history and stored confirmation IDs. */
  removeMachine(id: number): Promise<void>;
  /** Points the machine at another token (enrolment, rotation, re-enrolment); clears the pending one. */
  setMachineToken(machineId: number, tokenId: number): Promise<void>;
  /** Records the token about to be sent to the machine's agent (see MachineRecord.pendingTokenId), or clears it. */
  setPendingToken(machineId: number, tokenId: number | null): Promise<void>;
  /** Marks the machine untrusted (a failed proof), or with null clears the mark (re-enrolment). */
  setUntrusted(machineId: number, mark: { at: number; reason: string } | null): Promise<void>;
  /** Records the outcome of a call to the machine's agent (success: last seen; failure: last error). */
  recordContact(
    machineId: number,
    outcome: { at: number; ok: true } | { at: number; ok: false; code: string; message: string },
  ): Promise<void>;

  /**
   * Appends a snapshot unless the machine's latest one has the same `digest`; returns whether a
   * row was written (history is kept per change, not per refresh).
   */
  addSnapshot(machineId: number, takenAt: number, status: AgentStatus, digest: string): Promise<boolean>;
  /**
   * The answers of many machines (a refresh writes them in batches), in ONE transaction: for each
   * entry, what addSnapshot does (a history row when the digest changed, the machine's latest
   * status on its row) and recordContact `{at: takenAt, ok: true}`, in the entries' order.
   * Returns per entry whether a history row was written. All or nothing: when it throws (a
   * machine removed meanwhile, the database failing), nothing of the batch is written.
   */
  recordStatuses(entries: readonly StatusWrite[]): Promise<boolean[]>;
  /** The latest snapshot of every machine that has one, by machine id. */
  latestSnapshots(): Promise<Map<number, SnapshotRecord>>;
  history(machineId: number): Promise<SnapshotRecord[]>;
  /** Every machine's history rows taken before `before` (ms), ordered by machine then row (for timelines). */
  snapshotsBefore(before: number): Promise<SnapshotRecord[]>;
  /** Finds a machine by its numeric id. */
  getMachine(id: number): Promise<MachineRecord | undefined>;

  /** Throws KEY_EXISTS when the fingerprint or name is taken. `counters` is ignored (null for a new key). */
  addKey(key: Omit<StoredKeyRecord, 'id' | 'counters'>): Promise<StoredKeyRecord>;
  /** Replaces a stored key's MAK counters. */
  setKeyCounters(keyId: number, counters: MakCountersRecord): Promise<void>;
  listKeys(): Promise<StoredKeyRecord[]>;
  findKeyByName(name: string): Promise<StoredKeyRecord | undefined>;
  findKeyByFingerprint(fingerprint: string): Promise<StoredKeyRecord | undefined>;

  /** Keeps the latest confirmation ID per (machine, installation ID). */
  saveConfirmation(record: ConfirmationRecord): Promise<void>;
  /** The machine's own record for the IID, else any machine's (the IID alone decides the CID). */
  findConfirmation(machineId: number, installationId: string): Promise<ConfirmationRecord | undefined>;
  listConfirmations(): Promise<ConfirmationRecord[]>;

  /** Throws ADMIN_EXISTS when the name is taken (case-insensitively). */
  addAdmin(admin: AdminRecord): Promise<void>;
  /** By name, case-insensitively. */
  findAdmin(name: string): Promise<AdminRecord | undefined>;
  /** Returns false when there is no such admin. */
  setAdminPassword(name: string, passwordHash: string): Promise<boolean>;
  /** Console users of every role. */
  countAdmins(): Promise<number>;
  /** Every console user, by name (case-insensitively). */
  listAdmins(): Promise<AdminRecord[]>;
  /**
   * Removes a console user; false when there is none. LAST_ADMIN (nothing removed) when it is
   * the last user with the admin role: checked and done atomically (two consoles, one database).
   */
  removeAdmin(name: string): Promise<boolean>;
  /** Sets a user's role: the user as now stored, undefined when none; LAST_ADMIN as removeAdmin. */
  setAdminRole(name: string, role: AdminRecord['role']): Promise<AdminRecord | undefined>;

  logOperation(entry: NewOperation): Promise<void>;
  /** Newest first (by time, then by row). */
  listOperations(limit: number): Promise<OperationRecord[]>;

  /** Everything, in one consistent read. */
  dump(): Promise<ConsoleDump>;
  /**
   * Merges an export into the store in ONE transaction (all or nothing; see ImportData for
   * the identities). Importing the same data again changes nothing. Throws MACHINE_EXISTS /
   * KEY_EXISTS when a name in the data is taken here by another machine or key.
   */
  importData(data: ImportData): Promise<ImportCounts>;

  close(): Promise<void>;

  /** Pages, filters, sorts, counts and reports in SQL (views/). */
  readonly views: FleetViewStore;
  /** Web sessions and jobs that survive a restart (web-state/). */
  readonly webState: WebStateStore;
  /** Installation-ID files collected for isolated networks (proxy-files/). */
  readonly proxyFiles: ProxyFileStore;
}
