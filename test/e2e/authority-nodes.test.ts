import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TrustStore,
  makeInstallationId,
  parseConfirmationId,
  parseKey,
  parseProductConfig,
  trustConfirmationKeys,
  verifyInstallationConfirmation,
  type ConfirmationKeys,
} from '@volact/core';
import { startTestPostgres, type TestPostgres } from '@volact/authority/testing';

/**
 * MAK activation on authority nodes as operators run them: `volact authority serve` processes
 * (the built binary) sharing one data directory and one PostgreSQL database, driven over HTTP.
 */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'volact-nodes-'));
const children = new Set<ChildProcess>();
let postgres: TestPostgres | undefined;

const execFileAsync = promisify(execFile);

/** Runs a CLI command (asynchronously: running nodes keep being read) and parses its --json output. */
async function volactJson<T>(...args: string[]): Promise<T> {
  try {
    const { stdout } = await execFileAsync(process.execPath, [BIN, ...args, '--json'], { timeout: 30_000 });
    return JSON.parse(stdout) as T;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`volact ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

interface Node {
  readonly child: ChildProcess;
  readonly url: string;
  readonly log: () => string;
  kill(): Promise<void>;
}

/** Starts `authority serve` on a free port; resolves once it reports "listening". */
function serve(dataDir: string, db: string): Promise<Node> {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'authority',
      'serve',
      '--data-dir',
      dataDir,
      '--db',
      db,
      '--listen',
      '127.0.0.1:0',
      '--activations-per-minute',
      '1000000',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      children.delete(child);
      resolve();
    }),
  );
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void kill();
      reject(new Error(`authority serve did not report listening in 20 s: ${err}`));
    }, 20_000);
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-20_000);
      const m = /authority listening on (http:\/\/[\d.]+:\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string, log: () => `${out}\n${err}`, kill });
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`authority serve exited (${code ?? signal}) before listening: ${err}`));
    });
  });
}

interface Setup {
  readonly dataDir: string;
  readonly db: string;
  readonly key: string;
  readonly keyId: string;
  readonly last5: string;
  readonly groupId: string;
  readonly rootPublicKey: Buffer;
  /** The keys a client of this authority's product config trusts for CIDs (root, online key). */
  readonly cidKeys: ConfirmationKeys;
  iid(hardwareId: string): string;
}

/** A new authority (own data dir, own database) with office14 and one MAK of `limit` activations. */
async function authorityWithMak(name: string, limit: number): Promise<Setup> {
  if (!postgres) throw new Error('PostgreSQL did not start');
  const db = await postgres.createDatabase();
  const dataDir = join(dir, name);
  const store = ['--data-dir', dataDir, '--db', db];
  const init = await volactJson<{ rootPublicKey: string }>('authority', 'init', ...store);
  const group = await volactJson<{ id: string }>('authority', 'group', 'add', ...store, '--name', 'office14');
  const minted = await volactJson<{ key: string; keyId: string }>(
    'authority',
    'key',
    'mint',
    ...store,
    '--type',
    'mak',
    '--group',
    'office14',
    '--limit',
    String(limit),
  );
  const parsedKey = parseKey(minted.key);
  const exported = await volactExit('authority', 'product-config', ...store, '--group', 'office14');
  const product = parseProductConfig(JSON.parse(exported.stdout));
  return {
    dataDir,
    db,
    key: minted.key,
    keyId: minted.keyId,
    last5: minted.key.replace(/-/g, '').slice(-5),
    groupId: group.id,
    rootPublicKey: Buffer.from(init.rootPublicKey, 'base64'),
    cidKeys: trustConfirmationKeys(TrustStore.fromProductConfig(product)),
    iid: (hardwareId) =>
      makeInstallationId({ kind: 'installation', key: parsedKey, hardwareId, groupIds: [group.id] }).text,
  };
}

/** What the database holds for a key: its `used` counter and the installation IDs recorded. */
async function dbState(db: string, keyId: string): Promise<{ used: number; installations: string[]; all: number }> {
  const client = new pg.Client({ connectionString: db });
  await client.connect();
  try {
    const key = await client.query<{ used: number }>('SELECT used FROM product_keys WHERE id = $1', [keyId]);
    if (key.rows.length !== 1) throw new Error(`no product_keys row ${keyId}`);
    const rows = await client.query<{ installation_id: string }>(
      'SELECT installation_id FROM installations WHERE key_id = $1',
      [keyId],
    );
    const all = await client.query<{ n: string }>('SELECT count(*) AS n FROM installations');
    return {
      used: key.rows[0]!.used,
      installations: rows.rows.map((r) => r.installation_id),
      all: Number(all.rows[0]!.n),
    };
  } finally {
    await client.end();
  }
}

interface Reply {
  readonly status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any;
}

/** POSTs a raw body; the reply must be JSON (refusals included). */
async function postRaw(url: string, body: string | undefined, contentType?: string): Promise<Reply> {
  const res = await fetch(url, {
    method: 'POST',
    ...(contentType === undefined ? {} : { headers: { 'content-type': contentType } }),
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as unknown };
  } catch {
    throw new Error(`POST ${url} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
}

const activate = (nodeUrl: string, key: string, installationId: string) =>
  postRaw(`${nodeUrl}/v1/activations`, JSON.stringify({ key, installationId }), 'application/json');

/** The error code of a failed fetch (connection refused/reset by a dead node). */
function connectionErrorCode(err: unknown): string {
  const cause = (err as { cause?: { code?: string } }).cause;
  return cause?.code ?? (err as Error).message;
}

beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);

afterAll(async () => {
  await Promise.all(
    [...children].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
  try {
    postgres?.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('authority nodes on one PostgreSQL database (MAK activation)', () => {
  it('1000 concurrent activations of distinct installations over two nodes: a 100-activation MAK admits exactly 100', async () => {
    const a = await authorityWithMak('exact', 100);
    const nodes = await Promise.all([serve(a.dataDir, a.db), serve(a.dataDir, a.db)]);
    try {
      const iids = Array.from({ length: 1000 }, (_, i) => a.iid(`exact-pc-${i}`));
      const replies = await Promise.all(iids.map((iid, i) => activate(nodes[i % 2]!.url, a.key, iid)));

      const statuses = new Map<number, number>();
      for (const r of replies) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      expect(Object.fromEntries(statuses)).toEqual({ 201: 100, 403: 900 });

      const admitted = replies.flatMap((r, i) => (r.status === 201 ? [{ i, iid: iids[i]!, body: r.body }] : []));
      for (const { body } of admitted) {
        expect(body).toMatchObject({ method: 'mak', group: 'office14', limit: 100, again: false });
      }
      // each admitted installation got its own place in the count: 1 … 100, none twice
      expect(admitted.map((x) => x.body.used as number).sort((x, y) => x - y)).toEqual(
        Array.from({ length: 100 }, (_, i) => i + 1),
      );
      // and a confirmation ID that the machine can check against the authority's root key
      for (const { i, body } of admitted) {
        const installation = makeInstallationId({
          kind: 'installation',
          key: parseKey(a.key),
          hardwareId: `exact-pc-${i}`,
          groupIds: [a.groupId],
        });
        expect(
          verifyInstallationConfirmation(
            installation,
            a.groupId,
            parseConfirmationId(body.confirmationId as string),
            a.cidKeys,
          ),
        ).toBe(true);
      }
      for (const r of replies.filter((x) => x.status === 403)) {
        expect(r.body.error.code).toBe('MAK_LIMIT_REACHED');
        expect(r.body.error.message).toContain(`…${a.last5}`);
        expect(r.body.error.message).not.toContain(a.key);
      }

      const state = await dbState(a.db, a.keyId);
      expect(state.used).toBe(100);
      expect(state.installations.length).toBe(100);
      expect(new Set(state.installations)).toEqual(new Set(admitted.map((x) => x.iid)));

      const shown = await volactJson<{ used: number; remaining: number; limit: number; activations: unknown[] }>(
        'authority',
        'key',
        'show',
        a.key,
        '--data-dir',
        a.dataDir,
        '--db',
        a.db,
      );
      expect(shown).toMatchObject({ limit: 100, used: 100, remaining: 0 });
      expect(shown.activations.length).toBe(100);
    } finally {
      await Promise.all(nodes.map((n) => n.kill()));
    }
  }, 120_000);

  it('a node killed with SIGKILL mid-load loses no activation it confirmed and leaves no half-recorded one', async () => {
    const a = await authorityWithMak('kill', 5000);
    const nodes = await Promise.all([serve(a.dataDir, a.db), serve(a.dataDir, a.db)]);
    const [victim, survivor] = nodes;
    let restarted: Node | undefined;
    try {
      const total = 1500;
      const iids = Array.from({ length: total }, (_, i) => a.iid(`kill-pc-${i}`));
      type Outcome = { node: Node; sentAfterKill: boolean; reply?: Reply; error?: string };
      const outcomes: Outcome[] = new Array(total);
      let next = 0;
      let responses = 0;
      let killed = false;
      const worker = async () => {
        while (next < total) {
          const i = next++;
          const node = nodes[i % 2]!;
          const outcome: Outcome = { node, sentAfterKill: killed };
          try {
            outcome.reply = await activate(node.url, a.key, iids[i]!);
          } catch (err) {
            outcome.error = connectionErrorCode(err);
          }
          outcomes[i] = outcome;
          if (++responses === 300 && !killed) {
            killed = true;
            victim.child.kill('SIGKILL');
          }
        }
      };
      await Promise.all(Array.from({ length: 50 }, worker));
      expect(killed).toBe(true);

      const failed = outcomes.flatMap((o, i) => (o.error === undefined ? [] : [{ i, ...o }]));
      const confirmed = outcomes.flatMap((o, i) => (o.reply?.status === 201 ? [iids[i]!] : []));
      // Nothing answered other than 201: no 500 while a peer died holding the key's row lock.
      expect(outcomes.filter((o) => o.reply !== undefined && o.reply.status !== 201).map((o) => o.reply)).toEqual([]);
      // Only the killed node failed, with connection errors; the surviving node served all its requests.
      expect(failed.length).toBeGreaterThan(0);
      expect(failed.every((f) => f.node === victim)).toBe(true);
      const connectionErrors = ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'];
      expect(failed.map((f) => f.error).filter((e) => !connectionErrors.includes(e ?? ''))).toEqual([]);
      const toSurvivor = outcomes.filter((o) => o.node === survivor);
      expect(toSurvivor.every((o) => o.reply?.status === 201)).toBe(true);
      expect(toSurvivor.filter((o) => o.sentAfterKill).length).toBeGreaterThan(100);
      expect(confirmed.length + failed.length).toBe(total);

      const state = await dbState(a.db, a.keyId);
      const recorded = new Set(state.installations);
      // none lost: every installation a client was told is activated is recorded
      expect(confirmed.filter((iid) => !recorded.has(iid))).toEqual([]);
      // none half-recorded: the key's count is the rows, and the only extra rows are requests whose answer was lost
      expect(state.used).toBe(state.installations.length);
      const failedIids = new Set(failed.map((f) => iids[f.i]!));
      const confirmedSet = new Set(confirmed);
      expect(state.installations.filter((iid) => !confirmedSet.has(iid) && !failedIids.has(iid))).toEqual([]);

      // The node restarted on the same data dir and database serves again; a repeat costs nothing.
      restarted = await serve(a.dataDir, a.db);
      const again = await activate(restarted.url, a.key, confirmed[0]!);
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ again: true, used: state.used, limit: 5000 });
      expect((await dbState(a.db, a.keyId)).used).toBe(state.used);

      // Clients whose request died retry: recorded ones come back as "again" (200), the others activate (201).
      const retryQueue = failed.map((f) => iids[f.i]!);
      const retried: { iid: string; reply: Reply }[] = [];
      const retryNodes = [restarted, survivor];
      let r = 0;
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          while (r < retryQueue.length) {
            const k = r++;
            const iid = retryQueue[k]!;
            retried.push({ iid, reply: await activate(retryNodes[k % 2]!.url, a.key, iid) });
          }
        }),
      );
      for (const { iid, reply } of retried) {
        expect({ iid, status: reply.status, again: reply.body.again }).toEqual({
          iid,
          status: recorded.has(iid) ? 200 : 201,
          again: recorded.has(iid),
        });
      }
      const final = await dbState(a.db, a.keyId);
      expect(final.used).toBe(total);
      expect(new Set(final.installations)).toEqual(new Set(iids));
      const shown = await volactJson<{ used: number; remaining: number }>(
        'authority',
        'key',
        'show',
        a.key,
        '--data-dir',
        a.dataDir,
        '--db',
        a.db,
      );
      expect(shown).toMatchObject({ used: total, remaining: 5000 - total });
    } finally {
      await Promise.all([...nodes, ...(restarted ? [restarted] : [])].map((n) => n.kill()));
    }
  }, 120_000);

  it('refuses malformed activation and confirmation requests with a 4xx and a specific code, writing nothing', async () => {
    const a = await authorityWithMak('malformed', 10);
    const node = await serve(a.dataDir, a.db);
    try {
      const iid = a.iid('malformed-pc');
      const phoneIid = a.iid('malformed-phone-pc');
      // one digit mistyped in group 5: the check digit catches it and names the group
      const typo = (text: string) => {
        const groups = text.split('-');
        groups[4] = groups[4]!.replace(/^(\d)/, (d) => String((Number(d) + 3) % 10));
        return groups.join('-');
      };
      const valid = JSON.stringify({ key: a.key, installationId: iid });
      const validPhone = JSON.stringify({ installationId: phoneIid });
      const json = 'application/json';
      const cases: {
        name: string;
        path: '/v1/activations' | '/v1/confirmations';
        body?: string;
        contentType?: string;
        status: number;
        code: string;
        message?: RegExp;
      }[] = [
        {
          name: 'truncated JSON',
          path: '/v1/activations',
          body: valid.slice(0, -2),
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
        },
        {
          name: 'not JSON',
          path: '/v1/activations',
          body: `key=${a.key}`,
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
        },
        {
          name: 'empty JSON body',
          path: '/v1/activations',
          body: '',
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
        },
        { name: 'no body', path: '/v1/activations', status: 400, code: 'REQUEST_INVALID' },
        {
          name: 'a JSON array',
          path: '/v1/activations',
          body: `[${valid}]`,
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
        },
        {
          name: 'JSON null',
          path: '/v1/activations',
          body: 'null',
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
        },
        {
          name: 'a body over 16 KiB',
          path: '/v1/activations',
          body: JSON.stringify({ key: a.key, installationId: iid, pad: 'x'.repeat(17 * 1024) }),
          contentType: json,
          status: 413,
          code: 'REQUEST_INVALID',
        },
        {
          name: 'key: 5',
          path: '/v1/activations',
          body: JSON.stringify({ key: 5, installationId: iid }),
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
          message: /^key: /,
        },
        {
          name: 'installationId: a number',
          path: '/v1/activations',
          body: JSON.stringify({ key: a.key, installationId: 123456 }),
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
          message: /^installationId: /,
        },
        {
          name: 'no installationId',
          path: '/v1/activations',
          body: JSON.stringify({ key: a.key }),
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
          message: /^installationId: /,
        },
        {
          name: 'an unknown key',
          path: '/v1/activations',
          body: JSON.stringify({ key: a.key, installationId: iid, extra: 1 }),
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
          message: /extra/,
        },
        {
          name: '__proto__ in the body',
          path: '/v1/activations',
          body: `{"key":${JSON.stringify(a.key)},"installationId":${JSON.stringify(iid)},"__proto__":{"x":1}}`,
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
        },
        {
          name: 'a key over 64 characters',
          path: '/v1/activations',
          body: JSON.stringify({ key: `${a.key}${'-A'.repeat(40)}`, installationId: iid }),
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
          message: /^key: /,
        },
        {
          name: 'a mistyped IID digit',
          path: '/v1/activations',
          body: JSON.stringify({ key: a.key, installationId: typo(iid) }),
          contentType: json,
          status: 400,
          code: 'IID_INVALID',
          message: /group 5 is wrong/,
        },
        {
          name: 'JSON sent as text/plain',
          path: '/v1/activations',
          body: valid,
          contentType: 'text/plain',
          status: 400,
          code: 'REQUEST_INVALID',
        },
        {
          name: 'a form content-type',
          path: '/v1/activations',
          body: valid,
          contentType: 'application/x-www-form-urlencoded',
          status: 415,
          code: 'REQUEST_INVALID',
        },
        {
          name: 'truncated JSON',
          path: '/v1/confirmations',
          body: validPhone.slice(0, -2),
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
        },
        {
          name: 'a body over 16 KiB',
          path: '/v1/confirmations',
          body: JSON.stringify({ installationId: phoneIid, pad: 'x'.repeat(17 * 1024) }),
          contentType: json,
          status: 413,
          code: 'REQUEST_INVALID',
        },
        {
          name: 'installationId: a number',
          path: '/v1/confirmations',
          body: JSON.stringify({ installationId: 5 }),
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
          message: /^installationId: /,
        },
        {
          name: 'an unknown key',
          path: '/v1/confirmations',
          body: JSON.stringify({ installationId: phoneIid, key: a.key }),
          contentType: json,
          status: 400,
          code: 'REQUEST_INVALID',
          message: /key/,
        },
        {
          name: 'a mistyped IID digit',
          path: '/v1/confirmations',
          body: JSON.stringify({ installationId: typo(phoneIid) }),
          contentType: json,
          status: 400,
          code: 'IID_INVALID',
          message: /group 5 is wrong/,
        },
        {
          name: 'JSON sent as text/plain',
          path: '/v1/confirmations',
          body: validPhone,
          contentType: 'text/plain',
          status: 400,
          code: 'REQUEST_INVALID',
        },
        {
          name: 'a form content-type',
          path: '/v1/confirmations',
          body: validPhone,
          contentType: 'application/x-www-form-urlencoded',
          status: 415,
          code: 'REQUEST_INVALID',
        },
      ];
      for (const c of cases) {
        const reply = await postRaw(`${node.url}${c.path}`, c.body, c.contentType);
        expect({ case: `${c.path} ${c.name}`, status: reply.status, code: reply.body?.error?.code }).toEqual({
          case: `${c.path} ${c.name}`,
          status: c.status,
          code: c.code,
        });
        expect(typeof reply.body.error.message).toBe('string');
        if (c.message) expect(reply.body.error.message, `${c.path} ${c.name}`).toMatch(c.message);
      }

      const state = await dbState(a.db, a.keyId);
      expect(state).toEqual({ used: 0, installations: [], all: 0 });

      // The same key and installation IDs, well-formed, do activate: the refusals above were the malformation's.
      const online = await activate(node.url, a.key, iid);
      expect(online.status).toBe(201);
      const phone = await postRaw(`${node.url}/v1/confirmations`, validPhone, json);
      expect(phone.status).toBe(201);
      expect(phone.body.kind).toBe('installation');
      const after = await dbState(a.db, a.keyId);
      expect(after.used).toBe(2);
      expect(new Set(after.installations)).toEqual(new Set([iid, phoneIid]));
    } finally {
      await node.kill();
    }
  }, 120_000);
});

/** Runs the CLI and returns its exit code and output, whatever the code (refusals included). */
async function volactExit(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('authority nodes when PostgreSQL goes away', () => {
  it('pg_ctl restart -m fast three times under 500 concurrent activations over two nodes: no node exits, clients retry and succeed, counts exact', async () => {
    if (!postgres) throw new Error('PostgreSQL did not start');
    const pgServer = postgres;
    const a = await authorityWithMak('restart', 1000);
    const nodes = await Promise.all([serve(a.dataDir, a.db), serve(a.dataDir, a.db)]);
    try {
      const total = 500;
      const iids = Array.from({ length: total }, (_, i) => a.iid(`restart-pc-${i}`));
      const confirmed = new Map<string, string>(); // installation ID → its confirmation ID
      const statuses = new Map<number, number>();
      const unavailable: Reply[] = [];
      let responses = 0;
      let restarts = 0;
      let restarting = false;
      // Each installation is one client: it activates, retrying on 503 (and on a lost connection)
      // on the other node, until it holds a confirmation; then it activates again (free) so the
      // load goes on until the three restarts are over.
      const client = async (i: number) => {
        const iid = iids[i]!;
        for (let attempt = 0; restarts < 3 || restarting || !confirmed.has(iid); attempt++) {
          const node = nodes[(i + attempt) % 2]!;
          let reply: Reply;
          try {
            reply = await activate(node.url, a.key, iid);
          } catch {
            statuses.set(-1, (statuses.get(-1) ?? 0) + 1);
            await sleep(100);
            continue;
          }
          responses++;
          statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
          if (reply.status === 503) {
            unavailable.push(reply);
            await sleep(100 + Math.random() * 200);
          } else if (reply.status === 200 || reply.status === 201) {
            if (!confirmed.has(iid)) confirmed.set(iid, reply.body.confirmationId as string);
            if (confirmed.size === total && restarts >= 3) return;
            await sleep(20);
          } else {
            throw new Error(`activation answered ${reply.status}: ${JSON.stringify(reply.body)}`);
          }
        }
      };
      const restarter = async () => {
        for (let n = 0; n < 3; n++) {
          const from = responses;
          while (responses - from < 300) await sleep(20); // in the middle of the load
          restarting = true;
          await pgServer.restart();
          restarts++;
          restarting = false;
        }
      };
      await Promise.all([restarter(), ...iids.map((_, i) => client(i))]);

      // No node exited; both still serve and report a healthy database.
      for (const node of nodes) {
        expect(node.child.exitCode, node.log()).toBeNull();
        expect(node.child.signalCode).toBeNull();
        const health = await fetch(`${node.url}/v1/health`);
        expect(health.status).toBe(200);
        expect(await health.json()).toMatchObject({ status: 'ok', database: 'ok' });
      }
      expect(node0Log(nodes)).not.toMatch(/Unhandled 'error' event|57P01.*uncaught/i);
      // In-flight requests failed with the retryable refusal, never a 500.
      expect(statuses.get(500)).toBeUndefined();
      expect(unavailable.length).toBeGreaterThan(0);
      for (const r of unavailable) expect(r.body.error.code).toBe('STORE_UNAVAILABLE');
      // Every client got its confirmation, and it verifies.
      expect(confirmed.size).toBe(total);
      for (const [i, iid] of iids.entries()) {
        const installation = makeInstallationId({
          kind: 'installation',
          key: parseKey(a.key),
          hardwareId: `restart-pc-${i}`,
          groupIds: [a.groupId],
        });
        expect(
          verifyInstallationConfirmation(installation, a.groupId, parseConfirmationId(confirmed.get(iid)!), a.cidKeys),
        ).toBe(true);
      }
      // Counts exact: MAK used == distinct installations that got a confirmation.
      const state = await dbState(a.db, a.keyId);
      expect(state.used).toBe(total);
      expect(new Set(state.installations)).toEqual(new Set(iids));
      console.log(
        `restart test: ${responses} answers (${JSON.stringify(Object.fromEntries(statuses))}), ${unavailable.length} STORE_UNAVAILABLE, 3 restarts`,
      );
    } finally {
      await Promise.all(nodes.map((n) => n.kill()));
    }
  }, 240_000);

  it('a node started while PostgreSQL is down serves 503 STORE_UNAVAILABLE (health too; CLI exit 3) and recovers when it returns', async () => {
    if (!postgres) throw new Error('PostgreSQL did not start');
    const a = await authorityWithMak('outage', 10);
    const productFile = join(dir, 'outage-product.json');
    const product = await volactExit(
      'authority',
      'product-config',
      '--data-dir',
      a.dataDir,
      '--db',
      a.db,
      '--group',
      'office14',
    );
    expect(product.code).toBe(0);
    writeFileSync(productFile, product.stdout);
    const clientDir = join(dir, 'outage-client');
    expect((await volactExit('client', 'init', '--state-dir', clientDir, '--product', productFile)).code).toBe(0);
    expect((await volactExit('client', 'install-key', '--state-dir', clientDir, a.key)).code).toBe(0);
    const hostKey = await volactJson<{ key: string }>(
      'authority',
      'key',
      'mint',
      '--data-dir',
      a.dataDir,
      '--db',
      a.db,
      '--type',
      'kms-host',
      '--group',
      'office14',
    );
    const hostDir = join(dir, 'outage-host');
    expect((await volactExit('host', 'install-key', '--data-dir', hostDir, hostKey.key)).code).toBe(0);

    postgres.halt();
    let node: Node | undefined;
    try {
      node = await serve(a.dataDir, a.db);
      const health = await fetch(`${node.url}/v1/health`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: 'unavailable', database: 'unreachable' });
      const refused = await activate(node.url, a.key, a.iid('outage-pc'));
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('STORE_UNAVAILABLE');

      // The CLI: an authority command on the unreachable database, and a client at this node, exit 3 (retry).
      const show = await volactExit('authority', 'key', 'show', a.key, '--data-dir', a.dataDir, '--db', a.db, '--json');
      expect(show.code).toBe(3);
      expect(JSON.parse(show.stdout).error.code).toBe('STORE_UNAVAILABLE');
      const clientActivate = await volactExit(
        'client',
        'activate',
        '--state-dir',
        clientDir,
        '--authority',
        node.url,
        '--json',
      );
      expect(clientActivate.code).toBe(3);
      expect(clientActivate.stdout).toContain('AUTHORITY_UNREACHABLE');
      expect(clientActivate.stdout).toContain('STORE_UNAVAILABLE');
      const hostActivate = await volactExit(
        'host',
        'activate',
        '--data-dir',
        hostDir,
        '--authority',
        node.url,
        '--json',
      );
      expect(hostActivate.code).toBe(3);
      expect(JSON.parse(hostActivate.stdout).error.code).toBe('AUTHORITY_UNREACHABLE');
      expect(hostActivate.stdout).toContain('STORE_UNAVAILABLE');

      postgres.resume();
      let ok = false;
      for (let i = 0; i < 100 && !ok; i++) {
        await sleep(200);
        ok = (await fetch(`${node.url}/v1/health`)).status === 200;
      }
      expect(ok).toBe(true);
      const activated = await volactExit(
        'client',
        'activate',
        '--state-dir',
        clientDir,
        '--authority',
        node.url,
        '--json',
      );
      expect(activated.code, activated.stdout + activated.stderr).toBe(0);
      const hostActivated = await volactExit(
        'host',
        'activate',
        '--data-dir',
        hostDir,
        '--authority',
        node.url,
        '--json',
      );
      expect(hostActivated.code, hostActivated.stdout + hostActivated.stderr).toBe(0);
      expect(node.child.exitCode).toBeNull();
      expect((await dbState(a.db, a.keyId)).used).toBe(1);
    } finally {
      if (postgres && !(await postgresAnswers(postgres.url))) postgres.resume();
      await node?.kill();
    }
  }, 120_000);
});

function node0Log(nodes: readonly Node[]): string {
  return nodes.map((n) => n.log()).join('\n');
}

async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}
