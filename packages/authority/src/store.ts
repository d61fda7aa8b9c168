import type { GroupKind, KeyType, ProductGroup } from '@volact/core';

export interface KeyRecord {
  readonly id: string;
  readonly keyHash: string;
  readonly type: KeyType;
  readonly last5: string;
  readonly groupIds: readonly string[];
  /** Activations allowed: hosts for a kms-host key, installations for a MAK or retail key. */
  readonly limit: number | null;
  readonly activationsPerHost: number | null;
  readonly createdAt: number;
  readonly revokedAt: number | null;
  /** Finds the key from an installation ID (hex); null for keys minted before phone activation. */
  readonly keyRef: string | null;
  /** The key's IID proof key, sealed with the authority's secret (see sealing.ts). */
  readonly proofKeySealed: string | null;
  /** Installations activated (MAK/retail keys): kept with the key so the limit check is one row. */
  readonly used: number;
}

export interface InstallationRequest {
  /** Identifies the installation under its key: the IID's hardware reference (hex). */
  readonly hardwareRef: string;
  readonly installationId: string;
  readonly channel: 'online' | 'phone';
  readonly at: number;
}

export interface InstallationRecord {
  readonly hardwareRef: string;
  readonly installationId: string;
  readonly channel: string;
  readonly activationCount: number;
  readonly firstActivatedAt: number;
  readonly lastActivatedAt: number;
}

/** The audit row of an installation decision (both engines write it inside the decision's transaction). */
export const auditResult = (o: InstallationOutcome): string => (o.outcome === 'limit' ? 'MAK_LIMIT_REACHED' : 'OK');
export const auditDetail = (r: InstallationRequest, o: InstallationOutcome): string =>
  `installation ${r.hardwareRef}: ${o.outcome === 'existing' ? 'again, free' : o.outcome === 'new' ? 'new' : 'refused'}, ${o.used} of ${o.limit} used`;

/** new: uses one activation; existing: the same installation again, free; limit: refused. */
export interface InstallationOutcome {
  readonly outcome: 'new' | 'existing' | 'limit';
  readonly used: number;
  readonly limit: number;
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
  findKeyByRef(keyRef: string): Promise<KeyRecord[]>;
  listHosts(keyId: string): Promise<HostActivationRecord[]>;
  listInstallations(keyId: string): Promise<InstallationRecord[]>;
  /**
   * Decides a batch of installation activations of one key in one transaction under the key's
   * row lock, in order: an installation already activated is free, a new one takes one of the
   * remaining activations or is refused. Nothing is written for a refused one but its audit
   * row; every decision's audit row commits with it. Outcomes are returned after the commit.
   */
  activateInstallations(
    keyId: string,
    keyLast5: string,
    requests: readonly InstallationRequest[],
  ): Promise<InstallationOutcome[]>;
  /** Sets a key's limit; refused (returns false) below the activations already made. */
  setLimit(keyId: string, limit: number): Promise<boolean>;
  /** Marks a key revoked (later activations are refused); keeps its activations. */
  revokeKey(keyId: string, at: number): Promise<void>;
  /** Runs `work` in one transaction that holds the key's row lock: host counts stay exact. */
  withHostActivation<T>(keyId: string, work: (tx: HostActivationTx) => Promise<T>): Promise<T>;
  audit(entry: AuditEntry): Promise<void>;
  recentAudit(limit: number): Promise<AuditEntry[]>;
  close(): Promise<void>;
}

export type { GroupKind };
