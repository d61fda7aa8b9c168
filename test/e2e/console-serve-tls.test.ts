import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `volact console serve --tls-cert F --tls-key F` as a user runs it: HTTPS, the start line says
 * https://, no plain-HTTP warning off loopback, the session cookie Secure; a wrong file stops it.
 */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
const PASSWORD = 'console admin password long enough';
let dir: string;
let dataDir: string;
const children = new Set<ChildProcess>();

function openssl(...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.error) throw new Error(`openssl is needed for the TLS tests (scripts/test.sh installs it): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${r.stderr}`);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'volact-console-tls-'));
  dataDir = join(dir, 'console');
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout',
    'key.pem',
    '-out',
    'cert.pem',
  );
  openssl('genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'other.pem');
  writeFileSync(join(dir, 'password'), PASSWORD);
  const init = spawnSync(
    process.execPath,
    [BIN, 'console', 'init', '--data-dir', dataDir, '--admin-password-file', join(dir, 'password')],
    { encoding: 'utf8' },
  );
  expect(init.status, init.stderr).toBe(0);
});

afterAll(() => {
  for (const child of children) child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Starts `console serve` with `args` (the one before it stopped first: one server per data
 * directory); resolves with its start line and what it wrote to stderr by then.
 */
async function serve(args: string[]): Promise<{ url: string; stderr: () => string; child: ChildProcess }> {
  for (const running of children) {
    if (running.exitCode !== null || running.signalCode !== null) continue;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  }
  const child = spawn(process.execPath, [BIN, 'console', 'serve', '--data-dir', dataDir, ...args]);
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const m = /console at (\S+)\n/.exec(stdout);
      if (m) setTimeout(() => resolve({ url: m[1] as string, stderr: () => stderr, child }), 300);
    });
    child.on('exit', (code) => reject(new Error(`console serve exited ${code}: ${stderr}`)));
  });
}

describe('console serve over TLS', () => {
  it('serves HTTPS with the given certificate; the cookie is Secure; no plain-HTTP warning off loopback', async () => {
    const { url, stderr } = await serve([
      '--listen',
      '0.0.0.0:0',
      '--tls-cert',
      join(dir, 'cert.pem'),
      '--tls-key',
      join(dir, 'key.pem'),
    ]);
    expect(url).toMatch(/^https:\/\/0\.0\.0\.0:\d+\/$/);
    expect(stderr()).not.toContain('plain HTTP');
    const port = Number(new URL(url).port);
    const answer = await new Promise<{ status: number; cookie: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/api/login',
          method: 'POST',
          ca: readFileSync(join(dir, 'cert.pem')),
          headers: { 'content-type': 'application/json', 'x-volact-request': '1' },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, cookie: (res.headers['set-cookie'] ?? [])[0] ?? '' }),
          );
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ user: 'admin', password: PASSWORD }));
    });
    expect(answer.status).toBe(200);
    expect(answer.cookie).toMatch(/; Secure$/);
  });

  it('SIGHUP re-reads the certificate: new connections get the new one; a bad file keeps the old', async () => {
    const cert = join(dir, 'live-cert.pem');
    const key = join(dir, 'live-key.pem');
    writeFileSync(cert, readFileSync(join(dir, 'cert.pem')));
    writeFileSync(key, readFileSync(join(dir, 'key.pem')));
    const { url, stderr, child } = await serve(['--listen', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key]);
    const port = Number(new URL(url).port);
    const serial = () =>
      new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerCertificate().serialNumber);
          socket.end();
        });
        socket.on('error', reject);
      });
    const first = await serial();
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=renewed',
      '-keyout',
      'live-key.pem',
      '-out',
      'live-cert.pem',
    );
    child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 500));
    expect(stderr()).toContain('tls certificate reloaded: CN=renewed');
    const second = await serial();
    expect(second).not.toBe(first);
    writeFileSync(key, readFileSync(join(dir, 'other.pem')));
    child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 500));
    expect(stderr()).toContain('tls reload refused');
    expect(await serial()).toBe(second);
  });

  it('warns about plain HTTP off loopback without TLS', async () => {
    const { url, stderr } = await serve(['--listen', '0.0.0.0:0']);
    expect(url).toMatch(/^http:\/\//);
    expect(stderr()).toContain('plain HTTP');
  });

  it('refuses a key that is not the certificate’s, and a certificate without its key, naming the option', () => {
    const run = (args: string[]) =>
      spawnSync(
        process.execPath,
        [BIN, 'console', 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', ...args],
        {
          encoding: 'utf8',
        },
      );
    const mismatch = run(['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'other.pem')]);
    expect(mismatch.status).not.toBe(0);
    expect(mismatch.stderr).toContain('OPTION_INVALID');
    expect(mismatch.stderr).toContain('--tls-key');
    const alone = run(['--tls-cert', join(dir, 'cert.pem')]);
    expect(alone.status).not.toBe(0);
    expect(alone.stderr).toContain('--tls-cert needs --tls-key');
  });
});
