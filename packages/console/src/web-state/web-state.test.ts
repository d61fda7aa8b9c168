import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPostgres, type TestPostgres } from '@volact/authority/testing';
import { ManualClock, MINUTE } from '@volact/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VolumeConsole } from '../console.js';
import { ConsoleError } from '../errors.js';
import { openConsoleStore } from '../open-store.js';
import type { MachineResult } from '../results.js';
import type { ConsoleStore } from '../store.js';
import { JobRunner, type JobSpec } from '../web/jobs.js';
import { MAX_SESSIONS_PER_USER, SESSION_IDLE_MS, SESSION_MAX_MS, SessionStore } from '../web/sessions.js';
import type { WebStateStore } from './store.js';

/** Users with roles, sessions and jobs kept in the console's database: both engines, one suite. */
let postgres: TestPostgres;
const dirs: string[] = [];
const opened: VolumeConsole[] = [];
const PASSWORD = 'correct horse battery';

beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);

afterEach(async () => {
  for (const c of opened.splice(0)) await c.close();
});

afterAll(() => {
  postgres?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A new console with its first admin `root`, and a function that opens it again (a restart). */
type Setup = (clock: ManualClock) => Promise<{
  console: VolumeConsole;
  reopen: () => Promise<VolumeConsole>;
  openStore: () => Promise<ConsoleStore>;
}>;

const engines: [string, Setup][] = [
  ['sqlite', async (clock) => setup(clock, undefined)],
  ['postgres', async (clock) => setup(clock, await postgres.createDatabase())],
];

async function setup(clock: ManualClock, databaseUrl: string | undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'volact-web-state-'));
  dirs.push(dir);
  const options = { clock, ...(databaseUrl === undefined ? {} : { databaseUrl }) };
  const c = await VolumeConsole.create(dir, { ...options, admin: { user: 'root', password: PASSWORD } });
  opened.push(c);
  const reopen = async () => {
    const again = await VolumeConsole.connect(dir, options);
    opened.push(again);
    return again;
  };
  return { console: c, reopen, openStore: () => openConsoleStore(dir, databaseUrl) };
}

const codeOf = async (promise: Promise<unknown>): Promise<string> => {
  try {
    await promise;
  } catch (err) {
    return (err as ConsoleError).code;
  }
  throw new Error('expected a failure');
};

const result = (i: number, ok = true): MachineResult => ({
  machine: `m${i}`,
  address: `10.0.0.${i % 250}:8390`,
  ok,
  code: ok ? null : 'AGENT_UNREACHABLE',
  message: ok ? 'ok' : 'no answer',
  state: ok ? 'licensed' : null,
  method: null,
});

/** A job reporting `n` results (every 7th failed), then answering them. */
const spec = (n: number, extra: Partial<JobSpec> = {}): JobSpec => ({
  operation: 'refresh',
  user: 'root',
  detail: null,
  total: n,
  run: async (onProgress) => {
    const results = Array.from({ length: n }, (_, i) => result(i, i % 7 !== 0));
    results.forEach((r, i) => onProgress(r, i + 1, n));
    return results;
  },
  ...extra,
});

/** A job that reports `before` results then waits until released. */
function hangingSpec(before: number, total: number) {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const job: JobSpec = {
    ...spec(total),
    run: async (onProgress) => {
      const results = Array.from({ length: before }, (_, i) => result(i));
      results.forEach((r, i) => onProgress(r, i + 1, total));
      await gate;
      return results;
    },
  };
  return { job, release };
}

const noLog = () => undefined;
const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

describe.each(engines)('console users with roles (%s)', (_name, make) => {
  it('lists users with their roles, never a password hash; authenticate answers the role', async () => {
    const { console: c } = await make(new ManualClock());
    await c.addUser('alice', PASSWORD, 'viewer');
    const users = await c.listUsers();
    expect(users.map((u) => [u.name, u.role])).toEqual([
      ['alice', 'viewer'],
      ['root', 'admin'],
    ]);
    for (const u of users) expect(Object.keys(u).sort()).toEqual(['createdAt', 'name', 'role']);
    expect(JSON.stringify(users)).not.toContain('scrypt');
    expect(await c.authenticate('ALICE', PASSWORD)).toEqual({ user: 'alice', role: 'viewer' });
    expect(await c.authenticate('alice', 'wrong password!!')).toBeNull();
  });

  it('refuses an unknown role, and removing or demoting the last admin (LAST_ADMIN)', async () => {
    const { console: c } = await make(new ManualClock());
    expect(await codeOf(c.addUser('bob', PASSWORD, 'root' as never))).toBe('ADMIN_ROLE_INVALID');
    expect(await codeOf(c.setUserRole('root', 'superuser' as never))).toBe('ADMIN_ROLE_INVALID');
    await c.addUser('viewer1', PASSWORD, 'viewer');
    // A viewer does not count: root is still the last admin.
    expect(await codeOf(c.removeUser('root'))).toBe('LAST_ADMIN');
    expect(await codeOf(c.setUserRole('ROOT', 'viewer'))).toBe('LAST_ADMIN');
    expect((await c.authenticate('root', PASSWORD))?.role).toBe('admin');
    expect(await codeOf(c.removeUser('nobody'))).toBe('ADMIN_NOT_FOUND');
    expect(await codeOf(c.setUserRole('nobody', 'admin'))).toBe('ADMIN_NOT_FOUND');
    // Promote the viewer: now root may go.
    expect(await c.setUserRole('viewer1', 'admin')).toMatchObject({ name: 'viewer1', role: 'admin' });
    await c.setUserRole('root', 'viewer');
    await c.removeUser('root');
    expect((await c.listUsers()).map((u) => u.name)).toEqual(['viewer1']);
    expect(await codeOf(c.removeUser('viewer1'))).toBe('LAST_ADMIN');
  });

  it('two admins demoted at once: one stays an admin', async () => {
    const { console: c } = await make(new ManualClock());
    await c.addUser('second', PASSWORD, 'admin');
    const outcomes = await Promise.allSettled([c.setUserRole('root', 'viewer'), c.setUserRole('second', 'viewer')]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect((refused.reason as ConsoleError).code).toBe('LAST_ADMIN');
    expect((await c.listUsers()).filter((u) => u.role === 'admin')).toHaveLength(1);
  });

  it('addAdmin adds with the admin role', async () => {
    const { console: c } = await make(new ManualClock());
    await c.addAdmin('other', PASSWORD);
    expect((await c.listUsers()).find((u) => u.name === 'other')?.role).toBe('admin');
    expect(await codeOf(c.addUser('OTHER', PASSWORD, 'viewer'))).toBe('ADMIN_EXISTS');
  });
});

describe.each(engines)('web sessions in the database (%s)', (_name, make) => {
  it('keeps only the token digest, answers the role, and ends by the injected clock (idle, then absolute)', async () => {
    const clock = new ManualClock();
    const { console: c } = await make(clock);
    const sessions = new SessionStore(c.webState, clock);
    const token = await sessions.create('root');
    expect(await sessions.get(token)).toMatchObject({ user: 'root', role: 'admin' });
    // The token itself is nowhere: looking it up as a digest finds nothing.
    expect(await c.webState.findSession(token)).toBeUndefined();
    expect(await sessions.get(`${token}x`)).toBeUndefined();
    expect(await sessions.get('a'.repeat(101))).toBeUndefined();

    clock.advance(SESSION_IDLE_MS - 1);
    expect(await sessions.get(token)).toBeDefined(); // used: the idle timer restarts
    clock.advance(SESSION_IDLE_MS - 1);
    expect(await sessions.get(token)).toBeDefined();
    clock.advance(SESSION_IDLE_MS);
    expect(await sessions.get(token)).toBeUndefined();

    // Absolute: used every 20 minutes, it still ends 12 hours after login.
    const busy = await sessions.create('root');
    const start = clock.now();
    while (clock.now() - start < SESSION_MAX_MS - 20 * MINUTE) {
      clock.advance(20 * MINUTE);
      expect(await sessions.get(busy)).toBeDefined();
    }
    clock.set(start + SESSION_MAX_MS);
    expect(await sessions.get(busy)).toBeUndefined();
    expect(await c.webState.countSessions()).toBe(0);
  });

  it('survives a restart (the store reopened, a new SessionStore)', async () => {
    const clock = new ManualClock();
    const { console: c, reopen } = await make(clock);
    const token = await new SessionStore(c.webState, clock).create('root');
    await c.close();
    opened.splice(opened.indexOf(c), 1);
    const again = await reopen();
    clock.advance(MINUTE);
    expect(await new SessionStore(again.webState, clock).get(token)).toMatchObject({ user: 'root', role: 'admin' });
  });

  it('ends every session of a user removed, given another role or another password; others stay', async () => {
    const clock = new ManualClock();
    const { console: c } = await make(clock);
    const sessions = new SessionStore(c.webState, clock);
    await c.addUser('alice', PASSWORD, 'admin');
    await c.addUser('bob', PASSWORD, 'viewer');
    const root = await sessions.create('root');

    const alice = [await sessions.create('alice'), await sessions.create('ALICE')];
    await c.setUserRole('alice', 'viewer');
    for (const t of alice) expect(await sessions.get(t)).toBeUndefined();

    const bob = await sessions.create('bob');
    await c.setAdminPassword('bob', `${PASSWORD} 2`);
    expect(await sessions.get(bob)).toBeUndefined();

    const bob2 = await sessions.create('bob');
    await c.removeUser('bob');
    expect(await sessions.get(bob2)).toBeUndefined();
    // Even a session row left for a removed user (another console's) gives no access.
    await c.webState.createSession({
      digest: 'f'.repeat(64),
      user: 'bob',
      createdAt: clock.now(),
      lastUsedAt: clock.now(),
    });
    expect(await c.webState.findSession('f'.repeat(64))).toBeUndefined();

    expect(await sessions.get(root)).toMatchObject({ user: 'root' });
  });

  it('reads the role with the session: a role changed in the store applies at the next request', async () => {
    const clock = new ManualClock();
    const { console: c, openStore } = await make(clock);
    await c.addUser('alice', PASSWORD, 'admin');
    const sessions = new SessionStore(c.webState, clock);
    const token = await sessions.create('alice');
    // Another handle on the same database changes alice's role without ending her sessions.
    const other = await openStore();
    try {
      await other.setAdminRole('alice', 'viewer');
    } finally {
      await other.close();
    }
    expect((await sessions.get(token))?.role).toBe('viewer');
  });

  it('is bounded: expired sessions swept at login, at most maxSessions kept (least recently used go)', async () => {
    const clock = new ManualClock();
    const { console: c } = await make(clock);
    const sessions = new SessionStore(c.webState, clock, { maxSessions: 3 });
    const stale = await sessions.create('root');
    clock.advance(SESSION_IDLE_MS);
    const tokens: string[] = [];
    for (let i = 0; i < 3; i++) {
      tokens.push(await sessions.create('root'));
      clock.advance(10_000);
    }
    expect(await c.webState.countSessions()).toBe(3);
    expect(await c.webState.findSession('x')).toBeUndefined();
    expect(await sessions.get(stale)).toBeUndefined();
    expect(await sessions.get(tokens[0])).toBeDefined(); // used: now the most recent
    tokens.push(await sessions.create('root'));
    expect(await c.webState.countSessions()).toBe(3);
    expect(await sessions.get(tokens[1])).toBeUndefined(); // the least recently used went
    for (const t of [tokens[0], tokens[2], tokens[3]]) expect(await sessions.get(t)).toBeDefined();
    expect(await sessions.deleteForUser('ROOT')).toBe(3);
  });

  it("one user logging in again and again pushes out only its own sessions, never another user's", async () => {
    const clock = new ManualClock();
    const { console: c } = await make(clock);
    await c.addUser('watcher', 'a long viewer password', 'viewer');
    const sessions = new SessionStore(c.webState, clock);
    const admin = await sessions.create('root');
    const viewer: string[] = [];
    for (let i = 0; i < MAX_SESSIONS_PER_USER + 5; i++) {
      clock.advance(1_000);
      viewer.push(await sessions.create('Watcher'));
    }
    expect(await sessions.get(admin)).toMatchObject({ user: 'root', role: 'admin' });
    expect(await c.webState.countSessions()).toBe(MAX_SESSIONS_PER_USER + 1);
    expect(await sessions.get(viewer[0])).toBeUndefined(); // its own oldest went
    expect(await sessions.get(viewer.at(-1))).toMatchObject({ role: 'viewer' });
  });
});

describe.each(engines)('jobs in the database (%s)', (_name, make) => {
  it('stores each result as it comes, in batches, and pages them in order', async () => {
    const clock = new ManualClock();
    const { console: c } = await make(clock);
    let writes = 0;
    const counted: WebStateStore = new Proxy(c.webState, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'appendJobResults') writes++;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const jobs = new JobRunner(counted, clock, noLog, { flushResults: 100, flushMs: 10_000 });
    const started = await jobs.start(spec(1_050));
    expect(started).toMatchObject({ state: 'running', total: 1_050, results: [], resultsTotal: 0 });
    await jobs.idle();
    expect(writes).toBeLessThanOrEqual(12); // 1 050 results: 11 batches, not 1 050 writes

    const page = await jobs.get(started.id, 100, 50);
    expect(page).toMatchObject({
      state: 'finished',
      finished: true,
      done: 1_050,
      total: 1_050,
      resultsTotal: 1_050,
      offset: 100,
    });
    expect(page.results.map((r) => r.machine)).toEqual(Array.from({ length: 50 }, (_, i) => `m${100 + i}`));
    expect(page.finishedAt).not.toBeNull();
    const [summary] = await jobs.list();
    expect(summary).toMatchObject({ id: started.id, ok: 900, failed: 150 });
    expect(summary).not.toHaveProperty('results');
    expect((await jobs.get(started.id, 0, 10_000)).results).toHaveLength(500); // pages are bounded
  });

  it('shows results of a running job as they come (a poll flushes what waits)', async () => {
    const clock = new ManualClock();
    const { console: c } = await make(clock);
    const jobs = new JobRunner(c.webState, clock, noLog, { flushMs: 60_000, flushResults: 1_000 });
    const { job, release } = hangingSpec(7, 20);
    const started = await jobs.start(job);
    await tick();
    expect(await jobs.get(started.id)).toMatchObject({ state: 'running', done: 7, total: 20, resultsTotal: 7 });
    expect(await codeOf(jobs.start(spec(1)))).toBe('JOB_RUNNING');
    release();
    await jobs.idle();
    expect((await jobs.get(started.id)).state).toBe('finished');
  });

  it('never stores a secret parameter (enrolment token, passphrase, bind password)', async () => {
    const clock = new ManualClock();
    const { console: c } = await make(clock);
    const jobs = new JobRunner(c.webState, clock, noLog);
    const secret = 'enrolment-token-4f9a2c7d1e';
    const started = await jobs.start(
      spec(1, {
        operation: 'discover',
        params: {
          discover: {
            range: '10.0.0.1-10.0.0.9:8390',
            token: secret,
            ldap: { url: 'ldaps://dc', password: `${secret}-ldap` },
          },
          passphrase: `${secret}-pass`,
          keyName: 'office',
          file: 'x'.repeat(100_000),
        },
      }),
    );
    await jobs.idle();
    const stored = await c.webState.getJob(started.id);
    expect(stored?.paramsJson).not.toContain(secret);
    expect(JSON.parse(stored?.paramsJson ?? 'null')).toMatchObject({
      discover: { range: '10.0.0.1-10.0.0.9:8390', ldap: { url: 'ldaps://dc' } },
      keyName: 'office',
    });
    expect((stored?.paramsJson ?? '').length).toBeLessThan(1_000);
  });

  it('a job that fails as a whole is stored failed with its error; outcome and proxy file kept', async () => {
    const clock = new ManualClock();
    const { console: c } = await make(clock);
    const jobs = new JobRunner(c.webState, clock, noLog);
    const failed = await jobs.start(
      spec(3, {
        run: async () => {
          throw new ConsoleError('KEY_NOT_FOUND', 'no stored key "office"');
        },
      }),
    );
    await jobs.idle();
    expect(await jobs.get(failed.id)).toMatchObject({
      state: 'failed',
      finished: true,
      error: { code: 'KEY_NOT_FOUND', message: 'no stored key "office"' },
    });
    const collected = await jobs.start(
      spec(2, {
        operation: 'collect-iids',
        run: async () => ({ results: [result(1)], outcome: '1 read', proxyFileId: 'f1' }),
      }),
    );
    await jobs.idle();
    expect(await jobs.get(collected.id)).toMatchObject({
      state: 'finished',
      outcome: '1 read',
      proxyFileId: 'f1',
      resultsTotal: 1,
    });
  });

  it('a job left running by a process that stopped is interrupted at the next start, with how far it got', async () => {
    const clock = new ManualClock();
    const { console: c, reopen } = await make(clock);
    const before = new JobRunner(c.webState, clock, noLog, { flushMs: 1 });
    const { job, release } = hangingSpec(3, 10);
    const started = await before.start(job);
    await tick();
    clock.advance(MINUTE);

    // The "restart": the store opened again, a new runner.
    const again = await reopen();
    const after = new JobRunner(again.webState, clock, noLog);
    expect(await after.ready()).toBe(1);
    const seen = await after.get(started.id);
    expect(seen).toMatchObject({
      state: 'interrupted',
      finished: true,
      outcome: 'interrupted by a restart after 3 of 10 machines',
      finishedAt: new Date(clock.now()).toISOString(),
      resultsTotal: 3,
    });
    expect(seen.results.map((r) => r.machine)).toEqual(['m0', 'm1', 'm2']);
    expect((await after.list())[0]).toMatchObject({ id: started.id, state: 'interrupted' });
    // The new runner is free to start one.
    const next = await after.start(spec(2));
    await after.idle();
    expect((await after.list()).map((j) => j.id)).toEqual([next.id, started.id]);
    release();
    await before.idle();
  });

  it('keeps the newest jobs only, deleting older finished ones with their results', async () => {
    const clock = new ManualClock();
    const { console: c } = await make(clock);
    const jobs = new JobRunner(c.webState, clock, noLog, { keep: 3 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await jobs.start(spec(4))).id);
      await jobs.idle();
      clock.advance(1_000);
    }
    expect((await jobs.list()).map((j) => j.id)).toEqual(ids.slice(2).reverse());
    expect(await codeOf(jobs.get(ids[0] as string))).toBe('JOB_NOT_FOUND');
    expect(await c.webState.jobResults(ids[0] as string, 0, 100)).toEqual([]);
    expect((await jobs.get(ids[4] as string)).resultsTotal).toBe(4);
  });
});
