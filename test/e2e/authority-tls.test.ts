import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `volact authority serve` over HTTPS as an operator runs it (the built binary): the certificate
 * and key given by --tls-cert/--tls-key, replaced on disk and re-read on SIGHUP without
 * dropping open connections, a bad replacement refused (the old certificate stays), and
 * --trust-proxy believing X-Forwarded-For only from the listed proxies. Certificates are made
 * by openssl per run.
 */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'volact-authority-tls-'));
const dataDir = join(dir, 'authority');
const certFile = join(dir, 'serve', 'cert.pem');
const keyFile = join(dir, 'serve', 'key.pem');
const children = new Set<ChildProcess>();

function openssl(...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.error) throw new Error(`openssl is needed for the TLS tests (scripts/test.sh installs it): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${r.stderr}`);
}

const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A server certificate for 127.0.0.1 signed by the test CA; `serial` tells the two apart. */
function makeServerCert(name: string, serial: string): { cert: string; key: string; x509: X509Certificate } {
  openssl('req', '-new', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  writeFileSync(
    join(dir, `${name}.ext`),
    'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-set_serial',
    serial,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  );
  const cert = join(dir, `${name}.pem`);
  return { cert, key: join(dir, `${name}.key`), x509: new X509Certificate(readFileSync(cert)) };
}

function volact(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Node {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  readonly log: () => string;
}

/** Starts `authority serve …flags`; resolves once it reports "listening". */
function serve(...flags: string[]): Promise<Node> {
  const child = spawn(
    process.execPath,
    [BIN, 'authority', 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--log-level', 'info', ...flags],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-100_000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`authority serve did not report listening in 20 s: ${err}`)),
      20_000,
    );
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /authority listening on (https?:\/\/127\.0\.0\.1:(\d+))/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string, port: Number(m[2]), log: () => `${out}\n${err}` });
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`authority serve exited (${code ?? signal}) before listening: ${err}`));
    });
  });
}

/** Polls a condition (bounded): the daemon's log is flushed every 500 ms. */
async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`${what}: not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let ca: string;

/** A fresh TLS connection trusting the test CA only: the certificate the server presents now. */
function handshake(port: number): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.once('error', reject);
  });
}

/** One HTTP/1.1 exchange on an open socket (keep-alive): the status line and the JSON body. */
function exchange(socket: tls.TLSSocket, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    let raw = '';
    const onData = (d: Buffer) => {
      raw += d.toString();
      const head = raw.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(raw.slice(0, head))?.[1] ?? NaN);
      if (raw.length < head + 4 + length) return;
      socket.off('data', onData);
      socket.off('error', reject);
      resolve({
        status: Number(raw.slice(9, 12)),
        body: JSON.parse(raw.slice(head + 4, head + 4 + length)) as unknown,
      });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
  });
}

function openSocket(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** GET over HTTPS trusting the test CA, from `localAddress`, with extra headers. */
function get(
  node: Node,
  path: string,
  options: { localAddress?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: unknown }> {
  const client = node.url.startsWith('https') ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      `${node.url}${path}`,
      {
        ca,
        agent: false,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        headers: options.headers,
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
      },
    );
    req.once('error', reject);
    req.end();
  });
}

/** The source the audit log recorded for a refused request to `path` ("from <address>: …"). */
function auditedSource(path: string): string {
  const db = new Database(join(dataDir, 'authority.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT detail FROM audit_log WHERE action = ? ORDER BY id').all(`http GET ${path}`) as {
      detail: string;
    }[];
    if (rows.length !== 1) throw new Error(`expected one audit row for GET ${path}, found ${rows.length}`);
    return /^from (\S+?):/.exec(rows[0]!.detail)?.[1] ?? `(no source in "${rows[0]!.detail}")`;
  } finally {
    db.close();
  }
}

let one: ReturnType<typeof makeServerCert>;
let two: ReturnType<typeof makeServerCert>;
let node: Node;

const install = (c: { cert: string; key: string }) => {
  copyFileSync(c.cert, certFile);
  copyFileSync(c.key, keyFile);
};

beforeAll(async () => {
  openssl('req', '-x509', ...NEW_KEY, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=test-ca');
  ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
  one = makeServerCert('first', '0x0a01');
  two = makeServerCert('second', '0x0b02');
  mkdirSync(join(dir, 'serve'));
  install(one);
  expect(volact('authority', 'init', '--data-dir', dataDir).code).toBe(0);
  node = await serve('--tls-cert', certFile, '--tls-key', keyFile, '--trust-proxy', '127.0.0.1,10.9.0.0/16');
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('authority serve --tls-cert --tls-key', () => {
  it('serves HTTPS: a client trusting the CA reads /v1/health, the start line says https', async () => {
    expect(node.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await get(node, '/v1/health')).toEqual({
      status: 200,
      body: { status: 'ok', name: 'volact authority', database: 'ok' },
    });
    expect((await handshake(node.port)).fingerprint256).toBe(one.x509.fingerprint256);
    // Plain HTTP on the same port gets no answer in clear text.
    await expect(fetch(`http://127.0.0.1:${node.port}/v1/health`)).rejects.toThrow();
  });

  it('on SIGHUP re-reads both files: new handshakes get the new certificate, an open keep-alive connection keeps working', async () => {
    const open = await openSocket(node.port);
    expect(await exchange(open, '/v1/health')).toMatchObject({ status: 200, body: { status: 'ok' } });

    install(two);
    node.child.kill('SIGHUP');
    await until(
      async () => (await handshake(node.port)).fingerprint256 === two.x509.fingerprint256,
      'new connections see the second certificate',
    );
    const now = await handshake(node.port);
    expect(now.serialNumber.toUpperCase()).toBe(two.x509.serialNumber.toUpperCase());
    await until(() => node.log().includes('"msg":"tls certificate reloaded"'), 'the reload is logged');
    expect(node.log()).toContain(`"fingerprint":"${two.x509.fingerprint256}"`);

    // The connection opened before the reload still answers, with the certificate it shook hands with.
    expect(await exchange(open, '/v1/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(open.getPeerCertificate().fingerprint256).toBe(one.x509.fingerprint256);
    open.end();
    expect(node.child.exitCode).toBeNull(); // SIGHUP reloads, it does not stop the authority
  });

  it('a broken file on SIGHUP keeps the previous certificate and logs why', async () => {
    const refusals = () => node.log().split('tls reload refused').length - 1;

    writeFileSync(certFile, 'not a certificate\n');
    node.child.kill('SIGHUP');
    await until(() => refusals() === 1, 'the refused reload is logged');
    expect(node.log()).toMatch(/"reason":"--tls-cert \S+cert\.pem is not PEM[^"]*"/);
    expect((await handshake(node.port)).fingerprint256).toBe(two.x509.fingerprint256);

    // The first certificate with the second one's key: the key does not match.
    copyFileSync(one.cert, certFile);
    copyFileSync(two.key, keyFile);
    node.child.kill('SIGHUP');
    await until(() => refusals() === 2, 'the second refused reload is logged');
    expect(node.log()).toMatch(/"reason":"--tls-key \S+key\.pem is not the key of --tls-cert/);
    expect((await handshake(node.port)).fingerprint256).toBe(two.x509.fingerprint256);

    rmSync(keyFile);
    node.child.kill('SIGHUP');
    await until(() => refusals() === 3, 'the third refused reload is logged');
    expect(node.log()).toMatch(/"reason":"--tls-key \S+key\.pem does not exist"/);
    expect(await get(node, '/v1/health')).toMatchObject({ status: 200 });
    expect((await handshake(node.port)).fingerprint256).toBe(two.x509.fingerprint256);

    // Fixed files are taken at the next SIGHUP.
    install(one);
    node.child.kill('SIGHUP');
    await until(
      async () => (await handshake(node.port)).fingerprint256 === one.x509.fingerprint256,
      'the fixed files are served',
    );
  });

  it('refuses to start with a missing, non-PEM or mismatched file, naming it', () => {
    const start = (...flags: string[]) =>
      volact('authority', 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', ...flags);
    const missing = start('--tls-cert', join(dir, 'nope.pem'), '--tls-key', one.key);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error OPTION_INVALID: --tls-cert \S+nope\.pem does not exist/);

    writeFileSync(join(dir, 'junk.pem'), 'junk');
    const notPem = start('--tls-cert', one.cert, '--tls-key', join(dir, 'junk.pem'));
    expect(notPem.code).toBe(1);
    expect(notPem.stderr).toMatch(/^error OPTION_INVALID: --tls-key \S+junk\.pem is not PEM/);

    const mismatch = start('--tls-cert', one.cert, '--tls-key', two.key);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toMatch(
      /^error OPTION_INVALID: --tls-key \S+second\.key is not the key of --tls-cert \S+first\.pem/,
    );

    const alone = start('--tls-cert', one.cert);
    expect(alone.code).toBe(1);
    expect(alone.stderr).toMatch(/^error OPTION_INVALID: --tls-cert needs --tls-key/);

    const badProxy = start('--trust-proxy', '10.0.0.0/33');
    expect(badProxy.code).toBe(1);
    expect(badProxy.stderr).toMatch(
      /^error OPTION_INVALID: --trust-proxy "10\.0\.0\.0\/33" is not an IP address or CIDR/,
    );
  });
});

describe('authority serve without TLS', () => {
  it('logs a SIGHUP and keeps serving (a service manager reload does not stop it)', async () => {
    const plain = await serve();
    expect(plain.url).toMatch(/^http:\/\//);
    plain.child.kill('SIGHUP');
    await until(() => plain.log().includes('SIGHUP: nothing to reload'), 'the SIGHUP is logged');
    expect(await get(plain, '/v1/health')).toMatchObject({ status: 200 });
    expect(plain.child.exitCode).toBeNull();
    plain.child.kill('SIGTERM');
  });

  it('behind a TLS proxy: X-Forwarded-Proto https from the listed proxy makes the session cookie Secure, from anyone else not', async () => {
    writeFileSync(join(dir, 'owner.pw'), 'a long enough password 0123\n');
    const added = volact(
      'authority',
      'user',
      'add',
      '--data-dir',
      dataDir,
      '--email',
      'owner@publisher.example',
      '--name',
      'Owner',
      '--role',
      'owner',
      '--password-file',
      join(dir, 'owner.pw'),
    );
    expect(added.code, added.stderr).toBe(0);
    const plain = await serve('--trust-proxy', '127.0.0.1');
    const signIn = (localAddress: string) =>
      new Promise<{ status: number | undefined; cookie: string }>((resolve, reject) => {
        const req = http.request(
          `${plain.url}/v1/session`,
          {
            method: 'POST',
            localAddress,
            headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' },
          },
          (res) => {
            res.resume();
            resolve({ status: res.statusCode, cookie: String(res.headers['set-cookie']) });
          },
        );
        req.once('error', reject);
        req.end(JSON.stringify({ email: 'owner@publisher.example', password: 'a long enough password 0123' }));
      });
    const viaProxy = await signIn('127.0.0.1');
    expect(viaProxy.status).toBe(200);
    expect(viaProxy.cookie).toMatch(/^volact_session=[^;]+;.*; Secure$/);
    const direct = await signIn('127.0.0.2');
    expect(direct.status).toBe(200);
    expect(direct.cookie).toMatch(/^volact_session=[^;]+;/);
    expect(direct.cookie).not.toMatch(/Secure/);
    plain.child.kill('SIGTERM');
  });
});

describe('authority serve --trust-proxy', () => {
  it('takes the client address from X-Forwarded-For sent by a listed proxy (its nearest untrusted hop)', async () => {
    // 127.0.0.1 is listed: the proxy appends the client it saw; what the client itself put first is not believed.
    await get(node, '/v1/no-such-route-via-proxy', { headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.7' } });
    expect(auditedSource('/v1/no-such-route-via-proxy')).toBe('203.0.113.7');
  });

  it('ignores X-Forwarded-For from an address not listed', async () => {
    const reply = await get(node, '/v1/no-such-route-direct', {
      localAddress: '127.0.0.2',
      headers: { 'x-forwarded-for': '203.0.113.7' },
    });
    expect(reply.status).toBe(404);
    expect(auditedSource('/v1/no-such-route-direct')).toBe('127.0.0.2');
  });

  it('ends cleanly on SIGTERM after the reloads', async () => {
    const exited = new Promise<number | null>((resolve) => node.child.once('exit', (code) => resolve(code)));
    node.child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
