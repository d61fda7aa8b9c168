import type { AgentStatus } from '@volact/core';
import { parseMachineAddress } from './addresses.js';
import { AgentClient } from './agent-client.js';
import { ConsoleError } from './errors.js';
import {
  PendingResult,
  StatusBatch,
  asConsoleError,
  iso,
  mapLimit,
  type Fleet,
  type MachineOperation,
} from './fleet.js';
import type {
  DiscoveryProbe,
  DiscoveryResult,
  MachineResult,
  MachineSelection,
  MachineSummary,
  Progress,
} from './results.js';
import type { MachineRecord, OperationRecord } from './store.js';

/** The console's machines: adding, finding (discover), listing, their tokens and status. */

const DEFAULT_DISCOVERY_CONCURRENCY = 64;
const DEFAULT_PROBE_TIMEOUT_MS = 1_000;

export async function addMachines(
  fleet: Fleet,
  addresses: readonly string[],
  token: string,
  names?: readonly string[],
): Promise<MachineSummary[]> {
  const canonical = addresses.map(parseMachineAddress);
  if (names && names.length !== canonical.length) throw new RangeError('one name per address');
  for (const name of names ?? []) fleet.checkName(name, 'machine');
  const tokenId = await fleet.storeToken(token);
  for (const [i, address] of canonical.entries()) {
    const name = names?.[i] ?? address;
    if ((await fleet.store.findMachine(address)) || (await fleet.store.findMachine(name))) {
      throw new ConsoleError(
        'MACHINE_EXISTS',
        `${name === address ? address : `"${name}" (${address})`} is already in the console; \`volact console machine list\``,
      );
    }
  }
  if (new Set(canonical).size !== canonical.length) {
    throw new ConsoleError('MACHINE_EXISTS', 'the same address is given twice');
  }
  const now = fleet.clock.now();
  const added: MachineRecord[] = [];
  for (const [i, address] of canonical.entries()) {
    const machine = await fleet.store.addMachine({ name: names?.[i] ?? address, address, tokenId, addedAt: now });
    added.push(machine);
    await fleet.log('machine add', machine.name, true, null, address);
  }
  return added.map((m) => fleet.summary(m, undefined));
}

/** Every machine as listed, by display name (in SQL: the machines' denormalised latest status). */
export async function listMachines(fleet: Fleet): Promise<MachineSummary[]> {
  const { machines } = await fleet.store.views.pageMachines({
    offset: 0,
    limit: 2 ** 31 - 1,
    sort: 'name',
    dir: 'asc',
  });
  return machines.map((v) => fleet.summary(v.machine, v.latest));
}

export async function removeMachines(fleet: Fleet, refs: MachineSelection): Promise<string[]> {
  const machines = await fleet.resolve(refs);
  for (const m of machines) {
    await fleet.store.removeMachine(m.id);
    await fleet.log('machine remove', m.name, true, null, m.address);
  }
  return machines.map((m) => m.name);
}

export async function history(fleet: Fleet, ref: string): Promise<{ takenAt: string; status: AgentStatus }[]> {
  const [machine] = await fleet.resolve([ref]);
  return (await fleet.store.history((machine as MachineRecord).id)).map((s) => ({
    takenAt: iso(s.takenAt) as string,
    status: s.status,
  }));
}

export async function operations(fleet: Fleet, limit = 100): Promise<OperationRecord[]> {
  return fleet.store.listOperations(limit);
}

export async function discover(
  fleet: Fleet,
  addresses: readonly string[],
  token: string,
  options: {
    timeoutMs?: number;
    concurrency?: number;
    onProbe?: (address: string, found: boolean, probe: DiscoveryProbe) => void;
  } = {},
): Promise<DiscoveryResult> {
  const canonical = [...new Set(addresses.map(parseMachineAddress))];
  const tokenText = fleet.checkToken(token);
  const found: DiscoveryResult['found'] = [];
  const refused: DiscoveryResult['refused'] = [];
  let silent = 0;
  let fleetTokenId: number | undefined;
  const probe = async (address: string) => {
    const known = await fleet.store.findMachine(address);
    let machine: MachineRecord | undefined = known?.address === address ? known : undefined;
    let addedHere: MachineRecord | undefined;
    let status: AgentStatus;
    try {
      if (known && !machine) {
        // The name is taken by a machine at another address: record the finding, keep the other.
        throw new ConsoleError('MACHINE_EXISTS', `the name ${address} is taken by a machine at ${known.address}`);
      }
      if (machine) {
        // Known: its own token, its own probe (an untrusted one is not called).
        status = await (await fleet.agent(machine)).status();
      } else {
        const agent = new AgentClient(address, tokenText, {
          timeoutMs: options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS,
          ...(fleet.agentTls ? { tls: fleet.agentTls } : {}),
          connections: fleet.connections,
        });
        // The token goes only to an agent that proved it holds it, at this address.
        const proven = await agent.probe();
        // Recorded with the token it proved before it gets its own (see #giveOwnToken): an
        // enrolment whose answer is lost must not leave an agent no console holds a token of.
        fleetTokenId ??= await fleet.storeToken(tokenText);
        machine = await fleet.store.addMachine({
          name: address,
          address,
          tokenId: fleetTokenId,
          addedAt: fleet.clock.now(),
        });
        await fleet.log('discover', machine.name, true, null, `added ${address}`);
        addedHere = machine;
        if (!proven.enrolled && !proven.byCertificate) await fleet.giveOwnToken(machine, agent, 'enrol');
        status = await agent.status();
      }
    } catch (err) {
      if (!(err instanceof ConsoleError)) throw err;
      let refusal: DiscoveryResult['refused'][number] | null = null;
      if (addedHere) {
        // It proved the token and is recorded: listed, whatever went wrong after.
        refusal = {
          address,
          code: err.resultCode,
          message: `${err.message} (added as ${addedHere.name}: its next call finishes what was left)`,
        };
      } else if (err.code === 'AGENT_UNREACHABLE' || err.code === 'AGENT_TIMEOUT') silent++;
      else refusal = { address, code: err.resultCode, message: err.message };
      if (refusal) refused.push(refusal);
      options.onProbe?.(address, false, { address, found: null, refused: refusal });
      return;
    }
    const added = !known;
    await fleet.recordStatus(machine, status);
    // What people call it: the name given, else the host name its agent just reported.
    const displayName = machine.name !== machine.address ? machine.name : (status.machine?.hostName ?? machine.name);
    const entry = { address, machine: machine.name, displayName, added, state: status.state };
    found.push(entry);
    options.onProbe?.(address, true, { address, found: entry, refused: null });
  };
  await mapLimit(canonical, options.concurrency ?? DEFAULT_DISCOVERY_CONCURRENCY, async (address) => {
    try {
      await probe(address);
    } catch (cause) {
      const err = asConsoleError(cause);
      const refusal = { address, code: err.resultCode, message: err.message };
      refused.push(refusal);
      options.onProbe?.(address, false, { address, found: null, refused: refusal });
    }
  });
  const order = (a: { address: string }, b: { address: string }) =>
    canonical.indexOf(a.address) - canonical.indexOf(b.address);
  return { probed: canonical.length, found: found.sort(order), refused: refused.sort(order), silent };
}

export const rotateTokens: MachineOperation = (fleet, refs, onProgress) =>
  fleet.forSelection(refs, onProgress, async (machine, agent) => {
    // #agent enrolled it when it held the enrolment token: that gave it its own token already.
    const enrolled = fleet.enrolledNow.has(agent);
    if (!enrolled && !agent.byCertificate) await fleet.giveOwnToken(machine, agent, 'rotate');
    const status = await agent.status();
    await fleet.recordStatus(machine, status);
    return fleet.success(
      machine,
      status,
      agent.byCertificate
        ? 'no token to rotate: the agent authenticates this console by its client certificate (mTLS)'
        : enrolled
          ? 'enrolled: the machine has its own token now'
          : 'token rotated',
    );
  });

export async function reenrol(
  fleet: Fleet,
  refs: MachineSelection,
  token?: string,
  onProgress?: Progress,
): Promise<MachineResult[]> {
  const machines = await fleet.resolve(refs);
  const tokenId = token === undefined ? undefined : await fleet.storeToken(token);
  for (const m of machines) {
    await fleet.store.setUntrusted(m.id, null);
    if (tokenId !== undefined) {
      await fleet.store.setMachineToken(m.id, tokenId);
      // A token sent but never confirmed may still be what the agent holds: keep trying it.
      if (m.pendingTokenId !== null) await fleet.store.setPendingToken(m.id, m.pendingTokenId);
    }
    await fleet.log('re-enrol', m.name, true, null, tokenId === undefined ? 'own token' : 'enrolment token');
  }
  return rotateTokens(
    fleet,
    machines.map((m) => String(m.id)),
    onProgress,
  );
}

export async function refresh(
  fleet: Fleet,
  refs: MachineSelection = 'all',
  onProgress?: Progress,
): Promise<MachineResult[]> {
  const machines = await fleet.resolve(refs.length === 0 ? 'all' : refs);
  // The statuses are written in batches (one transaction each); a machine's result comes with its batch's commit.
  const batch = new StatusBatch(fleet.store);
  const results = await fleet.forEach(
    machines,
    onProgress,
    async (machine, agent) => {
      const status = await agent.status();
      return new PendingResult(
        batch
          .add(machine, status, fleet.clock.now())
          .then((changed) =>
            fleet.success(machine, status, changed ? 'status changed' : 'status unchanged', { changed }),
          ),
      );
    },
    batch,
  );
  const failed = results.filter((r) => !r.ok).length;
  await fleet.log('refresh', null, failed === 0, null, `${results.length - failed} read, ${failed} failed`);
  return results;
}
