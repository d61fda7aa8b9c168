import { decodeHostStatus, decodeRevocationList, decodeRootTransition, hostKeyRefOf, keyIdHex } from '@volact/core';
import { newKeyPairFix } from './activation.js';
import type { HostState } from './host-state.js';
import { PHONE_ACTIVATION } from './phone-activation.js';

/** The host status' next update within this long is a warning in `host status`. */
const WARN_BEFORE_MS = 2 * 86_400_000;

/** The trust part of `volact host status` (docs/kms-host.md "Trust and revocation"). */
export interface HostTrustStatus {
  /** The roots as the host knows them: from the authority's last answer, its product config (phone), learned transitions. */
  readonly roots: readonly {
    readonly keyId: string;
    readonly validFrom: string | null;
    readonly validUntil: string | null;
    /** The authority's word (`current`, `next`, `retired`…), or `known` for a root not listed by it. */
    readonly state: string;
    readonly source: 'authority' | 'product-config' | 'transition';
  }[];
  /** Key ID of the root that certified the host (its certificate's issuer). */
  readonly certificateIssuer: string | null;
  readonly revocationList: { readonly version: number; readonly issuedAt: string; readonly nextUpdate: string } | null;
  readonly hostStatus: {
    /** `current`; `expired` (its next update passed); `revoked` (the authority refused it); `none`; `not-applicable` (certified by phone). */
    readonly state: 'current' | 'expired' | 'revoked' | 'none' | 'not-applicable';
    readonly listVersion: number | null;
    readonly nextUpdate: string | null;
  };
  /** Records handed to clients in version-2 answers (at most 4 each are stapled). */
  readonly transitions: number;
  readonly delegations: number;
  readonly checkedAt: string | null;
  readonly lastError: { readonly at: string; readonly code: string; readonly message: string } | null;
  /** What an operator must look at (also printed as WARNING lines). */
  readonly warnings: readonly string[];
}

const iso = (ms: number) => new Date(ms).toISOString();

export function hostTrustStatus(state: HostState, now: number): HostTrustStatus {
  const trust = state.trust;
  const cert = (() => {
    try {
      return state.certificate();
    } catch {
      return undefined;
    }
  })();
  const phone = state.activation?.authorityUrl === PHONE_ACTIVATION;
  const roots: HostTrustStatus['roots'][number][] = trust.roots.map((r) => ({
    keyId: r.keyId,
    validFrom: r.validFrom,
    validUntil: r.validUntil ?? null,
    state: r.state,
    source: 'authority' as const,
  }));
  const known = new Set(roots.map((r) => r.keyId));
  const productRoot = state.phoneRequest?.rootPublicKey;
  if (productRoot) {
    const id = keyIdHex(Buffer.from(productRoot, 'base64'));
    if (!known.has(id)) {
      known.add(id);
      roots.push({ keyId: id, validFrom: null, validUntil: null, state: 'known', source: 'product-config' });
    }
  }
  for (const b of trust.transitions) {
    try {
      const t = decodeRootTransition(Buffer.from(b, 'base64'));
      const id = t.nextKeyId.toString('hex');
      if (known.has(id)) continue;
      known.add(id);
      roots.push({
        keyId: id,
        validFrom: iso(t.nextValidFrom),
        validUntil: null,
        state: 'known',
        source: 'transition',
      });
    } catch {
      /* unreadable: not shown */
    }
  }
  let revocationList: HostTrustStatus['revocationList'] = null;
  if (trust.revocationList) {
    try {
      const l = decodeRevocationList(Buffer.from(trust.revocationList, 'base64'));
      revocationList = { version: l.listVersion, issuedAt: iso(l.issuedAt), nextUpdate: iso(l.nextUpdate) };
    } catch {
      /* shown as none */
    }
  }
  let hostStatus: HostTrustStatus['hostStatus'] = {
    state: phone ? 'not-applicable' : 'none',
    listVersion: null,
    nextUpdate: null,
  };
  if (trust.hostStatus) {
    try {
      const s = decodeHostStatus(Buffer.from(trust.hostStatus, 'base64'));
      const mine = !cert || s.hostKeyRef.equals(hostKeyRefOf(cert.hostPublicKey));
      if (mine)
        hostStatus = {
          state: now >= s.nextUpdate ? 'expired' : 'current',
          listVersion: s.listVersion,
          nextUpdate: iso(s.nextUpdate),
        };
    } catch {
      /* shown as none */
    }
  }
  if (trust.revoked) hostStatus = { ...hostStatus, state: 'revoked' };
  const warnings: string[] = [];
  if (!phone && cert) {
    if (trust.revoked)
      warnings.push(
        `the authority revoked this host's key (${trust.revoked.at}): clients refuse its answers ${hostStatus.nextUpdate ? `from ${hostStatus.nextUpdate}` : 'now'}; ${newKeyPairFix(state.dataDir, state.activation?.authorityUrl)}`,
      );
    else if (hostStatus.state === 'none')
      warnings.push(
        'no host status: clients of this release refuse this host until it gets one from the authority (at start and every 6 hours)',
      );
    else if (hostStatus.nextUpdate && Date.parse(hostStatus.nextUpdate) - now < WARN_BEFORE_MS)
      warnings.push(
        `the host status ${hostStatus.state === 'expired' ? 'ended' : 'ends'} ${hostStatus.nextUpdate}: clients refuse this host from then until it reaches the authority again`,
      );
    if (trust.lastError) warnings.push(`last trust check failed ${trust.lastError.at}: ${trust.lastError.message}`);
  }
  return {
    roots,
    certificateIssuer: cert ? cert.issuer.toString('hex') : null,
    revocationList,
    hostStatus,
    transitions: trust.transitions.length,
    delegations: trust.delegations.length,
    checkedAt: trust.checkedAt ?? null,
    lastError: trust.lastError ?? null,
    warnings,
  };
}
