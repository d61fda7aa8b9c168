import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock } from '@volact/core';
import type { VolumeConsole } from '../console.js';
import { apiRoutes, type Answer, type DefaultAuthority, type Route } from './api.js';
import { WebError, errorAnswer } from './errors.js';
import { JobRunner } from './jobs.js';
import { AccountLimiter, LoginLimiter, SESSION_COOKIE, SessionStore, readCookie } from './sessions.js';
import { DEFAULT_ASSETS_DIR, serveStatic } from './static.js';

/** Request bodies are small JSON objects: anything larger is refused unread. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface ConsoleServerOptions {
  readonly listen: { readonly host: string; readonly port: number };
  /** The built web UI (default: packages/console/web-dist, as `npm run build` makes it). */
  readonly assetsDir?: string;
  /** Session expiry and login limits run on it (default: the system clock). */
  readonly clock?: Clock;
  /**
   * The default authority: proxy-activate uses it when the UI gives none (and its proxy, CA and
   * timeout in any case); mak-usage asks it for the MAK counters when it has an admin token.
   */
  readonly authority?: DefaultAuthority;
  /** One line per request and per event; never a secret. */
  readonly log?: (line: string) => void;
  /**
   * Behind a TLS reverse proxy: the origins the browser sees (https://console.example), which
   * a state-changing request's Origin must be one of (instead of this server's Host).
   */
  readonly publicOrigins?: readonly string[];
  /**
   * Behind a reverse proxy: take the client's address from the last X-Forwarded-For entry (the
   * one the proxy added), so login limits count per client rather than for the proxy.
   */
  readonly trustForwardedFor?: boolean;
}

export interface ConsoleServer {
  /** http://HOST:PORT/ */
  readonly url: string;
  readonly port: number;
  /** Stops listening, waits for a running job, then closes every connection. */
  close(): Promise<void>;
}

/** Headers on every answer (OWASP secure headers). */
const COMMON_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function send(res: ServerResponse, answer: Answer): void {
  const headers: Record<string, string | number> = { 'cache-control': 'no-store', ...answer.headers };
  let payload: string | undefined;
  if (answer.text !== undefined) payload = answer.text;
  else if (answer.json !== undefined) {
    payload = JSON.stringify(answer.json);
    headers['content-type'] = 'application/json; charset=utf-8';
  }
  if (payload !== undefined) headers['content-length'] = Buffer.byteLength(payload);
  res.writeHead(answer.status, headers);
  res.end(payload);
}

/** The body as JSON, at most MAX_BODY_BYTES (a larger declared or sent body is refused). */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES)
    throw new WebError('BODY_TOO_LARGE', `the body is larger than ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new WebError('BODY_TOO_LARGE', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new WebError('BODY_INVALID', 'body: not JSON');
  }
}

/**
 * Cross-site request forgery guard (OWASP CSRF cheat sheet): a request that changes something
 * must carry a custom header, which a cross-origin page cannot send without a CORS preflight
 * this server never grants, and JSON; a browser's Origin, when sent, must be this server's.
 */
function checkStateChanging(req: IncomingMessage, publicOrigins: readonly string[]): void {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = null;
    }
    // Behind a reverse proxy the Host header is the proxy's upstream: the public origins say it.
    const allowed =
      parsed !== null &&
      (publicOrigins.length > 0 ? publicOrigins.includes(parsed.origin) : parsed.host === req.headers.host);
    if (!allowed) {
      throw new WebError('ORIGIN_REFUSED', `the request comes from ${origin.slice(0, 100)}, not from this console`);
    }
  }
  if (req.headers['x-volact-request'] !== '1') {
    throw new WebError('CSRF_HEADER_MISSING', 'a request that changes something needs the header X-Volact-Request: 1');
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new WebError('CONTENT_TYPE_INVALID', `the body must be application/json, got ${type || 'none'}`);
  }
}

/**
 * The console's web UI and its JSON API (`volact console serve`) on node:http: the built
 * single-page app, and /api/… behind a login session.
 */
export async function startConsoleServer(
  console: VolumeConsole,
  options: ConsoleServerOptions,
): Promise<ConsoleServer> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? (() => undefined);
  const assetsDir = options.assetsDir ?? DEFAULT_ASSETS_DIR;
  const publicOrigins = (options.publicOrigins ?? []).map((o) => {
    const parsed = new URL(o);
    if (parsed.origin === 'null' || parsed.pathname !== '/' || parsed.search) {
      throw new RangeError(`public origin ${o.slice(0, 100)} is not SCHEME://HOST[:PORT]`);
    }
    return parsed.origin;
  });
  const sourceAddress = (req: IncomingMessage): string => {
    const socket = req.socket.remoteAddress ?? 'unknown';
    if (!options.trustForwardedFor) return socket;
    const forwarded = String(req.headers['x-forwarded-for'] ?? '')
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean);
    return forwarded.at(-1)?.slice(0, 100) ?? socket;
  };
  // Browsers reach the console over HTTPS when a public origin says so (a TLS reverse proxy).
  const secure = publicOrigins.some((o) => o.startsWith('https://'));
  const sessions = new SessionStore(clock);
  const jobs = new JobRunner(clock, log);
  const routes: Route[] = apiRoutes({
    console,
    clock,
    sessions,
    limiter: new LoginLimiter(clock),
    accounts: new AccountLimiter(clock),
    jobs,
    authority: options.authority,
    log,
  });

  async function api(req: IncomingMessage, url: URL): Promise<{ answer: Answer; user?: string }> {
    const method = req.method ?? 'GET';
    const decode = (part: string) => {
      try {
        return decodeURIComponent(part);
      } catch {
        throw new WebError('NOT_FOUND', `malformed path ${url.pathname.slice(0, 100)}`);
      }
    };
    const matching = routes.flatMap((route) => {
      const m = route.path.exec(url.pathname);
      return m ? [{ route, params: m.slice(1).map(decode) }] : [];
    });
    if (matching.length === 0) throw new WebError('NOT_FOUND', `no API route ${url.pathname.slice(0, 100)}`);
    const hit = matching.find((m) => m.route.method === method);
    if (!hit) {
      const allow = [...new Set(matching.map((m) => m.route.method))].join(', ');
      throw new WebError('METHOD_NOT_ALLOWED', `${url.pathname} takes ${allow}`, { allow });
    }
    const changing = STATE_CHANGING.has(method);
    if (changing) checkStateChanging(req, publicOrigins);
    const token = readCookie(req.headers.cookie, SESSION_COOKIE);
    const session = sessions.get(token);
    if (hit.route.auth && !session)
      throw new WebError('SESSION_REQUIRED', 'log in first (or again: the session expired)');
    const body = changing ? await readJson(req) : undefined;
    const answer = await hit.route.handle(
      { method, url, body, session, sessionToken: token, address: sourceAddress(req), secure },
      hit.params,
    );
    return { answer, ...(session ? { user: session.user } : {}) };
  }

  const server = createServer((req, res) => {
    const started = performance.now();
    for (const [name, value] of Object.entries(COMMON_HEADERS)) res.setHeader(name, value);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://console.invalid');
    } catch {
      send(res, { status: 400, json: { error: { code: 'NOT_FOUND', message: 'bad request target' } } });
      return;
    }
    if (url.pathname !== '/api' && !url.pathname.startsWith('/api/')) {
      serveStatic(req, res, assetsDir).catch(() => res.destroy());
      return;
    }
    api(req, url)
      .then(
        ({ answer, user }) => ({ answer, user }),
        (err: unknown) => {
          const e = errorAnswer(err);
          if (e.status === 500) {
            log(
              `error ${req.method} ${url.pathname}: ${err instanceof Error ? `${err.name}: ${err.message}` : 'unknown'}`,
            );
          }
          return { answer: { status: e.status, json: e.body, headers: e.headers }, user: undefined };
        },
      )
      .then(({ answer, user }) => {
        if (req.complete) send(res, answer);
        else if (answer.status === 413) {
          // Refused unread and too large to drain: answer, then close the connection.
          res.setHeader('connection', 'close');
          send(res, answer);
          res.on('finish', () => req.destroy());
        } else {
          // A refused request's unread body is drained so the connection can be reused.
          req.resume();
          send(res, answer);
        }
        // Changes and refusals are logged; successful reads (the UI polls jobs) are not.
        if (req.method !== 'GET' || answer.status >= 400) {
          log(
            `${req.method} ${url.pathname} ${answer.status} ${Math.round(performance.now() - started)}ms${user ? ` ${user}` : ''}`,
          );
        }
      })
      .catch(() => res.destroy());
  });
  server.requestTimeout = 60_000;
  server.headersTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.listen.host.includes(':') ? `[${options.listen.host}]` : options.listen.host;
  const url = `http://${host}:${port}/`;
  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await jobs.idle();
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}
