import { randomBytes } from 'node:crypto';
import {
  CoreError,
  lastFiveOf,
  parseKeyOfType,
  sha256,
  systemClock,
  type AgentStatus,
  type Clock,
  type KeyType,
} from '@volact/core';
import { parseMachineAddress } from './addresses.js';
import { AgentClient, type ProbeResult } from './agent-client.js';
import { AgentConnections } from './agent-connections.js';
import type { AgentTls } from './agent-tls.js';
import { ConsoleError } from './errors.js';
import type {
  KeySummary,
  MachineResult,
  MachineSelection,
  MachineSummary,
  ConsoleOptions,
  Progress,
} from './results.js';
import type { SecretBox } from './secrets.js';
import type {
  ConsoleStore,
  MachineFacts,
  MachineRecord,
  SnapshotRecord,
  StatusWrite,
  StoredKeyRecord,
} from './store.js';
import { displayName } from './views/rows.js';

/** What a machine summary shows of its latest status. */
type LatestColumns = Pick<
  SnapshotRecord,
  'state' | 'method' | 'group' | 'clientMachineId' | 'installedKey' | 'installedKeyType' | 'kmsHost' | 'expiresAt'
>;

/** The agent's own minimum token length: a shorter one cannot be an agent's. */
export const MIN_AGENT_TOKEN_LENGTH = 16;
const DEFAULT_CONCURRENCY = 16;

// Five groups of five letters or digits, the separators between groups optional (parseKey takes
// a key typed without its dashes or with spaces): such a text is a key, never a name.
const KEY_SHAPE = /^[0-9A-Z]{5}(?:[-\s]?[0-9A-Z]{5}){4}$/i;
const keyShaped = (text: string): boolean => KEY_SHAPE.test(text.trim());
/**
 * A reference as it may appear in a message: one with 20 or more letters and digits could be a
 * product key mistyped (a symbol missing or added), so only its last five are shown.
 */
const shown = (ref: string): string =>
  ref.replace(/[^0-9A-Za-z]/g, '').length >= 20 ? lastFiveOf(ref.trim().replace(/\s/g, '')) : ref.slice(0, 100);

/**
 * Whether a text is shaped like a product key (five groups of five): no machine or stored key
 * may be named like one, so such a text is never taken for a name.
 */
export const looksLikeProductKey = (text: string): boolean => keyShaped(text);
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * A stable digest of a licence status: history rows are written when it changes. The agent's
 * own fields (API version, user-operations switch) are left out: only GET /v1/status has them.
 */
export function statusDigest(full: AgentStatus): string {
  const status: Record<string, unknown> = { ...full };
  delete status.agent;
  delete status.userOperations;
  delete status.machine;
  const canonical = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(canonical)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(
            Object.keys(value)
              .sort()
              .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
          )
        : value;
  return sha256(Buffer.from(JSON.stringify(canonical(status)))).toString('hex');
}

/** Runs `task` over `items`, at most `limit` at once, results in the items' order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Whatever one machine's answer makes go wrong stays that machine's failure (a rogue or broken
 * agent must not stop an operation over the others).
 */
export function asConsoleError(err: unknown): ConsoleError {
  if (err instanceof ConsoleError) return err;
  const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new ConsoleError('AGENT_BAD_RESPONSE', `the machine's answer could not be processed (${what.slice(0, 200)})`);
}

function failure(machine: MachineRecord, cause: unknown, seenAt: number | null): MachineResult {
  const err = asConsoleError(cause);
  return {
    machine: machine.name,
    address: machine.address,
    ok: false,
    code: err.resultCode,
    message: err.message,
    state: null,
    method: null,
    displayName: displayName(machine),
    lastSeenAt: iso(seenAt),
  };
}

const sameFacts = (a: MachineFacts | null, b: MachineFacts) =>
  a !== null &&
  a.hostName === b.hostName &&
  a.os === b.os &&
  a.osVersion === b.osVersion &&
  a.productVersion === b.productVersion &&
  a.lastBootAt === b.lastBootAt;

/** The agent's facts (GET /v1/status `machine`) as the store keeps them (times in ms). */
export function factsOf(status: AgentStatus): MachineFacts | null {
  const m = status.machine;
  if (!m) return null;
  const boot = m.lastBootAt === null ? null : Date.parse(m.lastBootAt);
  return {
    hostName: m.hostName,
    os: m.os,
    osVersion: m.osVersion,
    productVersion: m.productVersion,
    lastBootAt: boot === null || Number.isNaN(boot) ? null : boot,
  };
}

/**
 * What every console operation shares: the store, the key that seals its secrets, the clock,
 * and the rules of calling machines (which machines a selection names, which token goes to
 * which agent and when, how one machine's failure is recorded). The operations themselves are
 * functions over a Fleet in machine-, key-, activation- and report-operations.ts.
 */
/** An operation over the machines of a selection, one result per machine. */
export type MachineOperation = (
  fleet: Fleet,
  refs: MachineSelection,
  onProgress?: Progress,
) => Promise<MachineResult[]>;

/** How many machines' answers a refresh writes in one transaction, and how long one waits at most (ms). */
export const STATUS_BATCH = { max: 200, maxDelayMs: 1_000 } as const;

/**
 * A machine's result that is final only once its write is committed (see StatusBatch): the
 * operation's worker calls the next machine meanwhile; the result and its progress come after
 * the commit.
 */
export class PendingResult {
  constructor(readonly result: Promise<MachineResult>) {
    // Fleet.forEach handles its failure; until it does, a rejection is not an unhandled one.
    result.catch(() => undefined);
  }
}

interface BatchedStatus {
  readonly write: StatusWrite;
  /** The agent's facts when they differ from the machine's row. */
  readonly facts: MachineFacts | null;
  readonly resolve: (changed: boolean) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The statuses an operation read, written in batches: up to `max` machines' history rows,
 * denormalised latest statuses and contacts in one transaction (ConsoleStore.recordStatuses),
 * then their changed facts (one more). A batch is written when full, `maxDelayMs` after its
 * first entry, and by `flush()` (the operation's end). Each entry's promise settles with its
 * batch's commit: a crash loses at most the batch, whose results were never reported. When a
 * batch fails, each of its entries is written again on its own, so one machine's failure (it
 * was removed meanwhile) fails that machine only.
 */
export class StatusBatch {
  #entries: BatchedStatus[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: ConsoleStore,
    private readonly max: number = STATUS_BATCH.max,
    private readonly maxDelayMs: number = STATUS_BATCH.maxDelayMs,
  ) {}

  /** Queues a machine's answer; settles with whether a history row was written, once committed. */
  add(machine: MachineRecord, status: AgentStatus, takenAt: number): Promise<boolean> {
    const facts = factsOf(status);
    return new Promise<boolean>((resolve, reject) => {
      this.#entries.push({
        write: { machineId: machine.id, takenAt, status, digest: statusDigest(status) },
        facts: facts && !sameFacts(machine.facts, facts) ? facts : null,
        resolve,
        reject,
      });
      if (this.#entries.length >= this.max) void this.flush();
      else this.#timer ??= setTimeout(() => void this.flush(), this.maxDelayMs);
    });
  }

  /** Writes what is queued (after the batches already being written); settles when all are. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#entries;
    this.#entries = [];
    if (batch.length > 0) this.#writing = this.#writing.then(() => this.#write(batch));
    return this.#writing;
  }

  async #write(batch: readonly BatchedStatus[]): Promise<void> {
    try {
      const changed = await this.#commit(batch);
      batch.forEach((e, i) => e.resolve(changed[i] as boolean));
      return;
    } catch {
      // Nothing of the batch was written: each entry again, on its own (its own error, if any).
    }
    for (const e of batch) {
      try {
        e.resolve((await this.#commit([e]))[0] as boolean);
      } catch (err) {
        e.reject(err);
      }
    }
  }

  async #commit(batch: readonly BatchedStatus[]): Promise<boolean[]> {
    const changed = await this.store.recordStatuses(batch.map((e) => e.write));
    const facts = batch.flatMap((e) => (e.facts ? [{ machineId: e.write.machineId, facts: e.facts }] : []));
    if (facts.length > 0) await this.store.views.setMachineFacts(facts);
    return changed;
  }
}

export class Fleet {
  readonly store: ConsoleStore;
  readonly box: SecretBox;
  readonly clock: Clock;
  readonly concurrency: number;
  readonly agentTls: AgentTls | undefined;
  /** This console's keep-alive connections to agents (closed with it). */
  readonly connections: AgentConnections;
  /** The agents `agent` enrolled on the way (their new token given in this call already). */
  readonly enrolledNow = new WeakSet<AgentClient>();
  readonly #agentTimeoutMs: number | undefined;
  readonly #tokens = new Map<number, string>();

  constructor(store: ConsoleStore, box: SecretBox, options: ConsoleOptions) {
    this.store = store;
    this.box = box;
    this.clock = options.clock ?? systemClock;
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.#agentTimeoutMs = options.agentTimeoutMs;
    this.agentTls = options.agentTls;
    this.connections = new AgentConnections(options.agentConnections);
  }

  /** An operation on the machines a selection names, each on its own (see forEach). */
  async forSelection(
    refs: MachineSelection,
    onProgress: Progress | undefined,
    task: (machine: MachineRecord, agent: AgentClient) => Promise<MachineResult>,
  ): Promise<MachineResult[]> {
    return this.forEach(await this.resolve(refs), onProgress, task);
  }

  /**
   * Runs `task` for each machine, `concurrency` at once, and reports each result (onProgress)
   * as it is final. A task may return a PendingResult (its status written in a StatusBatch,
   * `batch`): its worker goes on to the next machine at once, and the result comes with the
   * batch's commit (`batch` is flushed at the end).
   */
  async forEach(
    machines: readonly MachineRecord[],
    onProgress: Progress | undefined,
    task: (machine: MachineRecord, agent: AgentClient) => Promise<MachineResult | PendingResult>,
    batch?: StatusBatch,
  ): Promise<MachineResult[]> {
    let done = 0;
    const finals = await mapLimit(machines, this.concurrency, async (machine) => {
      let outcome: MachineResult | PendingResult;
      try {
        // Each task records its status (and so the contact) through #recordStatus, or a StatusBatch.
        outcome = await task(machine, await this.agent(machine));
      } catch (err) {
        outcome = await this.failed(machine, err);
      }
      // In an object: mapLimit would wait for a promise returned as such.
      if (outcome instanceof PendingResult) {
        const final = outcome.result
          .catch((err: unknown) => this.failed(machine, err))
          .then((result) => this.#reported(machine, result, ++done, machines.length, onProgress));
        final.catch(() => undefined); // awaited below, after the other machines
        return { final };
      }
      return { final: Promise.resolve(this.#reported(machine, outcome, ++done, machines.length, onProgress)) };
    });
    await batch?.flush();
    return Promise.all(finals.map((f) => f.final));
  }

  #reported(
    machine: MachineRecord,
    given: MachineResult,
    done: number,
    total: number,
    onProgress: Progress | undefined,
  ): MachineResult {
    let result = given;
    if (result.displayName === undefined) {
      // Built by the operation itself: the machine as of now (it answered when it has a state).
      const answered = result.ok || result.state !== null;
      result = {
        ...result,
        displayName: displayName(machine),
        lastSeenAt: iso(answered ? Math.max(this.clock.now(), machine.lastSeenAt ?? 0) : machine.lastSeenAt),
      };
    }
    onProgress?.(result, done, total);
    return result;
  }

  /** A failure result; the machine's last error is recorded (a refusal still means it answered). */
  async failed(machine: MachineRecord, err: unknown): Promise<MachineResult> {
    const at = this.clock.now();
    const refused = err instanceof ConsoleError && err.code === 'AGENT_REFUSED';
    const result = failure(machine, err, refused ? Math.max(at, machine.lastSeenAt ?? 0) : machine.lastSeenAt);
    if (refused) {
      await this.store.recordContact(machine.id, { at, ok: true });
    }
    await this.store.recordContact(machine.id, {
      at,
      ok: false,
      code: result.code as string,
      message: result.message,
    });
    return result;
  }

  success(
    machine: MachineRecord,
    status: AgentStatus,
    message: string,
    extra: { changed?: boolean } = {},
  ): MachineResult {
    const facts = factsOf(status);
    return {
      machine: machine.name,
      address: machine.address,
      ok: true,
      code: null,
      message,
      state: status.state,
      method: status.method,
      ...extra,
      displayName: displayName(facts ? { ...machine, facts } : machine),
      lastSeenAt: iso(Math.max(this.clock.now(), machine.lastSeenAt ?? 0)),
    };
  }

  async recordStatus(machine: MachineRecord, status: AgentStatus): Promise<boolean> {
    const now = this.clock.now();
    const changed = await this.store.addSnapshot(machine.id, now, status, statusDigest(status));
    // The machine as people know it: kept on its row, no history row when only these change.
    const facts = factsOf(status);
    if (facts && !sameFacts(machine.facts, facts)) {
      await this.store.views.setMachineFacts([{ machineId: machine.id, facts }]);
    }
    await this.store.recordContact(machine.id, { at: now, ok: true });
    return changed;
  }

  async #tokenOf(machine: MachineRecord, tokenId = machine.tokenId): Promise<string> {
    let token = this.#tokens.get(tokenId);
    if (token === undefined) {
      const record = await this.store.getToken(tokenId);
      if (!record) {
        throw new ConsoleError('SECRET_UNREADABLE', `the agent token of ${machine.name} is missing from the database`);
      }
      token = this.box.unseal(record.sealed, `token:${record.fingerprint}`, `the agent token of ${machine.name}`);
      this.#tokens.set(tokenId, token);
    }
    return token;
  }

  async #client(machine: MachineRecord, tokenId: number): Promise<AgentClient> {
    return new AgentClient(machine.address, await this.#tokenOf(machine, tokenId), {
      ...(this.#agentTimeoutMs === undefined ? {} : { timeoutMs: this.#agentTimeoutMs }),
      ...(this.agentTls ? { tls: this.agentTls } : {}),
      connections: this.connections,
    });
  }

  /**
   * A client for the machine's agent that passed its probe (bound to the address called), so
   * the token goes only where it was proven. A machine still holding the enrolment (fleet)
   * token is enrolled on the way: it gets its own token. A failed proof marks the machine
   * untrusted; an untrusted machine is not called at all (MACHINE_UNTRUSTED).
   */
  async agent(given: MachineRecord): Promise<AgentClient> {
    // As stored now: an earlier call of this operation may have enrolled it (a new token).
    let machine = (await this.store.getMachine(given.id)) ?? given;
    if (machine.untrusted) {
      throw new ConsoleError(
        'MACHINE_UNTRUSTED',
        `${machine.name} failed its proof on ${iso(machine.untrusted.at)} and is not called any more: check what answers at ${machine.address}, then re-enrol it (\`volact console machine enrol ${machine.name}\`)`,
      );
    }
    let agent = await this.#client(machine, machine.tokenId);
    let probe: ProbeResult;
    try {
      probe = await agent.probe();
    } catch (err) {
      if (!(err instanceof ConsoleError && err.code === 'PROOF_FAILED')) throw err;
      const recovered = await this.#proveAgain(machine);
      if (!recovered) {
        await this.store.setUntrusted(machine.id, { at: this.clock.now(), reason: err.message });
        await this.log('proof failed', machine.name, false, err.code, machine.address);
        throw err;
      }
      ({ agent, probe } = recovered);
      machine = recovered.machine;
    }
    if (!probe.enrolled && !probe.byCertificate) {
      await this.giveOwnToken(machine, agent, 'enrol');
      this.enrolledNow.add(agent);
    }
    return agent;
  }

  /**
   * After a failed proof with the token read at the start: the tokens the agent may hold
   * instead, each proven before anything is sent. (1) The machine's token as stored now:
   * another operation (a web job, a CLI rotate-token) may have rotated it meanwhile. (2) Its
   * pending token: a new token sent to the agent whose answer was lost (a timeout, a crash)
   * before the console recorded it; when it proves, it becomes the machine's token. Null when
   * none proves (the machine is then marked untrusted).
   */
  async #proveAgain(
    machine: MachineRecord,
  ): Promise<{ agent: AgentClient; probe: ProbeResult; machine: MachineRecord } | null> {
    const now = await this.store.getMachine(machine.id);
    if (!now || now.untrusted) return null;
    const tried = new Set([machine.tokenId]);
    const candidates: [number, 'current' | 'pending'][] = [];
    if (now.tokenId !== machine.tokenId) candidates.push([now.tokenId, 'current']);
    if (now.pendingTokenId !== null) candidates.push([now.pendingTokenId, 'pending']);
    for (const [tokenId, which] of candidates) {
      if (tried.has(tokenId)) continue;
      tried.add(tokenId);
      const agent = await this.#client(now, tokenId);
      let probe: ProbeResult;
      try {
        probe = await agent.probe();
      } catch (err) {
        if (err instanceof ConsoleError && err.code === 'PROOF_FAILED') continue;
        throw err;
      }
      if (which === 'current') return { agent, probe, machine: now };
      await this.store.setMachineToken(now.id, tokenId);
      await this.log(
        'token recovered',
        now.name,
        true,
        null,
        `${now.address}: the agent holds the token last sent to it (its answer was lost)`,
      );
      return { agent, probe, machine: { ...now, tokenId, pendingTokenId: null } };
    }
    return null;
  }

  /**
   * Hands the agent a new per-machine token (enrolment, or rotation of the current one) and
   * keeps it sealed. The new token is recorded as the machine's pending token before the agent
   * gets it: when the agent applies it but its answer is lost (a timeout, a crash of the
   * console), the next call proves it (see #proveAgain) instead of locking the machine out.
   */
  async giveOwnToken(machine: MachineRecord, agent: AgentClient, how: 'enrol' | 'rotate'): Promise<void> {
    const fresh = randomBytes(32).toString('base64url');
    const tokenId = await this.storeToken(fresh);
    this.#tokens.set(tokenId, fresh);
    await this.store.setPendingToken(machine.id, tokenId);
    if (how === 'enrol') await agent.enrol(fresh);
    else await agent.rotateToken(fresh);
    await this.store.setMachineToken(machine.id, tokenId);
    await this.log(how === 'enrol' ? 'enrol' : 'rotate-token', machine.name, true, null, machine.address);
  }

  checkToken(token: string): string {
    const text = token.trim();
    if (text.length < MIN_AGENT_TOKEN_LENGTH) {
      throw new ConsoleError(
        'TOKEN_INVALID',
        `the agent token has fewer than ${MIN_AGENT_TOKEN_LENGTH} characters; give the file the agents use as --admin-token-file`,
      );
    }
    return text;
  }

  async storeToken(token: string): Promise<number> {
    const text = this.checkToken(token);
    const fingerprint = this.box.fingerprint(text, 'token');
    return this.store.findOrAddToken({
      fingerprint,
      sealed: this.box.seal(text, `token:${fingerprint}`),
      createdAt: this.clock.now(),
    });
  }

  checkName(name: string, what: 'machine' | 'key'): void {
    if (!NAME_RE.test(name) || keyShaped(name) || /^\d+$/.test(name)) {
      throw new ConsoleError(
        what === 'machine' ? 'ADDRESS_INVALID' : 'KEY_INVALID',
        `the ${what} name "${shown(name)}" must be 1-64 letters, digits or . _ - characters (not all digits: ids are; and not like a product key)`,
      );
    }
  }

  parseKey(text: string, ...types: KeyType[]) {
    try {
      return parseKeyOfType(text, ...types);
    } catch (err) {
      if (err instanceof CoreError) throw new ConsoleError('KEY_INVALID', err.message);
      throw err;
    }
  }

  async storeKey(key: { text: string; type: KeyType }, name?: string): Promise<StoredKeyRecord> {
    const last5 = lastFiveOf(key.text);
    const keyName = name ?? `${key.type}-${last5.slice(1)}`;
    this.checkName(keyName, 'key');
    const fingerprint = this.box.fingerprint(key.text, 'key');
    const record = await this.store.addKey({
      name: keyName,
      type: key.type,
      last5,
      fingerprint,
      sealed: this.box.seal(key.text, `key:${fingerprint}`),
      addedAt: this.clock.now(),
    });
    await this.log('key add', null, true, null, `${key.type} ${last5} as "${keyName}"`);
    return record;
  }

  /** A stored key's name, or a key (stored when new). */
  async resolveKey(ref: string): Promise<StoredKeyRecord> {
    const byName = await this.store.findKeyByName(ref);
    if (byName) return byName;
    if (!looksLikeProductKey(ref)) {
      throw new ConsoleError(
        'KEY_NOT_FOUND',
        `no stored key named "${shown(ref)}": \`volact console key list\`, or give the key itself`,
      );
    }
    const key = this.parseKey(ref, 'mak', 'gvlk', 'kms-host');
    const known = await this.store.findKeyByFingerprint(this.box.fingerprint(key.text, 'key'));
    return known ?? this.storeKey(key);
  }

  async resolve(refs: MachineSelection): Promise<MachineRecord[]> {
    if (refs === 'all') return this.store.listMachines();
    const out = new Map<number, MachineRecord>();
    const missing: string[] = [];
    for (const ref of refs) {
      let machine = /^\d{1,15}$/.test(ref) ? await this.store.getMachine(Number(ref)) : undefined;
      machine ??= await this.store.findMachine(ref);
      if (!machine) {
        try {
          machine = await this.store.findMachine(parseMachineAddress(ref));
        } catch {
          // not an address either
        }
      }
      if (!machine) {
        // A host name, when one machine alone has it.
        const byHost = await this.store.views.findByHostName(ref, 2);
        if (byHost.length > 1) {
          throw new ConsoleError(
            'MACHINE_NOT_FOUND',
            `several machines have the host name "${shown(ref)}": name one by its id, name or address (\`volact console machines\`)`,
          );
        }
        machine = byHost[0]?.machine;
      }
      if (machine) out.set(machine.id, machine);
      else missing.push(ref);
    }
    if (missing.length) {
      throw new ConsoleError(
        'MACHINE_NOT_FOUND',
        `not in the console: ${missing.map(shown).join(', ')}; \`volact console machines\` lists ids and names`,
      );
    }
    return [...out.values()];
  }

  /** A machine as listed, from its record and its latest status (a snapshot, or the views' denormalised columns). */
  summary(m: MachineRecord, s: LatestColumns | null | undefined): MachineSummary {
    return {
      id: m.id,
      name: m.name,
      address: m.address,
      addedAt: iso(m.addedAt) as string,
      lastSeenAt: iso(m.lastSeenAt),
      lastError: m.lastError && {
        code: m.lastError.code,
        message: m.lastError.message,
        at: iso(m.lastError.at) as string,
      },
      untrusted: m.untrusted && { at: iso(m.untrusted.at) as string, reason: m.untrusted.reason },
      state: s?.state ?? null,
      method: s?.method ?? null,
      group: s?.group ?? null,
      clientMachineId: s?.clientMachineId ?? null,
      installedKey: s?.installedKey ?? null,
      installedKeyType: s?.installedKeyType ?? null,
      kmsHost: s?.kmsHost ?? null,
      expiresAt: s?.expiresAt ?? null,
      displayName: displayName(m),
      hostName: m.facts?.hostName ?? null,
      os: m.facts?.os ?? null,
      osVersion: m.facts?.osVersion ?? null,
      productVersion: m.facts?.productVersion ?? null,
      lastBootAt: iso(m.facts?.lastBootAt ?? null),
    };
  }

  keySummary(k: StoredKeyRecord): KeySummary {
    return { name: k.name, type: k.type, key: k.last5, addedAt: iso(k.addedAt) as string };
  }

  async log(operation: string, machine: string | null, ok: boolean, code: string | null, detail: string | null) {
    await this.store.logOperation({ at: this.clock.now(), operation, machine, ok, code, detail });
  }
}
