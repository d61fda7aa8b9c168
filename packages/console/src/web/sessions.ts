import { randomBytes } from 'node:crypto';
import { DAY, MINUTE, sha256, type Clock } from '@volact/core';
import type { WebStateStore } from '../web-state/store.js';
import type { UserRole } from './contract.js';

export const SESSION_COOKIE = 'volact_session';
/** A session ends after this long without a request (OWASP session management: idle timeout). */
export const SESSION_IDLE_MS = 30 * MINUTE;
/** …and after this long whatever happens (absolute timeout). */
export const SESSION_MAX_MS = 12 * 60 * MINUTE;
/** Sessions kept at once; the least recently used go first beyond this. */
export const MAX_SESSIONS = 1_000;
/**
 * …and per user: logins are not limited once the password is right, so without this one user
 * (a viewer) logging in again and again would push every other user's session out.
 */
export const MAX_SESSIONS_PER_USER = 20;
/** A session's last use is written at most this often (each request would otherwise write). */
const TOUCH_EVERY_MS = 5_000;

export interface Session {
  readonly user: string;
  /** The user's role as stored NOW (read with the session: a role change takes effect at once). */
  readonly role: UserRole;
  readonly createdAt: number;
  readonly lastUsedAt: number;
}

const digest = (token: string) => sha256(Buffer.from(token, 'utf8')).toString('hex');

/**
 * Login sessions, kept in the console's database (web_sessions) so they survive a restart of
 * `console serve` and are shared by consoles on one PostgreSQL database. The browser holds a
 * random 32-byte token; the store keeps only its SHA-256, so a database dump or log line shows
 * no usable session. Expiry (idle SESSION_IDLE_MS, absolute SESSION_MAX_MS) is checked against
 * the injected clock at each read; expired rows are swept at each login, and at most
 * MAX_SESSIONS are kept, at most MAX_SESSIONS_PER_USER of one user (the least recently used go
 * first).
 */
export class SessionStore {
  readonly #store: WebStateStore;
  readonly #clock: Clock;
  readonly #max: number;

  constructor(store: WebStateStore, clock: Clock, options: { maxSessions?: number } = {}) {
    this.#store = store;
    this.#clock = clock;
    this.#max = options.maxSessions ?? MAX_SESSIONS;
  }

  /** A new session for `user`: returns the token for the cookie (never stored). */
  async create(user: string): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    const now = this.#clock.now();
    await this.#store.sweepSessions(now - SESSION_IDLE_MS, now - SESSION_MAX_MS);
    await this.#store.capSessions(MAX_SESSIONS_PER_USER - 1, user);
    await this.#store.capSessions(this.#max - 1);
    await this.#store.createSession({ digest: digest(token), user, createdAt: now, lastUsedAt: now });
    return token;
  }

  /**
   * The session of a cookie's token with its user's current role, touched (idle timer
   * restarted); undefined when none, expired, or its user was removed.
   */
  async get(token: string | undefined): Promise<Session | undefined> {
    if (!token || token.length > 100) return undefined;
    const key = digest(token);
    const found = await this.#store.findSession(key);
    if (!found) return undefined;
    const now = this.#clock.now();
    if (now - found.lastUsedAt >= SESSION_IDLE_MS || now - found.createdAt >= SESSION_MAX_MS) {
      await this.#store.deleteSession(key);
      return undefined;
    }
    if (now - found.lastUsedAt >= TOUCH_EVERY_MS) await this.#store.touchSession(key, now);
    return { user: found.user, role: found.role, createdAt: found.createdAt, lastUsedAt: now };
  }

  async delete(token: string | undefined): Promise<void> {
    if (token) await this.#store.deleteSession(digest(token));
  }

  /** Ends every session of `user` (VolumeConsole's removeUser / setUserRole / setAdminPassword do it too). */
  async deleteForUser(user: string): Promise<number> {
    return this.#store.deleteUserSessions(user);
  }

  /** Sessions stored (expired ones included until the next sweep). */
  async size(): Promise<number> {
    return this.#store.countSessions();
  }
}

/**
 * Failed logins per source address in a sliding window (OWASP: limit authentication
 * attempts). Successful logins do not count (once they are known to be); the window is a minute.
 */
export class LoginLimiter {
  readonly #failures = new Map<string, number[]>();
  readonly #clock: Clock;
  readonly #limit: number;
  readonly #windowMs: number;

  constructor(clock: Clock, limit = 10, windowMs = MINUTE) {
    this.#clock = clock;
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  /** Milliseconds until `address` may try again; 0 when it may now. */
  retryAfter(address: string): number {
    const now = this.#clock.now();
    const recent = (this.#failures.get(address) ?? []).filter((t) => now - t < this.#windowMs);
    if (recent.length === 0) this.#failures.delete(address);
    else this.#failures.set(address, recent);
    return recent.length >= this.#limit ? this.#windowMs - (now - (recent[0] as number)) : 0;
  }

  /**
   * Counts an attempt as failed and returns its time. A login counts BEFORE its password is
   * checked, so attempts sent in parallel cannot all pass the limit; `forgive` takes a
   * successful one back.
   */
  fail(address: string): number {
    const now = this.#clock.now();
    if (this.#failures.size > 10_000) {
      for (const [a, times] of this.#failures)
        if (times.every((t) => now - t >= this.#windowMs)) this.#failures.delete(a);
    }
    const list = this.#failures.get(address) ?? [];
    list.push(now);
    this.#failures.set(address, list.slice(-this.#limit));
    return now;
  }

  /** Takes back the attempt counted at `at` (the password was right). */
  forgive(address: string, at: number): void {
    const list = this.#failures.get(address);
    const i = list?.indexOf(at) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
  }
}

/**
 * Failed logins per account, whatever the source address (OWASP: an attacker with many
 * addresses must not get many guesses at one password). After `free` failures in a row the
 * account waits before its next attempt: 30 s, doubling per further failure, at most 15
 * minutes; a success clears it, and so does an hour without failures. Every name counts the
 * same, existing or not, so the back-off tells nothing about which accounts exist.
 *
 * An address that logged in to the account successfully within KNOWN_ADDRESS_MS is exempt
 * from the back-off (it stays under the per-address LoginLimiter): else an attacker failing
 * once every ≤15 minutes from anywhere would keep the real admin out for good. Its success
 * during a back-off leaves the back-off in place for everyone else.
 *
 * The exemption is bounded: while the account backs off, its exempt addresses together get
 * at most KNOWN_ADDRESS_FAILURES failed attempts a day (EXEMPT_WINDOW_MS), then wait like
 * everyone. Behind a reverse proxy without --trust-forwarded-for every client has the proxy's
 * address: once the admin logged in through it, anyone behind it would otherwise get the
 * per-address rate (10 a minute) at the admin's password for ever. An attacker elsewhere
 * cannot use this budget up (its attempts are refused before they count), so the admin's
 * exemption from them stands.
 */
export class AccountLimiter {
  readonly #accounts = new Map<string, { failures: number; last: number }>();
  /** Per account: the addresses that logged in to it, with the time of their last success. */
  readonly #known = new Map<string, Map<string, number>>();
  /** Per account: the times of the failures let through by the exemption (the last day's). */
  readonly #exemptFailures = new Map<string, number[]>();
  readonly #clock: Clock;
  readonly #free: number;

  constructor(clock: Clock, free = 5) {
    this.#clock = clock;
    this.#free = free;
  }

  static readonly FIRST_WAIT_MS = 30_000;
  static readonly MAX_WAIT_MS = 15 * MINUTE;
  static readonly FORGET_MS = 60 * MINUTE;
  /** How long a successful login keeps its address exempt from the account's back-off. */
  static readonly KNOWN_ADDRESS_MS = 30 * DAY;
  /** Addresses remembered per account (the least recently successful goes first). */
  static readonly KNOWN_ADDRESSES = 16;
  /** Failures an account's exempt addresses get, together, during its back-off… */
  static readonly KNOWN_ADDRESS_FAILURES = 10;
  /** …in this long; then they wait like everyone. */
  static readonly EXEMPT_WINDOW_MS = DAY;

  /**
   * Milliseconds until `account` may try again from `address`; 0 when it may now (0 for an
   * address that logged in to it within KNOWN_ADDRESS_MS, while the exempt failure budget lasts).
   */
  retryAfter(account: string, address?: string): number {
    const key = account.toLowerCase();
    const now = this.#clock.now();
    if (
      address !== undefined &&
      this.#isKnown(key, address, now) &&
      this.#recentExempt(key, now).length < AccountLimiter.KNOWN_ADDRESS_FAILURES
    ) {
      return 0;
    }
    return this.#wait(key, now);
  }

  #recentExempt(key: string, now: number): number[] {
    const recent = (this.#exemptFailures.get(key) ?? []).filter((t) => now - t < AccountLimiter.EXEMPT_WINDOW_MS);
    if (recent.length === 0) this.#exemptFailures.delete(key);
    else this.#exemptFailures.set(key, recent);
    return recent;
  }

  #isKnown(key: string, address: string, now: number): boolean {
    const at = this.#known.get(key)?.get(address);
    return at !== undefined && now - at < AccountLimiter.KNOWN_ADDRESS_MS;
  }

  #wait(key: string, now: number): number {
    const entry = this.#accounts.get(key);
    if (!entry) return 0;
    if (now - entry.last >= AccountLimiter.FORGET_MS) {
      this.#accounts.delete(key);
      return 0;
    }
    if (entry.failures < this.#free) return 0;
    const wait = Math.min(
      AccountLimiter.MAX_WAIT_MS,
      AccountLimiter.FIRST_WAIT_MS * 2 ** Math.min(entry.failures - this.#free, 20),
    );
    return Math.max(0, entry.last + wait - now);
  }

  /**
   * Counts a failed attempt (before the password is checked, like LoginLimiter). Returns
   * whether the account was backing off before it (the attempt came from an exempt address).
   */
  fail(account: string): boolean {
    const now = this.#clock.now();
    if (this.#accounts.size > 10_000) {
      for (const [k, e] of this.#accounts) if (now - e.last >= AccountLimiter.FORGET_MS) this.#accounts.delete(k);
    }
    const key = account.toLowerCase();
    const backingOff = this.#wait(key, now) > 0;
    const entry = this.#accounts.get(key);
    this.#accounts.set(key, { failures: (entry?.failures ?? 0) + 1, last: now });
    // Counted during a back-off: it came through the exemption, and spends its budget (a
    // success refunds it below). Only attempts let through get here, so this stays bounded.
    if (backingOff) this.#exemptFailures.set(key, [...this.#recentExempt(key, now), now]);
    return backingOff;
  }

  /**
   * The password was right: the account starts afresh, unless it was backing off (`backingOff`,
   * what `fail` returned for this attempt: the success came from an exempt address, and the
   * others still wait). `address` is remembered as one that logs in to this account.
   */
  succeed(account: string, address?: string, backingOff = false): void {
    const key = account.toLowerCase();
    const now = this.#clock.now();
    if (!backingOff) this.#accounts.delete(key);
    else this.#exemptFailures.get(key)?.pop(); // counted in fail(): a right password spends nothing
    if (address === undefined) return;
    const known = this.#known.get(key) ?? new Map<string, number>();
    known.delete(address);
    known.set(address, now);
    for (const [a, at] of known) {
      if (known.size > AccountLimiter.KNOWN_ADDRESSES || now - at >= AccountLimiter.KNOWN_ADDRESS_MS) known.delete(a);
    }
    this.#known.set(key, known);
  }
}

/** The value of one cookie in a Cookie header (RFC 6265 §5.4: "name=value" pairs separated by "; "). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Set-Cookie for a session: HttpOnly (no script reads it), SameSite=Strict (no cross-site
 * request carries it), and Secure when browsers reach the console over HTTPS (a TLS proxy's
 * public origin), so the browser never sends it over plain HTTP.
 */
export function sessionCookie(token: string, secure = false): string {
  return `${SESSION_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure = false): string {
  return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secure ? '; Secure' : ''}`;
}
