import {
  DAY,
  DEFAULT_OBJECT_VALIDITY_DAYS,
  DOMAIN_NAME_RE,
  MAX_OBJECT_VALIDITY_DAYS,
  MAX_OEM_GROUPS,
  OBJECT_NAME_RE,
  keyFingerprint,
  normaliseDomain,
  randomGuid,
  signActivationObject,
  signOemCertificate,
  signTokenCaCertificate,
  type ActivationObject,
  type OemCertificate,
  type TokenCaCertificate,
} from '@volact/core';
import type { AuthorityContext } from './context.js';
import { invalidField } from './errors.js';

/** The longest an OEM or token CA certificate may run (ten years). */
export const MAX_CERTIFIED_DAYS = 3653;

/**
 * What the root signs offline, for a party that then works without the authority: an
 * activation object for a directory domain, a manufacturer's OEM key, an organisation's token
 * CA. Nothing is stored but the audit row that says what was issued.
 */

export interface ActivationObjectRequest {
  readonly group: string;
  readonly domain: string;
  readonly name: string;
  /** How long the object licenses members (default DEFAULT_OBJECT_VALIDITY_DAYS); the publisher re-issues it. */
  readonly validityDays?: number;
}

/**
 * An activation object for a product group and a directory domain (the reference's
 * Active Directory-Based activation), signed by the root. The organisation publishes it in
 * its directory with `volact directory publish`; member installations of the group activate
 * from it with no KMS host.
 */
/** Whose artefact it is and who issued it, for the audit row (organisations module). */
export interface IssuedFor {
  readonly orgId?: string;
  readonly actor?: string;
}

export async function createActivationObject(
  ctx: AuthorityContext,
  request: ActivationObjectRequest,
  issuedFor: IssuedFor = {},
): Promise<ActivationObject> {
  const now = ctx.clock.now();
  const domain = normaliseDomain(request.domain);
  if (!DOMAIN_NAME_RE.test(domain)) {
    throw invalidField(
      'domain',
      `the directory domain "${request.domain.slice(0, 80)}" is not a DNS domain name (e.g. corp.example.com)`,
    );
  }
  if (!OBJECT_NAME_RE.test(request.name)) {
    throw invalidField(
      'name',
      `the object name "${request.name.slice(0, 80)}" is invalid: 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
  const validityDays = request.validityDays ?? DEFAULT_OBJECT_VALIDITY_DAYS;
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > MAX_OBJECT_VALIDITY_DAYS) {
    throw invalidField(
      'validityDays',
      `the object's validity must be a whole number of days from 1 to ${MAX_OBJECT_VALIDITY_DAYS}, got ${String(request.validityDays).slice(0, 20)}`,
    );
  }
  const group = await ctx.groups.find(request.group);
  // The ring's transition records ride along (unsigned, self-authenticating): a member that only
  // reads its directory learns a new root from the object the new root signed.
  const { transitions } = await ctx.trustRecords();
  const object = signActivationObject(
    {
      name: request.name,
      objectId: randomGuid(),
      group: { id: group.id, name: group.name },
      domain,
      issuedAt: now,
      validityDays,
      transitions,
    },
    ctx.rootSigner(),
  );
  await ctx.store.audit({
    at: now,
    action: 'activation-object.create',
    result: 'OK',
    detail: `${object.name} for ${group.name} in ${domain}, valid ${validityDays} days`,
    orgId: issuedFor.orgId ?? null,
    actor: issuedFor.actor ?? null,
  });
  return object;
}

export interface OemCertificateRequest {
  readonly manufacturer: string;
  readonly publicKeyRaw: Buffer;
  readonly groups: readonly string[];
  readonly days: number;
}

/**
 * OEM activation: certifies a manufacturer's public key for some product groups. The
 * manufacturer made its key pair and keeps the private key; its factory signs one marker per
 * machine with it (`volact oem mark`).
 */
export async function issueOemCertificate(
  ctx: AuthorityContext,
  request: OemCertificateRequest,
  issuedFor: IssuedFor = {},
): Promise<OemCertificate> {
  const now = ctx.clock.now();
  const fields = checkCertifiedKey(ctx, request.publicKeyRaw, request.days);
  if (!/^[\x20-\x7e]{1,64}$/.test(request.manufacturer.trim())) {
    throw invalidField('manufacturer', "the manufacturer's name must be 1-64 printable ASCII characters");
  }
  if (request.groups.length < 1 || request.groups.length > MAX_OEM_GROUPS) {
    throw invalidField('groups', `an OEM certificate names 1..${MAX_OEM_GROUPS} product groups`);
  }
  const groups = await Promise.all(request.groups.map((g) => ctx.groups.find(g)));
  const unique = [...new Map(groups.map((g) => [g.id, { id: g.id, name: g.name }])).values()];
  return certify(
    ctx,
    now,
    fields.days,
    'oem-certificate.issue',
    issuedFor,
    (window) =>
      signOemCertificate(
        { ...window, manufacturer: request.manufacturer, publicKeyRaw: request.publicKeyRaw, groups: unique },
        ctx.rootSigner(),
      ),
    (c) =>
      `serial ${c.serial} for ${c.manufacturer} (key ${fields.keyId}) groups ${c.groups.map((g) => g.name).join(',')} until ${c.notAfter}`,
  );
}

export interface TokenCaRequest {
  readonly organisation: string;
  readonly group: string;
  readonly publicKeyRaw: Buffer;
  readonly days: number;
}

/**
 * Token-based activation: certifies an organisation's issuing CA key for one product group.
 * The organisation made its key pair and keeps the private key; its CA issues the tokens
 * (`volact token issue`) and CRLs.
 */
export async function issueTokenCa(
  ctx: AuthorityContext,
  request: TokenCaRequest,
  issuedFor: IssuedFor = {},
): Promise<TokenCaCertificate> {
  const now = ctx.clock.now();
  const fields = checkCertifiedKey(ctx, request.publicKeyRaw, request.days);
  if (!/^[\x20-\x7e]{1,64}$/.test(request.organisation.trim())) {
    throw invalidField('organisation', "the organisation's name must be 1-64 printable ASCII characters");
  }
  const group = await ctx.groups.find(request.group);
  return certify(
    ctx,
    now,
    fields.days,
    'token-ca.issue',
    issuedFor,
    (window) =>
      signTokenCaCertificate(
        {
          ...window,
          organisation: request.organisation,
          group: { id: group.id, name: group.name },
          publicKeyRaw: request.publicKeyRaw,
        },
        ctx.rootSigner(),
      ),
    (c) => `serial ${c.serial} for ${c.organisation} (key ${fields.keyId}) group ${group.name} until ${c.notAfter}`,
  );
}

/**
 * Signs a certificate for another party's key over a new serial and its validity window, and
 * audits what was issued (the certificate itself is not stored).
 */
async function certify<C>(
  ctx: AuthorityContext,
  now: number,
  days: number,
  action: string,
  issuedFor: IssuedFor,
  sign: (window: { serial: string; notBefore: number; notAfter: number }) => C,
  describe: (certificate: C) => string,
): Promise<C> {
  const certificate = sign({ serial: randomGuid(), notBefore: now, notAfter: now + days * DAY });
  await ctx.store.audit({
    at: now,
    action,
    result: 'OK',
    detail: describe(certificate),
    orgId: issuedFor.orgId ?? null,
    actor: issuedFor.actor ?? null,
  });
  return certificate;
}

/** The root signs only a public key someone else holds the private half of, never its own. */
function checkCertifiedKey(ctx: AuthorityContext, publicKeyRaw: Buffer, days: number): { keyId: string; days: number } {
  if (publicKeyRaw.length !== 32) throw invalidField('publicKey', 'an Ed25519 public key has 32 bytes');
  if (ctx.rootPublicKeys().some((root) => root.equals(publicKeyRaw))) {
    throw invalidField('publicKey', "that is one of the authority's own root keys: certify the other party's key");
  }
  if (!Number.isInteger(days) || days < 1 || days > MAX_CERTIFIED_DAYS) {
    throw invalidField(
      'days',
      `the certificate's validity must be a whole number of days from 1 to ${MAX_CERTIFIED_DAYS}`,
    );
  }
  return { keyId: keyFingerprint(publicKeyRaw).toString('hex'), days };
}
