import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { StoredTrust } from '@volact/client';
import type { ProductConfig } from '@volact/core';
import { packJob, verifyJob, type VerifyContext, type VerifyJob, type VerifyOutcome } from './verify-batch.js';

export interface VerifyItem {
  readonly clientId: Buffer;
  readonly nonce: Buffer;
  readonly payload: Buffer;
  readonly now: number;
}

/**
 * The compiled worker next to this module; when the sources run (vitest), the built one in
 * dist/ if the package was built. Without either, verification stays in this thread.
 */
const WORKER_URL = [
  new URL('./verify-worker.js', import.meta.url),
  new URL('../dist/verify-worker.js', import.meta.url),
].find((u) => existsSync(fileURLToPath(u)));

export function workersAvailable(): boolean {
  return WORKER_URL !== undefined;
}

/**
 * What a worker builds its trust store from (a ClientTrust does not cross threads): the product
 * config and the records learned beyond it.
 */
export interface TrustMaterial {
  readonly product: ProductConfig;
  readonly stored: StoredTrust;
}

/**
 * Verifies KMS responses on worker threads, so the Ed25519 checks of 100 000 clients use every
 * core; with no workers it verifies in this thread.
 */
export class VerifyPool {
  readonly #workers: Worker[] = [];
  readonly #waiting = new Map<number, { resolve: (o: VerifyOutcome) => void; reject: (e: Error) => void }>();
  #nextId = 0;

  constructor(
    readonly context: VerifyContext & { trustMaterial: TrustMaterial },
    workers: number,
  ) {
    for (let i = 0; i < (WORKER_URL ? workers : 0); i++) {
      const worker = new Worker(WORKER_URL as URL, {
        workerData: {
          trust: context.trustMaterial,
          groupId: context.groupId,
          maxClockSkew: context.maxClockSkew,
        },
      });
      worker.on('message', (m: { id: number; outcome: VerifyOutcome }) => {
        const waiting = this.#waiting.get(m.id);
        this.#waiting.delete(m.id);
        waiting?.resolve(m.outcome);
      });
      worker.on('error', (err) => {
        for (const w of this.#waiting.values()) w.reject(err);
        this.#waiting.clear();
      });
      this.#workers.push(worker);
    }
  }

  get workers(): number {
    return this.#workers.length;
  }

  async verify(items: readonly VerifyItem[]): Promise<VerifyOutcome> {
    const n = items.length;
    // A handful of items is checked here: a message round trip would cost more.
    if (this.#workers.length === 0 || n < 4) return verifyJob(packJob(items), this.context);
    const parts = this.#workers.length;
    const per = Math.ceil(n / parts);
    const outcomes = await Promise.all(
      this.#workers.map((worker, w) => {
        const job = packJob(items.slice(w * per, Math.min(n, (w + 1) * per)));
        return this.#post(worker, job);
      }),
    );
    const codes = new Int16Array(n);
    const fields = new Float64Array(4 * n);
    outcomes.forEach((o, w) => {
      codes.set(o.codes, w * per);
      fields.set(o.fields, 4 * w * per);
    });
    return { codes, fields };
  }

  #post(worker: Worker, job: VerifyJob): Promise<VerifyOutcome> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.postMessage({ id, job }, [job.blob.buffer, job.offsets.buffer, job.now.buffer] as ArrayBuffer[]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
