import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  CoreError,
  DAY,
  LICENCE_STATES,
  lastFiveOf,
  parseKeyOfType,
  sha256,
  systemClock,
  type AgentStatus,
  type Clock,
  type KeyType,
  type LicenceState,
} from '@volact/core';
import { parseMachineAddress } from './addresses.js';
import { loadAgentTls, type AgentTls } from './agent-tls.js';
import { checkAdminName, checkAdminPassword, hashAdminPassword, verifyAdminPassword } from './admins.js';
import { AgentClient, type ProbeResult } from './agent-client.js';
import {
  authorityOrigin,
  bulkConfirm,
  showKey,
  type AuthorityConnection,
  type BulkResult,
} from './authority-client.js';
import { ConsoleError } from './errors.js';
import { exportToFile, importChanged, importFromFile, type ExportSummary, type ImportSummary } from './export.js';
import {
  REPORT_NAMES,
  atRiskReport,
  byAuthorityReport,
  duplicateCmidReport,
  makUsageReport,
  unlicensedReport,
  type Report,
  type ReportInput,
  type ReportName,
} from './reports.js';
import { KEY_FILE, createKeyFile, readKeyFile, type SecretBox } from './secrets.js';
import { DB_FILE, openConsoleStore } from './open-store.js';

export { DB_FILE };
import { SqliteConsoleStore } from './sqlite-store.js';
import type { ConsoleStore, MachineRecord, OperationRecord, SnapshotRecord, StoredKeyRecord } from './store.js';

/** The agent's own minimum token length: a shorter one cannot be an agent's. */
export const MIN_AGENT_TOKEN_LENGTH = 16;
const DEFAULT_CONCURRENCY = 16;
const DEFAULT_DISCOVERY_CONCURRENCY = 64;
const DEFAULT_PROBE_TIMEOUT_MS = 1_000;

const KEY_SHAPE = /^[0-9A-Za-z]{5}(-[0-9A-Za-z]{5}){4}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

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

/** The agent TLS installed in the data directory (`console agent-tls`), unless given. */
const withAgentTls = (dataDir: string, options: ConsoleOptions): ConsoleOptions => {
  if (options.agentTls) return options;
  const agentTls = loadAgentTls(dataDir, options.clock);
  return agentTls ? { ...options, agentTls } : options;
};

/**
 * The data directory 0700 and the database files 0600, also when they existed with looser
 * modes (restored from a backup, made by hand): they hold sealed secrets and password hashes.
 * Only ever tightened; a reader who may not change them (another user) is not stopped.
 */
function tightenModes(dataDir: string): void {
  const tighten = (path: string, mode: number) => {
    try {
      const current = statSync(path).mode & 0o777;
      if ((current & ~mode) !== 0) chmodSync(path, current & mode);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EPERM') throw err;
    }
  };
  tighten(dataDir, 0o700);
  for (const file of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) tighten(join(dataDir, file), 0o600);
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * A stable digest of a licence status: history rows are written when it changes. The agent's
 * own fields (API version, user-operations switch) are left out: only GET /v1/status has them.
 */
function statusDigest(full: AgentStatus): string {
  const status: Record<string, unknown> = { ...full };
  delete status.agent;
  delete status.userOperations;
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
async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
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
function asConsoleError(err: unknown): ConsoleError {
  if (err instanceof ConsoleError) return err;
  const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new ConsoleError('AGENT_BAD_RESPONSE', `the machine's answer could not be processed (${what.slice(0, 200)})`);
}

function failure(machine: MachineRecord, cause: unknown): MachineResult {
  const err = asConsoleError(cause);
  return {
    machine: machine.name,
    address: machine.address,
    ok: false,
    code: err.resultCode,
    message: err.message,
    state: null,
    method: null,
  };
}

/**
 * The volume-activation console (the reference's VAMT): a database of machines and their
 * agents, product keys (sealed), status history and confirmation IDs; operations over many
 * machines at once where one failing machine never stops the others.
 */
export class VolumeConsole {
  readonly #store: ConsoleStore;
  readonly #box: SecretBox;
  readonly #clock: Clock;
  readonly #concurrency: number;
  readonly #agentTimeoutMs: number | undefined;
  readonly #tokens = new Map<number, string>();
  /** The agents #agent enrolled on the way (their new token given in this call already). */
  readonly #enrolledNow = new WeakSet<AgentClient>();
  readonly #agentTls: AgentTls | undefined;

  private constructor(store: ConsoleStore, box: SecretBox, options: ConsoleOptions) {
    this.#store = store;
    this.#box = box;
    this.#clock = options.clock ?? systemClock;
    this.#concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.#agentTimeoutMs = options.agentTimeoutMs;
    this.#agentTls = options.agentTls;
  }

  /** Creates the data directory (0700), its key file (0600) and its database. */
  static init(dataDir: string, options: ConsoleOptions = {}): VolumeConsole {
    if (existsSync(join(dataDir, KEY_FILE))) {
      throw new ConsoleError(
        'CONSOLE_EXISTS',
        `${dataDir} already holds a console (its key file would be lost); use another --data-dir`,
      );
    }
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chmodSync(dataDir, 0o700);
    const box = createKeyFile(dataDir);
    const store = new SqliteConsoleStore(join(dataDir, DB_FILE));
    tightenModes(dataDir);
    return new VolumeConsole(store, box, withAgentTls(dataDir, options));
  }

  /**
   * Opens the console of a data directory (SQLite). console.db must exist and be a database: a
   * missing, empty or foreign file is an error naming the fix, never replaced by a new console.
   * `readOnly` (the commands that only read) writes nothing to it, not even a schema upgrade.
   */
  static open(dataDir: string, options: ConsoleOptions & { readOnly?: boolean } = {}): VolumeConsole {
    const box = readKeyFile(dataDir);
    if (!existsSync(join(dataDir, DB_FILE))) {
      throw new ConsoleError(
        'CONSOLE_NOT_INITIALISED',
        `${join(dataDir, DB_FILE)} is missing: restore it from the backup of the data directory (a console created with --db needs that --db, or VOLACT_CONSOLE_DB, on every command)`,
      );
    }
    tightenModes(dataDir);
    const store = new SqliteConsoleStore(join(dataDir, DB_FILE), {
      mustExist: true,
      ...(options.readOnly ? { readOnly: true } : {}),
    });
    return new VolumeConsole(store, box, withAgentTls(dataDir, options));
  }

  /**
   * Creates a console on either engine (PostgreSQL with `databaseUrl`), with its first admin
   * for the web UI when given. The password is checked before anything is created.
   */
  static async create(
    dataDir: string,
    options: ConsoleStoreOptions & { admin?: { user: string; password: string } } = {},
  ): Promise<VolumeConsole> {
    if (options.admin) {
      checkAdminName(options.admin.user);
      checkAdminPassword(options.admin.password);
    }
    if (existsSync(join(dataDir, KEY_FILE))) {
      throw new ConsoleError(
        'CONSOLE_EXISTS',
        `${dataDir} already holds a console (its key file would be lost); use another --data-dir`,
      );
    }
    // The database first: an unreachable PostgreSQL leaves no key file behind.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chmodSync(dataDir, 0o700); // an existing directory keeps its mode otherwise; it holds the database
    const store = await openConsoleStore(dataDir, options.databaseUrl);
    tightenModes(dataDir);
    let box: SecretBox | undefined;
    try {
      // A shared PostgreSQL database already holding a console: its secrets are sealed under
      // that console's key, which a new key file would never open.
      const taken = [
        (await store.listMachines()).length,
        (await store.listKeys()).length,
        await store.countAdmins(),
      ].some((n) => n > 0);
      if (taken) {
        throw new ConsoleError(
          'CONSOLE_EXISTS',
          'the database already holds a console: copy console.key from the data directory of the console that created it (every console sharing a database needs that same key file)',
        );
      }
      box = createKeyFile(dataDir);
      const created = new VolumeConsole(store, box, withAgentTls(dataDir, options));
      if (options.admin) await created.addAdmin(options.admin.user, options.admin.password);
      return created;
    } catch (err) {
      await store.close();
      if (box) rmSync(join(dataDir, KEY_FILE), { force: true });
      throw err;
    }
  }

  /** Opens a console on either engine (the same `databaseUrl` it was created with). */
  static async connect(
    dataDir: string,
    options: ConsoleStoreOptions & { readOnly?: boolean } = {},
  ): Promise<VolumeConsole> {
    if (options.databaseUrl === undefined) return VolumeConsole.open(dataDir, options);
    const box = readKeyFile(dataDir);
    return new VolumeConsole(await openConsoleStore(dataDir, options.databaseUrl), box, withAgentTls(dataDir, options));
  }

  /** For another engine: a store and the key that seals the secrets. */
  static withStore(store: ConsoleStore, box: SecretBox, options: ConsoleOptions = {}): VolumeConsole {
    return new VolumeConsole(store, box, options);
  }

  async close(): Promise<void> {
    await this.#store.close();
  }

  // ---- machines -------------------------------------------------------------------------

  /**
   * Adds machines by agent address, all sharing `token` (stored sealed, once). Nothing is
   * added when one address is invalid or taken. Names default to the address.
   */
  async addMachines(addresses: readonly string[], token: string, names?: readonly string[]): Promise<MachineSummary[]> {
    const canonical = addresses.map(parseMachineAddress);
    if (names && names.length !== canonical.length) throw new RangeError('one name per address');
    for (const name of names ?? []) this.#checkName(name, 'machine');
    const tokenId = await this.#storeToken(token);
    for (const [i, address] of canonical.entries()) {
      const name = names?.[i] ?? address;
      if ((await this.#store.findMachine(address)) || (await this.#store.findMachine(name))) {
        throw new ConsoleError(
          'MACHINE_EXISTS',
          `${name === address ? address : `"${name}" (${address})`} is already in the console; \`volact console machine list\``,
        );
      }
    }
    if (new Set(canonical).size !== canonical.length) {
      throw new ConsoleError('MACHINE_EXISTS', 'the same address is given twice');
    }
    const now = this.#clock.now();
    const added: MachineRecord[] = [];
    for (const [i, address] of canonical.entries()) {
      const machine = await this.#store.addMachine({ name: names?.[i] ?? address, address, tokenId, addedAt: now });
      added.push(machine);
      await this.#log('machine add', machine.name, true, null, address);
    }
    return added.map((m) => this.#summary(m, undefined));
  }

  async listMachines(): Promise<MachineSummary[]> {
    const latest = await this.#store.latestSnapshots();
    return (await this.#store.listMachines()).map((m) => this.#summary(m, latest.get(m.id)));
  }

  async removeMachines(refs: MachineSelection): Promise<string[]> {
    const machines = await this.#resolve(refs);
    for (const m of machines) {
      await this.#store.removeMachine(m.id);
      await this.#log('machine remove', m.name, true, null, m.address);
    }
    return machines.map((m) => m.name);
  }

  /** A machine's status history (one row per change), oldest first. */
  async history(ref: string): Promise<{ takenAt: string; status: AgentStatus }[]> {
    const [machine] = await this.#resolve([ref]);
    return (await this.#store.history((machine as MachineRecord).id)).map((s) => ({
      takenAt: iso(s.takenAt) as string,
      status: s.status,
    }));
  }

  async operations(limit = 100): Promise<OperationRecord[]> {
    return this.#store.listOperations(limit);
  }

  /**
   * Probes addresses (at most 1 024; see expandRange) for agents that accept `token`, a few at
   * a time, each with a short timeout. Agents that answer are recorded with their status.
   */
  async discover(
    addresses: readonly string[],
    token: string,
    options: { timeoutMs?: number; concurrency?: number; onProbe?: (address: string, found: boolean) => void } = {},
  ): Promise<DiscoveryResult> {
    const canonical = [...new Set(addresses.map(parseMachineAddress))];
    const tokenText = this.#checkToken(token);
    const found: DiscoveryResult['found'] = [];
    const refused: DiscoveryResult['refused'] = [];
    let silent = 0;
    let fleetTokenId: number | undefined;
    const probe = async (address: string) => {
      const known = await this.#store.findMachine(address);
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
          status = await (await this.#agent(machine)).status();
        } else {
          const agent = new AgentClient(address, tokenText, {
            timeoutMs: options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS,
            ...(this.#agentTls ? { tls: this.#agentTls } : {}),
          });
          // The token goes only to an agent that proved it holds it, at this address.
          const proven = await agent.probe();
          // Recorded with the token it proved before it gets its own (see #giveOwnToken): an
          // enrolment whose answer is lost must not leave an agent no console holds a token of.
          fleetTokenId ??= await this.#storeToken(tokenText);
          machine = await this.#store.addMachine({
            name: address,
            address,
            tokenId: fleetTokenId,
            addedAt: this.#clock.now(),
          });
          await this.#log('discover', machine.name, true, null, `added ${address}`);
          addedHere = machine;
          if (!proven.enrolled && !proven.byCertificate) await this.#giveOwnToken(machine, agent, 'enrol');
          status = await agent.status();
        }
      } catch (err) {
        if (!(err instanceof ConsoleError)) throw err;
        if (addedHere) {
          // It proved the token and is recorded: listed, whatever went wrong after.
          refused.push({
            address,
            code: err.resultCode,
            message: `${err.message} (added as ${addedHere.name}: its next call finishes what was left)`,
          });
        } else if (err.code === 'AGENT_UNREACHABLE' || err.code === 'AGENT_TIMEOUT') silent++;
        else refused.push({ address, code: err.resultCode, message: err.message });
        options.onProbe?.(address, false);
        return;
      }
      const added = !known;
      await this.#recordStatus(machine, status);
      found.push({ address, machine: machine.name, added, state: status.state });
      options.onProbe?.(address, true);
    };
    await mapLimit(canonical, options.concurrency ?? DEFAULT_DISCOVERY_CONCURRENCY, async (address) => {
      try {
        await probe(address);
      } catch (cause) {
        const err = asConsoleError(cause);
        refused.push({ address, code: err.resultCode, message: err.message });
        options.onProbe?.(address, false);
      }
    });
    const order = (a: { address: string }, b: { address: string }) =>
      canonical.indexOf(a.address) - canonical.indexOf(b.address);
    return { probed: canonical.length, found: found.sort(order), refused: refused.sort(order), silent };
  }

  /**
   * Gives each machine a new per-machine token (after its probe with the current one); a
   * machine still on the enrolment token is enrolled instead. The old token opens nothing after.
   */
  async rotateTokens(refs: MachineSelection, onProgress?: Progress): Promise<MachineResult[]> {
    const machines = await this.#resolve(refs);
    return this.#forEach(machines, onProgress, async (machine, agent) => {
      // #agent enrolled it when it held the enrolment token: that gave it its own token already.
      const enrolled = this.#enrolledNow.has(agent);
      if (!enrolled && !agent.byCertificate) await this.#giveOwnToken(machine, agent, 'rotate');
      const status = await agent.status();
      await this.#recordStatus(machine, status);
      return this.#success(
        machine,
        status,
        agent.byCertificate
          ? 'no token to rotate: the agent authenticates this console by its client certificate (mTLS)'
          : enrolled
            ? 'enrolled: the machine has its own token now'
            : 'token rotated',
      );
    });
  }

  /**
   * Re-enrols machines: clears the untrusted mark of a failed proof, then probes again (with
   * `token`, the enrolment token the agent runs with now, when given; else the machine's own
   * token) and gives the machine a new token. A machine that fails again is marked again.
   */
  async reenrol(refs: MachineSelection, token?: string, onProgress?: Progress): Promise<MachineResult[]> {
    const machines = await this.#resolve(refs);
    const tokenId = token === undefined ? undefined : await this.#storeToken(token);
    for (const m of machines) {
      await this.#store.setUntrusted(m.id, null);
      if (tokenId !== undefined) {
        await this.#store.setMachineToken(m.id, tokenId);
        // A token sent but never confirmed may still be what the agent holds: keep trying it.
        if (m.pendingTokenId !== null) await this.#store.setPendingToken(m.id, m.pendingTokenId);
      }
      await this.#log('re-enrol', m.name, true, null, tokenId === undefined ? 'own token' : 'enrolment token');
    }
    return this.rotateTokens(
      machines.map((m) => String(m.id)),
      onProgress,
    );
  }

  /** Reads machines' status; no machines named (`[]`) means every machine, like 'all'. */
  async refresh(refs: MachineSelection = 'all', onProgress?: Progress): Promise<MachineResult[]> {
    const machines = await this.#resolve(refs.length === 0 ? 'all' : refs);
    const results = await this.#forEach(machines, onProgress, async (machine, agent) => {
      const status = await agent.status();
      const changed = await this.#recordStatus(machine, status);
      return this.#success(machine, status, changed ? 'status changed' : 'status unchanged', { changed });
    });
    const failed = results.filter((r) => !r.ok).length;
    await this.#log('refresh', null, failed === 0, null, `${results.length - failed} read, ${failed} failed`);
    return results;
  }

  // ---- keys -----------------------------------------------------------------------------

  /** Stores a MAK, GVLK or KMS host key, sealed; only its last five characters are ever shown. */
  async addKey(text: string, name?: string): Promise<KeySummary> {
    const key = this.#parseKey(text, 'mak', 'gvlk', 'kms-host');
    const record = await this.#storeKey(key, name);
    return this.#keySummary(record);
  }

  async listKeys(): Promise<KeySummary[]> {
    return (await this.#store.listKeys()).map((k) => this.#keySummary(k));
  }

  /**
   * Installs a key on machines: a stored key's name, or a key itself (then stored too, so the
   * MAK usage report sees it).
   */
  async installKey(keyRef: string, refs: MachineSelection, onProgress?: Progress): Promise<MachineResult[]> {
    const machines = await this.#resolve(refs);
    const key = await this.#resolveKey(keyRef);
    if (key.type === 'kms-host') {
      throw new ConsoleError(
        'KEY_INVALID',
        `"${key.name}" is a KMS host key (${key.last5}): it goes on a KMS host (\`volact host install-key\`), not on a client`,
      );
    }
    const text = this.#box.unseal(key.sealed, `key:${key.fingerprint}`, `stored key "${key.name}"`);
    return this.#forEach(machines, onProgress, async (machine, agent) => {
      const status = await agent.installKey(text);
      await this.#recordStatus(machine, status);
      await this.#log('install-key', machine.name, true, null, `${key.type} ${key.last5} (${key.name})`);
      return this.#success(machine, status, `installed ${key.type} ${key.last5} (${key.name})`);
    });
  }

  // ---- activation -----------------------------------------------------------------------

  /** Each machine activates itself (KMS host, directory, or its MAK online at `authority`). */
  async activate(
    refs: MachineSelection,
    options: { authority?: string } = {},
    onProgress?: Progress,
  ): Promise<MachineResult[]> {
    const machines = await this.#resolve(refs);
    const origin = options.authority === undefined ? null : authorityOrigin(options.authority);
    return this.#forEach(machines, onProgress, async (machine, agent) => {
      const outcome = await agent.activate(options.authority);
      await this.#recordStatus(machine, outcome.status);
      await this.#log('activate', machine.name, outcome.ok, outcome.code, origin ?? outcome.status.method);
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
      return this.#success(machine, outcome.status, outcome.message);
    });
  }

  /**
   * MAK proxy activation (the reference's VAMT): the console collects the machines'
   * installation IDs, sends them to the authority in ONE bulk call (per 1 000), stores each
   * confirmation ID and installs it through the machine's agent. Machines need no route to the
   * authority; the console may reach it through an HTTP proxy with credentials.
   */
  async proxyActivate(
    refs: MachineSelection,
    authority: AuthorityConnection,
    onProgress?: Progress,
  ): Promise<MachineResult[]> {
    const machines = await this.#resolve(refs);
    const origin = authorityOrigin(authority.url);
    const total = machines.length;
    let done = 0;
    const report = (r: MachineResult) => {
      onProgress?.(r, ++done, total);
      return r;
    };
    type Collected = { machine: MachineRecord; iid: string } | { machine: MachineRecord; result: MachineResult };
    const collected = await mapLimit(machines, this.#concurrency, async (machine): Promise<Collected> => {
      try {
        const iid = await (await this.#agent(machine)).installationId();
        await this.#store.recordContact(machine.id, { at: this.#clock.now(), ok: true });
        return { machine, iid };
      } catch (err) {
        const result = report(await this.#failed(machine, err));
        await this.#log('proxy-activate', machine.name, false, result.code, 'collecting the installation ID');
        return { machine, result };
      }
    });
    const iids = [...new Set(collected.flatMap((c) => ('iid' in c ? [c.iid] : [])))];
    const answers = new Map<string, BulkResult>();
    if (iids.length > 0) for (const r of await bulkConfirm(authority, iids)) answers.set(r.installationId, r);
    return mapLimit(collected, this.#concurrency, async (entry) => {
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
        await this.#log('proxy-activate', machine.name, false, code, origin);
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
      await this.#store.saveConfirmation({
        machineId: machine.id,
        installationId: iid,
        confirmationId: answer.confirmationId,
        authority: origin,
        obtainedAt: this.#clock.now(),
      });
      try {
        const status = await (await this.#agent(machine)).installConfirmation(answer.confirmationId);
        await this.#recordStatus(machine, status);
        await this.#log('proxy-activate', machine.name, true, null, `${origin}: ${status.state}`);
        return report({
          ...this.#success(machine, status, `confirmation ID installed: ${status.state}`),
          installationId: iid,
          confirmationId: answer.confirmationId,
        });
      } catch (err) {
        const result = await this.#failed(machine, err);
        await this.#log('proxy-activate', machine.name, false, result.code, 'installing the confirmation ID');
        return report({ ...result, installationId: iid, confirmationId: answer.confirmationId });
      }
    });
  }

  /**
   * Installs the stored confirmation ID for each machine's current installation ID, without
   * calling the authority: a re-imaged machine with the same key and hardware has the same IID.
   */
  async reactivate(refs: MachineSelection, onProgress?: Progress): Promise<MachineResult[]> {
    const machines = await this.#resolve(refs);
    return this.#forEach(machines, onProgress, async (machine, agent) => {
      const iid = await agent.installationId();
      const stored = await this.#store.findConfirmation(machine.id, iid);
      if (!stored) {
        throw new ConsoleError(
          'NO_CONFIRMATION_STORED',
          `no stored confirmation ID for ${machine.name}'s installation ID (its key or hardware changed since): run \`volact console proxy-activate ${machine.name}\``,
        );
      }
      const status = await agent.installConfirmation(stored.confirmationId);
      await this.#recordStatus(machine, status);
      if (stored.machineId !== machine.id) {
        await this.#store.saveConfirmation({ ...stored, machineId: machine.id });
      }
      await this.#log('reactivate', machine.name, true, null, `stored confirmation ID: ${status.state}`);
      return {
        ...this.#success(machine, status, `stored confirmation ID installed: ${status.state}`),
        installationId: iid,
        confirmationId: stored.confirmationId,
      };
    });
  }

  /**
   * Points machines at a KMS host (HOST[:PORT]), or with null back to DNS discovery; they use it
   * at their next activation (`activate`).
   */
  async setKmsHost(refs: MachineSelection, address: string | null, onProgress?: Progress): Promise<MachineResult[]> {
    const machines = await this.#resolve(refs);
    return this.#forEach(machines, onProgress, async (machine, agent) => {
      const status = await agent.setKmsHost(address);
      await this.#recordStatus(machine, status);
      const what = address === null ? 'KMS host cleared (DNS discovery)' : `KMS host set to ${status.host ?? address}`;
      await this.#log('set-kms-host', machine.name, true, null, what);
      return this.#success(machine, status, what);
    });
  }

  // ---- admins (web UI) ----------------------------------------------------------------

  /** Adds a console user who may log in to the web UI (scrypt hash stored, never the password). */
  async addAdmin(user: string, password: string): Promise<void> {
    checkAdminName(user);
    const passwordHash = await hashAdminPassword(password);
    await this.#store.addAdmin({ name: user, passwordHash, createdAt: this.#clock.now() });
    await this.#log('admin add', null, true, null, user);
  }

  /** Replaces an admin's password; ADMIN_NOT_FOUND when there is no such user. */
  async setAdminPassword(user: string, password: string): Promise<void> {
    const passwordHash = await hashAdminPassword(password);
    if (!(await this.#store.setAdminPassword(user, passwordHash))) {
      throw new ConsoleError('ADMIN_NOT_FOUND', `no console user "${user.slice(0, 64)}": \`volact console admin add\``);
    }
    await this.#log('admin password', null, true, null, user);
  }

  /** The user as stored when the password matches; null otherwise (same work either way). */
  async authenticate(user: string, password: string): Promise<{ user: string } | null> {
    const admin = user.length <= 64 ? await this.#store.findAdmin(user) : undefined;
    const ok = await verifyAdminPassword(password, admin?.passwordHash);
    return ok && admin ? { user: admin.name } : null;
  }

  async countAdmins(): Promise<number> {
    return this.#store.countAdmins();
  }

  /**
   * Machines per licence state at the end of each of the last `days` days (UTC), from the
   * status history: each machine counts in the state of its latest row taken by then.
   */
  async stateTimeline(days: number): Promise<TimelineDay[]> {
    const span = Math.max(1, Math.min(Math.trunc(days), 3660));
    const today = Math.floor(this.#clock.now() / DAY) * DAY;
    const ends = Array.from({ length: span }, (_, i) => today - (span - 1 - i) * DAY + DAY);
    const rows = await this.#store.snapshotsBefore(ends[ends.length - 1] as number);
    const byMachine = new Map<number, SnapshotRecord[]>();
    for (const r of rows) {
      const history = byMachine.get(r.machineId);
      if (history) history.push(r);
      else byMachine.set(r.machineId, [r]);
    }
    const perDay = ends.map(
      () => Object.fromEntries(LICENCE_STATES.map((st) => [st, 0])) as Record<LicenceState, number>,
    );
    // One sweep per machine over its rows in time order, the days ascending.
    for (const history of byMachine.values()) {
      history.sort((a, b) => a.takenAt - b.takenAt);
      let next = 0;
      let state: LicenceState | undefined;
      ends.forEach((end, day) => {
        while (next < history.length && (history[next] as SnapshotRecord).takenAt < end) {
          state = (history[next++] as SnapshotRecord).state;
        }
        if (state !== undefined) (perDay[day] as Record<LicenceState, number>)[state]++;
      });
    }
    return ends.map((end, day) => ({
      day: new Date(end - DAY).toISOString().slice(0, 10),
      counts: perDay[day] as Record<LicenceState, number>,
    }));
  }

  // ---- MAK counters ---------------------------------------------------------------------

  /**
   * Reads every stored MAK's limit / used / remaining from the authority's admin API and keeps
   * them (the MAK usage report shows them, with the time read). One key's failure stays its own.
   */
  async refreshMakCounts(authority: AuthorityConnection & { adminToken: string }): Promise<MakCountResult[]> {
    const origin = authorityOrigin(authority.url);
    const keys = (await this.#store.listKeys()).filter((k) => k.type === 'mak');
    const results = await mapLimit(keys, 4, async (key): Promise<MakCountResult> => {
      const base = { name: key.name, key: key.last5 };
      try {
        const text = this.#box.unseal(key.sealed, `key:${key.fingerprint}`, `stored key "${key.name}"`);
        const shown = await showKey(authority, authority.adminToken, text);
        const counters = {
          limit: shown.limit ?? null,
          used: shown.used ?? 0,
          remaining: shown.remaining ?? null,
          authority: origin,
          countedAt: this.#clock.now(),
        };
        await this.#store.setKeyCounters(key.id, counters);
        return {
          ...base,
          ok: true,
          code: null,
          message: `${counters.used} used of ${counters.limit ?? 'no limit'}`,
          limit: counters.limit,
          used: counters.used,
          remaining: counters.remaining,
        };
      } catch (err) {
        if (!(err instanceof ConsoleError)) throw err;
        return { ...base, ok: false, code: err.code, message: err.message, limit: null, used: null, remaining: null };
      }
    });
    const failed = results.filter((r) => !r.ok).length;
    await this.#log(
      'refresh-mak',
      null,
      failed === 0,
      null,
      `${origin}: ${results.length - failed} read, ${failed} failed`,
    );
    return results;
  }

  // ---- reports --------------------------------------------------------------------------

  /**
   * One of the five reports, from the latest status of each machine (run `refresh` first).
   * mak-usage shows each stored MAK's counters as last read; with `authority` it reads them
   * again first (and keeps them); one key's failure is shown in its row.
   */
  async report(
    name: string,
    options: { days?: number; authority?: AuthorityConnection & { adminToken: string } } = {},
  ): Promise<Report> {
    if (!(REPORT_NAMES as readonly string[]).includes(name)) {
      throw new ConsoleError('REPORT_UNKNOWN', `no report "${name.slice(0, 100)}": choose ${REPORT_NAMES.join(', ')}`);
    }
    const input: { -readonly [K in keyof ReportInput]: ReportInput[K] } = {
      now: this.#clock.now(),
      machines: await this.#store.listMachines(),
      latest: await this.#store.latestSnapshots(),
      keys: await this.#store.listKeys(),
    };
    switch (name as ReportName) {
      case 'at-risk':
        return atRiskReport(input, options.days ?? 30);
      case 'duplicate-cmid':
        return duplicateCmidReport(input);
      case 'unlicensed':
        return unlicensedReport(input);
      case 'by-authority':
        return byAuthorityReport(input);
      case 'mak-usage': {
        // With the authority: read the counters now (kept); without: the ones last read.
        const errors = new Map<string, string>();
        if (options.authority) {
          for (const r of await this.refreshMakCounts(options.authority)) {
            if (!r.ok) errors.set(r.name, `${r.code}: ${r.message}`);
          }
          input.keys = await this.#store.listKeys();
        }
        return makUsageReport(input, errors);
      }
    }
  }

  // ---- internals ------------------------------------------------------------------------

  async #forEach(
    machines: readonly MachineRecord[],
    onProgress: Progress | undefined,
    task: (machine: MachineRecord, agent: AgentClient) => Promise<MachineResult>,
  ): Promise<MachineResult[]> {
    let done = 0;
    return mapLimit(machines, this.#concurrency, async (machine) => {
      let result: MachineResult;
      try {
        // Each task records its status (and so the contact) through #recordStatus.
        result = await task(machine, await this.#agent(machine));
      } catch (err) {
        result = await this.#failed(machine, err);
      }
      onProgress?.(result, ++done, machines.length);
      return result;
    });
  }

  /** A failure result; the machine's last error is recorded (a refusal still means it answered). */
  async #failed(machine: MachineRecord, err: unknown): Promise<MachineResult> {
    const result = failure(machine, err);
    const at = this.#clock.now();
    if (err instanceof ConsoleError && err.code === 'AGENT_REFUSED') {
      await this.#store.recordContact(machine.id, { at, ok: true });
    }
    await this.#store.recordContact(machine.id, {
      at,
      ok: false,
      code: result.code as string,
      message: result.message,
    });
    return result;
  }

  #success(
    machine: MachineRecord,
    status: AgentStatus,
    message: string,
    extra: { changed?: boolean } = {},
  ): MachineResult {
    return {
      machine: machine.name,
      address: machine.address,
      ok: true,
      code: null,
      message,
      state: status.state,
      method: status.method,
      ...extra,
    };
  }

  async #recordStatus(machine: MachineRecord, status: AgentStatus): Promise<boolean> {
    const now = this.#clock.now();
    const changed = await this.#store.addSnapshot(machine.id, now, status, statusDigest(status));
    await this.#store.recordContact(machine.id, { at: now, ok: true });
    return changed;
  }

  async #tokenOf(machine: MachineRecord, tokenId = machine.tokenId): Promise<string> {
    let token = this.#tokens.get(tokenId);
    if (token === undefined) {
      const record = await this.#store.getToken(tokenId);
      if (!record) {
        throw new ConsoleError('SECRET_UNREADABLE', `the agent token of ${machine.name} is missing from the database`);
      }
      token = this.#box.unseal(record.sealed, `token:${record.fingerprint}`, `the agent token of ${machine.name}`);
      this.#tokens.set(tokenId, token);
    }
    return token;
  }

  async #client(machine: MachineRecord, tokenId: number): Promise<AgentClient> {
    return new AgentClient(machine.address, await this.#tokenOf(machine, tokenId), {
      ...(this.#agentTimeoutMs === undefined ? {} : { timeoutMs: this.#agentTimeoutMs }),
      ...(this.#agentTls ? { tls: this.#agentTls } : {}),
    });
  }

  /**
   * A client for the machine's agent that passed its probe (bound to the address called), so
   * the token goes only where it was proven. A machine still holding the enrolment (fleet)
   * token is enrolled on the way: it gets its own token. A failed proof marks the machine
   * untrusted; an untrusted machine is not called at all (MACHINE_UNTRUSTED).
   */
  async #agent(given: MachineRecord): Promise<AgentClient> {
    // As stored now: an earlier call of this operation may have enrolled it (a new token).
    let machine = (await this.#store.getMachine(given.id)) ?? given;
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
        await this.#store.setUntrusted(machine.id, { at: this.#clock.now(), reason: err.message });
        await this.#log('proof failed', machine.name, false, err.code, machine.address);
        throw err;
      }
      ({ agent, probe } = recovered);
      machine = recovered.machine;
    }
    if (!probe.enrolled && !probe.byCertificate) {
      await this.#giveOwnToken(machine, agent, 'enrol');
      this.#enrolledNow.add(agent);
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
    const now = await this.#store.getMachine(machine.id);
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
      await this.#store.setMachineToken(now.id, tokenId);
      await this.#log(
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
  async #giveOwnToken(machine: MachineRecord, agent: AgentClient, how: 'enrol' | 'rotate'): Promise<void> {
    const fresh = randomBytes(32).toString('base64url');
    const tokenId = await this.#storeToken(fresh);
    this.#tokens.set(tokenId, fresh);
    await this.#store.setPendingToken(machine.id, tokenId);
    if (how === 'enrol') await agent.enrol(fresh);
    else await agent.rotateToken(fresh);
    await this.#store.setMachineToken(machine.id, tokenId);
    await this.#log(how === 'enrol' ? 'enrol' : 'rotate-token', machine.name, true, null, machine.address);
  }

  #checkToken(token: string): string {
    const text = token.trim();
    if (text.length < MIN_AGENT_TOKEN_LENGTH) {
      throw new ConsoleError(
        'TOKEN_INVALID',
        `the agent token has fewer than ${MIN_AGENT_TOKEN_LENGTH} characters; give the file the agents use as --admin-token-file`,
      );
    }
    return text;
  }

  async #storeToken(token: string): Promise<number> {
    const text = this.#checkToken(token);
    const fingerprint = this.#box.fingerprint(text, 'token');
    return this.#store.findOrAddToken({
      fingerprint,
      sealed: this.#box.seal(text, `token:${fingerprint}`),
      createdAt: this.#clock.now(),
    });
  }

  #checkName(name: string, what: 'machine' | 'key'): void {
    if (!NAME_RE.test(name) || KEY_SHAPE.test(name) || /^\d+$/.test(name)) {
      throw new ConsoleError(
        what === 'machine' ? 'ADDRESS_INVALID' : 'KEY_INVALID',
        `the ${what} name "${name.slice(0, 100)}" must be 1-64 letters, digits or . _ - characters (not all digits: ids are; and not like a product key)`,
      );
    }
  }

  #parseKey(text: string, ...types: KeyType[]) {
    try {
      return parseKeyOfType(text, ...types);
    } catch (err) {
      if (err instanceof CoreError) throw new ConsoleError('KEY_INVALID', err.message);
      throw err;
    }
  }

  async #storeKey(key: { text: string; type: KeyType }, name?: string): Promise<StoredKeyRecord> {
    const last5 = lastFiveOf(key.text);
    const keyName = name ?? `${key.type}-${last5.slice(1)}`;
    this.#checkName(keyName, 'key');
    const fingerprint = this.#box.fingerprint(key.text, 'key');
    const record = await this.#store.addKey({
      name: keyName,
      type: key.type,
      last5,
      fingerprint,
      sealed: this.#box.seal(key.text, `key:${fingerprint}`),
      addedAt: this.#clock.now(),
    });
    await this.#log('key add', null, true, null, `${key.type} ${last5} as "${keyName}"`);
    return record;
  }

  /** A stored key's name, or a key (stored when new). */
  async #resolveKey(ref: string): Promise<StoredKeyRecord> {
    const byName = await this.#store.findKeyByName(ref);
    if (byName) return byName;
    if (!KEY_SHAPE.test(ref.trim())) {
      throw new ConsoleError(
        'KEY_NOT_FOUND',
        `no stored key named "${ref.slice(0, 100)}": \`volact console key list\`, or give the key itself`,
      );
    }
    const key = this.#parseKey(ref, 'mak', 'gvlk', 'kms-host');
    const known = await this.#store.findKeyByFingerprint(this.#box.fingerprint(key.text, 'key'));
    return known ?? this.#storeKey(key);
  }

  async #resolve(refs: MachineSelection): Promise<MachineRecord[]> {
    if (refs === 'all') return this.#store.listMachines();
    const out = new Map<number, MachineRecord>();
    const missing: string[] = [];
    for (const ref of refs) {
      let machine = /^\d{1,15}$/.test(ref) ? await this.#store.getMachine(Number(ref)) : undefined;
      machine ??= await this.#store.findMachine(ref);
      if (!machine) {
        try {
          machine = await this.#store.findMachine(parseMachineAddress(ref));
        } catch {
          // not an address either
        }
      }
      if (machine) out.set(machine.id, machine);
      else missing.push(ref);
    }
    if (missing.length) {
      throw new ConsoleError(
        'MACHINE_NOT_FOUND',
        `not in the console: ${missing.map((m) => m.slice(0, 100)).join(', ')}; \`volact console machines\` lists ids and names`,
      );
    }
    return [...out.values()];
  }

  #summary(m: MachineRecord, s: SnapshotRecord | undefined): MachineSummary {
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
    };
  }

  #keySummary(k: StoredKeyRecord): KeySummary {
    return { name: k.name, type: k.type, key: k.last5, addedAt: iso(k.addedAt) as string };
  }

  async #log(operation: string, machine: string | null, ok: boolean, code: string | null, detail: string | null) {
    await this.#store.logOperation({ at: this.#clock.now(), operation, machine, ok, code, detail });
  }

  // ---- export / import (the reference's CILX files; see export.ts) ---------------------

  /**
   * Writes the whole data set to one JSON file (atomically, 0600). Secrets (keys, agent
   * tokens) only with a passphrase, sealed under a key derived from it.
   */
  async exportTo(path: string, options: { passphrase?: string } = {}): Promise<ExportSummary> {
    const summary = await exportToFile(this.#store, this.#box, this.#clock.now(), path, options.passphrase);
    await this.#log('export', null, true, null, `${summary.secrets ? 'with' : 'without'} secrets`);
    return summary;
  }

  /**
   * Merges an export file into this console in one transaction, by natural identity: the same
   * file twice changes nothing. Secrets in the file need its passphrase.
   */
  async importFrom(path: string, options: { passphrase?: string } = {}): Promise<ImportSummary> {
    const summary = await importFromFile(this.#store, this.#box, path, options.passphrase);
    if (importChanged(summary)) {
      await this.#log('import', null, true, null, `export of ${summary.exportedAt}`);
    }
    return summary;
  }
}
