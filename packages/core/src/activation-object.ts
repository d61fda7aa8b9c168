import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { CoreError } from './errors.js';
import { isGuid } from './ids.js';
import { keyFingerprint, signMessage, verifyMessage } from './crypto.js';

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

export const activationObjectSchema = z
  .object({
    format: z.literal('volact-activation-object/1'),
    name: z.string().regex(OBJECT_NAME_RE),
    objectId: z.string().refine(isGuid, 'expected a GUID'),
    group: z.object({ id: z.string().refine(isGuid, 'expected a GUID'), name: z.string().max(63) }).strict(),
    domain: z.string().regex(DOMAIN_NAME_RE),
    issuedAt: z.iso.datetime(),
    /** First 8 bytes of SHA-256 of the root public key, hex: which authority signed. */
    issuer: z.string().regex(/^[0-9a-f]{16}$/),
    signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 Ed25519 signature'),
  })
  .strict();

export type ActivationObject = z.infer<typeof activationObjectSchema>;

const CONTEXT = 'volact/activation-object/v1\0';

function signedBytes(o: Omit<ActivationObject, 'signature' | 'format'>): Buffer {
  return Buffer.from(
    CONTEXT + JSON.stringify([o.name, o.objectId, o.group.id, o.group.name, o.domain, o.issuedAt, o.issuer]),
  );
}

export function normaliseDomain(domain: string): string {
  return domain.trim().toLowerCase().replace(/\.$/, '');
}

export function signActivationObject(
  fields: { name: string; objectId: string; group: { id: string; name: string }; domain: string; issuedAt: number },
  root: { privateKey: KeyObject; publicKeyRaw: Buffer },
): ActivationObject {
  const body = {
    name: fields.name,
    objectId: fields.objectId,
    group: { id: fields.group.id, name: fields.group.name },
    domain: normaliseDomain(fields.domain),
    issuedAt: new Date(fields.issuedAt).toISOString(),
    issuer: keyFingerprint(root.publicKeyRaw).toString('hex'),
  };
  const object = {
    format: 'volact-activation-object/1' as const,
    ...body,
    signature: signMessage(root.privateKey, signedBytes(body)).toString('base64'),
  };
  return activationObjectSchema.parse(object);
}

/** Strict parse of an object read from a directory (text), with the field that is wrong. */
export function parseActivationObject(text: string): ActivationObject {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CoreError('ACTIVATION_OBJECT_INVALID', 'the activation object is not JSON');
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

/** True when the root signed exactly this object. Domain and group are checked by the caller. */
export function activationObjectSignatureValid(o: ActivationObject, rootPublicKey: KeyObject): boolean {
  return verifyMessage(rootPublicKey, signedBytes(o), Buffer.from(o.signature, 'base64'));
}
