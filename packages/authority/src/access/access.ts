import { createHash, randomBytes } from 'node:crypto';
import { DAY, HOUR, MINUTE, type Clock } from '@volact/core';
import { AuthorityError } from '../errors.js';
import type { AuditEntry } from '../store.js';
import type { AccessStore, AttemptPolicy, TokenRow, UserRow } from './access-store.js';
import { DEFAULT_PASSWORD_COST, checkPasswordRules, hashPassword, verifyPassword } from './password.js';
import {
  ORG_ROLES,
  PUBLISHER_ROLES,
  holds,
  isOrgId,
  isValidScope,
  scopeGrants,
  scopesOfRole,
  seesOrg,
  type Principal,
  type Role,
  type Scope,
} from './principal.js';
import type { AccessApi, ApiTokenInfo, SignIn, User, UserInput } from './types.js';

/**
 * People and credentials (docs/portal.md "People, sessions and tokens"): users with scrypt
 * passwords, web sessions and API tokens, all kept in the authority's database so that every
 * node sees them and they survive a restart. Secrets are stored as hashes and shown once; an
 * audit row or an error names at most a token's last five characters.
 */

/** A session ends after 12 hours without a request, and 7 days after sign-in whatever happens. */
export const SESSION_IDLE_MS = 12 * HOUR;
export const SESSION_ABSOLUTE_MS = 7 * DAY;
/** last_seen_at / last_used_at are written at most once a minute per session or token. */
const TOUCH_INTERVAL_MS = MINUTE;
/** Per account (every node, across restarts): 5 failed sign-ins within 15 minutes lock it for 15 minutes. */
export const ACCOUNT_ATTEMPTS: AttemptPolicy = { max: 5, windowMs: 15 * MINUTE, lockMs: 15 * MINUTE };
/** Per source address (this node): 20 failed sign-ins a minute. */
export const SOURCE_FAILURES_PER_MINUTE = 20;
/** Old failure counts (emails an attacker guessed) and dead sessions are deleted every this many attempts. */
const PRUNE_EVERY = 100;

export interface AccessOptions {
  readonly store: AccessStore;
  readonly clock: Clock;
  /** log2 of scrypt's N for new passwords (default 15; tests use 10). */
  readonly passwordCost?: number | undefined;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const TOKEN_RE = /^vat_[a-z2-7]{32}$/;
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
/** Whether the text holds a control character (a name shown in lists and the audit log must not). */
const hasControl = (text: string): boolean => [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function base32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

const toUser = (u: UserRow): User => ({
  id: u.id,
  email: u.email,
  name: u.name,
  role: u.role,
  orgId: u.orgId,
  createdAt: iso(u.createdAt) as string,
  disabledAt: iso(u.disabledAt),
  lastSignInAt: iso(u.lastSignInAt),
});

const toInfo = (t: TokenRow): ApiTokenInfo => ({
  id: t.id,
  name: t.name,
  last5: t.last5,
  scopes: [...t.scopes],
  createdBy: t.createdBy,
  orgId: t.orgId,
  createdAt: iso(t.createdAt) as string,
  lastUsedAt: iso(t.lastUsedAt),
  expiresAt: iso(t.expiresAt),
  revokedAt: iso(t.revokedAt),
});

const fail = (code: ConstructorParameters<typeof AuthorityError>[0], message: string, field?: string) => {
  const err = new AuthorityError(code, message);
  if (field !== undefined) err.field = field;
  return err;
};

/** 403 SCOPE_MISSING naming the scope (`scope` on the error for the API's body). */
export function scopeMissing(by: Principal, scope: Scope): AuthorityError {
  const err = fail('SCOPE_MISSING', `${by.name} lacks the scope this needs: ${scope}`);
  (err as AuthorityError & { scope?: string }).scope = scope;
  return err;
}

const isPublisherRole = (role: Role) => (PUBLISHER_ROLES as readonly string[]).includes(role);
const isRole = (role: unknown): role is Role =>
  typeof role === 'string' && ([...PUBLISHER_ROLES, ...ORG_ROLES] as readonly string[]).includes(role);

/** Failed sign-ins per source address on this node: a fixed one-minute window, attempts in flight counted. */
class SourceThrottle {
  readonly #windows = new Map<string, { start: number; count: number; refusedOnce: boolean }>();
  constructor(
    private readonly perMinute: number,
    private readonly clock: Clock,
    private readonly maxSources = 100_000,
  ) {}

  #window(source: string) {
    const now = this.clock.now();
    const start = now - (now % MINUTE);
    const id = sha256(source);
    let w = this.#windows.get(id);
    if (!w || w.start !== start) {
      if (this.#windows.size >= this.maxSources) {
        for (const [k, v] of this.#windows)
          if (v.start !== start || this.#windows.size >= this.maxSources) this.#windows.delete(k);
      }
      w = { start, count: 0, refusedOnce: false };
      this.#windows.set(id, w);
    }
    return { w, wait: start + MINUTE - now };
  }

  /** Counts one attempt: 0, or the ms to wait (then `first` says whether it is the window's first refusal). */
  reserve(source: string): { wait: number; first: boolean } {
    const { w, wait } = this.#window(source);
    if (w.count >= this.perMinute) {
      const first = !w.refusedOnce;
      w.refusedOnce = true;
      return { wait, first };
    }
    w.count += 1;
    return { wait: 0, first: false };
  }

  /** The attempt succeeded: it does not count as a failure. */
  release(source: string): void {
    const { w } = this.#window(source);
    if (w.count > 0) w.count -= 1;
  }
}

export class Access implements AccessApi {
  readonly #store: AccessStore;
  readonly #clock: Clock;
  readonly #cost: number;
  readonly #sources: SourceThrottle;
  /** Sign-in attempts on this node (every PRUNE_EVERY-th prunes old failure counts and dead sessions). */
  #attempts = 0;
  /** A hash no password matches, checked for an unknown email: the answer takes as long as for a known one. */
  #decoy: Promise<string> | undefined;

  constructor(options: AccessOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#cost = options.passwordCost ?? DEFAULT_PASSWORD_COST;
    this.#sources = new SourceThrottle(SOURCE_FAILURES_PER_MINUTE, options.clock);
  }

  #audit(action: string, result: string, actor: string, detail: string, orgId: string | null = null): AuditEntry {
    // The actor and organisation columns (migration 6) are written by audit-sql.ts.
    const entry = { at: this.#clock.now(), action, result, actor, orgId, detail: detail.slice(0, 300) };
    return entry;
  }

  // ---- users ----

  /** May `by` manage users at this level (null: publisher users)? Otherwise SCOPE_MISSING, or 404 for an organisation it cannot see. */
  #mayManage(by: Principal, orgId: string | null, notFound: () => AuthorityError): void {
    const needed = orgId === null ? 'publisher:users' : `org:${orgId}:users`;
    if (holds(by, needed)) return;
    const visible = orgId === null ? by.scopes.some((s) => s.startsWith('publisher:')) : seesOrg(by, orgId);
    throw visible ? scopeMissing(by, needed) : notFound();
  }

  async addUser(input: UserInput, by: Principal): Promise<User> {
    const email = checkEmail(input.email);
    const name = checkName(input.name);
    if (!isRole(input.role)) {
      throw fail('USER_INVALID', `the role must be one of ${[...PUBLISHER_ROLES, ...ORG_ROLES].join(', ')}`, 'role');
    }
    const role = input.role;
    const orgId = input.orgId ?? null;
    if (isPublisherRole(role)) {
      if (orgId !== null) {
        throw fail(
          'USER_INVALID',
          `a ${role} is a publisher user: give no organisation (org-admin or viewer belong to one)`,
          'orgId',
        );
      }
    } else {
      if (orgId === null)
        throw fail('USER_INVALID', `an ${role} belongs to an organisation: give its id (org_…)`, 'orgId');
      if (typeof orgId !== 'string' || !isOrgId(orgId)) {
        throw fail('ORG_NOT_FOUND', `no organisation has the id ${String(orgId).slice(0, 60)}`, 'orgId');
      }
    }
    const orgNotFound = () => fail('ORG_NOT_FOUND', `no organisation has the id ${orgId}`, 'orgId');
    this.#mayManage(by, orgId, orgId === null ? () => scopeMissing(by, 'publisher:users') : orgNotFound);
    if (orgId !== null && !(await this.#store.orgExists(orgId))) throw orgNotFound();
    checkPasswordRules(input.password);
    const now = this.#clock.now();
    const row: UserRow = {
      id: `usr_${randomBytes(12).toString('hex')}`,
      email,
      name,
      role,
      orgId,
      passwordHash: await hashPassword(input.password, this.#cost),
      createdAt: now,
      disabledAt: null,
      lastSignInAt: null,
    };
    await this.#store.addUser(
      row,
      this.#audit('user.add', 'OK', by.name, `${email} (${row.id}) as ${role}${orgId ? ` of ${orgId}` : ''}`, orgId),
    );
    return toUser(row);
  }

  async listUsers(filter: { orgId?: string | null }): Promise<User[]> {
    return (await this.#store.listUsers(filter.orgId)).map(toUser);
  }

  async getUser(idOrEmail: string): Promise<User> {
    return toUser(await this.#user(idOrEmail));
  }

  async #user(idOrEmail: string): Promise<UserRow> {
    const user = typeof idOrEmail === 'string' ? await this.#store.findUser(idOrEmail) : undefined;
    if (!user) throw fail('USER_NOT_FOUND', `no user has the id or email ${String(idOrEmail).slice(0, 100)}`);
    return user;
  }

  /** The user as `by` may see it: one of an organisation it cannot see is USER_NOT_FOUND. */
  async #managed(id: string, by: Principal): Promise<UserRow> {
    const user = await this.#user(id);
    this.#mayManage(by, user.orgId, () => fail('USER_NOT_FOUND', `no user has the id or email ${id.slice(0, 100)}`));
    return user;
  }

  async updateUser(
    id: string,
    patch: { name?: string; role?: Role; disabled?: boolean; password?: string },
    by: Principal,
  ): Promise<User> {
    const before = await this.#managed(id, by);
    const name = patch.name === undefined ? undefined : checkName(patch.name);
    if (patch.role !== undefined) {
      if (!isRole(patch.role)) {
        throw fail('USER_INVALID', `the role must be one of ${[...PUBLISHER_ROLES, ...ORG_ROLES].join(', ')}`, 'role');
      }
      if (isPublisherRole(patch.role) !== isPublisherRole(before.role)) {
        throw fail(
          'USER_INVALID',
          `${before.email} is ${before.orgId ? `a user of ${before.orgId}` : 'a publisher user'}: a ${patch.role} would be ${isPublisherRole(patch.role) ? 'a publisher user' : "an organisation's"}; remove the user and add them again`,
          'role',
        );
      }
    }
    if (patch.disabled !== undefined && typeof patch.disabled !== 'boolean') {
      throw fail('USER_INVALID', 'disabled must be true or false', 'disabled');
    }
    let passwordHash: string | undefined;
    if (patch.password !== undefined) {
      checkPasswordRules(patch.password);
      passwordHash = await hashPassword(patch.password, this.#cost);
    }
    const now = this.#clock.now();
    const next = await this.#store.changeUser(before.id, (current, owners) => {
      const role = patch.role ?? current.role;
      const disabledAt =
        patch.disabled === undefined ? current.disabledAt : patch.disabled ? (current.disabledAt ?? now) : null;
      const wasOwner = current.role === 'owner' && current.disabledAt === null;
      const isOwner = role === 'owner' && disabledAt === null;
      if (wasOwner && !isOwner && owners <= 1) {
        throw fail(
          'LAST_OWNER',
          `${current.email} is the last enabled owner: make another user owner first (an authority needs one to manage its people)`,
        );
      }
      const changed = [
        name !== undefined && name !== current.name ? 'name' : '',
        role !== current.role ? `role ${current.role}→${role}` : '',
        disabledAt !== current.disabledAt ? (disabledAt === null ? 'enabled' : 'disabled') : '',
        passwordHash !== undefined ? 'password set' : '',
      ].filter(Boolean);
      const ownSession = by.kind === 'user' && by.userId === current.id ? by.sessionId : undefined;
      return {
        next: {
          ...current,
          name: name ?? current.name,
          role,
          disabledAt,
          passwordHash: passwordHash ?? current.passwordHash,
        },
        audit: this.#audit(
          'user.update',
          'OK',
          by.name,
          `${current.email} (${current.id}): ${changed.join(', ') || 'nothing changed'}`,
          current.orgId,
        ),
        // Disabled: every session ends. A new password: every other session (a stolen one among them).
        endSessions:
          disabledAt !== null && current.disabledAt === null
            ? {}
            : passwordHash !== undefined
              ? { except: ownSession }
              : undefined,
      };
    });
    return toUser(next as UserRow);
  }

  async removeUser(id: string, by: Principal): Promise<void> {
    const before = await this.#managed(id, by);
    await this.#store.changeUser(before.id, (current, owners) => {
      if (current.role === 'owner' && current.disabledAt === null && owners <= 1) {
        throw fail(
          'LAST_OWNER',
          `${current.email} is the last enabled owner: make another user owner first (an authority needs one to manage its people)`,
        );
      }
      return {
        next: null,
        audit: this.#audit(
          'user.remove',
          'OK',
          by.name,
          `${current.email} (${current.id}), ${current.role}`,
          current.orgId,
        ),
      };
    });
  }

  // ---- sign-in ----

  #throttled(waitMs: number): AuthorityError {
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    const err = fail(
      'LOGIN_THROTTLED',
      `too many failed sign-ins for this account or from this address: try again in ${seconds} seconds`,
    );
    err.retryAfterSeconds = seconds;
    return err;
  }

  /**
   * Checks a password under both throttles: the source's (this node, in memory) and the
   * account's (the database, every node): an attempt is counted before the password is checked,
   * so many attempts at once cannot slip past the limit. The answer is the same whether or not
   * a user has the email.
   */
  async #checkPassword(
    email: string,
    password: unknown,
    source: string,
    action: string,
    wrongCode: 'LOGIN_FAILED' | 'PASSWORD_WRONG',
  ): Promise<UserRow> {
    const now = this.#clock.now();
    const src = typeof source === 'string' && source ? source.slice(0, 100) : 'unknown';
    const bySource = this.#sources.reserve(src);
    if (bySource.wait > 0) {
      if (bySource.first) {
        await this.#store.audit(
          this.#audit(action, 'LOGIN_THROTTLED', 'unknown', `source ${src}: too many failures this minute`),
        );
      }
      throw this.#throttled(bySource.wait);
    }
    const subject = `account:${sha256(email)}`;
    if (++this.#attempts % PRUNE_EVERY === 0) {
      const horizon = now - Math.max(ACCOUNT_ATTEMPTS.windowMs, ACCOUNT_ATTEMPTS.lockMs);
      await this.#store.prune(horizon, now, SESSION_IDLE_MS);
    }
    const wait = await this.#store.beginAttempt(subject, now, ACCOUNT_ATTEMPTS);
    if (wait > 0) {
      const known = EMAIL_RE.test(email) ? await this.#store.findUser(email) : undefined;
      await this.#store.audit(
        this.#audit(
          action,
          'LOGIN_THROTTLED',
          known?.email ?? 'unknown',
          `source ${src}: account locked`,
          known?.orgId ?? null,
        ),
      );
      throw this.#throttled(wait);
    }
    const decoy = await this.#decoyHash(); // made once, before either answer: the first unknown email is not slower
    const user = EMAIL_RE.test(email) ? await this.#store.findUser(email) : undefined;
    const good =
      typeof password === 'string' &&
      (await verifyPassword(password, user?.passwordHash ?? decoy)) &&
      user !== undefined &&
      user.email === email &&
      user.disabledAt === null;
    if (!good || !user) {
      await this.#store.failAttempt(subject, this.#clock.now(), ACCOUNT_ATTEMPTS);
      const why = !user ? 'no such user' : user.disabledAt !== null ? 'user disabled' : 'wrong password';
      await this.#store.audit(
        this.#audit(action, wrongCode, user ? user.email : 'unknown', `source ${src}: ${why}`, user?.orgId ?? null),
      );
      throw wrongCode === 'LOGIN_FAILED'
        ? fail('LOGIN_FAILED', 'wrong email or password')
        : fail('PASSWORD_WRONG', 'the password is wrong: enter the password you sign in with', 'password');
    }
    await this.#store.clearAttempts(subject);
    this.#sources.release(src);
    return user;
  }

  #decoyHash(): Promise<string> {
    this.#decoy ??= hashPassword(randomBytes(16).toString('hex'), this.#cost);
    return this.#decoy;
  }

  async signIn(input: { email: string; password: string; source: string }): Promise<SignIn> {
    const email = typeof input.email === 'string' ? input.email.trim().toLowerCase().slice(0, 320) : '';
    const user = await this.#checkPassword(email, input.password, input.source, 'session.sign_in', 'LOGIN_FAILED');
    const secret = randomBytes(32).toString('base64url');
    const now = this.#clock.now();
    const expiresAt = now + SESSION_ABSOLUTE_MS;
    const src = typeof input.source === 'string' ? input.source.slice(0, 100) : null;
    await this.#store.addSession(
      {
        id: `ses_${randomBytes(12).toString('hex')}`,
        secretHash: sha256(secret),
        userId: user.id,
        createdAt: now,
        lastSeenAt: now,
        expiresAt,
        revokedAt: null,
        source: src,
      },
      { idle: SESSION_IDLE_MS, now },
      this.#audit('session.sign_in', 'OK', user.email, `source ${src ?? 'unknown'}`, user.orgId),
    );
    return {
      session: secret,
      user: toUser({ ...user, lastSignInAt: now }),
      expiresAt: new Date(expiresAt).toISOString(),
    };
  }

  async signOut(session: string): Promise<void> {
    if (typeof session !== 'string' || session === '') return;
    await this.#store.endSession(sha256(session), this.#clock.now());
  }

  async confirmPassword(userId: string, password: string, source: string): Promise<void> {
    const user = await this.#store.findUser(userId);
    if (!user || user.id !== userId)
      throw fail('PASSWORD_WRONG', 'the password is wrong: enter the password you sign in with', 'password');
    await this.#checkPassword(user.email, password, source, 'session.confirm_password', 'PASSWORD_WRONG');
  }

  async authenticate(credentials: { bearer?: string; session?: string }): Promise<Principal> {
    const now = this.#clock.now();
    if (credentials.bearer !== undefined) return this.#token(credentials.bearer, now);
    if (credentials.session !== undefined) return this.#session(credentials.session, now);
    throw fail('UNAUTHORIZED', 'no credentials: sign in, or send Authorization: Bearer <API token>');
  }

  async #session(secret: string, now: number): Promise<Principal> {
    const expired = () => fail('SESSION_EXPIRED', 'the session ended (signed out, expired or revoked): sign in again');
    if (typeof secret !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(secret)) throw expired();
    const found = await this.#store.findSession(sha256(secret));
    if (!found) throw expired();
    const { session, user } = found;
    if (
      session.revokedAt !== null ||
      now >= session.expiresAt ||
      now - session.lastSeenAt >= SESSION_IDLE_MS ||
      !user ||
      user.disabledAt !== null
    ) {
      throw expired();
    }
    if (session.lastSeenAt <= now - TOUCH_INTERVAL_MS) {
      await this.#store.touchSession(session.id, now, now - TOUCH_INTERVAL_MS);
    }
    return {
      kind: 'user',
      id: user.id,
      name: user.email,
      userId: user.id,
      orgId: user.orgId,
      role: user.role,
      scopes: scopesOfRole(user.role, user.orgId),
      sessionId: session.id,
    };
  }

  async #token(bearer: string, now: number): Promise<Principal> {
    const refused = (why: string) =>
      fail('UNAUTHORIZED', `the API token ${why}: make a new one (volact authority token create)`);
    if (typeof bearer !== 'string' || !TOKEN_RE.test(bearer)) throw refused('is not one this authority makes (vat_…)');
    const found = await this.#store.findToken(sha256(bearer));
    if (!found) throw refused('is unknown');
    const { token, creator } = found;
    if (token.revokedAt !== null) throw refused(`…${token.last5} was revoked`);
    if (token.expiresAt !== null && now >= token.expiresAt) throw refused(`…${token.last5} has expired`);
    let scopes: Scope[] = [...token.scopes];
    if (token.createdBy !== null) {
      // A token never holds more than its creator holds now: demoted, it shrinks; disabled or removed, it stops.
      if (!creator || creator.disabledAt !== null)
        throw refused(`…${token.last5} belongs to a user who was disabled or removed`);
      const held = scopesOfRole(creator.role, creator.orgId);
      scopes = scopes.filter((s) => held.some((h) => scopeGrants(h, s)));
    }
    if (token.lastUsedAt === null || token.lastUsedAt <= now - TOUCH_INTERVAL_MS) {
      await this.#store.touchToken(token.id, now, now - TOUCH_INTERVAL_MS);
    }
    return {
      kind: 'token',
      id: token.id,
      name: `token:${token.name}…${token.last5}`,
      userId: token.createdBy,
      orgId: token.orgId,
      role: null,
      scopes,
    };
  }

  // ---- API tokens ----

  async createToken(
    input: { name: string; scopes: readonly Scope[]; expiresAt?: number },
    by: Principal,
  ): Promise<{ token: string; info: ApiTokenInfo }> {
    const name = typeof input.name === 'string' ? input.name.trim() : '';
    if (name === '' || name.length > 100 || hasControl(name)) {
      throw fail('TOKEN_INVALID', 'the token name must be 1 to 100 characters (no control characters)', 'name');
    }
    if (by.kind === 'token') {
      throw fail(
        'TOKEN_INVALID',
        'an API token cannot make API tokens: sign in to the portal, or use the admin token or the CLI on the data directory',
      );
    }
    if (!Array.isArray(input.scopes) || input.scopes.length === 0 || input.scopes.length > 50) {
      throw fail('TOKEN_INVALID', 'give 1 to 50 scopes (publisher:read, org:<id>:read, …)', 'scopes');
    }
    const scopes = [...new Set(input.scopes as readonly unknown[])] as Scope[];
    for (const s of scopes) {
      if (typeof s !== 'string' || !isValidScope(s)) {
        throw fail(
          'TOKEN_INVALID',
          `${JSON.stringify(String(s).slice(0, 80))} is not a scope: publisher:<right> or org:<org id>:<right> (docs/portal.md)`,
          'scopes',
        );
      }
      if (!holds(by, s))
        throw fail(
          'TOKEN_INVALID',
          `${by.name} does not hold the scope ${s}: a token holds at most its creator's scopes`,
          'scopes',
        );
    }
    const orgs = new Set(scopes.map((s) => /^org:([^:]+):/.exec(s)?.[1] ?? null));
    for (const o of orgs) {
      if (o !== null && !(await this.#store.orgExists(o)))
        throw fail('ORG_NOT_FOUND', `no organisation has the id ${o}`, 'scopes');
    }
    const orgId = orgs.size === 1 ? ([...orgs][0] ?? null) : null;
    const now = this.#clock.now();
    if (input.expiresAt !== undefined && (!Number.isSafeInteger(input.expiresAt) || input.expiresAt <= now)) {
      throw fail('TOKEN_INVALID', 'the expiry must be a time in the future', 'expiresAt');
    }
    const token = `vat_${base32(randomBytes(20))}`;
    const row: TokenRow = {
      id: `tok_${randomBytes(12).toString('hex')}`,
      name,
      secretHash: sha256(token),
      last5: token.slice(-5),
      scopes,
      createdBy: by.kind === 'user' ? by.userId : null,
      orgId,
      createdAt: now,
      lastUsedAt: null,
      expiresAt: input.expiresAt ?? null,
      revokedAt: null,
    };
    await this.#store.addToken(
      row,
      this.#audit('token.create', 'OK', by.name, `${row.id} "${name}" …${row.last5}: ${scopes.join(' ')}`, orgId),
    );
    return { token, info: toInfo(row) };
  }

  async listTokens(filter: { createdBy?: string; orgId?: string }): Promise<ApiTokenInfo[]> {
    return (await this.#store.listTokens(filter)).map(toInfo);
  }

  async revokeToken(id: string, by: Principal): Promise<ApiTokenInfo> {
    const notFound = () => fail('TOKEN_NOT_FOUND', `no API token has the id ${String(id).slice(0, 60)}`);
    const token = typeof id === 'string' ? await this.#store.getToken(id) : undefined;
    if (!token) throw notFound();
    const own = by.kind === 'user' && by.userId !== null && by.userId === token.createdBy;
    const may = own || holds(by, 'publisher:users') || (token.orgId !== null && holds(by, `org:${token.orgId}:tokens`));
    if (!may) {
      if (token.orgId !== null && seesOrg(by, token.orgId)) throw scopeMissing(by, `org:${token.orgId}:tokens`);
      throw notFound();
    }
    const after = await this.#store.revokeToken(token.id, this.#clock.now(), (t) =>
      this.#audit('token.revoke', 'OK', by.name, `${t.id} "${t.name}" …${t.last5}`, t.orgId),
    );
    if (!after) throw notFound();
    return toInfo(after);
  }
}

function checkEmail(email: unknown): string {
  const e = typeof email === 'string' ? email.trim().toLowerCase() : '';
  if (!EMAIL_RE.test(e) || e.length > 254) {
    throw fail('USER_INVALID', 'the email must be an address like name@example.com (at most 254 characters)', 'email');
  }
  return e;
}

function checkName(name: unknown): string {
  const n = typeof name === 'string' ? name.trim() : '';
  if (n === '' || n.length > 200 || hasControl(n)) {
    throw fail('USER_INVALID', "the user's name must be 1 to 200 characters (no control characters)", 'name');
  }
  return n;
}
