import type { AuthorityStore, InstallationOutcome, InstallationRequest } from './store.js';

/** The most installation decisions one transaction takes. */
const MAX_BATCH = 500;

/**
 * Concurrent installation activations share a transaction: requests that arrive while the
 * previous batch is in the database wait for the next one (at most 500 per batch, any keys).
 * One commit and one round of row locks per batch instead of per request; the decision stays
 * exact (the store decides each request in order under its key's row lock).
 */
export class InstallationQueue {
  #waiting: { request: InstallationRequest; settle: (o: InstallationOutcome | Error) => void }[] = [];
  #batchInFlight = false;

  constructor(private readonly store: AuthorityStore) {}

  decide(request: InstallationRequest): Promise<InstallationOutcome> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ request, settle: (o) => (o instanceof Error ? reject(o) : resolve(o)) });
      if (this.#waiting.length === 1 && !this.#batchInFlight) {
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    if (this.#batchInFlight || this.#waiting.length === 0) return;
    const batch = this.#waiting.splice(0, MAX_BATCH);
    this.#batchInFlight = true;
    try {
      const outcomes = await this.store.activateInstallations(batch.map((b) => b.request));
      batch.forEach((b, i) => b.settle(outcomes[i] as InstallationOutcome));
    } catch (err) {
      for (const b of batch) b.settle(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.#batchInFlight = false;
      if (this.#waiting.length > 0) void this.#flush();
    }
  }
}
