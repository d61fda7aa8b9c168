import {
  DAY,
  DEFAULT_OBJECT_VALIDITY_DAYS,
  KMS_DEFAULTS,
  dayOf,
  encodeConfirmationId,
  groupsRefOf,
  installationProofValid,
  signPhoneActivationObject,
  signPhoneCertificate,
  type InstallationId,
} from '@volact/core';
import { refusalsOf, type Refuse } from './audit.js';
import type { AuthorityContext } from './context.js';
import { AuthorityError } from './errors.js';
import { raiseRefusedEvent } from './webhooks/refusals.js';
import { hostRecordId, recordHostActivation } from './host-activation.js';
import { refuseRevokedHost } from './revocations.js';
import { completeInstallation, readInstallationId, type InstallationActivation } from './installation-activation.js';
import { requireKeyType } from './keys.js';
import { unseal } from './sealing.js';
import type { KeyRecord } from './store.js';

/**
 * A KMS host certificate is issued by phone for whole days: this many. A phone-activated host
 * has no online renewal to refuse, so revoking its key takes effect when this ends.
 */
export const PHONE_CERT_VALIDITY_DAYS = 365;

export type Confirmation =
  | (InstallationActivation & { readonly kind: 'installation' })
  | {
      readonly kind: 'kms-host';
      readonly confirmationId: string;
      readonly groups: readonly string[];
      readonly hostsUsed: number;
      readonly hostLimit: number;
      readonly expiresAt: string;
    }
  | {
      readonly kind: 'activation-object';
      readonly confirmationId: string;
      readonly group: string;
      readonly hostsUsed: number;
      readonly hostLimit: number;
    };

/**
 * Phone activation: the installation ID a machine read out becomes its confirmation ID. No key
 * is given: the IID's key reference finds the key and its proof shows it was made with it.
 * Three paths, by the IID's kind: a product installation (its MAK or retail key is used as
 * online), a KMS host (its certificate is signed into the confirmation and rebuilt by the
 * host), a disconnected forest's activation object (its KMS host key activates it).
 */
export async function confirmByPhone(ctx: AuthorityContext, installationIdText: string): Promise<Confirmation> {
  const now = ctx.clock.now();
  const refuse = refusalsOf(ctx.store, 'confirm', now);
  const iid = await readInstallationId(installationIdText, refuse);
  const key = await keyOfInstallationId(ctx, iid, refuse);
  const last5 = key.last5;
  if (key.revokedAt !== null) {
    await raiseRefusedEvent(ctx.store, key.id, last5, 'KEY_REVOKED', now); // webhooks, at most hourly
    throw await refuse('KEY_REVOKED', `key ${last5} was revoked`, last5);
  }
  if (iid.kind === 'activation-object') return confirmActivationObject({ ctx, key, iid, now, refuse });
  const groupIds = [...key.groupIds].sort();
  if (!iid.groupsRef.equals(groupsRefOf(groupIds))) {
    throw await refuse(
      'GROUP_MISMATCH',
      `key ${last5} activates ${(await ctx.groups.names(groupIds)).join(', ')}; the installation ID was made for other product groups`,
      last5,
    );
  }
  if (iid.kind === 'installation') {
    const need = 'a product installation needs a MAK or a retail key';
    await requireKeyType(key.type, last5, ['mak', 'retail'], need, refuse);
    return { kind: 'installation', ...(await completeInstallation(ctx, key, last5, iid, 'phone', now)) };
  }
  return confirmKmsHost({ ctx, key, iid, now, refuse });
}

/** The key an IID was made with: found by its reference, proven by the IID's proof. */
async function keyOfInstallationId(ctx: AuthorityContext, iid: InstallationId, refuse: Refuse): Promise<KeyRecord> {
  const candidates = await ctx.store.findKeyByRef(iid.keyRef.toString('hex'));
  const key = candidates.find((k) => {
    const proofKey = k.proofKeySealed === null ? null : unseal(ctx.keyHashSecret, k.proofKeySealed);
    return proofKey !== null && installationProofValid(iid, proofKey);
  });
  if (key) return key;
  throw await refuse(
    candidates.length ? 'IID_KEY_MISMATCH' : 'KEY_NOT_FOUND',
    candidates.length
      ? 'the installation ID does not check out against its key: read it out again'
      : 'the installation ID names a key this authority never minted (or minted before phone activation existed: mint a new one)',
  );
}

/** A phone confirmation once its key is found and not revoked. */
interface PhoneCall {
  readonly ctx: AuthorityContext;
  readonly key: KeyRecord;
  readonly iid: InstallationId;
  readonly now: number;
  readonly refuse: Refuse;
}

/** A KMS host by phone: the host count as online; the CID carries a v2 host certificate's signature. */
async function confirmKmsHost({ ctx, key, iid, now, refuse }: PhoneCall): Promise<Confirmation> {
  const last5 = key.last5;
  await requireKeyType(key.type, last5, ['kms-host'], 'a KMS host needs a kms-host key', refuse);
  const groupIds = [...key.groupIds].sort();
  const issuedDay = dayOf(now);
  const hostKeyRef = iid.hostKeyRef as Buffer;
  await refuseRevokedHost(ctx, hostKeyRef, 'confirm', last5); // a revoked host key is not certified again
  // Read before the decision: a store fault here answers STORE_UNAVAILABLE with nothing decided,
  // never after the host was recorded.
  const groups = await ctx.groups.names(groupIds);
  // Signed before the decision too: an online key that does not unseal fails with nothing recorded.
  const signer = ctx.confirmationSigner();
  const signature = signPhoneCertificate(
    { keyRef: iid.keyRef, hostKeyRef, issuedDay, validityDays: PHONE_CERT_VALIDITY_DAYS, groupIds },
    signer,
  );
  const decision = await recordHostActivation(ctx, key, last5, hostRecordId(iid.hardwareRef), hostKeyRef, {
    now,
    expiresAt: (issuedDay + PHONE_CERT_VALIDITY_DAYS) * DAY,
    serial: `phone-${issuedDay}`,
    action: 'confirm',
  });
  if (decision.refused) throw new AuthorityError(decision.refused, decision.message);
  return {
    kind: 'kms-host',
    confirmationId: encodeConfirmationId(issuedDay, signature, signer.keyIndex).text,
    groups,
    hostsUsed: decision.hostsUsed,
    hostLimit: key.limit ?? KMS_DEFAULTS.hostLimit,
    expiresAt: new Date(decision.expiresAt).toISOString(),
  };
}

/**
 * A disconnected forest's activation object, by phone: the forest's KMS host key activates
 * it and uses one of its host activations (the reference's CSVLK activates the object). The
 * domain is recorded as a host (`ao:<domain reference>`): the same domain again renews free.
 */
async function confirmActivationObject({ ctx, key, iid, now, refuse }: PhoneCall): Promise<Confirmation> {
  const last5 = key.last5;
  await requireKeyType(key.type, last5, ['kms-host'], 'an activation object needs a KMS host key', refuse);
  const groupId = key.groupIds.find((g) => iid.groupsRef.equals(groupsRefOf([g])));
  if (groupId === undefined) {
    throw await refuse(
      'GROUP_MISMATCH',
      `key ${last5} activates ${(await ctx.groups.names(key.groupIds)).join(', ')}; the installation ID names another group`,
      last5,
    );
  }
  const domainRef = iid.domainRef as Buffer;
  const issuedDay = dayOf(now);
  // Read before the decision: a store fault here answers STORE_UNAVAILABLE with nothing decided,
  // never after the activation object's domain was recorded.
  const group = await ctx.groups.find(groupId);
  // Signed before the decision too: an online key that does not unseal fails with nothing recorded.
  const signer = ctx.confirmationSigner();
  const signature = signPhoneActivationObject({ keyRef: iid.keyRef, domainRef, groupId, issuedDay }, signer);
  const decision = await recordHostActivation(ctx, key, last5, `ao:${domainRef.toString('hex')}`, domainRef, {
    now,
    // The phone-made object is valid this long from its signed issue day (core: activationObjectValidity).
    expiresAt: (issuedDay + DEFAULT_OBJECT_VALIDITY_DAYS) * DAY,
    serial: `object-${issuedDay}`,
    action: 'confirm',
  });
  if (decision.refused) throw new AuthorityError(decision.refused, decision.message);
  return {
    kind: 'activation-object',
    confirmationId: encodeConfirmationId(issuedDay, signature, signer.keyIndex).text,
    group: group.name,
    hostsUsed: decision.hostsUsed,
    hostLimit: key.limit ?? KMS_DEFAULTS.hostLimit,
  };
}
