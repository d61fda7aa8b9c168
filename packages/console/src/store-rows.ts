/**
 * What the console's two store engines (SQLite, PostgreSQL) share: the tables' row shapes and
 * their mapping to records, the columns written for a status snapshot and for a key's MAK
 * counters, and the errors a taken name gives. Both engines have the same tables and columns.
 */
import type { KeyType, LicenceState } from '@volact/core';
import type { AgentStatus } from '@volact/core';
import { ConsoleError } from './errors.js';
import type {
  AdminRecord,
  ConfirmationRecord,
  MachineFacts,
  MachineRecord,
  MakCountersRecord,
  OperationRecord,
  SnapshotRecord,
  StoredKeyRecord,
  TokenRecord,
} from './store.js';

/**
 * Columns migration 5 (issue 15) adds to `machines`: the agent's facts (GET /v1/status
 * `machine`) and the latest status snapshot denormalised (kept by addSnapshot and importData),
 * so pages, filters, sorts and reports run in SQL. INTEGER becomes BIGINT on PostgreSQL.
 */
export const MACHINE_COLUMNS_15 = [
  'host_name TEXT',
  'os TEXT',
  'os_version TEXT',
  'product_version TEXT',
  'last_boot_at INTEGER',
  'latest_snapshot_id INTEGER',
  'state TEXT',
  'method TEXT',
  'product_group TEXT',
  'client_machine_id TEXT',
  'installed_key TEXT',
  'installed_key_type TEXT',
  'kms_host TEXT',
  'expires_at TEXT',
  'status_at INTEGER',
] as const;

/**
 * What the UI shows for a machine (migration 5's generated column `display_name`): the name
 * given, else the agent's host name, else the address (a machine added by address only is
 * named by its address).
 */
export const DISPLAY_NAME_SQL = 'CASE WHEN name <> address THEN name ELSE coalesce(host_name, address) END';

/**
 * The machines table's sort keys with an index each (migration 5): the key, then the display
 * name (the tiebreak of every sort, then the id). `COLLATE NOCASE` keys compare ignoring ASCII
 * case (PostgreSQL: lower() under "C"); other text keys byte by byte ("C"); `_at` keys are times.
 */
export const MACHINE_SORT_INDEXES: readonly (readonly [string, string])[] = [
  ['machines_state', 'state'],
  ['machines_method', 'method'],
  ['machines_cmid', 'client_machine_id'],
  ['machines_installed_key', 'installed_key'],
  ['machines_last_seen', 'last_seen_at'],
  ['machines_host_name', 'host_name COLLATE NOCASE'],
  ['machines_os', 'os'],
  ['machines_product_version', 'product_version'],
  ['machines_group', 'product_group'],
  ['machines_kms_host', 'kms_host'],
  ['machines_expires', 'expires_at'],
  ['machines_last_boot', 'last_boot_at'],
];

/**
 * PostgreSQL only (its schema version 5, after issue 15's 4): the sort keys that also have an
 * index after the state, for a page filtered by state and sorted by the key. These latest-status columns go with the
 * state (no expiry, method or key when unlicensed; a method only when licensed): walking the
 * key's own index for one state passes most machines of the others first (84 000 of 100 000
 * for licensed machines by method). Other keys walk their own index (the facts, the address,
 * times), or the state's rows are sorted when few (the planner's choice).
 */
export const STATE_SORT_INDEXES: readonly (readonly [string, string])[] = [
  ['machines_state_expires', 'expires_at'],
  ['machines_state_method', 'method'],
  ['machines_state_installed_key', 'installed_key'],
];

/**
 * The latest snapshot's columns denormalised on `machines` (migration 5), in the order
 * `latestValues` gives them; the snapshot's own column names, but `status_at` for `taken_at`.
 */
export const LATEST_COLUMNS = [
  'latest_snapshot_id',
  'state',
  'method',
  'product_group',
  'client_machine_id',
  'installed_key',
  'installed_key_type',
  'kms_host',
  'expires_at',
  'status_at',
] as const;
/** The snapshot columns LATEST_COLUMNS are read from, in the same order. */
export const LATEST_SOURCES = [
  'id',
  'state',
  'method',
  'product_group',
  'client_machine_id',
  'installed_key',
  'installed_key_type',
  'kms_host',
  'expires_at',
  'taken_at',
] as const;

/** The denormalised latest columns for a snapshot row just written (LATEST_COLUMNS' order). */
export const latestValues = (snapshotId: number, takenAt: number, status: AgentStatus): (string | number | null)[] => [
  snapshotId,
  status.state,
  status.method,
  status.group,
  status.clientMachineId,
  status.installedKey,
  status.installedKeyType,
  status.host,
  status.expiresAt,
  takenAt,
];

/** The agent's fact columns on `machines`, in the order `factValues` gives them. */
export const FACT_COLUMNS = ['host_name', 'os', 'os_version', 'product_version', 'last_boot_at'] as const;

export const factValues = (f: MachineFacts): (string | number | null)[] => [
  f.hostName,
  f.os,
  f.osVersion,
  f.productVersion,
  f.lastBootAt,
];

export interface TokenRow {
  id: number;
  fingerprint: string;
  sealed: string;
  created_at: number;
}
export interface MachineRow {
  id: number;
  name: string;
  address: string;
  token_id: number;
  pending_token_id: number | null;
  added_at: number;
  last_seen_at: number | null;
  last_error_code: string | null;
  last_error_message: string | null;
  last_error_at: number | null;
  untrusted_at: number | null;
  untrusted_reason: string | null;
  // Migration 5 (issue 15): the agent's facts; the latest snapshot's columns are read by the views.
  host_name?: string | null;
  os?: string | null;
  os_version?: string | null;
  product_version?: string | null;
  last_boot_at?: number | null;
}
export interface SnapshotRow {
  id: number;
  machine_id: number;
  taken_at: number;
  digest: string;
  state: string;
  method: string | null;
  product_group: string;
  client_machine_id: string;
  installed_key: string | null;
  installed_key_type: string | null;
  installation_id: string | null;
  kms_host: string | null;
  expires_at: string | null;
  status_json: string;
}
export interface KeyRow {
  id: number;
  name: string;
  type: string;
  last5: string;
  fingerprint: string;
  sealed: string;
  added_at: number;
  mak_limit: number | null;
  mak_used: number | null;
  mak_remaining: number | null;
  mak_authority: string | null;
  /** Null while the key was never counted (then every mak_ column is null too). */
  counted_at: number | null;
}
export interface ConfirmationRow {
  machine_id: number;
  installation_id: string;
  confirmation_id: string;
  authority: string | null;
  obtained_at: number;
}
export interface OperationRow {
  id: number;
  at: number;
  operation: string;
  machine: string | null;
  /** SQLite: 0 or 1; PostgreSQL: a boolean. */
  ok: number | boolean;
  code: string | null;
  detail: string | null;
}
export interface AdminRow {
  name: string;
  password_hash: string;
  created_at: number;
  role: string;
}

export const toToken = (r: TokenRow): TokenRecord => ({
  id: r.id,
  fingerprint: r.fingerprint,
  sealed: r.sealed,
  createdAt: r.created_at,
});
export const toMachine = (r: MachineRow): MachineRecord => ({
  id: r.id,
  name: r.name,
  address: r.address,
  tokenId: r.token_id,
  pendingTokenId: r.pending_token_id ?? null,
  addedAt: r.added_at,
  lastSeenAt: r.last_seen_at,
  lastError:
    r.last_error_code === null
      ? null
      : { code: r.last_error_code, message: r.last_error_message ?? '', at: r.last_error_at ?? 0 },
  untrusted: r.untrusted_at === null ? null : { at: Number(r.untrusted_at), reason: r.untrusted_reason ?? '' },
  facts:
    r.host_name === null || r.host_name === undefined
      ? null
      : {
          hostName: r.host_name,
          os: r.os ?? '',
          osVersion: r.os_version ?? '',
          productVersion: r.product_version ?? null,
          lastBootAt: r.last_boot_at === null || r.last_boot_at === undefined ? null : Number(r.last_boot_at),
        },
});
export const toSnapshot = (r: SnapshotRow): SnapshotRecord => ({
  id: r.id,
  machineId: r.machine_id,
  takenAt: r.taken_at,
  state: r.state as LicenceState,
  method: r.method as AgentStatus['method'],
  group: r.product_group,
  clientMachineId: r.client_machine_id,
  installedKey: r.installed_key,
  installedKeyType: r.installed_key_type as AgentStatus['installedKeyType'],
  installationId: r.installation_id,
  kmsHost: r.kms_host,
  expiresAt: r.expires_at,
  status: JSON.parse(r.status_json) as AgentStatus,
});
export const toKey = (r: KeyRow): StoredKeyRecord => ({
  id: r.id,
  name: r.name,
  type: r.type as KeyType,
  last5: r.last5,
  fingerprint: r.fingerprint,
  sealed: r.sealed,
  addedAt: r.added_at,
  counters:
    r.counted_at === null
      ? null
      : {
          limit: r.mak_limit,
          used: r.mak_used ?? 0,
          remaining: r.mak_remaining,
          authority: r.mak_authority ?? '',
          countedAt: r.counted_at,
        },
});
export const toConfirmation = (r: ConfirmationRow): ConfirmationRecord => ({
  machineId: r.machine_id,
  installationId: r.installation_id,
  confirmationId: r.confirmation_id,
  authority: r.authority,
  obtainedAt: r.obtained_at,
});
export const toOperation = (r: OperationRow): OperationRecord => ({
  id: r.id,
  at: r.at,
  operation: r.operation,
  machine: r.machine,
  ok: r.ok === true || r.ok === 1,
  code: r.code,
  detail: r.detail,
});
export const toAdmin = (r: AdminRow): AdminRecord => ({
  name: r.name,
  passwordHash: r.password_hash,
  createdAt: r.created_at,
  // Any other value (a hand-edited row) reads as the lesser role.
  role: r.role === 'admin' ? 'admin' : 'viewer',
});

export const lastAdmin = (name: string) =>
  new ConsoleError(
    'LAST_ADMIN',
    `"${name.slice(0, 64)}" is the console's last user with the admin role: add another admin first (\`volact console admin add --role admin\`)`,
  );

/** The columns of one status snapshot row, in the order `snapshotValues` gives them. */
export const SNAPSHOT_COLUMNS = [
  'machine_id',
  'taken_at',
  'digest',
  'state',
  'method',
  'product_group',
  'client_machine_id',
  'installed_key',
  'installed_key_type',
  'installation_id',
  'kms_host',
  'expires_at',
  'status_json',
] as const;

/** One status snapshot row: the status's fields for queries, and the whole status as JSON. */
export const snapshotValues = (
  machineId: number,
  takenAt: number,
  digest: string,
  status: AgentStatus,
  json?: string,
): (string | number | null)[] => [
  machineId,
  takenAt,
  digest,
  status.state,
  status.method,
  status.group,
  status.clientMachineId,
  status.installedKey,
  status.installedKeyType,
  status.installationId,
  status.host,
  status.expiresAt,
  json ?? JSON.stringify(status),
];

/** A key's MAK counter columns, in the order `counterValues` gives them. */
export const COUNTER_COLUMNS = ['mak_limit', 'mak_used', 'mak_remaining', 'mak_authority', 'counted_at'] as const;

/** All null when the key was never counted. */
export const counterValues = (c: MakCountersRecord | null): (string | number | null)[] =>
  c === null ? [null, null, null, null, null] : [c.limit, c.used, c.remaining, c.authority, c.countedAt];

export const machineExists = (name: string, address: string) =>
  new ConsoleError(
    'MACHINE_EXISTS',
    `a machine named "${name}" or at ${address} is already in the console; \`volact console machine list\``,
  );

/** `same` is the stored key with that fingerprint, if any (else the name was taken). */
export const keyExists = (key: { name: string; last5: string }, same: StoredKeyRecord | undefined) =>
  new ConsoleError(
    'KEY_EXISTS',
    same
      ? `key ${key.last5} is already stored as "${same.name}"`
      : `a key named "${key.name}" is already stored; choose another --name`,
  );

export const adminExists = (name: string) =>
  new ConsoleError('ADMIN_EXISTS', `a console user named "${name}" already exists (names ignore case)`);

/**
 * Testing only (`generateFleet` of `@volact/console/testing`): one generated machine with its
 * status history (oldest first; the last row is its latest status), written straight into an
 * empty store by the engine's `insertGeneratedFleet` (what importData would write, in bulk).
 */
export interface GeneratedMachineRows {
  readonly name: string;
  readonly address: string;
  readonly addedAt: number;
  readonly lastSeenAt: number | null;
  readonly lastError: MachineRecord['lastError'];
  readonly facts: MachineFacts | null;
  readonly history: readonly { readonly takenAt: number; readonly digest: string; readonly status: AgentStatus }[];
}

/** An engine that writes a generated fleet in bulk (both store classes; not on ConsoleStore). */
export interface GeneratedFleetWriter {
  /**
   * Adds `token` (found by fingerprint, else added) and `machines` with their histories in one
   * transaction; false, writing nothing, when the store already has machines.
   */
  insertGeneratedFleet(
    token: { readonly fingerprint: string; readonly sealed: string; readonly createdAt: number },
    machines: readonly GeneratedMachineRows[],
  ): Promise<boolean>;
}

/** The `machines` columns `generatedMachineValues` gives, in its order. */
export const GENERATED_MACHINE_COLUMNS = [
  'id',
  'name',
  'address',
  'token_id',
  'added_at',
  'last_seen_at',
  'last_error_code',
  'last_error_message',
  'last_error_at',
  ...FACT_COLUMNS,
  ...LATEST_COLUMNS,
] as const;

/**
 * A generated machine's row: its facts, and its latest-status columns from its last history
 * row (snapshot id `latestSnapshotId`), as importData's recompute would set them.
 */
export function generatedMachineValues(
  id: number,
  tokenId: number,
  m: GeneratedMachineRows,
  latestSnapshotId: number,
): (string | number | null)[] {
  const last = m.history[m.history.length - 1];
  return [
    id,
    m.name,
    m.address,
    tokenId,
    m.addedAt,
    m.lastSeenAt,
    m.lastError?.code ?? null,
    m.lastError?.message ?? null,
    m.lastError?.at ?? null,
    ...(m.facts ? factValues(m.facts) : [null, null, null, null, null]),
    ...(last ? latestValues(latestSnapshotId, last.takenAt, last.status) : LATEST_COLUMNS.map(() => null)),
  ];
}
