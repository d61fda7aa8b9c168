import { createPublicKey } from 'node:crypto';
import { z } from 'zod';
import { CoreError, type CoreErrorCode } from './errors.js';
import { isGuid } from './ids.js';
import { publicKeyFromRaw, rawPublicKey } from './crypto.js';

/**
 * Pieces shared by the signed files an IT pro carries by hand (OEM certificates and markers,
 * token CA certificates, activation tokens, CRLs): JSON, strictly parsed and bounded in size,
 * each signature over a domain-separated context string and a JSON array of the signed fields.
 */
export const guidField = z.string().refine(isGuid, 'expected a GUID');
export const groupField = z.object({ id: guidField, name: z.string().min(1).max(63) }).strict();
/** First 8 bytes of SHA-256 of the root public key, hex: which authority signed. */
export const issuerField = z.string().regex(/^[0-9a-f]{16}$/, 'expected 16 hex digits');
export const signatureField = z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 Ed25519 signature');
export const publicKeyField = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected a base64 Ed25519 public key');
/** hardwareRefOf(hardware id), hex: the machine, without its hardware id. */
export const hardwareRefField = z.string().regex(/^[0-9a-f]{16}$/, 'expected 16 hex digits');
/** A name people read: printable ASCII, 1-64 characters. */
export const labelField = z.string().regex(/^[\x20-\x7e]{1,64}$/, 'expected 1-64 printable ASCII characters');

/** The bytes a signature covers: the context (with its version and a NUL) then the fields as a JSON array. */
export function signedPayload(context: string, fields: readonly unknown[]): Buffer {
  return Buffer.from(context + JSON.stringify(fields));
}

/** Strict parse of a carried file: size first, then JSON, then the schema; the message names the field. */
export function parseSignedFile<T>(
  text: string,
  schema: z.ZodType<T>,
  what: string,
  code: CoreErrorCode,
  maxChars: number,
): T {
  if (text.length > maxChars) throw new CoreError(code, `the ${what} is larger than ${maxChars} characters`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CoreError(code, `the ${what} is not JSON`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CoreError(
      code,
      `the ${what}'s ${issue?.path.join('.') || 'body'} is invalid: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/** An Ed25519 public key as SPKI PEM: the file a manufacturer or an organisation hands the publisher. */
export function publicKeyToPem(raw: Uint8Array): string {
  return publicKeyFromRaw(raw).export({ format: 'pem', type: 'spki' }).toString();
}

/** The raw 32-byte key of an Ed25519 SPKI PEM; PUBLIC_KEY_INVALID for anything else (a private key too). */
export function publicKeyRawFromPem(text: string): Buffer {
  if (!/^-----BEGIN PUBLIC KEY-----/.test(text.trim())) {
    throw new CoreError('PUBLIC_KEY_INVALID', 'expected a PEM public key (-----BEGIN PUBLIC KEY-----)');
  }
  try {
    const key = createPublicKey(text);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key`);
    return rawPublicKey(key);
  } catch (err) {
    throw new CoreError('PUBLIC_KEY_INVALID', `not an Ed25519 public key (${(err as Error).message})`);
  }
}
