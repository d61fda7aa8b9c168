import { describe, expect, it } from 'vitest';
import { DAY } from '../clock.js';
import { generateSigningKeyPair, sha256 } from '../crypto.js';
import { CoreError } from '../errors.js';
import {
  DELEGATION_PURPOSE,
  MAX_DELEGATION_VALIDITY_MS,
  confirmationKeyIndex,
  decodeDelegation,
  makeDelegation,
  verifyDelegation,
} from './delegation.js';
import { KEY_ID_BYTES, keyIdHex, keyIdOf } from './key-id.js';
import {
  MAX_HOST_STATUS_VALIDITY_MS,
  REVOCATION_LIST_LIFETIME,
  assertNotOlder,
  decodeHostStatus,
  decodeRevocationList,
  isRevoked,
  makeHostStatus,
  makeRevocationList,
  revocationSubjectOfKeyId,
  verifyHostStatus,
  verifyRevocationList,
  type RevocationEntry,
} from './revocation.js';
import { decodeRootTransition, makeRootTransition, verifyRootTransition } from './root-transition.js';
import { fileSigner } from './signer.js';
import { keyFingerprint } from '../crypto.js';

const T0 = Date.UTC(2026, 0, 1);
const root = fileSigner(generateSigningKeyPair());
const next = fileSigner(generateSigningKeyPair());
const stranger = fileSigner(generateSigningKeyPair());
const online = fileSigner(generateSigningKeyPair());

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    return err instanceof CoreError ? err.code : `not a CoreError: ${(err as Error).message}`;
  }
}

/** Every single-bit change at every byte is refused: the decoder throws `code`, or the signature fails. */
function everyAlteredByteRefused(
  bytes: Buffer,
  decode: (b: Buffer) => unknown,
  verify: (d: never) => boolean,
  code: string,
): void {
  for (let i = 0; i < bytes.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const bad = Buffer.from(bytes);
      bad[i] = bad[i]! ^ bit;
      let decoded: unknown;
      try {
        decoded = decode(bad);
      } catch (err) {
        expect((err as CoreError).code, `byte ${i}`).toBe(code);
        continue;
      }
      expect(verify(decoded as never), `byte ${i} bit ${bit}`).toBe(false);
    }
  }
}

describe('key IDs and signers', () => {
  it('a key ID is the first 8 bytes of SHA-256 of the raw key, the same as keyFingerprint', () => {
    expect(keyIdOf(root.publicKeyRaw)).toEqual(sha256(root.publicKeyRaw).subarray(0, KEY_ID_BYTES));
    expect(keyIdOf(root.publicKeyRaw)).toEqual(keyFingerprint(root.publicKeyRaw));
    expect(keyIdHex(root.publicKeyRaw)).toMatch(/^[0-9a-f]{16}$/);
    expect(root.keyId).toEqual(keyIdOf(root.publicKeyRaw));
  });
});

describe('root-transition record', () => {
  const bytes = makeRootTransition(
    { nextPublicKey: next.publicKeyRaw, issuedAt: T0, nextValidFrom: T0 + DAY },
    root,
    next,
  );

  it('round-trips (185 bytes) and verifies under the previous root', () => {
    expect(bytes.length).toBe(185);
    const t = decodeRootTransition(bytes);
    expect(t.previousKeyId).toEqual(root.keyId);
    expect(t.nextPublicKey).toEqual(next.publicKeyRaw);
    expect(t.nextKeyId).toEqual(next.keyId);
    expect(t.issuedAt).toBe(T0);
    expect(t.nextValidFrom).toBe(T0 + DAY);
    expect(t.encoded).toEqual(bytes);
    expect(verifyRootTransition(t, root.publicKeyRaw)).toBe(true);
  });

  it('refuses every altered byte', () => {
    everyAlteredByteRefused(
      bytes,
      decodeRootTransition,
      (t: ReturnType<typeof decodeRootTransition>) => verifyRootTransition(t, root.publicKeyRaw),
      'TRUST_RECORD_INVALID',
    );
  });

  it('refuses another previous root, a record signed by a stranger, or one the next root did not sign', () => {
    const t = decodeRootTransition(bytes);
    expect(verifyRootTransition(t, stranger.publicKeyRaw)).toBe(false);
    // A stranger claims to be the root (its key ID patched in): the signature does not verify.
    const forged = makeRootTransition(
      { nextPublicKey: next.publicKeyRaw, issuedAt: T0, nextValidFrom: T0 },
      stranger,
      next,
    );
    root.keyId.copy(forged, 1);
    expect(verifyRootTransition(decodeRootTransition(forged), root.publicKeyRaw)).toBe(false);
    // The next root's signature replaced by the previous root's: no proof of possession.
    const noNext = Buffer.from(bytes);
    bytes.copy(noNext, 121, 57, 121);
    expect(verifyRootTransition(decodeRootTransition(noNext), root.publicKeyRaw)).toBe(false);
  });

  it('refuses truncated, extended, other versions and a root transitioning to itself', () => {
    expect(codeOf(() => decodeRootTransition(bytes.subarray(0, 184)))).toBe('TRUST_RECORD_INVALID');
    expect(codeOf(() => decodeRootTransition(Buffer.concat([bytes, Buffer.alloc(1)])))).toBe('TRUST_RECORD_INVALID');
    expect(codeOf(() => decodeRootTransition(Buffer.alloc(0)))).toBe('TRUST_RECORD_INVALID');
    const v2 = Buffer.from(bytes);
    v2[0] = 2;
    expect(codeOf(() => decodeRootTransition(v2))).toBe('TRUST_RECORD_INVALID');
    const self = Buffer.from(bytes);
    root.publicKeyRaw.copy(self, 9);
    expect(codeOf(() => decodeRootTransition(self))).toBe('TRUST_RECORD_INVALID');
    const huge = Buffer.from(bytes);
    huge.fill(0xff, 41, 49);
    expect(codeOf(() => decodeRootTransition(huge))).toBe('TRUST_RECORD_INVALID');
    expect(() =>
      makeRootTransition({ nextPublicKey: stranger.publicKeyRaw, issuedAt: T0, nextValidFrom: T0 }, root, next),
    ).toThrow(/next signer/);
  });
});

describe('delegation certificate', () => {
  const fields = {
    delegatePublicKey: online.publicKeyRaw,
    sequence: 4,
    validFrom: T0,
    validUntil: T0 + 90 * DAY,
    purposes: DELEGATION_PURPOSE.confirmations | DELEGATION_PURPOSE.phoneActivationObjects,
  };
  const bytes = makeDelegation(fields, root);

  it('round-trips (126 bytes) and verifies under its root only', () => {
    expect(bytes.length).toBe(126);
    const d = decodeDelegation(bytes);
    expect(d).toMatchObject({ ...fields, issuerKeyId: root.keyId, delegateKeyId: online.keyId, encoded: bytes });
    expect(verifyDelegation(d, root.publicKeyRaw)).toBe(true);
    expect(verifyDelegation(d, next.publicKeyRaw)).toBe(false);
    const forged = makeDelegation(fields, stranger);
    root.keyId.copy(forged, 1);
    expect(verifyDelegation(decodeDelegation(forged), root.publicKeyRaw)).toBe(false);
  });

  it('refuses every altered byte', () => {
    everyAlteredByteRefused(
      bytes,
      decodeDelegation,
      (d: ReturnType<typeof decodeDelegation>) => verifyDelegation(d, root.publicKeyRaw),
      'TRUST_RECORD_INVALID',
    );
  });

  it('refuses truncated, extended, empty or unknown purposes and an empty validity', () => {
    expect(codeOf(() => decodeDelegation(bytes.subarray(0, 125)))).toBe('TRUST_RECORD_INVALID');
    expect(codeOf(() => decodeDelegation(Buffer.concat([bytes, Buffer.alloc(1)])))).toBe('TRUST_RECORD_INVALID');
    for (const purposes of [0, 8, 0x81]) {
      const bad = Buffer.from(bytes);
      bad[61] = purposes;
      expect(
        codeOf(() => decodeDelegation(bad)),
        `purposes ${purposes}`,
      ).toBe('TRUST_RECORD_INVALID');
    }
    const empty = Buffer.from(bytes);
    empty.copy(empty, 53, 45, 53); // validUntil = validFrom
    expect(codeOf(() => decodeDelegation(empty))).toBe('TRUST_RECORD_INVALID');
    expect(() => makeDelegation({ ...fields, purposes: 0 }, root)).toThrow(RangeError);
  });

  it('refuses a validity longer than 4 years and 30 days (a leaked root cannot mint a decades-long online key)', () => {
    const atCap = { ...fields, validUntil: fields.validFrom + MAX_DELEGATION_VALIDITY_MS };
    expect(decodeDelegation(makeDelegation(atCap, root)).validUntil).toBe(atCap.validUntil);
    expect(() => makeDelegation({ ...atCap, validUntil: atCap.validUntil + 1 }, root)).toThrow(/cap of 1491 days/);
    const long = Buffer.from(makeDelegation(atCap, root));
    long.writeBigUInt64BE(BigInt(atCap.validUntil + DAY), 53);
    expect(codeOf(() => decodeDelegation(long))).toBe('TRUST_RECORD_INVALID');
    expect(() => decodeDelegation(long)).toThrow(/cap of 1491 days/);
  });

  it('key index: sequence mod 3 + 1', () => {
    expect([0, 1, 2, 3, 4, 5].map(confirmationKeyIndex)).toEqual([1, 2, 3, 1, 2, 3]);
  });
});

describe('revocation list', () => {
  const hostRef = sha256(Buffer.from('host key')).subarray(0, 16);
  const entries: RevocationEntry[] = [
    { kind: 'tokenCa', subject: revocationSubjectOfKeyId(stranger.keyId), revokedAt: T0 + 2 },
    { kind: 'host', subject: hostRef, revokedAt: T0 + 1 },
  ];
  const bytes = makeRevocationList(
    { listVersion: 7, issuedAt: T0, nextUpdate: T0 + REVOCATION_LIST_LIFETIME, entries },
    root,
  );

  it('round-trips sorted by (kind, subject) and verifies under its root only', () => {
    expect(bytes.length).toBe(37 + 2 * 25 + 64);
    const l = decodeRevocationList(bytes);
    expect(l).toMatchObject({ issuerKeyId: root.keyId, listVersion: 7, issuedAt: T0, nextUpdate: T0 + 7 * DAY });
    expect(l.entries.map((e) => e.kind)).toEqual(['host', 'tokenCa']);
    expect(verifyRevocationList(l, root.publicKeyRaw)).toBe(true);
    expect(verifyRevocationList(l, next.publicKeyRaw)).toBe(false);
    const empty = decodeRevocationList(
      makeRevocationList({ listVersion: 1, issuedAt: T0, nextUpdate: T0, entries: [] }, root),
    );
    expect(empty.entries).toEqual([]);
  });

  it('isRevoked finds host keys by ref and manufacturers/token CAs by key ID, nothing else', () => {
    const l = decodeRevocationList(bytes);
    expect(isRevoked(l, 'host', hostRef)?.revokedAt).toBe(T0 + 1);
    expect(isRevoked(l, 'tokenCa', stranger.keyId)?.revokedAt).toBe(T0 + 2);
    expect(isRevoked(l, 'tokenCa', revocationSubjectOfKeyId(stranger.keyId))).not.toBeNull();
    expect(isRevoked(l, 'manufacturer', stranger.keyId)).toBeNull();
    expect(isRevoked(l, 'host', sha256(Buffer.from('other')).subarray(0, 16))).toBeNull();
  });

  it('refuses every altered byte', () => {
    everyAlteredByteRefused(
      bytes,
      decodeRevocationList,
      (l: ReturnType<typeof decodeRevocationList>) => verifyRevocationList(l, root.publicKeyRaw),
      'REVOCATION_LIST_INVALID',
    );
  });

  it('refuses truncated, extended, unsorted and duplicate entries, and a count the bytes do not hold', () => {
    expect(codeOf(() => decodeRevocationList(bytes.subarray(0, bytes.length - 1)))).toBe('REVOCATION_LIST_INVALID');
    expect(codeOf(() => decodeRevocationList(Buffer.concat([bytes, Buffer.alloc(25)])))).toBe(
      'REVOCATION_LIST_INVALID',
    );
    expect(codeOf(() => decodeRevocationList(Buffer.alloc(10)))).toBe('REVOCATION_LIST_INVALID');
    const swapped = Buffer.from(bytes);
    bytes.copy(swapped, 37, 62, 87);
    bytes.copy(swapped, 62, 37, 62);
    expect(codeOf(() => decodeRevocationList(swapped))).toMatch('REVOCATION_LIST_INVALID');
    const dup = Buffer.from(bytes);
    bytes.copy(dup, 62, 37, 62);
    expect(codeOf(() => decodeRevocationList(dup))).toBe('REVOCATION_LIST_INVALID');
    const count = Buffer.from(bytes);
    count.writeUInt32BE(0x10001, 33);
    expect(codeOf(() => decodeRevocationList(count))).toBe('REVOCATION_LIST_INVALID');
    expect(
      codeOf(() =>
        makeRevocationList({ listVersion: 1, issuedAt: T0, nextUpdate: T0, entries: [entries[0]!, entries[0]!] }, root),
      ),
    ).toBe('REVOCATION_LIST_INVALID');
  });

  it('assertNotOlder refuses an older list naming both versions; same or newer passes', () => {
    expect(() => assertNotOlder(null, { listVersion: 1 })).not.toThrow();
    expect(() => assertNotOlder({ listVersion: 7 }, { listVersion: 7 })).not.toThrow();
    expect(() => assertNotOlder({ listVersion: 7 }, { listVersion: 8 })).not.toThrow();
    let err: unknown;
    try {
      assertNotOlder({ listVersion: 7 }, { listVersion: 6 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CoreError);
    expect((err as CoreError).code).toBe('REVOCATION_LIST_STALE');
    expect((err as CoreError).message).toMatch(/\b6\b.*\b7\b/);
  });
});

describe('host status', () => {
  const fields = {
    hostKeyRef: sha256(Buffer.from('host key')).subarray(0, 16),
    listVersion: 7,
    issuedAt: T0,
    nextUpdate: T0 + 7 * DAY,
  };
  const bytes = makeHostStatus(fields, root);

  it('round-trips (113 bytes) and verifies under its root only', () => {
    expect(bytes.length).toBe(113);
    const s = decodeHostStatus(bytes);
    expect(s).toMatchObject({ ...fields, issuerKeyId: root.keyId, encoded: bytes });
    expect(verifyHostStatus(s, root.publicKeyRaw)).toBe(true);
    expect(verifyHostStatus(s, stranger.publicKeyRaw)).toBe(false);
    const forged = makeHostStatus(fields, stranger);
    root.keyId.copy(forged, 1);
    expect(verifyHostStatus(decodeHostStatus(forged), root.publicKeyRaw)).toBe(false);
  });

  it('refuses every altered byte, truncated and extended', () => {
    everyAlteredByteRefused(
      bytes,
      decodeHostStatus,
      (s: ReturnType<typeof decodeHostStatus>) => verifyHostStatus(s, root.publicKeyRaw),
      'REVOCATION_LIST_INVALID',
    );
    expect(codeOf(() => decodeHostStatus(bytes.subarray(0, 112)))).toBe('REVOCATION_LIST_INVALID');
    expect(codeOf(() => decodeHostStatus(Buffer.concat([bytes, Buffer.alloc(1)])))).toBe('REVOCATION_LIST_INVALID');
  });

  it('refuses a status valid longer than 7 days and 1 hour', () => {
    const atCap = { ...fields, nextUpdate: fields.issuedAt + MAX_HOST_STATUS_VALIDITY_MS };
    expect(decodeHostStatus(makeHostStatus(atCap, root)).nextUpdate).toBe(atCap.nextUpdate);
    expect(() => makeHostStatus({ ...atCap, nextUpdate: atCap.nextUpdate + 1 }, root)).toThrow(RangeError);
    const long = Buffer.from(makeHostStatus(atCap, root));
    long.writeBigUInt64BE(BigInt(fields.issuedAt + 365 * DAY), 41);
    expect(codeOf(() => decodeHostStatus(long))).toBe('REVOCATION_LIST_INVALID');
    expect(() => decodeHostStatus(long)).toThrow(/cap of 7 days and 1 hour/);
  });
});
