import {
  BATCH_CONTEXT,
  CoreError,
  MessageType,
  bytesToGuid,
  decodeActivationResponse,
  decodeErrorResponse,
  decodeHostCertificate,
  hostErrorName,
  hostPublicKeyOf,
  leafHash,
  messageTypeOf,
  rootFromProof,
  verifyHostCertificate,
  verifyMessage,
  type ActivationResponse,
  type HostCertificate,
} from '@volact/core';
import type { KeyObject } from 'node:crypto';
import { ClientError, type ClientErrorCode } from './errors.js';

export interface Expectation {
  readonly rootPublicKey: KeyObject;
  readonly groupId: Buffer;
  readonly clientId: Buffer;
  /**
   * `live`: an answer to the request with this nonce, received now. `stored`: the evidence in
   * the licence store, re-checked at every read (no nonce; it must have been signed while its
   * certificate was valid and not in the future).
   */
  readonly mode: { kind: 'live'; nonce: Buffer } | { kind: 'stored' };
  /** This machine's time. */
  readonly now: number;
  readonly maxClockSkew: number;
  /** Verifications already done in this process (see VerificationMemo); none by default. */
  readonly memo?: VerificationMemo;
}

/**
 * Signature checks a long-lived process has already passed: a host certificate verified under
 * a root, and a batch signature verified under a host key. The same bytes verify the same way
 * every time, so each distinct certificate and batch signature is checked once — the simulator
 * verifies millions of answers that share a few hundred of each. Bounded; bound to one root.
 */
export class VerificationMemo {
  readonly #hostKeys = new Map<string, KeyObject>();
  readonly #batches = new Set<string>();

  constructor(
    readonly rootPublicKey: KeyObject,
    readonly maxEntries = 100_000,
  ) {}

  /** The host key of a certificate (its encoded bytes) verified under the root, when it was. */
  hostKey(certificate: Buffer): KeyObject | undefined {
    return this.#hostKeys.get(certificate.toString('base64'));
  }

  rememberHostKey(certificate: Buffer, key: KeyObject): void {
    if (this.#hostKeys.size >= this.maxEntries) this.#hostKeys.clear();
    this.#hostKeys.set(certificate.toString('base64'), key);
  }

  verifiedBatch(id: string): boolean {
    return this.#batches.has(id);
  }

  rememberBatch(id: string): void {
    if (this.#batches.size >= this.maxEntries) this.#batches.clear();
    this.#batches.add(id);
  }
}

export interface VerifiedResponse {
  readonly response: ActivationResponse;
  readonly certificate: HostCertificate;
}

type Check = (r: ActivationResponse, c: HostCertificate) => [ClientErrorCode, string] | null;

/**
 * A KMS response must pass these checks, in this order; the first that fails decides
 * (Keygen's ordered validation chain). The order puts trust first: nothing from the response
 * is believed before the certificate chain and the signature hold.
 */
function checks(e: Expectation, encodedCertificate: Buffer): Check[] {
  const memo = e.memo?.rootPublicKey === e.rootPublicKey ? e.memo : undefined;
  const trustedHostKey = memo?.hostKey(encodedCertificate);
  return [
    (_r, c) =>
      trustedHostKey !== undefined || verifyHostCertificate(c, e.rootPublicKey)
        ? null
        : [
            'KMS_CERT_UNTRUSTED',
            "the host's certificate was not issued by this product's authority (an emulator or another publisher's host)",
          ],
    (_r, c) =>
      e.mode.kind === 'stored' || (e.now >= c.issuedAt - e.maxClockSkew && e.now < c.expiresAt)
        ? null
        : [
            'KMS_CERT_EXPIRED',
            `the host's certificate is valid ${new Date(c.issuedAt).toISOString()} to ${new Date(c.expiresAt).toISOString()}; the host must re-activate`,
          ],
    (_r, c) =>
      c.groupIds.includes(bytesToGuid(e.groupId))
        ? null
        : [
            'KMS_CERT_GROUP_MISMATCH',
            "the host's certificate does not cover this product's group; install a host key for this group on the host",
          ],
    (r, c) => {
      const root = rootFromProof(leafHash(r.body), r.proof);
      const hostKey = trustedHostKey ?? hostPublicKeyOf(c);
      memo?.rememberHostKey(encodedCertificate, hostKey);
      const batch =
        memo && `${encodedCertificate.toString('base64')}:${root.toString('base64')}:${r.signature.toString('base64')}`;
      if (batch !== undefined && memo?.verifiedBatch(batch)) return null;
      if (!verifyMessage(hostKey, Buffer.concat([BATCH_CONTEXT, root]), r.signature)) {
        return ['KMS_BAD_SIGNATURE', 'the response signature does not verify against the host certificate'];
      }
      if (batch !== undefined) memo?.rememberBatch(batch);
      return null;
    },
    (r) =>
      e.mode.kind === 'stored' || r.nonce.equals(e.mode.nonce)
        ? null
        : ['KMS_NONCE_MISMATCH', 'the response carries another nonce than the request (a replayed response)'],
    (r) =>
      r.groupId.equals(e.groupId)
        ? null
        : ['KMS_GROUP_MISMATCH', `the response is for group ${bytesToGuid(r.groupId)}, not ${bytesToGuid(e.groupId)}`],
    (r) =>
      r.clientId.equals(e.clientId) ? null : ['KMS_CLIENT_MISMATCH', 'the response is for another client machine ID'],
    // A response signed outside its certificate's validity grants nothing: a leaked or retired
    // host key cannot mint licences dated in its certificate's future.
    (r, c) =>
      r.hostTime >= c.issuedAt - e.maxClockSkew && r.hostTime < c.expiresAt
        ? null
        : [
            'KMS_CERT_EXPIRED',
            `the response is dated ${new Date(r.hostTime).toISOString()}, outside its certificate's validity (${new Date(c.issuedAt).toISOString()} to ${new Date(c.expiresAt).toISOString()})`,
          ],
    (r) => {
      const skew = r.hostTime - e.now;
      const ok = e.mode.kind === 'live' ? Math.abs(skew) <= e.maxClockSkew : skew <= e.maxClockSkew;
      return ok
        ? null
        : [
            'KMS_CLOCK_SKEW',
            `the host's clock (${new Date(r.hostTime).toISOString()}) and this machine's (${new Date(e.now).toISOString()}) differ by more than ${Math.round(e.maxClockSkew / 60_000)} minutes; fix the time on one of them`,
          ];
    },
  ];
}

/** Decodes a response payload and runs every check; throws the first failure as a ClientError. */
export function verifyKmsResponse(payload: Buffer, e: Expectation): VerifiedResponse {
  let response: ActivationResponse;
  let certificate: HostCertificate;
  try {
    const type = messageTypeOf(payload);
    if (type === MessageType.ErrorResponse) {
      const err = decodeErrorResponse(payload);
      throw new ClientError('KMS_HOST_ERROR', `the KMS host refused: ${hostErrorName(err.code)}: ${err.message}`);
    }
    response = decodeActivationResponse(payload);
    certificate = decodeHostCertificate(response.certificate);
  } catch (err) {
    if (err instanceof ClientError) throw err;
    throw new ClientError(
      'KMS_MALFORMED_RESPONSE',
      `invalid response: ${err instanceof CoreError ? err.message : String(err)}`,
    );
  }
  for (const check of checks(e, response.certificate)) {
    const failed = check(response, certificate);
    if (failed) throw new ClientError(failed[0], failed[1]);
  }
  return { response, certificate };
}
