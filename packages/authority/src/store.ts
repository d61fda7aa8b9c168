import type { GroupKind, KeyType, ProductGroup } from '@volact/core';
import type { KeyRingStore } from './key-ring-store.js';
import type { RevocationStore } from './revocation-store.js';
import type { AccessStore } from './access/access-store.js';
import type { RaiseRequestStore } from './raise-requests/store.js';
import type { OrganisationStore } from './organisations/store.js';
import { REFUSED_EVENT_INTERVAL_MS, outboxEvent, usageThresholdsCrossed, type OutboxEvent } from './webhooks/events.js';
import type { WebhookStore } from './webhooks/store.js';

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
  /** The organisation that owns the key (DEFAULT_ORG_ID when not given). */
  readonly orgId?: string;
  readonly note?: string | null;
  /** The key's text sealed with the authority's secret, so an org-admin can reveal it; null for older keys. */
  readonly keySealed?: string | null;
}

export interface InstallationRequest {
  readonly keyId: string;
  /** For the audit row: the key's last five characters. */
  readonly keyLast5: string;
  /** Identifies the installation under its key: the IID's hardware reference (hex). */
  readonly hardwareRef: string;
  readonly installationId: string;
  readonly channel: 'online' | 'phone';
  readonly at: number;
  /** The code a refusal at the limit is audited with (default MAK_LIMIT_REACHED; a retail key's limit is 1). */
  readonly limitCode?: 'MAK_LIMIT_REACHED' | 'RETAIL_ALREADY_ACTIVATED';
  /** The key's organisation, for the audit row (known from the cached key record: no extra query). */
  readonly orgId?: string;
}

export interface InstallationRecord {
  readonly hardwareRef: string;
  readonly installationId: string;
  readonly channel: string;
  readonly activationCount: number;
  readonly firstActivatedAt: number;
  readonly lastActivatedAt: number;
}

/** new: uses one activation; existing: the same installation again, free; limit, revoked: refused. */
export interface InstallationOutcome {
  readonly outcome: 'new' | 'existing' | 'limit' | 'revoked';
  readonly used: number;
  readonly limit: number;
}

const AUDIT_RESULT: Record<InstallationOutcome['outcome'], string> = {
  new: 'OK',
  existing: 'OK',
  limit: 'MAK_LIMIT_REACHED',
  revoked: 'KEY_REVOKED',
};

/** The audit row of an installation decision (both engines write it inside the decision's transaction). */
export function installationAuditRow(r: InstallationRequest, o: InstallationOutcome): AuditEntry {
  const what = { new: 'new', existing: 'again, free', limit: 'refused', revoked: 'refused (revoked)' }[o.outcome];
  return {
    at: r.at,
    action: `installation.activate.${r.channel}`,
    result: o.outcome === 'limit' && r.limitCode !== undefined ? r.limitCode : AUDIT_RESULT[o.outcome],
    keyLast5: r.keyLast5,
    detail: `installation ${r.hardwareRef}: ${what}, ${o.used} of ${o.limit} used`,
    keyId: r.keyId,
    orgId: r.orgId ?? null,
  };
}

export interface KeyCounter {
  readonly limit: number;
  readonly used: number;
  readonly revoked: boolean;
  /** The key's organisation (webhook events), read with its row lock. */
  readonly orgId?: string | null;
  /** When the key's last `activation.refused` event was raised (at most one per REFUSED_EVENT_INTERVAL_MS). */
  readonly refusedEventAt?: number | null;
}

/** What a batch decided, for an engine to write: rows to insert, repeats to count, new counts. */
export interface InstallationBatchDecision {
  readonly outcomes: InstallationOutcome[];
  readonly admitted: InstallationRequest[];
  /** Per installation seen again: how many times, and the latest time. */
  readonly repeats: { keyId: string; hardwareRef: string; times: number; at: number }[];
  readonly usedByKey: Map<string, number>;
  readonly audit: AuditEntry[];
  /** Webhook events (`key.usage` per threshold crossed, `activation.refused` rate-limited), written with the decision. */
  readonly events: OutboxEvent[];
  /** Keys whose `activation.refused` event this batch raised: product_keys.refused_event_at := the time. */
  readonly refusedEventAt: Map<string, number>;
}

export const installationKey = (keyId: string, hardwareRef: string) => `${keyId}\0${hardwareRef}`;

/**
 * Decides a batch in request order, from each key's counter (read under its row lock) and the
 * installations already recorded: the same installation again is free, a new one takes one
 * of the remaining activations. Both engines call this, so they decide alike.
 */
export function decideInstallations(
  requests: readonly InstallationRequest[],
  counters: ReadonlyMap<string, KeyCounter>,
  recorded: ReadonlySet<string>,
): InstallationBatchDecision {
  const seen = new Set(recorded);
  const used = new Map<string, number>();
  const admitted: InstallationRequest[] = [];
  const repeats = new Map<string, { keyId: string; hardwareRef: string; times: number; at: number }>();
  const outcomes = requests.map((r): InstallationOutcome => {
    const counter = counters.get(r.keyId);
    if (!counter) return { outcome: 'revoked', used: 0, limit: 0 };
    const n = used.get(r.keyId) ?? counter.used;
    if (counter.revoked) return { outcome: 'revoked', used: n, limit: counter.limit };
    const id = installationKey(r.keyId, r.hardwareRef);
    if (seen.has(id)) {
      const repeat = repeats.get(id) ?? { keyId: r.keyId, hardwareRef: r.hardwareRef, times: 0, at: r.at };
      repeats.set(id, { ...repeat, times: repeat.times + 1, at: Math.max(repeat.at, r.at) });
      return { outcome: 'existing', used: n, limit: counter.limit };
    }
    if (n >= counter.limit) return { outcome: 'limit', used: n, limit: counter.limit };
    seen.add(id);
    admitted.push(r);
    used.set(r.keyId, n + 1);
    return { outcome: 'new', used: n + 1, limit: counter.limit };
  });
  const { events, refusedEventAt } = installationEvents(requests, outcomes, counters);
  return {
    outcomes,
    admitted,
    repeats: [...repeats.values()],
    usedByKey: used,
    audit: requests.map((r, i) => installationAuditRow(r, outcomes[i] as InstallationOutcome)),
    events,
    refusedEventAt,
  };
}

/**
 * The webhook events of a batch's outcomes: `key.usage` once per threshold (80, 90, 100 %)
 * a key's count crosses, `used` being the count at which it was crossed; `activation.refused`
 * for a refusal (limit reached, revoked) unless the key raised one less than an hour before.
 */
function installationEvents(
  requests: readonly InstallationRequest[],
  outcomes: readonly InstallationOutcome[],
  counters: ReadonlyMap<string, KeyCounter>,
): { events: OutboxEvent[]; refusedEventAt: Map<string, number> } {
  const events: OutboxEvent[] = [];
  const refusedEventAt = new Map<string, number>();
  const before = new Map<string, number>();
  requests.forEach((r, i) => {
    const o = outcomes[i] as InstallationOutcome;
    const counter = counters.get(r.keyId);
    if (!counter) return;
    const scope = { orgId: counter.orgId ?? null, keyId: r.keyId };
    const keyLast5 = r.keyLast5.slice(-5); // the audit row's `…ABCDE`, without the ellipsis
    if (o.outcome === 'new') {
      const was = before.get(r.keyId) ?? counter.used;
      before.set(r.keyId, o.used);
      for (const threshold of usageThresholdsCrossed(was, o.used, o.limit)) {
        const used = Math.ceil((threshold * o.limit) / 100);
        events.push(outboxEvent('key.usage', r.at, scope, { threshold, used, limit: o.limit, keyLast5 }));
      }
    } else if (o.outcome === 'limit' || o.outcome === 'revoked') {
      const last = refusedEventAt.get(r.keyId) ?? counter.refusedEventAt ?? null;
      if (last !== null && r.at - last < REFUSED_EVENT_INTERVAL_MS) return;
      refusedEventAt.set(r.keyId, r.at);
      const code = o.outcome === 'revoked' ? 'KEY_REVOKED' : (r.limitCode ?? 'MAK_LIMIT_REACHED');
      events.push(outboxEvent('activation.refused', r.at, scope, { code, keyLast5, used: o.used, limit: o.limit }));
    }
  });
  return { events, refusedEventAt };
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
  /** The organisation and key the row is about, when known. */
  readonly orgId?: string | null | undefined;
  readonly keyId?: string | null | undefined;
  /** Who did it: the principal's name (`cli`, a user's email, `token:…`, `admin-token`). */
  readonly actor?: string | null | undefined;
}

/** What the activation decision reads and writes inside one serialised transaction. */
export interface HostActivationTx {
  findHost(keyId: string, hardwareId: string): Promise<HostActivationRecord | undefined>;
  countHosts(keyId: string): Promise<number>;
  saveHost(record: HostActivationRecord): Promise<void>;
  /** The decision's audit row, committed (or not) with it. */
  audit(entry: AuditEntry): Promise<void>;
  /** The key's organisation and its last `activation.refused` event's time, as read under its row lock. */
  keyState(): Promise<{ orgId: string | null; refusedEventAt: number | null }>;
  /**
   * Webhook events, committed (or not) with the decision; `refusedEventAt`: the key raised an
   * `activation.refused` now (product_keys.refused_event_at).
   */
  emit(events: readonly OutboxEvent[], refusedEventAt?: number): Promise<void>;
}

/**
 * The authority's store. SQLite is the embedded engine; the interface is what a second engine
 * (PostgreSQL, many nodes) implements with the same semantics: `withHostActivation` runs its
 * callback under a lock that makes the host count exact.
 */
export interface AuthorityStore {
  /** The key ring's roots and online keys (key-ring-store.ts), in the same database. */
  readonly keyRing: KeyRingStore;
  addGroup(group: ProductGroup & { createdAt: number }): Promise<void>;
  findGroup(nameOrId: string): Promise<ProductGroup | undefined>;
  listGroups(): Promise<ProductGroup[]>;
  addKey(record: KeyRecord): Promise<void>;
  findKeyByHash(keyHash: string): Promise<KeyRecord | undefined>;
  findKeyByRef(keyRef: string): Promise<KeyRecord[]>;
  listHosts(keyId: string): Promise<HostActivationRecord[]>;
  listInstallations(keyId: string): Promise<InstallationRecord[]>;
  /**
   * Decides a batch of installation activations (of any keys) in one transaction that holds
   * the row lock of each key involved, taken in key-id order (no deadlock between nodes):
   * see decideInstallations. Nothing is written for a refused one but its audit row; every
   * decision's audit row commits with it. Outcomes are returned after the commit.
   */
  activateInstallations(requests: readonly InstallationRequest[]): Promise<InstallationOutcome[]>;
  /**
   * How many batches of activateInstallations the node may have in the database at once
   * (default 1): an engine with several connections overlaps one batch's commit with the next.
   */
  readonly installationBatchesInFlight?: number;
  /**
   * Sets a key's limit; refused (returns false) below the activations already made. `events`
   * (webhooks outbox) are written in the same transaction, only when the limit was set.
   */
  setLimit(keyId: string, limit: number, events?: readonly OutboxEvent[]): Promise<boolean>;
  /**
   * Marks a key revoked (later activations are refused); keeps its activations. `events` are
   * written in the same transaction, only when the key was not revoked before (returns true then).
   */
  revokeKey(keyId: string, at: number, events?: readonly OutboxEvent[]): Promise<boolean>;
  /** Organisations, key listing, issued artefacts, the audit log's pages (organisations/store.ts). */
  readonly organisations: OrganisationStore;
  /** Runs `work` in one transaction that holds the key's row lock: host counts stay exact. */
  withHostActivation<T>(keyId: string, work: (tx: HostActivationTx) => Promise<T>): Promise<T>;
  /** The revocation list's entries and counter (revocation-store.ts), in the same database. */
  readonly revocations: RevocationStore;
  /** Limit-raise requests (raise-requests/store.ts): a decision locks the request, then the key. */
  readonly raiseRequests: RaiseRequestStore;
  /** Webhook endpoints and deliveries (webhooks/store.ts); events are written by the changes themselves. */
  readonly webhooks: WebhookStore;
  /** Users, sessions, API tokens, failed sign-ins (access/access-store.ts). */
  readonly access: AccessStore;
  audit(entry: AuditEntry): Promise<void>;
  recentAudit(limit: number): Promise<AuditEntry[]>;
  /** Checks the database answers now (health): resolves, or throws STORE_UNAVAILABLE / STORE_DAMAGED. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type { GroupKind };
