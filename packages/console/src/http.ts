import * as http from 'node:http';
import type { IncomingMessage, RequestOptions } from 'node:http';
import * as https from 'node:https';
import { isIP, type Socket } from 'node:net';
import * as tls from 'node:tls';
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
  const shown = `http://${url.username ? `${decodeURIComponent(url.username)}:***@` : ''}${url.host}`;
  if (url.protocol !== 'http:' || !url.hostname || (url.pathname !== '/' && url.pathname !== '') || url.search) {
    throw new ConsoleError(
      'PROXY_URL_INVALID',
      `--proxy ${url.protocol === 'http:' ? shown : `${url.protocol}//${url.host}`} is not http://[user:password@]HOST:PORT (no path; https:// proxies are not supported: the tunnel itself carries TLS)`,
    );
  }
  const user = decodeURIComponent(url.username);
  const pass = password ?? decodeURIComponent(url.password);
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

/** A request that got no HTTP answer from the target: the caller names it (agent, authority). */
export class TransportError extends Error {
  constructor(
    readonly kind: TransportFailure,
    message: string,
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
  /** Largest response body read (default 4 MiB); more is a bad response. */
  readonly maxBytes?: number;
}

export interface JsonResponse {
  readonly status: number;
  /** The parsed JSON body; undefined when the body is empty or not JSON. */
  readonly body: unknown;
  readonly isJson: boolean;
}

const describe = (err: unknown) => {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}${e.message && !e.message.startsWith(e.code) ? ` (${e.message})` : ''}` : e.message;
};

/**
 * One JSON request over HTTP(S), optionally through an HTTP proxy: to an http:// target as a
 * forward-proxy request (absolute URI), to an https:// target through a CONNECT tunnel, with
 * Proxy-Authorization either way. One deadline covers connecting, the tunnel and the answer.
 */
export function requestJson(req: JsonRequest): Promise<JsonResponse> {
  const { url, proxy } = req;
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

  return new Promise<JsonResponse>((resolve, reject) => {
    const sockets = new Set<{ destroy(): void }>();
    let settled = false;
    const settle = (err: Error | null, value?: JsonResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const s of sockets) s.destroy();
      if (err) reject(err);
      else resolve(value as JsonResponse);
    };
    const timer = setTimeout(
      () => settle(new TransportError('timeout', `no answer from ${url.origin} within ${req.timeoutMs} ms`)),
      req.timeoutMs,
    );

    const onResponse = (res: IncomingMessage, viaForwardProxy: boolean) => {
      sockets.add(res);
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
      res.on('error', (err) => settle(new TransportError('unreachable', `${url.origin}: ${describe(err)}`)));
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
        settle(null, { status, body, isJson });
      });
    };

    const send = (options: RequestOptions, viaForwardProxy: boolean, transport: typeof http | typeof https) => {
      const request = transport.request(options, (res) => onResponse(res, viaForwardProxy));
      sockets.add(request);
      request.on('error', (err) =>
        settle(
          viaForwardProxy
            ? new TransportError('proxy-unreachable', `the proxy ${proxy?.display}: ${describe(err)}`)
            : new TransportError('unreachable', `${url.origin}: ${describe(err)}`),
        ),
      );
      request.end(payload);
    };

    const path = `${url.pathname}${url.search}`;
    if (!proxy) {
      send(
        {
          method: req.method,
          hostname,
          port,
          path,
          headers,
          agent: false,
          ...(isHttps ? { servername: isIP(hostname) ? undefined : hostname, ...(req.ca ? { ca: req.ca } : {}) } : {}),
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
        ...(req.ca ? { ca: req.ca } : {}),
      });
      sockets.add(secure);
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
