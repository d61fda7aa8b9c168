import {
  CoreError,
  authorityEndpoint,
  errorReplySchema,
  installationActivationReplySchema,
  readAuthorityReply,
  type InstallationActivationRequestBody,
} from '@volact/core';
import type { ClientErrorCode } from './errors.js';

/**
 * The authority's error codes (its catalogue, packages/authority/src/errors.ts). A refusal of
 * an online activation carries one (MAK_LIMIT_REACHED, RETAIL_ALREADY_ACTIVATED, KEY_REVOKED, …)
 * and the client passes it on unchanged: scripts match on it. Listed here because the client
 * does not depend on the authority package; a test keeps the list equal to the catalogue.
 */
export const AUTHORITY_CODES = [
  'AUTHORITY_EXISTS',
  'AUTHORITY_NOT_INITIALISED',
  'GROUP_INVALID',
  'GROUP_EXISTS',
  'GROUP_NOT_FOUND',
  'KEY_MALFORMED',
  'KEY_CHECKSUM_FAILED',
  'KEY_WRONG_TYPE',
  'KEY_NOT_FOUND',
  'KEY_REVOKED',
  'KEY_LIMIT_BELOW_USED',
  'MAK_LIMIT_REACHED',
  'RETAIL_ALREADY_ACTIVATED',
  'IID_INVALID',
  'IID_KEY_MISMATCH',
  'GROUP_MISMATCH',
  'HOST_LIMIT_REACHED',
  'HOST_REACTIVATION_LIMIT_REACHED',
  'ADMIN_DISABLED',
  'UNAUTHORIZED',
  'RATE_LIMITED',
  'REQUEST_INVALID',
  'NOT_FOUND',
  'STORE_UNAVAILABLE',
  'STORE_DAMAGED',
  'AUTHORITY_FILE_DAMAGED',
  'DATA_DIR_INSECURE',
  'INTERNAL',
  'SIGNER_TOKEN_UNAVAILABLE',
  'SIGNER_TOKEN_LOCKED',
  'ROOT_KEY_UNAVAILABLE',
  'ONLINE_KEY_EXPIRED',
  'ROOT_ROTATION_OUT_OF_ORDER',
  'HOST_REVOKED',
  'REVOCATION_SUBJECT_UNKNOWN',
  'HOST_CERTIFICATE_INVALID',
  'HOST_CERTIFICATE_UNTRUSTED',
  'HOST_CERTIFICATE_EXPIRED',
  'ORG_NOT_FOUND',
  'ORG_INVALID',
  'USER_NOT_FOUND',
  'USER_EXISTS',
  'USER_INVALID',
  'LAST_OWNER',
  'LOGIN_FAILED',
  'LOGIN_THROTTLED',
  'SESSION_EXPIRED',
  'PASSWORD_WRONG',
  'PROXY_FILE_INVALID',
  'PROXY_FILE_TAMPERED',
  'PROXY_FILE_FOREIGN',
  'SCOPE_MISSING',
  'SESSION_REQUIRED',
  'TOKEN_NOT_FOUND',
  'TOKEN_INVALID',
  'KEY_AMBIGUOUS',
  'KEY_NOT_RECOVERABLE',
  'RAISE_REQUEST_NOT_FOUND',
  'RAISE_REQUEST_INVALID',
  'RAISE_REQUEST_DECIDED',
  'WEBHOOK_NOT_FOUND',
  'WEBHOOK_INVALID',
] as const;

export type AuthorityCode = (typeof AUTHORITY_CODES)[number];

const isAuthorityCode = (code: unknown): code is AuthorityCode =>
  typeof code === 'string' && (AUTHORITY_CODES as readonly string[]).includes(code);

/** Why the authority gave no confirmation: the client's own code, or the authority's refusal. */
export type AuthorityRequestFailure = {
  readonly ok: false;
  readonly code:
    | Extract<
        ClientErrorCode,
        'NO_AUTHORITY' | 'AUTHORITY_URL_INSECURE' | 'AUTHORITY_UNREACHABLE' | 'ACTIVATION_UNTRUSTED'
      >
    | AuthorityCode;
  readonly message: string;
};

/**
 * The authority answered with a confirmation (not yet checked: the caller verifies it against
 * the pinned root key, the answer of an impostor is not trusted).
 */
export interface AuthorityConfirmation {
  readonly ok: true;
  /** Where it came from, recorded with the activation. */
  readonly origin: string;
  readonly confirmationId: string;
  /** The trust records the authority hands out with its answer (base64; verified by the caller before use). */
  readonly trust: { readonly transitions: readonly string[]; readonly delegations: readonly string[] };
}

/** The `trust` of an online answer (an authority of an earlier release sends none). */
export function trustOfReply(value: unknown): AuthorityConfirmation['trust'] {
  const t = (value as { trust?: { transitions?: unknown; delegations?: unknown } } | null)?.trust;
  const strings = (v: unknown) =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length <= 400).slice(0, 32) : [];
  return { transitions: strings(t?.transitions), delegations: strings(t?.delegations) };
}

export interface ConfirmationRequest {
  /** The authority's base URL (the product config's, or one given for this attempt). */
  readonly base: string;
  readonly key: string;
  readonly installationId: string;
  readonly groupId: string;
  readonly timeoutMs: number;
}

/**
 * Asks the authority to confirm an installation ID (POST /v1/activations). Expected failures
 * (no route, an insecure URL, no answer, a refusal) are returned, not thrown.
 */
export async function requestConfirmation(
  request: ConfirmationRequest,
): Promise<AuthorityConfirmation | AuthorityRequestFailure> {
  let url: URL;
  try {
    url = authorityEndpoint(request.base, '/v1/activations');
  } catch (err) {
    if (!(err instanceof CoreError)) throw err;
    return {
      ok: false,
      code: err.code === 'URL_INSECURE' ? 'AUTHORITY_URL_INSECURE' : 'NO_AUTHORITY',
      message: err.message,
    };
  }
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        key: request.key,
        installationId: request.installationId,
        groupId: request.groupId,
      } satisfies InstallationActivationRequestBody),
      signal: AbortSignal.timeout(request.timeoutMs),
    });
  } catch (err) {
    const cause =
      (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
    return {
      ok: false,
      code: 'AUTHORITY_UNREACHABLE',
      message: `cannot reach the authority at ${url.origin}: ${cause}`,
    };
  }
  const payload: unknown = await response.json().catch(() => undefined);
  // A refusal's body is read for its code and message only when it is shaped like the authority's.
  const refusal = readAuthorityReply(errorReplySchema, payload);
  const error = refusal.ok ? refusal.value.error : undefined;
  if (response.status === 503) {
    // The authority is up but its database is not (STORE_UNAVAILABLE): nothing was decided; retry.
    return {
      ok: false,
      code: 'AUTHORITY_UNREACHABLE',
      message: `the authority at ${url.origin} cannot decide now (${error?.code ?? 'HTTP 503'}: ${error?.message ?? 'unavailable'}); retry in ${response.headers.get('retry-after')?.slice(0, 10) ?? 'a few'} s`,
    };
  }
  if (!response.ok) {
    // The authority's own code: scripts match on it. A code it does not have (not this
    // publisher's authority, or a proxy's page) is no refusal of the authority.
    if (isAuthorityCode(error?.code)) return { ok: false, code: error.code, message: error.message };
    return {
      ok: false,
      code: 'AUTHORITY_UNREACHABLE',
      message: error?.message ?? `the authority answered HTTP ${response.status}`,
    };
  }
  // Each known field typed and bounded; one the schema does not know (a later /v1 authority's) is
  // dropped, not refused: the confirmation ID is what licenses, and the caller verifies it.
  const reply = readAuthorityReply(installationActivationReplySchema, payload);
  if (!reply.ok) {
    return {
      ok: false,
      code: 'ACTIVATION_UNTRUSTED',
      message: `${url.origin} answered HTTP ${response.status} with a reply that is not a volact authority's activation (${reply.problem}): is it this publisher's authority?`,
    };
  }
  return {
    ok: true,
    origin: url.origin,
    confirmationId: reply.value.confirmationId,
    // Read from the reply as sent (an authority schema without the field would drop it), bounded.
    trust: trustOfReply(payload),
  };
}
