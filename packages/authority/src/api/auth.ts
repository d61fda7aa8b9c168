import { secretsEqual, sha256, systemClock, type Clock } from '@volact/core';
import { ADMIN_TOKEN_PRINCIPAL, holds, seesOrg, type Principal } from '../access/principal.js';
import type { Authority } from '../authority.js';
import { AuthorityError, type AuthorityErrorCode } from '../errors.js';
import { RateLimiter } from '../rate-limiter.js';

/**
 * Who is calling (docs/portal.md "REST API: authentication"): `Authorization: Bearer` with the
 * authority's admin token (a publisher owner) or an API token `vat_…`, or the web UI's session
 * cookie. Secrets are compared hashed (constant time, lengths leak nothing) and never logged.
 */

export const SESSION_COOKIE = 'volact_session';
export const CSRF_HEADER = 'x-volact-csrf';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A refusal with fields beside code and message in its answer (`scope` of SCOPE_MISSING). */
export class ApiRefusal extends AuthorityError {
  extra: Record<string, string> = {};
}

/** The fields an error's answer carries beside code and message. */
export function refusalExtras(err: AuthorityError): Record<string, string> {
  if (err instanceof ApiRefusal) return err.extra;
  const nextStep = (err as { nextStep?: unknown }).nextStep;
  return err.code === 'ROOT_ROTATION_OUT_OF_ORDER' && typeof nextStep === 'string' ? { nextStep } : {};
}

export function scopeMissing(scope: string, alternatives: readonly string[] = []): ApiRefusal {
  const also = alternatives.length > 0 ? ` (or ${alternatives.join(' or ')})` : '';
  const err = new ApiRefusal(
    'SCOPE_MISSING',
    `this call needs the scope ${scope}${also}; ask for a token or role that holds it`,
  );
  err.extra = { scope };
  return err;
}

/** 403 SCOPE_MISSING unless the principal holds one of the scopes (the first is named). */
export function requireScope(principal: Principal, scope: string, ...alternatives: string[]): void {
  if (holds(principal, scope) || alternatives.some((s) => holds(principal, s))) return;
  throw scopeMissing(scope, alternatives);
}

/** What a principal that may not see an organisation is told: it does not exist. */
export function notFound(code: AuthorityErrorCode, what: string): AuthorityError {
  return new AuthorityError(code, `${what} not found`);
}

/** 404 (never 403) when the principal may not know the organisation exists. */
export function requireSeesOrg(
  principal: Principal,
  orgId: string,
  code: AuthorityErrorCode = 'ORG_NOT_FOUND',
  what = `organisation ${orgId}`,
): void {
  if (!seesOrg(principal, orgId)) throw notFound(code, what);
}

export interface AuthRequest {
  readonly ip: string;
  readonly method: string;
  readonly protocol: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly log: { warn: (obj: object, msg: string) => void };
}

export interface ApiAuthOptions {
  /** The authority's `--admin-token-file` token: a publisher owner. */
  readonly adminToken?: string;
  readonly clock?: Clock;
  /** Wrong bearer tokens allowed per minute from one source address (default 10). */
  readonly failuresPerSourcePerMinute?: number;
  /** Wrong bearer tokens per minute from all sources past which a warning is logged (default 100; never refused). */
  readonly failuresPerMinute?: number;
}

function header(request: AuthRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The session secret of the request's `volact_session` cookie, if any. */
export function sessionOf(request: AuthRequest): string | undefined {
  const cookies = header(request, 'cookie');
  if (!cookies) return undefined;
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      const value = part.slice(eq + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}

/** The Set-Cookie of a new session (Secure when the request came over https, directly or via a trusted proxy). */
export function sessionCookie(secret: string, expiresAt: string, request: AuthRequest): string {
  const secure = request.protocol === 'https' ? '; Secure' : '';
  return `${SESSION_COOKIE}=${secret}; HttpOnly; SameSite=Strict; Path=/; Expires=${new Date(expiresAt).toUTCString()}${secure}`;
}

export function clearedSessionCookie(request: AuthRequest): string {
  const secure = request.protocol === 'https' ? '; Secure' : '';
  return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secure}`;
}

function rateLimited(what: string, waitMs: number): AuthorityError {
  const seconds = Math.ceil(waitMs / 1000);
  const err = new AuthorityError('RATE_LIMITED', `${what}; retry in ${seconds} s`);
  err.retryAfterSeconds = seconds;
  return err;
}

/**
 * Authenticates requests. Guessing bearer tokens is throttled per source: a source with too
 * many wrong tokens this minute is refused before any compare, so a 429 says nothing about
 * whether the token was right. Wrong tokens from everyone together are only logged, never
 * refused: a global refusal would let anyone lock the publisher out of its own API.
 */
export class ApiAuth {
  readonly #authority: Authority;
  readonly #adminTokenHash: Buffer | null;
  readonly #clock: Clock;
  readonly #failuresBySource: RateLimiter;
  readonly #failures: RateLimiter;
  readonly #failuresPerMinute: number;
  #guessingLoggedAt = -Infinity;

  constructor(authority: Authority, options: ApiAuthOptions = {}) {
    this.#authority = authority;
    this.#adminTokenHash = options.adminToken === undefined ? null : sha256(Buffer.from(options.adminToken));
    this.#clock = options.clock ?? systemClock;
    this.#failuresBySource = new RateLimiter(options.failuresPerSourcePerMinute ?? 10, this.#clock);
    this.#failuresPerMinute = options.failuresPerMinute ?? 100;
    this.#failures = new RateLimiter(this.#failuresPerMinute, this.#clock);
  }

  get adminTokenConfigured(): boolean {
    return this.#adminTokenHash !== null;
  }

  #wrongBearer(request: AuthRequest): void {
    this.#failuresBySource.take(request.ip);
    if (this.#failures.take('all') > 0 && this.#clock.now() - this.#guessingLoggedAt >= 60_000) {
      this.#guessingLoggedAt = this.#clock.now();
      request.log.warn(
        { limitPerMinute: this.#failuresPerMinute },
        'more wrong bearer tokens this minute than the limit, from several addresses: someone may be guessing',
      );
    }
  }

  /**
   * The principal of a request, or UNAUTHORIZED / SESSION_EXPIRED / RATE_LIMITED. A mutating
   * request authenticated by the session cookie must carry `X-Volact-Csrf: 1` (a form posted
   * from another site cannot set a header).
   */
  async authenticate(request: AuthRequest): Promise<Principal> {
    const authorization = header(request, 'authorization');
    if (authorization !== undefined && authorization !== '') {
      const waitMs = this.#failuresBySource.wait(request.ip);
      if (waitMs > 0) throw rateLimited('too many wrong bearer tokens from this address', waitMs);
      const given = /^Bearer (.+)$/.exec(authorization)?.[1] ?? '';
      if (this.#adminTokenHash !== null && secretsEqual(sha256(Buffer.from(given)), this.#adminTokenHash)) {
        return ADMIN_TOKEN_PRINCIPAL;
      }
      if (given.startsWith('vat_')) {
        try {
          return await this.#authority.access.authenticate({ bearer: given });
        } catch (err) {
          if (err instanceof AuthorityError && err.httpStatus === 401) this.#wrongBearer(request);
          throw err;
        }
      }
      this.#wrongBearer(request);
      throw new AuthorityError(
        'UNAUTHORIZED',
        'the bearer token is not valid here: use an API token (vat_…) or the authority’s admin token',
      );
    }
    const session = sessionOf(request);
    if (session !== undefined) {
      if (!SAFE_METHODS.has(request.method) && header(request, CSRF_HEADER) !== '1') {
        const err = new AuthorityError(
          'REQUEST_INVALID',
          'header X-Volact-Csrf: a change made with the session cookie needs the header `X-Volact-Csrf: 1`',
        );
        err.field = 'X-Volact-Csrf';
        throw err;
      }
      return this.#authority.access.authenticate({ session });
    }
    throw new AuthorityError(
      'UNAUTHORIZED',
      'this call needs `Authorization: Bearer <token>` (an API token or the admin token) or a session (POST /v1/session)',
    );
  }

  /**
   * The old `/v1/admin/keys/*` routes: the admin token or any principal with the scope. An
   * authority started without an admin token answers ADMIN_DISABLED to a call that brings no
   * API token nor session (what they answered before API tokens existed).
   */
  async authenticateAdminRoute(request: AuthRequest): Promise<Principal> {
    if (this.#adminTokenHash === null && sessionOf(request) === undefined) {
      const bearer = /^Bearer (.+)$/.exec(header(request, 'authorization') ?? '')?.[1] ?? '';
      if (!bearer.startsWith('vat_')) {
        throw new AuthorityError(
          'ADMIN_DISABLED',
          'the admin API is off: this authority was started without an admin token (API tokens with publisher:keys work)',
        );
      }
    }
    return this.authenticate(request);
  }
}
