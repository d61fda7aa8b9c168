import { chmodSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { encodeProxyFile, type AgentStatus, type LicenceState } from '@volact/core';
import * as activation from './activation-operations.js';
import * as admins from './admins.js';
import * as proxyFiles from './proxy-files/operations.js';
import { loadAgentTls } from './agent-tls.js';
import type { AuthorityConnection } from './authority-client.js';
import { ConsoleError } from './errors.js';
import {
  exportToFile,
  exportToText,
  importChanged,
  importFromFile,
  importFromText,
  type ExportSummary,
  type ImportSummary,
} from './export.js';
import { Fleet } from './fleet.js';
import * as keys from './key-operations.js';
import * as machines from './machine-operations.js';
import * as reports from './report-operations.js';
import * as views from './views/operations.js';
import type { Report } from './reports.js';
import type {
  ConsoleOptions,
  ConsoleStoreOptions,
  DiscoveryProbe,
  DiscoveryResult,
  KeySummary,
  MachineResult,
  MachineSelection,
  MachineSummary,
  MakCountResult,
  Progress,
  TimelineDay,
} from './results.js';
import { KEY_FILE, createKeyFile, readKeyFile, type SecretBox } from './secrets.js';
import { DB_FILE, openConsoleStore } from './open-store.js';
import { SqliteConsoleStore } from './sqlite-store.js';
import type { ConsoleStore, OperationRecord } from './store.js';
import type {
  MachineFilter,
  MachinesQuery,
  OperationsQuery,
  ProxyFileSummary,
  ReportPage,
  UserRole,
  UserSummary,
} from './web/contract.js';
import type { WebStateStore } from './web-state/store.js';

export { DB_FILE };

export { MIN_AGENT_TOKEN_LENGTH } from './fleet.js';

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

/**
 * The volume-activation console (the reference's VAMT): a database of machines and their
 * agents, product keys (sealed), status history and confirmation IDs; operations over many
 * machines at once where one failing machine never stops the others.
 */
export class VolumeConsole {
  readonly #fleet: Fleet;

  private constructor(store: ConsoleStore, box: SecretBox, options: ConsoleOptions) {
    this.#fleet = new Fleet(store, box, options);
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
      admins.checkAdminName(options.admin.user);
      admins.checkAdminPassword(options.admin.password);
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
    this.#fleet.connections.close();
    await this.#fleet.store.close();
  }

  // ---- machines (machine-operations.ts) -------------------------------------------------

  /**
   * Adds machines by agent address, all sharing `token` (stored sealed, once). Nothing is
   * added when one address is invalid or taken. Names default to the address.
   */
  async addMachines(addresses: readonly string[], token: string, names?: readonly string[]): Promise<MachineSummary[]> {
    return machines.addMachines(this.#fleet, addresses, token, names);
  }

  async listMachines(): Promise<MachineSummary[]> {
    return machines.listMachines(this.#fleet);
  }

  async removeMachines(refs: MachineSelection): Promise<string[]> {
    return machines.removeMachines(this.#fleet, refs);
  }

  /** A machine's status history (one row per change), oldest first. */
  async history(ref: string): Promise<{ takenAt: string; status: AgentStatus }[]> {
    return machines.history(this.#fleet, ref);
  }

  async operations(limit = 100): Promise<OperationRecord[]> {
    return machines.operations(this.#fleet, limit);
  }

  /**
   * Probes addresses (at most 1 024; see expandRange) for agents that accept `token`, a few at
   * a time, each with a short timeout. Agents that answer are recorded with their status.
   */
  async discover(
    addresses: readonly string[],
    token: string,
    options: {
      timeoutMs?: number;
      concurrency?: number;
      onProbe?: (address: string, found: boolean, probe: DiscoveryProbe) => void;
    } = {},
  ): Promise<DiscoveryResult> {
    return machines.discover(this.#fleet, addresses, token, options);
  }

  /**
   * Gives each machine a new per-machine token (after its probe with the current one); a
   * machine still on the enrolment token is enrolled instead. The old token opens nothing after.
   */
  async rotateTokens(refs: MachineSelection, onProgress?: Progress): Promise<MachineResult[]> {
    return machines.rotateTokens(this.#fleet, refs, onProgress);
  }

  /**
   * Re-enrols machines: clears the untrusted mark of a failed proof, then probes again (with
   * `token`, the enrolment token the agent runs with now, when given; else the machine's own
   * token) and gives the machine a new token. A machine that fails again is marked again.
   */
  async reenrol(refs: MachineSelection, token?: string, onProgress?: Progress): Promise<MachineResult[]> {
    return machines.reenrol(this.#fleet, refs, token, onProgress);
  }

  /** Reads machines' status; no machines named (`[]`) means every machine, like 'all'. */
  async refresh(refs: MachineSelection = 'all', onProgress?: Progress): Promise<MachineResult[]> {
    return machines.refresh(this.#fleet, refs, onProgress);
  }

  // ---- keys (key-operations.ts) ---------------------------------------------------------

  /** Stores a MAK, GVLK or KMS host key, sealed; only its last five characters are ever shown. */
  async addKey(text: string, name?: string): Promise<KeySummary> {
    return keys.addKey(this.#fleet, text, name);
  }

  async listKeys(): Promise<KeySummary[]> {
    return keys.listKeys(this.#fleet);
  }

  /**
   * Installs a key on machines: a stored key's name, or a key itself (then stored too, so the
   * MAK usage report sees it).
   */
  async installKey(keyRef: string, refs: MachineSelection, onProgress?: Progress): Promise<MachineResult[]> {
    return keys.installKey(this.#fleet, keyRef, refs, onProgress);
  }

  // ---- activation (activation-operations.ts) -------------------------------------------

  /** Each machine activates itself (KMS host, directory, or its MAK online at `authority`). */
  async activate(
    refs: MachineSelection,
    options: { authority?: string } = {},
    onProgress?: Progress,
  ): Promise<MachineResult[]> {
    return activation.activate(this.#fleet, refs, options, onProgress);
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
    return activation.proxyActivate(this.#fleet, refs, authority, onProgress);
  }

  /**
   * Installs the stored confirmation ID for each machine's current installation ID, without
   * calling the authority: a re-imaged machine with the same key and hardware has the same IID.
   */
  async reactivate(refs: MachineSelection, onProgress?: Progress): Promise<MachineResult[]> {
    return activation.reactivate(this.#fleet, refs, onProgress);
  }

  /**
   * Points machines at a KMS host (HOST[:PORT]), or with null back to DNS discovery; they use it
   * at their next activation (`activate`).
   */
  async setKmsHost(refs: MachineSelection, address: string | null, onProgress?: Progress): Promise<MachineResult[]> {
    return activation.setKmsHost(this.#fleet, refs, address, onProgress);
  }

  /**
   * Turns the machines' KMS host caching on or off (slmgr /skhc, /ckhc): on, the host DNS found
   * is kept for renewals until it stops answering; off, every attempt looks DNS up.
   */
  async setKmsHostCaching(refs: MachineSelection, enabled: boolean, onProgress?: Progress): Promise<MachineResult[]> {
    return activation.setKmsHostCaching(this.#fleet, refs, enabled, onProgress);
  }

  // ---- admins of the web UI (admins.ts) -------------------------------------------------

  /** Adds a console user with the admin role (scrypt hash stored, never the password); see addUser. */
  async addAdmin(user: string, password: string): Promise<void> {
    return admins.addAdmin(this.#fleet, user, password);
  }

  /** Replaces a user's password and ends their web sessions; ADMIN_NOT_FOUND when there is no such user. */
  async setAdminPassword(user: string, password: string): Promise<void> {
    return admins.setAdminPassword(this.#fleet, user, password);
  }

  /** The user as stored, with their role, when the password matches; null otherwise (same work either way). */
  async authenticate(user: string, password: string): Promise<{ user: string; role: UserRole } | null> {
    return admins.authenticate(this.#fleet, user, password);
  }

  async countAdmins(): Promise<number> {
    return admins.countAdmins(this.#fleet);
  }

  // ---- reports, MAK counters, timeline (report-operations.ts) ---------------------------

  /**
   * Machines per licence state at the end of each of the last `days` days (UTC), from the
   * status history: each machine counts in the state of its latest row taken by then.
   */
  async stateTimeline(days: number): Promise<TimelineDay[]> {
    return reports.stateTimeline(this.#fleet, days);
  }

  /**
   * Reads every stored MAK's limit / used / remaining from the authority's admin API and keeps
   * them (the MAK usage report shows them, with the time read). One key's failure stays its own.
   */
  async refreshMakCounts(authority: AuthorityConnection & { adminToken: string }): Promise<MakCountResult[]> {
    return reports.refreshMakCounts(this.#fleet, authority);
  }

  /**
   * One of the five reports, from the latest status of each machine (run `refresh` first).
   * mak-usage shows each stored MAK's counters as last read; with `authority` it reads them
   * again first (and keeps them); one key's failure is shown in its row.
   */
  async report(
    name: string,
    options: { days?: number; authority?: AuthorityConnection & { adminToken: string } } = {},
  ): Promise<Report> {
    return reports.report(this.#fleet, name, options);
  }

  // ---- issue 15 service layer: the web UI and the CLI call these ------------------------

  // views/ (pages, filters, sorts, counts and reports in SQL)

  /** One page of the machines table, filtered and sorted in SQL; `total` = rows matching. */
  async pageMachines(query: MachinesQuery): Promise<{ machines: MachineSummary[]; total: number }> {
    return views.pageMachines(this.#fleet, query);
  }

  /** The ids of every machine matching the filter (a job on "every machine matching"). */
  async machineIds(filter: MachineFilter): Promise<string[]> {
    return views.machineIds(this.#fleet, filter);
  }

  /** One machine (id, name, address or host name) as listed. */
  async findMachineSummary(ref: string): Promise<MachineSummary | undefined> {
    return views.findMachineSummary(this.#fleet, ref);
  }

  /** Machines per latest licence state (`unknown`: never read). */
  async stateCounts(): Promise<Record<LicenceState | 'unknown', number>> {
    return views.stateCounts(this.#fleet);
  }

  /** One page of a report with its human column labels (the CSV: `report()`). */
  async reportPage(name: string, options: { days: number; offset: number; limit: number }): Promise<ReportPage> {
    return reports.reportPage(this.#fleet, name, options);
  }

  /** One page of the operations log, newest first, filtered. */
  async operationsPage(query: OperationsQuery): Promise<{ operations: OperationRecord[]; total: number }> {
    return views.operationsPage(this.#fleet, query);
  }

  // web-state/ (console users with roles; sessions and jobs are the web server's, on store.webState)

  /** Every console user with their role, by name (never a password hash). */
  async listUsers(): Promise<UserSummary[]> {
    return admins.listUsers(this.#fleet);
  }

  /** ADMIN_EXISTS, ADMIN_NAME_INVALID, ADMIN_PASSWORD_INVALID, ADMIN_ROLE_INVALID. */
  async addUser(user: string, password: string, role: UserRole): Promise<UserSummary> {
    return admins.addUser(this.#fleet, user, password, role);
  }

  /** Ends the user's sessions too. LAST_ADMIN for the last admin; ADMIN_NOT_FOUND. */
  async removeUser(user: string): Promise<void> {
    return admins.removeUser(this.#fleet, user);
  }

  /** Ends the user's sessions too. LAST_ADMIN when it would leave no admin; ADMIN_ROLE_INVALID; ADMIN_NOT_FOUND. */
  async setUserRole(user: string, role: UserRole): Promise<UserSummary> {
    return admins.setUserRole(this.#fleet, user, role);
  }

  /** The store's sessions and jobs, for the web server. */
  get webState(): WebStateStore {
    return this.#fleet.store.webState;
  }

  // proxy-files/ (isolated networks; phone confirmation IDs)

  /**
   * Isolated networks, step 1: reads the machines' installation IDs through their agents and
   * writes them into a signed, versioned file (no secret in it), kept here to check step 3.
   */
  async collectInstallationIds(
    refs: MachineSelection,
    options: { user?: string | null } = {},
    onProgress?: Progress,
  ): Promise<{ fileId: string; file: string; results: MachineResult[] }> {
    return proxyFiles.collectInstallationIds(this.#fleet, refs, options.user ?? null, onProgress);
  }

  async listProxyFiles(): Promise<ProxyFileSummary[]> {
    return proxyFiles.listProxyFiles(this.#fleet);
  }

  /** A collected file's text, as written at step 1. */
  async proxyFile(id: string): Promise<string> {
    return proxyFiles.proxyFile(this.#fleet, id);
  }

  /**
   * Step 2 on a console that reaches the authority (the authority's `confirm-file` does the
   * same): the confirmation file's text for an installation-ID file. `consoleKeyId` (the
   * collecting console's, from its `--collect` output or web UI) refuses a file signed by any
   * other key (PROXY_FILE_FOREIGN) before the authority is called.
   */
  async confirmProxyFile(file: string, authority: AuthorityConnection, consoleKeyId?: string): Promise<string> {
    return encodeProxyFile(await proxyFiles.confirmFile(this.#fleet, file, authority, consoleKeyId));
  }

  /** This console's key ID: what the confirming side pins (`--console-key-id`) to take only its files. */
  consoleKeyId(): string {
    return proxyFiles.consoleKeyId(this.#fleet);
  }

  /**
   * Step 3: installs the confirmation IDs of a confirmation file through the agents and stores
   * them (re-images). A confirmation for a machine or IID not in the collected file is skipped
   * and reported.
   */
  async applyConfirmationFile(
    file: string,
    onProgress?: Progress,
  ): Promise<{ fileId: string; results: MachineResult[]; skipped: { installationId: string; reason: string }[] }> {
    return proxyFiles.applyConfirmationFile(this.#fleet, file, onProgress);
  }

  /** Installs a confirmation ID read out over the phone (CONFIRMATION_ID_INVALID names the wrong group). */
  async installConfirmationId(ref: string, confirmationId: string): Promise<MachineResult> {
    return proxyFiles.installConfirmationId(this.#fleet, ref, confirmationId);
  }

  // ---- export / import (the reference's CILX files; see export.ts) ---------------------

  /**
   * Writes the whole data set to one JSON file (atomically, 0600). Secrets (keys, agent
   * tokens) only with a passphrase, sealed under a key derived from it.
   */
  async exportTo(path: string, options: { passphrase?: string } = {}): Promise<ExportSummary> {
    const summary = await exportToFile(
      this.#fleet.store,
      this.#fleet.box,
      this.#fleet.clock.now(),
      path,
      options.passphrase,
    );
    await this.#fleet.log('export', null, true, null, `${summary.secrets ? 'with' : 'without'} secrets`);
    return summary;
  }

  /** exportTo as text (the web UI's download): the file's text and what it holds. */
  async exportText(passphrase?: string): Promise<{ text: string; summary: ExportSummary }> {
    const out = await exportToText(this.#fleet.store, this.#fleet.box, this.#fleet.clock.now(), passphrase);
    await this.#fleet.log('export', null, true, null, `${out.summary.secrets ? 'with' : 'without'} secrets`);
    return out;
  }

  /** importFrom for an export file's text (the web UI's upload). */
  async importText(text: string, passphrase?: string): Promise<ImportSummary> {
    const summary = await importFromText(this.#fleet.store, this.#fleet.box, text, passphrase);
    if (importChanged(summary)) {
      await this.#fleet.log('import', null, true, null, `export of ${summary.exportedAt}`);
    }
    return summary;
  }

  /**
   * Merges an export file into this console in one transaction, by natural identity: the same
   * file twice changes nothing. Secrets in the file need its passphrase.
   */
  async importFrom(path: string, options: { passphrase?: string } = {}): Promise<ImportSummary> {
    const summary = await importFromFile(this.#fleet.store, this.#fleet.box, path, options.passphrase);
    if (importChanged(summary)) {
      await this.#fleet.log('import', null, true, null, `export of ${summary.exportedAt}`);
    }
    return summary;
  }
}
