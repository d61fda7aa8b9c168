import { DAY, parseActivationToken, tokenCaFingerprint, type TokenCrl } from '@volact/core';
import type { ClientErrorCode } from './errors.js';
import {
  maxSkewOf,
  offlineContext,
  type CrlsRead,
  type Evidence,
  type EvidenceContext,
  type TokenRead,
} from './evidence-context.js';
import { certifyingRoot, readCrl, readToken } from './offline-activation.js';

/**
 * The checks an installed activation token must pass, against the CRLs installed beside it and
 * the serials seen revoked: what a token grants now (tokenEvidence) and whether an attempt or
 * an install may use it (tokenNow). Signatures are checked once, via the context's memo.
 */

/**
 * The installed CRLs, each verified (root, group, its CA's signature) and filed under its own
 * CA's fingerprint; the first that is not is reported (an edited store). Once per `crls`.
 */
export function readCrls(ctx: EvidenceContext): CrlsRead {
  const crls = ctx.record.crls;
  if (ctx.memo.crls?.crls !== crls) {
    const byCa = new Map<string, TokenCrl>();
    let failure: CrlsRead['failure'] = null;
    for (const [fp, text] of Object.entries(crls)) {
      const read = readCrl(text, offlineContext(ctx));
      if (!read.ok) {
        failure ??= read;
      } else if (tokenCaFingerprint(read.crl.caCertificate) !== fp) {
        failure ??= {
          ok: false,
          code: 'CRL_INVALID',
          message: `the CRL of ${read.crl.caCertificate.organisation} is filed under another CA's fingerprint (…${fp.slice(-8)}): an edited store`,
        };
      } else {
        byCa.set(fp, read.crl);
      }
    }
    ctx.memo.crls = { crls, byCa, failure };
  }
  return ctx.memo.crls;
}

/** The fingerprint of a token's CA, or null when it does not parse (the signature checks report it). */
export function tokenCa(token: string): string | null {
  try {
    return tokenCaFingerprint(parseActivationToken(token).caCertificate);
  } catch {
    return null;
  }
}

/**
 * The token's checks without the time rule (activation-token.ts) against its own CA's installed
 * CRL and the serials seen revoked by that CA (kept whatever CRL is installed later), once per
 * token, CRLs, revocations and hardware id. An installed CRL that does not verify is an edited store.
 */
export function checkToken(ctx: EvidenceContext, token: string): TokenRead {
  const { crls, revoked } = ctx.record;
  const key = `${ctx.hardwareId}\0${token}`;
  const cached = ctx.memo.token;
  if (cached?.key === key && cached.crls === crls && cached.revoked === revoked) return cached.result;
  const read = readCrls(ctx);
  let result: TokenRead;
  if (read.failure) {
    result = read.failure;
  } else {
    const ca = tokenCa(token);
    result = readToken(token, ca === null ? null : (read.byCa.get(ca) ?? null), offlineContext(ctx));
    // Seen revoked once: revoked for good, whichever CRL (or none) is installed now.
    if ((result.ok || result.code === 'TOKEN_CRL_REQUIRED') && ca !== null) {
      const serial = parseActivationToken(token).serial.toLowerCase();
      if (revoked[ca]?.includes(serial)) {
        result = {
          ok: false,
          code: 'TOKEN_REVOKED',
          message: `token ${serial} was revoked by its CA (seen on a CRL installed here; a later or another CRL does not un-revoke it)`,
        };
      }
    }
  }
  ctx.memo.token = { key, crls, revoked, result };
  return result;
}

/** How the status shows a CRL: when it was issued, its next update (`stale` past it), how many serials. */
export interface CrlSummary {
  readonly issuedAt: string;
  readonly nextUpdate: string;
  readonly stale: boolean;
  readonly revoked: number;
}

export function crlSummaryOf(crl: TokenCrl, now: number): CrlSummary {
  return {
    issuedAt: crl.issuedAt,
    nextUpdate: crl.nextUpdate,
    revoked: crl.revoked.length,
    stale: now > Date.parse(crl.nextUpdate),
  };
}

/**
 * A token that requires a CRL requires a current one: past the installed CRL's next update it
 * no longer licenses. A CRL from before a revocation pasted back into the store (with the
 * token) thus licenses at most until that CRL's next update. Null when it holds.
 */
export function staleRequiredCrl(ctx: EvidenceContext, token: string): string | null {
  let required: ReturnType<typeof parseActivationToken>;
  try {
    required = parseActivationToken(token);
  } catch {
    return null; // the signature checks report it
  }
  const own = readCrls(ctx).byCa.get(tokenCaFingerprint(required.caCertificate));
  const crl = own ? crlSummaryOf(own, ctx.now) : null;
  if (!required.crlRequired || !crl?.stale) return null;
  return `token ${required.serial} requires a current CRL of its CA: the installed one was to be replaced on ${crl.nextUpdate}; install the newest (\`volact client install-crl FILE\`)`;
}

/** The token's checks with the time rule, now (an attempt, an install). */
export function tokenNow(
  ctx: EvidenceContext,
  token: string,
):
  | { ok: true; serial: string; organisation: string; validUntil: number }
  | { ok: false; code: ClientErrorCode; message: string } {
  const check = checkToken(ctx, token);
  if (!check.ok) return check;
  if (!('validUntil' in check)) return { ok: false, code: 'CRL_INVALID', message: 'the installed CRL is invalid' };
  const now = ctx.now;
  if (now + maxSkewOf(ctx) < check.validFrom || now >= check.validUntil) {
    return {
      ok: false,
      code: 'TOKEN_EXPIRED',
      message: `token ${check.serial} is valid from ${new Date(check.validFrom).toISOString()} to ${new Date(check.validUntil).toISOString()}; now is ${new Date(now).toISOString()}: carry in a new token`,
    };
  }
  const stale = staleRequiredCrl(ctx, token);
  if (stale) return { ok: false, code: 'TOKEN_CRL_REQUIRED', message: stale };
  return check;
}

/** Whether the token's CA certificate names a root this installation trusts at its start. */
function tokenRootKnown(ctx: EvidenceContext, token: string): boolean {
  try {
    return certifyingRoot(parseActivationToken(token).caCertificate, ctx.trust) !== null;
  } catch {
    return true;
  }
}

/** Failures of a genuine token that no longer applies here: not tampering. */
const NOT_APPLYING: readonly string[] = [
  'TOKEN_REVOKED',
  'TOKEN_CA_REVOKED',
  'TOKEN_HARDWARE_MISMATCH',
  'TOKEN_GROUP_MISMATCH',
  'TOKEN_CRL_REQUIRED',
];

/**
 * A token licenses until its notAfter (or its CA certificate's, if earlier); then, like a
 * lapsed KMS activation, out-of-tolerance grace and notification: the IT pro carries in a new
 * token. A revoked token (on the installed CRL) or another machine's no longer applies at
 * once, which is not tampering; an edited token or CRL is.
 */
export function tokenEvidence(ctx: EvidenceContext, token: string): Evidence {
  const check = checkToken(ctx, token);
  if (!check.ok) {
    // A CA certified by a root this installation does not (or no longer) trust: no licence, no edit.
    const unknownRoot = check.code === 'TOKEN_CA_UNTRUSTED' && !tokenRootKnown(ctx, token);
    return { hostTime: null, valid: unknownRoot || NOT_APPLYING.includes(check.code), permanent: false };
  }
  if (!('validUntil' in check)) return { hostTime: null, valid: false, permanent: false };
  const p = ctx.record.product.policy;
  if (ctx.now + maxSkewOf(ctx) < check.validFrom) return { hostTime: null, valid: true, permanent: false };
  if (staleRequiredCrl(ctx, token)) return { hostTime: null, valid: true, permanent: false };
  // deriveState counts the validity from an activation time: the one that ends at the token's end.
  return { hostTime: check.validUntil - p.activationValidityDays * DAY, valid: true, permanent: false };
}
