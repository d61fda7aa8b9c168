import type { Logger } from 'pino';
import {
  HostErrorCode,
  KMS_DEFAULTS,
  MINUTE,
  bytesToGuid,
  decodeActivationRequest,
  encodeErrorResponse,
  encodeResponseBody,
  guidToBytes,
  licenceStateFromCode,
  CoreError,
  type Clock,
  type HostCertificate,
  isSupportedProtocolVersion,
} from '@volact/core';
import { ClientIdWindow, nowWindowSeconds, toWindowSeconds } from './client-id-window.js';
import { emptyStatistics, type HostStatistics, type WindowStore } from './window-store.js';
import type { HostGroup } from './host-state.js';
import { NewClientIdLimiter } from './new-client-id-limit.js';

export interface KmsPolicy {
  /** How long a client ID counts after its last request (reference default: 30 days). */
  readonly clientIdWindow: number;
  /** Live client IDs kept per group; beyond it the oldest make room (bounds memory). */
  readonly maxClientIdsPerGroup: number;
  /** Retry interval the host tells unactivated clients (reference default: 2 hours). */
  readonly activationInterval: number;
  /** Renewal interval the host tells activated clients (reference default: 7 days). */
  readonly renewalInterval: number;
  /**
   * Client IDs new to a group's window that one source may add per minute (0 or absent: no
   * limit). Renewals of IDs in the window are never limited. See NewClientIdLimiter.
   */
  readonly newClientIdsPerMinute?: number;
}

export const defaultKmsPolicy: KmsPolicy = {
  clientIdWindow: KMS_DEFAULTS.clientIdWindow,
  maxClientIdsPerGroup: 2_000_000,
  activationInterval: KMS_DEFAULTS.activationInterval,
  renewalInterval: KMS_DEFAULTS.renewalInterval,
};

export type Decision =
  { readonly kind: 'counted'; readonly body: Buffer } | { readonly kind: 'refused'; readonly payload: Buffer };

interface ServedGroup {
  readonly id: string;
  readonly name: string;
  readonly threshold: number;
  readonly number: number;
  readonly window: ClientIdWindow;
  /**
   * Changes not yet on disk: client ID (latin1) → latest expiry. A client asking again
   * replaces its entry, so the backlog never exceeds the live IDs, even while the disk fails.
   */
  readonly unsaved: Map<string, number>;
}

export interface GroupCount {
  readonly id: string;
  readonly name: string;
  readonly count: number;
  readonly threshold: number;
}

/**
 * The licensing policy of a KMS host, apart from any transport: decodes a request, runs the
 * ordered checks, records the client ID and builds the response body (signed by the caller).
 */
export class KmsService {
  readonly #groups = new Map<string, ServedGroup>(); // key: group id bytes as latin1
  readonly #clock: Clock;
  readonly #store: WindowStore;
  #certificate: HostCertificate;
  readonly #policy: KmsPolicy;
  readonly #log: Logger | undefined;
  readonly #newIds: NewClientIdLimiter | undefined;
  readonly stats: HostStatistics;

  constructor(options: {
    clock: Clock;
    store: WindowStore;
    certificate: HostCertificate;
    groups: readonly HostGroup[];
    policy: KmsPolicy;
    logger?: Logger;
  }) {
    this.#clock = options.clock;
    this.#store = options.store;
    this.#certificate = options.certificate;
    this.#policy = options.policy;
    this.#log = options.logger;
    const perMinute = options.policy.newClientIdsPerMinute ?? 0;
    this.#newIds = perMinute > 0 ? new NewClientIdLimiter(perMinute) : undefined;
    this.stats = options.store.loadStatistics();
    const nowSeconds = nowWindowSeconds(this.#clock.now());
    for (const g of options.groups) {
      if (!options.certificate.groupIds.includes(g.id)) continue;
      const window = new ClientIdWindow(options.policy.clientIdWindow, options.policy.maxClientIdsPerGroup);
      // Entries saved under a longer window are cut to this one (min keeps the expiry order).
      const latestExpiry = toWindowSeconds(this.#clock.now() + options.policy.clientIdWindow);
      for (const e of options.store.liveEntries(g.id, nowSeconds))
        window.restore(e.clientId, Math.min(e.expiresSeconds, latestExpiry));
      this.#groups.set(guidToBytes(g.id).toString('latin1'), {
        id: g.id,
        name: g.name,
        threshold: g.threshold,
        number: options.store.groupNumber(g.id),
        window,
        unsaved: new Map(),
      });
    }
  }

  get certificate(): HostCertificate {
    return this.#certificate;
  }

  /** Swaps in a renewed certificate; it must certify the same key for the same groups. */
  renewCertificate(next: HostCertificate): void {
    const same = (a: readonly string[], b: readonly string[]) =>
      new Set(a).size === new Set(b).size && a.every((g) => b.includes(g)) && b.every((g) => a.includes(g));
    if (
      !next.hostPublicKey.equals(this.#certificate.hostPublicKey) ||
      !same(next.groupIds, this.#certificate.groupIds)
    ) {
      throw new Error('a renewed certificate must certify the same host key for the same groups; restart the host');
    }
    this.#certificate = next;
  }

  /**
   * Decides one request. `source` (the peer's address key, see sourceKey) is what the
   * new-client-ID limit counts under; without it nothing is limited.
   */
  handle(payload: Buffer, source?: string): Decision {
    const now = this.#clock.now();
    this.stats.totalRequests++;
    let request;
    try {
      request = decodeActivationRequest(payload);
    } catch (err) {
      const detail = err instanceof CoreError ? err.message : 'unreadable request';
      const code =
        payload[0] !== undefined && !isSupportedProtocolVersion(payload[0])
          ? HostErrorCode.UNSUPPORTED_VERSION
          : HostErrorCode.MALFORMED_REQUEST;
      return this.#refuse(code, undefined, detail, 'MALFORMED_REQUEST');
    }
    // Ordered checks: the first that fails decides.
    if (now >= this.#certificate.expiresAt) {
      return this.#refuse(
        HostErrorCode.CERTIFICATE_EXPIRED,
        request.nonce,
        'host certificate expired; the host must re-activate',
        'CERTIFICATE_EXPIRED',
      );
    }
    const group = this.#groups.get(request.groupId.toString('latin1'));
    if (!group) {
      return this.#refuse(
        HostErrorCode.GROUP_NOT_SERVED,
        request.nonce,
        `this host does not serve group ${bytesToGuid(request.groupId)}`,
        'GROUP_NOT_SERVED',
      );
    }
    if (
      this.#newIds !== undefined &&
      source !== undefined &&
      !group.window.has(request.clientId, now) &&
      !this.#newIds.take(source, now)
    ) {
      return this.#refuse(
        HostErrorCode.TOO_MANY_NEW_CLIENT_IDS,
        request.nonce,
        `more than ${this.#newIds.perMinute} new client IDs a minute from ${source}; not counted, retry later (clients already counted renew as usual)`,
        'TOO_MANY_NEW_CLIENT_IDS',
      );
    }
    const count = group.window.record(request.clientId, now);
    group.unsaved.set(request.clientId.toString('latin1'), toWindowSeconds(now + this.#policy.clientIdWindow));
    this.stats.byLicenceState[request.licenceState] = (this.stats.byLicenceState[request.licenceState] ?? 0) + 1;
    const body = encodeResponseBody(
      {
        groupId: request.groupId,
        clientId: request.clientId,
        nonce: request.nonce,
        hostTime: now,
        count,
        activationIntervalMin: Math.round(this.#policy.activationInterval / MINUTE),
        renewalIntervalMin: Math.round(this.#policy.renewalInterval / MINUTE),
      },
      request.version,
    ); // answered in the request's version: a version-1 client gets version 1
    this.#log?.info(
      {
        decision: 'COUNTED',
        group: group.name,
        count,
        threshold: group.threshold,
        clientState: licenceStateFromCode(request.licenceState),
        client: request.clientId.toString('hex', 0, 4),
      },
      'request',
    );
    return { kind: 'counted', body };
  }

  #refuse(code: number, nonce: Buffer | undefined, message: string, decision: string): Decision {
    this.stats.failedRequests++;
    this.#log?.info({ decision, detail: message }, 'request');
    return { kind: 'refused', payload: encodeErrorResponse(code, nonce, message) };
  }

  /** Counts per served group, at the clock's time. */
  counts(): GroupCount[] {
    const now = this.#clock.now();
    return [...this.#groups.values()].map((g) => ({
      id: g.id,
      name: g.name,
      count: g.window.count(now),
      threshold: g.threshold,
    }));
  }

  /** Client IDs answered but not yet written to the store (the backlog a crash would lose). */
  get unsavedCount(): number {
    let n = 0;
    for (const group of this.#groups.values()) n += group.unsaved.size;
    return n;
  }

  /**
   * Writes up to `maxRows` of what changed since the last flush, in one transaction, and
   * returns how many changes are left. On failure the changes stay queued for the next flush.
   */
  flush(maxRows = Number.POSITIVE_INFINITY): number {
    const batch: [number, string, number][] = [];
    const taken: [ServedGroup, string, number][] = [];
    for (const group of this.#groups.values()) {
      for (const [clientId, expires] of group.unsaved) {
        if (batch.length >= maxRows) break;
        batch.push([group.number, clientId, expires]);
        taken.push([group, clientId, expires]);
        group.unsaved.delete(clientId);
      }
    }
    try {
      this.#store.flush(batch, this.stats, nowWindowSeconds(this.#clock.now()));
    } catch (err) {
      // Back in the queue, unless the client asked again meanwhile (its newer entry wins).
      for (const [group, clientId, expires] of taken)
        if (!group.unsaved.has(clientId)) group.unsaved.set(clientId, expires);
      throw err;
    }
    let left = 0;
    for (const group of this.#groups.values()) left += group.unsaved.size;
    return left;
  }
}

export { emptyStatistics };
