import {
  CoreError,
  confirmInstallation,
  dayOf,
  groupsRefOf,
  installationProofValid,
  keyRefOf,
  parseInstallationId,
  proofKeyOf,
  type InstallationId,
} from '@volact/core';
import type { Refuse } from './audit.js';
import type { AuthorityContext } from './context.js';
import { AuthorityError } from './errors.js';
import { raiseRefusedEvent } from './webhooks/refusals.js';
import { keyLabel, keyOfRequest, type KeyedPath } from './keys.js';
import type { KeyRecord } from './store.js';

export interface InstallationActivationRequest {
  readonly key: string;
  readonly installationId: string;
  /** The product group the client runs; a key of another group is refused by name. */
  readonly groupId?: string;
}

export interface InstallationActivation {
  readonly confirmationId: string;
  /** The installation's key type: a MAK, or a retail key (one installation). */
  readonly method: 'mak' | 'retail';
  readonly group: string;
  readonly used: number;
  readonly limit: number;
  /** true when this installation had been activated before (nothing was used). */
  readonly again: boolean;
}

const ONLINE_ACTIVATION: KeyedPath = {
  action: 'installation.activate.online',
  accepted: ['mak', 'retail'],
  need: 'online installation activation takes a MAK or a retail key',
};

/** An installation ID as typed or read out; a malformed one is refused (and audited) with the group named. */
export async function readInstallationId(text: string, refuse: Refuse, last5?: string): Promise<InstallationId> {
  try {
    return parseInstallationId(text);
  } catch (err) {
    if (err instanceof CoreError) throw await refuse('IID_INVALID', err.message, last5);
    throw err;
  }
}

/**
 * Online MAK activation: the key and the installation ID (made from that key and the
 * machine's hardware) in, a confirmation ID out — the same signed answer the phone flow
 * gives. A new installation uses one activation; the same installation again uses none.
 */
export async function activateInstallation(
  ctx: AuthorityContext,
  request: InstallationActivationRequest,
): Promise<InstallationActivation> {
  const { now, refuse, key: parsed, last5 } = await keyOfRequest(ctx, ONLINE_ACTIVATION, request.key);
  const label = keyLabel(parsed.type);
  const iid = await readInstallationId(request.installationId, refuse, last5);
  if (iid.kind !== 'installation') {
    throw await refuse(
      'IID_INVALID',
      "this is a KMS host's installation ID; activate the host with `volact host activate`",
      last5,
    );
  }
  if (!iid.keyRef.equals(keyRefOf(parsed)) || !installationProofValid(iid, proofKeyOf(parsed))) {
    throw await refuse(
      'IID_KEY_MISMATCH',
      `the installation ID was not made with key ${last5}: read it again after installing this key`,
      last5,
    );
  }
  const key = await ctx.keys.findCached(parsed);
  if (!key) throw await refuse('KEY_NOT_FOUND', `${label} ${last5} was not minted by this authority`, last5);
  if (key.revokedAt !== null) {
    await raiseRefusedEvent(ctx.store, key.id, last5, 'KEY_REVOKED', now); // webhooks, at most hourly
    throw await refuse('KEY_REVOKED', `${label} ${last5} was revoked`, last5);
  }
  // The IID names its product group too: checked even when the caller gives no groupId, so
  // an activation is never spent on a confirmation its installation could not verify.
  if (
    (request.groupId !== undefined && !key.groupIds.includes(request.groupId.toLowerCase())) ||
    !iid.groupsRef.equals(groupsRefOf([...key.groupIds].sort()))
  ) {
    const group = await ctx.groups.find(key.groupIds[0] as string);
    throw await refuse('GROUP_MISMATCH', `${label} ${last5} activates ${group.name}, not this product`, last5);
  }
  return completeInstallation(ctx, key, last5, iid, 'online', now);
}

/**
 * The installation decision, online or by phone: the key's limit under its row lock (in the
 * next batch), then the confirmation ID. The decision's audit row is written with it.
 */
export async function completeInstallation(
  ctx: AuthorityContext,
  key: KeyRecord,
  last5: string,
  iid: InstallationId,
  channel: 'online' | 'phone',
  now: number,
): Promise<InstallationActivation> {
  const retail = key.type === 'retail';
  // Read before the decision: a store fault here answers STORE_UNAVAILABLE with nothing decided,
  // never after an activation was used.
  const group = await ctx.groups.find(key.groupIds[0] as string);
  // The signer too: an online key that does not unseal fails before an activation is used.
  const signer = ctx.confirmationSigner();
  const outcome = await ctx.installations.decide({
    keyId: key.id,
    keyLast5: last5,
    ...(key.orgId !== undefined ? { orgId: key.orgId } : {}),
    hardwareRef: iid.hardwareRef.toString('hex'),
    installationId: iid.text,
    channel,
    at: now,
    ...(retail ? { limitCode: 'RETAIL_ALREADY_ACTIVATED' as const } : {}),
  });
  if (outcome.outcome === 'revoked') {
    throw new AuthorityError('KEY_REVOKED', `${keyLabel(key.type)} ${last5} was revoked`);
  }
  if (outcome.outcome === 'limit' && retail) {
    // One key, one installation: only the installation that activated it may activate again.
    throw new AuthorityError(
      'RETAIL_ALREADY_ACTIVATED',
      `retail key ${last5} is already activated on another installation; a retail key activates one installation (the same machine, re-imaged, activates again free)`,
    );
  }
  if (outcome.outcome === 'limit') {
    throw new AuthorityError(
      'MAK_LIMIT_REACHED',
      `MAK ${last5} has used all ${outcome.limit} of its activations; ask the publisher to raise its limit (\`volact authority key raise\`)`,
    );
  }
  return {
    confirmationId: confirmInstallation(iid, group.id, dayOf(now), signer).text,
    method: retail ? 'retail' : 'mak',
    group: group.name,
    used: outcome.used,
    limit: outcome.limit,
    again: outcome.outcome === 'existing',
  };
}
