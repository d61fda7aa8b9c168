import { z } from 'zod';
import { CoreError, authorityEndpoint } from '@volact/core';
import { ConsoleError } from './errors.js';
import { TransportError, requestJson, type ProxySettings } from './http.js';

/** The authority takes at most this many installation IDs in one bulk call. */
export const MAX_BULK_CONFIRMATIONS = 1000;

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
  | { readonly installationId: string; readonly ok: false; readonly error: { code: string; message: string } };

const bulkBody = z.object({
  results: z.array(
    z.union([
      z.looseObject({
        installationId: z.string(),
        ok: z.literal(true),
        confirmationId: z.string().max(400),
        kind: z.string(),
      }),
      z.looseObject({
        installationId: z.string(),
        ok: z.literal(false),
        error: z.object({ code: z.string().max(64), message: z.string().max(2000) }),
      }),
    ]),
  ),
});

const keyReport = z.looseObject({
  key: z.string(),
  type: z.string(),
  limit: z.number().nullable().optional(),
  used: z.number().nullable().optional(),
  remaining: z.number().nullable().optional(),
  revokedAt: z.string().nullable().optional(),
});
export type AuthorityKeyReport = z.infer<typeof keyReport>;

const errorBody = z.object({ error: z.object({ code: z.string().max(64), message: z.string().max(2000) }) });

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

async function call<T>(
  connection: AuthorityConnection,
  path: string,
  body: unknown,
  schema: z.ZodType<T>,
  headers: Record<string, string> = {},
): Promise<T> {
  const url = endpoint(connection.url, path);
  // Plain http:// is allowed to this machine only; through a proxy elsewhere, "127.0.0.1" would be
  // the proxy's own machine and the keys and tokens in the request would cross the network.
  if (connection.proxy && url.protocol === 'http:' && !isLoopbackHost(connection.proxy.host)) {
    throw new ConsoleError(
      'AUTHORITY_URL_INVALID',
      `through --proxy ${connection.proxy.display} the authority must be https://, got ${url.origin}`,
    );
  }
  const timeoutMs = connection.timeoutMs ?? 30_000;
  let res;
  try {
    res = await requestJson({
      url,
      method: 'POST',
      body,
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
    const parsed = errorBody.safeParse(res.body);
    if (parsed.success) {
      throw new ConsoleError(
        'AUTHORITY_REFUSED',
        `the authority ${url.origin} refused: ${parsed.data.error.code}: ${parsed.data.error.message}`,
      );
    }
    throw new ConsoleError(
      'AUTHORITY_BAD_RESPONSE',
      `${url.origin} answered HTTP ${res.status} without a volact error body: is --authority a volact authority?`,
    );
  }
  const parsed = schema.safeParse(res.body);
  if (!parsed.success) {
    throw new ConsoleError(
      'AUTHORITY_BAD_RESPONSE',
      `${url.origin} did not answer like a volact authority (${res.isJson ? (parsed.error.issues[0]?.message ?? 'invalid') : 'not JSON'})`,
    );
  }
  return parsed.data;
}

/**
 * Proxy activation's one call: the installation IDs in, one result per IID in order. More than
 * MAX_BULK_CONFIRMATIONS go in several calls. The results are matched back by IID.
 */
export async function bulkConfirm(connection: AuthorityConnection, installationIds: string[]): Promise<BulkResult[]> {
  const out: BulkResult[] = [];
  for (let i = 0; i < installationIds.length; i += MAX_BULK_CONFIRMATIONS) {
    const chunk = installationIds.slice(i, i + MAX_BULK_CONFIRMATIONS);
    const { results } = await call(connection, '/v1/confirmations/bulk', { installationIds: chunk }, bulkBody);
    if (results.length !== chunk.length || results.some((r, j) => r.installationId !== chunk[j])) {
      throw new ConsoleError(
        'AUTHORITY_BAD_RESPONSE',
        `the authority answered ${results.length} results for ${chunk.length} installation IDs, or out of order`,
      );
    }
    out.push(...(results as BulkResult[]));
  }
  return out;
}

/** A key's counters from the authority's admin API (POST /v1/admin/keys/show). */
export async function showKey(
  connection: AuthorityConnection,
  adminToken: string,
  key: string,
): Promise<AuthorityKeyReport> {
  return call(connection, '/v1/admin/keys/show', { key }, keyReport, { authorization: `Bearer ${adminToken}` });
}
