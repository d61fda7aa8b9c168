import { describe, expect, it } from 'vitest';
import { generateSigningKeyPair, sha256 } from './crypto.js';
import { makeKey } from './keys.js';
import { randomGuid } from './ids.js';
import { CoreError } from './errors.js';
import { DAY } from './clock.js';
import { decodeDigitGroups, encodeDigitGroups } from './digit-groups.js';
import {
  SHORT_SIGNATURE_RANGE,
  shortSign,
  shortSignV2,
  shortSignatureToBigInt,
  shortSigningKey,
  shortVerify,
  shortVerifyV2,
} from './short-signature.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  CID_GROUPS,
  IID_GROUPS,
  confirmInstallation,
  confirmInstallationWithRoot,
  encodeConfirmationId,
  installationProofValid,
  makeInstallationId,
  parseConfirmationId,
  parseInstallationId,
  proofKeyOf,
  rootConfirmationKeys,
  verifyInstallationConfirmation,
  type ConfirmationKeys,
} from './installation-id.js';
import {
  buildPhoneCertificate,
  decodeHostCertificate,
  signPhoneCertificate,
  signPhoneCertificateWithRoot,
  verifyHostCertificate,
} from './certificate.js';
import { groupsRefOf, hostKeyRefOf, keyRefOf } from './installation-id.js';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return err instanceof CoreError ? `${err.code}: ${err.message}` : String(err);
  }
  return 'no error';
};

describe('digit groups', () => {
  it('round-trips and names the group of every single wrong digit and every neighbour swap', () => {
    const value = 123456789012345678901234567890n;
    const text = encodeDigitGroups(value, 7);
    expect(decodeDigitGroups(text, [7], 'ID').value).toBe(value);
    const digits = text.replace(/-/g, '');
    for (let i = 0; i < digits.length; i++) {
      const group = Math.floor(i / 6) + 1;
      for (let d = 0; d <= 9; d++) {
        if (String(d) === digits[i]) continue;
        const typo = digits.slice(0, i) + String(d) + digits.slice(i + 1);
        expect(codeOf(() => decodeDigitGroups(typo, [7], 'ID'))).toContain(`group ${group} is wrong`);
      }
      if (i % 6 < 5 && digits[i] !== digits[i + 1]) {
        const swapped = digits.slice(0, i) + digits[i + 1] + digits[i] + digits.slice(i + 2);
        expect(codeOf(() => decodeDigitGroups(swapped, [7], 'ID'))).toContain(`group ${group} is wrong`);
      }
    }
  });

  it('catches a group typed up to nine places from where it belongs, for any digits', () => {
    let seed = 11;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let trial = 0; trial < 200; trial++) {
      const digits = Array.from({ length: 24 * 5 }, () => String(next() % 10)).join('');
      const groups = encodeDigitGroups(BigInt(digits), 24).split('-');
      const from = next() % 24;
      const to = Math.min(23, from + 1 + (next() % 9));
      if (from === to || groups[from]!.slice(0, 5) === groups[to]!.slice(0, 5)) continue;
      const moved = [...groups];
      moved[to] = groups[from]!;
      expect(codeOf(() => decodeDigitGroups(moved.join('-'), [24], 'ID'))).toContain(`group ${to + 1} is wrong`);
    }
  });

  it("catches two groups typed in each other's place", () => {
    const groups = encodeDigitGroups(98765432109876543210n, 4).split('-');
    [groups[1], groups[2]] = [groups[2]!, groups[1]!];
    expect(codeOf(() => decodeDigitGroups(groups.join('-'), [4], 'ID'))).toMatch(
      /DIGIT_GROUP_WRONG: ID: group 2 is wrong/,
    );
  });

  it('rejects letters, wrong lengths and oversized input with what was expected', () => {
    expect(codeOf(() => decodeDigitGroups('12345a', [1], 'ID'))).toMatch(/DIGITS_MALFORMED: ID: "a" is not a digit/);
    expect(codeOf(() => decodeDigitGroups('1234567', [1, 3], 'ID'))).toMatch(
      /has 7 digits; expected 1 groups of 6 digits or 3 groups/,
    );
    expect(codeOf(() => decodeDigitGroups('1'.repeat(500), [1], 'ID'))).toMatch(/DIGITS_MALFORMED/);
  });
});

describe('short signatures', () => {
  const root = generateSigningKeyPair();
  const signer = shortSigningKey(root.privateKey);

  it('verify under the Ed25519 root public key and fail for another message, context or key', () => {
    expect(Buffer.from(signer.publicKeyRaw).equals(root.publicKeyRaw)).toBe(true);
    const sig = shortSign(signer, 'ctx', Buffer.from('hello'));
    expect(shortVerify(root.publicKeyRaw, 'ctx', Buffer.from('hello'), sig)).toBe(true);
    expect(shortVerify(root.publicKeyRaw, 'ctx', Buffer.from('hellp'), sig)).toBe(false);
    expect(shortVerify(root.publicKeyRaw, 'other', Buffer.from('hello'), sig)).toBe(false);
    expect(shortVerify(generateSigningKeyPair().publicKeyRaw, 'ctx', Buffer.from('hello'), sig)).toBe(false);
    expect(shortVerify(root.publicKeyRaw, 'ctx', Buffer.from('hello'), { e: sig.e, s: sig.s + 1n })).toBe(false);
    expect(shortVerify(root.publicKeyRaw, 'ctx', Buffer.from('hello'), { e: sig.e ^ 1n, s: sig.s })).toBe(false);
  });

  const L = ed25519.Point.Fn.ORDER;
  const msg = Buffer.from('hello');

  it('v2 verifies under the same public key and fails for another message, context, key or signature', () => {
    const sig = shortSignV2(signer, 'ctx', msg);
    expect(shortVerifyV2(root.publicKeyRaw, 'ctx', msg, sig)).toBe(true);
    expect(shortVerifyV2(root.publicKeyRaw, 'ctx', Buffer.from('hellp'), sig)).toBe(false);
    expect(shortVerifyV2(root.publicKeyRaw, 'other', msg, sig)).toBe(false);
    expect(shortVerifyV2(generateSigningKeyPair().publicKeyRaw, 'ctx', msg, sig)).toBe(false);
    expect(shortVerifyV2(root.publicKeyRaw, 'ctx', msg, { e: sig.e, s: (sig.s + 1n) % L })).toBe(false);
    expect(shortVerifyV2(root.publicKeyRaw, 'ctx', msg, { e: sig.e ^ 1n, s: sig.s })).toBe(false);
    expect(shortVerifyV2(Buffer.alloc(32, 0xff), 'ctx', msg, sig)).toBe(false); // not a point
  });

  it('v2 refuses s + L (the same point, another number: a CID must have one spelling) and e of 129 bits', () => {
    const sig = shortSignV2(signer, 'ctx', msg);
    expect(shortVerifyV2(root.publicKeyRaw, 'ctx', msg, { e: sig.e, s: sig.s + L })).toBe(false);
    expect(shortVerifyV2(root.publicKeyRaw, 'ctx', msg, { e: sig.e + (1n << 128n), s: sig.s })).toBe(false);
    expect(shortVerifyV2(root.publicKeyRaw, 'ctx', msg, { e: -sig.e, s: sig.s })).toBe(false);
  });

  it('a v1 signature is not a v2 signature and a v2 one not a v1 one (each version its own domain)', () => {
    const v1 = shortSign(signer, 'ctx', msg);
    const v2 = shortSignV2(signer, 'ctx', msg);
    expect(shortVerify(root.publicKeyRaw, 'ctx', msg, v1)).toBe(true);
    expect(shortVerifyV2(root.publicKeyRaw, 'ctx', msg, v1)).toBe(false);
    expect(shortVerify(root.publicKeyRaw, 'ctx', msg, v2)).toBe(false);
    expect(v2.e === v1.e).toBe(false);
  });

  it('v2 nonces: deterministic per message, never repeated across messages, never the v1 nonce', () => {
    // s − e·a = k: recover each nonce with the key and compare them.
    const nonce = (sig: { e: bigint; s: bigint }) => (((sig.s - sig.e * signer.scalar) % L) + L) % L;
    const a = shortSignV2(signer, 'ctx', msg);
    expect(shortSignV2(signer, 'ctx', msg)).toEqual(a);
    const nonces = new Set<bigint>([nonce(a), nonce(shortSign(signer, 'ctx', msg))]);
    for (let i = 0; i < 50; i++) nonces.add(nonce(shortSignV2(signer, 'ctx', Buffer.from(`m${i}`))));
    nonces.add(nonce(shortSignV2(signer, 'other', msg)));
    expect(nonces.size).toBe(53);
    // and each nonce is the one committed to: k·B hashes to e (what verification recomputes)
    expect(shortVerifyV2(root.publicKeyRaw, 'ctx', msg, a)).toBe(true);
  });

  it('v2 of another key with the same message gives an unrelated signature', () => {
    const other = shortSigningKey(generateSigningKeyPair().privateKey);
    expect(shortSignV2(other, 'ctx', msg).e).not.toBe(shortSignV2(signer, 'ctx', msg).e);
  });
});

describe('installation and confirmation IDs', () => {
  const root = generateSigningKeyPair();
  const signer = shortSigningKey(root.privateKey);
  const key = makeKey('mak');
  const group = randomGuid();

  it('are digit groups: 13 for an installation, 20 for a KMS host, 24 for a confirmation', () => {
    expect(IID_GROUPS).toEqual({ installation: 13, 'kms-host': 20, 'activation-object': 20 });
    expect(CID_GROUPS).toBe(24);
    const iid = makeInstallationId({ kind: 'installation', key, hardwareId: 'hw-1', groupIds: [group] });
    expect(iid.text).toMatch(/^\d{6}(-\d{6}){12}$/);
  });

  it('the same key and hardware give the same IID; other hardware or key another', () => {
    const a = makeInstallationId({ kind: 'installation', key, hardwareId: 'hw-1', groupIds: [group] });
    expect(makeInstallationId({ kind: 'installation', key, hardwareId: 'hw-1', groupIds: [group] }).text).toBe(a.text);
    expect(makeInstallationId({ kind: 'installation', key, hardwareId: 'hw-2', groupIds: [group] }).text).not.toBe(
      a.text,
    );
    expect(
      makeInstallationId({ kind: 'installation', key: makeKey('mak'), hardwareId: 'hw-1', groupIds: [group] }).text,
    ).not.toBe(a.text);
    const parsed = parseInstallationId(a.text.replace(/-/g, ' '));
    expect(parsed.bytes.equals(a.bytes)).toBe(true);
    // the text kept is the canonical one (groups joined by dashes), however it was typed
    expect(parsed.text).toBe(a.text);
    expect(parseInstallationId(` ${a.text.replace(/-/g, '')}\n`).text).toBe(a.text);
    expect(parsed.keyRef.equals(keyRefOf(key))).toBe(true);
    expect(installationProofValid(parsed, proofKeyOf(key))).toBe(true);
    expect(installationProofValid(parsed, proofKeyOf(makeKey('mak')))).toBe(false);
  });

  const rootKeys = rootConfirmationKeys(root.publicKeyRaw);
  const online = generateSigningKeyPair();
  const onlineSigner = { keyIndex: 2 as const, short: shortSigningKey(online.privateKey) };
  /** The root for index 0, the online key for index 2, nobody for 1 and 3 (as a TrustStore answers). */
  const trustKeys: ConfirmationKeys = {
    forIndex: (index) => (index === 0 ? [root.publicKeyRaw] : index === 2 ? [online.publicKeyRaw] : []),
  };

  it('a CID confirms exactly its IID; a typo names the group; a forged one fails', () => {
    const iid = makeInstallationId({ kind: 'installation', key, hardwareId: 'hw-1', groupIds: [group] });
    const cid = confirmInstallationWithRoot(iid, group, 20_000, signer);
    const parsed = parseConfirmationId(cid.text);
    expect(parsed.issuedDay).toBe(20_000);
    expect(parsed.keyIndex).toBe(0);
    expect(verifyInstallationConfirmation(iid, group, parsed, rootKeys)).toBe(true);
    const other = makeInstallationId({ kind: 'installation', key, hardwareId: 'hw-2', groupIds: [group] });
    expect(verifyInstallationConfirmation(other, group, parsed, rootKeys)).toBe(false);
    expect(
      verifyInstallationConfirmation(iid, group, parsed, rootConfirmationKeys(generateSigningKeyPair().publicKeyRaw)),
    ).toBe(false);
    // right format, wrong signature: a well-formed CID with every check digit right
    const forged = encodeConfirmationId(20_000, { e: parsed.signature.e, s: (parsed.signature.s + 7n) % 2n ** 252n });
    expect(verifyInstallationConfirmation(iid, group, parseConfirmationId(forged.text), rootKeys)).toBe(false);
    const digits = cid.text.split('-');
    digits[6] = digits[6]!.replace(/^(\d)/, (d) => String((Number(d) + 1) % 10));
    expect(codeOf(() => parseConfirmationId(digits.join('-')))).toMatch(/group 7 is wrong/);
  });

  it("an online CID carries its key index in the same 24 groups and verifies under that index's key only", () => {
    const iid = makeInstallationId({ kind: 'installation', key, hardwareId: 'hw-1', groupIds: [group] });
    const cid = confirmInstallation(iid, group, 20_000, onlineSigner);
    expect(cid.text.split('-')).toHaveLength(CID_GROUPS);
    const parsed = parseConfirmationId(cid.text);
    expect(parsed).toMatchObject({ keyIndex: 2, issuedDay: 20_000 });
    expect(verifyInstallationConfirmation(iid, group, parsed, trustKeys)).toBe(true);
    // another index names other keys (here none, or the root with v1): refused
    for (const keyIndex of [0, 1, 3] as const) {
      const moved = parseConfirmationId(encodeConfirmationId(20_000, parsed.signature, keyIndex).text);
      expect(verifyInstallationConfirmation(iid, group, moved, trustKeys)).toBe(false);
    }
    // the online key's v2 signature is not a root's v1 one even if a client were told the online key is a root
    const asRoot = parseConfirmationId(encodeConfirmationId(20_000, parsed.signature, 0).text);
    expect(verifyInstallationConfirmation(iid, group, asRoot, rootConfirmationKeys(online.publicKeyRaw))).toBe(false);
    // a root-signed (v1) CID moved to an online index is refused too
    const rootCid = confirmInstallationWithRoot(iid, group, 20_000, signer);
    const rootMoved = parseConfirmationId(encodeConfirmationId(20_000, rootCid.signature, 2).text);
    expect(verifyInstallationConfirmation(iid, group, rootMoved, { forIndex: () => [root.publicKeyRaw] })).toBe(false);
    // another day, IID or group: refused
    const otherDay = parseConfirmationId(encodeConfirmationId(20_001, parsed.signature, 2).text);
    expect(verifyInstallationConfirmation(iid, group, otherDay, trustKeys)).toBe(false);
    expect(verifyInstallationConfirmation(iid, randomGuid(), parsed, trustKeys)).toBe(false);
  });

  it('CID numbers: index 0 is the old layout (old CIDs parse unchanged); index 3, day 65535 is the largest and fits', () => {
    const sig = { e: (1n << 128n) - 1n, s: ed25519.Point.Fn.ORDER - 1n };
    const old = encodeConfirmationId(20_000, sig);
    // the layout before key indexes: issuedDay · RANGE + e·L + s
    const oldValue = 20_000n * SHORT_SIGNATURE_RANGE + shortSignatureToBigInt(sig);
    expect(decodeDigitGroups(old.text, [CID_GROUPS], 'CID').value).toBe(oldValue);
    expect(parseConfirmationId(old.text).keyIndex).toBe(0);
    const largest = encodeConfirmationId(65_535, sig, 3);
    expect(largest.text.split('-')).toHaveLength(24);
    expect(parseConfirmationId(largest.text)).toMatchObject({ keyIndex: 3, issuedDay: 65_535, signature: sig });
    // a 5th index does not exist: a number beyond index 3 is out of range
    const beyond = encodeDigitGroups(4n * 65_536n * SHORT_SIGNATURE_RANGE, CID_GROUPS);
    expect(codeOf(() => parseConfirmationId(beyond))).toMatch(/CID_INVALID/);
  });

  it('a phone-issued host certificate verifies under the root and binds the host key and groups', () => {
    const hostKey = makeKey('kms-host');
    const host = generateSigningKeyPair();
    const groupIds = [randomGuid()];
    const fields = { keyRef: keyRefOf(hostKey), issuedDay: 20_000, validityDays: 365, groupIds };
    const signature = signPhoneCertificateWithRoot({ ...fields, hostKeyRef: hostKeyRefOf(host.publicKeyRaw) }, signer);
    const cert = buildPhoneCertificate(
      { ...fields, hostPublicKey: host.publicKeyRaw, issuerPublicKeyRaw: root.publicKeyRaw },
      signature,
    );
    const decoded = decodeHostCertificate(cert);
    expect(decoded.version).toBe(2);
    expect(decoded.issuedAt).toBe(20_000 * DAY);
    expect(decoded.expiresAt).toBe(20_365 * DAY);
    expect(verifyHostCertificate(decoded, root.publicKey)).toBe(true);
    const otherHost = buildPhoneCertificate(
      { ...fields, hostPublicKey: generateSigningKeyPair().publicKeyRaw, issuerPublicKeyRaw: root.publicKeyRaw },
      signature,
    );
    expect(verifyHostCertificate(decodeHostCertificate(otherHost), root.publicKey)).toBe(false);
    const moreGroups = buildPhoneCertificate(
      {
        ...fields,
        groupIds: [...groupIds, randomGuid()],
        hostPublicKey: host.publicKeyRaw,
        issuerPublicKeyRaw: root.publicKeyRaw,
      },
      signature,
    );
    expect(verifyHostCertificate(decodeHostCertificate(moreGroups), root.publicKey)).toBe(false);
    const longer = buildPhoneCertificate(
      { ...fields, validityDays: 3650, hostPublicKey: host.publicKeyRaw, issuerPublicKeyRaw: root.publicKeyRaw },
      signature,
    );
    expect(verifyHostCertificate(decodeHostCertificate(longer), root.publicKey)).toBe(false);
    expect(groupsRefOf(groupIds).length).toBe(4);
    expect(verifyHostCertificate(decoded, root.publicKey, 'root')).toBe(true);
    expect(verifyHostCertificate(decoded, root.publicKey, 'delegate')).toBe(false);
  });

  it('a phone host certificate by the online key (v2) names it as issuer and verifies under it only', () => {
    const hostKey = makeKey('kms-host');
    const host = generateSigningKeyPair();
    const fields = { keyRef: keyRefOf(hostKey), issuedDay: 20_000, validityDays: 365, groupIds: [randomGuid()] };
    const signature = signPhoneCertificate({ ...fields, hostKeyRef: hostKeyRefOf(host.publicKeyRaw) }, onlineSigner);
    const cert = decodeHostCertificate(
      buildPhoneCertificate(
        { ...fields, hostPublicKey: host.publicKeyRaw, issuerPublicKeyRaw: online.publicKeyRaw },
        signature,
      ),
    );
    expect(cert.issuer.equals(sha256(online.publicKeyRaw).subarray(0, 8))).toBe(true);
    expect(verifyHostCertificate(cert, online.publicKey, 'delegate')).toBe(true);
    expect(verifyHostCertificate(cert, online.publicKey)).toBe(true);
    expect(verifyHostCertificate(cert, online.publicKey, 'root')).toBe(false);
    expect(verifyHostCertificate(cert, root.publicKey)).toBe(false);
    const otherHost = buildPhoneCertificate(
      { ...fields, hostPublicKey: generateSigningKeyPair().publicKeyRaw, issuerPublicKeyRaw: online.publicKeyRaw },
      signature,
    );
    expect(verifyHostCertificate(decodeHostCertificate(otherHost), online.publicKey)).toBe(false);
  });

  it('fuzz: any input to the IID and CID parsers is parsed or refused with a CoreError, never anything else', () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    const alphabet = '0123456789- x';
    const valid = makeInstallationId({ kind: 'installation', key, hardwareId: 'f', groupIds: [group] }).text;
    const cid = confirmInstallation(parseInstallationId(valid), group, 1, onlineSigner).text;
    for (let i = 0; i < 3000; i++) {
      const base = i % 3 === 0 ? valid : i % 3 === 1 ? cid : '';
      let text = base;
      const edits = 1 + (next() % 4);
      for (let e = 0; e < edits; e++) {
        const at = text.length ? next() % text.length : 0;
        text = text.slice(0, at) + alphabet[next() % alphabet.length] + text.slice(at + (next() % 2));
      }
      if (i % 50 === 0) text = '9'.repeat(next() % 500);
      for (const parse of [parseInstallationId, parseConfirmationId]) {
        try {
          parse(text);
        } catch (err) {
          expect(err).toBeInstanceOf(CoreError);
        }
      }
    }
  });
});
