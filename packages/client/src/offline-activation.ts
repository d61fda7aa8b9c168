import {
  CoreError,
  checkActivationToken,
  checkOemMarker,
  checkTokenCrl,
  parseActivationToken,
  parseOemMarker,
  parseTokenCrl,
  type OemCheck,
  type TokenCheck,
  type TokenCaCertificate,
  type TokenCrl,
} from '@volact/core';
import type { ClientErrorCode } from './errors.js';
import { TRUST_FIX, type ChosenKey, type ClientTrust } from './trust.js';

/**
 * OEM markers, activation tokens and CRLs as the client reads them: files carried in, checked
 * with no network against the root their certificate names (by its issuer and start, through
 * the trust store) and the revocation list held. Each check returns the client's code for the
 * first failing step (the order is in core: oem.ts, activation-token.ts; a revoked manufacturer
 * or CA comes after the signatures).
 */
export interface OfflineContext {
  readonly trust: ClientTrust;
  readonly groupId: string;
  readonly groupName: string;
  readonly hardwareId: string;
}

type Failure<C extends ClientErrorCode> = { ok: false; code: C; message: string };

/** The root that certified an OEM manufacturer or a token CA (its issuer, valid at its notBefore). */
export function certifyingRoot(c: { issuer: string; notBefore: string }, trust: ClientTrust): ChosenKey | null {
  return trust.root(c.issuer, Date.parse(c.notBefore));
}

const untrustedRoot = (c: { issuer: string }) =>
  `its certificate names the root ${c.issuer}, which this installation does not trust at the certificate's start (${TRUST_FIX})`;

export function readOemMarker(
  text: string,
  ctx: OfflineContext,
): OemCheck | Failure<'OEM_MARKER_INVALID' | 'OEM_MANUFACTURER_REVOKED'> {
  try {
    const marker = parseOemMarker(text);
    const cert = marker.certificate;
    const root = certifyingRoot(cert, ctx.trust);
    if (!root) {
      return {
        ok: false,
        code: 'OEM_MANUFACTURER_UNTRUSTED',
        message: `the OEM certificate of "${cert.manufacturer}" is not signed by this product's authority: ${untrustedRoot(cert)}`,
      };
    }
    const check = checkOemMarker(marker, { ...ctx, rootPublicKey: root.key });
    if (!check.ok) return check;
    // Revoked: no marker of it is accepted, whatever its date (the manufacturer's own key signs
    // the marker's issuedAt, and whoever stole that key can backdate it).
    const revoked = ctx.trust.keyRevoked('manufacturer', Buffer.from(cert.publicKey, 'base64'));
    if (revoked) {
      return {
        ok: false,
        code: 'OEM_MANUFACTURER_REVOKED',
        message: `the OEM manufacturer key of "${cert.manufacturer}" was revoked by the publisher on ${new Date(revoked.revokedAt).toISOString()}: this marker no longer licenses (the manufacturer issues a new one under a new key)`,
      };
    }
    return check;
  } catch (err) {
    if (err instanceof CoreError) return { ok: false, code: 'OEM_MARKER_INVALID', message: err.message };
    throw err;
  }
}

/** A token CA on the held revocation list, as the failure a token or CRL check returns. */
function caRevoked(ca: TokenCaCertificate, trust: ClientTrust): Failure<'TOKEN_CA_REVOKED'> | null {
  const revoked = trust.keyRevoked('tokenCa', Buffer.from(ca.publicKey, 'base64'));
  return revoked
    ? {
        ok: false,
        code: 'TOKEN_CA_REVOKED',
        message: `the token CA of "${ca.organisation}" was revoked by the publisher on ${new Date(revoked.revokedAt).toISOString()}: its tokens no longer license (the organisation gets a new CA certificate)`,
      }
    : null;
}

export type CrlRead = { ok: true; crl: TokenCrl } | Failure<'CRL_INVALID' | 'TOKEN_CA_UNTRUSTED'>;

export function readCrl(text: string, ctx: OfflineContext): CrlRead {
  let crl: TokenCrl;
  try {
    crl = parseTokenCrl(text);
  } catch (err) {
    if (err instanceof CoreError) return { ok: false, code: 'CRL_INVALID', message: err.message };
    throw err;
  }
  const root = certifyingRoot(crl.caCertificate, ctx.trust);
  if (!root) {
    return {
      ok: false,
      code: 'TOKEN_CA_UNTRUSTED',
      message: `the CRL's CA (${crl.caCertificate.organisation}) is not certified by this product's authority: ${untrustedRoot(crl.caCertificate)}`,
    };
  }
  const check = checkTokenCrl(crl, { rootPublicKey: root.key, groupId: ctx.groupId });
  return check.ok ? { ok: true, crl } : check;
}

/**
 * A token with the installed CRL (null: none). `now` applies the time rule (at install and at an
 * attempt); without it only the signatures, group, hardware and revocation are checked.
 */
export function readToken(
  text: string,
  crl: TokenCrl | null,
  ctx: OfflineContext & { now?: number; maxClockSkew?: number },
): TokenCheck | Failure<'TOKEN_INVALID' | 'TOKEN_CA_REVOKED'> {
  try {
    const token = parseActivationToken(text);
    const ca = token.caCertificate;
    const root = certifyingRoot(ca, ctx.trust);
    if (!root) {
      return {
        ok: false,
        code: 'TOKEN_CA_UNTRUSTED',
        message: `the issuing CA of "${ca.organisation}" is not certified by this product's authority: ${untrustedRoot(ca)}`,
      };
    }
    const check = checkActivationToken(token, { ...ctx, rootPublicKey: root.key, crl });
    // Revoked: none of its tokens is accepted, whatever its dates (the CA's key signs them).
    if (!check.ok && check.code !== 'TOKEN_REVOKED' && check.code !== 'TOKEN_CRL_REQUIRED') return check;
    return caRevoked(ca, ctx.trust) ?? check;
  } catch (err) {
    if (err instanceof CoreError) return { ok: false, code: 'TOKEN_INVALID', message: err.message };
    throw err;
  }
}
