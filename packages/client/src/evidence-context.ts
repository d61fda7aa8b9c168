import { MINUTE, type InstallationId, type TokenCrl } from '@volact/core';
import type { LicenceRecord, StoredRecord } from './licence-store.js';
import type { OfflineContext, readCrl, readOemMarker, readToken } from './offline-activation.js';
import type { ClientTrust } from './trust.js';

/**
 * What the evidence checks (evidence.ts, token-evidence.ts) read: the record, the machine as
 * read at this start, the time, and the memo of signature checks the caller (Licence) owns.
 */

/**
 * What the stored activation grants: `hostTime` when its evidence licenses from that time (the
 * validity runs from it), null when it grants nothing now; `valid: false` when the evidence does
 * not verify (altered: non-genuine); `permanent` for a licence that does not lapse.
 */
export interface Evidence {
  readonly hostTime: number | null;
  readonly valid: boolean;
  readonly permanent: boolean;
}

/** Grants nothing now, and is not tampering. */
export const NOTHING: Evidence = { hostTime: null, valid: true, permanent: false };
/** Does not verify: an altered store. */
export const ALTERED: Evidence = { hostTime: null, valid: false, permanent: false };

/** The installed CRLs as read and verified, by CA fingerprint; the first that does not verify. */
export interface CrlsRead {
  readonly crls: StoredRecord['crls'];
  readonly byCa: Map<string, TokenCrl>;
  readonly failure: { ok: false; code: 'CRL_INVALID' | 'TOKEN_CA_UNTRUSTED'; message: string } | null;
}

export type TokenRead = ReturnType<typeof readToken> | ReturnType<typeof readCrl>;

/** Who signed the evidence: the publisher's key (a root, or an online key) and the root that anchors it, key IDs in hex. */
export interface Anchor {
  readonly signedBy: string;
  readonly root: string;
}

/**
 * Results of the signature checks, kept between reads (each slot holds the last evidence it
 * checked, under the trust store's generation: a record learned since may verify it now).
 */
export interface EvidenceMemo {
  /** The KMS answer, the installation's confirmation or the activation object last verified. */
  signature?: {
    evidence: string;
    /** `unknownSigner`: signed by no key this installation trusts (now): it grants nothing, not an edit. */
    verified: { hostTime: number; count: number; anchor?: Anchor; unknownSigner?: true } | null;
  };
  oem?: { key: string; result: ReturnType<typeof readOemMarker> };
  token?: { key: string; crls: StoredRecord['crls']; revoked: StoredRecord['revoked']; result: TokenRead };
  /** Once per `crls` object. */
  crls?: CrlsRead;
  installationId?: { key: string; iid: InstallationId };
}

export interface EvidenceContext {
  readonly record: LicenceRecord;
  /** Whom this installation believes (the product's bundle, the records learned, the revocation list held). */
  readonly trust: ClientTrust;
  /** This machine's hardware id, read at this start (never from the store). */
  readonly hardwareId: string;
  /** The directory domain this machine is configured as a member of, read at this start. */
  readonly memberDomain: string | null;
  readonly now: number;
  readonly memo: EvidenceMemo;
}

export const maxSkewOf = (ctx: EvidenceContext) => ctx.record.product.policy.maxClockSkewMinutes * MINUTE;

export function offlineContext(ctx: EvidenceContext): OfflineContext {
  const r = ctx.record;
  return {
    trust: ctx.trust,
    groupId: r.product.group.id,
    groupName: r.product.group.name,
    hardwareId: ctx.hardwareId,
  };
}
