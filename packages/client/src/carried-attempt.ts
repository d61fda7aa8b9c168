import { renewalAt } from './attempt-policy.js';
import type { ClientErrorCode } from './errors.js';
import type { EvidenceContext } from './evidence-context.js';
import type { ActivationCode, LicenceStatus } from './licence-status.js';
import type { LicenceRecord } from './licence-store.js';
import { tokenNow } from './token-evidence.js';

/**
 * OEM markers and tokens are carried in, not fetched: an attempt re-checks the installed one
 * with no network. And what an attempt reports when the act-type leaves no method to try.
 */

export type CarriedAttemptResult =
  { ok: true; record: LicenceRecord; message: string } | { ok: false; code: ClientErrorCode; message: string };

/** An installed OEM marker that holds licenses for good: nothing is asked. Null: none holds. */
export function oemAttempt(
  ctx: EvidenceContext,
  before: Pick<LicenceStatus, 'method' | 'oem'>,
): Extract<CarriedAttemptResult, { ok: true }> | null {
  const r = ctx.record;
  if (r.activation?.method !== 'oem' || before.method !== 'oem') return null;
  return {
    ok: true,
    record: { ...r, nextAttemptAt: renewalAt(ctx.now, r.intervals) },
    message: `licensed by the OEM marker of ${before.oem?.machine} (${before.oem?.manufacturer}; permanent)`,
  };
}

/** The installed token, checked now; renewals come no later than its end. Null: no token is installed. */
export function tokenAttempt(ctx: EvidenceContext): CarriedAttemptResult | null {
  const r = ctx.record;
  const a = r.activation;
  if (a?.method !== 'token') return null;
  const check = tokenNow(ctx, a.token);
  if (!check.ok) return check;
  return {
    ok: true,
    record: {
      ...r,
      lastAttempt: { at: ctx.now, ok: true, message: `licensed by token ${check.serial} of ${check.organisation}` },
      nextAttemptAt: Math.min(renewalAt(ctx.now, r.intervals), check.validUntil),
      nonGenuineSince: null,
    },
    message: `licensed until ${new Date(check.validUntil).toISOString()} (token ${check.serial})`,
  };
}

/**
 * Every method the act-type allows was tried and none licensed (only act-types without KMS
 * end so): the token's or the directory's failure, else what the act-type refuses.
 */
export function noMethodLeft(
  record: LicenceRecord,
  tried: {
    token: { code: ActivationCode; message: string } | null;
    directory: { code: ActivationCode; message: string } | null;
  },
): { code: ActivationCode; message: string } {
  if (record.actType === 'directory') {
    return tried.directory
      ? { code: tried.directory.code, message: `${tried.directory.message} (act-type directory: no KMS host is asked)` }
      : {
          code: 'ACT_TYPE_FORBIDS',
          message:
            'act-type directory: only directory-based activation is allowed, and this installation is not a member of a directory domain (`volact client join-domain`)',
        };
  }
  if (tried.token) return tried.token;
  const other = record.kmsHost
    ? `the KMS host ${record.kmsHost}`
    : record.directory
      ? `the directory of ${record.directory.domain}`
      : null;
  return other
    ? {
        code: 'ACT_TYPE_FORBIDS',
        message: `act-type ${record.actType}: ${other} is not asked; install an activation token (\`volact client install-token\`) or change the type (\`volact client set-act-type any\`)`,
      }
    : {
        code: 'NO_TOKEN',
        message: `act-type ${record.actType}: no activation token is installed; \`volact client install-token FILE\``,
      };
}
