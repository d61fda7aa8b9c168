import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsoleError } from './errors.js';
import { TransportError, parseProxyUrl, requestJson } from './http.js';
import { startTestProxy, type TestProxy } from './proxy-test-server.js';
import { makeTestPki, type TestPki } from '@volact/client/testing';

const USER = 'it-pro';
const PASSWORD = 'p@ss:w0rd secret';

/** What the target saw: the headers of each request. */
const received: http.IncomingHttpHeaders[] = [];
const answer = (req: http.IncomingMessage, res: http.ServerResponse) => {
  received.push(req.headers);
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url, method: req.method, body: body ? (JSON.parse(body) as unknown) : null }));
  });
};

let proxy: TestProxy;
let target: http.Server;
let targetUrl: string;
let silent: http.Server;
let silentUrl: string;
/** An https:// target with a certificate made for this run (openssl), trusted through `ca`. */
let tlsTarget: { server: https.Server; url: string; ca: Buffer } | null = null;
let certDir: string;

const listen = async (server: http.Server | https.Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
};

beforeAll(async () => {
  proxy = await startTestProxy(USER, PASSWORD);
  target = http.createServer(answer);
  targetUrl = `http://127.0.0.1:${await listen(target)}`;
  silent = http.createServer(() => undefined); // accepts, never answers
  silentUrl = `http://127.0.0.1:${await listen(silent)}`;
  certDir = mkdtempSync(join(tmpdir(), 'volact-console-tls-'));
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(certDir, 'key.pem'),
      '-out',
      join(certDir, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=volact-test',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { encoding: 'utf8' },
  );
  if (made.status === 0) {
    const ca = readFileSync(join(certDir, 'cert.pem'));
    const server = https.createServer({ key: readFileSync(join(certDir, 'key.pem')), cert: ca }, answer);
    tlsTarget = { server, url: `https://127.0.0.1:${await listen(server)}`, ca };
  }
});

afterAll(async () => {
  await proxy.close();
  silent.closeAllConnections();
  for (const s of [target, silent, tlsTarget?.server]) {
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  rmSync(certDir, { recursive: true, force: true });
});

const failureOf = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TransportError || err instanceof ConsoleError) return err;
    throw err;
  }
  throw new Error('no failure');
};

describe('parseProxyUrl', () => {
  it('keeps the credentials encoded and shows the password as ***', () => {
    const p = parseProxyUrl(proxy.url);
    expect(p).toMatchObject({
      host: '127.0.0.1',
      port: proxy.port,
      display: `http://${USER}:***@127.0.0.1:${proxy.port}`,
    });
    expect(Buffer.from(p.authorization!.replace('Basic ', ''), 'base64').toString()).toBe(`${USER}:${PASSWORD}`);
    expect(parseProxyUrl('http://bob@proxy.corp:3128', 'from-a-file').authorization).toBe(
      `Basic ${Buffer.from('bob:from-a-file').toString('base64')}`,
    );
    expect(parseProxyUrl('http://proxy.corp:3128')).toMatchObject({ authorization: null, port: 3128 });
  });

  it('refuses https:// proxies, paths and non-URLs without echoing the password', () => {
    for (const bad of [
      'https://u:hunter22@proxy:3128',
      'http://u:hunter22@proxy:3128/path',
      'proxy:3128',
      'socks5://p:1',
    ]) {
      const err = (() => {
        try {
          parseProxyUrl(bad);
        } catch (e) {
          return e as ConsoleError;
        }
        throw new Error(`accepted ${bad}`);
      })();
      expect(err.code).toBe('PROXY_URL_INVALID');
      expect(err.message).not.toContain('hunter22');
    }
  });
});

describe('requestJson through an HTTP proxy with a user name and password', () => {
  it('http:// target: a forward-proxy request (absolute URI) with Proxy-Authorization, not passed on', async () => {
    received.length = 0;
    proxy.seen.length = 0;
    const res = await requestJson({
      url: new URL('/v1/confirmations/bulk', targetUrl),
      method: 'POST',
      body: { installationIds: ['1'] },
      timeoutMs: 2_000,
      proxy: parseProxyUrl(proxy.url),
    });
    expect(res).toMatchObject({
      status: 200,
      body: { path: '/v1/confirmations/bulk', method: 'POST', body: { installationIds: ['1'] } },
    });
    expect(proxy.seen).toEqual([{ method: 'POST', target: `${targetUrl}/v1/confirmations/bulk`, allowed: true }]);
    expect(received[0]!['proxy-authorization']).toBeUndefined();
  });

  it('a wrong password is proxy-auth (HTTP 407), the password never in the message', async () => {
    const err = await failureOf(
      requestJson({
        url: new URL('/x', targetUrl),
        method: 'GET',
        timeoutMs: 2_000,
        proxy: parseProxyUrl(proxy.url.replace(/:[^:@/]+@/, ':wrong-password@')),
      }),
    );
    expect(err).toMatchObject({ kind: 'proxy-auth' });
    expect(err.message).toContain('407');
    expect(err.message).not.toContain('wrong-password');
  });

  // openssl comes with Debian; scripts/test.sh installs it where missing (never skipped).
  it('https:// target: a CONNECT tunnel with Proxy-Authorization, TLS end to end (verified against the given CA)', async () => {
    const t = tlsTarget!;
    proxy.seen.length = 0;
    received.length = 0;
    const res = await requestJson({
      url: new URL('/v1/admin/keys/show', t.url),
      method: 'POST',
      body: { key: 'K' },
      headers: { authorization: 'Bearer admin' },
      timeoutMs: 3_000,
      proxy: parseProxyUrl(proxy.url),
      ca: t.ca,
    });
    expect(res).toMatchObject({ status: 200, body: { path: '/v1/admin/keys/show', body: { key: 'K' } } });
    expect(proxy.seen).toEqual([{ method: 'CONNECT', target: t.url.replace('https://', ''), allowed: true }]);
    expect(received[0]).toMatchObject({ authorization: 'Bearer admin' });
    expect(received[0]!['proxy-authorization']).toBeUndefined();

    // Without the CA the certificate is not trusted: the tunnel is no way around TLS checks.
    const untrusted = await failureOf(
      requestJson({ url: new URL('/x', t.url), method: 'GET', timeoutMs: 3_000, proxy: parseProxyUrl(proxy.url) }),
    );
    expect(untrusted).toMatchObject({ kind: 'unreachable' });
    // A wrong password: the tunnel is refused with 407.
    const refused = await failureOf(
      requestJson({
        url: new URL('/x', t.url),
        method: 'GET',
        timeoutMs: 3_000,
        proxy: parseProxyUrl(proxy.url.replace(/:[^:@/]+@/, ':nope@')),
        ca: t.ca,
      }),
    );
    expect(refused).toMatchObject({ kind: 'proxy-auth' });
  });

  it('a proxy that does not listen is proxy-unreachable; a target that never answers is a timeout', async () => {
    const closed = http.createServer();
    const port = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(
      await failureOf(
        requestJson({
          url: new URL('/x', targetUrl),
          method: 'GET',
          timeoutMs: 2_000,
          proxy: parseProxyUrl(`http://u:p@127.0.0.1:${port}`),
        }),
      ),
    ).toMatchObject({ kind: 'proxy-unreachable' });
    expect(
      await failureOf(requestJson({ url: new URL('/x', silentUrl), method: 'GET', timeoutMs: 150 })),
    ).toMatchObject({ kind: 'timeout' });
  });

  it('a body larger than the limit is refused, not buffered', async () => {
    const big = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`"${'x'.repeat(10_000)}"`);
    });
    const url = `http://127.0.0.1:${await listen(big)}`;
    try {
      expect(
        await failureOf(requestJson({ url: new URL('/', url), method: 'GET', timeoutMs: 2_000, maxBytes: 1_000 })),
      ).toMatchObject({ kind: 'unreachable', message: expect.stringContaining('more than 1000 bytes') });
    } finally {
      await new Promise<void>((resolve) => big.close(() => resolve()));
    }
  });
});

describe('requestJson with a client certificate (mutual TLS)', () => {
  let pki: TestPki;
  /** Asks for a client certificate; Node itself refuses one that does not verify (a TLS alert). */
  let strict: https.Server;
  /** Asks too, lets the handshake finish, then drops an unverified connection (as the agent does). */
  let dropping: https.Server;
  const urls = { strict: '', dropping: '' };
  const seen: (string | null)[] = [];
  const answerWithPeer = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket as TLSSocket;
    seen.push(socket.authorized ? (socket.getPeerCertificate().subject?.CN as string) : null);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true }));
  };

  beforeAll(async () => {
    pki = makeTestPki();
    const options = { cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, requestCert: true };
    strict = https.createServer({ ...options, rejectUnauthorized: true }, answerWithPeer);
    urls.strict = `https://127.0.0.1:${await listen(strict)}`;
    dropping = https.createServer({ ...options, rejectUnauthorized: false }, answerWithPeer);
    dropping.prependListener('secureConnection', (socket: TLSSocket) => {
      if (!socket.authorized) socket.destroy();
    });
    urls.dropping = `https://127.0.0.1:${await listen(dropping)}`;
  });
  afterAll(async () => {
    for (const s of [strict, dropping]) await new Promise<void>((resolve) => s.close(() => resolve()));
    pki.remove();
  });

  const get = (url: string, extra: { ca?: string; cert?: string; key?: string; proxy?: string } = {}) =>
    requestJson({
      url: new URL('/v1/status', url),
      method: 'GET',
      timeoutMs: 3_000,
      ca: extra.ca ?? pki.ca.cert,
      ...(extra.cert ? { cert: extra.cert, key: extra.key } : {}),
      ...(extra.proxy ? { proxy: parseProxyUrl(extra.proxy) } : {}),
    });

  it('shows the certificate to a server that asks: direct, and through a CONNECT tunnel', async () => {
    seen.length = 0;
    for (const url of [urls.strict, urls.dropping]) {
      expect(await get(url, { cert: pki.client.cert, key: pki.client.key })).toMatchObject({ status: 200 });
      expect(await get(url, { cert: pki.client.cert, key: pki.client.key, proxy: proxy.url })).toMatchObject({
        status: 200,
      });
    }
    expect(seen).toEqual(['volact-console', 'volact-console', 'volact-console', 'volact-console']);
  });

  it('a refused client certificate is tls client-certificate: a TLS alert, or a drop right after the handshake', async () => {
    for (const url of [urls.strict, urls.dropping]) {
      for (const extra of [{}, { cert: pki.rogue.cert, key: pki.rogue.key }]) {
        const err = await failureOf(get(url, extra));
        expect(err, `${url} ${extra.cert ? 'rogue' : 'none'}`).toMatchObject({
          kind: 'unreachable',
          tls: 'client-certificate',
        });
      }
    }
    const tunnelled = await failureOf(get(urls.dropping, { proxy: proxy.url }));
    expect(tunnelled).toMatchObject({ kind: 'unreachable', tls: 'client-certificate' });
  });

  it('a server certificate of another CA is tls server-certificate; a dead port names no TLS cause', async () => {
    const err = await failureOf(get(urls.strict, { ca: pki.otherCa.cert, cert: pki.client.cert, key: pki.client.key }));
    expect(err).toMatchObject({ kind: 'unreachable', tls: 'server-certificate' });
    expect(err.message).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|self-signed|issuer/i);

    const closed = http.createServer();
    const port = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = (await failureOf(get(`https://127.0.0.1:${port}`))) as TransportError;
    expect(refused.kind).toBe('unreachable');
    expect(refused.tls).toBeUndefined();
  });

  it('a certificate without its key (or a key alone) is a programming error', () => {
    expect(() =>
      requestJson({ url: new URL(urls.strict), method: 'GET', timeoutMs: 1_000, cert: pki.client.cert }),
    ).toThrow(TypeError);
  });
});
