import type { z } from 'zod';
import type { Clock } from '@volact/core';
import { authorityOrigin, type AuthorityConnection } from '../authority-client.js';
import { ConsoleError } from '../errors.js';
import type { VolumeConsole } from '../console.js';
import { WebError } from './errors.js';
import type { JobRunner } from './jobs.js';
import type { AccountLimiter, LoginLimiter, SessionStore, Session } from './sessions.js';
import type { UserRole } from './contract.js';
import { accountRoutes } from './routes-account.js';
import { jobRoutes } from './routes-jobs.js';
import { machineRoutes } from './routes-machines.js';
import { transferRoutes } from './routes-transfer.js';
import { viewRoutes } from './routes-views.js';

/** What the API answers: JSON (or text: CSV, a download) with a status; the JSON as contract.ts declares it. */
export interface Answer {
  readonly status: number;
  readonly json?: unknown;
  readonly text?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface RequestContext {
  readonly method: string;
  readonly url: URL;
  /** The parsed JSON body (POST), undefined when empty. */
  readonly body: unknown;
  /** The caller's session; routes that need one get it checked first. */
  readonly session: Session | undefined;
  /** The session cookie's token (logout forgets it). */
  readonly sessionToken: string | undefined;
  /** The source address (login attempts are limited per address). */
  readonly address: string;
  /** The browser reached the console over HTTPS (its own TLS, or a TLS proxy's public origin). */
  readonly secure: boolean;
}

export interface Route {
  readonly method: 'GET' | 'POST';
  /** fastify's path syntax: `:name` is one segment, handed to `handle` as params.name. */
  readonly path: string;
  /** false only for login and logout. */
  readonly auth: boolean;
  /**
   * The least role that may call it: a viewer reads, an admin also changes. Default: 'admin' for
   * every POST, 'viewer' for every GET (the server enforces it, in one place, before the body is read).
   */
  readonly role?: UserRole;
  /** The body may be up to MAX_UPLOAD_BYTES (else 64 KiB). */
  readonly upload?: boolean;
  /** With `upload`: the bodies that may be that large (the rest stay within 64 KiB). */
  readonly uploadFor?: (body: unknown) => boolean;
  readonly handle: (ctx: RequestContext, params: Readonly<Record<string, string>>) => Promise<Answer>;
}

/** The role a route needs (see Route.role). */
export const minimumRole = (route: Route): UserRole => route.role ?? (route.method === 'POST' ? 'admin' : 'viewer');

/** The server's default authority: for proxy-activate, and for mak-usage when it has an admin token. */
export type DefaultAuthority = AuthorityConnection & { readonly adminToken?: string };

export interface ApiDeps {
  readonly console: VolumeConsole;
  readonly clock: Clock;
  readonly sessions: SessionStore;
  readonly limiter: LoginLimiter;
  /** Failed logins per account, whatever the address. */
  readonly accounts: AccountLimiter;
  readonly jobs: JobRunner;
  readonly authority: DefaultAuthority | undefined;
  readonly log: (line: string) => void;
}

/** zod's first issue as "field: what is wrong" (the field path, or "body"). */
function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'body: invalid';
  // An unknown key is named by the key itself (zod reports it on the object that holds it).
  if (issue.code === 'unrecognized_keys') {
    const where = [...issue.path, issue.keys[0] ?? ''].join('.');
    return `${where}: not a field of this request`;
  }
  const where = issue.path.length ? issue.path.join('.') : 'body';
  // A missing field: zod says "expected string, received undefined".
  const message = /received undefined$/.test(issue.message) ? 'Required' : issue.message;
  return `${where}: ${message}`;
}

/** The body by its schema; BODY_INVALID names the wrong field ("key: Required"). */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  throw new WebError('BODY_INVALID', firstIssue(r.error));
}

/** The query string by its schema (numbers as text); QUERY_INVALID names the parameter. */
export function parseQuery<T>(schema: z.ZodType<T>, url: URL): T {
  const raw: Record<string, string> = {};
  for (const [name, value] of url.searchParams) if (value !== '') raw[name] = value;
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  throw new WebError('QUERY_INVALID', firstIssue(r.error));
}

/** A machine reference from the UI: its id, name (any case), address or host name. */
export async function findMachine(c: VolumeConsole, ref: string) {
  const machine = await c.findMachineSummary(ref);
  if (!machine) throw new ConsoleError('MACHINE_NOT_FOUND', `no machine "${ref.slice(0, 100)}" in the console`);
  return machine;
}

/** A file for the browser to save (Content-Disposition: attachment). */
export function download(text: string, filename: string, type = 'application/json; charset=utf-8'): Answer {
  return {
    status: 200,
    text,
    headers: { 'content-type': type, 'content-disposition': `attachment; filename="${filename}"` },
  };
}

/** The connection to `url` with the server's transport settings (proxy, CA, timeout), never its admin token. */
export function connectionTo(base: DefaultAuthority | undefined, url: string): AuthorityConnection {
  return {
    url,
    ...(base?.proxy ? { proxy: base.proxy } : {}),
    ...(base?.ca ? { ca: base.ca } : {}),
    ...(base?.timeoutMs === undefined ? {} : { timeoutMs: base.timeoutMs }),
  };
}

/** The authority a request names, else the server's (`--authority`); BODY_INVALID when neither. */
export function authorityFor(deps: ApiDeps, url: string | undefined, what: string): AuthorityConnection {
  const chosen = url ?? deps.authority?.url;
  if (chosen === undefined) {
    throw new WebError('BODY_INVALID', `authority: ${what} needs the authority’s URL (or the server’s --authority)`);
  }
  authorityOrigin(chosen); // AUTHORITY_URL_INVALID before anything starts
  return connectionTo(deps.authority, chosen);
}

/**
 * Every route of the API, in one table: the server registers each with fastify and runs the
 * checks every route needs (CSRF, session, role, body size) before its handler.
 */
export function apiRoutes(deps: ApiDeps): Route[] {
  return [
    ...accountRoutes(deps),
    ...machineRoutes(deps),
    ...viewRoutes(deps),
    ...jobRoutes(deps),
    ...transferRoutes(deps),
  ];
}
