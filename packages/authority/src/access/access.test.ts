import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HOUR, MINUTE, ManualClock } from '@volact/core';
import { Authority } from '../authority.js';
import { AuthorityError } from '../errors.js';
import { startTestPostgres, type TestPostgres } from '../postgres-test-server.js';
import { CLI_PRINCIPAL, type Principal } from './principal.js';
import { hashPassword, verifyPassword } from './password.js';

/**
 * The access module on both engines, through the Authority (the same objects the HTTP API and
 * the CLI use): accounts, throttled sign-in, sessions, API tokens and the audit rows they write.
 */
let postgres: TestPostgres;
const dirs: string[] = [];
const open: Authority[] = [];

beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);

afterEach(async () => {
  for (const a of open.splice(0)) await a.close().catch(() => undefined);
});

afterAll(() => {
  postgres?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const PASSWORD = 'correct horse battery staple';
const OTHER_PASSWORD = 'another long passphrase 42';

interface Setup {
  clock: ManualClock;
  /** A new Authority on the same data (a restart, or a second node on PostgreSQL). */
  node(): Authority;
  /** Rows of the database, for checks the API does not expose (audit rows). */
  rows(sql: string): Promise<Record<string, unknown>[]>;
  /** Adds an organisation (its module is another helper's; the table is migration 6's). */
  addOrg(id: string): Promise<void>;
  engine: string;
}

const engines: [string, () => Promise<Setup>][] = [
  [
    'sqlite',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'volact-access-'));
      dirs.push(dir);
      const clock = new ManualClock(Date.UTC(2026, 5, 1));
      open.push(Authority.init(dir, { clock, passwordCost: 10 }));
      const raw = () => new Database(join(dir, 'authority.db'));
      return {
        clock,
        engine: 'sqlite',
        node: () => {
          const a = Authority.open(dir, { clock, passwordCost: 10 });
          open.push(a);
          return a;
        },
        rows: async (sql) => {
          const db = raw();
          try {
            return db.prepare(sql).all() as Record<string, unknown>[];
          } finally {
            db.close();
          }
        },
        addOrg: async (id) => {
          const db = raw();
          try {
            db.prepare(
              "INSERT INTO organisations (id, name, external_ref, contacts, created_at) VALUES (?, ?, NULL, '[]', 0)",
            ).run(id, id);
          } finally {
            db.close();
          }
        },
      };
    },
  ],
  [
    'postgres',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'volact-access-'));
      dirs.push(dir);
      const url = await postgres.createDatabase();
      const clock = new ManualClock(Date.UTC(2026, 5, 1));
      const first = Authority.init(dir, { clock, passwordCost: 10, databaseUrl: url });
      open.push(first);
      await first.access.listUsers({}); // the schema is made
      const query = async (sql: string, params: unknown[] = []) => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          return (await client.query(sql, params)).rows as Record<string, unknown>[];
        } finally {
          await client.end();
        }
      };
      return {
        clock,
        engine: 'postgres',
        node: () => {
          const a = Authority.open(dir, { clock, passwordCost: 10, databaseUrl: url });
          open.push(a);
          return a;
        },
        rows: (sql) => query(sql),
        addOrg: async (id) => {
          await query(
            "INSERT INTO organisations (id, name, external_ref, contacts, created_at) VALUES ($1, $1, NULL, '[]', 0)",
            [id],
          );
        },
      };
    },
  ],
];

async function refusal(p: Promise<unknown>): Promise<AuthorityError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthorityError);
  return err as AuthorityError;
}

describe('passwords', () => {
  it('are scrypt with the cost in the text; a wrong one, a damaged hash or another cost do not match', async () => {
    const h = await hashPassword(PASSWORD, 10);
    expect(h).toMatch(/^scrypt\$10\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(await verifyPassword(PASSWORD, h)).toBe(true);
    expect(await verifyPassword(`${PASSWORD} `, h)).toBe(false);
    expect(await verifyPassword(PASSWORD, h.replace('scrypt$10$', 'scrypt$11$'))).toBe(false);
    expect(await verifyPassword(PASSWORD, 'scrypt$10$8$1$xx')).toBe(false);
    expect(await hashPassword(PASSWORD, 10)).not.toBe(h); // salted
  });
});

describe.each(engines)('access: %s', (_name, setup) => {
  const owner = async (a: Authority, email = 'owner@example.com') =>
    a.access.addUser({ email, name: 'Olive Owner', role: 'owner', password: PASSWORD }, CLI_PRINCIPAL);
  const signedIn = async (a: Authority, email: string, password = PASSWORD, source = '192.0.2.1') => {
    const s = await a.access.signIn({ email, password, source });
    return { ...s, principal: await a.access.authenticate({ session: s.session }) };
  };

  it('adds users: email lower-cased and unique, roles at their level, an existing organisation, a long password', async () => {
    const t = await setup();
    const a = t.node();
    const u = await a.access.addUser(
      { email: ' Olive@Example.COM ', name: 'Olive', role: 'owner', password: PASSWORD },
      CLI_PRINCIPAL,
    );
    expect(u).toMatchObject({ email: 'olive@example.com', role: 'owner', orgId: null, disabledAt: null });
    expect(u.id).toMatch(/^usr_[0-9a-f]{24}$/);
    expect((await refusal(owner(a, 'OLIVE@example.com'))).code).toBe('USER_EXISTS');
    const short = await refusal(
      a.access.addUser(
        { email: 's@example.com', name: 'S', role: 'viewer', orgId: 'org_default', password: 'short-pw' },
        CLI_PRINCIPAL,
      ),
    );
    expect(short.code).toBe('USER_INVALID');
    expect(short.message).not.toContain('short-pw');
    const misplaced = await refusal(
      a.access.addUser(
        { email: 'p@example.com', name: 'P', role: 'admin', orgId: 'org_default', password: PASSWORD },
        CLI_PRINCIPAL,
      ),
    );
    expect(misplaced).toMatchObject({ code: 'USER_INVALID', field: 'orgId' });
    const noOrg = await refusal(
      a.access.addUser(
        { email: 'v@example.com', name: 'V', role: 'viewer', orgId: 'org_nothere', password: PASSWORD },
        CLI_PRINCIPAL,
      ),
    );
    expect(noOrg.code).toBe('ORG_NOT_FOUND');
    await t.addOrg('org_acme');
    const viewer = await a.access.addUser(
      { email: 'v@example.com', name: 'V', role: 'viewer', orgId: 'org_acme', password: PASSWORD },
      CLI_PRINCIPAL,
    );
    expect(viewer.orgId).toBe('org_acme');
    expect((await a.access.listUsers({ orgId: 'org_acme' })).map((x) => x.email)).toEqual(['v@example.com']);
    expect((await a.access.listUsers({ orgId: null })).map((x) => x.email)).toEqual(['olive@example.com']);
    expect((await a.access.getUser('V@example.com')).id).toBe(viewer.id);
  });

  it('an org-admin manages only its organisation: another one is 404, a publisher user is not found', async () => {
    const t = await setup();
    const a = t.node();
    await t.addOrg('org_a');
    await t.addOrg('org_b');
    await a.access.addUser(
      { email: 'oa@a.example', name: 'OA', role: 'org-admin', orgId: 'org_a', password: PASSWORD },
      CLI_PRINCIPAL,
    );
    const b = await a.access.addUser(
      { email: 'vb@b.example', name: 'VB', role: 'viewer', orgId: 'org_b', password: PASSWORD },
      CLI_PRINCIPAL,
    );
    const o = await owner(a);
    const { principal } = await signedIn(a, 'oa@a.example');
    const added = await a.access.addUser(
      { email: 'va@a.example', name: 'VA', role: 'viewer', orgId: 'org_a', password: PASSWORD },
      principal,
    );
    expect(added.orgId).toBe('org_a');
    const other = await refusal(
      a.access.addUser(
        { email: 'x@b.example', name: 'X', role: 'viewer', orgId: 'org_b', password: PASSWORD },
        principal,
      ),
    );
    expect(other.code).toBe('ORG_NOT_FOUND');
    expect((await refusal(a.access.removeUser(b.id, principal))).code).toBe('USER_NOT_FOUND');
    expect((await refusal(a.access.updateUser(o.id, { role: 'read-only' }, principal))).code).toBe('USER_NOT_FOUND');
    const up = await refusal(
      a.access.addUser({ email: 'x@a.example', name: 'X', role: 'admin', password: PASSWORD }, principal),
    );
    expect(up.code).toBe('SCOPE_MISSING');
    expect(up.message).toContain('publisher:users');
  });

  it('locks an account after 5 failed sign-ins for 15 minutes, kept across a restart; the same answer for an unknown email', async () => {
    const t = await setup();
    const a = t.node();
    await owner(a);
    for (let i = 0; i < 5; i++) {
      const e = await refusal(
        a.access.signIn({ email: 'owner@example.com', password: `wrong password ${i}`, source: `198.51.100.${i}` }),
      );
      expect(e.code).toBe('LOGIN_FAILED');
    }
    await a.close();
    const b = t.node(); // a restart: the count is in the database, not in memory
    const locked = await refusal(
      b.access.signIn({ email: 'owner@example.com', password: PASSWORD, source: '203.0.113.9' }),
    );
    expect(locked.code).toBe('LOGIN_THROTTLED');
    expect(locked.retryAfterSeconds).toBe(15 * 60);
    expect(locked.message).not.toMatch(/owner@example\.com|exist/);
    t.clock.advance(15 * MINUTE);
    expect(
      (await b.access.signIn({ email: 'owner@example.com', password: PASSWORD, source: '203.0.113.9' })).user.email,
    ).toBe('owner@example.com');

    // Unknown email and wrong password: the same code and message; an unknown email locks alike.
    const unknown = await refusal(
      b.access.signIn({ email: 'nobody@example.com', password: PASSWORD, source: '203.0.113.10' }),
    );
    const wrong = await refusal(
      b.access.signIn({ email: 'owner@example.com', password: OTHER_PASSWORD, source: '203.0.113.10' }),
    );
    expect([unknown.code, unknown.message]).toEqual([wrong.code, wrong.message]);
    for (let i = 0; i < 4; i++)
      await refusal(b.access.signIn({ email: 'nobody@example.com', password: 'x'.repeat(12), source: '203.0.113.11' }));
    const unknownLocked = await refusal(
      b.access.signIn({ email: 'nobody@example.com', password: PASSWORD, source: '203.0.113.12' }),
    );
    expect(unknownLocked.code).toBe('LOGIN_THROTTLED');

    const audit = await t.rows(
      "SELECT action, result, actor, detail FROM audit_log WHERE action = 'session.sign_in' ORDER BY id",
    );
    expect(audit.map((r) => r['result'])).toEqual([
      ...Array(5).fill('LOGIN_FAILED'),
      'LOGIN_THROTTLED',
      'OK',
      'LOGIN_FAILED',
      'LOGIN_FAILED',
      ...Array(4).fill('LOGIN_FAILED'),
      'LOGIN_THROTTLED',
    ]);
    expect(audit[0]).toMatchObject({ actor: 'owner@example.com', detail: 'source 198.51.100.0: wrong password' });
    expect(audit[6]).toMatchObject({ actor: 'owner@example.com', detail: 'source 203.0.113.9' });
  });

  it('counts many attempts at once exactly: at most 5 are checked, the rest are throttled', async () => {
    const t = await setup();
    const a = t.node();
    await owner(a);
    const attempts = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        refusal(
          a.access.signIn({ email: 'owner@example.com', password: `wrong password ${i}`, source: `198.51.100.${i}` }),
        ),
      ),
    );
    const codes = attempts.map((e) => e.code);
    expect(codes.filter((c) => c === 'LOGIN_FAILED')).toHaveLength(5);
    expect(codes.filter((c) => c === 'LOGIN_THROTTLED')).toHaveLength(7);
  });

  it('a locked account hammered from one address costs at most 20 database checks a minute; old counts are forgotten', async () => {
    const t = await setup();
    const a = t.node();
    await owner(a);
    for (let i = 0; i < 5; i++) {
      await refusal(
        a.access.signIn({ email: 'owner@example.com', password: `wrong password ${i}`, source: `198.51.100.${i}` }),
      );
    }
    const codes = [];
    for (let i = 0; i < 40; i++) {
      codes.push(
        (await refusal(a.access.signIn({ email: 'owner@example.com', password: PASSWORD, source: '192.0.2.99' }))).code,
      );
    }
    expect(new Set(codes)).toEqual(new Set(['LOGIN_THROTTLED']));
    const throttled = await t.rows("SELECT detail FROM audit_log WHERE result = 'LOGIN_THROTTLED'");
    expect(throttled.length).toBe(21); // 20 account checks, then one row for the address
    // Guessed emails leave a count each; 15 minutes later they are pruned (every 100 attempts).
    t.clock.advance(16 * MINUTE);
    const counts = async () => Number((await t.rows('SELECT count(*) AS n FROM sign_in_failures'))[0]?.['n']);
    expect(await counts()).toBe(1);
    // 5 + 20 attempts so far (those the address's throttle refused never reach the database).
    for (let i = 0; i < 74; i++) {
      await refusal(a.access.signIn({ email: `guess${i}@example.com`, password: PASSWORD, source: `203.0.113.${i}` }));
    }
    expect(await counts()).toBe(75);
    await refusal(a.access.signIn({ email: 'guess74@example.com', password: PASSWORD, source: '203.0.113.74' }));
    expect(await counts()).toBe(75); // the 100th attempt pruned the owner's old count, then counted its own
  });

  it('throttles a source address after 20 failures a minute, whichever emails it tries', async () => {
    const t = await setup();
    const a = t.node();
    await owner(a);
    for (let i = 0; i < 20; i++) {
      expect(
        (await refusal(a.access.signIn({ email: `guess${i}@example.com`, password: PASSWORD, source: '192.0.2.66' })))
          .code,
      ).toBe('LOGIN_FAILED');
    }
    const throttled = await refusal(
      a.access.signIn({ email: 'owner@example.com', password: PASSWORD, source: '192.0.2.66' }),
    );
    expect(throttled.code).toBe('LOGIN_THROTTLED');
    expect(throttled.retryAfterSeconds).toBeGreaterThan(0);
    expect(throttled.retryAfterSeconds).toBeLessThanOrEqual(60);
    // Another address is not affected, and the same one may try again the next minute.
    await a.access.signIn({ email: 'owner@example.com', password: PASSWORD, source: '192.0.2.67' });
    t.clock.advance(MINUTE);
    await a.access.signIn({ email: 'owner@example.com', password: PASSWORD, source: '192.0.2.66' });
  });

  it('keeps sessions across a restart; they end after 12 idle hours or 7 days, on sign-out and when the user is disabled', async () => {
    const t = await setup();
    const a = t.node();
    const o = await owner(a);
    const s = await signedIn(a, 'owner@example.com');
    expect(s.principal).toMatchObject({
      kind: 'user',
      id: o.id,
      name: 'owner@example.com',
      role: 'owner',
      orgId: null,
      scopes: ['publisher:*'],
    });
    expect(s.session).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(s.expiresAt)).toBe(t.clock.now() + 7 * DAY);
    await a.close();
    const b = t.node();
    expect((await b.access.authenticate({ session: s.session })).id).toBe(o.id);
    expect((await b.access.getUser(o.id)).lastSignInAt).not.toBeNull();

    // Used every 11 hours, it lives 7 days, not one minute more.
    for (let elapsed = 0; elapsed + 11 * HOUR < 7 * DAY; elapsed += 11 * HOUR) {
      t.clock.advance(11 * HOUR);
      await b.access.authenticate({ session: s.session });
    }
    t.clock.set(Date.parse(s.expiresAt));
    expect((await refusal(b.access.authenticate({ session: s.session }))).code).toBe('SESSION_EXPIRED');

    const idle = await signedIn(b, 'owner@example.com');
    t.clock.advance(12 * HOUR - 1);
    await b.access.authenticate({ session: idle.session });
    t.clock.advance(12 * HOUR);
    expect((await refusal(b.access.authenticate({ session: idle.session }))).code).toBe('SESSION_EXPIRED');

    const out = await signedIn(b, 'owner@example.com');
    await b.access.signOut(out.session);
    expect((await refusal(b.access.authenticate({ session: out.session }))).code).toBe('SESSION_EXPIRED');
    expect((await refusal(b.access.authenticate({ session: 'A'.repeat(43) }))).code).toBe('SESSION_EXPIRED');
    expect((await refusal(b.access.authenticate({}))).code).toBe('UNAUTHORIZED');

    await t.addOrg('org_x');
    const v = await b.access.addUser(
      { email: 'v@x.example', name: 'V', role: 'viewer', orgId: 'org_x', password: PASSWORD },
      CLI_PRINCIPAL,
    );
    const vs = await signedIn(b, 'v@x.example');
    await b.access.updateUser(v.id, { disabled: true }, CLI_PRINCIPAL);
    expect((await refusal(b.access.authenticate({ session: vs.session }))).code).toBe('SESSION_EXPIRED');
    expect(
      (await refusal(b.access.signIn({ email: 'v@x.example', password: PASSWORD, source: '192.0.2.5' }))).code,
    ).toBe('LOGIN_FAILED');
    await b.access.updateUser(v.id, { disabled: false }, CLI_PRINCIPAL);
    expect((await refusal(b.access.authenticate({ session: vs.session }))).code).toBe('SESSION_EXPIRED'); // ended, not paused
    const again = await signedIn(b, 'v@x.example');
    await b.access.removeUser(v.id, CLI_PRINCIPAL);
    expect((await refusal(b.access.authenticate({ session: again.session }))).code).toBe('SESSION_EXPIRED');
  });

  it("a password change ends the user's other sessions, not the one that made it; the old password stops", async () => {
    const t = await setup();
    const a = t.node();
    const o = await owner(a);
    const phone = await signedIn(a, 'owner@example.com');
    const laptop = await signedIn(a, 'owner@example.com');
    await a.access.updateUser(o.id, { password: OTHER_PASSWORD }, laptop.principal);
    expect((await a.access.authenticate({ session: laptop.session })).id).toBe(o.id);
    expect((await refusal(a.access.authenticate({ session: phone.session }))).code).toBe('SESSION_EXPIRED');
    expect(
      (await refusal(a.access.signIn({ email: 'owner@example.com', password: PASSWORD, source: '192.0.2.9' }))).code,
    ).toBe('LOGIN_FAILED');
    await a.access.signIn({ email: 'owner@example.com', password: OTHER_PASSWORD, source: '192.0.2.9' });
    // Set by someone else (the CLI): every session ends.
    await a.access.updateUser(o.id, { password: PASSWORD }, CLI_PRINCIPAL);
    expect((await refusal(a.access.authenticate({ session: laptop.session }))).code).toBe('SESSION_EXPIRED');
    // confirmPassword: right, wrong, and throttled like sign-in.
    await a.access.confirmPassword(o.id, PASSWORD, '192.0.2.10');
    expect((await refusal(a.access.confirmPassword(o.id, OTHER_PASSWORD, '192.0.2.10'))).code).toBe('PASSWORD_WRONG');
    for (let i = 0; i < 4; i++) await refusal(a.access.confirmPassword(o.id, OTHER_PASSWORD, '192.0.2.10'));
    expect((await refusal(a.access.confirmPassword(o.id, PASSWORD, '192.0.2.10'))).code).toBe('LOGIN_THROTTLED');
  });

  it('API tokens: shown once, hashed, scoped within what their creator holds, revocable, last use written at most once a minute', async () => {
    const t = await setup();
    const a = t.node();
    await t.addOrg('org_a');
    await t.addOrg('org_b');
    await owner(a);
    await a.access.addUser(
      { email: 'oa@a.example', name: 'OA', role: 'org-admin', orgId: 'org_a', password: PASSWORD },
      CLI_PRINCIPAL,
    );
    const { principal: orgAdmin } = await signedIn(a, 'oa@a.example');

    const made = await a.access.createToken({ name: 'console', scopes: ['org:org_a:read'] }, orgAdmin);
    expect(made.token).toMatch(/^vat_[a-z2-7]{32}$/);
    expect(made.info).toMatchObject({
      name: 'console',
      last5: made.token.slice(-5),
      orgId: 'org_a',
      createdBy: orgAdmin.userId,
      lastUsedAt: null,
    });
    const p = await a.access.authenticate({ bearer: made.token });
    expect(p).toMatchObject({
      kind: 'token',
      id: made.info.id,
      name: `token:console…${made.token.slice(-5)}`,
      orgId: 'org_a',
      scopes: ['org:org_a:read'],
    });
    const stored = await t.rows('SELECT secret_hash FROM api_tokens');
    expect(JSON.stringify(stored)).not.toContain(made.token.slice(4));

    // Last use: written once, then not again within the minute.
    const usedAt = (await a.access.listTokens({ orgId: 'org_a' }))[0]?.lastUsedAt;
    expect(usedAt).toBe(new Date(t.clock.now()).toISOString());
    t.clock.advance(30_000);
    await a.access.authenticate({ bearer: made.token });
    expect((await a.access.listTokens({ orgId: 'org_a' }))[0]?.lastUsedAt).toBe(usedAt);
    t.clock.advance(31_000);
    await a.access.authenticate({ bearer: made.token });
    expect((await a.access.listTokens({ orgId: 'org_a' }))[0]?.lastUsedAt).toBe(new Date(t.clock.now()).toISOString());

    // Beyond the creator: refused, naming the scope.
    const publisher = await refusal(
      a.access.createToken({ name: 'x', scopes: ['org:org_a:read', 'publisher:read'] }, orgAdmin),
    );
    expect(publisher).toMatchObject({ code: 'TOKEN_INVALID' });
    expect(publisher.message).toContain('publisher:read');
    const otherOrg = await refusal(a.access.createToken({ name: 'x', scopes: ['org:org_b:read'] }, orgAdmin));
    expect(otherOrg.code).toBe('TOKEN_INVALID');
    expect(otherOrg.message).toContain('org:org_b:read');
    expect((await refusal(a.access.createToken({ name: 'x', scopes: ['org:org_a:everything'] }, orgAdmin))).code).toBe(
      'TOKEN_INVALID',
    );
    expect((await refusal(a.access.createToken({ name: 'x', scopes: ['org:org_a:read'] }, p))).code).toBe(
      'TOKEN_INVALID',
    );
    expect(
      (
        await refusal(
          a.access.createToken({ name: 'x', scopes: ['org:org_a:read'], expiresAt: t.clock.now() - 1 }, orgAdmin),
        )
      ).code,
    ).toBe('TOKEN_INVALID');

    // Revoked, expired: UNAUTHORIZED.
    const revoked = await a.access.revokeToken(made.info.id, orgAdmin);
    expect(revoked.revokedAt).not.toBeNull();
    expect((await refusal(a.access.authenticate({ bearer: made.token }))).code).toBe('UNAUTHORIZED');
    const brief = await a.access.createToken(
      { name: 'brief', scopes: ['org:org_a:read'], expiresAt: t.clock.now() + HOUR },
      orgAdmin,
    );
    await a.access.authenticate({ bearer: brief.token });
    t.clock.advance(HOUR);
    expect((await refusal(a.access.authenticate({ bearer: brief.token }))).code).toBe('UNAUTHORIZED');
    expect((await refusal(a.access.authenticate({ bearer: `vat_${'a'.repeat(32)}` }))).code).toBe('UNAUTHORIZED');

    // Another organisation's user cannot revoke it (it is not found); the publisher lists every token.
    await a.access.addUser(
      { email: 'ob@b.example', name: 'OB', role: 'org-admin', orgId: 'org_b', password: PASSWORD },
      CLI_PRINCIPAL,
    );
    const { principal: orgAdminB } = await signedIn(a, 'ob@b.example');
    expect((await refusal(a.access.revokeToken(brief.info.id, orgAdminB))).code).toBe('TOKEN_NOT_FOUND');
    expect((await a.access.listTokens({})).map((x) => x.name)).toEqual(['console', 'brief']);
  });

  it('a token shrinks when its creator is demoted and stops when the creator is disabled or removed', async () => {
    const t = await setup();
    const a = t.node();
    await owner(a);
    const admin = await a.access.addUser(
      { email: 'ad@example.com', name: 'Ad', role: 'admin', password: PASSWORD },
      CLI_PRINCIPAL,
    );
    const { principal } = await signedIn(a, 'ad@example.com');
    const made = await a.access.createToken({ name: 'ops', scopes: ['publisher:keys', 'publisher:read'] }, principal);
    expect(made.info.orgId).toBeNull();
    expect((await a.access.authenticate({ bearer: made.token })).scopes).toEqual(['publisher:keys', 'publisher:read']);
    await a.access.updateUser(admin.id, { role: 'read-only' }, CLI_PRINCIPAL);
    expect((await a.access.authenticate({ bearer: made.token })).scopes).toEqual(['publisher:read']);
    await a.access.updateUser(admin.id, { disabled: true }, CLI_PRINCIPAL);
    expect((await refusal(a.access.authenticate({ bearer: made.token }))).code).toBe('UNAUTHORIZED');
    await a.access.updateUser(admin.id, { disabled: false }, CLI_PRINCIPAL);
    expect((await a.access.authenticate({ bearer: made.token })).scopes).toEqual(['publisher:read']);
    await a.access.removeUser(admin.id, CLI_PRINCIPAL);
    expect((await refusal(a.access.authenticate({ bearer: made.token }))).code).toBe('UNAUTHORIZED');
    expect((await a.access.listTokens({}))[0]).toMatchObject({ id: made.info.id, revokedAt: expect.any(String) });
    // A token the CLI made holds what it was given.
    const cli = await a.access.createToken({ name: 'service', scopes: ['publisher:*'] }, CLI_PRINCIPAL);
    expect(await a.access.authenticate({ bearer: cli.token })).toMatchObject({ userId: null, scopes: ['publisher:*'] });
  });

  it('keeps the last enabled owner: not removed, disabled or demoted, even by two changes at once', async () => {
    const t = await setup();
    const a = t.node();
    const o = await owner(a);
    for (const change of [
      () => a.access.removeUser(o.id, CLI_PRINCIPAL),
      () => a.access.updateUser(o.id, { disabled: true }, CLI_PRINCIPAL),
      () => a.access.updateUser(o.id, { role: 'admin' }, CLI_PRINCIPAL),
    ]) {
      expect((await refusal(change())).code).toBe('LAST_OWNER');
    }
    const o2 = await owner(a, 'second@example.com');
    const b = t.node();
    const results = await Promise.allSettled([
      a.access.updateUser(o.id, { role: 'admin' }, CLI_PRINCIPAL),
      b.access.updateUser(o2.id, { role: 'admin' }, CLI_PRINCIPAL),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((rejected.reason as AuthorityError).code).toBe('LAST_OWNER');
    expect((await a.access.listUsers({})).filter((u) => u.role === 'owner')).toHaveLength(1);
  });

  it('never writes a password, session or token into an audit row or an error message', async () => {
    const t = await setup();
    const a = t.node();
    await t.addOrg('org_a');
    const secrets: string[] = [PASSWORD, OTHER_PASSWORD, 'tiny-secret'];
    const messages: string[] = [];
    const collect = async (p: Promise<unknown>) => messages.push((await refusal(p)).message);
    const o = await owner(a);
    await collect(
      a.access.addUser(
        { email: 'x@example.com', name: 'X', role: 'viewer', orgId: 'org_a', password: 'tiny-secret' },
        CLI_PRINCIPAL,
      ),
    );
    await collect(a.access.signIn({ email: 'owner@example.com', password: OTHER_PASSWORD, source: '192.0.2.1' }));
    await collect(a.access.signIn({ email: OTHER_PASSWORD, password: PASSWORD, source: '192.0.2.1' }));
    const s = await signedIn(a, 'owner@example.com');
    secrets.push(s.session);
    const tok = await a.access.createToken({ name: 'ci', scopes: ['org:org_a:read'] }, s.principal);
    secrets.push(tok.token, tok.token.slice(4, 30));
    await a.access.revokeToken(tok.info.id, s.principal);
    await collect(a.access.authenticate({ bearer: tok.token }));
    await a.access.updateUser(o.id, { password: OTHER_PASSWORD }, s.principal);
    await collect(a.access.confirmPassword(o.id, PASSWORD, '192.0.2.1'));
    await a.access.signOut(s.session);
    await collect(a.access.authenticate({ session: s.session }));
    const rows = await t.rows('SELECT * FROM audit_log');
    const text = JSON.stringify(rows) + messages.join('\n');
    for (const secret of secrets) expect(text).not.toContain(secret);
    const tokenRows = rows.filter((r) => String(r['action']).startsWith('token.'));
    expect(tokenRows.map((r) => r['action'])).toEqual(['token.create', 'token.revoke']);
    for (const r of tokenRows) {
      expect(r).toMatchObject({ actor: 'owner@example.com', org_id: 'org_a' });
      expect(String(r['detail'])).toContain(`…${tok.token.slice(-5)}`);
    }
    expect(rows.filter((r) => r['action'] === 'user.add')[0]).toMatchObject({ actor: 'cli' });
    expect(rows.filter((r) => r['action'] === 'user.update')[0]).toMatchObject({
      actor: 'owner@example.com',
      detail: expect.stringContaining('password set'),
    });
  });
});

/** Two nodes on one PostgreSQL database share the per-account count. */
describe('access on two PostgreSQL nodes', () => {
  it('locks an account after 5 failures made across both nodes', async () => {
    const t = await (engines[1] as [string, () => Promise<Setup>])[1]();
    const a = t.node();
    const b = t.node();
    await a.access.addUser({ email: 'owner@example.com', name: 'O', role: 'owner', password: PASSWORD }, CLI_PRINCIPAL);
    for (let i = 0; i < 5; i++) {
      const node = i % 2 === 0 ? a : b;
      await refusal(
        node.access.signIn({ email: 'owner@example.com', password: `wrong password ${i}`, source: `198.51.100.${i}` }),
      );
    }
    for (const node of [a, b]) {
      expect(
        (await refusal(node.access.signIn({ email: 'owner@example.com', password: PASSWORD, source: '203.0.113.1' })))
          .code,
      ).toBe('LOGIN_THROTTLED');
    }
    // A session made on one node works on the other.
    t.clock.advance(15 * MINUTE);
    const s = await a.access.signIn({ email: 'owner@example.com', password: PASSWORD, source: '203.0.113.1' });
    const p: Principal = await b.access.authenticate({ session: s.session });
    expect(p.name).toBe('owner@example.com');
  });
});
