import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '@volact/core';
import { CLI_PRINCIPAL, type Principal } from '../access/principal.js';
import { Authority } from '../authority.js';
import { DB_FILE } from '../data-dir.js';
import { AuthorityError, type AuthorityErrorCode } from '../errors.js';
import { startTestPostgres, type TestPostgres } from '../postgres-test-server.js';

/** Limit-raise requests on both engines: the same behaviour, exact under concurrency. */

let postgres: TestPostgres;
const dirs: string[] = [];

beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);

afterAll(() => {
  postgres?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<AuthorityError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(AuthorityError);
    return err as AuthorityError;
  }
  throw new Error('expected a refusal');
}
const codeOf = async (p: Promise<unknown>): Promise<AuthorityErrorCode> => (await refusal(p)).code;

const orgUser = (orgId: string, role: 'org-admin' | 'viewer', name = `${role}@${orgId}.test`): Principal => ({
  kind: 'user',
  id: `usr_${role}`,
  name,
  userId: `usr_${role}`,
  orgId,
  role,
  scopes: role === 'org-admin' ? [`org:${orgId}:*`] : [`org:${orgId}:read`],
});
const support: Principal = {
  kind: 'user',
  id: 'usr_support',
  name: 'support@publisher.test',
  userId: 'usr_support',
  orgId: null,
  role: 'support',
  scopes: ['publisher:read', 'publisher:phone', 'publisher:requests'],
};
const readOnly: Principal = {
  ...support,
  id: 'usr_ro',
  name: 'ro@publisher.test',
  role: 'read-only',
  scopes: ['publisher:read'],
};

/** Raw SQL on the engine's database, for what the API does not show (events, moving a key to an org). */
interface Sql {
  run(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

const engines: [string, (dataDir: string) => Promise<{ url: string | undefined; sql: () => Sql }>][] = [
  [
    'sqlite',
    async (dataDir) => ({
      url: undefined,
      sql: () => {
        const db = new Database(join(dataDir, DB_FILE));
        return {
          run: async (text, params = []) => {
            const stmt = db.prepare(text.replace(/\$\d+/g, '?'));
            return stmt.reader ? (stmt.all(...params) as Record<string, unknown>[]) : (stmt.run(...params), []);
          },
          close: async () => {
            db.close();
          },
        };
      },
    }),
  ],
  [
    'postgres',
    async () => {
      const url = await postgres.createDatabase();
      return {
        url,
        sql: () => {
          const pool = new pg.Pool({ connectionString: url, max: 1 });
          return {
            run: async (text, params = []) => (await pool.query<Record<string, unknown>>(text, params)).rows,
            close: () => pool.end(),
          };
        },
      };
    },
  ],
];

describe.each(engines)('limit-raise requests (%s)', (_engine, setup) => {
  let dir: string;
  let clock: ManualClock;
  let authority: Authority;
  let sql: Sql;
  let mak: { key: string; keyId: string };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'volact-raise-'));
    dirs.push(dir);
    clock = new ManualClock();
    const dataDir = join(dir, 'a');
    const engine = await setup(dataDir);
    authority = Authority.init(dataDir, { clock, ...(engine.url ? { databaseUrl: engine.url } : {}) });
    await authority.addGroup({ name: 'office14' });
    mak = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 10 });
    sql = engine.sql();
    await moveKey(mak.keyId, 'org_acme');
  }, 60_000);

  afterEach(async () => {
    await sql.close();
    await authority.close();
  });

  const moveKey = (keyId: string, orgId: string) =>
    sql.run('UPDATE product_keys SET org_id = $1 WHERE id = $2', [orgId, keyId]);
  const events = async (type: string) =>
    (await sql.run('SELECT * FROM webhook_events WHERE type = $1 ORDER BY seq', [type])).map((r) => ({
      ...r,
      data: JSON.parse(r['data'] as string) as Record<string, unknown>,
    }));
  const limitOf = async () => (await authority.showKey(mak.key)).limit;
  const ask = (additional = 50, by: Principal = orgUser('org_acme', 'org-admin')) =>
    authority.raiseRequests.create('org_acme', { keyId: mak.keyId, additional, reason: '  new branch office  ' }, by);

  it('creates a pending request with raise_request.created (no key in it), listed and shown', async () => {
    const r = await ask();
    expect(r).toMatchObject({
      orgId: 'org_acme',
      keyId: mak.keyId,
      additional: 50,
      reason: 'new branch office',
      state: 'pending',
      requestedBy: 'org-admin@org_acme.test',
      decidedBy: null,
      limitBefore: null,
      limitAfter: null,
    });
    expect(r.id).toMatch(/^rr_[0-9a-f]{24}$/);
    expect(r.keyLast5).toBe(`…${mak.key.slice(-5)}`); // as the key is shown everywhere
    expect(await authority.raiseRequests.get(r.id)).toEqual(r);
    const created = await events('raise_request.created');
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ org_id: 'org_acme', key_id: mak.keyId });
    expect(created[0]?.data).toMatchObject({ requestId: r.id, additional: 50, requestedBy: 'org-admin@org_acme.test' });
    const rows =
      JSON.stringify(await sql.run('SELECT * FROM webhook_events')) +
      JSON.stringify(await sql.run('SELECT * FROM audit_log'));
    expect(rows).not.toContain(mak.key.replace(/-/g, '').slice(0, 10));
    expect(rows).not.toContain(mak.key);
    expect(await limitOf()).toBe(10); // asking changes nothing
  });

  it('refuses bad requests with a specific code, and writes nothing', async () => {
    const admin = orgUser('org_acme', 'org-admin');
    const make = (input: { keyId?: string; additional?: unknown; reason?: unknown }, by = admin, org = 'org_acme') =>
      authority.raiseRequests.create(
        org,
        { keyId: mak.keyId, additional: 5, reason: 'more', ...input } as {
          keyId: string;
          additional: number;
          reason: string;
        },
        by,
      );
    for (const additional of [0, -1, 1.5, 1_000_001, '5', Number.NaN]) {
      expect(await codeOf(make({ additional }))).toBe('RAISE_REQUEST_INVALID');
    }
    expect((await make({ additional: 1_000_000 })).additional).toBe(1_000_000); // the bound is allowed…
    for (const reason of ['', '   ', 'x'.repeat(501), 42]) {
      expect(await codeOf(make({ reason }))).toBe('RAISE_REQUEST_INVALID');
    }
    // A key of another organisation is answered as absent (same as a key that does not exist).
    const other = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 10 });
    await moveKey(other.keyId, 'org_other');
    const foreign = await refusal(make({ keyId: other.keyId }));
    const absent = await refusal(make({ keyId: '00000000-0000-0000-0000-000000000000' }));
    expect([foreign.code, absent.code]).toEqual(['KEY_NOT_FOUND', 'KEY_NOT_FOUND']);
    expect(foreign.message).not.toContain('org_other');
    // Another organisation's user, and a viewer of this one.
    expect(await codeOf(make({}, orgUser('org_other', 'org-admin')))).toBe('ORG_NOT_FOUND');
    expect(await codeOf(make({}, orgUser('org_acme', 'viewer')))).toBe('SCOPE_MISSING');
    // A retail key's limit stays 1; a revoked key is not raised.
    const retail = await authority.mintKey({ type: 'retail', groups: ['office14'] });
    await moveKey(retail.keyId, 'org_acme');
    expect(await codeOf(make({ keyId: retail.keyId }))).toBe('KEY_WRONG_TYPE');
    await authority.revokeKey(other.key);
    await moveKey(other.keyId, 'org_acme');
    expect(await codeOf(make({ keyId: other.keyId }))).toBe('KEY_REVOKED');
    // …the 1 000 000 one was the only request made.
    expect((await authority.raiseRequests.list({})).items).toHaveLength(1);
    expect(await events('raise_request.created')).toHaveLength(1);
  });

  it('approval raises the limit once: a second approval or a decline after it is RAISE_REQUEST_DECIDED and changes nothing', async () => {
    const r = await ask(50);
    clock.advance(60_000);
    const approved = await authority.raiseRequests.decide(r.id, { decision: 'approve', reason: ' agreed ' }, support);
    expect(approved).toMatchObject({
      state: 'approved',
      decidedBy: 'support@publisher.test',
      decisionReason: 'agreed',
      limitBefore: 10,
      limitAfter: 60,
    });
    expect(approved.decidedAt).toBe(new Date(clock.now()).toISOString());
    expect(await limitOf()).toBe(60);

    clock.advance(60_000);
    for (const decision of ['approve', 'decline'] as const) {
      const err = await refusal(authority.raiseRequests.decide(r.id, { decision, reason: 'again' }, CLI_PRINCIPAL));
      expect(err.code).toBe('RAISE_REQUEST_DECIDED');
      expect(err.message).toContain('approved');
      expect(err.message).toContain('support@publisher.test');
      expect(err.message).toContain(approved.decidedAt as string);
    }
    expect(await limitOf()).toBe(60);
    expect(await authority.raiseRequests.get(r.id)).toEqual(approved);
    const raised = await events('key.limit_raised');
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ org_id: 'org_acme', key_id: mak.keyId });
    expect(raised[0]?.data).toMatchObject({ limitBefore: 10, limitAfter: 60, requestId: r.id });
    const decided = await events('raise_request.decided');
    expect(decided).toHaveLength(1);
    expect(decided[0]?.data).toMatchObject({
      requestId: r.id,
      decision: 'approved',
      decidedBy: 'support@publisher.test',
    });
    const audit = await authority.recentAudit(10);
    expect(audit.filter((a) => a.action === 'raise_request.approve')).toHaveLength(1);
    const row = (await sql.run("SELECT * FROM audit_log WHERE action = 'raise_request.approve'"))[0];
    expect(row).toMatchObject({ actor: 'support@publisher.test', org_id: 'org_acme', key_id: mak.keyId });
  });

  it('a decline changes no limit; approving it afterwards is RAISE_REQUEST_DECIDED', async () => {
    const r = await ask(50);
    const declined = await authority.raiseRequests.decide(
      r.id,
      { decision: 'decline', reason: 'no agreement' },
      support,
    );
    expect(declined).toMatchObject({
      state: 'declined',
      limitBefore: null,
      limitAfter: null,
      decisionReason: 'no agreement',
    });
    const err = await refusal(authority.raiseRequests.decide(r.id, { decision: 'approve', reason: 'oops' }, support));
    expect(err.code).toBe('RAISE_REQUEST_DECIDED');
    expect(err.message).toContain('declined');
    expect(await limitOf()).toBe(10);
    expect(await events('key.limit_raised')).toHaveLength(0);
    expect(await events('raise_request.decided')).toHaveLength(1);
  });

  it('ten approvals at once: one raises the limit, nine are RAISE_REQUEST_DECIDED', async () => {
    const r = await ask(7);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () =>
        authority.raiseRequests.decide(r.id, { decision: 'approve', reason: 'ok' }, support),
      ),
    );
    expect(results.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
    for (const x of results.filter((y): y is PromiseRejectedResult => y.status === 'rejected')) {
      expect((x.reason as AuthorityError).code).toBe('RAISE_REQUEST_DECIDED');
    }
    expect(await limitOf()).toBe(17);
    expect(await events('key.limit_raised')).toHaveLength(1);
    expect(await events('raise_request.decided')).toHaveLength(1);
  });

  it('only a publisher user with publisher:requests decides; another organisation learns nothing', async () => {
    const r = await ask();
    expect(
      await codeOf(
        authority.raiseRequests.decide(r.id, { decision: 'approve', reason: 'me' }, orgUser('org_acme', 'org-admin')),
      ),
    ).toBe('SCOPE_MISSING');
    expect(
      await codeOf(
        authority.raiseRequests.decide(r.id, { decision: 'approve', reason: 'me' }, orgUser('org_other', 'org-admin')),
      ),
    ).toBe('RAISE_REQUEST_NOT_FOUND');
    expect(await codeOf(authority.raiseRequests.decide(r.id, { decision: 'approve', reason: 'me' }, readOnly))).toBe(
      'SCOPE_MISSING',
    );
    expect(
      await codeOf(authority.raiseRequests.decide(r.id, { decision: 'maybe' as 'approve', reason: 'x' }, support)),
    ).toBe('RAISE_REQUEST_INVALID');
    expect(await codeOf(authority.raiseRequests.decide(r.id, { decision: 'approve', reason: '  ' }, support))).toBe(
      'RAISE_REQUEST_INVALID',
    );
    expect(
      await codeOf(
        authority.raiseRequests.decide('rr_000000000000000000000000', { decision: 'approve', reason: 'x' }, support),
      ),
    ).toBe('RAISE_REQUEST_NOT_FOUND');
    expect(await codeOf(authority.raiseRequests.get('nonsense'))).toBe('RAISE_REQUEST_NOT_FOUND');
    expect((await authority.raiseRequests.get(r.id)).state).toBe('pending');
    expect(await limitOf()).toBe(10);
  });

  it('an approval of a key revoked since the request is refused and the request stays pending', async () => {
    const r = await ask();
    await authority.revokeKey(mak.key);
    expect(await codeOf(authority.raiseRequests.decide(r.id, { decision: 'approve', reason: 'ok' }, support))).toBe(
      'KEY_REVOKED',
    );
    expect((await authority.raiseRequests.get(r.id)).state).toBe('pending');
    expect(await events('key.limit_raised')).toHaveLength(0);
    await authority.raiseRequests.decide(r.id, { decision: 'decline', reason: 'revoked' }, support);
  });

  it('raises a KMS host key’s host limit', async () => {
    const host = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
    await moveKey(host.keyId, 'org_acme');
    const r = await authority.raiseRequests.create(
      'org_acme',
      { keyId: host.keyId, additional: 4, reason: 'two more sites' },
      orgUser('org_acme', 'org-admin'),
    );
    const approved = await authority.raiseRequests.decide(r.id, { decision: 'approve', reason: 'ok' }, CLI_PRINCIPAL);
    expect(approved).toMatchObject({ limitBefore: 6, limitAfter: 10, decidedBy: 'cli' });
    expect((await authority.showKey(host.key)).limit).toBe(10);
  });

  it('lists newest first, by organisation and state, a page at a time', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      ids.push((await ask(i + 1)).id);
    }
    const other = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 3 });
    await moveKey(other.keyId, 'org_other');
    await authority.raiseRequests.create(
      'org_other',
      { keyId: other.keyId, additional: 1, reason: 'x' },
      CLI_PRINCIPAL,
    );
    await authority.raiseRequests.decide(ids[1] as string, { decision: 'decline', reason: 'no' }, support);

    const first = await authority.raiseRequests.list({ orgId: 'org_acme', limit: 2 });
    expect(first.items.map((r) => r.id)).toEqual([ids[4], ids[3]]);
    expect(first.nextCursor).not.toBeNull();
    const second = await authority.raiseRequests.list({
      orgId: 'org_acme',
      limit: 2,
      cursor: first.nextCursor as string,
    });
    expect(second.items.map((r) => r.id)).toEqual([ids[2], ids[1]]);
    const third = await authority.raiseRequests.list({
      orgId: 'org_acme',
      limit: 2,
      cursor: second.nextCursor as string,
    });
    expect(third.items.map((r) => r.id)).toEqual([ids[0]]);
    expect(third.nextCursor).toBeNull();
    expect((await authority.raiseRequests.list({ orgId: 'org_acme', state: 'pending' })).items).toHaveLength(4);
    expect((await authority.raiseRequests.list({ state: 'declined' })).items.map((r) => r.id)).toEqual([ids[1]]);
    expect((await authority.raiseRequests.list({})).items).toHaveLength(6);
    expect(await codeOf(authority.raiseRequests.list({ limit: 501 }))).toBe('REQUEST_INVALID');
    expect(await codeOf(authority.raiseRequests.list({ cursor: 'bogus' }))).toBe('REQUEST_INVALID');
    expect(await codeOf(authority.raiseRequests.list({ state: 'open' as 'pending' }))).toBe('RAISE_REQUEST_INVALID');
  });
});
