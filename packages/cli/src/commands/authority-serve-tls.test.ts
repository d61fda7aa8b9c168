import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TlsMaterialError } from '@volact/core';
import { loadServeTls, loadServeTlsAtStart, parseTrustProxy } from './authority-serve-tls.js';

const dir = mkdtempSync(join(tmpdir(), 'volact-serve-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const failure = (f: () => unknown): Error & { code?: string } => {
  try {
    f();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('no failure');
};

describe('parseTrustProxy', () => {
  it('takes addresses, CIDRs (IPv4 and IPv6) and range names, comma-separated or repeated', () => {
    expect(parseTrustProxy(['10.0.0.5,10.1.0.0/16', ' ::1 ', 'fd00::/8,loopback'])).toEqual([
      '10.0.0.5',
      '10.1.0.0/16',
      '::1',
      'fd00::/8',
      'loopback',
    ]);
    expect(parseTrustProxy(undefined)).toBeUndefined();
  });

  it.each(['10.0.0.0/33', '::/129', 'proxy.example', '10.0.0.1/', '10.0.0.1/8/8', '10.0.0', '', '10.0.0.1,,10.0.0.2'])(
    'refuses %j naming it and what is expected',
    (entry) => {
      const err = failure(() => parseTrustProxy([entry]));
      expect(err.code).toBe('OPTION_INVALID');
      expect(err.message).toMatch(/^--trust-proxy /);
    },
  );
});

describe('loadServeTls', () => {
  it('names the file and what is wrong: missing, a directory, not PEM', () => {
    const notPem = join(dir, 'cert.der');
    writeFileSync(notPem, Buffer.from([0x30, 0x82, 0x01, 0x0a]));
    const cases: [string, string, RegExp][] = [
      [join(dir, 'absent.pem'), notPem, /^--tls-cert \S+absent\.pem does not exist$/],
      [dir, notPem, /^--tls-cert \S+ is a directory, not a PEM file$/],
      [notPem, notPem, /^--tls-cert \S+cert\.der is not PEM \(no -----BEGIN … line\)/],
    ];
    for (const [cert, key, message] of cases) {
      const err = failure(() => loadServeTls(cert, key));
      expect(err).toBeInstanceOf(TlsMaterialError);
      expect(err.message).toMatch(message);
    }
  });

  it('a PEM block that is not a certificate is refused at start as OPTION_INVALID', () => {
    const fake = join(dir, 'fake.pem');
    writeFileSync(fake, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const err = failure(() => loadServeTlsAtStart(fake, fake));
    expect(err.code).toBe('OPTION_INVALID');
    expect(err.message).toMatch(/^--tls-cert \S+fake\.pem is not a PEM certificate/);
  });

  it('both files or neither', () => {
    expect(loadServeTlsAtStart(undefined, undefined)).toBeUndefined();
    expect(failure(() => loadServeTlsAtStart(undefined, 'k.pem')).message).toMatch(/^--tls-key needs --tls-cert/);
  });
});
