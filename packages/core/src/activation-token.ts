import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { keyFingerprint, publicKeyFromRaw, sha256, signMessage, verifyMessage } from './crypto.js';
import { hardwareRefOf } from './installation-id.js';
import type { Signer } from './trust/signer.js';
import {
  groupField,
  guidField,
  hardwareRefField,
  issuerField,
  labelField,
  parseSignedFile,
  publicKeyField,
  signatureField,
  signedPayload,
} from './signed-file.js';

/**
 * Token-based activation (the reference: "for specific situations when approved customers rely
 * on a public key infrastructure in an isolated and high-security environment").
 *
 * The publisher's root signs an organisation's **issuing CA certificate** for one product
 * group; the organisation's CA (its private key stays with the organisation) signs one
 * **activation token** per machine (group, hardware reference, validity, serial), carrying its
 * CA certificate; it revokes tokens with a **CRL** (signed list of serials). A client verifies
 * token → CA certificate → pinned root offline. All three are files an IT pro carries into the
 * isolated network.
 */
export const MAX_TOKEN_CA_CERTIFICATE_CHARS = 8_192;
export const MAX_TOKEN_CHARS = 12_288;
export const MAX_CRL_SERIALS = 50_000;
export const MAX_CRL_CHARS = 8_192 + 40 * MAX_CRL_SERIALS;

export const tokenCaCertificateSchema = z
  .object({
    format: z.literal('volact-token-ca/1'),
    serial: guidField,
    organisation: labelField,
    group: groupField,
    /** The CA's Ed25519 public key (raw, base64). */
    publicKey: publicKeyField,
    notBefore: z.iso.datetime(),
    notAfter: z.iso.datetime(),
    issuer: issuerField,
    signature: signatureField,
  })
  .strict();

export const activationTokenSchema = z
  .object({
    format: z.literal('volact-activation-token/1'),
    serial: guidField,
    group: groupField,
    hardwareRef: hardwareRefField,
    notBefore: z.iso.datetime(),
    notAfter: z.iso.datetime(),
    /**
     * Signed: the token licenses only while a CRL of its CA is installed. Without it, deleting
     * the CRL from a client's store would un-revoke the token.
     */
    crlRequired: z.literal(true).optional(),
    caCertificate: tokenCaCertificateSchema,
    signature: signatureField,
  })
  .strict();

export const tokenCrlSchema = z
  .object({
    format: z.literal('volact-token-crl/1'),
    issuedAt: z.iso.datetime(),
    /** When the CA means to publish the next one; a client keeps using this one after it (see docs/client.md). */
    nextUpdate: z.iso.datetime(),
    revoked: z.array(guidField).max(MAX_CRL_SERIALS),
    caCertificate: tokenCaCertificateSchema,
    signature: signatureField,
  })
  .strict();

export type TokenCaCertificate = z.infer<typeof tokenCaCertificateSchema>;
export type ActivationToken = z.infer<typeof activationTokenSchema>;
export type TokenCrl = z.infer<typeof tokenCrlSchema>;

const CA_CONTEXT = 'volact/token-ca/v1\0';
const TOKEN_CONTEXT = 'volact/activation-token/v1\0';
const CRL_CONTEXT = 'volact/token-crl/v1\0';

function caBytes(c: Omit<TokenCaCertificate, 'format' | 'signature'>): Buffer {
  return signedPayload(CA_CONTEXT, [
    c.serial,
    c.organisation,
    c.group.id,
    c.group.name,
    c.publicKey,
    c.notBefore,
    c.notAfter,
    c.issuer,
  ]);
}

function tokenBytes(t: Omit<ActivationToken, 'format' | 'signature'>): Buffer {
  return signedPayload(TOKEN_CONTEXT, [
    t.serial,
    t.group.id,
    t.group.name,
    t.hardwareRef,
    t.notBefore,
    t.notAfter,
    t.caCertificate.serial,
    t.caCertificate.signature,
    // Appended only when set, so tokens issued before the field existed keep verifying.
    ...(t.crlRequired ? ['crl-required'] : []),
  ]);
}

function crlBytes(c: Omit<TokenCrl, 'format' | 'signature'>): Buffer {
  return signedPayload(CRL_CONTEXT, [c.issuedAt, c.nextUpdate, c.revoked, c.caCertificate.publicKey]);
}

const iso = (ms: number) => new Date(ms).toISOString();
const b64 = (s: string) => Buffer.from(s, 'base64');

/** The authority's side: certify an organisation's issuing CA key for one group. */
export function signTokenCaCertificate(
  fields: {
    serial: string;
    organisation: string;
    group: { id: string; name: string };
    publicKeyRaw: Buffer;
    notBefore: number;
    notAfter: number;
  },
  root: Signer,
): TokenCaCertificate {
  const body = {
    serial: fields.serial,
    organisation: fields.organisation.trim(),
    group: { id: fields.group.id, name: fields.group.name },
    publicKey: Buffer.from(fields.publicKeyRaw).toString('base64'),
    notBefore: iso(fields.notBefore),
    notAfter: iso(fields.notAfter),
    issuer: keyFingerprint(root.publicKeyRaw).toString('hex'),
  };
  return tokenCaCertificateSchema.parse({
    format: 'volact-token-ca/1',
    ...body,
    signature: root.sign(caBytes(body)).toString('base64'),
  });
}

/** The organisation's CA: one token for one machine, for the CA's group. */
export function signActivationToken(
  fields: { serial: string; hardwareId: string; notBefore: number; notAfter: number; crlRequired?: boolean },
  caKey: KeyObject,
  caCertificate: TokenCaCertificate,
): ActivationToken {
  const body = {
    serial: fields.serial,
    group: caCertificate.group,
    hardwareRef: hardwareRefOf(fields.hardwareId).toString('hex'),
    notBefore: iso(fields.notBefore),
    notAfter: iso(fields.notAfter),
    ...(fields.crlRequired ? { crlRequired: true as const } : {}),
    caCertificate,
  };
  return activationTokenSchema.parse({
    format: 'volact-activation-token/1',
    ...body,
    signature: signMessage(caKey, tokenBytes(body)).toString('base64'),
  });
}

/** The organisation's CA: the list of serials it revoked (sorted, without repeats). */
export function signTokenCrl(
  fields: { issuedAt: number; nextUpdate: number; revoked: readonly string[] },
  caKey: KeyObject,
  caCertificate: TokenCaCertificate,
): TokenCrl {
  const body = {
    issuedAt: iso(fields.issuedAt),
    nextUpdate: iso(fields.nextUpdate),
    revoked: [...new Set(fields.revoked.map((s) => s.toLowerCase()))].sort(),
    caCertificate,
  };
  return tokenCrlSchema.parse({
    format: 'volact-token-crl/1',
    ...body,
    signature: signMessage(caKey, crlBytes(body)).toString('base64'),
  });
}

export function parseTokenCaCertificate(text: string): TokenCaCertificate {
  return parseSignedFile(
    text,
    tokenCaCertificateSchema,
    'token CA certificate',
    'TOKEN_FILE_INVALID',
    MAX_TOKEN_CA_CERTIFICATE_CHARS,
  );
}

export function parseActivationToken(text: string): ActivationToken {
  return parseSignedFile(text, activationTokenSchema, 'activation token', 'TOKEN_FILE_INVALID', MAX_TOKEN_CHARS);
}

export function parseTokenCrl(text: string): TokenCrl {
  return parseSignedFile(text, tokenCrlSchema, 'CRL', 'TOKEN_FILE_INVALID', MAX_CRL_CHARS);
}

/**
 * A token CA's identity as a client keeps it (its CRL and the serials seen revoked are kept per
 * CA): SHA-256 of the CA's raw public key, hex. The same key certified twice is the same CA.
 */
export function tokenCaFingerprint(ca: Pick<TokenCaCertificate, 'publicKey'>): string {
  return sha256(b64(ca.publicKey)).toString('hex');
}

/** True when the root signed exactly this CA certificate. */
export function tokenCaSignatureValid(c: TokenCaCertificate, rootPublicKey: KeyObject): boolean {
  return verifyMessage(rootPublicKey, caBytes(c), b64(c.signature));
}

export type TokenCheckCode =
  | 'TOKEN_CA_UNTRUSTED'
  | 'TOKEN_INVALID'
  | 'TOKEN_GROUP_MISMATCH'
  | 'TOKEN_HARDWARE_MISMATCH'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_REVOKED'
  | 'TOKEN_CRL_REQUIRED';

export type TokenCheck =
  | { ok: true; serial: string; organisation: string; validFrom: number; validUntil: number }
  | { ok: false; code: TokenCheckCode; message: string };

/**
 * The checks a token must pass on a machine, in order (the first failing decides): its CA
 * certificate is the root's, the token the CA's, for this product's group, for this machine's
 * hardware, within its validity and its CA's (only with `now`: the client applies time itself
 * at each read), and not revoked by `crl` (a CRL of the same CA, already checked with
 * checkTokenCrl). `validUntil` is the earlier of the token's and the CA certificate's ends.
 */
export function checkActivationToken(
  token: ActivationToken,
  expect: {
    rootPublicKey: KeyObject;
    groupId: string;
    groupName: string;
    hardwareId: string;
    now?: number;
    maxClockSkew?: number;
    crl?: TokenCrl | null;
  },
): TokenCheck {
  const ca = token.caCertificate;
  if (!tokenCaSignatureValid(ca, expect.rootPublicKey)) {
    return {
      ok: false,
      code: 'TOKEN_CA_UNTRUSTED',
      message: `the issuing CA of "${ca.organisation}" is not certified by this product's authority`,
    };
  }
  if (!verifyMessage(publicKeyFromRaw(b64(ca.publicKey)), tokenBytes(token), b64(token.signature))) {
    return {
      ok: false,
      code: 'TOKEN_INVALID',
      message: `token ${token.serial} is not signed by the CA it names (${ca.organisation}): altered, or issued by another CA`,
    };
  }
  if (token.group.id !== ca.group.id || ca.group.id !== expect.groupId) {
    return {
      ok: false,
      code: 'TOKEN_GROUP_MISMATCH',
      message: `token ${token.serial} is for ${token.group.name} (CA certified for ${ca.group.name}), not ${expect.groupName}`,
    };
  }
  if (token.hardwareRef !== hardwareRefOf(expect.hardwareId).toString('hex')) {
    return {
      ok: false,
      code: 'TOKEN_HARDWARE_MISMATCH',
      message: `token ${token.serial} was issued for other hardware than this machine's`,
    };
  }
  const validFrom = Math.max(Date.parse(token.notBefore), Date.parse(ca.notBefore));
  const validUntil = Math.min(Date.parse(token.notAfter), Date.parse(ca.notAfter));
  if (expect.now !== undefined) {
    const skew = expect.maxClockSkew ?? 0;
    if (expect.now + skew < validFrom || expect.now >= validUntil) {
      return {
        ok: false,
        code: 'TOKEN_EXPIRED',
        message: `token ${token.serial} is valid from ${iso(validFrom)} to ${iso(validUntil)} (token and its CA certificate); now is ${iso(expect.now)}`,
      };
    }
  }
  if (expect.crl && expect.crl.caCertificate.publicKey === ca.publicKey && expect.crl.revoked.includes(token.serial)) {
    return {
      ok: false,
      code: 'TOKEN_REVOKED',
      message: `token ${token.serial} is revoked by the CRL of ${expect.crl.issuedAt}`,
    };
  }
  if (token.crlRequired && expect.crl?.caCertificate.publicKey !== ca.publicKey) {
    return {
      ok: false,
      code: 'TOKEN_CRL_REQUIRED',
      message: `token ${token.serial} requires a CRL of ${ca.organisation}'s CA and none is installed: \`volact client install-crl FILE\``,
    };
  }
  return { ok: true, serial: token.serial, organisation: ca.organisation, validFrom, validUntil };
}

export type CrlCheck = { ok: true } | { ok: false; code: 'TOKEN_CA_UNTRUSTED' | 'CRL_INVALID'; message: string };

/** A CRL applies when its CA certificate is the root's, for this group, and the CA signed it. */
export function checkTokenCrl(crl: TokenCrl, expect: { rootPublicKey: KeyObject; groupId: string }): CrlCheck {
  const ca = crl.caCertificate;
  if (!tokenCaSignatureValid(ca, expect.rootPublicKey) || ca.group.id !== expect.groupId) {
    return {
      ok: false,
      code: 'TOKEN_CA_UNTRUSTED',
      message: `the CRL's CA (${ca.organisation}, ${ca.group.name}) is not certified for this product by its authority`,
    };
  }
  if (!verifyMessage(publicKeyFromRaw(b64(ca.publicKey)), crlBytes(crl), b64(crl.signature))) {
    return { ok: false, code: 'CRL_INVALID', message: `the CRL of ${crl.issuedAt} is not signed by its CA (altered)` };
  }
  if (Date.parse(crl.nextUpdate) < Date.parse(crl.issuedAt)) {
    return { ok: false, code: 'CRL_INVALID', message: 'the CRL says its next update comes before it was issued' };
  }
  return { ok: true };
}
