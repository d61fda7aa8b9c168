import { describe, expect, it } from 'vitest';
import { DAY } from './clock.js';
import { generateSigningKeyPair } from './crypto.js';
import { fileSigner } from './trust/signer.js';
import { CoreError } from './errors.js';
import { randomGuid } from './ids.js';
import {
  checkOemMarker,
  manufacturerIdOf,
  parseOemCertificate,
  parseOemMarker,
  signOemCertificate,
  signOemMarker,
} from './oem.js';
import {
  checkActivationToken,
  checkTokenCrl,
  parseActivationToken,
  parseTokenCaCertificate,
  parseTokenCrl,
  signActivationToken,
  signTokenCaCertificate,
  signTokenCrl,
} from './activation-token.js';
import { publicKeyRawFromPem, publicKeyToPem } from './signed-file.js';

const T0 = Date.UTC(2026, 10, 25);
const rootPair = generateSigningKeyPair();
const root = { ...rootPair, ...fileSigner(rootPair) };
const otherRootPair = generateSigningKeyPair();
const otherRoot = { ...otherRootPair, ...fileSigner(otherRootPair) };
const group = { id: randomGuid(), name: 'office14' };
const otherGroup = { id: randomGuid(), name: 'visio14' };
const oemKey = generateSigningKeyPair();
const caKey = generateSigningKeyPair();

const oemCert = signOemCertificate(
  {
    serial: randomGuid(),
    manufacturer: 'Contoso Devices',
    publicKeyRaw: oemKey.publicKeyRaw,
    groups: [group],
    notBefore: T0,
    notAfter: T0 + 365 * DAY,
  },
  root,
);
const marker = signOemMarker(
  { group, hardwareId: 'hw-1', machine: 'SN-0001', issuedAt: T0 + DAY },
  oemKey.privateKey,
  oemCert,
);
const expectOem = { rootPublicKey: root.publicKey, groupId: group.id, groupName: group.name, hardwareId: 'hw-1' };

const caCert = signTokenCaCertificate(
  {
    serial: randomGuid(),
    organisation: 'Fabrikam',
    group,
    publicKeyRaw: caKey.publicKeyRaw,
    notBefore: T0,
    notAfter: T0 + 730 * DAY,
  },
  root,
);
const token = signActivationToken(
  { serial: randomGuid(), hardwareId: 'hw-1', notBefore: T0, notAfter: T0 + 365 * DAY },
  caKey.privateKey,
  caCert,
);
const expectToken = { rootPublicKey: root.publicKey, groupId: group.id, groupName: group.name, hardwareId: 'hw-1' };

/** Every text the fuzz makes is parsed or refused with a CoreError of `code`, never anything else. */
function fuzz(valid: string, parse: (text: string) => unknown, code: string): void {
  let seed = 11;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  const alphabet = '{}[]",:0123456789abcdefABCDEF=+/-. \\\u0000é';
  for (let i = 0; i < 1500; i++) {
    let text = valid;
    const edits = 1 + (next() % 4);
    for (let e = 0; e < edits; e++) {
      const at = next() % text.length;
      const mode = next() % 3;
      if (mode === 0) text = text.slice(0, at) + alphabet[next() % alphabet.length] + text.slice(at + 1);
      else if (mode === 1) text = text.slice(0, at) + text.slice(at + 1 + (next() % 20));
      else text = text.slice(0, at) + text.slice(next() % text.length);
    }
    if (i % 100 === 0) text = '['.repeat(next() % 5000);
    try {
      parse(text);
    } catch (err) {
      expect(err).toBeInstanceOf(CoreError);
      expect((err as CoreError).code).toBe(code);
    }
  }
}

describe('OEM certificate and marker', () => {
  it('a marker verifies on its hardware and round-trips through its file', () => {
    const parsed = parseOemMarker(JSON.stringify(marker, null, 2));
    expect(checkOemMarker(parsed, expectOem)).toEqual({
      ok: true,
      manufacturer: 'Contoso Devices',
      machine: 'SN-0001',
      group: 'office14',
    });
    expect(parseOemCertificate(JSON.stringify(oemCert))).toEqual(oemCert);
    expect(oemCert.manufacturerId).toBe(manufacturerIdOf('  contoso   DEVICES '));
  });

  it('ordered checks: untrusted manufacturer, altered marker, outside validity, group, hardware', () => {
    const code = (m: typeof marker, e = expectOem) => {
      const r = checkOemMarker(m, e);
      return r.ok ? 'ok' : r.code;
    };
    expect(code(marker, { ...expectOem, rootPublicKey: otherRoot.publicKey })).toBe('OEM_MANUFACTURER_UNTRUSTED');
    const selfCertified = signOemCertificate(
      { ...oemCert, publicKeyRaw: oemKey.publicKeyRaw, groups: [group], notBefore: T0, notAfter: T0 + DAY },
      otherRoot,
    );
    expect(
      code(signOemMarker({ group, hardwareId: 'hw-1', machine: 'x', issuedAt: T0 }, oemKey.privateKey, selfCertified)),
    ).toBe('OEM_MANUFACTURER_UNTRUSTED');
    expect(code({ ...marker, machine: 'SN-0002' })).toBe('OEM_MARKER_INVALID');
    expect(code({ ...marker, certificate: { ...oemCert, groups: [group, otherGroup] } })).toBe(
      'OEM_MANUFACTURER_UNTRUSTED',
    );
    const otherKey = generateSigningKeyPair();
    expect(
      code(signOemMarker({ group, hardwareId: 'hw-1', machine: 'x', issuedAt: T0 }, otherKey.privateKey, oemCert)),
    ).toBe('OEM_MARKER_INVALID');
    expect(
      code(
        signOemMarker(
          { group, hardwareId: 'hw-1', machine: 'x', issuedAt: T0 + 400 * DAY },
          oemKey.privateKey,
          oemCert,
        ),
      ),
    ).toBe('OEM_CERT_EXPIRED');
    expect(
      code(
        signOemMarker(
          { group: otherGroup, hardwareId: 'hw-1', machine: 'x', issuedAt: T0 },
          oemKey.privateKey,
          oemCert,
        ),
      ),
    ).toBe('OEM_GROUP_MISMATCH');
    expect(code(marker, { ...expectOem, groupId: otherGroup.id })).toBe('OEM_GROUP_MISMATCH');
    expect(code(marker, { ...expectOem, hardwareId: 'hw-2' })).toBe('OEM_HARDWARE_MISMATCH');
  });

  it('fuzz: mutated certificates and markers are parsed or refused with OEM_FILE_INVALID', () => {
    fuzz(JSON.stringify(marker), parseOemMarker, 'OEM_FILE_INVALID');
    fuzz(JSON.stringify(oemCert, null, 1), parseOemCertificate, 'OEM_FILE_INVALID');
    expect(() => parseOemMarker(' '.repeat(30_000))).toThrow(/larger than/);
    expect(() => parseOemMarker(JSON.stringify({ ...marker, extra: 1 }))).toThrow(CoreError);
  });
});

describe('token CA certificate, activation token, CRL', () => {
  it('a token verifies offline: chain, group, hardware, time, CRL', () => {
    const parsed = parseActivationToken(JSON.stringify(token));
    const ok = checkActivationToken(parsed, { ...expectToken, now: T0 + DAY });
    expect(ok).toMatchObject({ ok: true, serial: token.serial, organisation: 'Fabrikam', validUntil: T0 + 365 * DAY });
    expect(parseTokenCaCertificate(JSON.stringify(caCert))).toEqual(caCert);
  });

  it('ordered checks with specific codes', () => {
    const code = (t: typeof token, e: Parameters<typeof checkActivationToken>[1] = expectToken) => {
      const r = checkActivationToken(t, e);
      return r.ok ? 'ok' : r.code;
    };
    const foreignCa = signTokenCaCertificate(
      { ...caCert, group, publicKeyRaw: caKey.publicKeyRaw, notBefore: T0, notAfter: T0 + DAY },
      otherRoot,
    );
    const fromForeign = signActivationToken(
      { serial: randomGuid(), hardwareId: 'hw-1', notBefore: T0, notAfter: T0 + DAY },
      caKey.privateKey,
      foreignCa,
    );
    expect(code(fromForeign)).toBe('TOKEN_CA_UNTRUSTED');
    expect(code({ ...token, notAfter: new Date(T0 + 3650 * DAY).toISOString() })).toBe('TOKEN_INVALID');
    const otherCaKey = generateSigningKeyPair();
    expect(
      code(
        signActivationToken(
          { serial: randomGuid(), hardwareId: 'hw-1', notBefore: T0, notAfter: T0 + DAY },
          otherCaKey.privateKey,
          caCert,
        ),
      ),
    ).toBe('TOKEN_INVALID');
    expect(code(token, { ...expectToken, groupId: otherGroup.id })).toBe('TOKEN_GROUP_MISMATCH');
    expect(code(token, { ...expectToken, hardwareId: 'hw-2' })).toBe('TOKEN_HARDWARE_MISMATCH');
    expect(code(token, { ...expectToken, now: T0 + 365 * DAY })).toBe('TOKEN_EXPIRED');
    expect(code(token, { ...expectToken, now: T0 - DAY })).toBe('TOKEN_EXPIRED');
    expect(code(token, { ...expectToken, now: T0 - 60_000, maxClockSkew: 3_600_000 })).toBe('ok');
    const crl = signTokenCrl(
      { issuedAt: T0, nextUpdate: T0 + 30 * DAY, revoked: [token.serial] },
      caKey.privateKey,
      caCert,
    );
    expect(checkTokenCrl(crl, { rootPublicKey: root.publicKey, groupId: group.id })).toEqual({ ok: true });
    expect(code(token, { ...expectToken, crl })).toBe('TOKEN_REVOKED');
    const otherCrl = signTokenCrl(
      { issuedAt: T0, nextUpdate: T0 + DAY, revoked: [token.serial] },
      otherCaKey.privateKey,
      {
        ...caCert,
        publicKey: otherCaKey.publicKeyRaw.toString('base64'),
      },
    );
    expect(code(token, { ...expectToken, crl: otherCrl })).toBe('ok');
    expect(checkTokenCrl(otherCrl, { rootPublicKey: root.publicKey, groupId: group.id })).toMatchObject({
      ok: false,
      code: 'TOKEN_CA_UNTRUSTED',
    });
    expect(checkTokenCrl({ ...crl, revoked: [] }, { rootPublicKey: root.publicKey, groupId: group.id })).toMatchObject({
      ok: false,
      code: 'CRL_INVALID',
    });
    expect(checkTokenCrl(crl, { rootPublicKey: root.publicKey, groupId: otherGroup.id })).toMatchObject({
      ok: false,
      code: 'TOKEN_CA_UNTRUSTED',
    });
  });

  it('a token that requires a CRL licenses only with one of its CA; the requirement is signed', () => {
    const strict = signActivationToken(
      { serial: randomGuid(), hardwareId: 'hw-1', notBefore: T0, notAfter: T0 + 365 * DAY, crlRequired: true },
      caKey.privateKey,
      caCert,
    );
    const check = (t: typeof strict, crl: Parameters<typeof checkActivationToken>[1]['crl']) => {
      const r = checkActivationToken(t, { ...expectToken, crl });
      return r.ok ? 'ok' : r.code;
    };
    const empty = signTokenCrl({ issuedAt: T0, nextUpdate: T0 + 30 * DAY, revoked: [] }, caKey.privateKey, caCert);
    expect(check(strict, null)).toBe('TOKEN_CRL_REQUIRED');
    expect(check(strict, empty)).toBe('ok');
    // Another CA's CRL does not count.
    const otherCaKey = generateSigningKeyPair();
    const foreign = signTokenCrl({ issuedAt: T0, nextUpdate: T0 + DAY, revoked: [] }, otherCaKey.privateKey, {
      ...caCert,
      publicKey: otherCaKey.publicKeyRaw.toString('base64'),
    });
    expect(check(strict, foreign)).toBe('TOKEN_CRL_REQUIRED');
    // The requirement removed from the file: the CA's signature no longer verifies.
    const { crlRequired: _removed, ...loosened } = strict;
    void _removed;
    expect(check(loosened, null)).toBe('TOKEN_INVALID');
    // Tokens without the field (issued before it existed) verify as before.
    expect(check(token, null)).toBe('ok');
  });

  it('fuzz: mutated CA certificates, tokens and CRLs are parsed or refused with TOKEN_FILE_INVALID', () => {
    const crl = signTokenCrl(
      { issuedAt: T0, nextUpdate: T0 + DAY, revoked: [randomGuid(), randomGuid()] },
      caKey.privateKey,
      caCert,
    );
    fuzz(JSON.stringify(token), parseActivationToken, 'TOKEN_FILE_INVALID');
    fuzz(JSON.stringify(caCert), parseTokenCaCertificate, 'TOKEN_FILE_INVALID');
    fuzz(JSON.stringify(crl), parseTokenCrl, 'TOKEN_FILE_INVALID');
    expect(parseTokenCrl(JSON.stringify(crl)).revoked).toEqual([...crl.revoked]);
  });

  it('public keys travel as SPKI PEM; anything else is PUBLIC_KEY_INVALID', () => {
    expect(publicKeyRawFromPem(publicKeyToPem(caKey.publicKeyRaw))).toEqual(caKey.publicKeyRaw);
    expect(() => publicKeyRawFromPem('hello')).toThrow(expect.objectContaining({ code: 'PUBLIC_KEY_INVALID' }));
    expect(() => publicKeyRawFromPem('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n')).toThrow(
      expect.objectContaining({ code: 'PUBLIC_KEY_INVALID' }),
    );
  });
});
