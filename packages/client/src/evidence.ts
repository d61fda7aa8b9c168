import {
  DAY,
  activationObjectSignatureValid,
  activationObjectValidity,
  guidToBytes,
  makeInstallationId,
  parseActivationObject,
  parseConfirmationId,
  DELEGATION_PURPOSE,
  parseKey,
  parseOemMarker,
  type ActivationObject,
  type InstallationId,
} from '@volact/core';
import {
  ALTERED,
  NOTHING,
  maxSkewOf,
  offlineContext,
  type Anchor,
  type Evidence,
  type EvidenceContext,
} from './evidence-context.js';
import { certifyingRoot, readOemMarker } from './offline-activation.js';
import { tokenEvidence } from './token-evidence.js';
import { confirmationSigner, type ChosenKey, type ClientTrust } from './trust.js';
import { certificateIssuerKnown, verifyKmsResponse } from './verify-response.js';
import { ClientError } from './errors.js';

const anchorOf = (k: ChosenKey): Anchor => ({ signedBy: k.signedBy, root: k.root });

/**
 * The checks the stored activation must pass to grant a licence, one per method: a KMS host's
 * signed answer, an installation ID's confirmation (MAK, retail, phone), an activation object
 * from the directory, an OEM marker. Tokens and CRLs: token-evidence.ts. Pure functions of the
 * record, the machine and the time; the signature checks are memoised in an EvidenceMemo the
 * caller (Licence) owns, so each evidence is verified once, the time rules at every read.
 */

/** What the stored activation grants now, whichever method made it. */
export function activationEvidence(ctx: EvidenceContext): Evidence {
  const a = ctx.record.activation;
  if (!a) return NOTHING;
  switch (a.method) {
    case 'mak':
    case 'retail':
      return installationEvidence(ctx, a);
    case 'directory':
      return directoryEvidence(ctx, a);
    case 'oem':
      return oemEvidence(ctx, a.marker);
    case 'token':
      return tokenEvidence(ctx, a.token);
    case 'kms':
      return kmsEvidence(ctx, a.evidence);
  }
}

/**
 * A KMS activation holds while its signed answer verifies, is not from the future and reached
 * the threshold. One below the threshold (a higher threshold shipped by an app update) is not
 * activated, not tampered.
 */
export function kmsEvidence(ctx: EvidenceContext, evidence: string): Evidence {
  const memo = ctx.memo;
  if (memo.signature?.evidence !== evidence) {
    let verified: { hostTime: number; count: number; anchor?: Anchor; unknownSigner?: true } | null = null;
    try {
      const { response, signer } = verifyKmsResponse(Buffer.from(evidence, 'base64'), {
        trust: ctx.trust,
        groupId: guidToBytes(ctx.record.product.group.id),
        clientId: guidToBytes(ctx.record.clientMachineId),
        mode: { kind: 'stored' },
        now: Number.MAX_SAFE_INTEGER, // the "not from the future" rule is applied below, at every read
        maxClockSkew: maxSkewOf(ctx),
      });
      verified = { hostTime: response.hostTime, count: response.count, anchor: anchorOf(signer) };
    } catch (err) {
      // Certified by a key this installation does not (or no longer) trust, by a host the held
      // list revoked at or before the answer's time, or without a host status covering the
      // answer's time (the extension area is not under the host's signature): no licence, no edit.
      const unknown =
        err instanceof ClientError &&
        (err.code === 'KMS_HOST_REVOKED' ||
          err.code === 'KMS_HOST_STATUS_MISSING' ||
          (err.code === 'KMS_CERT_UNTRUSTED' && !certificateIssuerKnown(Buffer.from(evidence, 'base64'), ctx.trust)));
      verified = unknown ? { hostTime: 0, count: 0, unknownSigner: true } : null;
    }
    memo.signature = { evidence, verified };
  }
  const v = memo.signature.verified;
  if (v?.unknownSigner) return NOTHING;
  if (!v || v.hostTime > ctx.now + maxSkewOf(ctx)) return ALTERED;
  if (v.count < ctx.record.product.group.threshold) return NOTHING;
  return { hostTime: v.hostTime, valid: true, permanent: false };
}

/** The installation ID of this machine with its installed MAK or retail key; null with a GVLK or none. */
export function currentInstallationId(
  ctx: Pick<EvidenceContext, 'record' | 'hardwareId' | 'memo'>,
): InstallationId | null {
  const k = ctx.record.installedKey;
  // A MAK or a retail key: both activate one installation ID (a retail key just one of them).
  if (!k || k.type === 'gvlk') return null;
  const cacheKey = `${k.text}/${ctx.hardwareId}`;
  if (ctx.memo.installationId?.key !== cacheKey) {
    const iid = makeInstallationId({
      kind: 'installation',
      key: parseKey(k.text),
      hardwareId: ctx.hardwareId,
      groupIds: [ctx.record.product.group.id],
    });
    ctx.memo.installationId = { key: cacheKey, iid };
  }
  return ctx.memo.installationId.iid;
}

/**
 * A MAK (or retail) activation holds while its confirmation verifies for the installation ID
 * this machine has now. Another key or a significant hardware change gives another IID: the
 * activation then no longer applies (activate again), which is not tampering.
 */
export function installationEvidence(
  ctx: EvidenceContext,
  a: { installationId: string; confirmationId: string },
): Evidence {
  const current = currentInstallationId(ctx);
  if (!current || current.text !== a.installationId) return NOTHING;
  const cacheKey = `${a.installationId}/${a.confirmationId}`;
  if (ctx.memo.signature?.evidence !== cacheKey) {
    let signer: ReturnType<typeof confirmationSigner> = null;
    try {
      signer = confirmationSigner(
        ctx.trust,
        current,
        ctx.record.product.group.id,
        parseConfirmationId(a.confirmationId),
      );
    } catch {
      signer = null;
    }
    // No key known for its index and day (a product config without the online key's
    // delegation): it grants nothing here, and is not counted as an edit.
    if (signer === 'unknown') {
      ctx.memo.signature = { evidence: cacheKey, verified: { hostTime: 0, count: 0, unknownSigner: true } };
    } else {
      ctx.memo.signature = {
        evidence: cacheKey,
        verified: signer ? { hostTime: 0, count: 0, anchor: anchorOf(signer) } : null,
      };
    }
  }
  const v = ctx.memo.signature.verified;
  if (v?.unknownSigner) return NOTHING;
  const ok = v !== null;
  return { hostTime: null, valid: ok, permanent: ok };
}

/** The marker's checks (oem.ts), once per marker and hardware id. */
export function checkOem(ctx: EvidenceContext, marker: string): ReturnType<typeof readOemMarker> {
  const key = `${ctx.hardwareId}\0${marker}`;
  if (ctx.memo.oem?.key !== key) ctx.memo.oem = { key, result: readOemMarker(marker, offlineContext(ctx)) };
  return ctx.memo.oem.result;
}

/** Whether the marker's certificate names a root this installation trusts at its start. */
function oemRootKnown(ctx: EvidenceContext, marker: string): boolean {
  try {
    return certifyingRoot(parseOemMarker(marker).certificate, ctx.trust) !== null;
  } catch {
    return true;
  }
}

/**
 * An OEM licence is permanent while its marker verifies for this machine's hardware (the
 * reference: valid "as long as the customer uses the OEM-provided image"). A marker for other
 * hardware no longer applies, which is not tampering; one that does not verify is.
 */
export function oemEvidence(ctx: EvidenceContext, marker: string): Evidence {
  const check = checkOem(ctx, marker);
  if (check.ok) return { hostTime: null, valid: true, permanent: true };
  // Another machine's marker, or one whose manufacturer the publisher revoked: no licence, no edit.
  const applies =
    check.code === 'OEM_HARDWARE_MISMATCH' ||
    check.code === 'OEM_MANUFACTURER_REVOKED' ||
    (check.code === 'OEM_MANUFACTURER_UNTRUSTED' && !oemRootKnown(ctx, marker));
  return { hostTime: null, valid: applies, permanent: false };
}

/**
 * The domain a directory licence may be for: this machine's membership read at this start,
 * and only while the store has joined that same domain (leaving ends the licence).
 */
export function membershipDomain(ctx: Pick<EvidenceContext, 'record' | 'memberDomain'>): string | null {
  const joined = ctx.record.directory?.domain ?? null;
  return joined !== null && joined === ctx.memberDomain ? joined : null;
}

export type ActivationObjectCheck =
  | { ok: true; name: string; domain: string; issuedAt: number; expiresAt: number }
  | {
      ok: false;
      code:
        | 'DIRECTORY_OBJECT_INVALID'
        | 'DIRECTORY_OBJECT_UNTRUSTED'
        | 'DIRECTORY_OBJECT_DOMAIN_MISMATCH'
        | 'DIRECTORY_OBJECT_GROUP_MISMATCH'
        | 'DIRECTORY_OBJECT_EXPIRED';
      message: string;
    };

/**
 * The trusted key that signed an activation object, by its issuer and issue time: a root (v3, and
 * v2 objects made before online keys), or an online key delegated for phone activation objects.
 */
export function activationObjectSigner(object: ActivationObject, trust: ClientTrust): ChosenKey | null {
  const { issuedAt } = activationObjectValidity(object);
  const chosen =
    object.format === 'volact-activation-object/3'
      ? trust.root(object.issuer, issuedAt)
      : trust.rootOrDelegate(object.issuer, issuedAt, DELEGATION_PURPOSE.phoneActivationObjects);
  return chosen && activationObjectSignatureValid(object, chosen.key, chosen.delegated ? 'delegate' : 'root')
    ? chosen
    : null;
}

/** Whether the object names a key this installation trusts at its issue time. */
function activationObjectIssuerKnown(object: ActivationObject, trust: ClientTrust): boolean {
  const { issuedAt } = activationObjectValidity(object);
  return object.format === 'volact-activation-object/3'
    ? trust.root(object.issuer, issuedAt) !== null
    : trust.rootOrDelegate(object.issuer, issuedAt, DELEGATION_PURPOSE.phoneActivationObjects) !== null;
}

/**
 * The root-transition records an object carries (unsigned, self-authenticating) are learned
 * before its signature is checked: a member that only reads its directory learns a new root this
 * way. Only those that verify under a root already trusted are learned (the caller stores them).
 */
export function learnObjectTransitions(object: ActivationObject, trust: ClientTrust): boolean {
  if (object.format !== 'volact-activation-object/3' || !object.transitions?.length) return false;
  return trust.learn({ transitions: object.transitions.map((t) => Buffer.from(t, 'base64')), delegations: [] });
}

/** The transition records of the object a stored directory activation holds, learned (see above). */
export function learnStoredObjectTransitions(record: EvidenceContext['record'], trust: ClientTrust): boolean {
  if (record.activation?.method !== 'directory') return false;
  try {
    return learnObjectTransitions(parseActivationObject(record.activation.object), trust);
  } catch {
    return false; // an invalid object: its checks say so
  }
}

/** The checks an activation object must pass, in order: form, authority, domain, group, validity. */
export function checkActivationObject(ctx: EvidenceContext, text: string): ActivationObjectCheck {
  const domain = membershipDomain(ctx);
  let object;
  try {
    object = parseActivationObject(text);
  } catch (err) {
    return { ok: false, code: 'DIRECTORY_OBJECT_INVALID', message: (err as Error).message };
  }
  const cacheKey = `ao:${text}`;
  if (ctx.memo.signature?.evidence !== cacheKey) {
    learnObjectTransitions(object, ctx.trust);
    const signer = activationObjectSigner(object, ctx.trust);
    ctx.memo.signature = {
      evidence: cacheKey,
      verified: signer
        ? { hostTime: 0, count: 0, anchor: anchorOf(signer) }
        : activationObjectIssuerKnown(object, ctx.trust)
          ? null
          : { hostTime: 0, count: 0, unknownSigner: true },
    };
  }
  if (ctx.memo.signature.verified === null || ctx.memo.signature.verified.unknownSigner) {
    return {
      ok: false,
      code: 'DIRECTORY_OBJECT_UNTRUSTED',
      message: `activation object ${object.name} is not signed by this product's authority`,
    };
  }
  if (domain === null || object.domain !== domain) {
    const joined = ctx.record.directory?.domain ?? null;
    const why =
      joined === null
        ? 'this installation has not joined a domain (`volact client join-domain`)'
        : ctx.memberDomain === null
          ? `this machine is configured as a member of no domain (give \`--member-domain ${joined}\` at each start, or set the machine's DNS domain)`
          : joined !== ctx.memberDomain
            ? `this machine is configured as a member of ${ctx.memberDomain}, not of ${joined} it joined`
            : `this machine is a member of ${joined}`;
    return {
      ok: false,
      code: 'DIRECTORY_OBJECT_DOMAIN_MISMATCH',
      message: `activation object ${object.name} is bound to ${object.domain}: ${why}`,
    };
  }
  if (object.group.id !== ctx.record.product.group.id) {
    return {
      ok: false,
      code: 'DIRECTORY_OBJECT_GROUP_MISMATCH',
      message: `activation object ${object.name} is for ${object.group.name}, not ${ctx.record.product.group.name}`,
    };
  }
  const { issuedAt, expiresAt } = activationObjectValidity(object);
  const now = ctx.now;
  if (now >= expiresAt || now + maxSkewOf(ctx) < issuedAt) {
    return {
      ok: false,
      code: 'DIRECTORY_OBJECT_EXPIRED',
      message: `activation object ${object.name} is valid from ${new Date(issuedAt).toISOString()} to ${new Date(expiresAt).toISOString()}; now is ${new Date(now).toISOString()}: the publisher re-issues it (\`volact authority activation-object create\`) and it is published again (\`volact directory publish --replace\`)`,
    };
  }
  return { ok: true, name: object.name, domain: object.domain, issuedAt, expiresAt };
}

/**
 * A directory activation holds while this machine is a member of the object's domain (the
 * membership read at this start, outside the store, and the store's join) and the object
 * verifies (an edited one is tampering). The licence runs from the object's signed issue date,
 * for the activation validity, never past the object's signed end; the stored check time is
 * not signed and can only end it earlier.
 */
export function directoryEvidence(ctx: EvidenceContext, a: { object: string; checkedAt: number }): Evidence {
  const check = checkActivationObject(ctx, a.object);
  // A check time in the future is an edited store (or a clock that was wrong).
  if (a.checkedAt > ctx.now + maxSkewOf(ctx)) return ALTERED;
  const validity = ctx.record.product.policy.activationValidityDays * DAY;
  // deriveState ends the licence at hostTime + validity: the earliest of the three ends.
  const start = (v: { issuedAt: number; expiresAt: number }) =>
    Math.min(v.issuedAt, v.expiresAt - validity, a.checkedAt);
  if (check.ok) return { hostTime: start(check), valid: true, permanent: false };
  if (check.code === 'DIRECTORY_OBJECT_EXPIRED') {
    // Past its end the licence runs down as a lapsed one does (out-of-tolerance, then
    // notification); an object not yet valid grants nothing.
    const v = activationObjectValidity(parseActivationObject(a.object));
    return { hostTime: ctx.now >= v.expiresAt ? start(v) : null, valid: true, permanent: false };
  }
  if (check.code === 'DIRECTORY_OBJECT_DOMAIN_MISMATCH') return NOTHING;
  // Signed by a key this installation does not (or no longer) trust: no licence, no edit.
  if (check.code === 'DIRECTORY_OBJECT_UNTRUSTED' && ctx.memo.signature?.verified?.unknownSigner) return NOTHING;
  return ALTERED;
}
