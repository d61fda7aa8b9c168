import { CoreError, lastFiveOf, parseConfirmationId } from '@volact/core';
import { renewalAt } from './attempt-policy.js';
import { requestConfirmation } from './authority-client.js';
import { ClientError } from './errors.js';
import type { EvidenceContext } from './evidence-context.js';
import { currentInstallationId } from './evidence.js';
import type { ActivationCode, LicenceStatus } from './licence-status.js';
import type { LicenceRecord } from './licence-store.js';
import { cidSignerUnknown, confirmationSigner, keyIndexOf } from './trust.js';

/**
 * Activation of an installation ID (a MAK or a retail key): online at the publisher's
 * authority, or by phone (the confirmation ID read out, typed in). Either way the confirmation
 * must verify against the pinned root key for this machine's installation ID.
 */

/** How an installation ID's confirmation licenses: with a MAK, or with a retail key. */
export function installationMethod(record: LicenceRecord): 'mak' | 'retail' {
  return record.installedKey?.type === 'retail' ? 'retail' : 'mak';
}

/**
 * Phone activation: the confirmation ID the publisher gave for this machine's installation ID.
 * A typo names its group; a confirmation of another installation, another product or not from
 * this product's authority is refused (the record is not changed).
 */
export function withConfirmation(ctx: EvidenceContext, text: string): LicenceRecord {
  const iid = currentInstallationId(ctx);
  if (!iid) {
    throw new ClientError(
      'NO_MAK_INSTALLED',
      'confirmation IDs are for MAK or retail activation: install a MAK or retail key first',
    );
  }
  let cid;
  try {
    cid = parseConfirmationId(text);
  } catch (err) {
    if (err instanceof CoreError) throw new ClientError('CONFIRMATION_INVALID', err.message);
    throw err;
  }
  const r = ctx.record;
  const signer = confirmationSigner(ctx.trust, iid, r.product.group.id, cid);
  if (signer === 'unknown') throw cidSignerUnknown(keyIndexOf(cid), cid.issuedDay);
  if (signer === null) {
    throw new ClientError(
      'CONFIRMATION_INVALID',
      "this confirmation ID was not issued for this machine's installation ID (another machine's or key's, or not by this product's authority): read out `volact client installation-id` again",
    );
  }
  return {
    ...r,
    activation: {
      method: installationMethod(r),
      installationId: iid.text,
      confirmationId: cid.text,
      channel: 'phone',
      authority: null,
      receivedAt: ctx.now,
    },
    lastAttempt: { at: ctx.now, ok: true, message: 'activated by phone (confirmation ID installed)' },
    nextAttemptAt: renewalAt(ctx.now, r.intervals),
    nonGenuineSince: null,
  };
}

/** The record of a MAK or retail activation: the confirmation of this installation ID. */
type InstallationActivation = Extract<NonNullable<LicenceRecord['activation']>, { method: 'mak' | 'retail' }>;

/**
 * What the authority confirmed, and nothing else: the caller merges it into the record as it is
 * once the answer is in (settings changed while the authority was asked are kept). `confirmed`
 * is null when the installation was activated for good already and no one was asked.
 */
export type AuthorityAttemptResult =
  | { ok: true; confirmed: { activation: InstallationActivation; message: string } | null; message: string }
  | { ok: false; code: ActivationCode; message: string };

/**
 * Online activation at the authority (`authority` overrides the product config's URL). An
 * installation activated for good has nothing to renew and asks no one (unless an authority
 * is given: activate there again). Nothing is recorded here: see withAuthorityActivation.
 */
export async function attemptAuthority(
  ctx: EvidenceContext,
  before: Pick<LicenceStatus, 'method'>,
  authority: string | undefined,
  timeoutMs: number,
): Promise<AuthorityAttemptResult> {
  const r = ctx.record;
  const now = ctx.now;
  const key = r.installedKey as { text: string };
  const method = installationMethod(r);
  const label = method === 'retail' ? 'retail key' : 'MAK';
  if (before.method === method && authority === undefined) {
    return { ok: true, confirmed: null, message: `activated with ${label} ${lastFiveOf(key.text)}` };
  }
  const base = authority ?? r.product.authority.url;
  if (base === undefined) {
    return {
      ok: false,
      code: 'NO_AUTHORITY',
      message: `a ${label} activates at the publisher's authority: pass --authority URL, or activate by phone (\`volact client installation-id\`, then \`volact client install-confirmation CID\`)`,
    };
  }
  const iid = currentInstallationId(ctx);
  if (!iid) throw new Error('attemptAuthority: no MAK or retail key is installed');
  const answer = await requestConfirmation({
    base,
    key: key.text,
    installationId: iid.text,
    groupId: r.product.group.id,
    timeoutMs,
  });
  if (!answer.ok) return answer;
  // The online key's delegation (and a transition to a new root) come with the answer: learned
  // first (each verified under a root already trusted; one that does not verify is ignored).
  ctx.trust.learn({
    transitions: answer.trust.transitions.map((t) => Buffer.from(t, 'base64')),
    delegations: answer.trust.delegations.map((d) => Buffer.from(d, 'base64')),
  });
  let signer: ReturnType<typeof confirmationSigner> = null;
  let cid;
  try {
    cid = parseConfirmationId(typeof answer.confirmationId === 'string' ? answer.confirmationId : '');
    signer = confirmationSigner(ctx.trust, iid, r.product.group.id, cid);
  } catch {
    signer = null;
  }
  if (signer === 'unknown' && cid) {
    const unknown = cidSignerUnknown(keyIndexOf(cid), cid.issuedDay);
    return {
      ok: false,
      code: unknown.code,
      message: `${answer.origin} answered with a confirmation: ${unknown.message}`,
    };
  }
  if (!signer || signer === 'unknown' || !cid) {
    return {
      ok: false,
      code: 'ACTIVATION_UNTRUSTED',
      message: `${answer.origin} answered with a confirmation that does not verify against this product's root key: is it this publisher's authority?`,
    };
  }
  return {
    ok: true,
    confirmed: {
      activation: {
        method,
        installationId: iid.text,
        confirmationId: cid.text,
        channel: 'online',
        authority: answer.origin,
        receivedAt: now,
      },
      message: `activated online by ${answer.origin} with ${label} ${lastFiveOf(key.text)}`,
    },
    message: `activated with ${label} ${lastFiveOf(key.text)} (permanent)`,
  };
}

/**
 * The record after the authority's confirmation (or, activated for good already, the next
 * renewal check), merged into `record` as it is now. The caller makes sure the confirmation is
 * for the key installed now: one made for a key replaced meanwhile is not for this installation ID.
 */
export function withAuthorityActivation(
  record: LicenceRecord,
  result: Extract<AuthorityAttemptResult, { ok: true }>,
  now: number,
): LicenceRecord {
  const next = renewalAt(now, record.intervals);
  if (!result.confirmed) return { ...record, nextAttemptAt: next };
  return {
    ...record,
    activation: result.confirmed.activation,
    lastAttempt: { at: now, ok: true, message: result.confirmed.message },
    nextAttemptAt: next,
    nonGenuineSince: null,
  };
}
