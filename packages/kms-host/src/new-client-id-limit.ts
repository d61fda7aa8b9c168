import { MINUTE } from '@volact/core';

/** Allowance in 1/MINUTE client IDs, so the refill is exact integer arithmetic. */
interface Bucket {
  units: number;
  at: number;
}

/**
 * At most `perMinute` client IDs new to a group's window per source and minute (a token bucket:
 * up to `perMinute` at once, then refilled at `perMinute` a minute). The group id and GVLK are
 * public, so without it one peer could add thousands of made-up client IDs a second and push
 * a count over its threshold. Renewals of IDs already in the window never take a token.
 */
export class NewClientIdLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #full: number;
  #lastPrune = Number.NEGATIVE_INFINITY;

  constructor(readonly perMinute: number) {
    if (!Number.isInteger(perMinute) || perMinute < 1 || perMinute > 1_000_000) {
      throw new RangeError(`a new-client-ID limit is 1 to 1000000 a minute, got ${perMinute}`);
    }
    this.#full = perMinute * MINUTE;
  }

  /** Takes one new client ID for `source` at `nowMs`; false when its allowance is spent. */
  take(source: string, nowMs: number): boolean {
    let b = this.#buckets.get(source);
    if (b === undefined) {
      if (nowMs - this.#lastPrune >= MINUTE) this.#prune(nowMs);
      b = { units: this.#full, at: nowMs };
      this.#buckets.set(source, b);
    } else if (nowMs > b.at) {
      b.units = Math.min(this.#full, b.units + Math.floor(nowMs - b.at) * this.perMinute);
      b.at = nowMs;
    }
    if (b.units < MINUTE) return false;
    b.units -= MINUTE;
    return true;
  }

  /** Sources tracked (those that sent a new client ID within about the last minute). */
  get sources(): number {
    return this.#buckets.size;
  }

  /** Drops the buckets that are full again: memory follows the sources active in the last minute. */
  #prune(nowMs: number): void {
    this.#lastPrune = nowMs;
    for (const [source, b] of this.#buckets) if (nowMs - b.at >= MINUTE) this.#buckets.delete(source);
  }
}
