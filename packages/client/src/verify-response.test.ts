import { describe, expect, it } from 'vitest';
import {
  DAY,
  HOUR,
  fileSigner,
  generateSigningKeyPair,
  hostKeyRefOf,
  issueHostCertificate,
  makeRevocationList,
} from '@volact/core';
import { verifyKmsResponse, type Expectation } from './verify-response.js';
import { ClientError } from './errors.js';
import { ClientTrust } from './trust.js';
import { answerOf, hostStatusOf, productWith } from './trust-fixtures.js';

/**
 * The certificate-validity rules of docs/protocol.md ("Host certificate", Validity):
 * `issuedAt − skew ≤ t < expiresAt` for both the client's clock (live answers) and the
 * response's hostTime, the allowance at the start only.
 */
const rootPair = generateSigningKeyPair();
const root = { ...rootPair, ...fileSigner(rootPair) };
const host = generateSigningKeyPair();
const groupId = Buffer.alloc(16, 0x11);
const trust = ClientTrust.of(productWith([{ pair: rootPair }]));
const clientId = Buffer.alloc(16, 0x22);
const nonce = Buffer.alloc(16, 0x33);
const issuedAt = Date.UTC(2026, 0, 1);
const expiresAt = issuedAt + 180 * DAY;
const skew = 4 * HOUR;
const certificate = issueHostCertificate(
  {
    hostPublicKey: host.publicKeyRaw,
    serial: '5e000000-0000-4000-8000-000000000001',
    hostKeyId: '4b000000-0000-4000-8000-000000000001',
    issuedAt,
    expiresAt,
    groupIds: ['11111111-1111-1111-1111-111111111111'],
  },
  root,
);
/** A status the host fetched an hour before it answered (its currency has tests of its own: trust.test.ts). */
const statusFor = (hostTime: number): Buffer =>
  hostStatusOf(root, hostKeyRefOf(host.publicKeyRaw), { issuedAt: hostTime - HOUR, nextUpdate: hostTime + 6 * DAY });

/** A response signed at `hostTime`, alone in its batch (the root is its leaf). */
function responseAt(hostTime: number, f: { hostStatus?: Buffer | null; protocolVersion?: 1 | 2 } = {}): Buffer {
  const hostStatus = f.hostStatus === undefined ? statusFor(hostTime) : f.hostStatus;
  return answerOf({
    host,
    certificate,
    groupId,
    clientId,
    nonce,
    hostTime,
    protocolVersion: f.protocolVersion ?? 2,
    extensions: { ...(hostStatus ? { hostStatus } : {}), transitions: [], delegations: [] },
  });
}

function outcome(
  hostTime: number,
  now: number,
  mode: Expectation['mode'],
  f: { hostStatus?: Buffer | null; protocolVersion?: 1 | 2; trust?: ClientTrust } = {},
): string {
  try {
    verifyKmsResponse(responseAt(hostTime, f), {
      trust: f.trust ?? trust,
      groupId,
      clientId,
      mode,
      now,
      maxClockSkew: skew,
    });
    return 'ok';
  } catch (err) {
    if (err instanceof ClientError) return err.code;
    throw err;
  }
}

const live = { kind: 'live', nonce } as const;
const stored = { kind: 'stored' } as const;

describe('verifyKmsResponse: host certificate validity', () => {
  it('accepts a live answer up to the allowed skew before the certificate starts, not a millisecond more', () => {
    expect(outcome(issuedAt - skew, issuedAt - skew, live)).toBe('ok');
    expect(outcome(issuedAt - skew - 1, issuedAt - skew, live)).toBe('KMS_CERT_EXPIRED');
    expect(outcome(issuedAt - skew - 1, issuedAt - skew - 1, live)).toBe('KMS_CERT_EXPIRED');
  });

  it('ends the certificate at expiresAt, exclusive, with no allowance', () => {
    expect(outcome(expiresAt - 1, expiresAt - 1, live)).toBe('ok');
    expect(outcome(expiresAt - 1, expiresAt, live)).toBe('KMS_CERT_EXPIRED');
    expect(outcome(expiresAt, expiresAt - 1, live)).toBe('KMS_CERT_EXPIRED');
  });

  it('keeps stored evidence signed inside the validity (its start less the skew) after the certificate ends', () => {
    const later = expiresAt + 30 * DAY;
    expect(outcome(issuedAt - skew, later, stored)).toBe('ok');
    expect(outcome(expiresAt - 1, later, stored)).toBe('ok');
    expect(outcome(issuedAt - skew - 1, later, stored)).toBe('KMS_CERT_EXPIRED');
    expect(outcome(expiresAt, later, stored)).toBe('KMS_CERT_EXPIRED');
  });

  it('refuses stored evidence dated more than the skew after now', () => {
    const now = issuedAt + DAY;
    expect(outcome(now + skew, now, stored)).toBe('ok');
    expect(outcome(now + skew + 1, now, stored)).toBe('KMS_CLOCK_SKEW');
  });
});

describe('verifyKmsResponse: stored evidence and revocation (docs/trust.md, Revocation)', () => {
  const t = issuedAt + 30 * DAY;
  const later = t + 60 * DAY;
  const ref = hostKeyRefOf(host.publicKeyRaw);
  const revokedAt = (at: number): ClientTrust => {
    const held = ClientTrust.of(productWith([{ pair: rootPair }]));
    held.acceptRevocationList(
      makeRevocationList(
        {
          listVersion: 3,
          issuedAt: at,
          nextUpdate: at + 7 * DAY,
          entries: [{ kind: 'host', subject: ref, revokedAt: at }],
        },
        root,
      ),
    );
    return held;
  };

  it('a stored version-2 answer of an online-certified host needs the status it carried, covering its time (± skew)', () => {
    expect(outcome(t, later, stored)).toBe('ok');
    expect(outcome(t, later, stored, { hostStatus: null })).toBe('KMS_HOST_STATUS_MISSING');
    // A revoked host's leaked key, writing an activation dated now: only statuses from before its revocation exist.
    const old = hostStatusOf(root, ref, { issuedAt: t - 20 * DAY, nextUpdate: t - 13 * DAY });
    expect(outcome(t, later, stored, { hostStatus: old })).toBe('KMS_HOST_STATUS_MISSING');
    const edge = hostStatusOf(root, ref, { issuedAt: t - 7 * DAY, nextUpdate: t - skew });
    expect(outcome(t, later, stored, { hostStatus: edge })).toBe('ok');
    expect(outcome(t + 1, later, stored, { hostStatus: edge })).toBe('KMS_HOST_STATUS_MISSING');
    const early = hostStatusOf(root, ref, { issuedAt: t + skew, nextUpdate: t + 7 * DAY });
    expect(outcome(t, later, stored, { hostStatus: early })).toBe('ok');
    expect(outcome(t - 1, later, stored, { hostStatus: early })).toBe('KMS_HOST_STATUS_MISSING');
  });

  it('a live answer too: its status must cover the answer time, not only now', () => {
    const status = hostStatusOf(root, ref, { issuedAt: t - 7 * DAY, nextUpdate: t });
    expect(outcome(t + skew, t + skew - 1, live, { hostStatus: status })).toBe('ok');
    expect(outcome(t + skew + 1, t + skew - 1, live, { hostStatus: status })).toBe('KMS_HOST_STATUS_MISSING');
  });

  it('a stored version-1 answer (made before host statuses) keeps licensing, unless the held list revoked its host at or before its time', () => {
    expect(outcome(t, later, stored, { protocolVersion: 1 })).toBe('ok');
    expect(outcome(t, later, stored, { protocolVersion: 1, trust: revokedAt(t + 1) })).toBe('ok');
    expect(outcome(t, later, stored, { protocolVersion: 1, trust: revokedAt(t) })).toBe('KMS_HOST_REVOKED');
    expect(outcome(t, later, stored, { protocolVersion: 1, trust: revokedAt(t - 20 * DAY) })).toBe('KMS_HOST_REVOKED');
    // Only from a certificate the authority could have issued online (at most 365 days).
    const long = issueHostCertificate(
      {
        hostPublicKey: host.publicKeyRaw,
        serial: '5e000000-0000-4000-8000-000000000002',
        hostKeyId: '4b000000-0000-4000-8000-000000000001',
        issuedAt,
        expiresAt: issuedAt + 366 * DAY,
        groupIds: ['11111111-1111-1111-1111-111111111111'],
      },
      root,
    );
    const legacyFrom = (cert: Buffer): string => {
      try {
        verifyKmsResponse(
          answerOf({ host, certificate: cert, groupId, clientId, nonce, hostTime: t, protocolVersion: 1 }),
          { trust, groupId, clientId, mode: stored, now: later, maxClockSkew: skew },
        );
        return 'ok';
      } catch (err) {
        return (err as ClientError).code;
      }
    };
    expect(legacyFrom(certificate)).toBe('ok');
    expect(legacyFrom(long)).toBe('KMS_CERT_EXPIRED');
    // A live version-1 answer from an online-certified host carries no status: refused.
    expect(outcome(t, t, live, { protocolVersion: 1 })).toBe('KMS_HOST_STATUS_MISSING');
  });

  it('a stored version-2 answer: a revocation after its time keeps it, one at or before ends it', () => {
    expect(outcome(t, later, stored, { trust: revokedAt(t + 1) })).toBe('ok');
    expect(outcome(t, later, stored, { trust: revokedAt(t - HOUR) })).toBe('KMS_HOST_REVOKED');
  });
});
