import { randomBytes } from 'node:crypto';
import type { Clock } from '@volact/core';
import type { MachineResult, Progress } from '../results.js';
import { WebError, errorAnswer } from './errors.js';

import type { Job as JobAnswer, JobOperation, JobSummary } from './contract.js';

export { JOB_OPERATIONS, type JobOperation, type JobSummary } from './contract.js';

/** Jobs kept in memory (finished ones beyond this are forgotten, oldest first). */
const KEPT_JOBS = 50;

/**
 * A bulk operation run by the server for the web UI; its progress is read by polling. As the
 * API shows it (contract.ts), its progress fields updated in place as results come in.
 */
export type Job = JobAnswer;

export interface JobSpec {
  readonly operation: JobOperation;
  readonly user: string;
  readonly detail: string | null;
  /** The number of machines (known before the first result). */
  readonly total: number;
  readonly run: (onProgress: Progress) => Promise<MachineResult[]>;
}

/**
 * Runs the web UI's bulk operations in the server process, ONE at a time per console: a second
 * start while one runs is refused with JOB_RUNNING (409) rather than queued, so what the IT pro
 * clicked is what runs, and two operations never race on the same machines.
 */
export class JobRunner {
  readonly #jobs = new Map<string, Job>();
  readonly #clock: Clock;
  readonly #log: (line: string) => void;
  #running: { job: Job; promise: Promise<void> } | null = null;

  constructor(clock: Clock, log: (line: string) => void) {
    this.#clock = clock;
    this.#log = log;
  }

  start(spec: JobSpec): Job {
    if (this.#running) {
      const { job } = this.#running;
      throw new WebError(
        'JOB_RUNNING',
        `job ${job.id} (${job.operation}, ${job.done} of ${job.total} done) is running: wait for it to finish`,
      );
    }
    const job: Job = {
      id: randomBytes(8).toString('hex'),
      operation: spec.operation,
      user: spec.user,
      detail: spec.detail,
      startedAt: new Date(this.#clock.now()).toISOString(),
      finishedAt: null,
      total: spec.total,
      done: 0,
      finished: false,
      state: 'running',
      outcome: null,
      proxyFileId: null,
      results: [],
      resultsTotal: 0,
      offset: 0,
    };
    this.#jobs.set(job.id, job);
    this.#forgetOld();
    this.#log(`job ${job.id} ${job.operation} started by ${job.user}: ${job.total} machines`);
    const onProgress: Progress = (result, done, total) => {
      job.results.push(result);
      job.done = done;
      job.total = total;
    };
    const promise = (async () => {
      try {
        // A tick first: the 202 goes out before the first machine is called.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const results = await spec.run(onProgress);
        job.results = results;
        job.done = results.length;
        job.total = results.length;
      } catch (err) {
        job.error = errorAnswer(err).body.error;
      } finally {
        job.finished = true;
        job.finishedAt = new Date(this.#clock.now()).toISOString();
        this.#running = null;
        const failed = job.results.filter((r) => !r.ok).length;
        this.#log(
          `job ${job.id} ${job.operation} finished: ${job.results.length - failed} ok, ${failed} failed${job.error ? `; ${job.error.code}` : ''}`,
        );
      }
    })();
    this.#running = { job, promise };
    return job;
  }

  get(id: string): Job {
    const job = this.#jobs.get(id);
    if (!job)
      throw new WebError(
        'JOB_NOT_FOUND',
        `no job "${id.slice(0, 40)}" (jobs are kept in memory, the last ${KEPT_JOBS})`,
      );
    return job;
  }

  /** Newest first, without the per-machine results. */
  list(): JobSummary[] {
    return [...this.#jobs.values()].reverse().map((job) => summary(job));
  }

  /** Resolves when no job runs (the server waits for it before closing). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running.promise;
  }

  #forgetOld(): void {
    for (const [id, job] of this.#jobs) {
      if (this.#jobs.size <= KEPT_JOBS) break;
      if (job.finished) this.#jobs.delete(id);
    }
  }
}

export function summary(job: Job): JobSummary {
  const { results, ...rest } = job;
  const ok = results.filter((r) => r.ok).length;
  return { ...rest, ok, failed: results.length - ok };
}
