import { z } from 'zod';
import {
  CoreError,
  MAX_BULK_CONFIRMATIONS,
  authorityEndpoint,
  bulkConfirmationReplySchema,
  errorReplySchema,
  keyReportSchema,
  readAuthorityReply,
  type KeyReportReply,
} from '@volact/core';
import { ConsoleError } from './errors.js';
import { TransportError, requestJson, type ProxySettings } from './http.js';

/** The authority takes at most this many installation IDs in one bulk call. */
export { MAX_BULK_CONFIRMATIONS };

export interface AuthorityConnection {
  /** The authority's base URL (https://, or http:// to loopback). */
  readonly url: string;
  readonly proxy?: ProxySettings;
  readonly timeoutMs?: number;
  /** Extra CA certificates for an https:// authority (a private PKI). */
  readonly ca?: string | Buffer;
}

export type BulkResult =
  | { readonly installationId: string; readonly ok: true; readonly confirmationId: string; readonly kind: string }
  | {
      readonly installationId: string;
      readonly ok: false;
      readonly error: { code: string; message: string };
      /** The bulk call itself failed (proxy, network, authority down): the console's code. */
      readonly callFailed?: true;
    };

/**
 * The authority's reply shapes are core's (authority-api.ts): every known field typed and bounded;
 * a field they do not know (a later /v1 authority's) is dropped, never kept or refused.
 */
export type AuthorityKeyReport = KeyReportReply;

/** The authority's origin, without credentials or path: what the console stores and prints. */
function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function authorityOrigin(url: string): string {
  return endpoint(url, '/').origin;
}

function endpoint(base: string, path: string): URL {
  try {
    return authorityEndpoint(base, path);
  } catch (err) {
    if (err instanceof CoreError) throw new ConsoleError('AUTHORITY_URL_INVALID', err.message);
    throw err;
  }
}

/** The URL of an authority route; refuses what would send keys across the network in clear. */
function checkedEndpoint(connection: AuthorityConnection, path: string): URL {
  const url = endpoint(connection.url, path);
  // Plain http:// is allowed to this machine only; through a proxy elsewhere, "127.0.0.1" would be
  // the proxy's own machine and the keys and tokens in the request would cross the network.
  if (connection.proxy && url.protocol === 'http:' && !isLoopbackHost(connection.proxy.host)) {
    throw new ConsoleError(
      'AUTHORITY_URL_INVALID',
      `through --proxy ${connection.proxy.display} the authority must be https://, got ${url.origin}`,
    );
  }
  return url;
}

/** A refusal of the authority: AUTHORITY_REFUSED with the authority's own code beside it. */
export class AuthorityRefusal extends ConsoleError {
  constructor(
    message: string,
    /** The authority's code (KEY_NOT_FOUND, SCOPE_MISSING, NOT_FOUND for a route it lacks, …). */
    readonly authorityCode: string,
    readonly status: number,
  ) {
    super('AUTHORITY_REFUSED', message);
  }
}

async function call<T>(
  connection: AuthorityConnection,
  path: string,
  body: unknown,
  schema: z.ZodType<T>,
  headers: Record<string, string> = {},
  method: 'GET' | 'POST' = 'POST',
): Promise<T> {
  const url = checkedEndpoint(connection, path);
  const timeoutMs = connection.timeoutMs ?? 30_000;
  let res;
  try {
    res = await requestJson({
      url,
      method,
      ...(method === 'GET' ? {} : { body }),
      headers,
      timeoutMs,
      ...(connection.proxy ? { proxy: connection.proxy } : {}),
      ...(connection.ca ? { ca: connection.ca } : {}),
    });
  } catch (err) {
    if (!(err instanceof TransportError)) throw err;
    switch (err.kind) {
      case 'proxy-auth':
        throw new ConsoleError('PROXY_AUTH_FAILED', `${err.message}: check the user name and password of --proxy`);
      case 'proxy-refused':
        throw new ConsoleError('PROXY_REFUSED', `${err.message}: does the proxy allow tunnels to this port?`);
      case 'proxy-unreachable':
        throw new ConsoleError('PROXY_UNREACHABLE', `${err.message}: check the --proxy host and port`);
      case 'timeout':
      case 'unreachable':
        throw new ConsoleError(
          'AUTHORITY_UNREACHABLE',
          `the authority ${url.origin} did not answer: ${err.message}; check --authority (and --proxy)`,
        );
    }
  }
  if (res.status < 200 || res.status >= 300) {
    const parsed = errorReplySchema.safeParse(res.body);
    if (parsed.success) {
      throw new AuthorityRefusal(
        `the authority ${url.origin} refused: ${parsed.data.error.code}: ${parsed.data.error.message}`,
        parsed.data.error.code,
        res.status,
      );
    }
    throw new ConsoleError(
      'AUTHORITY_BAD_RESPONSE',
      `${url.origin} answered HTTP ${res.status} without a volact error body: is --authority a volact authority?`,
    );
  }
  const reply = readAuthorityReply(schema, res.body);
  if (!reply.ok) {
    throw new ConsoleError(
      'AUTHORITY_BAD_RESPONSE',
      `${url.origin} did not answer like a volact authority (${res.isJson ? reply.problem : 'not JSON'})`,
    );
  }
  return reply.value;
}

/**
 * Proxy activation's one call: the installation IDs in, one result per IID in order. More than
 * MAX_BULK_CONFIRMATIONS go in several calls. The results are matched back by IID.
 */
/**
 * Confirmation IDs for installation IDs, one bulk call per 1 000. A chunk whose call fails
 * (proxy, network, authority) gives each of its IDs that failure and the next chunk is still
 * sent: the CIDs of the chunks that went through are never lost to a later chunk's failure.
 */
export async function bulkConfirm(connection: AuthorityConnection, installationIds: string[]): Promise<BulkResult[]> {
  checkedEndpoint(connection, '/v1/confirmations/bulk'); // a bad URL fails the whole call, up front
  const out: BulkResult[] = [];
  for (let i = 0; i < installationIds.length; i += MAX_BULK_CONFIRMATIONS) {
    const chunk = installationIds.slice(i, i + MAX_BULK_CONFIRMATIONS);
    try {
      const { results } = await call(
        connection,
        '/v1/confirmations/bulk',
        { installationIds: chunk },
        bulkConfirmationReplySchema,
      );
      if (results.length !== chunk.length || results.some((r, j) => r.installationId !== chunk[j])) {
        throw new ConsoleError(
          'AUTHORITY_BAD_RESPONSE',
          `the authority answered ${results.length} results for ${chunk.length} installation IDs, or out of order`,
        );
      }
      out.push(...(results as BulkResult[]));
    } catch (err) {
      if (!(err instanceof ConsoleError)) throw err;
      const error = { code: err.code, message: err.message };
      out.push(
        ...chunk.map((installationId) => ({ installationId, ok: false as const, error, callFailed: true as const })),
      );
    }
  }
  return out;
}

/** A key's counters from the authority's admin API (POST /v1/admin/keys/show). */
export async function showKey(
  connection: AuthorityConnection,
  adminToken: string,
  key: string,
): Promise<AuthorityKeyReport> {
  return call(connection, '/v1/admin/keys/show', { key }, keyReportSchema, {
    authorization: `Bearer ${adminToken}`,
  });
}

/** A MAK's counters, as an organisation's key summary or the admin key report gives them. */
export interface MakCounters {
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
}

const count = z.number().int().min(0).max(1e9);
const keySummarySchema = z.object({ limit: count, used: count, remaining: count });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/**
 * A MAK's counters from the authority: POST /v1/keys/lookup, the key in the body (never in a
 * URL). The token is best an organisation's read token (`org:<id>:read`, what an organisation
 * gives its console): it reads its own organisation's MAKs and nothing else — a MAK of another
 * organisation answers KEY_NOT_FOUND (404), as if absent. The authority's admin token (or a
 * publisher token with `publisher:read`) reads every MAK. An authority from before
 * organisations (no lookup route) is read with POST /v1/admin/keys/show and its admin token.
 */
export async function makCounters(connection: AuthorityConnection, token: string, key: string): Promise<MakCounters> {
  try {
    return await call(connection, '/v1/keys/lookup', { key }, keySummarySchema, bearer(token));
  } catch (err) {
    if (!(err instanceof AuthorityRefusal && err.authorityCode === 'NOT_FOUND')) throw err;
  }
  return showKey(connection, token, key);
}
