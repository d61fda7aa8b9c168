import * as http from 'node:http';
import type { IncomingMessage, RequestOptions } from 'node:http';
import * as https from 'node:https';
import { isIP, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import * as tls from 'node:tls';
import type { AgentConnections } from './agent-connections.js';
import { ConsoleError } from './errors.js';

/** An HTTP proxy for the authority calls. The credentials are kept encoded and never printed. */
export interface ProxySettings {
  readonly host: string;
  readonly port: number;
  /** `Basic …` for Proxy-Authorization, or null without credentials. */
  readonly authorization: string | null;
  /** `http://user:***@host:port`: what messages and logs may show. */
  readonly display: string;
}

/**
 * Parses `http://[user:password@]HOST:PORT` (the password %-encoded, or given apart with
 * `password`, e.g. read from a file). Only http:// proxies: the tunnel to an https:// authority
 * is TLS end to end through CONNECT, so the proxy never sees the keys.
 */
export function parseProxyUrl(text: string, password?: string): ProxySettings {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConsoleError('PROXY_URL_INVALID', '--proxy is not a URL: give http://[user:password@]HOST:PORT');
  }
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new ConsoleError(
        'PROXY_URL_INVALID',
        `--proxy http://…@${url.host}: the user name or password holds a malformed %-escape (write % as %25)`,
      );
    }
  };
  const shown = `http://${url.username ? `${decode(url.username)}:***@` : ''}${url.host}`;
  if (url.protocol !== 'http:' || !url.hostname || (url.pathname !== '/' && url.pathname !== '') || url.search) {
    throw new ConsoleError(
      'PROXY_URL_INVALID',
      `--proxy ${url.protocol === 'http:' ? shown : `${url.protocol}//${url.host}`} is not http://[user:password@]HOST:PORT (no path; https:// proxies are not supported: the tunnel itself carries TLS)`,
    );
  }
  const user = decode(url.username);
  const pass = password ?? decode(url.password);
  if (!user && pass) {
    throw new ConsoleError('PROXY_URL_INVALID', `--proxy ${shown} has a password but no user name`);
  }
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port) || 80,
    authorization: user ? `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` : null,
    display: `http://${user ? `${user}:***@` : ''}${url.host}`,
  };
}

export type TransportFailure = 'unreachable' | 'timeout' | 'proxy-unreachable' | 'proxy-auth' | 'proxy-refused';

/**
 * What a failed TLS connection most likely means, for the caller's message:
 * - `server-certificate`: the target's certificate did not verify (another CA, expired, or
 *   not for this name or address);
 * - `client-certificate`: the target refused this side's client certificate, or asked for one
 *   it did not get: a TLS alert about it, or the connection closed right after the handshake
 *   before any answer (how a server that checks the certificate itself drops it).
 */
export type TlsFailure = 'server-certificate' | 'client-certificate';

/** A request that got no HTTP answer from the target: the caller names it (agent, authority). */
export class TransportError extends Error {
  constructor(
    readonly kind: TransportFailure,
    message: string,
    /** Set when the TLS connection to an https:// target failed in a way it names. */
    readonly tls?: TlsFailure,
  ) {
    super(message);
  }
}

export interface JsonRequest {
  readonly url: URL;
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  readonly timeoutMs: number;
  readonly proxy?: ProxySettings;
  /** Extra CA certificates to trust for https:// targets (a private PKI; tests). */
  readonly ca?: string | Buffer;
  /** A client certificate (PEM) shown to https:// targets that ask for one (mutual TLS); with `key`. */
  readonly cert?: string | Buffer;
  /** The private key of `cert` (PEM). */
  readonly key?: string | Buffer;
  /** Largest response body read (default 4 MiB); more is a bad response. */
  readonly maxBytes?: number;
  /**
   * Connect to this IP address instead of resolving the URL's host name (which still names the
   * target in Host and TLS): every call to an agent goes where its probe went. Direct only.
   */
  readonly connectTo?: string;
  /**
   * Keep-alive connections to reuse (direct requests only; see AgentConnections); without, a
   * new connection per request, closed after it.
   */
  readonly connections?: AgentConnections;
}

export interface JsonResponse {
  readonly status: number;
  /** The parsed JSON body; undefined when the body is empty or not JSON. */
  readonly body: unknown;
  readonly isJson: boolean;
  /** The IP address and port this side's connection reached (direct requests only). */
  readonly peer: { readonly address: string; readonly port: number } | null;
}

const describe = (err: unknown) => {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}${e.message && !e.message.startsWith(e.code) ? ` (${e.message})` : ''}` : e.message;
};

/** Node's codes for a server certificate that does not verify (OpenSSL's X509_V_ERR_* names). */
const SERVER_CERTIFICATE_CODES =
  /^(UNABLE_TO_|SELF_SIGNED_CERT_IN_CHAIN$|DEPTH_ZERO_SELF_SIGNED_CERT$|CERT_|INVALID_CA$|ERR_TLS_CERT_ALTNAME_INVALID$)/;
/**
 * TLS alerts a server sends about the client's certificate (RFC 8446 §6.2): certificate_required
 * (116), unknown_ca (48), bad_certificate (42), certificate_unknown (46), …; a TLS 1.2 server
 * without a certificate to verify answers handshake_failure (40).
 */
const CLIENT_CERTIFICATE_ALERTS =
  /alert (certificate required|unknown ca|bad certificate|certificate unknown|certificate expired|certificate revoked|unsupported certificate|access denied|handshake failure)/i;

/** Classifies a failed request to an https:// target (see TlsFailure); undefined when unrelated to TLS. */
function tlsFailureOf(err: unknown, handshakeDone: boolean, answered: boolean): TlsFailure | undefined {
  const e = err as NodeJS.ErrnoException;
  const code = e.code ?? '';
  if (!handshakeDone && SERVER_CERTIFICATE_CODES.test(code)) return 'server-certificate';
  if (CLIENT_CERTIFICATE_ALERTS.test(e.message ?? '')) return 'client-certificate';
  if (handshakeDone && !answered && (code === 'ECONNRESET' || code === 'EPIPE')) return 'client-certificate';
  return undefined;
}

/** A request that failed on a kept-alive connection before any answer: the target may have closed it meanwhile. */
class StaleConnection extends Error {
  constructor(readonly failure: TransportError) {
    super(failure.message);
  }
}

/** Methods that may be sent again when a kept-alive connection turns out closed (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'PUT', 'DELETE']);

/**
 * One JSON request over HTTP(S), optionally through an HTTP proxy: to an http:// target as a
 * forward-proxy request (absolute URI), to an https:// target through a CONNECT tunnel, with
 * Proxy-Authorization either way. One deadline covers connecting, the tunnel and the answer.
 *
 * With `connections`, a direct request may go over a kept-alive connection; one the target
 * closed meanwhile (reset before any answer) is retried once on another connection for the
 * idempotent methods, within the same deadline. `peer` is the connection that answered.
 */
export function requestJson(req: JsonRequest): Promise<JsonResponse> {
  if (!req.connections || req.proxy) return requestOnce(req);
  if ((req.cert === undefined) !== (req.key === undefined)) {
    throw new TypeError('a client certificate needs its key, and a key its certificate');
  }
  return retryingStale(req);
}

async function retryingStale(req: JsonRequest): Promise<JsonResponse> {
  const started = performance.now();
  try {
    return await requestOnce(req, IDEMPOTENT.has(req.method));
  } catch (err) {
    if (!(err instanceof StaleConnection)) throw err;
    const left = req.timeoutMs - (performance.now() - started);
    if (left < 1) throw new TransportError('timeout', `no answer from ${req.url.origin} within ${req.timeoutMs} ms`);
    return requestOnce({ ...req, timeoutMs: Math.ceil(left) });
  }
}

function requestOnce(req: JsonRequest, retryStale = false): Promise<JsonResponse> {
  const { url, proxy } = req;
  const pool = proxy ? undefined : req.connections?.for(url.protocol === 'https:');
  const isHttps = url.protocol === 'https:';
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port) || (isHttps ? 443 : 80);
  const authority = `${isIP(hostname) === 6 ? `[${hostname}]` : hostname}:${port}`;
  const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  const headers: Record<string, string> = {
    accept: 'application/json',
    ...req.headers,
    host: url.host,
    ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
  };
  const maxBytes = req.maxBytes ?? 4 * 1024 * 1024;
  if ((req.cert === undefined) !== (req.key === undefined)) {
    throw new TypeError('a client certificate needs its key, and a key its certificate');
  }
  /** TLS options for an https:// target: the CAs it may chain to, and this side's certificate. */
  const tlsOptions = {
    ...(req.ca ? { ca: req.ca } : {}),
    ...(req.cert && req.key ? { cert: req.cert, key: req.key } : {}),
  };

  return new Promise<JsonResponse>((resolve, reject) => {
    const sockets = new Set<{ destroy(): void }>();
    let settled = false;
    // Where a TLS connection got to, to tell a refused client certificate from a dead target.
    let handshakeDone = false;
    let answered = false;
    const watchHandshake = (socket: tls.TLSSocket) => socket.once('secureConnect', () => (handshakeDone = true));
    const unreachable = (err: unknown) =>
      new TransportError(
        'unreachable',
        `${url.origin}: ${describe(err)}`,
        isHttps ? tlsFailureOf(err, handshakeDone, answered) : undefined,
      );
    // Set when the request went over a kept-alive connection (see requestJson).
    let reused = false;
    const settle = (err: Error | null, value?: JsonResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // An answered request leaves its kept-alive connection to the pool; a failed one closes it.
      if (err || !pool) for (const s of sockets) s.destroy();
      if (err) reject(err);
      else resolve(value as JsonResponse);
    };
    const timer = setTimeout(
      () => settle(new TransportError('timeout', `no answer from ${url.origin} within ${req.timeoutMs} ms`)),
      req.timeoutMs,
    );

    const onResponse = (res: IncomingMessage, viaForwardProxy: boolean) => {
      sockets.add(res);
      answered = true;
      const remote = res.socket;
      const peer =
        !proxy && remote.remoteAddress !== undefined && remote.remotePort !== undefined
          ? { address: remote.remoteAddress, port: remote.remotePort }
          : null;
      if (viaForwardProxy && res.statusCode === 407) {
        settle(
          new TransportError(
            'proxy-auth',
            `the proxy ${proxy?.display} refused ${proxy?.authorization ? 'the user name and password' : 'the request without credentials'} (HTTP 407)`,
          ),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          settle(new TransportError('unreachable', `${url.origin} sent more than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (err) => settle(unreachable(err)));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        let isJson = false;
        if (text.trim() !== '') {
          try {
            body = JSON.parse(text);
            isJson = true;
          } catch {
            body = undefined;
          }
        }
        const status = res.statusCode ?? 0;
        if (viaForwardProxy && !isJson && (status === 502 || status === 503 || status === 504)) {
          settle(
            new TransportError(
              'unreachable',
              `the proxy ${proxy?.display} could not reach ${url.origin} (HTTP ${status})`,
            ),
          );
          return;
        }
        settle(null, { status, body, isJson, peer });
      });
    };

    const send = (options: RequestOptions, viaForwardProxy: boolean, transport: typeof http | typeof https) => {
      const request = transport.request(options, (res) => onResponse(res, viaForwardProxy));
      sockets.add(request);
      if (transport === https) {
        request.once('socket', (socket) => {
          if (socket instanceof tls.TLSSocket) watchHandshake(socket);
        });
      }
      if (pool) request.once('socket', () => (reused = request.reusedSocket));
      request.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code;
        if (retryStale && reused && !answered && (code === 'ECONNRESET' || code === 'EPIPE')) {
          settle(new StaleConnection(unreachable(err)));
          return;
        }
        settle(
          viaForwardProxy
            ? new TransportError('proxy-unreachable', `the proxy ${proxy?.display}: ${describe(err)}`)
            : unreachable(err),
        );
      });
      request.end(payload);
    };

    const path = `${url.pathname}${url.search}`;
    if (!proxy) {
      send(
        {
          method: req.method,
          hostname: req.connectTo ?? hostname,
          port,
          path,
          headers,
          agent: pool ?? false,
          ...(isHttps ? { servername: isIP(hostname) ? undefined : hostname, ...tlsOptions } : {}),
        },
        false,
        isHttps ? https : http,
      );
      return;
    }
    const proxyAuth: Record<string, string> = proxy.authorization ? { 'proxy-authorization': proxy.authorization } : {};
    if (!isHttps) {
      // A plain forward-proxy request: the absolute URI as the request target.
      send(
        {
          method: req.method,
          host: proxy.host,
          port: proxy.port,
          path: url.href,
          headers: { ...headers, ...proxyAuth },
          agent: false,
        },
        true,
        http,
      );
      return;
    }
    const connect = http.request({
      method: 'CONNECT',
      host: proxy.host,
      port: proxy.port,
      path: authority,
      headers: { host: authority, ...proxyAuth },
      agent: false,
    });
    sockets.add(connect);
    const tunnelRefused = (status: number) =>
      status === 407
        ? new TransportError(
            'proxy-auth',
            `the proxy ${proxy.display} refused ${proxy.authorization ? 'the user name and password' : 'a tunnel without credentials'} (HTTP 407)`,
          )
        : new TransportError(
            'proxy-refused',
            `the proxy ${proxy.display} refused a tunnel to ${authority} (HTTP ${status})`,
          );
    connect.on('connect', (res: IncomingMessage, socket: Socket) => {
      sockets.add(socket);
      if (res.statusCode !== 200) {
        settle(tunnelRefused(res.statusCode ?? 0));
        return;
      }
      const secure = tls.connect({
        socket,
        // The identity checked is the target's (its name, or its IP address), not the proxy's.
        host: hostname,
        ...(isIP(hostname) ? {} : { servername: hostname }),
        ...tlsOptions,
      });
      sockets.add(secure);
      watchHandshake(secure);
      send({ method: req.method, path, headers, createConnection: () => secure }, false, http);
    });
    connect.on('response', (res: IncomingMessage) => {
      sockets.add(res);
      settle(tunnelRefused(res.statusCode ?? 0));
    });
    connect.on('error', (err) =>
      settle(new TransportError('proxy-unreachable', `the proxy ${proxy.display}: ${describe(err)}`)),
    );
    connect.end();
  });
}
