import type { DirectoryErrorCode } from '@volact/directory';
import { DEFAULT_INTERVALS, renewalAt } from './attempt-policy.js';
import type { EvidenceContext } from './evidence-context.js';
import { checkActivationObject, type ActivationObjectCheck } from './evidence.js';
import type { LicenceRecord } from './licence-store.js';

/**
 * Directory-based activation: the activation objects published in the member domain's
 * directory, the first that passes every check activates. The LDAP client is loaded here, at
 * the first directory attempt: an installation that never joins a domain never loads it.
 */

/** As the licence store keeps it. */
const MAX_OBJECT_TEXT = 8192;

type ObjectFailureCode = Extract<ActivationObjectCheck, { ok: false }>['code'] | 'NO_DIRECTORY_OBJECT';

/** The failure reported when no object activates: the one that got furthest through the checks. */
const RANK: readonly ObjectFailureCode[] = [
  'NO_DIRECTORY_OBJECT',
  'DIRECTORY_OBJECT_INVALID',
  'DIRECTORY_OBJECT_EXPIRED',
  'DIRECTORY_OBJECT_GROUP_MISMATCH',
  'DIRECTORY_OBJECT_DOMAIN_MISMATCH',
  'DIRECTORY_OBJECT_UNTRUSTED',
];

export type DirectoryAttemptResult =
  | { ok: true; object: string; name: string; domain: string }
  | { ok: false; code: ObjectFailureCode | DirectoryErrorCode; message: string };

/** Reads the directory the store joined and looks for an activation object that holds for this machine. */
export async function attemptDirectory(
  ctx: EvidenceContext,
  membership: NonNullable<LicenceRecord['directory']>,
  timeoutMs: number,
): Promise<DirectoryAttemptResult> {
  const { readEntries, DirectoryError } = await import('@volact/directory');
  let entries;
  try {
    entries = await readEntries(
      {
        url: membership.url,
        ...(membership.bindDn ? { bindDn: membership.bindDn } : {}),
        ...(membership.password ? { password: membership.password } : {}),
        timeoutMs,
      },
      { base: membership.base, ...(membership.container ? { container: membership.container } : {}) },
    );
  } catch (err) {
    if (!(err instanceof DirectoryError)) throw err;
    return { ok: false, code: err.code, message: `the directory ${membership.url} could not be read: ${err.message}` };
  }
  let best: Extract<DirectoryAttemptResult, { ok: false }> & { code: ObjectFailureCode } = {
    ok: false,
    code: 'NO_DIRECTORY_OBJECT',
    message: `the directory holds no activation object for ${ctx.record.product.group.name} under ${membership.base}: publish one with \`volact directory publish\``,
  };
  for (const entry of entries) {
    if (entry.content.length > MAX_OBJECT_TEXT) {
      best = {
        ok: false,
        code: 'DIRECTORY_OBJECT_INVALID',
        message: `activation object ${entry.name} is larger than ${MAX_OBJECT_TEXT} characters`,
      };
      continue;
    }
    const check = checkActivationObject(ctx, entry.content);
    if (!check.ok) {
      if (RANK.indexOf(check.code) > RANK.indexOf(best.code))
        best = { ok: false, code: check.code, message: check.message };
      continue;
    }
    return { ok: true, object: entry.content, name: check.name, domain: check.domain };
  }
  return best;
}

/** The record after an activation object activated. */
export function withDirectoryActivation(
  record: LicenceRecord,
  result: Extract<DirectoryAttemptResult, { ok: true }>,
  now: number,
): LicenceRecord {
  return {
    ...record,
    activation: { method: 'directory', object: result.object, checkedAt: now },
    lastAttempt: {
      at: now,
      ok: true,
      via: 'directory',
      domain: result.domain,
      message: `activated by activation object ${result.name} of ${result.domain}`,
    },
    // The directory gives no intervals: renewals run at the default one.
    nextAttemptAt: renewalAt(now, DEFAULT_INTERVALS),
    nonGenuineSince: null,
  };
}
