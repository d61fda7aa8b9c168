import { MINUTE, sha256, type Clock } from '@volact/core';

/**
 * Fixed-window request counting per subject (a source address, a key): at most `perMinute`
 * requests per subject per minute. Keys are counted by a hash, never held in memory as text.
 * Bounded: stale windows are dropped when the table grows.
 */
export class RateLimiter {
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(
    readonly perMinute: number,
    private readonly clock: Clock,
    private readonly maxSubjects = 100_000,
  ) {}

  /** Counts `n` requests (1: one call; a bulk call counts its items); returns the ms to wait when over the limit, or 0. */
  take(subject: string, n = 1): number {
    const now = this.clock.now();
    const start = now - (now % MINUTE);
    const id = sha256(Buffer.from(subject)).toString('base64');
    let w = this.#windows.get(id);
    if (!w || w.start !== start) {
      if (this.#windows.size >= this.maxSubjects) this.#prune(start);
      w = { start, count: 0 };
      this.#windows.set(id, w);
    }
    if (w.count + n > this.perMinute) return start + MINUTE - now; // refused items are not counted
    w.count += n;
    return 0;
  }

  /** The ms to wait before one more request of `subject` would be allowed (0: now); counts nothing. */
  wait(subject: string): number {
    const now = this.clock.now();
    const start = now - (now % MINUTE);
    const w = this.#windows.get(sha256(Buffer.from(subject)).toString('base64'));
    return w && w.start === start && w.count + 1 > this.perMinute ? start + MINUTE - now : 0;
  }

  #prune(currentStart: number): void {
    for (const [id, w] of this.#windows) if (w.start !== currentStart) this.#windows.delete(id);
    // Still full within one minute: forget the oldest subjects rather than grow without bound.
    for (const id of this.#windows.keys()) {
      if (this.#windows.size < this.maxSubjects) break;
      this.#windows.delete(id);
    }
  }
}
