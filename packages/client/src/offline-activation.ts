import type { KeyObject } from 'node:crypto';
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
  type TokenCrl,
} from '@volact/core';
import type { ClientErrorCode } from './errors.js';

/**
 * OEM markers, activation tokens and CRLs as the client reads them: files carried in, checked
 * against the pinned root with no network. Each check returns the client's code for the first
 * failing step (the order is in core: oem.ts, activation-token.ts).
 */
export interface OfflineContext {
  readonly rootPublicKey: KeyObject;
  readonly groupId: string;
  readonly groupName: string;
  readonly hardwareId: string;
}

type Failure<C extends ClientErrorCode> = { ok: false; code: C; message: string };

export function readOemMarker(text: string, ctx: OfflineContext): OemCheck | Failure<'OEM_MARKER_INVALID'> {
  try {
    return checkOemMarker(parseOemMarker(text), ctx);
  } catch (err) {
    if (err instanceof CoreError) return { ok: false, code: 'OEM_MARKER_INVALID', message: err.message };
    throw err;
  }
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
  const check = checkTokenCrl(crl, ctx);
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
): TokenCheck | Failure<'TOKEN_INVALID'> {
  try {
    return checkActivationToken(parseActivationToken(text), { ...ctx, crl });
  } catch (err) {
    if (err instanceof CoreError) return { ok: false, code: 'TOKEN_INVALID', message: err.message };
    throw err;
  }
}
