import { randomBytes } from 'node:crypto';
import {
  CoreError,
  MAX_PROXY_FILE_ENTRIES,
  cidFileFor,
  encodeProxyFile,
  iidFileDigest,
  iidFileInstallationIds,
  parseCidFile,
  parseConfirmationId,
  parseIidFile,
  parseInstallationId,
  printable,
  proxyFileSigner,
  signIidFile,
  signingKeyPairFromSeed,
  type CidFile,
  type IidFile,
  type IidFileEntry,
  type SigningKeyPair,
} from '@volact/core';
import { authorityOrigin, bulkConfirm, type AuthorityConnection } from '../authority-client.js';
import { ConsoleError } from '../errors.js';
import { iso, mapLimit, type Fleet } from '../fleet.js';
import type { MachineResult, MachineSelection, Progress } from '../results.js';
import type { MachineRecord } from '../store.js';
import type { ProxyFileSummary } from '../web/contract.js';

/**
 * Proxy activation of an isolated network through files (the reference VAMT's removable disk):
 * collect the installation IDs into a signed file (step 1), have a connected machine answer it
 * (step 2: `confirmFile` here, or the authority's `confirm-file`), install the answers (step 3).
 * And a confirmation ID read out over the phone, typed in.
 */

/** A core refusal of a file, as the console's error of the same code. */
function asConsole<T>(work: () => T): T {
  try {
    return work();
  } catch (err) {
    if (
      err instanceof CoreError &&
      (err.code === 'PROXY_FILE_INVALID' || err.code === 'PROXY_FILE_TAMPERED' || err.code === 'PROXY_FILE_FOREIGN')
    ) {
      throw new ConsoleError(err.code, err.message);
    }
    throw err;
  }
}

/** The key this console signs its installation-ID files with (derived from console.key). */
export function consoleSigningKey(fleet: Fleet): SigningKeyPair {
  return signingKeyPairFromSeed(fleet.box.proxyFileSeed());
}

/** This console's key ID (what a confirmation file's request.consoleKeyId must be). */
export function consoleKeyId(fleet: Fleet): string {
  return proxyFileSigner(consoleSigningKey(fleet)).keyId;
}

/**
 * The machine's name in the file: its name, else the host name its agent reported, cleaned
 * (an agent's text may hold control characters, or be empty when os.hostname() failed); else its
 * address, else `machine <id>`. Never a text the file's parser refuses (one machine's name must
 * not void the file of the others).
 */
export function fileMachineName(m: MachineRecord): string {
  const clean = (text: string | null | undefined) =>
    printable(text ?? '')
      .trim()
      .slice(0, 300)
      .trim();
  const named = m.name !== m.address ? clean(m.name) : '';
  return named || clean(m.facts?.hostName) || clean(m.address) || `machine ${m.id}`;
}

/**
 * One machine's entry of an installation-ID file, from what its agent answered, checked here: a
 * malformed installation ID fails this machine alone (AGENT_BAD_RESPONSE), never the whole file.
 * The installed key's last five are informative only: cleaned, an empty one is none.
 */
export function iidFileEntry(
  machine: MachineRecord,
  installationId: string,
  installedKey: string | null,
): IidFileEntry {
  let iid: string;
  try {
    iid = parseInstallationId(installationId).text;
  } catch (err) {
    const reason = err instanceof CoreError ? `: ${err.message}` : '';
    throw new ConsoleError(
      'AGENT_BAD_RESPONSE',
      `agent ${machine.address} answered an installation ID that is not one (${JSON.stringify(printable(String(installationId)).slice(0, 40))}${reason}): not in the file; check the machine's volact client`,
    );
  }
  const key = installedKey === null ? '' : printable(installedKey).trim().slice(0, 16);
  return { machine: fileMachineName(machine), machineId: machine.id, installationId: iid, installedKey: key || null };
}

/** Step 1: the installation IDs of the machines, read through their agents, into a signed file kept here. */
export async function collectInstallationIds(
  fleet: Fleet,
  refs: MachineSelection,
  user: string | null,
  onProgress?: Progress,
): Promise<{ fileId: string; file: string; results: MachineResult[] }> {
  const machines = await fleet.resolve(refs);
  if (machines.length > MAX_PROXY_FILE_ENTRIES) {
    throw new ConsoleError(
      'PROXY_FILE_INVALID',
      `${machines.length} machines selected; an installation-ID file holds at most ${MAX_PROXY_FILE_ENTRIES}: collect them in several files`,
    );
  }
  const fileId = randomBytes(12).toString('base64url');
  const entries = new Map<number, IidFileEntry>();
  const results = await fleet.forEach(machines, onProgress, async (machine, agent) => {
    const status = await agent.status();
    await fleet.recordStatus(machine, status);
    const entry = iidFileEntry(machine, await agent.installationId(), status.installedKey);
    const installationId = entry.installationId;
    entries.set(machine.id, entry);
    await fleet.log('collect-iids', machine.name, true, null, `installation ID into file ${fileId}`);
    return {
      ...fleet.success(machine, status, `installation ID collected into file ${fileId}`),
      installationId,
    };
  });
  for (const r of results) {
    if (!r.ok) await fleet.log('collect-iids', r.machine, false, r.code, `not in file ${fileId}`);
  }
  // In the selection's order, whatever order the agents answered in.
  const ordered = machines.flatMap((m) => {
    const e = entries.get(m.id);
    return e ? [e] : [];
  });
  const signed = asConsole(() =>
    signIidFile(
      { id: fileId, createdAt: iso(fleet.clock.now()) as string, entries: ordered },
      consoleSigningKey(fleet),
    ),
  );
  const file = encodeProxyFile(signed);
  await fleet.store.proxyFiles.addRequest({
    id: fileId,
    createdAt: fleet.clock.now(),
    createdBy: user,
    digest: iidFileDigest(signed),
    fileJson: file,
  });
  await fleet.log('collect-iids', null, true, null, `file ${fileId}: ${ordered.length} of ${machines.length} machines`);
  return { fileId, file, results };
}

export async function listProxyFiles(fleet: Fleet): Promise<ProxyFileSummary[]> {
  return (await fleet.store.proxyFiles.listRequests()).map((r) => ({
    id: r.id,
    createdAt: iso(r.createdAt) as string,
    createdBy: r.createdBy,
    machines: r.machines,
    appliedAt: iso(r.appliedAt),
  }));
}

export async function proxyFile(fleet: Fleet, id: string): Promise<string> {
  const record = await fleet.store.proxyFiles.getRequest(id);
  if (!record) {
    throw new ConsoleError(
      'PROXY_FILE_UNKNOWN',
      `no installation-ID file ${id.slice(0, 64)} in this console: \`volact console proxy-activate --collect FILE\` writes one`,
    );
  }
  return record.fileJson;
}

/** Step 2 on a console that reaches the authority: the confirmation file answering an installation-ID file. */
export async function confirmFile(
  fleet: Fleet,
  text: string,
  authority: AuthorityConnection,
  consoleKeyId?: string,
): Promise<CidFile> {
  const file = asConsole(() => parseIidFile(text, consoleKeyId === undefined ? {} : { consoleKeyId }));
  const origin = authorityOrigin(authority.url);
  const iids = iidFileInstallationIds(file);
  const answers = iids.length === 0 ? [] : await bulkConfirm(authority, iids);
  const every = answers.filter((a) => !a.ok && a.callFailed);
  if (iids.length > 0 && every.length === iids.length) {
    // Not one answer: no file that would only carry the transport's failure.
    const first = every[0];
    throw new ConsoleError(
      'AUTHORITY_UNREACHABLE',
      first && !first.ok ? first.error.message : `the authority ${origin} gave no answer`,
    );
  }
  const cids = cidFileFor(
    file,
    answers.map((a) =>
      a.ok
        ? { installationId: a.installationId, ok: true as const, confirmationId: a.confirmationId }
        : { installationId: a.installationId, ok: false as const, code: a.error.code, message: a.error.message },
    ),
    origin,
    iso(fleet.clock.now()) as string,
  );
  await fleet.log(
    'confirm-file',
    null,
    true,
    null,
    `file ${file.id} of console ${file.console.keyId}: ${cids.results.filter((r) => r.ok).length} of ${cids.results.length} confirmed by ${origin}`,
  );
  return cids;
}

export interface ApplyOutcome {
  readonly fileId: string;
  readonly results: MachineResult[];
  /** Results of the confirmation file for no machine of the collected file: not installed. */
  readonly skipped: { installationId: string; reason: string }[];
}

/** Step 3: installs the confirmation file's CIDs through the agents of the machines of the collected file. */
export async function applyConfirmationFile(fleet: Fleet, text: string, onProgress?: Progress): Promise<ApplyOutcome> {
  const cids = asConsole(() => parseCidFile(text));
  const mine = consoleKeyId(fleet);
  if (cids.request.consoleKeyId !== mine) {
    throw new ConsoleError(
      'PROXY_FILE_FOREIGN',
      `the confirmation file answers file ${cids.request.id} collected by console key ${cids.request.consoleKeyId}; this console's key is ${mine}: apply it on the console that collected it`,
    );
  }
  const record = await fleet.store.proxyFiles.getRequest(cids.request.id);
  if (!record) {
    throw new ConsoleError(
      'PROXY_FILE_UNKNOWN',
      `this console has no installation-ID file ${cids.request.id} (collected before a restore of the data directory, or elsewhere): collect again`,
    );
  }
  if (record.digest !== cids.request.digest) {
    throw new ConsoleError(
      'PROXY_FILE_TAMPERED',
      `the confirmation file names file ${record.id} with another digest than the file this console wrote: it answers an edited copy; confirm the file as collected`,
    );
  }
  const collected = asConsole(() => parseIidFile(record.fileJson));
  const byIid = new Map<string, IidFileEntry[]>();
  for (const e of collected.entries) byIid.set(e.installationId, [...(byIid.get(e.installationId) ?? []), e]);
  const skipped: { installationId: string; reason: string }[] = [];
  const answers = new Map<string, CidFile['results'][number]>();
  for (const r of cids.results) {
    if (!byIid.has(r.installationId)) {
      skipped.push({ installationId: r.installationId, reason: `not in the collected file ${record.id}` });
    } else if (answers.has(r.installationId)) {
      skipped.push({ installationId: r.installationId, reason: 'answered twice in the confirmation file' });
    } else {
      answers.set(r.installationId, r);
    }
  }
  for (const s of skipped) {
    await fleet.log('apply-confirmations', null, false, 'SKIPPED', `file ${record.id}: ${s.reason}`);
  }
  const work = collected.entries.filter((e) => answers.has(e.installationId));
  const missing = collected.entries.filter((e) => !answers.has(e.installationId));
  let done = 0;
  const total = collected.entries.length;
  const report = (r: MachineResult): MachineResult => {
    onProgress?.(r, ++done, total);
    return r;
  };
  const noMachine = (e: IidFileEntry, message: string, code: string): MachineResult => ({
    machine: e.machine,
    address: '',
    ok: false,
    code,
    message,
    state: null,
    method: null,
    installationId: e.installationId,
  });
  const results = await mapLimit(work, fleet.concurrency, async (entry): Promise<MachineResult> => {
    const answer = answers.get(entry.installationId) as CidFile['results'][number];
    const machine = await fleet.store.getMachine(entry.machineId);
    if (!machine) {
      return report(
        noMachine(
          entry,
          `machine ${entry.machine} (id ${entry.machineId}) was removed from the console`,
          'MACHINE_NOT_FOUND',
        ),
      );
    }
    if (!answer.ok) {
      await fleet.log('proxy-activate', machine.name, false, answer.code, `confirmation file ${record.id}`);
      return report({
        machine: machine.name,
        address: machine.address,
        ok: false,
        code: answer.code,
        message: `the authority refused the installation ID: ${answer.code}: ${answer.message}`,
        state: null,
        method: null,
        installationId: entry.installationId,
      });
    }
    const keep = () =>
      fleet.store.saveConfirmation({
        machineId: machine.id,
        installationId: entry.installationId,
        confirmationId: answer.confirmationId,
        authority: cids.authority.slice(0, 300),
        obtainedAt: fleet.clock.now(),
      });
    try {
      const status = await (await fleet.agent(machine)).installConfirmation(answer.confirmationId);
      // Kept (for re-images) only once the machine took it: the file is not signed, and a CID
      // its agent refuses must never replace a good one stored before.
      await keep();
      await fleet.recordStatus(machine, status);
      await fleet.log('proxy-activate', machine.name, true, null, `confirmation file ${record.id}: ${status.state}`);
      return report({
        ...fleet.success(machine, status, `confirmation ID installed: ${status.state}`),
        installationId: entry.installationId,
        confirmationId: answer.confirmationId,
      });
    } catch (err) {
      const result = await fleet.failed(machine, err);
      // Not reached (offline, timed out): kept when none is stored for this IID yet, so
      // `reactivate` installs it when the machine is back; never when its agent refused it.
      const refusedByAgent = err instanceof ConsoleError && err.code === 'AGENT_REFUSED';
      if (!refusedByAgent && !(await fleet.store.findConfirmation(machine.id, entry.installationId))) await keep();
      await fleet.log('proxy-activate', machine.name, false, result.code, `confirmation file ${record.id}`);
      return report({ ...result, installationId: entry.installationId, confirmationId: answer.confirmationId });
    }
  });
  for (const e of missing) {
    results.push(
      report(noMachine(e, 'the confirmation file has no result for this installation ID', 'NO_CONFIRMATION_STORED')),
    );
  }
  await fleet.store.proxyFiles.markApplied(record.id, fleet.clock.now());
  return { fileId: record.id, results, skipped };
}

/** Any separators people type between the digit groups (spaces, dashes, dots, slashes…). */
const SEPARATORS = /[\s\-./,_:;|]+/g;

/** A confirmation ID read out over the phone, typed in: checked group by group, installed, stored. */
export async function installConfirmationId(fleet: Fleet, ref: string, typed: string): Promise<MachineResult> {
  let text: string;
  try {
    text = parseConfirmationId(String(typed).replace(SEPARATORS, '').slice(0, 400)).text;
  } catch (err) {
    if (err instanceof CoreError) {
      throw new ConsoleError('CONFIRMATION_ID_INVALID', err.message.replace(/^confirmation ID: /, ''));
    }
    throw err;
  }
  const [machine] = await fleet.resolve([ref]);
  if (!machine) throw new ConsoleError('MACHINE_NOT_FOUND', `not in the console: ${ref.slice(0, 100)}`);
  const [result] = await fleet.forEach([machine], undefined, async (m, agent) => {
    const installationId = await agent.installationId();
    const status = await agent.installConfirmation(text);
    await fleet.recordStatus(m, status);
    await fleet.store.saveConfirmation({
      machineId: m.id,
      installationId,
      confirmationId: text,
      authority: null,
      obtainedAt: fleet.clock.now(),
    });
    await fleet.log('install-cid', m.name, true, null, `confirmation ID read out over the phone: ${status.state}`);
    return {
      ...fleet.success(m, status, `confirmation ID installed: ${status.state}`),
      installationId,
      confirmationId: text,
    };
  });
  if (!result) throw new Error('unreachable');
  if (!result.ok) await fleet.log('install-cid', machine.name, false, result.code, 'phone confirmation ID');
  return result;
}

export type { IidFile };
