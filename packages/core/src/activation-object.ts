import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { CoreError } from './errors.js';
import { DAY } from './clock.js';
import type { Signer } from './trust/signer.js';
import { isGuid } from './ids.js';
import { keyFingerprint, publicKeyFromRaw, rawPublicKey, verifyMessage } from './crypto.js';
import { guidToBytes } from './ids.js';
import { bigIntToBytes, bytesToBigInt } from './digit-groups.js';
import {
  domainRefOf,
  keyRefOf,
  makeInstallationId,
  parseConfirmationId,
  rootConfirmationKeys,
  type ConfirmationKeys,
  type ConfirmationSigner,
  type InstallationId,
} from './installation-id.js';
import type { ProductKey } from './keys.js';
import {
  shortSign,
  shortSignV2,
  shortSignatureFromBigInt,
  shortSignatureToBigInt,
  shortVerify,
  shortVerifyV2,
  type ShortSignature,
  type ShortSigningKey,
} from './short-signature.js';

/**
 * An activation object (the reference's Active Directory-Based activation): the authority's
 * statement that installations of one product group that are members of one directory domain
 * are licensed, with no KMS host. Published in the organisation's directory; a member client
 * reads it, checks the root's signature, its domain and its group, and is licensed for the
 * activation validity, re-checking every renewal interval.
 */
export const DOMAIN_NAME_RE =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
export const OBJECT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * How long an activation object is valid by default. A member's licence runs from the object's
 * signed issue date (a time the client's store cannot move), so an object valid longer than the
 * product's activation validity (180 days) would license no longer: the publisher re-issues it
 * (`volact authority activation-object create`, `volact directory publish --replace`) before it
 * ends; `directory publish` and `directory list` warn 30 days ahead.
 */
export const DEFAULT_OBJECT_VALIDITY_DAYS = 180;
export const MAX_OBJECT_VALIDITY_DAYS = 3650;
/** `directory publish` and `directory list` warn when an object ends within this many days. */
export const OBJECT_EXPIRY_WARNING_DAYS = 30;

/** At most this many root-transition records ride along in an object (as the authority's answers carry). */
export const MAX_OBJECT_TRANSITIONS = 8;
/** A transition record is 185 bytes: its base64 fits well within this. */
const MAX_OBJECT_TRANSITION_CHARS = 400;

/**
 * Format 3: format 1 had no end (an object copied anywhere licensed forever); it is refused with
 * the fix (re-issue). The signature covers the validity period.
 */
const onlineObjectSchema = z
  .object({
    format: z.literal('volact-activation-object/3'),
    name: z.string().regex(OBJECT_NAME_RE),
    objectId: z.string().refine(isGuid, 'expected a GUID'),
    group: z.object({ id: z.string().refine(isGuid, 'expected a GUID'), name: z.string().max(63) }).strict(),
    domain: z.string().regex(DOMAIN_NAME_RE),
    issuedAt: z.iso.datetime(),
    expiresAt: z.iso.datetime(),
    /** First 8 bytes of SHA-256 of the root public key, hex: which authority signed. */
    issuer: z.string().regex(/^[0-9a-f]{16}$/),
    signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 Ed25519 signature'),
    /**
     * The authority's root-transition records (base64, oldest first), so a member that only
     * reads its directory learns a new root. Not signed: each record is self-authenticating
     * (a client learns only those that verify under a root it already trusts).
     */
    transitions: z
      .array(
        z
          .string()
          .max(MAX_OBJECT_TRANSITION_CHARS)
          .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'expected base64'),
      )
      .max(MAX_OBJECT_TRANSITIONS)
      .optional(),
  })
  .strict();

/**
 * Version 2, for a disconnected forest: made by phone. The forest's admin reads out an
 * installation ID (kind activation-object: the KMS host key, the domain's and group's
 * references); the confirmation ID carries the short signature over
 * keyRef || domainRef(domain) || group id || issuedDay — by the online key its key index names
 * (short signature v2), or by the root (v1, key index 0, before online keys) — and the admin
 * builds the object, whose issuer is that key's ID.
 */
const phoneObjectSchema = z
  .object({
    format: z.literal('volact-activation-object/2'),
    name: z.string().regex(OBJECT_NAME_RE),
    group: z.object({ id: z.string().refine(isGuid, 'expected a GUID'), name: z.string().max(63) }).strict(),
    domain: z.string().regex(DOMAIN_NAME_RE),
    keyRef: z.string().regex(/^[0-9a-f]{16}$/),
    issuedDay: z.number().int().min(0).max(65535),
    issuer: z.string().regex(/^[0-9a-f]{16}$/),
    /** The short signature e·L + s, 48 bytes, hex. */
    signature: z.string().regex(/^[0-9a-f]{96}$/),
  })
  .strict();

export const activationObjectSchema = z.discriminatedUnion('format', [onlineObjectSchema, phoneObjectSchema]);

export type ActivationObject = z.infer<typeof activationObjectSchema>;
type OnlineObject = z.infer<typeof onlineObjectSchema>;

const CONTEXT = 'volact/activation-object/v3\0';

function signedBytes(o: Omit<OnlineObject, 'signature' | 'format'>): Buffer {
  return Buffer.from(
    CONTEXT +
      JSON.stringify([o.name, o.objectId, o.group.id, o.group.name, o.domain, o.issuedAt, o.expiresAt, o.issuer]),
  );
}

/**
 * The signed validity period of an object: format 3 carries it; a phone-made object (format 2)
 * is valid DEFAULT_OBJECT_VALIDITY_DAYS from its signed issue day.
 */
export function activationObjectValidity(o: ActivationObject): { issuedAt: number; expiresAt: number } {
  if (o.format === 'volact-activation-object/3') {
    return { issuedAt: Date.parse(o.issuedAt), expiresAt: Date.parse(o.expiresAt) };
  }
  const issuedAt = o.issuedDay * DAY;
  return { issuedAt, expiresAt: issuedAt + DEFAULT_OBJECT_VALIDITY_DAYS * DAY };
}

export function normaliseDomain(domain: string): string {
  return domain.trim().toLowerCase().replace(/\.$/, '');
}

export function signActivationObject(
  fields: {
    name: string;
    objectId: string;
    group: { id: string; name: string };
    domain: string;
    issuedAt: number;
    /** How long it licenses members: 1 to MAX_OBJECT_VALIDITY_DAYS days (default DEFAULT_OBJECT_VALIDITY_DAYS). */
    validityDays?: number;
    /** Root-transition records (base64) to attach, unsigned; at most MAX_OBJECT_TRANSITIONS, the newest kept. */
    transitions?: readonly string[];
  },
  root: Signer,
): ActivationObject {
  const days = fields.validityDays ?? DEFAULT_OBJECT_VALIDITY_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_OBJECT_VALIDITY_DAYS) {
    throw new CoreError(
      'ACTIVATION_OBJECT_INVALID',
      `the validity of an activation object is 1 to ${MAX_OBJECT_VALIDITY_DAYS} days, got ${days}`,
    );
  }
  const body = {
    name: fields.name,
    objectId: fields.objectId,
    group: { id: fields.group.id, name: fields.group.name },
    domain: normaliseDomain(fields.domain),
    issuedAt: new Date(fields.issuedAt).toISOString(),
    expiresAt: new Date(fields.issuedAt + days * DAY).toISOString(),
    issuer: keyFingerprint(root.publicKeyRaw).toString('hex'),
  };
  const object = {
    format: 'volact-activation-object/3' as const,
    ...body,
    signature: root.sign(signedBytes(body)).toString('base64'),
    ...(fields.transitions && fields.transitions.length > 0
      ? { transitions: fields.transitions.slice(-MAX_OBJECT_TRANSITIONS) }
      : {}),
  };
  return onlineObjectSchema.parse(object);
}

const PHONE_CONTEXT = 'activation-object';

function phoneMessage(f: { keyRef: Buffer; domain: string; groupId: string; issuedDay: number }): Buffer {
  const day = Buffer.alloc(2);
  day.writeUInt16BE(f.issuedDay);
  return Buffer.concat([f.keyRef, domainRefOf(f.domain), guidToBytes(f.groupId), day]);
}

function phoneMessageOfRefs(f: { keyRef: Buffer; domainRef: Buffer; groupId: string; issuedDay: number }): Buffer {
  const day = Buffer.alloc(2);
  day.writeUInt16BE(f.issuedDay);
  return Buffer.concat([f.keyRef, f.domainRef, guidToBytes(f.groupId), day]);
}

/**
 * The authority's side of a phone-made object: it knows the domain only by its reference. Signed
 * by the online key (v2); the CID carries `signer.keyIndex`.
 */
export function signPhoneActivationObject(
  f: { keyRef: Buffer; domainRef: Buffer; groupId: string; issuedDay: number },
  signer: ConfirmationSigner,
): ShortSignature {
  return shortSignV2(signer.short, PHONE_CONTEXT, phoneMessageOfRefs(f));
}

/** A root's phone-made object signature (v1, CID key index 0), as before online keys. Tests and vectors only. */
export function signPhoneActivationObjectWithRoot(
  f: { keyRef: Buffer; domainRef: Buffer; groupId: string; issuedDay: number },
  root: ShortSigningKey,
): ShortSignature {
  return shortSign(root, PHONE_CONTEXT, phoneMessageOfRefs(f));
}

/** The forest admin's side: the object, built around the confirmation's signature. */
export function buildPhoneActivationObject(
  f: {
    name: string;
    group: { id: string; name: string };
    domain: string;
    keyRef: Buffer;
    issuedDay: number;
    /** The key that signed: the online key the CID's key index names, or the root for index 0. */
    issuerPublicKeyRaw: Uint8Array;
  },
  signature: ShortSignature,
): ActivationObject {
  return phoneObjectSchema.parse({
    format: 'volact-activation-object/2',
    name: f.name,
    group: { id: f.group.id, name: f.group.name },
    domain: normaliseDomain(f.domain),
    keyRef: f.keyRef.toString('hex'),
    issuedDay: f.issuedDay,
    issuer: keyFingerprint(f.issuerPublicKeyRaw).toString('hex'),
    signature: bigIntToBytes(shortSignatureToBigInt(signature), 48).toString('hex'),
  });
}

/** Strict parse of an object read from a directory (text), with the field that is wrong. */
export function parseActivationObject(text: string): ActivationObject {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CoreError('ACTIVATION_OBJECT_INVALID', 'the activation object is not JSON');
  }
  if ((raw as { format?: unknown } | null)?.format === 'volact-activation-object/1') {
    throw new CoreError(
      'ACTIVATION_OBJECT_INVALID',
      'the activation object has format 1, which never expires and is no longer accepted: re-issue it (`volact authority activation-object create`) and publish it with `volact directory publish --replace`',
    );
  }
  const parsed = activationObjectSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CoreError(
      'ACTIVATION_OBJECT_INVALID',
      `the activation object's ${issue?.path.join('.') || 'body'} is invalid: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/**
 * True when the issuer signed exactly this object. Domain and group are checked by the caller.
 * A phone-made object (format 2) carries short signature v1 when its issuer is a root (`scheme`
 * 'root'), v2 when it is an online key ('delegate'); without `scheme` either is accepted.
 */
export function activationObjectSignatureValid(
  o: ActivationObject,
  issuerPublicKey: KeyObject,
  scheme?: 'root' | 'delegate',
): boolean {
  if (o.format === 'volact-activation-object/3') {
    return verifyMessage(issuerPublicKey, signedBytes(o), Buffer.from(o.signature, 'base64'));
  }
  const raw = rawPublicKey(issuerPublicKey);
  const message = phoneMessage({
    keyRef: Buffer.from(o.keyRef, 'hex'),
    domain: o.domain,
    groupId: o.group.id,
    issuedDay: o.issuedDay,
  });
  const signature = shortSignatureFromBigInt(bytesToBigInt(Buffer.from(o.signature, 'hex')));
  return (
    (scheme !== 'delegate' && shortVerify(raw, PHONE_CONTEXT, message, signature)) ||
    (scheme !== 'root' && shortVerifyV2(raw, PHONE_CONTEXT, message, signature))
  );
}

function checkDomain(domain: string): void {
  if (!DOMAIN_NAME_RE.test(normaliseDomain(domain))) {
    throw new CoreError(
      'ACTIVATION_OBJECT_INVALID',
      `"${domain.slice(0, 80)}" is not a DNS domain name (e.g. corp.example.com)`,
    );
  }
}

/** The forest admin's installation ID for an activation object: the KMS host key, the domain, the group. */
export function activationObjectInstallationId(f: {
  key: ProductKey;
  domain: string;
  groupId: string;
}): InstallationId {
  return makeInstallationId({
    kind: 'activation-object',
    key: f.key,
    domain: normaliseDomain(f.domain),
    groupIds: [f.groupId],
  });
}

/**
 * Builds the object from the confirmation ID read back for that installation ID, and keeps it
 * only if it verifies under a key the CID's key index names (`keys`; by default the product's
 * root): a mistyped or foreign confirmation is refused. The object's issuer is the key that signed.
 */
export function activationObjectFromConfirmation(f: {
  key: ProductKey;
  domain: string;
  group: { id: string; name: string };
  name: string;
  rootPublicKeyRaw: Buffer;
  /** The keys a CID's key index may name (the TrustStore's); default: the root alone. */
  keys?: ConfirmationKeys;
  confirmationId: string;
}): ActivationObject {
  checkDomain(f.domain);
  if (!OBJECT_NAME_RE.test(f.name)) {
    throw new CoreError(
      'ACTIVATION_OBJECT_INVALID',
      `--name "${f.name.slice(0, 80)}" is invalid: 1-64 letters, digits, ".", "_" or "-"`,
    );
  }
  const cid = parseConfirmationId(f.confirmationId);
  const scheme = cid.keyIndex === 0 ? 'root' : 'delegate';
  for (const issuer of (f.keys ?? rootConfirmationKeys(f.rootPublicKeyRaw)).forIndex(cid.keyIndex, cid.issuedDay)) {
    const object = buildPhoneActivationObject(
      {
        name: f.name,
        group: f.group,
        domain: f.domain,
        keyRef: keyRefOf(f.key),
        issuedDay: cid.issuedDay,
        issuerPublicKeyRaw: issuer,
      },
      cid.signature,
    );
    if (activationObjectSignatureValid(object, publicKeyFromRaw(issuer), scheme)) return object;
  }
  throw new CoreError(
    'CID_INVALID',
    "this confirmation ID was not issued for this installation ID (another key, domain or group, or not by this product's authority): read out the installation ID again",
  );
}
