import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { ManualClock, agentProbeProofAt, sha256, type ProductConfig } from '@volact/core';
import { Authority } from '@volact/authority';
import { ClientError, Licence } from './index.js';
import { checkAgentTls, createAgentServer, type AgentServerOptions } from './agent-entry.js';
import { makeTestPki, type TestCertificate, type TestPki } from './tls-test-pki.js';

const TOKEN = 'agent-token-0123456789abcdef';
const BIN = fileURLToPath(new URL('../../../bin/volact.js', import.meta.url));
const NONCE = '0123456789abcdef0123456789abcdef';

let pki: TestPki;
let root: string;
let product: ProductConfig;
let gvlk: string;
const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));

beforeAll(async () => {
  pki = makeTestPki();
  root = mkdtempSync(join(tmpdir(), 'volact-agent-tls-'));
  const authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  gvlk = product.gvlk;
  await authority.close();
});
afterAll(() => {
  pki.remove();
  rmSync(root, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  /** The parsed JSON, as loosely typed as fastify's inject().json(). */
  readonly body: ReturnType<typeof JSON.parse>;
}

/** A pino line of the agent, the fields the tests read. */
interface LogLine {
  readonly msg: string;
  readonly level: number;
  readonly path?: string;
  readonly reason?: string;
  readonly client?: { subject: string; fingerprint: string } | null;
}

/** One HTTPS call to 127.0.0.1:port, trusting the test CA, with or without a client certificate. */
function call(
  port: number,
  options: { method?: string; path: string; body?: object; token?: string; client?: TestCertificate },
): Promise<Answer> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path,
        agent: false,
        ca: pki.ca.cert,
        ...(options.client ? { cert: options.client.cert, key: options.client.key } : {}),
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(payload ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}

/** The error of a call the agent drops (a TLS-level refusal). */
async function dropped(answer: Promise<Answer>): Promise<NodeJS.ErrnoException> {
  try {
    const r = await answer;
    throw new Error(`answered ${r.status}: ${JSON.stringify(r.body)}`);
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
}

let n = 0;
/** A fresh installation and an HTTPS agent on it, listening on loopback, its log lines kept. */
async function startAgent(options: Partial<AgentServerOptions>) {
  const stateDir = join(root, `client-${++n}`);
  Licence.init({ stateDir, product, hardwareId: `hw-tls-${n}`, clock });
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  const app: FastifyInstance = createAgentServer({ stateDir, logger, clock, timeoutMs: 500, ...options });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const entries = () => lines.map((l) => JSON.parse(l) as LogLine);
  return { app, port, stateDir, log: () => lines.join(''), entries };
}

const mtls = () => ({ cert: pki.server.cert, key: pki.server.key, clientCa: pki.ca.cert });
/** What the agent shows of a certificate: its CN and SHA-256 fingerprint. */
const identity = (c: TestCertificate) => {
  const x509 = new X509Certificate(c.cert);
  return { subject: x509.subject.replace(/^CN=/, ''), fingerprint: x509.fingerprint256 };
};

describe('agent over mutual TLS, no token', () => {
  it('a console with a client certificate of --client-ca reads the status and installs a key; each call is logged with its CN and fingerprint', async () => {
    const agent = await startAgent({ tls: mtls() });
    try {
      const status = await call(agent.port, { path: '/v1/status', client: pki.client });
      expect(status.status).toBe(200);
      expect(status.body).toMatchObject({ agent: { version: 1 }, group: 'office14' });

      const installed = await call(agent.port, {
        method: 'POST',
        path: '/v1/key',
        body: { key: gvlk },
        client: pki.client,
      });
      expect(installed.status).toBe(200);
      expect(installed.body.status.installedKeyType).toBe('gvlk');

      const me = identity(pki.client);
      const calls = agent.entries().filter((e) => e.msg === 'management call');
      expect(calls.map((e) => e.path)).toEqual(['/v1/status', '/v1/key']);
      expect(calls[0]).toMatchObject({ from: '127.0.0.1', client: me });
      // The lines of the call itself carry the certificate too (who installed the key).
      expect(agent.entries().find((e) => e.msg === 'key installed')).toMatchObject({ client: me });
    } finally {
      await agent.app.close();
    }
  });

  it('drops a connection without a client certificate, or with one of another CA, before any HTTP; logs each', async () => {
    const agent = await startAgent({ tls: mtls() });
    try {
      const none = await dropped(call(agent.port, { path: '/v1/status', token: TOKEN }));
      expect(none.code).toMatch(/ECONNRESET|EPIPE/);
      const rogue = await dropped(call(agent.port, { path: '/v1/status', client: pki.rogue }));
      expect(rogue.code).toMatch(/ECONNRESET|EPIPE/);
      // The second console of the same CA is fine: the CA is what is trusted.
      expect((await call(agent.port, { path: '/v1/status', client: pki.client2 })).status).toBe(200);

      const refusals = agent.entries().filter((e) => e.msg === 'TLS client refused');
      expect(refusals).toHaveLength(2);
      expect(refusals[0]).toMatchObject({
        level: 40,
        from: '127.0.0.1',
        reason: 'no client certificate',
        client: null,
      });
      expect(refusals[1]).toMatchObject({ from: '127.0.0.1', client: identity(pki.rogue) });
      expect(refusals[1]!.reason).toMatch(/not signed by the CA of --client-ca \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
      expect(agent.entries().filter((e) => e.msg === 'management call')).toHaveLength(1);
      expect(agent.log()).not.toContain(TOKEN);
    } finally {
      await agent.app.close();
    }
  });

  it('GET /v1/probe: no token to prove, so it names the verified client certificate (proof null)', async () => {
    const agent = await startAgent({ tls: mtls() });
    try {
      const probe = await call(agent.port, { path: `/v1/probe?nonce=${NONCE}`, client: pki.client });
      expect(probe.status).toBe(200);
      expect(probe.body).toEqual({
        agent: { version: 1 },
        enrolled: false,
        proof: null,
        clientCertificate: identity(pki.client),
      });
      await dropped(call(agent.port, { path: `/v1/probe?nonce=${NONCE}` }));
    } finally {
      await agent.app.close();
    }
  });

  it('inject() has no TLS connection: every call is refused (fails closed)', async () => {
    const agent = await startAgent({ tls: mtls() });
    try {
      for (const url of ['/v1/status', `/v1/probe?nonce=${NONCE}`, '/v1/%zz']) {
        const r = await agent.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${TOKEN}` } });
        expect(r.statusCode, url).toBe(401);
        expect(r.json().error.message).toMatch(/client certificate signed by the CA of --client-ca/);
      }
    } finally {
      await agent.app.close();
    }
  });
});

describe('agent over mutual TLS with a token: both are needed', () => {
  it('the right certificate without the token is 401; the token without a certificate is dropped; both pass', async () => {
    const agent = await startAgent({ tls: mtls(), adminToken: TOKEN });
    try {
      const noToken = await call(agent.port, { path: '/v1/status', client: pki.client });
      expect(noToken.status).toBe(401);
      expect(noToken.body.error).toMatchObject({ code: 'UNAUTHORIZED', message: /Bearer.*client certificate/ });
      const wrongToken = await call(agent.port, { path: '/v1/status', client: pki.client, token: `${TOKEN}x` });
      expect(wrongToken.status).toBe(401);
      await dropped(call(agent.port, { path: '/v1/status', token: TOKEN }));
      await dropped(call(agent.port, { path: '/v1/status', token: TOKEN, client: pki.rogue }));
      expect((await call(agent.port, { path: '/v1/status', client: pki.client, token: TOKEN })).status).toBe(200);

      // The probe proves the token, as without TLS, and names the certificate.
      const probe = await call(agent.port, { path: `/v1/probe?nonce=${NONCE}`, client: pki.client });
      expect(probe.body).toEqual({
        agent: { version: 1 },
        enrolled: false,
        proof: agentProbeProofAt(sha256(Buffer.from(TOKEN)), NONCE, '127.0.0.1', agent.port),
        clientCertificate: identity(pki.client),
      });

      const refused = agent.entries().filter((e) => e.msg === 'unauthorized request refused');
      expect(refused.map((e) => e.reason)).toEqual(['no bearer token', 'wrong token']);
      expect(refused[0]).toMatchObject({ client: identity(pki.client), path: '/v1/status' });
      expect(agent.log()).not.toContain(TOKEN);
    } finally {
      await agent.app.close();
    }
  });

  it('TLS without --client-ca: HTTPS with the token, no certificate asked', async () => {
    const agent = await startAgent({ tls: { cert: pki.server.cert, key: pki.server.key }, adminToken: TOKEN });
    try {
      expect((await call(agent.port, { path: '/v1/status', token: TOKEN })).status).toBe(200);
      expect((await call(agent.port, { path: '/v1/status' })).status).toBe(401);
      const probe = await call(agent.port, { path: `/v1/probe?nonce=${NONCE}` });
      expect(probe.body).toEqual({
        agent: { version: 1 },
        enrolled: false,
        proof: agentProbeProofAt(sha256(Buffer.from(TOKEN)), NONCE, '127.0.0.1', agent.port),
      });
    } finally {
      await agent.app.close();
    }
  });
});

describe('createAgentServer and checkAgentTls refuse what cannot work', () => {
  const stateDir = () => join(root, 'unused');
  it('no token and no client CA; a short token', () => {
    expect(() => createAgentServer({ stateDir: stateDir() })).toThrow(/admin token .*or mutual TLS/);
    expect(() =>
      createAgentServer({ stateDir: stateDir(), tls: { cert: pki.server.cert, key: pki.server.key } }),
    ).toThrow(/admin token .*or mutual TLS/);
    expect(() => createAgentServer({ stateDir: stateDir(), adminToken: 'short', tls: mtls() })).toThrow(/at least 16/);
  });

  it('a key of another certificate, a non-PEM certificate or key, a client CA without a certificate: AGENT_TLS_INVALID naming it', () => {
    const failure = (tls: Parameters<typeof checkAgentTls>[0]) => {
      try {
        checkAgentTls(tls, { cert: '--tls-cert C', key: '--tls-key K', clientCa: '--client-ca A' });
      } catch (err) {
        expect(err).toBeInstanceOf(ClientError);
        expect((err as ClientError).code).toBe('AGENT_TLS_INVALID');
        return (err as ClientError).message;
      }
      throw new Error('accepted');
    };
    expect(failure({ cert: pki.server.cert, key: pki.client.key })).toMatch(
      /^--tls-key K is not the key of --tls-cert C/,
    );
    expect(failure({ cert: 'not a certificate', key: pki.server.key })).toMatch(
      /^--tls-cert C is not a PEM certificate/,
    );
    expect(failure({ cert: pki.server.cert, key: pki.server.cert })).toMatch(/^--tls-key K is not an unencrypted PEM/);
    expect(failure({ cert: pki.server.cert, key: pki.server.key, clientCa: pki.server.key })).toMatch(
      /^--client-ca A holds no PEM certificate/,
    );
    expect(() => createAgentServer({ stateDir: stateDir(), tls: { ...mtls(), key: pki.client.key } })).toThrow(
      /tls\.key is not the key of tls\.cert/,
    );
    expect(checkAgentTls(mtls())).toMatchObject({ subject: 'CN=agent', fingerprint: identity(pki.server).fingerprint });
  });
});

describe('volact client agent with TLS (the built CLI)', () => {
  const stateDir = () => join(root, 'cli-client');
  const volact = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [BIN, 'client', 'agent', '--state-dir', stateDir(), '--listen', '127.0.0.1:0', ...args],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    );

  it('refuses flag combinations that cannot work, naming the flag, before it listens', () => {
    // The CLI agent reads the product at its installed location (the store keeps no copy).
    const productPath = join(root, 'tls-cli-product.json');
    writeFileSync(productPath, JSON.stringify(product));
    Licence.init({ stateDir: stateDir(), product, productPath, hardwareId: 'hw-tls-cli' });
    const tokenFile = join(root, 'agent-token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const cases: [string[], RegExp][] = [
      [[], /error OPTION_INVALID: --admin-token-file is required \(or mutual TLS instead/],
      [['--tls-cert', pki.server.certFile], /error OPTION_INVALID: --tls-cert and --tls-key go together/],
      [['--tls-key', pki.server.keyFile, '--admin-token-file', tokenFile], /--tls-cert and --tls-key go together/],
      [
        ['--client-ca', pki.ca.certFile],
        /error OPTION_INVALID: --client-ca \(mutual TLS\) needs --tls-cert and --tls-key/,
      ],
      [
        ['--tls-cert', pki.server.certFile, '--tls-key', pki.server.keyFile],
        /error OPTION_INVALID: --admin-token-file is required unless --client-ca authenticates/,
      ],
      [
        ['--tls-cert', join(root, 'missing.pem'), '--tls-key', pki.server.keyFile, '--client-ca', pki.ca.certFile],
        /error OPTION_INVALID: --tls-cert .*missing\.pem cannot be read \(ENOENT\)/,
      ],
      [
        ['--tls-cert', pki.server.certFile, '--tls-key', pki.client.keyFile, '--client-ca', pki.ca.certFile],
        /error AGENT_TLS_INVALID: --tls-key .*volact-console\.key is not the key of --tls-cert .*agent\.pem/,
      ],
      [
        ['--tls-cert', pki.server.certFile, '--tls-key', pki.server.keyFile, '--client-ca', pki.server.keyFile],
        /error AGENT_TLS_INVALID: --client-ca .*agent\.key holds no PEM certificate/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = volact(...args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain('listening');
      expect(r.stderr).not.toContain('PRIVATE KEY');
    }
  });

  it('mTLS only: shows https:// and how consoles authenticate; serves a console certificate, drops others', async () => {
    const child = spawn(
      process.execPath,
      [
        BIN,
        'client',
        'agent',
        '--state-dir',
        stateDir(),
        '--listen',
        '127.0.0.1:0',
        '--tls-cert',
        pki.server.certFile,
        '--tls-key',
        pki.server.keyFile,
        '--client-ca',
        pki.ca.certFile,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
    const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const port = await new Promise<number>((resolve, reject) => {
      child.stderr.on('data', () => {
        // Both start lines: the address, then how consoles authenticate.
        const m = /client agent listening on https:\/\/127\.0\.0\.1:(\d+)\nconsoles authenticate with .*\n/.exec(
          out.stderr,
        );
        if (m) resolve(Number(m[1]));
      });
      void done.then((code) => reject(new Error(`agent exited ${code}: ${out.stderr}`)));
    });
    try {
      expect(out.stderr).toContain('consoles authenticate with a client certificate signed by --client-ca');
      expect(out.stderr).not.toContain('warning');
      expect((await call(port, { path: '/v1/status', client: pki.client })).status).toBe(200);
      await dropped(call(port, { path: '/v1/status', client: pki.rogue }));
    } finally {
      child.kill('SIGTERM');
    }
    expect(await done).toBe(0);
    expect(out.stdout).toContain('"msg":"management call"');
    expect(out.stdout).toContain(identity(pki.client).fingerprint);
    expect(out.stdout).toContain('"msg":"TLS client refused"');
    expect(out.stdout).toContain('rogue-console');
  });
});
