import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres } from '@volact/authority/testing';
import { ManualClock } from '@volact/core';
import { VolumeConsole } from '../console.js';
import type { MachineResult, Progress } from '../results.js';
import type { WebStateStore } from '../web-state/store.js';
import { JobRunner, type Schedule } from './jobs.js';

/**
 * A job whose end cannot be stored (the database down as it ends) must not show `running` for
 * ever: its end is answered from memory and stored again with back-off once the database is back.
 */
let root: string;
let n = 0;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'volact-jobs-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const result = (i: number): MachineResult => ({
  machine: `m${i}`,
  address: `10.0.0.${i}:8390`,
  ok: true,
  code: null,
  message: 'ok',
  state: 'licensed',
  method: null,
});

/** The console's web state, with its writes failing while `down.now` (the database stopped). */
function faulty(store: WebStateStore): { store: WebStateStore; down: { now: boolean } } {
  const down = { now: false };
  const failing = new Set(['appendJobResults', 'finishJob', 'pruneJobs', 'getJob', 'listJobs', 'jobResults']);
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (down.now && failing.has(String(prop))) return Promise.reject(new Error('connection terminated'));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, down };
}

/** A schedule the test fires by hand (no real waits). */
function manualSchedule(): { schedule: Schedule; waits: number[]; fire: () => Promise<void> } {
  const queue: (() => void)[] = [];
  const waits: number[] = [];
  return {
    waits,
    schedule: (work, ms) => {
      waits.push(ms);
      queue.push(work);
    },
    fire: async () => {
      const work = queue.shift();
      if (!work) throw new Error('nothing scheduled');
      work();
      for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    },
  };
}

describe('a job whose end cannot be stored', () => {
  it('is shown ended (from memory), not running; stored with back-off once the database is back', async () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 3, 9));
    const c = await VolumeConsole.create(join(root, `c-${++n}`), {
      clock,
      admin: { user: 'root', password: 'correct horse battery' },
    });
    const { store, down } = faulty(c.webState);
    const timers = manualSchedule();
    const logs: string[] = [];
    const jobs = new JobRunner(store, clock, (l) => logs.push(l), { flushMs: 1, schedule: timers.schedule });
    await jobs.ready();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const job = await jobs.start({
      operation: 'refresh',
      user: 'root',
      detail: null,
      total: 2,
      run: async (p: Progress) => {
        p(result(1), 1, 2);
        await gate;
        p(result(2), 2, 2);
        return [result(1), result(2)];
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    down.now = true;
    release();
    await jobs.idle();
    expect(logs.join('\n')).toMatch(/its end could not be stored \(.*\); trying again in 1 s/);

    // The database back, before the retry: the job reads as finished, from memory.
    down.now = false;
    expect((await c.webState.getJob(job.id))?.state).toBe('running'); // not stored yet
    expect((await jobs.list()).find((j) => j.id === job.id)).toMatchObject({ state: 'finished', done: 2, total: 2 });
    expect(await jobs.get(job.id)).toMatchObject({ state: 'finished', finished: true, done: 2 });

    // Still down at the first retry: the wait doubles.
    down.now = true;
    await timers.fire();
    expect(timers.waits).toEqual([1_000, 2_000]);
    down.now = false;
    await timers.fire();
    expect((await c.webState.getJob(job.id))?.state).toBe('finished');
    expect(logs.at(-1)).toMatch(/its end is stored \(finished\)/);
    expect(timers.waits).toEqual([1_000, 2_000]); // nothing more scheduled

    // A new server on this database finds nothing left running to mark interrupted.
    expect(await new JobRunner(c.webState, clock, () => undefined).ready()).toBe(0);
    await c.close();
  });

  it('back-off stops doubling at its ceiling', async () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 3, 9));
    const c = await VolumeConsole.create(join(root, `c-${++n}`), {
      clock,
      admin: { user: 'root', password: 'correct horse battery' },
    });
    const { store, down } = faulty(c.webState);
    const timers = manualSchedule();
    const jobs = new JobRunner(store, clock, () => undefined, {
      schedule: timers.schedule,
      retryFirstMs: 1_000,
      retryMaxMs: 4_000,
    });
    const job = await jobs.start({
      operation: 'refresh',
      user: 'root',
      detail: null,
      total: 0,
      run: async () => {
        down.now = true;
        throw new Error('boom');
      },
    });
    await jobs.idle();
    for (let i = 0; i < 4; i++) await timers.fire();
    expect(timers.waits).toEqual([1_000, 2_000, 4_000, 4_000, 4_000]);
    down.now = false;
    expect(await jobs.get(job.id)).toMatchObject({ state: 'failed', error: { code: 'INTERNAL' } });
    await timers.fire();
    expect((await c.webState.getJob(job.id))?.state).toBe('failed');
    await c.close();
  });
});

describe('PostgreSQL stopping as a job ends (a real server)', () => {
  it('the job reads as ended while the database is down; its end is stored once the database is back', async () => {
    const postgres = await startTestPostgres();
    const clock = new ManualClock(Date.UTC(2026, 11, 3, 9));
    const c = await VolumeConsole.create(join(root, `c-${++n}`), {
      clock,
      databaseUrl: await postgres.createDatabase(),
      admin: { user: 'root', password: 'correct horse battery' },
    });
    try {
      const logs: string[] = [];
      const jobs = new JobRunner(c.webState, clock, (l) => logs.push(l), { flushMs: 1, retryFirstMs: 100 });
      await jobs.ready();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const job = await jobs.start({
        operation: 'refresh',
        user: 'root',
        detail: null,
        total: 2,
        run: async (p: Progress) => {
          p(result(1), 1, 2);
          await gate;
          p(result(2), 2, 2);
          return [result(1), result(2)];
        },
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      postgres.halt();
      release();
      await jobs.idle();
      expect(logs.join('\n')).toMatch(
        /its end could not be stored \(the console database .* did not accept a connection/,
      );
      postgres.resume();
      // As soon as the database answers: ended (from memory, or stored by a retry by then).
      let listed: string | undefined;
      for (let i = 0; i < 100 && listed === undefined; i++) {
        listed = await jobs.list().then(
          (all) => all.find((j) => j.id === job.id)?.state,
          () => undefined,
        );
        if (listed === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(listed).toBe('finished');
      // The retry stores it: the database itself says finished.
      let stored: string | undefined;
      for (let i = 0; i < 100 && stored !== 'finished'; i++) {
        stored = await c.webState.getJob(job.id).then(
          (j) => j?.state,
          () => undefined,
        );
        if (stored !== 'finished') await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(stored).toBe('finished');
      expect(logs.join('\n')).toMatch(/its end is stored \(finished\)/);
    } finally {
      await c.close();
      postgres.stop();
    }
  }, 120_000);
});
