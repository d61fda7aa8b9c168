import type Database from 'better-sqlite3';
import type pg from 'pg';
import { auditInsertSql, auditParams, sqlitePlaceholder } from '../audit-sql.js';
import { AuthorityError } from '../errors.js';
import type { PostgresAccess } from '../revocation-store.js';
import type { AuditEntry } from '../store.js';
import type { Role, Scope } from './principal.js';

/**
 * The access module's records (users, sessions, API tokens, failed sign-ins) in the authority's
 * database, the same on both engines: one implementation over a small SQL runner (`?`
 * placeholders; PostgreSQL's `$n` are made from them). Changes that must be exact across nodes
 * run in one transaction: SQLite's write lock (BEGIN IMMEDIATE), PostgreSQL row locks.
 */

export interface UserRow {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly role: Role;
  readonly orgId: string | null;
  readonly passwordHash: string;
  readonly createdAt: number;
  readonly disabledAt: number | null;
  readonly lastSignInAt: number | null;
}

export interface SessionRow {
  readonly id: string;
  readonly secretHash: string;
  readonly userId: string;
  readonly createdAt: number;
  readonly lastSeenAt: number;
  readonly expiresAt: number;
  readonly revokedAt: number | null;
  readonly source: string | null;
}

export interface TokenRow {
  readonly id: string;
  readonly name: string;
  readonly secretHash: string;
  readonly last5: string;
  readonly scopes: readonly Scope[];
  readonly createdBy: string | null;
  readonly orgId: string | null;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

/** What a change of one user does, decided under the lock from the user and the enabled owners. */
export interface UserChange {
  /** The user afterwards; null: removed. */
  readonly next: UserRow | null;
  readonly audit: AuditEntry;
  /** End the user's sessions (all, or all but one: the session that changed its own password). */
  readonly endSessions?: { readonly except?: string | undefined } | undefined;
}

/** Failed sign-ins of one subject: at most `max` in `windowMs`, then locked for `lockMs`. */
export interface AttemptPolicy {
  readonly max: number;
  readonly windowMs: number;
  readonly lockMs: number;
}

export interface AccessStore {
  /** Whether an organisation has this id (organisations table, migration 6). */
  orgExists(orgId: string): Promise<boolean>;
  /** USER_EXISTS when the email is taken (the UNIQUE constraint decides between nodes). */
  addUser(user: UserRow, audit: AuditEntry): Promise<void>;
  /** By id, or by (lower-cased) email. */
  findUser(idOrEmail: string): Promise<UserRow | undefined>;
  /** undefined: every user; null: publisher users; an id: that organisation's. Ordered by email. */
  listUsers(orgId: string | null | undefined): Promise<UserRow[]>;
  /**
   * Changes one user under a lock on it and on every enabled owner (`decide` sees how many
   * there are, so two owners demoting each other at once leave one). USER_NOT_FOUND. A removed
   * user's sessions are deleted and the tokens they made revoked, in the same transaction.
   */
  changeUser(id: string, decide: (current: UserRow, enabledOwners: number) => UserChange): Promise<UserRow | null>;

  /**
   * Reserves one sign-in attempt of `subject` (counted as failed until cleared): 0, or the ms
   * until the subject may try again (locked). Exact between nodes: the count is one row.
   */
  beginAttempt(subject: string, now: number, policy: AttemptPolicy): Promise<number>;
  /** The reserved attempt failed: at `max` the subject is locked for `lockMs`. */
  failAttempt(subject: string, now: number, policy: AttemptPolicy): Promise<void>;
  /** The attempt succeeded: the count starts over. */
  clearAttempts(subject: string): Promise<void>;
  /**
   * Forgets what no longer matters: failure counts last touched before `before` and not locked
   * at `now` (an attacker's guessed emails), and sessions ended or expired by `now`.
   */
  prune(before: number, now: number, sessionIdle: number): Promise<void>;

  /** A new session, the user's last sign-in and the audit row, in one transaction; drops the user's dead sessions. */
  addSession(session: SessionRow, deadBefore: { idle: number; now: number }, audit: AuditEntry): Promise<void>;
  findSession(secretHash: string): Promise<{ session: SessionRow; user: UserRow | undefined } | undefined>;
  /** Sets last_seen_at when it is older than `staleBefore` (one write a minute, not one per request). */
  touchSession(id: string, at: number, staleBefore: number): Promise<void>;
  endSession(secretHash: string, at: number): Promise<void>;

  addToken(token: TokenRow, audit: AuditEntry): Promise<void>;
  /** The token and its creator (undefined when it has none or the creator was removed). */
  findToken(secretHash: string): Promise<{ token: TokenRow; creator: UserRow | undefined } | undefined>;
  getToken(id: string): Promise<TokenRow | undefined>;
  listTokens(filter: { createdBy?: string | undefined; orgId?: string | undefined }): Promise<TokenRow[]>;
  /** Marks it revoked (kept for the list) with its audit row; undefined when no token has that id. */
  revokeToken(id: string, at: number, audit: (token: TokenRow) => AuditEntry): Promise<TokenRow | undefined>;
  touchToken(id: string, at: number, staleBefore: number): Promise<void>;

  audit(entry: AuditEntry): Promise<void>;
}

/**
 * A transaction's body is a generator that yields its statements: SQLite runs it synchronously
 * inside one BEGIN IMMEDIATE (nothing else of this process can run meanwhile, and a second
 * connection never waits for a lock held across an await), PostgreSQL statement by statement on
 * one connection. `yield* all(…)` / `yield* run(…)` give the rows / the changed-row count.
 */
type Statement = { readonly kind: 'all' | 'run'; readonly sql: string; readonly params: readonly unknown[] };
type Body<T> = Generator<Statement, T, unknown>;

function* all<R>(sql: string, params: readonly unknown[] = []): Body<R[]> {
  return (yield { kind: 'all', sql, params }) as R[];
}
function* run(sql: string, params: readonly unknown[] = []): Body<number> {
  return (yield { kind: 'run', sql, params }) as number;
}

interface Engine {
  /** `body` in one transaction holding the write lock (SQLite) or the row locks it takes (PostgreSQL). */
  transaction<T>(body: () => Body<T>): Promise<T>;
  /** `body`'s statements outside a transaction (reads). */
  read<T>(body: () => Body<T>): Promise<T>;
  /** ' FOR UPDATE' on PostgreSQL; nothing on SQLite (the transaction holds the database's write lock). */
  readonly forUpdate: string;
}

interface UserDbRow {
  id: string;
  email: string;
  name: string;
  role: string;
  org_id: string | null;
  password_hash: string;
  created_at: number | string;
  disabled_at: number | string | null;
  last_sign_in_at: number | string | null;
}
interface SessionDbRow {
  id: string;
  secret_hash: string;
  user_id: string;
  created_at: number | string;
  last_seen_at: number | string;
  expires_at: number | string;
  revoked_at: number | string | null;
  source: string | null;
}
interface TokenDbRow {
  id: string;
  name: string;
  secret_hash: string;
  last5: string;
  scopes: string;
  created_by: string | null;
  org_id: string | null;
  created_at: number | string;
  last_used_at: number | string | null;
  expires_at: number | string | null;
  revoked_at: number | string | null;
}

const num = (v: number | string): number => Number(v);
const numOrNull = (v: number | string | null): number | null => (v === null ? null : Number(v));

const toUser = (r: UserDbRow): UserRow => ({
  id: r.id,
  email: r.email,
  name: r.name,
  role: r.role as Role,
  orgId: r.org_id,
  passwordHash: r.password_hash,
  createdAt: num(r.created_at),
  disabledAt: numOrNull(r.disabled_at),
  lastSignInAt: numOrNull(r.last_sign_in_at),
});
const toSession = (r: SessionDbRow): SessionRow => ({
  id: r.id,
  secretHash: r.secret_hash,
  userId: r.user_id,
  createdAt: num(r.created_at),
  lastSeenAt: num(r.last_seen_at),
  expiresAt: num(r.expires_at),
  revokedAt: numOrNull(r.revoked_at),
  source: r.source,
});
const toToken = (r: TokenDbRow): TokenRow => ({
  id: r.id,
  name: r.name,
  secretHash: r.secret_hash,
  last5: r.last5,
  scopes: JSON.parse(r.scopes) as Scope[],
  createdBy: r.created_by,
  orgId: r.org_id,
  createdAt: num(r.created_at),
  lastUsedAt: numOrNull(r.last_used_at),
  expiresAt: numOrNull(r.expires_at),
  revokedAt: numOrNull(r.revoked_at),
});

const USER_COLUMNS = 'id, email, name, role, org_id, password_hash, created_at, disabled_at, last_sign_in_at';
const USER_PREFIXED = USER_COLUMNS.split(', ')
  .map((c) => `u.${c} AS u_${c}`)
  .join(', ');
const TOKEN_COLUMNS =
  'id, name, secret_hash, last5, scopes, created_by, org_id, created_at, last_used_at, expires_at, revoked_at';
const SESSION_COLUMNS = 'id, secret_hash, user_id, created_at, last_seen_at, expires_at, revoked_at, source';
const AUDIT_SQL = auditInsertSql(sqlitePlaceholder);

/** The joined user's columns (`u_…`) of a row, or undefined when the join found none. */
function joinedUser(r: Record<string, unknown>): UserRow | undefined {
  if (r['u_id'] === null || r['u_id'] === undefined) return undefined;
  const row = Object.fromEntries(USER_COLUMNS.split(', ').map((c) => [c, r[`u_${c}`]])) as unknown as UserDbRow;
  return toUser(row);
}

const isUniqueViolation = (err: unknown): boolean => {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
};
const isMissingTable = (err: unknown): boolean => {
  const e = err as { code?: unknown; message?: unknown };
  return e.code === '42P01' || (typeof e.message === 'string' && e.message.includes('no such table'));
};

class SqlAccessStore implements AccessStore {
  constructor(private readonly db: Engine) {}

  async orgExists(orgId: string): Promise<boolean> {
    try {
      return (await this.db.read(() => all('SELECT 1 AS one FROM organisations WHERE id = ?', [orgId]))).length === 1;
    } catch (err) {
      // A database from before the organisations (migration 6 not filled in yet) knows only the default one.
      if (isMissingTable(err)) return orgId === 'org_default';
      throw err;
    }
  }

  async addUser(user: UserRow, audit: AuditEntry): Promise<void> {
    try {
      await this.db.transaction(function* () {
        yield* run(`INSERT INTO users (${USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
          user.id,
          user.email,
          user.name,
          user.role,
          user.orgId,
          user.passwordHash,
          user.createdAt,
          user.disabledAt,
          user.lastSignInAt,
        ]);
        yield* run(AUDIT_SQL, auditParams(audit));
      });
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new AuthorityError('USER_EXISTS', `a user with the email ${user.email} exists already`);
      }
      throw err;
    }
  }

  async findUser(idOrEmail: string): Promise<UserRow | undefined> {
    const rows = await this.db.read(() =>
      all<UserDbRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id = ? OR email = ?`, [
        idOrEmail,
        idOrEmail.trim().toLowerCase(),
      ]),
    );
    const row = rows.find((r) => r.id === idOrEmail) ?? rows[0];
    return row && toUser(row);
  }

  async listUsers(orgId: string | null | undefined): Promise<UserRow[]> {
    const rows = await this.db.read(() =>
      orgId === undefined
        ? all<UserDbRow>(`SELECT ${USER_COLUMNS} FROM users ORDER BY email`)
        : orgId === null
          ? all<UserDbRow>(`SELECT ${USER_COLUMNS} FROM users WHERE org_id IS NULL ORDER BY email`)
          : all<UserDbRow>(`SELECT ${USER_COLUMNS} FROM users WHERE org_id = ? ORDER BY email`, [orgId]),
    );
    return rows.map(toUser);
  }

  changeUser(id: string, decide: (current: UserRow, enabledOwners: number) => UserChange): Promise<UserRow | null> {
    const forUpdate = this.db.forUpdate;
    return this.db.transaction(function* () {
      // Owners first, in id order (every change takes them in that order: no deadlock), then the user.
      const owners = yield* all<{ id: string }>(
        `SELECT id FROM users WHERE role = 'owner' AND disabled_at IS NULL ORDER BY id${forUpdate}`,
      );
      const current = (yield* all<UserDbRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?${forUpdate}`, [id]))[0];
      if (!current) throw new AuthorityError('USER_NOT_FOUND', `no user has the id ${id}`);
      const change = decide(toUser(current), owners.length);
      const next = change.next;
      if (next === null) {
        yield* run('DELETE FROM users WHERE id = ?', [id]);
        yield* run('DELETE FROM sessions WHERE user_id = ?', [id]);
        // Their tokens would stop anyway (no creator); marked revoked, lists say so.
        yield* run('UPDATE api_tokens SET revoked_at = ? WHERE created_by = ? AND revoked_at IS NULL', [
          change.audit.at,
          id,
        ]);
      } else {
        yield* run(
          'UPDATE users SET name = ?, role = ?, password_hash = ?, disabled_at = ?, last_sign_in_at = ? WHERE id = ?',
          [next.name, next.role, next.passwordHash, next.disabledAt, next.lastSignInAt, id],
        );
        const except = change.endSessions?.except;
        if (change.endSessions && except === undefined) {
          yield* run('UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL', [
            change.audit.at,
            id,
          ]);
        } else if (change.endSessions) {
          yield* run('UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND id <> ?', [
            change.audit.at,
            id,
            except,
          ]);
        }
      }
      yield* run(AUDIT_SQL, auditParams(change.audit));
      return next;
    });
  }

  beginAttempt(subject: string, now: number, policy: AttemptPolicy): Promise<number> {
    const forUpdate = this.db.forUpdate;
    return this.db.transaction(function* () {
      yield* run(
        'INSERT INTO sign_in_failures (subject, failed_count, first_failed_at, locked_until) VALUES (?, 0, ?, NULL) ON CONFLICT (subject) DO NOTHING',
        [subject, now],
      );
      const row = (yield* all<{
        failed_count: number;
        first_failed_at: number | string;
        locked_until: number | string | null;
      }>(`SELECT failed_count, first_failed_at, locked_until FROM sign_in_failures WHERE subject = ?${forUpdate}`, [
        subject,
      ]))[0];
      if (!row) return 0;
      const lockedUntil = numOrNull(row.locked_until);
      if (lockedUntil !== null && lockedUntil > now) return lockedUntil - now;
      let count = Number(row.failed_count);
      let first = num(row.first_failed_at);
      if (lockedUntil !== null || first + policy.windowMs <= now) {
        count = 0; // a lock that ended, or failures long ago: a new window
        first = now;
      }
      if (count >= policy.max) {
        // Attempts in flight took the last ones: locked from now.
        yield* run('UPDATE sign_in_failures SET failed_count = 0, locked_until = ? WHERE subject = ?', [
          now + policy.lockMs,
          subject,
        ]);
        return policy.lockMs;
      }
      yield* run(
        'UPDATE sign_in_failures SET failed_count = ?, first_failed_at = ?, locked_until = NULL WHERE subject = ?',
        [count + 1, first, subject],
      );
      return 0;
    });
  }

  failAttempt(subject: string, now: number, policy: AttemptPolicy): Promise<void> {
    const forUpdate = this.db.forUpdate;
    return this.db.transaction(function* () {
      const row = (yield* all<{ failed_count: number; locked_until: number | string | null }>(
        `SELECT failed_count, locked_until FROM sign_in_failures WHERE subject = ?${forUpdate}`,
        [subject],
      ))[0];
      if (!row || Number(row.failed_count) < policy.max) return; // counted when it began
      const lockedUntil = numOrNull(row.locked_until);
      if (lockedUntil !== null && lockedUntil > now) return;
      yield* run('UPDATE sign_in_failures SET failed_count = 0, locked_until = ? WHERE subject = ?', [
        now + policy.lockMs,
        subject,
      ]);
    });
  }

  async clearAttempts(subject: string): Promise<void> {
    // Not while locked: an attempt that began before the lock does not lift it.
    await this.db.transaction(() =>
      run('DELETE FROM sign_in_failures WHERE subject = ? AND locked_until IS NULL', [subject]),
    );
  }

  async prune(before: number, now: number, sessionIdle: number): Promise<void> {
    await this.db.transaction(function* () {
      yield* run(
        'DELETE FROM sign_in_failures WHERE first_failed_at < ? AND (locked_until IS NULL OR locked_until <= ?)',
        [before, now],
      );
      yield* run('DELETE FROM sessions WHERE revoked_at IS NOT NULL OR expires_at <= ? OR last_seen_at <= ?', [
        now,
        now - sessionIdle,
      ]);
    });
  }

  addSession(session: SessionRow, dead: { idle: number; now: number }, audit: AuditEntry): Promise<void> {
    return this.db.transaction(function* () {
      yield* run(
        'DELETE FROM sessions WHERE user_id = ? AND (revoked_at IS NOT NULL OR expires_at <= ? OR last_seen_at <= ?)',
        [session.userId, dead.now, dead.now - dead.idle],
      );
      yield* run(`INSERT INTO sessions (${SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [
        session.id,
        session.secretHash,
        session.userId,
        session.createdAt,
        session.lastSeenAt,
        session.expiresAt,
        session.revokedAt,
        session.source,
      ]);
      yield* run('UPDATE users SET last_sign_in_at = ? WHERE id = ?', [session.createdAt, session.userId]);
      yield* run(AUDIT_SQL, auditParams(audit));
    });
  }

  async findSession(secretHash: string): Promise<{ session: SessionRow; user: UserRow | undefined } | undefined> {
    const cols = SESSION_COLUMNS.split(', ')
      .map((c) => `s.${c}`)
      .join(', ');
    const rows = await this.db.read(() =>
      all<SessionDbRow & Record<string, unknown>>(
        `SELECT ${cols}, ${USER_PREFIXED} FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.secret_hash = ?`,
        [secretHash],
      ),
    );
    const row = rows[0];
    return row && { session: toSession(row), user: joinedUser(row) };
  }

  async touchSession(id: string, at: number, staleBefore: number): Promise<void> {
    await this.db.transaction(() =>
      run('UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?', [at, id, staleBefore]),
    );
  }

  async endSession(secretHash: string, at: number): Promise<void> {
    await this.db.transaction(() =>
      run('UPDATE sessions SET revoked_at = ? WHERE secret_hash = ? AND revoked_at IS NULL', [at, secretHash]),
    );
  }

  async addToken(token: TokenRow, audit: AuditEntry): Promise<void> {
    await this.db.transaction(function* () {
      yield* run(`INSERT INTO api_tokens (${TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
        token.id,
        token.name,
        token.secretHash,
        token.last5,
        JSON.stringify(token.scopes),
        token.createdBy,
        token.orgId,
        token.createdAt,
        token.lastUsedAt,
        token.expiresAt,
        token.revokedAt,
      ]);
      yield* run(AUDIT_SQL, auditParams(audit));
    });
  }

  async findToken(secretHash: string): Promise<{ token: TokenRow; creator: UserRow | undefined } | undefined> {
    const cols = TOKEN_COLUMNS.split(', ')
      .map((c) => `t.${c}`)
      .join(', ');
    const rows = await this.db.read(() =>
      all<TokenDbRow & Record<string, unknown>>(
        `SELECT ${cols}, ${USER_PREFIXED} FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by WHERE t.secret_hash = ?`,
        [secretHash],
      ),
    );
    const row = rows[0];
    return row && { token: toToken(row), creator: joinedUser(row) };
  }

  async getToken(id: string): Promise<TokenRow | undefined> {
    const row = (
      await this.db.read(() => all<TokenDbRow>(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE id = ?`, [id]))
    )[0];
    return row && toToken(row);
  }

  async listTokens(filter: { createdBy?: string | undefined; orgId?: string | undefined }): Promise<TokenRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.createdBy !== undefined) {
      where.push('created_by = ?');
      params.push(filter.createdBy);
    }
    if (filter.orgId !== undefined) {
      where.push('org_id = ?');
      params.push(filter.orgId);
    }
    const rows = await this.db.read(() =>
      all<TokenDbRow>(
        `SELECT ${TOKEN_COLUMNS} FROM api_tokens${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`,
        params,
      ),
    );
    return rows.map(toToken);
  }

  revokeToken(id: string, at: number, audit: (token: TokenRow) => AuditEntry): Promise<TokenRow | undefined> {
    const forUpdate = this.db.forUpdate;
    return this.db.transaction(function* () {
      const row = (yield* all<TokenDbRow>(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE id = ?${forUpdate}`, [id]))[0];
      if (!row) return undefined;
      const before = toToken(row);
      if (before.revokedAt !== null) return before; // revoked already: nothing to write
      yield* run('UPDATE api_tokens SET revoked_at = ? WHERE id = ?', [at, id]);
      const after = { ...before, revokedAt: at };
      yield* run(AUDIT_SQL, auditParams(audit(after)));
      return after;
    });
  }

  async touchToken(id: string, at: number, staleBefore: number): Promise<void> {
    await this.db.transaction(() =>
      run('UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)', [
        at,
        id,
        staleBefore,
      ]),
    );
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.db.transaction(() => run(AUDIT_SQL, auditParams(entry)));
  }
}

/** Runs a body's statements as they come, with `exec` answering each (synchronously on SQLite). */
function drive<T>(body: Body<T>, exec: (s: Statement) => unknown): T {
  let step = body.next();
  while (!step.done) step = body.next(exec(step.value));
  return step.value;
}

async function driveAsync<T>(body: Body<T>, exec: (s: Statement) => Promise<unknown>): Promise<T> {
  let step = body.next();
  while (!step.done) step = body.next(await exec(step.value));
  return step.value;
}

/**
 * SQLite: the authority store's connection and write queue; a transaction is one synchronous
 * BEGIN IMMEDIATE … COMMIT inside the queue (another process waits for the database's write lock).
 */
export class SqliteAccessStore extends SqlAccessStore {
  constructor(
    db: Database.Database,
    serial: <T>(run: () => Promise<T>) => Promise<T>,
    mapError: (err: unknown) => unknown,
  ) {
    const statements = new Map<string, Database.Statement>();
    const exec = (s: Statement): unknown => {
      let st = statements.get(s.sql);
      if (!st) statements.set(s.sql, (st = db.prepare(s.sql)));
      return s.kind === 'all' ? st.all(...s.params) : st.run(...s.params).changes;
    };
    const guard = async <T>(work: () => T | Promise<T>): Promise<T> => {
      try {
        return await work();
      } catch (err) {
        throw mapError(err);
      }
    };
    super({
      forUpdate: '',
      read: (body) => guard(() => drive(body(), exec)),
      transaction: (body) => guard(() => serial(async () => db.transaction(() => drive(body(), exec)).immediate())),
    });
  }
}

/** `?` placeholders as PostgreSQL's `$1, $2, …` (the access module's SQL has no `?` in literals). */
const dollars = (text: string): string => {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
};

/** PostgreSQL: the store's guarded pool; FOR UPDATE row locks order changes between nodes. */
export class PostgresAccessStore extends SqlAccessStore {
  constructor(pgAccess: PostgresAccess) {
    const on =
      (query: (sql: string, params: unknown[]) => Promise<pg.QueryResult>) =>
      async (s: Statement): Promise<unknown> => {
        const result = await query(dollars(s.sql), [...s.params]);
        return s.kind === 'all' ? result.rows : (result.rowCount ?? 0);
      };
    super({
      forUpdate: ' FOR UPDATE',
      read: (body) =>
        driveAsync(
          body(),
          on((sql, params) => pgAccess.query(sql, params)),
        ),
      transaction: (body) =>
        pgAccess.transaction((client) =>
          driveAsync(
            body(),
            on((sql, params) => client.query(sql, params)),
          ),
        ),
    });
  }
}
