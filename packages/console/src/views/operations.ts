import { LICENCE_STATES, type LicenceState } from '@volact/core';
import { ConsoleError } from '../errors.js';
import type { Fleet } from '../fleet.js';
import type { MachineSummary } from '../results.js';
import type { OperationRecord } from '../store.js';
import type { MachineFilter, MachinesQuery, OperationsQuery } from '../web/contract.js';

/** The console's views over the store (VolumeConsole's pages, counts and lookups; reports: report-operations.ts). */

/** One page of the machines table, filtered and sorted in SQL; `total` = rows matching. */
export async function pageMachines(
  fleet: Fleet,
  query: MachinesQuery,
): Promise<{ machines: MachineSummary[]; total: number }> {
  const { machines, total } = await fleet.store.views.pageMachines({
    offset: query.offset,
    limit: query.limit,
    sort: query.sort,
    dir: query.dir,
    q: query.q,
    state: query.state,
    method: query.method,
  });
  return { machines: machines.map((v) => fleet.summary(v.machine, v.latest)), total };
}

/** The ids (as text: machine references) of every machine matching the filter, by id. */
export async function machineIds(fleet: Fleet, filter: MachineFilter): Promise<string[]> {
  return (await fleet.store.views.machineIds(filter)).map(String);
}

/** One machine (id, name, address, or host name when one machine alone has it) as listed. */
export async function findMachineSummary(fleet: Fleet, ref: string): Promise<MachineSummary | undefined> {
  let id: number | undefined;
  try {
    id = (await fleet.resolve([ref]))[0]?.id;
  } catch (err) {
    if (err instanceof ConsoleError && err.code === 'MACHINE_NOT_FOUND') return undefined;
    throw err;
  }
  const view = id === undefined ? undefined : await fleet.store.views.machineView(id);
  return view && fleet.summary(view.machine, view.latest);
}

/** Machines per latest licence state (`unknown`: never read), every state present (0 when none). */
export async function stateCounts(fleet: Fleet): Promise<Record<LicenceState | 'unknown', number>> {
  const counts = await fleet.store.views.stateCounts();
  return Object.fromEntries([...LICENCE_STATES, 'unknown' as const].map((s) => [s, counts[s] ?? 0])) as Record<
    LicenceState | 'unknown',
    number
  >;
}

/** One page of the operations log, newest first, filtered. */
export async function operationsPage(
  fleet: Fleet,
  query: OperationsQuery,
): Promise<{ operations: OperationRecord[]; total: number }> {
  return fleet.store.views.operationsPage({
    offset: query.offset,
    limit: query.limit,
    q: query.q,
    operation: query.operation,
    outcome: query.outcome,
  });
}
