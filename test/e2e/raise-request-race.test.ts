import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '@volact/authority/testing';

/**
 * The approval race (issue 14: "approval raises the limit exactly once even if clicked twice on
 * two nodes"), on one PostgreSQL database and one data directory, twice: two Node processes
 * each with its own Authority (the built package) calling decide() 10 times at once each, and
 * two `volact authority serve` nodes answering 20 simultaneous POST …/decision. Exactly one
 * decision wins; the others get RAISE_REQUEST_DECIDED; the limit rises by `additional` once,
 * and the outbox holds one `key.limit_raised` and one `raise_request.decided`. Repeated over
 * several requests (approve against approve, and approve against decline) so that a missing
 * row lock would show (it does: without the request's FOR UPDATE, four approvals of one request
 * raised the limit four times). The two processes also race on one SQLite file (BEGIN
 * IMMEDIATE between processes).
 */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
const AUTHORITY = new URL('../../packages/authority/dist/index.js', import.meta.url).href;
const dir = mkdtempSync(join(tmpdir(), 'volact-raise-race-'));
const children = new Set<ChildProcess>();
let postgres: TestPostgres | undefined;
const execFileAsync = promisify(execFile);

async function volactJson<T>(...args: string[]): Promise<T> {
  try {
    const { stdout } = await execFileAsync(process.execPath, [BIN, ...args, '--json'], { timeout: 30_000 });
    return JSON.parse(stdout) as T;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`volact ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

async function volactExit(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/**
 * One node: a process that opens the authority and, per command on stdin, fires `n`
 * decisions of one request at once (each on its own pooled connection) and answers how each went.
 */
const NODE_SCRIPT = `
import { createInterface } from 'node:readline';
const { Authority, CLI_PRINCIPAL } = await import(${JSON.stringify(AUTHORITY)});
const [dataDir, databaseUrl, name] = process.argv.slice(2);
const authority = Authority.open(dataDir, databaseUrl ? { databaseUrl } : {});
const by = { kind: 'user', id: 'usr_' + name, name, userId: 'usr_' + name, orgId: null, role: 'support',
  scopes: ['publisher:read', 'publisher:requests'] };
await authority.health();
process.stdout.write(JSON.stringify({ ready: true }) + '\\n');
for await (const line of createInterface({ input: process.stdin })) {
  const { tag, id, decision, n, create } = JSON.parse(line);
  if (create) {
    // A request made here rather than by the CLI: a process start less per round.
    const r = await authority.raiseRequests.create(create.orgId, create.input, CLI_PRINCIPAL);
    process.stdout.write(JSON.stringify({ tag, results: [{ ok: true, id: r.id, state: r.state }] }) + '\\n');
    continue;
  }
  const settled = await Promise.allSettled(
    Array.from({ length: n }, () => authority.raiseRequests.decide(id, { decision, reason: name + ' ' + decision }, by)),
  );
  const results = settled.map((s) =>
    s.status === 'fulfilled'
      ? { ok: true, decision, state: s.value.state, limitAfter: s.value.limitAfter }
      : { ok: false, decision, code: s.reason.code ?? String(s.reason), message: s.reason.message },
  );
  process.stdout.write(JSON.stringify({ tag, results }) + '\\n');
}
await authority.close();
`;

interface Result {
  readonly ok: boolean;
  readonly decision: 'approve' | 'decline';
  readonly state?: string;
  readonly limitAfter?: number | null;
  readonly code?: string;
  readonly message?: string;
}

interface Node {
  decide(id: string, decision: 'approve' | 'decline', n: number): Promise<Result[]>;
  create(
    orgId: string,
    input: { keyId: string; additional: number; reason: string },
  ): Promise<{ id: string; state: string }>;
  stop(): Promise<void>;
}

async function startNode(script: string, dataDir: string, db: string, name: string): Promise<Node> {
  const child = spawn(process.execPath, [script, dataDir, db, name], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-10_000)));
  const waiting = new Map<string, (results: Result[]) => void>();
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  createInterface({ input: child.stdout }).on('line', (line) => {
    const msg = JSON.parse(line) as { ready?: boolean; tag?: string; results?: Result[] };
    if (msg.ready) ready();
    else waiting.get(msg.tag as string)?.(msg.results as Result[]);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await Promise.race([
    isReady,
    exited.then(() => {
      throw new Error(`node ${name} exited before it was ready: ${stderr}`);
    }),
  ]);
  let seq = 0;
  const ask = (message: object) =>
    new Promise<Result[]>((resolve) => {
      const tag = `${name}-${seq++}`;
      waiting.set(tag, resolve);
      child.stdin.write(`${JSON.stringify({ tag, ...message })}\n`);
    });
  return {
    create: async (orgId, input) =>
      (await ask({ create: { orgId, input } }))[0] as unknown as { id: string; state: string },
    decide: (id, decision, n) => ask({ id, decision, n }),
    stop: async () => {
      child.stdin.end();
      await exited;
      children.delete(child);
    },
  };
}

/** `volact authority serve` (the built binary) on a free port; resolves with its URL once listening. */
async function serve(
  dataDir: string,
  db: string,
  tokenFile: string,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'authority',
      'serve',
      ...['--data-dir', dataDir, '--db', db, '--listen', '127.0.0.1:0'],
      '--admin-token-file',
      tokenFile,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    children.delete(child);
  };
  let err = '';
  child.stdout.resume();
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`authority serve did not listen in 20 s: ${err}`)), 20_000);
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-20_000);
      const m = /authority listening on (http:\/\/[\d.]+:\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`authority serve exited (${code ?? signal}) before listening: ${err}`));
    });
  });
  return { url, stop };
}

/** The key's limit and the outbox rows about one request. */
async function dbState(db: string, keyId: string, requestId: string, dataDir?: string) {
  const sqlite = db === '' ? new Database(join(dataDir as string, 'authority.db'), { readonly: true }) : undefined;
  const client = sqlite ? undefined : new pg.Client({ connectionString: db });
  await client?.connect();
  const rows = async <R>(sql: string, params: unknown[] = []): Promise<R[]> =>
    sqlite
      ? (sqlite.prepare(sql.replace(/\$\d+/g, '?')).all(...params) as R[])
      : ((await (client as pg.Client).query(sql, params)).rows as R[]);
  try {
    const key = await rows<{ host_limit: number }>('SELECT host_limit FROM product_keys WHERE id = $1', [keyId]);
    const events = await rows<{ type: string; data: string }>(
      "SELECT type, data FROM webhook_events WHERE type IN ('key.limit_raised', 'raise_request.decided') ORDER BY seq",
    );
    const mine = events.filter((e) => (JSON.parse(e.data) as { requestId?: string }).requestId === requestId);
    const audit = await rows<{ n: string }>(
      "SELECT count(*) AS n FROM audit_log WHERE action IN ('raise_request.approve', 'raise_request.decline') AND detail LIKE $1",
      [`request ${requestId} %`],
    );
    return {
      limit: key[0]?.host_limit,
      raised: mine.filter((e) => e.type === 'key.limit_raised').length,
      decided: mine.filter((e) => e.type === 'raise_request.decided').length,
      auditRows: Number(audit[0]?.n),
    };
  } finally {
    sqlite?.close();
    await client?.end();
  }
}

beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  postgres?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('limit-raise approval race on two nodes', () => {
  it.each(['postgres', 'sqlite'])(
    '%s: 20 approvals split over two processes, and approve against decline, each decide once, over 10 requests',
    async (engine) => {
      if (!postgres) throw new Error('PostgreSQL did not start');
      const db = engine === 'postgres' ? await postgres.createDatabase() : '';
      const dataDir = join(dir, `authority-${engine}`);
      const store = ['--data-dir', dataDir, ...(db ? ['--db', db] : [])];
      await volactJson('authority', 'init', ...store);
      await volactJson('authority', 'group', 'add', ...store, '--name', 'office14');
      const mak = await volactJson<{ key: string; keyId: string }>(
        'authority',
        ...['key', 'mint', ...store, '--type', 'mak', '--group', 'office14', '--limit', '100'],
      );
      const script = join(dir, `node-${engine}.mjs`);
      writeFileSync(script, NODE_SCRIPT);
      const nodes = await Promise.all([
        startNode(script, dataDir, db, 'node1@publisher.test'),
        startNode(script, dataDir, db, 'node2@publisher.test'),
      ]);
      const [node1, node2] = nodes;
      try {
        let expected = 100;
        for (let round = 0; round < 10; round++) {
          const additional = 10 + round;
          // Round 0 through the CLI (its surface), the others by a node (a process start less each).
          const request =
            round === 0
              ? await volactJson<{ id: string; state: string }>(
                  'authority',
                  ...['raise-request', 'create', ...store, '--org', 'org_default', '--key', mak.keyId],
                  ...['--additional', String(additional), '--reason', `round ${round}`],
                )
              : await node1.create('org_default', { keyId: mak.keyId, additional, reason: `round ${round}` });
          expect(request.state).toBe('pending');
          // Rounds 0-5: 10 + 10 approvals; rounds 6-9: 10 approvals on node 1 against 10 declines on node 2.
          const duel = round >= 6;
          const [one, two] = await Promise.all([
            node1.decide(request.id, 'approve', 10),
            node2.decide(request.id, duel ? 'decline' : 'approve', 10),
          ]);
          const all = [...one, ...two];
          const won = all.filter((r) => r.ok);
          expect(won, JSON.stringify(all.filter((r) => !r.ok || r.code !== 'RAISE_REQUEST_DECIDED'))).toHaveLength(1);
          const lost = all.filter((r) => !r.ok);
          expect(lost.map((r) => r.code)).toEqual(Array(19).fill('RAISE_REQUEST_DECIDED'));
          const winner = won[0] as Result;
          const approved = winner.decision === 'approve';
          expect(winner.state).toBe(approved ? 'approved' : 'declined');
          if (approved) expected += additional;
          // Every loser was told who won and how.
          for (const r of lost) expect(r.message).toContain(approved ? 'approved' : 'declined');
          const state = await dbState(db, mak.keyId, request.id, dataDir);
          expect(state).toEqual({ limit: expected, raised: approved ? 1 : 0, decided: 1, auditRows: 1 });
          if (approved) expect(winner.limitAfter).toBe(expected);
        }
        // The key's report agrees (the CLI on the same database), and the requests are all decided.
        const report = await volactJson<{ limit: number }>('authority', 'key', 'show', mak.key, ...store);
        expect(report.limit).toBe(expected);
        const listed = await volactJson<{ requests: { id: string; state: string }[] }>(
          'authority',
          ...['raise-request', 'list', ...store, '--org', 'org_default'],
        );
        expect(listed.requests).toHaveLength(10);
        expect(listed.requests.filter((r) => r.state === 'pending')).toEqual([]);
        // Deciding again from the CLI: refused, exit code 1, naming who decided; nothing changes.
        const again = await volactExit(
          'authority',
          ...['raise-request', 'approve', (listed.requests[0] as { id: string }).id, ...store, '--reason', 'again'],
        );
        expect(again.code).toBe(1);
        expect(again.stderr).toMatch(/RAISE_REQUEST_DECIDED: .*(approved|declined).* by node[12]@publisher\.test/);
        expect((await volactJson<{ limit: number }>('authority', 'key', 'show', mak.key, ...store)).limit).toBe(
          expected,
        );
      } finally {
        await Promise.all(nodes.map((n) => n.stop()));
      }
    },
    240_000,
  );

  it('over HTTP: two `authority serve` nodes, 20 POST …/decision at once per request, one decision each, over 6 requests', async () => {
    if (!postgres) throw new Error('PostgreSQL did not start');
    const db = await postgres.createDatabase();
    const dataDir = join(dir, 'served');
    const store = ['--data-dir', dataDir, '--db', db];
    await volactJson('authority', 'init', ...store);
    await volactJson('authority', 'group', 'add', ...store, '--name', 'office14');
    const mak = await volactJson<{ key: string; keyId: string }>(
      'authority',
      ...['key', 'mint', ...store, '--type', 'mak', '--group', 'office14', '--limit', '40'],
    );
    const token = randomBytes(24).toString('hex');
    const tokenFile = join(dir, 'admin-token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const nodes = await Promise.all([serve(dataDir, db, tokenFile), serve(dataDir, db, tokenFile)]);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    try {
      let expected = 40;
      for (let round = 0; round < 6; round++) {
        const additional = 5 + round;
        const created = await fetch(`${nodes[round % 2]?.url}/v1/orgs/org_default/raise-requests`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ keyId: mak.keyId, additional, reason: `round ${round}` }),
        });
        expect(created.status).toBe(201);
        const request = (await created.json()) as { id: string; state: string };
        expect(request.state).toBe('pending');
        const duel = round >= 4; // the last two: node 1 approves while node 2 declines
        const replies = await Promise.all(
          Array.from({ length: 20 }, async (_, i) => {
            const node = nodes[i % 2] as { url: string };
            const decision = duel && i % 2 === 1 ? 'decline' : 'approve';
            const res = await fetch(`${node.url}/v1/raise-requests/${request.id}/decision`, {
              method: 'POST',
              headers,
              body: JSON.stringify({ decision, reason: `node ${i % 2} says ${decision}` }),
            });
            return { status: res.status, body: (await res.json()) as { state?: string; error?: { code: string } } };
          }),
        );
        const won = replies.filter((r) => r.status === 200);
        expect(won, JSON.stringify(replies.filter((r) => r.status !== 409))).toHaveLength(1);
        expect(replies.filter((r) => r.status === 409).map((r) => r.body.error?.code)).toEqual(
          Array(19).fill('RAISE_REQUEST_DECIDED'),
        );
        const approved = won[0]?.body.state === 'approved';
        if (approved) expected += additional;
        expect(await dbState(db, mak.keyId, request.id)).toEqual({
          limit: expected,
          raised: approved ? 1 : 0,
          decided: 1,
          auditRows: 1,
        });
      }
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
    }
  }, 240_000);
});
