import { randomBytes } from 'node:crypto';
import { DAY, HOUR, MINUTE, type Clock } from '@volact/core';
import type { OutboxEvent } from './events.js';
import { signWebhook } from './signature.js';
import { postWebhook } from './targets.js';
import type { AttemptResult, ClaimedDelivery, WebhookStore } from './store.js';

const SECOND = 1000;

/**
 * The webhook dispatcher of one node (docs/portal.md "Webhooks"): fans new events out to
 * their endpoints, then sends what is due, each delivery under a lease so that several nodes
 * never send one delivery at once and a crashed node's deliveries are taken over when its
 * lease runs out. At least once: a receiver deduplicates by the event id.
 */

/** Waits after the 1st, 2nd, … failed attempt; every later one waits the last. */
export const RETRY_BACKOFF_MS = [10 * SECOND, MINUTE, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 6 * HOUR] as const;
/** A delivery not answered with a 2xx within this long of its creation is given up (failed). */
export const DELIVERY_GIVE_UP_MS = 3 * DAY;
export const DELIVERY_TIMEOUT_MS = 10 * SECOND;

/** When to try again after `attempts` failed attempts (null: give up, the delivery failed). */
export function nextAttemptAfter(attempts: number, createdAt: number, now: number): number | null {
  const wait = RETRY_BACKOFF_MS[Math.min(attempts, RETRY_BACKOFF_MS.length) - 1] ?? RETRY_BACKOFF_MS[0];
  const next = now + wait;
  return next > createdAt + DELIVERY_GIVE_UP_MS ? null : next;
}

export const newDeliveryId = (): string => `whd_${randomBytes(12).toString('hex')}`;

/** The JSON a receiver gets (the bytes signed). */
export function eventBody(e: OutboxEvent): string {
  return JSON.stringify({
    id: e.id,
    type: e.type,
    occurredAt: new Date(e.occurredAt).toISOString(),
    orgId: e.orgId,
    keyId: e.keyId,
    data: e.data,
  });
}

export interface DispatcherOptions {
  readonly store: WebhookStore;
  readonly clock: Clock;
  /** The endpoint's signing secret from its sealed form (null: sealed under another secret). */
  readonly unseal: (sealed: string) => string | null;
  /** Between two passes of the loop (default 1 s). */
  readonly intervalMs?: number;
  /** A claimed delivery is this node's for this long (default 60 s; longer than the send timeout). */
  readonly leaseMs?: number;
  readonly timeoutMs?: number;
  /** Deliveries sent at once by one pass (default 16). */
  readonly batch?: number;
  /** Organisations' endpoints may be private addresses too (see targets.ts; tests, a private-network authority). */
  readonly privateTargets?: boolean;
}

export interface DispatchResult {
  fannedOut: number;
  attempted: number;
  delivered: number;
}

export class WebhookDispatcher {
  readonly #o: DispatcherOptions;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #pass: Promise<unknown> | undefined;

  constructor(options: DispatcherOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#pass?.catch(() => undefined);
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    this.#timer = setTimeout(() => {
      // A pass that fails (database away) is tried again at the next tick; nothing is lost.
      const pass = this.dispatchOnce().catch(() => undefined);
      this.#pass = pass;
      void pass.then(() => this.#schedule(this.#o.intervalMs ?? 1000));
    }, ms);
    this.#timer.unref?.();
  }

  /** One pass: fan out every new event, then send every due delivery (in rounds of `batch`). */
  async dispatchOnce(): Promise<DispatchResult> {
    const result: DispatchResult = { fannedOut: 0, attempted: 0, delivered: 0 };
    for (let round = 0; round < 100; round++) {
      const n = await this.#o.store.fanOut(this.#o.clock.now(), 200, newDeliveryId);
      result.fannedOut += n;
      if (n < 200) break;
    }
    const batch = this.#o.batch ?? 16;
    for (let round = 0; round < 50; round++) {
      const now = this.#o.clock.now();
      const lease = now + (this.#o.leaseMs ?? 60 * SECOND);
      const claimed = await this.#o.store.claimDue(now, lease, batch);
      const outcomes = await Promise.all(claimed.map((d) => this.#send(d, lease)));
      result.attempted += claimed.length;
      result.delivered += outcomes.filter(Boolean).length;
      if (claimed.length < batch) break;
    }
    return result;
  }

  /** Sends one delivery and records the result under its lease; true when delivered. */
  async #send(d: ClaimedDelivery, lease: number): Promise<boolean> {
    const finish = (r: AttemptResult) => this.#o.store.finishAttempt(d.id, lease, r);
    if (d.endpointDisabled) {
      await finish({
        state: 'failed',
        nextAttemptAt: null,
        lastStatus: null,
        lastError: 'endpoint removed',
        deliveredAt: null,
      });
      return false;
    }
    const secret = this.#o.unseal(d.secretSealed);
    if (secret === null) {
      await finish({
        state: 'failed',
        nextAttemptAt: null,
        lastStatus: null,
        lastError:
          "the endpoint's secret was sealed under another authority secret: remove the endpoint and add it again",
        deliveredAt: null,
      });
      return false;
    }
    const body = eventBody(d.event);
    let status: number | null = null;
    let error: string | null = null;
    try {
      status = await postWebhook(
        d.url,
        {
          'Content-Type': 'application/json',
          'User-Agent': 'volact-webhooks/1',
          'Volact-Event-Id': d.event.id,
          'Volact-Event-Type': d.event.type,
          'Volact-Signature': signWebhook(secret, body, this.#o.clock.now()),
        },
        body,
        {
          timeoutMs: this.#o.timeoutMs ?? DELIVERY_TIMEOUT_MS,
          publicOnly: d.endpointOrgId !== null && this.#o.privateTargets !== true,
        },
      );
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      error = (
        e.code === 'WEBHOOK_TARGET_NOT_PUBLIC' ? `${e.code}: ${e.message}` : (e.code ?? e.message ?? String(err))
      ).slice(0, 200);
    }
    const now = this.#o.clock.now();
    if (error === null) {
      await finish({ state: 'delivered', nextAttemptAt: null, lastStatus: status, lastError: null, deliveredAt: now });
      return true;
    }
    const next = nextAttemptAfter(d.attempts, d.createdAt, now);
    await finish({
      state: next === null ? 'failed' : 'pending',
      nextAttemptAt: next,
      lastStatus: status,
      lastError: error,
      deliveredAt: null,
    });
    return false;
  }
}
