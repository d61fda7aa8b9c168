import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { systemClock, type Clock } from '@volact/core';
import type { VolumeConsole } from '../console.js';
import { apiRoutes, minimumRole, type Answer, type DefaultAuthority, type Route } from './api.js';
import { MAX_UPLOAD_BYTES } from './contract.js';
import { WebError, errorAnswer } from './errors.js';
import { JobRunner } from './jobs.js';
import { AccountLimiter, LoginLimiter, SESSION_COOKIE, SessionStore, readCookie, type Session } from './sessions.js';
import { DEFAULT_ASSETS_DIR, serveStatic } from './static.js';

/** Request bodies are small JSON objects: anything larger is refused unread (uploads: MAX_UPLOAD_BYTES). */
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
  /** HTTPS with this certificate and key (PEM): the session cookie is then Secure. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

export interface ConsoleServer {
  /** http://HOST:PORT/ (https:// with `tls`) */
  readonly url: string;
  readonly port: number;
  /**
   * Swaps the certificate and key (a server started with `tls`): new handshakes get them, open
   * connections keep theirs. Throws when they do not go together, or without `tls`.
   */
  setTls(tls: { readonly cert: string | Buffer; readonly key: string | Buffer }): void;
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

/** What the server keeps on a request between its hooks. */
interface RequestState {
  session?: Session;
  token?: string;
  /** The body's size in bytes as read (the job route's limit depends on the operation). */
  bodyBytes?: number;
}
const STATE = Symbol('volact.request');
type WithState = FastifyRequest & { [STATE]?: RequestState };
const state = (req: FastifyRequest): RequestState => ((req as WithState)[STATE] ??= {});

const tooLarge = (limit: number) => new WebError('BODY_TOO_LARGE', `the body is larger than ${limit} bytes`);

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

/** A route's path as a regular expression (`:name` is one segment): which methods a path takes. */
const pathPattern = (path: string) => new RegExp(`^${path.replace(/:[A-Za-z]+/g, '[^/]+')}$`);

/** fastify's own failures (body parsing, URL decoding) as the API's codes. */
function fastifyError(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return tooLarge(MAX_BODY_BYTES);
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new WebError('CONTENT_TYPE_INVALID', 'the body must be application/json');
  }
  if (typeof code === 'string' && code.startsWith('FST_ERR_CTP_')) {
    return new WebError('BODY_INVALID', 'body: not readable as sent (its length or encoding)');
  }
  return err;
}

function send(reply: FastifyReply, answer: Answer): FastifyReply {
  reply.code(answer.status).header('cache-control', 'no-store');
  for (const [name, value] of Object.entries(answer.headers ?? {})) reply.header(name, value);
  if (answer.text !== undefined) return reply.send(answer.text);
  if (answer.json !== undefined) {
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(answer.json));
  }
  return reply.send();
}

/**
 * The console's web UI and its JSON API (`volact console serve`) on fastify (HTTPS with `tls`):
 * the built single-page app, and /api/… behind a login session. Every route is one entry of
 * the route table (api.ts); the checks every request passes (CSRF, session, role, body size)
 * run here, once, before its body is read.
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
  // Browsers reach the console over HTTPS: its own TLS, or a TLS proxy's public origin.
  const secure = options.tls !== undefined || publicOrigins.some((o) => o.startsWith('https://'));
  const sessions = new SessionStore(console.webState, clock);
  const jobs = new JobRunner(console.webState, clock, log);
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
  const patterns = routes.map((route) => ({ route, pattern: pathPattern(route.path) }));

  const app = Fastify({
    logger: false,
    bodyLimit: MAX_BODY_BYTES,
    requestTimeout: 60_000,
    // One JSON body parser (below); a malformed URL escape is an unknown route, as it was.
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
    frameworkErrors(err, _req, raw) {
      const reply = raw as unknown as FastifyReply;
      const e = errorAnswer(
        (err as { code?: string }).code === 'FST_ERR_BAD_URL'
          ? new WebError('NOT_FOUND', 'malformed path')
          : fastifyError(err),
      );
      for (const [name, value] of Object.entries(COMMON_HEADERS)) reply.header(name, value);
      void reply.code(e.status).header('cache-control', 'no-store').send(e.body);
    },
  });
  app.server.headersTimeout = 30_000;

  // Only JSON is read; its size is counted (the job route's limit depends on the operation).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, text, done) => {
    const body = text as string;
    state(req).bodyBytes = Buffer.byteLength(body);
    if (body.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(body) as unknown);
    } catch {
      done(new WebError('BODY_INVALID', 'body: not JSON'), undefined);
    }
  });

  app.addHook('onRequest', async (req, reply) => {
    for (const [name, value] of Object.entries(COMMON_HEADERS)) reply.raw.setHeader(name, value);
    // Served over its own TLS: browsers keep to https for this host (a year), no downgrade.
    if (options.tls) reply.raw.setHeader('strict-transport-security', 'max-age=31536000');
    const path = req.url.split('?')[0] as string;
    if (path !== '/api' && !path.startsWith('/api/')) {
      // The single-page app: files as they are, and its index for any app path.
      reply.hijack();
      await serveStatic(req.raw, reply.raw, assetsDir).catch(() => reply.raw.destroy());
      return;
    }
    const route = req.routeOptions.config as Partial<Route> | undefined;
    if (route?.handle === undefined) {
      const allowed = [...new Set(patterns.filter((p) => p.pattern.test(path)).map((p) => p.route.method))];
      if (allowed.length === 0) throw new WebError('NOT_FOUND', `no API route ${path.slice(0, 100)}`);
      const allow = allowed.join(', ');
      throw new WebError('METHOD_NOT_ALLOWED', `${path.slice(0, 100)} takes ${allow}`, { allow });
    }
    if (route.method === 'POST') checkStateChanging(req.raw, publicOrigins);
    const s = state(req);
    s.token = readCookie(req.headers.cookie, SESSION_COOKIE);
    const session = await sessions.get(s.token);
    if (session) s.session = session;
    if (route.auth && !session) throw new WebError('SESSION_REQUIRED', 'log in first (or again: the session expired)');
    // The one place roles are enforced: a viewer reads, an admin also changes (login/logout need no session).
    if (route.auth && minimumRole(route as Route) === 'admin' && session?.role !== 'admin') {
      throw new WebError(
        'ROLE_FORBIDDEN',
        `${session?.user ?? 'this user'} is a viewer: only a console admin may ${route.method === 'POST' ? 'change anything' : 'see this'}`,
      );
    }
  });

  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.path,
      bodyLimit: route.upload ? MAX_UPLOAD_BYTES : MAX_BODY_BYTES,
      config: route,
      handler: async (req, reply) => {
        const s = state(req);
        if (route.uploadFor && !route.uploadFor(req.body) && (s.bodyBytes ?? 0) > MAX_BODY_BYTES) {
          throw tooLarge(MAX_BODY_BYTES);
        }
        const url = new URL(req.url, 'http://console.invalid');
        const answer = await route.handle(
          {
            method: route.method,
            url,
            body: req.body,
            session: s.session,
            sessionToken: s.token,
            address: sourceAddress(req.raw),
            secure,
          },
          req.params as Record<string, string>,
        );
        return send(reply, answer);
      },
    });
  }
  // Unknown routes and methods reach onRequest (which answers 404 or 405) through this.
  app.setNotFoundHandler(() => {
    throw new WebError('NOT_FOUND', 'no API route');
  });

  app.setErrorHandler((err, req, reply) => {
    // fastify refused a body over the route's limit (64 KiB, or MAX_UPLOAD_BYTES for uploads).
    const e = errorAnswer(
      (err as { code?: unknown }).code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? tooLarge(req.routeOptions.bodyLimit ?? MAX_BODY_BYTES)
        : fastifyError(err),
    );
    if (e.status === 500) {
      log(
        `error ${req.method} ${req.url.split('?')[0]}: ${err instanceof Error ? `${err.name}: ${err.message}` : 'unknown'}`,
      );
    }
    // Refused unread and too large to drain: answer, then close the connection.
    if (e.status === 413) reply.header('connection', 'close');
    return send(reply, { status: e.status, json: e.body, headers: e.headers });
  });

  // Changes and refusals are logged; successful reads (the UI polls jobs) are not.
  app.addHook('onResponse', async (req, reply) => {
    if (req.method === 'GET' && reply.statusCode < 400) return;
    if (!req.url.startsWith('/api')) return;
    const user = state(req).session?.user;
    log(
      `${req.method} ${req.url.split('?')[0]} ${reply.statusCode} ${Math.round(reply.elapsedTime)}ms${user ? ` ${user}` : ''}`,
    );
  });
  // Closing waits for the running job (it is not a request fastify would wait for).
  app.addHook('onClose', async () => {
    await jobs.idle();
  });

  await app.listen({ port: options.listen.port, host: options.listen.host });
  const { port } = app.server.address() as AddressInfo;
  const host = options.listen.host.includes(':') ? `[${options.listen.host}]` : options.listen.host;
  const url = `${options.tls ? 'https' : 'http'}://${host}:${port}/`;
  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    setTls(next) {
      if (!options.tls) throw new RangeError('the server speaks plain HTTP: start it with tls to change certificates');
      (app.server as unknown as TlsServer).setSecureContext({ cert: next.cert, key: next.key });
    },
    close() {
      closing ??= app.close();
      return closing;
    },
  };
}
