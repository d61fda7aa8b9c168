import { describe, expect, it } from 'vitest';
import { DAY, HOUR, fileSigner, generateSigningKeyPair, hostKeyRefOf, issueHostCertificate } from '@volact/core';
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
/** A status current over the whole certificate (its currency has tests of its own: trust.test.ts). */
const hostStatus = hostStatusOf(root, hostKeyRefOf(host.publicKeyRaw), {
  issuedAt: issuedAt - skew,
  nextUpdate: expiresAt,
});

/** A response signed at `hostTime`, alone in its batch (the root is its leaf). */
function responseAt(hostTime: number): Buffer {
  return answerOf({
    host,
    certificate,
    groupId,
    clientId,
    nonce,
    hostTime,
    extensions: { hostStatus, transitions: [], delegations: [] },
  });
}

function outcome(hostTime: number, now: number, mode: Expectation['mode']): string {
  try {
    verifyKmsResponse(responseAt(hostTime), {
      trust,
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
