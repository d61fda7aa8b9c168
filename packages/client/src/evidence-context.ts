import type { KeyObject } from 'node:crypto';
import { MINUTE, type InstallationId, type TokenCrl } from '@volact/core';
import type { LicenceRecord, StoredRecord } from './licence-store.js';
import type { OfflineContext, readCrl, readOemMarker, readToken } from './offline-activation.js';

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

/** Results of the signature checks, kept between reads (each slot holds the last evidence it checked). */
export interface EvidenceMemo {
  /** The KMS answer, the installation's confirmation or the activation object last verified. */
  signature?: { evidence: string; verified: { hostTime: number; count: number } | null };
  oem?: { key: string; result: ReturnType<typeof readOemMarker> };
  token?: { key: string; crls: StoredRecord['crls']; revoked: StoredRecord['revoked']; result: TokenRead };
  /** Once per `crls` object. */
  crls?: CrlsRead;
  installationId?: { key: string; iid: InstallationId };
}

export interface EvidenceContext {
  readonly record: LicenceRecord;
  readonly rootKey: KeyObject;
  readonly rootKeyRaw: Buffer;
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
    rootPublicKey: ctx.rootKey,
    groupId: r.product.group.id,
    groupName: r.product.group.name,
    hardwareId: ctx.hardwareId,
  };
}
