import { randomBytes } from 'node:crypto';
import type { Clock } from '@volact/core';
import type { MachineResult, Progress } from '../results.js';
import type { JobEnd, JobRecord, JobResultRecord, StoredJob, WebStateStore } from '../web-state/store.js';
import { WebError, errorAnswer } from './errors.js';

import { MAX_PAGE_SIZE, type Job as JobAnswer, type JobOperation, type JobSummary } from './contract.js';

export { JOB_OPERATIONS, type JobOperation, type JobSummary } from './contract.js';

/** Jobs kept in the database (finished ones beyond this are deleted with their results, oldest first). */
export const KEPT_JOBS = 200;
/** Results are written in batches: at most this long after they came… */
const FLUSH_MS = 200;
/** …or as soon as this many are waiting (a 10 000-machine job writes ~100 batches, not 10 000 rows one by one). */
const FLUSH_RESULTS = 100;
/** params_json is cut beyond this (a job's parameters are a few fields; an uploaded file is not one). */
const MAX_PARAM_TEXT = 2_000;
/** A job's end that could not be stored (the database down) is tried again after this, doubling… */
const END_RETRY_FIRST_MS = 1_000;
/** …up to this, until it is stored (or the process ends: the next start marks the job interrupted). */
const END_RETRY_MAX_MS = 60_000;
/** Parameter names never stored (enrolment tokens, passphrases, LDAP bind passwords). */
const SECRET_PARAM = /token|pass|secret|key(?!Name)|credential/i;

/**
 * A bulk operation run by the server for the web UI; its progress is read by polling. As the
 * API shows it (contract.ts): a page of its results, from `offset`, of `resultsTotal`.
 */
export type Job = JobAnswer;

/** What a job's `run` may answer beyond its results. */
export interface JobRunOutput {
  readonly results: MachineResult[];
  /** One line on the outcome (discover's counts). */
  readonly outcome?: string | null;
  /** collect-iids: the installation-ID file it wrote. */
  readonly proxyFileId?: string | null;
}

export interface JobSpec {
  readonly operation: JobOperation;
  readonly user: string;
  readonly detail: string | null;
  /** The number of machines (known before the first result). */
  readonly total: number;
  /**
   * What the job was asked, kept with it (params_json) for the record. Fields whose name says
   * token, pass(word|phrase), secret or key are dropped, and long texts cut, whatever is passed.
   */
  readonly params?: Readonly<Record<string, unknown>>;
  readonly run: (onProgress: Progress) => Promise<MachineResult[] | JobRunOutput>;
}

/** The parameters as stored: no secret, no long text (see JobSpec.params). */
export function storableParams(params: unknown, depth = 0): unknown {
  if (typeof params === 'string')
    return params.length > MAX_PARAM_TEXT ? `${params.slice(0, 40)}… (${params.length} characters)` : params;
  if (params === null || typeof params !== 'object') return params;
  if (depth > 4) return '…';
  if (Array.isArray(params)) {
    const kept = params.slice(0, 100).map((v) => storableParams(v, depth + 1));
    return params.length > 100 ? [...kept, `… (${params.length} in all)`] : kept;
  }
  return Object.fromEntries(
    Object.entries(params)
      .filter(([k]) => !SECRET_PARAM.test(k))
      .map(([k, v]) => [k, storableParams(v, depth + 1)]),
  );
}

interface Running {
  readonly id: string;
  readonly operation: JobOperation;
  done: number;
  total: number;
  failed: number;
  /** seq of the next result. */
  seq: number;
  pending: JobResultRecord[];
  timer: NodeJS.Timeout | null;
  /** The chain of batch writes (one at a time, in order). */
  writes: Promise<void>;
  promise: Promise<void>;
}

/** A job ended here whose end is not stored yet: answered from memory, stored again with back-off. */
interface UnsavedEnd {
  readonly end: JobEnd;
  readonly failed: number;
  /** The wait before the next attempt. */
  delayMs: number;
}

/** Runs `work` after `ms` without keeping the process alive (tests inject their own). */
export type Schedule = (work: () => void, ms: number) => void;
const unrefTimeout: Schedule = (work, ms) => {
  setTimeout(work, ms).unref();
};

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * Runs the web UI's bulk operations in the server process, ONE at a time per console: a second
 * start while one runs is refused with JOB_RUNNING (409) rather than queued, so what the IT pro
 * clicked is what runs, and two operations never race on the same machines.
 *
 * Jobs live in the console's database (jobs, job_results): a row at start, each result
 * appended as it comes (in batches), the end state when done. A new JobRunner (the server
 * starting) marks every job still `running` — its process died or restarted — `interrupted`,
 * saying how far it got (`console serve` holds the data directory's serve.lock, so no live
 * server's job is among them). An end the database does not take (it is down) is kept here,
 * answered by list() and get() in place of the stored `running`, and stored again with
 * back-off. The last KEPT_JOBS jobs are kept.
 */
export class JobRunner {
  readonly #store: WebStateStore;
  readonly #clock: Clock;
  readonly #log: (line: string) => void;
  readonly #flushMs: number;
  readonly #flushResults: number;
  readonly #keep: number;
  readonly #ready: Promise<number>;
  #running: Running | null = null;
  /** Set between the JOB_RUNNING check and the job's row being written. */
  #starting = false;
  /** Jobs ended here whose end the database did not take yet (by id). */
  readonly #unsaved = new Map<string, UnsavedEnd>();
  readonly #schedule: Schedule;
  readonly #retryFirstMs: number;
  readonly #retryMaxMs: number;

  constructor(
    store: WebStateStore,
    clock: Clock,
    log: (line: string) => void,
    options: {
      flushMs?: number;
      flushResults?: number;
      keep?: number;
      /** Where a failed end's next attempt is scheduled (default: an unref'd setTimeout). */
      schedule?: Schedule;
      retryFirstMs?: number;
      retryMaxMs?: number;
    } = {},
  ) {
    this.#schedule = options.schedule ?? unrefTimeout;
    this.#retryFirstMs = options.retryFirstMs ?? END_RETRY_FIRST_MS;
    this.#retryMaxMs = options.retryMaxMs ?? END_RETRY_MAX_MS;
    this.#store = store;
    this.#clock = clock;
    this.#log = log;
    this.#flushMs = options.flushMs ?? FLUSH_MS;
    this.#flushResults = options.flushResults ?? FLUSH_RESULTS;
    this.#keep = options.keep ?? KEPT_JOBS;
    this.#ready = store.interruptRunningJobs(clock.now()).then((n) => {
      if (n > 0) log(`${n} job(s) left running by a previous server marked interrupted`);
      return n;
    });
    // Seen by ready() and every method; not an unhandled rejection meanwhile.
    this.#ready.catch(() => undefined);
  }

  /** Resolves once jobs left `running` by a previous process are marked interrupted (how many). */
  ready(): Promise<number> {
    return this.#ready;
  }

  /** Writes the job's row and starts it; JOB_RUNNING while another runs here. */
  async start(spec: JobSpec): Promise<Job> {
    await this.#ready;
    if (this.#running || this.#starting) {
      const running = this.#running;
      throw new WebError(
        'JOB_RUNNING',
        running
          ? `job ${running.id} (${running.operation}, ${running.done} of ${running.total} done) is running: wait for it to finish`
          : 'a job is starting: wait for it to finish',
      );
    }
    this.#starting = true;
    const id = randomBytes(8).toString('hex');
    const startedAt = this.#clock.now();
    try {
      await this.#store.insertJob({
        id,
        operation: spec.operation,
        user: spec.user,
        detail: spec.detail,
        startedAt,
        finishedAt: null,
        total: spec.total,
        done: 0,
        failed: 0,
        state: 'running',
        errorCode: null,
        errorMessage: null,
        outcome: null,
        proxyFileId: null,
        paramsJson: spec.params === undefined ? null : JSON.stringify(storableParams(spec.params)),
      });
    } finally {
      this.#starting = false;
    }
    const job: Running = {
      id,
      operation: spec.operation,
      done: 0,
      total: spec.total,
      failed: 0,
      seq: 0,
      pending: [],
      timer: null,
      writes: Promise.resolve(),
      promise: Promise.resolve(),
    };
    this.#log(`job ${id} ${spec.operation} started by ${spec.user}: ${spec.total} machines`);
    const onProgress: Progress = (result, done, total) => {
      job.pending.push({ seq: job.seq++, ok: result.ok, json: JSON.stringify(result) });
      if (!result.ok) job.failed++;
      job.done = done;
      job.total = total;
      if (job.pending.length >= this.#flushResults) void this.#flush(job);
      else if (!job.timer) {
        job.timer = setTimeout(() => void this.#flush(job), this.#flushMs);
        job.timer.unref();
      }
    };
    this.#running = job;
    job.promise = this.#run(job, spec, onProgress);
    return {
      id,
      operation: spec.operation,
      user: spec.user,
      detail: spec.detail,
      startedAt: new Date(startedAt).toISOString(),
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
  }

  async #run(job: Running, spec: JobSpec, onProgress: Progress): Promise<void> {
    let error: { code: string; message: string } | null = null;
    let outcome: string | null = null;
    let proxyFileId: string | null = null;
    try {
      // A tick first: the 202 goes out before the first machine is called.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const answer = await spec.run(onProgress);
      const output: JobRunOutput = Array.isArray(answer) ? { results: answer } : answer;
      outcome = output.outcome ?? null;
      proxyFileId = output.proxyFileId ?? null;
      // Results the operation did not report through onProgress (it reports all, or none).
      for (const result of output.results.slice(job.seq)) onProgress(result, job.seq + 1, output.results.length);
      job.done = job.seq;
      job.total = Math.max(job.seq, output.results.length);
    } catch (err) {
      error = errorAnswer(err).body.error;
    }
    const end: JobEnd = {
      state: error ? 'failed' : 'finished',
      finishedAt: this.#clock.now(),
      total: job.total,
      done: job.done,
      errorCode: error?.code ?? null,
      errorMessage: error?.message ?? null,
      outcome,
      proxyFileId,
    };
    try {
      await this.#flush(job);
      await this.#store.finishJob(job.id, end);
      await this.#store.pruneJobs(this.#keep).catch(() => 0); // pruned again at the next job's end
    } catch (err) {
      // Kept here and stored again with back-off: meanwhile list() and get() answer the end
      // from memory, so the UI does not show (and poll) a job `running` that is over.
      this.#log(
        `job ${job.id}: its end could not be stored (${errorAnswer(err).body.error.message}); trying again in ${this.#retryFirstMs / 1000} s`,
      );
      this.#unsaved.set(job.id, { end, failed: job.failed, delayMs: this.#retryFirstMs });
      this.#schedule(() => void this.#storeEnd(job.id), this.#retryFirstMs);
    } finally {
      this.#running = null;
    }
    this.#log(
      `job ${job.id} ${job.operation} finished: ${job.seq - job.failed} ok, ${job.failed} failed${error ? `; ${error.code}` : ''}`,
    );
  }

  /** One more attempt at storing a job's end kept in memory; the next one scheduled, doubled, when it fails. */
  async #storeEnd(id: string): Promise<void> {
    const unsaved = this.#unsaved.get(id);
    if (!unsaved) return;
    try {
      await this.#store.finishJob(id, unsaved.end);
      this.#unsaved.delete(id);
      this.#log(`job ${id}: its end is stored (${unsaved.end.state})`);
      await this.#store.pruneJobs(this.#keep).catch(() => 0);
    } catch (err) {
      unsaved.delayMs = Math.min(unsaved.delayMs * 2, this.#retryMaxMs);
      this.#log(
        `job ${id}: its end could not be stored (${errorAnswer(err).body.error.message}); trying again in ${unsaved.delayMs / 1000} s`,
      );
      this.#schedule(() => void this.#storeEnd(id), unsaved.delayMs);
    }
  }

  /** The stored job, with its end as this process knows it when the database has not taken it yet. */
  #withEnd<T extends JobRecord>(job: T): T {
    const unsaved = this.#unsaved.get(job.id);
    if (!unsaved || job.state !== 'running') return job;
    const { end } = unsaved;
    return {
      ...job,
      state: end.state,
      finishedAt: end.finishedAt,
      total: end.total,
      done: end.done,
      failed: Math.max(job.failed, unsaved.failed),
      errorCode: end.errorCode,
      errorMessage: end.errorMessage,
      outcome: end.outcome,
      proxyFileId: end.proxyFileId,
    };
  }

  /** Writes the waiting results (after the writes before it); resolves when they are written. */
  #flush(job: Running): Promise<void> {
    if (job.timer) clearTimeout(job.timer);
    job.timer = null;
    const batch = job.pending.splice(0);
    const progress = { done: job.done, total: job.total };
    job.writes = job.writes.then(async () => {
      try {
        if (batch.length > 0) await this.#store.appendJobResults(job.id, batch, progress);
      } catch (err) {
        this.#log(
          `job ${job.id}: ${batch.length} result(s) could not be stored: ${errorAnswer(err).body.error.message}`,
        );
      }
    });
    return job.writes;
  }

  /** A job with a page of its results (in the order they came); JOB_NOT_FOUND. */
  async get(id: string, offset = 0, limit = 100): Promise<Job> {
    await this.#ready;
    const running = this.#running?.id === id ? this.#running : null;
    if (running) await this.#flush(running);
    const stored = await this.#store.getJob(id);
    const job = stored && this.#withEnd(stored);
    if (!job) throw new WebError('JOB_NOT_FOUND', `no job "${id.slice(0, 40)}" (the last ${this.#keep} jobs are kept)`);
    const page = await this.#store.jobResults(id, offset, Math.min(Math.max(limit, 1), MAX_PAGE_SIZE));
    return {
      ...fields(job),
      results: page.map((r) => JSON.parse(r.json) as MachineResult),
      resultsTotal: job.resultsTotal,
      offset,
    };
  }

  /** Newest first, without the per-machine results (the last KEPT_JOBS). */
  async list(): Promise<JobSummary[]> {
    await this.#ready;
    const running = this.#running;
    return (await this.#store.listJobs(this.#keep)).map((stored) => {
      const record = this.#withEnd(stored);
      // The job running here: its counts as of now, not as of its last batch.
      const live = running?.id === record.id ? running : null;
      const job = live ? { ...record, done: live.done, total: live.total, failed: live.failed } : record;
      const { ok, failed } = { ok: Math.max(0, job.done - job.failed), failed: job.failed };
      return { ...fields({ ...job, resultsTotal: job.done }), ok, failed };
    });
  }

  /** Resolves when no job runs here (the server waits for it before closing). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running.promise;
  }
}

function fields(job: StoredJob): Omit<Job, 'results' | 'resultsTotal' | 'offset'> {
  return {
    id: job.id,
    operation: job.operation,
    user: job.user,
    detail: job.detail,
    startedAt: new Date(job.startedAt).toISOString(),
    finishedAt: iso(job.finishedAt),
    total: job.total,
    done: job.done,
    finished: job.state !== 'running',
    state: job.state,
    outcome: job.outcome,
    proxyFileId: job.proxyFileId,
    ...(job.errorCode ? { error: { code: job.errorCode, message: job.errorMessage ?? '' } } : {}),
  };
}

/** A job's summary from a job with all its results (kept for callers that hold one). */
export function summary(job: Job): JobSummary {
  const { results, resultsTotal, offset, ...rest } = job;
  void resultsTotal;
  void offset;
  const ok = results.filter((r) => r.ok).length;
  return { ...rest, ok, failed: results.length - ok };
}
