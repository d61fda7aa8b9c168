import type { Clock, LicenceState } from '@volact/core';
import type { AgentConnectionOptions } from './agent-connections.js';
import type { AgentTls } from './agent-tls.js';

/**
 * The shapes VolumeConsole's operations take and answer with (its public types). Those the web
 * API sends as they are (machines, keys, results, MAK counters) are declared by its contract.
 */
import type { MachineResult } from './web/contract.js';

export type { KeySummary, MachineResult, MachineSummary, MakCountResult } from './web/contract.js';

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
  /**
   * The console's connections to agents: kept alive between calls by default (its own pool,
   * bounded, closed with the console); `{keepAlive: false}` opens one per call.
   */
  readonly agentConnections?: AgentConnectionOptions;
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

export type Progress = (result: MachineResult, done: number, total: number) => void;

/** One address of a discovery as soon as it is probed (a job's progress row). */
export interface DiscoveryProbe {
  readonly address: string;
  /** The agent that answered with the token (recorded). */
  readonly found: DiscoveryResult['found'][number] | null;
  /** Something answered and refused (or failed after it was recorded). Both null: silent. */
  readonly refused: DiscoveryResult['refused'][number] | null;
}

export interface DiscoveryResult {
  readonly probed: number;
  /** Agents that answered with the token: recorded (added, or already known). */
  readonly found: { address: string; machine: string; displayName: string; added: boolean; state: LicenceState }[];
  /** Addresses where something answered but refused the token or did not speak the agent API. */
  readonly refused: { address: string; code: string; message: string }[];
  /** Addresses where nothing answered in time. */
  readonly silent: number;
}
