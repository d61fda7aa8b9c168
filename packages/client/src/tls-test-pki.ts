import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One certificate made for a test: its files and their PEM text. */
export interface TestCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * A throwaway PKI for TLS tests, made by the `openssl` CLI in a temporary directory (never
 * committed): `ca` signs the agent's `server` certificate (SAN IP:127.0.0.1 and localhost)
 * and the console's `client` certificate; `otherCa` signs `rogue`, a client certificate
 * another organisation could hold. EC P-256, valid for two days.
 */
export interface TestPki {
  readonly dir: string;
  readonly ca: TestCertificate;
  readonly otherCa: TestCertificate;
  readonly server: TestCertificate;
  readonly client: TestCertificate;
  readonly rogue: TestCertificate;
  /** Another client certificate of `ca` (a second console). */
  readonly client2: TestCertificate;
  remove(): void;
}

function openssl(dir: string, ...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.error) throw new Error(`openssl is needed for the TLS tests (scripts/test.sh installs it): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${r.stderr}`);
}

const read = (dir: string, name: string): TestCertificate => {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
};

const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function makeCa(dir: string, name: string): TestCertificate {
  openssl(
    dir,
    'req',
    '-x509',
    ...NEW_KEY,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  );
  return read(dir, name);
}

function makeLeaf(dir: string, name: string, ca: string, extensions: string[]): TestCertificate {
  openssl(dir, 'req', '-new', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  writeFileSync(join(dir, `${name}.ext`), `${['basicConstraints=CA:FALSE', ...extensions].join('\n')}\n`);
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    `0x${Buffer.from(name).toString('hex')}`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  );
  return read(dir, name);
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'volact-pki-'));
  const clientAuth = ['extendedKeyUsage=clientAuth'];
  return {
    dir,
    ca: makeCa(dir, 'agents-ca'),
    otherCa: makeCa(dir, 'other-ca'),
    server: makeLeaf(dir, 'agent', 'agents-ca', [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      'extendedKeyUsage=serverAuth',
    ]),
    client: makeLeaf(dir, 'volact-console', 'agents-ca', clientAuth),
    client2: makeLeaf(dir, 'second-console', 'agents-ca', clientAuth),
    rogue: makeLeaf(dir, 'rogue-console', 'other-ca', clientAuth),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
