import { MAX_CRL_SERIALS, tokenCaFingerprint, type ProductConfig, type TokenCrl } from '@volact/core';
import { ClientError } from './errors.js';
import { offlineContext, type EvidenceContext } from './evidence-context.js';
import type { LicenceRecord, Salvaged, StoredRecord } from './licence-store.js';
import { readCrl, readOemMarker } from './offline-activation.js';
import { checkToken, tokenNow } from './token-evidence.js';
import type { ClientTrust } from './trust.js';

/**
 * What is carried in rather than fetched: an OEM marker made at the factory, an activation
 * token of the organisation's CA, the CA's revocation list. Each is checked here with no
 * network and either refused (a typed error, nothing changes) or returned as the new record.
 */

/** At most this many token CAs' CRLs and revoked serials are kept (the root certifies few per group). */
const MAX_TOKEN_CAS = 64;
/** Serials seen revoked, per CA (CRLs drop expired serials: the record keeps them). */
const MAX_SEEN_REVOKED = 4 * MAX_CRL_SERIALS;

type Revocations = Pick<StoredRecord, 'crls' | 'revoked'>;

/**
 * OEM activation: the marker the manufacturer made for this machine at the factory. Refused
 * when it does not verify for this product and this machine's hardware. It replaces any other
 * activation (and a MAK: the group's GVLK is installed again), and holds under every act-type.
 */
export function withOemMarker(ctx: EvidenceContext, text: string): LicenceRecord {
  const check = readOemMarker(text, offlineContext(ctx));
  if (!check.ok) throw new ClientError(check.code, check.message);
  const r = ctx.record;
  return {
    ...r,
    installedKey: { type: 'gvlk', text: r.product.gvlk },
    activation: { method: 'oem', marker: text, installedAt: ctx.now },
    lastAttempt: {
      at: ctx.now,
      ok: true,
      message: `OEM marker of ${check.machine} by ${check.manufacturer} installed (permanent)`,
    },
    nextAttemptAt: ctx.now + r.intervals.renewalMs,
    nonGenuineSince: null,
  };
}

/**
 * Token-based activation: a token of the organisation's CA (and, optionally, the CA's CRL with
 * it), checked now against the CRL it comes with and every serial seen revoked before. Refused
 * when a check fails or when act-type is kms or directory; a CRL that revokes the token is
 * still kept (`keep`: what it revokes stays revoked).
 */
export function withToken(
  ctx: EvidenceContext,
  text: string,
  crlText: string | undefined,
): { ok: true; record: LicenceRecord } | { ok: false; error: ClientError; keep: LicenceRecord | null } {
  const r = ctx.record;
  if (r.actType === 'kms' || r.actType === 'directory') {
    const error = new ClientError(
      'ACT_TYPE_FORBIDS',
      `act-type ${r.actType}: token-based activation is not allowed (\`volact client set-act-type token\` or any)`,
    );
    return { ok: false, error, keep: null };
  }
  const revocations = crlText === undefined ? { crls: r.crls, revoked: r.revoked } : acceptCrl(ctx, crlText);
  const check = tokenNow({ ...ctx, record: { ...r, ...revocations } }, text);
  if (!check.ok) {
    const keep = check.code === 'TOKEN_REVOKED' && crlText !== undefined ? { ...r, ...revocations } : null;
    return { ok: false, error: new ClientError(check.code, check.message), keep };
  }
  return {
    ok: true,
    record: {
      ...r,
      ...revocations,
      installedKey: { type: 'gvlk', text: r.product.gvlk },
      activation: { method: 'token', token: text, installedAt: ctx.now },
      lastAttempt: { at: ctx.now, ok: true, message: `token ${check.serial} of ${check.organisation} installed` },
      nextAttemptAt: Math.min(ctx.now + r.intervals.renewalMs, check.validUntil),
      nonGenuineSince: null,
    },
  };
}

/**
 * The store's CRLs and revocations with this CRL: one CRL is kept per CA (by its public key's
 * fingerprint); one older than the installed CRL of the same CA is refused (CRL_OUTDATED), and
 * the serials it revokes are recorded for good: neither an old list nor another CA's can
 * un-revoke a token.
 */
export function acceptCrl(ctx: EvidenceContext, text: string): Revocations {
  const read = readCrl(text, offlineContext(ctx));
  if (!read.ok) throw new ClientError(read.code, read.message);
  const fp = tokenCaFingerprint(read.crl.caCertificate);
  const { crls, revoked } = ctx.record;
  const installedText = crls[fp];
  const installed = installedText === undefined ? null : readCrl(installedText, offlineContext(ctx));
  if (installed?.ok && Date.parse(read.crl.issuedAt) < Date.parse(installed.crl.issuedAt)) {
    throw new ClientError(
      'CRL_OUTDATED',
      `this CRL of ${read.crl.caCertificate.organisation} was issued ${read.crl.issuedAt}, before the installed one of the same CA (${installed.crl.issuedAt}): carry in the newest`,
    );
  }
  const cas = new Set([...Object.keys(crls), ...Object.keys(revoked)]);
  if (!cas.has(fp) && cas.size >= MAX_TOKEN_CAS) {
    throw new ClientError(
      'CRL_INVALID',
      `this store already keeps the CRLs of ${MAX_TOKEN_CAS} CAs, the most it keeps: a new installation is needed for more`,
    );
  }
  const seen = [...new Set([...(revoked[fp] ?? []), ...read.crl.revoked.map((x) => x.toLowerCase())])].sort();
  if (seen.length > MAX_SEEN_REVOKED) {
    throw new ClientError(
      'CRL_INVALID',
      `the CA ${read.crl.caCertificate.organisation} has revoked more than ${MAX_SEEN_REVOKED} serials seen here, the most a store keeps`,
    );
  }
  return { crls: { ...crls, [fp]: text }, revoked: { ...revoked, [fp]: seen } };
}

/**
 * A revocation, once seen, is kept in a way deleting or rolling back the CRL cannot undo: the
 * revoked token's licence is dropped from the record (carry in a new token). Null: nothing to drop.
 */
export function withoutRevokedToken(ctx: EvidenceContext): LicenceRecord | null {
  const a = ctx.record.activation;
  if (a?.method !== 'token') return null;
  const check = checkToken(ctx, a.token);
  if (check.ok || check.code !== 'TOKEN_REVOKED') return null;
  return {
    ...ctx.record,
    activation: null,
    lastAttempt: {
      at: ctx.now,
      ok: false,
      code: 'TOKEN_REVOKED',
      message: `${check.message}: its licence was removed`,
    },
    nextAttemptAt: ctx.now,
  };
}

/**
 * What a reset keeps of the old store's revocations: each CA's newest CRL that verifies under
 * the new product, and every serial seen revoked (they only ever refuse a token).
 */
export function keptRevocations(product: ProductConfig, trust: ClientTrust, kept: Salvaged): Revocations {
  const ctx = {
    trust,
    groupId: product.group.id,
    groupName: product.group.name,
    hardwareId: '',
  };
  const newest = new Map<string, { text: string; crl: TokenCrl }>();
  for (const text of kept.crls ?? []) {
    const read = readCrl(text, ctx);
    if (!read.ok) continue;
    const fp = tokenCaFingerprint(read.crl.caCertificate);
    const had = newest.get(fp);
    if (!had || Date.parse(had.crl.issuedAt) < Date.parse(read.crl.issuedAt)) newest.set(fp, { text, crl: read.crl });
  }
  const revoked: Record<string, string[]> = {};
  for (const [fp, serials] of Object.entries(kept.revoked ?? {})) revoked[fp] = [...serials];
  const crls: Record<string, string> = {};
  for (const [fp, { text, crl }] of [...newest].slice(0, MAX_TOKEN_CAS)) {
    crls[fp] = text;
    revoked[fp] = [...new Set([...(revoked[fp] ?? []), ...crl.revoked.map((x) => x.toLowerCase())])].sort();
  }
  const cas = Object.keys(revoked).slice(0, MAX_TOKEN_CAS);
  return {
    crls,
    revoked: Object.fromEntries(cas.map((fp) => [fp, revoked[fp]!.slice(0, MAX_SEEN_REVOKED)])),
  };
}
