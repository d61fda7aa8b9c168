import type { MachineFacts } from '../store.js';

/** The console store's part for pages, filters, sorts, counts and reports over the machines in SQL (100 000 machines) (both engines; see ../store.ts). */
export interface FleetViewStore {
  /** Writes the agents' facts (GET /v1/status `machine`) on their machines, in one transaction. */
  setMachineFacts(entries: readonly { readonly machineId: number; readonly facts: MachineFacts }[]): Promise<void>;
}
