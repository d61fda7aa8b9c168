import type { AgentStatus, Clock, KeyType, LicenceState } from '@volact/core';
import type { AgentTls } from './agent-tls.js';

/** The shapes VolumeConsole's operations take and answer with (its public types). */

export interface ConsoleOptions {
  readonly clock?: Clock;
  /** How many machines are called at once (default 16). */
  readonly concurrency?: number;
  /** Per call to an agent (default 5 000 ms; activations get at least 30 s). */
  readonly agentTimeoutMs?: number;
  /**
   * For https:// agents with mutual TLS: the CA and this console's client certificate. open,
   * connect and create load it from the data directory (`console agent-tls`) when not given.
   */
  readonly agentTls?: AgentTls;
}

/** Where the console keeps its records: SQLite in the data directory unless a PostgreSQL URL is given. */
export interface ConsoleStoreOptions extends ConsoleOptions {
  /** postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE; the key file stays in the data directory. */
  readonly databaseUrl?: string;
}

/** Machines an operation works on: names, addresses or numeric ids, or every machine. */
export type MachineSelection = readonly string[] | 'all';

/** How many machines were in each licence state at the end of one day (UTC), as last recorded. */
export interface TimelineDay {
  readonly day: string;
  readonly counts: Record<LicenceState, number>;
}

/** One stored MAK's counters refreshed from the authority, or why not. */
export interface MakCountResult {
  readonly name: string;
  readonly key: string;
  readonly ok: boolean;
  readonly code: string | null;
  readonly message: string;
  readonly limit: number | null;
  readonly used: number | null;
  readonly remaining: number | null;
}

/** One machine's outcome of a console operation. */
export interface MachineResult {
  readonly machine: string;
  readonly address: string;
  readonly ok: boolean;
  /** null on success; else the console's code, or the agent's or authority's own code. */
  readonly code: string | null;
  readonly message: string;
  /** The machine's licence state after the operation, when its agent answered. */
  readonly state: LicenceState | null;
  readonly method: AgentStatus['method'];
  /** refresh: whether the status changed (a history row was written). */
  readonly changed?: boolean;
  readonly installationId?: string;
  readonly confirmationId?: string;
}

export type Progress = (result: MachineResult, done: number, total: number) => void;

export interface MachineSummary {
  /** Stable numeric id: what `--machine ID` takes (names and addresses work too). */
  readonly id: number;
  readonly name: string;
  readonly address: string;
  readonly addedAt: string;
  readonly lastSeenAt: string | null;
  readonly lastError: { code: string; message: string; at: string } | null;
  /** Set when the machine failed its proof: no call goes to it until `machine enrol`. */
  readonly untrusted: { at: string; reason: string } | null;
  readonly state: LicenceState | null;
  readonly method: AgentStatus['method'];
  readonly group: string | null;
  readonly clientMachineId: string | null;
  readonly installedKey: string | null;
  readonly installedKeyType: AgentStatus['installedKeyType'] | null;
  readonly kmsHost: string | null;
  readonly expiresAt: string | null;
}

export interface KeySummary {
  readonly name: string;
  readonly type: KeyType;
  /** …ABCDE: never more of a key. */
  readonly key: string;
  readonly addedAt: string;
}

export interface DiscoveryResult {
  readonly probed: number;
  /** Agents that answered with the token: recorded (added, or already known). */
  readonly found: { address: string; machine: string; added: boolean; state: LicenceState }[];
  /** Addresses where something answered but refused the token or did not speak the agent API. */
  readonly refused: { address: string; code: string; message: string }[];
  /** Addresses where nothing answered in time. */
  readonly silent: number;
}
