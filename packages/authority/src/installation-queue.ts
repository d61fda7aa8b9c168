import type { AuthorityStore, InstallationOutcome, InstallationRequest } from './store.js';

/** The most installation decisions one transaction takes. */
const MAX_BATCH = 500;

/**
 * While a batch is in the database, another starts only with this many requests waiting: a
 * batch costs the database and the node about as much for one request as for a few, so under
 * load small overlapping batches would spend the CPU the requests need.
 */
const MIN_OVERLAPPING_BATCH = 16;

interface Waiting {
  readonly request: InstallationRequest;
  readonly settle: (o: InstallationOutcome | Error) => void;
}

/**
 * Concurrent installation activations share a transaction: requests that arrive together go to
 * the database as one batch (at most 500, any keys). One commit and one round of row locks per
 * batch instead of per request; the decision stays exact (the store decides each request in
 * order under its key's row lock).
 *
 * A store that serves several connections (PostgreSQL: `installationBatchesInFlight`) gets
 * that many batches at once, so that one batch's commit does not hold up the next: a new
 * batch takes only the waiting requests whose keys are in no batch in flight (a key's requests
 * stay in order, and a hot key's requests gather into the next batch instead of queueing on
 * its row lock one small batch after another).
 */
export class InstallationQueue {
  #waiting: Waiting[] = [];
  /** Keys of the batches in the database, with how many of those batches hold each. */
  readonly #busy = new Map<string, number>();
  #inFlight = 0;
  #scheduled = false;
  readonly #parallel: number;

  constructor(private readonly store: AuthorityStore) {
    this.#parallel = Math.max(1, store.installationBatchesInFlight ?? 1);
  }

  decide(request: InstallationRequest): Promise<InstallationOutcome> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ request, settle: (o) => (o instanceof Error ? reject(o) : resolve(o)) });
      this.#schedule();
    });
  }

  /** The next batch goes after the current turn of the event loop: requests made together batch together. */
  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.#parallel || this.#waiting.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#inFlight < this.#parallel && this.#waiting.length > 0) {
      if (this.#inFlight > 0 && this.#waiting.length < MIN_OVERLAPPING_BATCH) return; // the batch in flight flushes again
      const batch = this.#take();
      if (batch.length === 0) return; // every waiting key is in a batch in flight: its end flushes again
      void this.#run(batch);
    }
  }

  /** Up to MAX_BATCH waiting requests, in arrival order, of keys that no batch in flight holds. */
  #take(): Waiting[] {
    if (this.#busy.size === 0 && this.#waiting.length <= MAX_BATCH) {
      const all = this.#waiting;
      this.#waiting = [];
      return all;
    }
    const batch: Waiting[] = [];
    const rest: Waiting[] = [];
    for (const w of this.#waiting) {
      if (batch.length < MAX_BATCH && !this.#busy.has(w.request.keyId)) batch.push(w);
      else rest.push(w);
    }
    // A key cut off by MAX_BATCH keeps its later requests for a later batch, after this one.
    this.#waiting = rest;
    return batch;
  }

  async #run(batch: Waiting[]): Promise<void> {
    const keys = new Set<string>();
    for (const b of batch) keys.add(b.request.keyId);
    for (const k of keys) this.#busy.set(k, (this.#busy.get(k) ?? 0) + 1);
    this.#inFlight++;
    try {
      const outcomes = await this.store.activateInstallations(batch.map((b) => b.request));
      batch.forEach((b, i) => b.settle(outcomes[i] as InstallationOutcome));
    } catch (err) {
      for (const b of batch) b.settle(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.#inFlight--;
      for (const k of keys) {
        const n = (this.#busy.get(k) ?? 1) - 1;
        if (n === 0) this.#busy.delete(k);
        else this.#busy.set(k, n);
      }
      this.#flush();
    }
  }
}
