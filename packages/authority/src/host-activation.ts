import {
  KMS_DEFAULTS,
  hardwareRefOf,
  hostKeyRefOf,
  issueHostCertificate,
  randomGuid,
  type ProductGroup,
} from '@volact/core';
import type { AuthorityContext } from './context.js';
import { AuthorityError } from './errors.js';
import { raiseRefusedEvent } from './webhooks/refusals.js';
import { keyOfRequest, type KeyedPath } from './keys.js';
import { refuseRevokedHost } from './revocations.js';
import type { HostActivationTx, KeyRecord } from './store.js';
import { REFUSED_EVENT_INTERVAL_MS, outboxEvent } from './webhooks/events.js';

/** A host certificate issued online lasts this many days by default; the host renews it at half-life. */
export const HOST_CERT_VALIDITY_DAYS = 30;

export interface HostActivationRequest {
  readonly hostKey: string;
  /** Raw Ed25519 public key of the host (32 bytes). */
  readonly hostPublicKey: Buffer;
  /** The host machine's hardware fingerprint: identifies "the same host" across re-activations. */
  readonly hardwareId: string;
}

export interface HostActivationResult {
  readonly certificate: Buffer;
  readonly expiresAt: number;
  readonly groups: readonly ProductGroup[];
  readonly hostKeyId: string;
  readonly hostsUsed: number;
  readonly hostLimit: number;
}

const HOST_ACTIVATION: KeyedPath = {
  action: 'host.activate',
  accepted: ['kms-host'],
  need: 'a host needs a kms-host key',
};

const HARDWARE_ID_RE = /^[0-9A-Za-z._:-]{1,128}$/;

/**
 * A host is recorded by the hash of its hardware id and of its public key, the only forms a
 * phone activation's installation ID carries: a host activated by phone and later online (or
 * the reverse) is the same host, with the same key pair.
 */
export const hostRecordId = (hardwareRef: Buffer) => `hw:${hardwareRef.toString('hex')}`;

export type HostDecision =
  | { refused: 'HOST_LIMIT_REACHED' | 'HOST_REACTIVATION_LIMIT_REACHED'; message: string }
  | { refused: null; serial: string; expiresAt: number; hostsUsed: number; newHost?: boolean };

/**
 * Activates a KMS host key for one host and certifies the host's public key. Ordered checks;
 * the first failing one decides. The same host (hardware id) renewing with the same public
 * key is free; with a new key pair it uses one of its re-activations.
 */
export async function activateHost(
  ctx: AuthorityContext,
  request: HostActivationRequest,
  certificateValidity: number,
): Promise<HostActivationResult> {
  const { now, refuse, key: parsed, last5 } = await keyOfRequest(ctx, HOST_ACTIVATION, request.hostKey);
  if (!HARDWARE_ID_RE.test(request.hardwareId)) {
    throw await refuse('REQUEST_INVALID', 'hardwareId must be 1-128 letters, digits or ._:-', last5);
  }
  if (request.hostPublicKey.length !== 32) {
    throw await refuse('REQUEST_INVALID', 'hostPublicKey must be a 32-byte Ed25519 public key', last5);
  }
  // Read afresh, never from the cache: a revoked key must be refused its renewal at once.
  const key = await ctx.store.findKeyByHash(ctx.keys.hashOf(parsed));
  if (!key) throw await refuse('KEY_NOT_FOUND', `KMS host key ${last5} was not minted by this authority`, last5);
  if (key.revokedAt !== null) {
    await raiseRefusedEvent(ctx.store, key.id, last5, 'KEY_REVOKED', now); // webhooks, at most hourly
    throw await refuse('KEY_REVOKED', `KMS host key ${last5} was revoked`, last5);
  }
  // A revoked host key gets no renewal (docs/trust.md "Revocation").
  await refuseRevokedHost(ctx, hostKeyRefOf(request.hostPublicKey), HOST_ACTIVATION.action, last5);

  // Read before the decision: a store fault here answers STORE_UNAVAILABLE with nothing decided,
  // never after a host was recorded (and one of the key's host activations used).
  const groups = await Promise.all(key.groupIds.map((id) => ctx.groups.find(id)));
  // Signed before the decision too: a root this node lacks (ROOT_KEY_UNAVAILABLE) or a token
  // absent or locked fails here with nothing recorded, no host slot used, and no record naming
  // a serial that was never issued (`revoke-host <serial>` finds the host's real certificate).
  const serial = randomGuid();
  const expiresAt = now + certificateValidity;
  const certificate = issueHostCertificate(
    {
      hostPublicKey: request.hostPublicKey,
      serial,
      hostKeyId: key.id,
      issuedAt: now,
      expiresAt,
      groupIds: key.groupIds,
    },
    ctx.rootSigner(),
  );
  const decision = await recordHostActivation(
    ctx,
    key,
    last5,
    hostRecordId(hardwareRefOf(request.hardwareId)),
    hostKeyRefOf(request.hostPublicKey),
    { now, expiresAt, serial, action: 'host.activate' },
  );
  // The decision's audit row was written with it; a refused one's certificate is dropped unseen.
  if (decision.refused) throw new AuthorityError(decision.refused, decision.message);

  return {
    certificate,
    expiresAt,
    groups,
    hostKeyId: key.id,
    hostsUsed: decision.hostsUsed,
    hostLimit: key.limit ?? KMS_DEFAULTS.hostLimit,
  };
}

/**
 * The host-count decision, under the key's row lock, with its audit row. `hostKey` is the
 * host's public key reference (online, or from a phone installation ID; for an activation
 * object, the domain's reference); the same host with the same key renews free, with a new
 * one it uses one of its re-activations. Once it returns the host is recorded: a caller reads
 * from the store (its groups) and signs (its certificate or confirmation) before, never after.
 */
export async function recordHostActivation(
  ctx: AuthorityContext,
  key: KeyRecord,
  last5: string,
  hostId: string,
  hostKey: Buffer,
  cert: { now: number; expiresAt: number; serial: string; action: string },
): Promise<HostDecision> {
  const hostLimit = key.limit ?? KMS_DEFAULTS.hostLimit;
  const perHost = key.activationsPerHost ?? KMS_DEFAULTS.activationsPerHost;
  const decide = async (tx: HostActivationTx): Promise<HostDecision> => {
    const existing = await tx.findHost(key.id, hostId);
    let activationCount = 1;
    if (existing) {
      const sameKeyPair = existing.hostPublicKey.equals(hostKey);
      activationCount = existing.activationCount + (sameKeyPair ? 0 : 1);
      if (activationCount > perHost) {
        return {
          refused: 'HOST_REACTIVATION_LIMIT_REACHED',
          message: `KMS host key ${last5} has been activated ${existing.activationCount} times on this host (limit ${perHost}); ask the publisher to raise it`,
        };
      }
    } else {
      const used = await tx.countHosts(key.id);
      if (used >= hostLimit) {
        return {
          refused: 'HOST_LIMIT_REACHED',
          message: `KMS host key ${last5} has activated ${used} of ${hostLimit} hosts; ask the publisher to raise the limit or use another host key`,
        };
      }
    }
    await tx.saveHost({
      keyId: key.id,
      hardwareId: hostId,
      hostPublicKey: hostKey,
      activationCount,
      firstActivatedAt: existing?.firstActivatedAt ?? cert.now,
      lastActivatedAt: cert.now,
      certificateSerial: cert.serial,
      certificateExpiresAt: cert.expiresAt,
    });
    return {
      refused: null,
      serial: cert.serial,
      expiresAt: cert.expiresAt,
      hostsUsed: await tx.countHosts(key.id),
      newHost: existing === undefined,
    };
  };
  return ctx.store.withHostActivation(key.id, async (tx) => {
    const decision = await decide(tx);
    await tx.audit({
      at: cert.now,
      action: cert.action,
      result: decision.refused ?? 'OK',
      keyLast5: last5,
      keyId: key.id,
      orgId: key.orgId ?? null,
      detail: decision.refused
        ? decision.message
        : `host ${decision.hostsUsed} of ${hostLimit}, certificate ${decision.serial}`,
    });
    await hostActivationEvents(tx, key.id, last5, hostId, hostLimit, cert.now, decision);
    return decision;
  });
}

/**
 * The webhook events of a host decision, written in its transaction: `host.activated` for a
 * host new to the key, `activation.refused` at the host limit (at most one per key per hour).
 */
async function hostActivationEvents(
  tx: HostActivationTx,
  keyId: string,
  last5: string,
  hostId: string,
  hostLimit: number,
  now: number,
  decision: HostDecision,
): Promise<void> {
  if (decision.refused === null && !decision.newHost) return;
  if (decision.refused !== null && decision.refused !== 'HOST_LIMIT_REACHED') return;
  const { orgId, refusedEventAt } = await tx.keyState();
  const scope = { orgId, keyId };
  const keyLast5 = last5.slice(-5); // without the audit's ellipsis
  if (decision.refused === null) {
    const data = { hardwareId: hostId, hostsUsed: decision.hostsUsed, hostLimit, keyLast5 };
    await tx.emit([outboxEvent('host.activated', now, scope, data)]);
    return;
  }
  if (refusedEventAt !== null && now - refusedEventAt < REFUSED_EVENT_INTERVAL_MS) return;
  await tx.emit([outboxEvent('activation.refused', now, scope, { code: decision.refused, keyLast5 })], now);
}
