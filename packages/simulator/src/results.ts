import type { LicenceState } from '@volact/core';
import type { Scenario } from './scenario.js';

/** What a simulation run reports: its events, a row per day, and a summary. */
export type SimEvent =
  | { kind: 'state'; client: number; at: number; from: LicenceState | null; to: LicenceState }
  | { kind: 'activated'; client: number; at: number; host: string }
  | { kind: 'reimaged'; client: number; at: number };

export interface DayRow {
  readonly day: number;
  readonly date: string;
  readonly joined: number;
  readonly states: Readonly<Record<LicenceState, number>>;
  /** Requests each host handled that day (its own statistics: every request, refused ones included). */
  readonly hostRequests: readonly number[];
  readonly requests: number;
  /** Activation attempts made by clients, and those that did not end licensed. */
  readonly attempts: number;
  readonly failures: number;
  /** Hosts answering at the end of the day. */
  readonly activeHosts: number;
  readonly dnsUp: boolean;
}

export interface Progress {
  readonly day: number;
  readonly days: number;
  readonly joined: number;
  readonly clients: number;
  readonly elapsedMs: number;
}

export interface SimulationOptions {
  /** Worker threads verifying responses; 0 verifies in this thread (default). */
  readonly workers?: number;
  /** Keep every state change, activation and re-image (memory grows with the run: for tests and small runs). */
  readonly eventLog?: boolean;
  readonly onProgress?: (p: Progress) => void;
}

export interface SimulationSummary {
  readonly clients: number;
  readonly hosts: readonly string[];
  readonly days: number;
  readonly seed: number;
  readonly wallMs: number;
  readonly workers: number;
  /** Client wake-ups processed (attempts and state boundaries). */
  readonly events: number;
  readonly attempts: number;
  readonly failures: number;
  /** Signed responses verified by clients. */
  readonly exchanges: number;
  /** Ed25519 signatures the hosts made (one per batch). */
  readonly signatures: number;
  readonly makActivations: number;
  readonly final: Readonly<Record<LicenceState, number>>;
  /** Clients that were licensed and then left `licensed` (other than by being re-imaged). */
  readonly clientsLeftLicensed: number;
  readonly firstDayAllLicensed: number | null;
  readonly peakRssBytes: number;
}

export interface SimulationResult {
  readonly scenario: Scenario;
  readonly rows: readonly DayRow[];
  readonly hostNames: readonly string[];
  readonly events: readonly SimEvent[];
  readonly summary: SimulationSummary;
}
