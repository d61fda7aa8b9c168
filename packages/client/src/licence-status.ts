import {
  lastFiveOf,
  parseActivationObject,
  parseActivationToken,
  parseOemMarker,
  type LicenceState,
  type TokenCrl,
} from '@volact/core';
import type { DirectoryErrorCode } from '@volact/directory';
import type { AuthorityCode } from './authority-client.js';
import type { ClientErrorCode } from './errors.js';
import { maxSkewOf, type Evidence, type EvidenceContext } from './evidence-context.js';
import { checkOem, currentInstallationId } from './evidence.js';
import { deriveState } from './licence-state.js';
import type { ActType, AttemptRecord } from './licence-store.js';
import { checkToken, crlSummaryOf, readCrls, staleRequiredCrl, tokenCa, type CrlSummary } from './token-evidence.js';
import { certifyingRoot } from './offline-activation.js';

/**
 * Why an attempt failed: the client's own code, or one it passes on from the authority (an
 * online activation refused) or the directory (it could not be read).
 */
export type ActivationCode = ClientErrorCode | AuthorityCode | DirectoryErrorCode;

export interface LicenceStatus {
  readonly state: LicenceState;
  /**
   * How the licence was granted: a KMS host's signed answer, a MAK or a retail key confirmed by
   * the authority, an activation object, an OEM marker made at the factory, or an activation token of the
   * organisation's CA.
   */
  readonly method: 'kms' | 'mak' | 'retail' | 'directory' | 'oem' | 'token' | null;
  /** Which methods an activation attempt may use (the reference's /act-type). */
  readonly actType: ActType;
  /** With an OEM marker installed: who made the machine, its label, and whether the marker holds here. */
  readonly oem: { manufacturer: string | null; machine: string | null; code: ClientErrorCode | null } | null;
  /** With a token installed: its serial, CA organisation and validity; `code` when it does not grant a licence. */
  readonly token: {
    serial: string | null;
    organisation: string | null;
    notAfter: string | null;
    code: ClientErrorCode | null;
  } | null;
  /** The installed CRL: when it was issued, its next update (`stale` past it: still applied), how many serials. */
  readonly crl: { issuedAt: string; nextUpdate: string; stale: boolean; revoked: number } | null;
  /** How the host of the last attempt was found: set by hand, cached from DNS, DNS; null when none. */
  readonly hostSource: 'manual' | 'cache' | 'dns' | null;
  /** With method "directory": the activation object's name and domain. */
  readonly directoryObject: { name: string; domain: string } | null;
  readonly discovery: { domains: string[]; dnsServer: string | null; caching: boolean; cachedHost: string | null };
  readonly directory: { url: string; domain: string; base: string } | null;
  /** When the licence (or the current grace period) ends, ISO 8601; null when it does not. */
  readonly expiresAt: string | null;
  readonly host: string | null;
  readonly count: number | null;
  readonly threshold: number;
  readonly group: string;
  readonly clientMachineId: string;
  /**
   * The hardware id in force (read at this start, never from the store) and whether it differs
   * from the one the installation was made with (copied to other hardware: MAK, retail, OEM and
   * token licences no longer apply).
   */
  readonly hardware: { id: string; recorded: string; changed: boolean };
  /** The directory domain this machine is a member of, read at this start (never from the store); null: none. */
  readonly memberDomain: string | null;
  readonly installedKey: string | null;
  readonly installedKeyType: 'gvlk' | 'mak' | 'retail' | null;
  /** With a MAK or retail key installed: the installation ID to read out for phone activation. */
  readonly installationId: string | null;
  readonly lastAttempt: (Omit<AttemptRecord, 'at'> & { at: string }) | null;
  readonly nextAttemptAt: string;
  /**
   * Whom this installation believes (docs/trust.md): the roots (from the product config, or
   * learned through a transition record) and the version of the revocation list it holds.
   */
  readonly trust: {
    roots: { keyId: string; validFrom: string; validUntil: string | null; source: 'config' | 'transition' }[];
    revocationListVersion: number | null;
  };
  /**
   * Who signed the activation that licenses: the publisher's key (a root, or an online key) that
   * signed it or its certificate, and the root that anchors it (key IDs, hex). Null when none verifies.
   */
  readonly evidence: { method: NonNullable<LicenceStatus['method']>; signedBy: string; root: string } | null;
}

export interface ActivationOutcome {
  readonly ok: boolean;
  readonly code: ActivationCode | null;
  readonly message: string;
  readonly status: LicenceStatus;
}

/** The status of the record in `ctx`, whose stored activation grants `evidence`. */
export function describeStatus(ctx: EvidenceContext, evidence: Evidence): LicenceStatus {
  const r = ctx.record;
  const derived = deriveState(r, ctx.now, evidence.hostTime, evidence.valid, evidence.permanent);
  const last = r.lastAttempt;
  return {
    state: derived.state,
    method:
      evidence.permanent || (derived.validUntil !== null && evidence.valid) ? (r.activation?.method ?? null) : null,
    actType: r.actType,
    oem: oemStatus(ctx),
    token: tokenStatus(ctx),
    crl: crlStatus(ctx),
    hostSource: last?.via === 'directory' ? null : (last?.via ?? null),
    directoryObject: directoryObjectName(ctx),
    discovery: {
      domains: [...r.discovery.domains],
      dnsServer: r.discovery.dnsServer,
      caching: r.discovery.caching,
      cachedHost: r.discovery.cached?.address ?? null,
    },
    directory: r.directory ? { url: r.directory.url, domain: r.directory.domain, base: r.directory.base } : null,
    expiresAt: derived.stateEndsAt === null ? null : new Date(derived.stateEndsAt).toISOString(),
    host: r.kmsHost ?? last?.host ?? (r.activation?.method === 'kms' ? r.activation.host : null),
    count: last?.count ?? null,
    threshold: r.product.group.threshold,
    group: r.product.group.name,
    clientMachineId: r.clientMachineId,
    hardware: { id: ctx.hardwareId, recorded: r.hardwareId, changed: ctx.hardwareId !== r.hardwareId },
    memberDomain: ctx.memberDomain,
    installedKey: r.installedKey ? lastFiveOf(r.installedKey.text) : null,
    installedKeyType: r.installedKey?.type ?? null,
    installationId: currentInstallationId(ctx)?.text ?? null,
    lastAttempt: last ? { ...last, at: new Date(last.at).toISOString() } : null,
    nextAttemptAt: new Date(r.nextAttemptAt).toISOString(),
    trust: { roots: ctx.trust.roots(), revocationListVersion: ctx.trust.revocations?.listVersion ?? null },
    evidence: evidenceSigner(ctx, evidence),
  };
}

/** The signer of the stored activation, as the checks found it (memo), when it verifies. */
function evidenceSigner(ctx: EvidenceContext, evidence: Evidence): LicenceStatus['evidence'] {
  const a = ctx.record.activation;
  if (!a || !evidence.valid) return null;
  const anchored = (anchor: { signedBy: string; root: string } | null | undefined) =>
    anchor ? { method: a.method, signedBy: anchor.signedBy, root: anchor.root } : null;
  switch (a.method) {
    case 'kms':
    case 'mak':
    case 'retail':
    case 'directory':
      return anchored(ctx.memo.signature?.verified?.anchor);
    case 'oem': {
      if (!checkOem(ctx, a.marker).ok) return null;
      try {
        const cert = parseOemMarker(a.marker).certificate;
        const root = certifyingRoot(cert, ctx.trust);
        return anchored(root && { signedBy: root.signedBy, root: root.root });
      } catch {
        return null;
      }
    }
    case 'token': {
      if (!checkToken(ctx, a.token).ok) return null;
      try {
        const root = certifyingRoot(parseActivationToken(a.token).caCertificate, ctx.trust);
        return anchored(root && { signedBy: root.signedBy, root: root.root });
      } catch {
        return null;
      }
    }
  }
}

function oemStatus(ctx: EvidenceContext): LicenceStatus['oem'] {
  const a = ctx.record.activation;
  if (a?.method !== 'oem') return null;
  const check = checkOem(ctx, a.marker);
  if (check.ok) return { manufacturer: check.manufacturer, machine: check.machine, code: null };
  try {
    const m = parseOemMarker(a.marker);
    return { manufacturer: m.certificate.manufacturer, machine: m.machine, code: check.code };
  } catch {
    return { manufacturer: null, machine: null, code: check.code };
  }
}

function tokenStatus(ctx: EvidenceContext): LicenceStatus['token'] {
  const a = ctx.record.activation;
  if (a?.method !== 'token') return null;
  const check = checkToken(ctx, a.token);
  const now = ctx.now;
  if (check.ok && 'validUntil' in check) {
    const early = now + maxSkewOf(ctx) < check.validFrom;
    return {
      serial: check.serial,
      organisation: check.organisation,
      notAfter: new Date(check.validUntil).toISOString(),
      code:
        early || now >= check.validUntil
          ? 'TOKEN_EXPIRED'
          : staleRequiredCrl(ctx, a.token)
            ? 'TOKEN_CRL_REQUIRED'
            : null,
    };
  }
  try {
    const t = parseActivationToken(a.token);
    return {
      serial: t.serial,
      organisation: t.caCertificate.organisation,
      notAfter: t.notAfter,
      code: check.ok ? null : check.code,
    };
  } catch {
    return { serial: null, organisation: null, notAfter: null, code: check.ok ? null : check.code };
  }
}

/**
 * The CRL shown: the installed token's CA's, else the newest installed (CRLs are kept per CA). A
 * CRL past its next update still applies (an isolated network gets new ones by hand): flagged `stale`.
 */
function crlStatus(ctx: EvidenceContext): CrlSummary | null {
  const a = ctx.record.activation;
  const ca = a?.method === 'token' ? tokenCa(a.token) : null;
  const byCa = readCrls(ctx).byCa;
  const crl =
    (ca === null ? undefined : byCa.get(ca)) ??
    [...byCa.values()].reduce<TokenCrl | undefined>(
      (newest, c) => (newest && Date.parse(newest.issuedAt) >= Date.parse(c.issuedAt) ? newest : c),
      undefined,
    );
  return crl ? crlSummaryOf(crl, ctx.now) : null;
}

function directoryObjectName(ctx: EvidenceContext): { name: string; domain: string } | null {
  const a = ctx.record.activation;
  if (a?.method !== 'directory') return null;
  try {
    const o = parseActivationObject(a.object);
    return { name: o.name, domain: o.domain };
  } catch {
    return null;
  }
}
