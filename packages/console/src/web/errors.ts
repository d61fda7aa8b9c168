import { VolactError } from '@volact/core';
import { ConsoleError, type ConsoleErrorCode } from '../errors.js';

/**
 * The web server's own codes (`volact console serve`): the JSON API's errors that are not the
 * console's. Every API error answers `{"error":{"code","message"}}` with the status below.
 */
export const webErrors = {
  LOGIN_FAILED: 'the user name or password is wrong',
  LOGIN_RATE_LIMITED:
    'too many failed logins from this address (wait a minute) or for this account (it backs off: 30 s, doubling, at most 15 minutes)',
  SESSION_REQUIRED: 'no session, or it expired (30 minutes idle): log in again',
  CSRF_HEADER_MISSING: 'a request that changes something needs the header X-Volact-Request: 1',
  ORIGIN_REFUSED: 'the request comes from another origin than the console',
  CONTENT_TYPE_INVALID: 'a request body must be Content-Type: application/json',
  BODY_TOO_LARGE:
    'the request body is larger than 64 KiB (64 MiB for an upload: import, confirm-file, apply-confirmations)',
  BODY_INVALID: 'the request body is not JSON, or a field is wrong (the message names it)',
  QUERY_INVALID: 'a query parameter is wrong (the message names it)',
  NOT_FOUND: 'no such API route or file',
  METHOD_NOT_ALLOWED: 'the route does not take this HTTP method',
  JOB_RUNNING: 'another bulk job is running on this console: wait for it to finish',
  JOB_NOT_FOUND: 'no job with that id (jobs are kept in memory, the last 50)',
  AUTHORITY_NOT_CONFIGURED: 'reading MAK counters needs the server started with --authority and --admin-token-file',
  ASSETS_NOT_BUILT: 'the web assets are not built: run npm run build',
  INTERNAL: 'an unexpected error in the console server (see its log)',
  ROLE_FORBIDDEN: 'a viewer may look but not change anything: ask a console admin',
} as const;

export type WebErrorCode = keyof typeof webErrors;

export class WebError extends VolactError<WebErrorCode> {
  override readonly name = 'WebError';
  constructor(
    code: WebErrorCode,
    message: string,
    /** Extra headers for the answer (Retry-After, Allow). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(code, message);
  }
}

/**
 * Every code the API can answer with, to its HTTP status: one table, exhaustive by its type, so
 * that a code added to either catalogue without a status here does not compile (it would
 * otherwise be answered as 500). The console's own failures that are not the caller's fault
 * (its database, its key file, an agent) stay 500 or 502.
 */
export const HTTP_STATUS: Readonly<Record<ConsoleErrorCode | WebErrorCode, number>> = {
  LOGIN_FAILED: 401,
  LOGIN_RATE_LIMITED: 429,
  SESSION_REQUIRED: 401,
  CSRF_HEADER_MISSING: 403,
  ORIGIN_REFUSED: 403,
  CONTENT_TYPE_INVALID: 415,
  BODY_TOO_LARGE: 413,
  BODY_INVALID: 400,
  QUERY_INVALID: 400,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  JOB_RUNNING: 409,
  JOB_NOT_FOUND: 404,
  AUTHORITY_NOT_CONFIGURED: 409,
  ASSETS_NOT_BUILT: 500,
  INTERNAL: 500,
  ROLE_FORBIDDEN: 403,
  ADMIN_ROLE_INVALID: 400,
  LAST_ADMIN: 409,
  CONFIRMATION_ID_INVALID: 400,
  PROXY_FILE_INVALID: 400,
  PROXY_FILE_TAMPERED: 400,
  PROXY_FILE_FOREIGN: 400,
  PROXY_FILE_UNKNOWN: 404,

  MACHINE_NOT_FOUND: 404,
  KEY_NOT_FOUND: 404,
  REPORT_UNKNOWN: 404,
  ADMIN_NOT_FOUND: 404,
  MACHINE_EXISTS: 409,
  KEY_EXISTS: 409,
  ADMIN_EXISTS: 409,
  ADDRESS_INVALID: 400,
  RANGE_INVALID: 400,
  TOKEN_INVALID: 400,
  KEY_INVALID: 400,
  AUTHORITY_URL_INVALID: 400,
  PROXY_URL_INVALID: 400,
  ADMIN_NAME_INVALID: 400,
  ADMIN_PASSWORD_INVALID: 400,
  IMPORT_INVALID: 400,
  IMPORT_TOO_LARGE: 413,
  PASSPHRASE_REQUIRED: 400,
  PASSPHRASE_WRONG: 400,
  DATABASE_URL_INVALID: 400,
  AUTHORITY_UNREACHABLE: 502,
  AUTHORITY_REFUSED: 502,
  AUTHORITY_BAD_RESPONSE: 502,
  PROXY_UNREACHABLE: 502,
  PROXY_AUTH_FAILED: 502,
  PROXY_REFUSED: 502,
  // Per-machine failures normally travel inside a job's results; thrown alone, the machine is at fault.
  UNAUTHORIZED: 502,
  AGENT_UNREACHABLE: 502,
  AGENT_TIMEOUT: 504,
  AGENT_BAD_RESPONSE: 502,
  AGENT_REFUSED: 502,
  PROOF_FAILED: 502,
  MACHINE_UNTRUSTED: 409,
  NO_CONFIRMATION_STORED: 409,
  SECRET_MISSING: 409,
  // The console's own state: the operator must repair it, not the caller.
  CONSOLE_NOT_INITIALISED: 500,
  CONSOLE_EXISTS: 500,
  CONSOLE_SERVED: 500,
  KEY_FILE_INVALID: 500,
  SECRET_UNREADABLE: 500,
  CONSOLE_DB_INVALID: 500,
  DATABASE_UNREACHABLE: 503,
};

/** The status and body of an error answer; anything unexpected is INTERNAL, its text not shown. */
export function errorAnswer(err: unknown): {
  status: number;
  body: { error: { code: string; message: string } };
  headers: Readonly<Record<string, string>>;
} {
  if (err instanceof WebError) {
    return {
      status: HTTP_STATUS[err.code],
      body: { error: { code: err.code, message: err.message } },
      headers: err.headers,
    };
  }
  if (err instanceof ConsoleError) {
    return {
      status: HTTP_STATUS[err.code],
      body: { error: { code: err.code, message: err.message } },
      headers: {},
    };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: webErrors.INTERNAL } }, headers: {} };
}
