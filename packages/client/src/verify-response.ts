import {
  BATCH_CONTEXT,
  CoreError,
  DAY,
  MessageType,
  bytesToGuid,
  decodeActivationResponse,
  decodeErrorResponse,
  decodeHostCertificate,
  DELEGATION_PURPOSE,
  decodeHostStatus,
  hostErrorName,
  hostKeyRefOf,
  hostPublicKeyOf,
  leafHash,
  messageTypeOf,
  rootFromProof,
  verifyHostCertificate,
  verifyHostStatus,
  verifyMessage,
  type ActivationResponse,
  type HostCertificate,
} from '@volact/core';
import type { KeyObject } from 'node:crypto';
import { ClientError, type ClientErrorCode } from './errors.js';
import { TRUST_FIX, type ChosenKey, type ClientTrust } from './trust.js';

/** What a host hands out beside its answer (the wire's extension area): its status, trust records. */
export interface ResponseExtensions {
  readonly hostStatus?: Buffer;
  readonly transitions: readonly Buffer[];
  readonly delegations: readonly Buffer[];
}

/** The extension area of a decoded response; none from a host of an earlier release. */
export function extensionsOf(r: ActivationResponse): ResponseExtensions | undefined {
  return (r as ActivationResponse & { extensions?: ResponseExtensions }).extensions;
}

export interface Expectation {
  /**
   * Whom to believe: the certificate's issuer is looked up by key ID and issue time. A live
   * answer's transition records and delegations are learned into it first.
   */
  readonly trust: ClientTrust;
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
 * a trusted key, a host status and a batch signature. The same bytes verify the same way every
 * time (and the trust store only grows), so each distinct certificate, status and batch
 * signature is checked once — the simulator verifies millions of answers that share a few
 * hundred of each. Bounded; bound to one ClientTrust.
 */
export class VerificationMemo {
  readonly #hostKeys = new Map<string, { key: KeyObject; chosen: ChosenKey }>();
  readonly #batches = new Set<string>();
  readonly #statuses = new Set<string>();

  constructor(
    readonly trust: ClientTrust,
    readonly maxEntries = 100_000,
  ) {}

  /** The host key of a certificate (its encoded bytes) verified under a trusted key, when it was. */
  hostKey(certificate: Buffer): { key: KeyObject; chosen: ChosenKey } | undefined {
    return this.#hostKeys.get(certificate.toString('base64'));
  }

  rememberHostKey(certificate: Buffer, key: KeyObject, chosen: ChosenKey): void {
    if (this.#hostKeys.size >= this.maxEntries) this.#hostKeys.clear();
    this.#hostKeys.set(certificate.toString('base64'), { key, chosen });
  }

  verifiedStatus(id: string): boolean {
    return this.#statuses.has(id);
  }

  rememberStatus(id: string): void {
    if (this.#statuses.size >= this.maxEntries) this.#statuses.clear();
    this.#statuses.add(id);
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
  /** The key that certified the host (a root, or an online key for a phone certificate) and its root. */
  readonly signer: ChosenKey;
}

/**
 * Whether a stored answer's certificate names a key this installation trusts at its issue time
 * (false: a root it no longer trusts, e.g. after a product config that dropped a leaked root:
 * the evidence then grants nothing, which is not an edit). True when it does not decode.
 */
export function certificateIssuerKnown(payload: Buffer, trust: ClientTrust): boolean {
  try {
    const c = decodeHostCertificate(decodeActivationResponse(payload).certificate);
    const chosen =
      c.version === 1
        ? trust.root(c.issuer, c.issuedAt)
        : trust.rootOrDelegate(c.issuer, c.issuedAt, DELEGATION_PURPOSE.phoneHostCertificates);
    return chosen !== null;
  } catch {
    return true;
  }
}

/** The trusted key that signed this certificate, by its issuer and issue time; null when none. */
export function certificateSigner(c: HostCertificate, trust: ClientTrust): ChosenKey | null {
  // An online (v1) certificate is signed by a root; a phone (v2) one by a root (before online
  // keys existed) or by an online key delegated for phone host certificates.
  const chosen =
    c.version === 1
      ? trust.root(c.issuer, c.issuedAt)
      : trust.rootOrDelegate(c.issuer, c.issuedAt, DELEGATION_PURPOSE.phoneHostCertificates);
  return chosen && verifyHostCertificate(c, chosen.key, chosen.delegated ? 'delegate' : 'root') ? chosen : null;
}

/**
 * A host with an online certificate must show a status for its key (docs/trust.md, Revocation):
 * signed by a trusted root, for this host key, covering the answer's own signed time
 * (issuedAt − skew ≤ hostTime ≤ nextUpdate + skew); a live answer's status must also be current
 * (issued no later than now + skew, not past its next update + skew). A host key on the list
 * this client holds is refused: live, whatever the revocation's date; stored, when revoked at or
 * before the answer's time (evidence made before a revocation stays until its own end).
 *
 * Stored evidence is the answer as received, extension area included: a protocol-version-2
 * answer from an online-certified host is checked against the status it carried, so a revoked
 * host's leaked key cannot write an activation dated now into the store. A protocol-version-1
 * answer (stored by releases before host statuses; no extension area) has no status: only the
 * held list is checked (the legacy gap, docs/trust.md).
 */
function hostStatusProblem(
  r: ActivationResponse,
  c: HostCertificate,
  e: Expectation,
  memo: VerificationMemo | undefined,
): [ClientErrorCode, string] | null {
  const ref = hostKeyRefOf(c.hostPublicKey);
  const revoked = e.trust.revoked('host', ref);
  if (revoked && (e.mode.kind === 'live' || revoked.revokedAt <= r.hostTime)) {
    return [
      'KMS_HOST_REVOKED',
      `the host's key (…${ref.toString('hex').slice(-8)}) was revoked by the publisher on ${new Date(revoked.revokedAt).toISOString()} (revocation list version ${e.trust.revocations?.listVersion}): use another KMS host`,
    ];
  }
  if (c.version !== 1) return null; // certified by phone: never reaches the authority, carries no status
  if (e.mode.kind === 'stored' && r.protocolVersion === 1) {
    // Stored before statuses existed: nothing bounds its time but its certificate, so only a
    // certificate the authority could have issued online (at most 365 days) is believed.
    return c.expiresAt - c.issuedAt <= MAX_LEGACY_CERT_VALIDITY_MS
      ? null
      : [
          'KMS_CERT_EXPIRED',
          `the stored answer (protocol version 1) comes from a host certificate valid ${Math.ceil((c.expiresAt - c.issuedAt) / DAY)} days, longer than the ${MAX_LEGACY_CERT_VALIDITY_MS / DAY} days the authority issues online: activate again`,
        ];
  }
  const encoded = extensionsOf(r)?.hostStatus;
  const missing = (why: string): [ClientErrorCode, string] => [
    'KMS_HOST_STATUS_MISSING',
    `the host's answer carries ${why}: the host renews it at the authority every 6 hours (\`volact host status\` on the host; it must reach the authority)`,
  ];
  if (!encoded) return missing('no revocation status for its key');
  let status;
  try {
    status = decodeHostStatus(encoded);
  } catch {
    return missing('a malformed revocation status');
  }
  if (!status.hostKeyRef.equals(ref)) return missing("the revocation status of another host's key");
  const id = memo && `${c.encoded.toString('base64')}:${encoded.toString('base64')}`;
  if (!(id !== undefined && memo?.verifiedStatus(id))) {
    const root = e.trust.root(status.issuerKeyId, status.issuedAt);
    if (!root || !verifyHostStatus(status, root.raw)) {
      return missing(`a revocation status not signed by a root this installation trusts (${TRUST_FIX})`);
    }
    if (id !== undefined) memo?.rememberStatus(id);
  }
  const window = `${new Date(status.issuedAt).toISOString()} to ${new Date(status.nextUpdate).toISOString()}`;
  if (r.hostTime < status.issuedAt - e.maxClockSkew || r.hostTime > status.nextUpdate + e.maxClockSkew) {
    return missing(
      `a revocation status valid ${window}, which does not cover the answer's time (${new Date(r.hostTime).toISOString()})`,
    );
  }
  if (
    e.mode.kind === 'live' &&
    (status.issuedAt > e.now + e.maxClockSkew || e.now >= status.nextUpdate + e.maxClockSkew)
  ) {
    return missing(`a revocation status valid ${window}, not now (${new Date(e.now).toISOString()})`);
  }
  return null;
}

/**
 * The longest online (v1) host certificate a stored protocol-version-1 answer may come from: the
 * most `authority serve --host-certificate-days` allows (365; 30 by default).
 */
export const MAX_LEGACY_CERT_VALIDITY_MS = 365 * DAY;

type Check = (r: ActivationResponse, c: HostCertificate) => [ClientErrorCode, string] | null;

/**
 * A KMS response must pass these checks, in this order; the first that fails decides
 * (Keygen's ordered validation chain). The order puts trust first: nothing from the response
 * is believed before the certificate chain and the signature hold.
 */
function checks(e: Expectation, encodedCertificate: Buffer, signer: { chosen?: ChosenKey }): Check[] {
  const memo = e.memo?.trust === e.trust ? e.memo : undefined;
  const trusted = memo?.hostKey(encodedCertificate);
  return [
    (_r, c) => {
      const chosen = trusted?.chosen ?? certificateSigner(c, e.trust) ?? undefined;
      if (chosen) {
        signer.chosen = chosen;
        return null;
      }
      return [
        'KMS_CERT_UNTRUSTED',
        `the host's certificate was not issued by a key this installation trusts (issuer ${c.issuer.toString('hex')}: an emulator, another publisher's host, or a root this installation has not learned: ${TRUST_FIX})`,
      ];
    },
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
    // Live answers here; stored evidence last (below), once its signature and dates hold: an
    // edited answer is then an edit, and an intact one without a covering status grants nothing.
    (r, c) => (e.mode.kind === 'live' ? hostStatusProblem(r, c, e, memo) : null),
    (r, c) => {
      const root = rootFromProof(leafHash(r.body), r.proof);
      const hostKey = trusted?.key ?? hostPublicKeyOf(c);
      if (!trusted && signer.chosen) memo?.rememberHostKey(encodedCertificate, hostKey, signer.chosen);
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
    // Stored evidence (made before a revocation stays until its own end; docs/trust.md, Revocation).
    (r, c) => (e.mode.kind === 'stored' ? hostStatusProblem(r, c, e, memo) : null),
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
  // A live answer's records are learned before its certificate is checked: a host certified
  // under a root this installation meets for the first time brings the transition to it.
  if (e.mode.kind === 'live') {
    const ext = extensionsOf(response);
    if (ext) e.trust.learn(ext);
  }
  const signer: { chosen?: ChosenKey } = {};
  for (const check of checks(e, response.certificate, signer)) {
    const failed = check(response, certificate);
    if (failed) throw new ClientError(failed[0], failed[1]);
  }
  return { response, certificate, signer: signer.chosen as ChosenKey };
}
