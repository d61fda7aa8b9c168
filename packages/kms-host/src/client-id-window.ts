/**
 * The client-ID window of one product group: the distinct client machine IDs seen in the last
 * `windowMs` (30 days by default). The reference: "Every activation request will stay 30 days
 * in the table. When one client refreshes its activation, [its entry is renewed] (30 days
 * life). If one KMS client does not refresh its activation within 30 days, the CMID will still
 * be removed and activation count will reduce 1."
 *
 * Entries live in a Map in insertion order; a refresh deletes and re-inserts, so with a
 * monotonic clock the Map is ordered by expiry and expired entries are always at its front:
 * sweeping costs O(expired), counting O(1). If the host's clock steps back by D, entries
 * recorded after the step sit behind later-expiring ones and may count up to D too long;
 * the count is never too low. Expiries are kept in whole seconds past EPOCH so
 * they stay small integers (no heap number per entry): 1 M entries fit in well under 100 MB.
 */
const EPOCH_MS = Date.UTC(2020, 0, 1);

/** An expiry in whole seconds, rounded up: an entry lives at least the full window. */
export const toWindowSeconds = (ms: number): number => Math.ceil((ms - EPOCH_MS) / 1000);
/**
 * The current time in whole seconds, rounded down: an entry expiring at second s counts until
 * the clock reaches s (rounding up here would drop entries up to a second early).
 */
export const nowWindowSeconds = (ms: number): number => Math.floor((ms - EPOCH_MS) / 1000);
export const fromWindowSeconds = (s: number): number => EPOCH_MS + s * 1000;

export class ClientIdWindow {
  readonly #entries = new Map<string, number>();
  #earliest = Number.POSITIVE_INFINITY;

  /** Entries dropped because the window was full (oldest first). */
  evictions = 0;

  /**
   * `maxEntries` bounds memory: the GVLK and group id are public, so anyone on the network can
   * send made-up client IDs. When full, the entry closest to expiry makes room.
   */
  constructor(
    readonly windowMs: number,
    readonly maxEntries = Number.POSITIVE_INFINITY,
  ) {}

  /** Records a request from `clientId` (16 bytes as a latin1 string); returns the count after it. */
  record(clientId: string, nowMs: number): number {
    const now = nowWindowSeconds(nowMs);
    if (now >= this.#earliest) this.#sweep(now);
    const expires = toWindowSeconds(nowMs + this.windowMs);
    this.#entries.delete(clientId);
    this.#entries.set(clientId, expires);
    if (this.#entries.size === 1 || expires < this.#earliest) this.#earliest = expires;
    if (this.#entries.size > this.maxEntries) this.#evictOldest();
    return this.#entries.size;
  }

  /** Restores an entry from storage, keeping the Map ordered by expiry (load in that order). */
  restore(clientId: string, expiresSeconds: number): void {
    this.#entries.delete(clientId);
    this.#entries.set(clientId, expiresSeconds);
    if (expiresSeconds < this.#earliest) this.#earliest = expiresSeconds;
    if (this.#entries.size > this.maxEntries) this.#evictOldest();
  }

  count(nowMs: number): number {
    const now = nowWindowSeconds(nowMs);
    if (now >= this.#earliest) this.#sweep(now);
    return this.#entries.size;
  }

  expiryOf(clientId: string): number | undefined {
    const s = this.#entries.get(clientId);
    return s === undefined ? undefined : fromWindowSeconds(s);
  }

  #evictOldest(): void {
    const oldest = this.#entries.keys().next();
    if (oldest.done) return;
    this.#entries.delete(oldest.value);
    this.evictions++;
    this.#earliest = this.#entries.values().next().value ?? Number.POSITIVE_INFINITY;
  }

  #sweep(now: number): void {
    this.#earliest = Number.POSITIVE_INFINITY;
    for (const [id, expires] of this.#entries) {
      if (expires > now) {
        this.#earliest = expires;
        return;
      }
      this.#entries.delete(id);
    }
  }
}
