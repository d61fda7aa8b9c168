import { authorityOrigin, bulkConfirm, type AuthorityConnection, type BulkResult } from './authority-client.js';
import { ConsoleError } from './errors.js';
import { mapLimit, type Fleet, type MachineOperation } from './fleet.js';
import type { MachineResult, MachineSelection, Progress } from './results.js';
import type { MachineRecord } from './store.js';

/** Activation of machines: by themselves, by proxy through the console, from stored confirmations. */

export async function activate(
  fleet: Fleet,
  refs: MachineSelection,
  options: { authority?: string } = {},
  onProgress?: Progress,
): Promise<MachineResult[]> {
  const machines = await fleet.resolve(refs);
  const origin = options.authority === undefined ? null : authorityOrigin(options.authority);
  return fleet.forEach(machines, onProgress, async (machine, agent) => {
    const outcome = await agent.activate(options.authority);
    await fleet.recordStatus(machine, outcome.status);
    await fleet.log('activate', machine.name, outcome.ok, outcome.code, origin ?? outcome.status.method);
    if (!outcome.ok) {
      return {
        machine: machine.name,
        address: machine.address,
        ok: false,
        code: outcome.code,
        message: outcome.message,
        state: outcome.status.state,
        method: outcome.status.method,
      };
    }
    return fleet.success(machine, outcome.status, outcome.message);
  });
}

export async function proxyActivate(
  fleet: Fleet,
  refs: MachineSelection,
  authority: AuthorityConnection,
  onProgress?: Progress,
): Promise<MachineResult[]> {
  const machines = await fleet.resolve(refs);
  const origin = authorityOrigin(authority.url);
  const total = machines.length;
  let done = 0;
  const report = (r: MachineResult) => {
    onProgress?.(r, ++done, total);
    return r;
  };
  type Collected = { machine: MachineRecord; iid: string } | { machine: MachineRecord; result: MachineResult };
  const collected = await mapLimit(machines, fleet.concurrency, async (machine): Promise<Collected> => {
    try {
      const iid = await (await fleet.agent(machine)).installationId();
      await fleet.store.recordContact(machine.id, { at: fleet.clock.now(), ok: true });
      return { machine, iid };
    } catch (err) {
      const result = report(await fleet.failed(machine, err));
      await fleet.log('proxy-activate', machine.name, false, result.code, 'collecting the installation ID');
      return { machine, result };
    }
  });
  const iids = [...new Set(collected.flatMap((c) => ('iid' in c ? [c.iid] : [])))];
  const answers = new Map<string, BulkResult>();
  if (iids.length > 0) for (const r of await bulkConfirm(authority, iids)) answers.set(r.installationId, r);
  return mapLimit(collected, fleet.concurrency, async (entry) => {
    if (!('iid' in entry)) return entry.result;
    const { machine, iid } = entry;
    const answer = answers.get(iid);
    if (!answer || !answer.ok) {
      const code = answer && !answer.ok ? answer.error.code : 'AUTHORITY_BAD_RESPONSE';
      const message =
        answer && !answer.ok
          ? answer.callFailed
            ? answer.error.message
            : `the authority refused the installation ID: ${answer.error.code}: ${answer.error.message}`
          : 'the authority gave no result for this installation ID';
      await fleet.log('proxy-activate', machine.name, false, code, origin);
      return report({
        machine: machine.name,
        address: machine.address,
        ok: false,
        code,
        message,
        state: null,
        method: null,
        installationId: iid,
      });
    }
    await fleet.store.saveConfirmation({
      machineId: machine.id,
      installationId: iid,
      confirmationId: answer.confirmationId,
      authority: origin,
      obtainedAt: fleet.clock.now(),
    });
    try {
      const status = await (await fleet.agent(machine)).installConfirmation(answer.confirmationId);
      await fleet.recordStatus(machine, status);
      await fleet.log('proxy-activate', machine.name, true, null, `${origin}: ${status.state}`);
      return report({
        ...fleet.success(machine, status, `confirmation ID installed: ${status.state}`),
        installationId: iid,
        confirmationId: answer.confirmationId,
      });
    } catch (err) {
      const result = await fleet.failed(machine, err);
      await fleet.log('proxy-activate', machine.name, false, result.code, 'installing the confirmation ID');
      return report({ ...result, installationId: iid, confirmationId: answer.confirmationId });
    }
  });
}

export const reactivate: MachineOperation = (fleet, refs, onProgress) =>
  fleet.forSelection(refs, onProgress, async (machine, agent) => {
    const iid = await agent.installationId();
    const stored = await fleet.store.findConfirmation(machine.id, iid);
    if (!stored) {
      throw new ConsoleError(
        'NO_CONFIRMATION_STORED',
        `no stored confirmation ID for ${machine.name}'s installation ID (its key or hardware changed since): run \`volact console proxy-activate ${machine.name}\``,
      );
    }
    const status = await agent.installConfirmation(stored.confirmationId);
    await fleet.recordStatus(machine, status);
    if (stored.machineId !== machine.id) {
      await fleet.store.saveConfirmation({ ...stored, machineId: machine.id });
    }
    await fleet.log('reactivate', machine.name, true, null, `stored confirmation ID: ${status.state}`);
    return {
      ...fleet.success(machine, status, `stored confirmation ID installed: ${status.state}`),
      installationId: iid,
      confirmationId: stored.confirmationId,
    };
  });

export async function setKmsHost(
  fleet: Fleet,
  refs: MachineSelection,
  address: string | null,
  onProgress?: Progress,
): Promise<MachineResult[]> {
  const machines = await fleet.resolve(refs);
  return fleet.forEach(machines, onProgress, async (machine, agent) => {
    const status = await agent.setKmsHost(address);
    await fleet.recordStatus(machine, status);
    const what = address === null ? 'KMS host cleared (DNS discovery)' : `KMS host set to ${status.host ?? address}`;
    await fleet.log('set-kms-host', machine.name, true, null, what);
    return fleet.success(machine, status, what);
  });
}

/**
 * Turns the machines' KMS host caching on or off (the reference's slmgr /ckhc, /skhc). On, a
 * host found through DNS is kept for renewals until it stops answering; off, every attempt
 * looks DNS up (and the cached host is forgotten).
 */
export async function setKmsHostCaching(
  fleet: Fleet,
  refs: MachineSelection,
  enabled: boolean,
  onProgress?: Progress,
): Promise<MachineResult[]> {
  const machines = await fleet.resolve(refs);
  return fleet.forEach(machines, onProgress, async (machine, agent) => {
    const status = await agent.setKmsHostCaching(enabled);
    await fleet.recordStatus(machine, status);
    const caching = status.discovery?.caching ?? enabled;
    const what = `KMS host caching ${caching ? 'on' : 'off'}`;
    await fleet.log('set-kms-host-caching', machine.name, true, null, what);
    return fleet.success(machine, status, what);
  });
}
