import type { GroupKind, KeyType, ProductGroup } from '@volact/core';

export interface KeyRecord {
  readonly id: string;
  readonly keyHash: string;
  readonly type: KeyType;
  readonly last5: string;
  readonly groupIds: readonly string[];
  readonly hostLimit: number | null;
  readonly activationsPerHost: number | null;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

export interface HostActivationRecord {
  readonly keyId: string;
  readonly hardwareId: string;
  readonly hostPublicKey: Buffer;
  readonly activationCount: number;
  readonly firstActivatedAt: number;
  readonly lastActivatedAt: number;
  readonly certificateSerial: string;
  readonly certificateExpiresAt: number;
}

export interface AuditEntry {
  readonly at: number;
  readonly action: string;
  readonly result: string;
  readonly keyLast5?: string | undefined;
  readonly detail?: string | undefined;
}

/** What the activation decision reads and writes inside one serialised transaction. */
export interface HostActivationTx {
  findHost(keyId: string, hardwareId: string): Promise<HostActivationRecord | undefined>;
  countHosts(keyId: string): Promise<number>;
  saveHost(record: HostActivationRecord): Promise<void>;
}

/**
 * The authority's store. SQLite is the embedded engine; the interface is what a second engine
 * (PostgreSQL, many nodes) implements with the same semantics: `withHostActivation` runs its
 * callback under a lock that makes the host count exact.
 */
export interface AuthorityStore {
  addGroup(group: ProductGroup & { createdAt: number }): Promise<void>;
  findGroup(nameOrId: string): Promise<ProductGroup | undefined>;
  listGroups(): Promise<ProductGroup[]>;
  addKey(record: KeyRecord): Promise<void>;
  findKeyByHash(keyHash: string): Promise<KeyRecord | undefined>;
  listHosts(keyId: string): Promise<HostActivationRecord[]>;
  /** Sets a key's host limit; refused (returns false) below the hosts already activated. */
  setHostLimit(keyId: string, limit: number): Promise<boolean>;
  /** Marks a key revoked (later activations are refused); keeps its activations. */
  revokeKey(keyId: string, at: number): Promise<void>;
  /** Runs `work` in one transaction that holds the key's row lock: host counts stay exact. */
  withHostActivation<T>(keyId: string, work: (tx: HostActivationTx) => Promise<T>): Promise<T>;
  audit(entry: AuditEntry): Promise<void>;
  recentAudit(limit: number): Promise<AuditEntry[]>;
  close(): Promise<void>;
}

export type { GroupKind };
