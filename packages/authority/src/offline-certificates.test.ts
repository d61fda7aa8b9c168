import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DAY,
  ManualClock,
  generateSigningKeyPair,
  oemCertificateSignatureValid,
  parseOemCertificate,
  parseTokenCaCertificate,
  publicKeyFromRaw,
  tokenCaSignatureValid,
} from '@volact/core';
import { Authority } from './authority.js';
import { AuthorityError } from './errors.js';

describe('OEM and token CA certificates (the authority signs public keys only)', () => {
  let dir: string;
  let clock: ManualClock;
  let authority: Authority;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'volact-authority-offline-'));
    clock = new ManualClock(Date.UTC(2026, 10, 25));
    authority = Authority.init(join(dir, 'a'), { clock });
    await authority.addGroup({ name: 'office14' });
    await authority.addGroup({ name: 'visio14' });
  });
  afterEach(async () => {
    await authority.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('issues an OEM certificate for a manufacturer key and groups, signed by the root, audited', async () => {
    const oem = generateSigningKeyPair();
    const cert = await authority.issueOemCertificate({
      manufacturer: 'Contoso Devices',
      publicKeyRaw: oem.publicKeyRaw,
      groups: ['office14', 'visio14', 'office14'],
      days: 365,
    });
    expect(cert.groups.map((g) => g.name)).toEqual(['office14', 'visio14']);
    expect(Date.parse(cert.notAfter) - Date.parse(cert.notBefore)).toBe(365 * DAY);
    expect(
      oemCertificateSignatureValid(
        parseOemCertificate(JSON.stringify(cert)),
        publicKeyFromRaw(authority.rootPublicKeyRaw),
      ),
    ).toBe(true);
    const audit = await authority.recentAudit(5);
    expect(audit.find((a) => a.action === 'oem-certificate.issue')?.detail).toContain(cert.serial);
  });

  it('issues a token CA certificate for one group, audited', async () => {
    const ca = generateSigningKeyPair();
    const cert = await authority.issueTokenCa({
      organisation: 'Fabrikam',
      group: 'office14',
      publicKeyRaw: ca.publicKeyRaw,
      days: 730,
    });
    expect(cert.group.name).toBe('office14');
    expect(
      tokenCaSignatureValid(
        parseTokenCaCertificate(JSON.stringify(cert)),
        publicKeyFromRaw(authority.rootPublicKeyRaw),
      ),
    ).toBe(true);
    const audit = await authority.recentAudit(5);
    expect(audit.find((a) => a.action === 'token-ca.issue')?.detail).toContain('Fabrikam');
  });

  it('refuses unknown groups, its own root key, bad days and names', async () => {
    const key = generateSigningKeyPair().publicKeyRaw;
    const code = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (err) {
        expect(err).toBeInstanceOf(AuthorityError);
        return (err as AuthorityError).code;
      }
      return 'no error';
    };
    expect(await code(authority.issueTokenCa({ organisation: 'F', group: 'nope', publicKeyRaw: key, days: 1 }))).toBe(
      'GROUP_NOT_FOUND',
    );
    expect(
      await code(
        authority.issueOemCertificate({
          manufacturer: 'M',
          publicKeyRaw: authority.rootPublicKeyRaw,
          groups: ['office14'],
          days: 1,
        }),
      ),
    ).toBe('REQUEST_INVALID');
    expect(
      await code(
        authority.issueOemCertificate({ manufacturer: 'M', publicKeyRaw: key, groups: ['office14'], days: 0 }),
      ),
    ).toBe('REQUEST_INVALID');
    expect(
      await code(authority.issueOemCertificate({ manufacturer: 'M\n', publicKeyRaw: key, groups: [], days: 1 })),
    ).toBe('REQUEST_INVALID');
  });
});
