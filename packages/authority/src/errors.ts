import { VolactError } from '@volact/core';

/** The authority's error catalogue: stable code → HTTP status and what it means. */
export const authorityErrors = {
  AUTHORITY_EXISTS: { status: 409, meaning: 'the data directory already holds an authority' },
  AUTHORITY_NOT_INITIALISED: {
    status: 500,
    meaning: 'the data directory holds no authority; run `volact authority init`',
  },
  GROUP_INVALID: { status: 400, meaning: 'a product group name, kind or threshold is invalid' },
  GROUP_EXISTS: { status: 409, meaning: 'a product group with that name exists' },
  GROUP_NOT_FOUND: { status: 404, meaning: 'no product group has that name or id' },
  KEY_MALFORMED: { status: 400, meaning: 'the text is not a product key' },
  KEY_CHECKSUM_FAILED: { status: 400, meaning: 'the key has a mistyped character' },
  KEY_WRONG_TYPE: { status: 400, meaning: 'the key is of another type than the call needs' },
  KEY_NOT_FOUND: { status: 404, meaning: 'the key is well-formed but this authority never minted it' },
  KEY_REVOKED: { status: 403, meaning: 'the key was revoked by the publisher' },
  KEY_LIMIT_BELOW_USED: { status: 409, meaning: 'a key limit cannot go below the activations already made' },
  MAK_LIMIT_REACHED: {
    status: 403,
    meaning: 'the MAK has activated as many installations as it may; nothing was used (raise the limit)',
  },
  RETAIL_ALREADY_ACTIVATED: {
    status: 403,
    meaning:
      'the retail key is activated on another installation (one key, one installation); the same one re-activates free',
  },
  IID_INVALID: {
    status: 400,
    meaning:
      'the installation ID is malformed: wrong digit count, a group failing its check digit (named), or not a volact IID',
  },
  IID_KEY_MISMATCH: { status: 400, meaning: 'the installation ID was not made with this key (or was misread)' },
  GROUP_MISMATCH: { status: 403, meaning: "the key activates another product group than the installation's" },
  HOST_LIMIT_REACHED: { status: 403, meaning: 'the KMS host key has activated as many hosts as it may' },
  HOST_REACTIVATION_LIMIT_REACHED: {
    status: 403,
    meaning: 'this host has re-activated the KMS host key as often as it may',
  },
  ADMIN_DISABLED: { status: 403, meaning: 'the admin API is off: the authority was started without an admin token' },
  UNAUTHORIZED: { status: 401, meaning: 'the admin call has no or a wrong bearer token' },
  RATE_LIMITED: { status: 429, meaning: 'too many activation requests from this address or for this key; retry later' },
  REQUEST_INVALID: { status: 400, meaning: 'the request body does not match the API' },
  NOT_FOUND: { status: 404, meaning: 'no such API route' },
  STORE_UNAVAILABLE: {
    status: 503,
    meaning:
      'the authority cannot reach its database (PostgreSQL down or restarting, SQLite locked); nothing was decided: retry after Retry-After (CLI exit 3)',
  },
  STORE_DAMAGED: {
    status: 500,
    meaning:
      'authority.db is not a readable database (garbage, empty, read-only, disk full); the message names the file and the fix',
  },
  AUTHORITY_FILE_DAMAGED: {
    status: 500,
    meaning:
      'root-signing-key.pem, key-hash.secret or authority.json is truncated or damaged: restore it from the backup',
  },
  SIGNER_TOKEN_UNAVAILABLE: {
    status: 503,
    meaning:
      'the PKCS#11 module that holds the root key cannot be loaded, or its token (named by label or slot) is absent: the message names the module path, the token and the fix',
  },
  SIGNER_TOKEN_LOCKED: {
    status: 503,
    meaning:
      'the PKCS#11 token refused the PIN (wrong, locked, expired or not set) or no PIN was given: the message names the slot and the PIN file, never the PIN',
  },
  ROOT_KEY_UNAVAILABLE: {
    status: 500,
    meaning:
      'the root key is not where the authority keeps it (no object of that label/ID in the token, no such key file), or it is not Ed25519',
  },
  ONLINE_KEY_EXPIRED: {
    status: 503,
    meaning:
      'the current online key has ended and this node cannot certify the next (it lacks the current root): names the root and the fix',
  },
  ROOT_ROTATION_OUT_OF_ORDER: {
    status: 409,
    meaning:
      'a root rotation step out of order (prepare, publish, switch, retire): the message names the next step (`nextStep` with --json)',
  },
  DATA_DIR_INSECURE: {
    status: 500,
    meaning: 'the data directory or its files are readable by others and could not be tightened: run the chmod named',
  },
  HOST_REVOKED: {
    status: 403,
    meaning: "the host's key is on the revocation list: it gets no certificate renewal and no host status",
  },
  REVOCATION_SUBJECT_UNKNOWN: {
    status: 404,
    meaning:
      'revoke-host: no KMS host key ID, host certificate serial, host record or host key reference of that value is recorded',
  },
  HOST_CERTIFICATE_INVALID: {
    status: 400,
    meaning: 'the posted host certificate is not one (not base64, wrong length, damaged) or was issued by phone',
  },
  HOST_CERTIFICATE_UNTRUSTED: {
    status: 400,
    meaning: 'the posted host certificate is not signed by a root of this authority',
  },
  HOST_CERTIFICATE_EXPIRED: {
    status: 400,
    meaning: 'the posted host certificate ended more than 7 days ago: the host renews it before asking for a status',
  },
  // The publisher's service (docs/portal.md): organisations, people, tokens, requests, webhooks.
  ORG_NOT_FOUND: {
    status: 404,
    meaning: 'no organisation has that id (or the caller may not see it: another organisation gets 404, not 403)',
  },
  ORG_INVALID: { status: 400, meaning: "an organisation's name, external reference or contacts are invalid" },
  USER_NOT_FOUND: { status: 404, meaning: 'no user has that id or email' },
  USER_EXISTS: { status: 409, meaning: 'a user with that email exists already' },
  USER_INVALID: { status: 400, meaning: "a user's email, name, role or password is invalid (the message names which)" },
  LAST_OWNER: { status: 409, meaning: 'the last publisher owner cannot be removed, disabled or demoted' },
  LOGIN_FAILED: { status: 401, meaning: 'wrong email or password (which one is not said)' },
  LOGIN_THROTTLED: {
    status: 429,
    meaning: 'too many failed sign-ins for this account or from this address; retry after Retry-After',
  },
  SESSION_EXPIRED: { status: 401, meaning: 'the web session ended (signed out, expired or revoked): sign in again' },
  PASSWORD_WRONG: { status: 401, meaning: 'the password re-entered to confirm the action is wrong' },
  SCOPE_MISSING: { status: 403, meaning: 'the token or user lacks the scope the call needs; the message names it' },
  SESSION_REQUIRED: {
    status: 403,
    meaning: 'the call needs a signed-in user (web session) who re-enters the password: API tokens cannot make it',
  },
  TOKEN_NOT_FOUND: { status: 404, meaning: 'no API token has that id' },
  TOKEN_INVALID: { status: 400, meaning: 'a token request asks for an unknown scope or one its creator does not hold' },
  KEY_AMBIGUOUS: {
    status: 409,
    meaning: "several of the organisation's keys end with those five characters: use the key ID",
  },
  KEY_NOT_RECOVERABLE: {
    status: 409,
    meaning: 'the key was minted before keys were kept sealed (it is stored only as a hash): it cannot be shown again',
  },
  RAISE_REQUEST_NOT_FOUND: { status: 404, meaning: 'no limit-raise request has that id' },
  RAISE_REQUEST_INVALID: {
    status: 400,
    meaning: 'a limit-raise request or decision is invalid (the message names the field)',
  },
  RAISE_REQUEST_DECIDED: {
    status: 409,
    meaning: 'the limit-raise request was decided already (by whom and how is in the message); nothing changed',
  },
  WEBHOOK_NOT_FOUND: { status: 404, meaning: 'no webhook endpoint or delivery has that id' },
  WEBHOOK_INVALID: {
    status: 400,
    meaning: 'a webhook endpoint is invalid: its URL must be https (http only to loopback) and its events known',
  },
  PROXY_FILE_INVALID: {
    status: 400,
    meaning:
      "a console's installation-ID file is not volact-iid-file/1, too large, or a field is wrong (the message names it)",
  },
  PROXY_FILE_TAMPERED: {
    status: 400,
    meaning: "a console's installation-ID file was edited after the console wrote it (its signature does not verify)",
  },
  PROXY_FILE_FOREIGN: {
    status: 400,
    meaning:
      "a console's installation-ID file is signed by another console key than the one given (consoleKeyId): nothing was confirmed",
  },
  INTERNAL: { status: 500, meaning: 'an unexpected error; see the authority log' },
} as const;

export type AuthorityErrorCode = keyof typeof authorityErrors;

export class AuthorityError extends VolactError<AuthorityErrorCode> {
  override readonly name = 'AuthorityError';
  /** RATE_LIMITED: when the client may try again (sent as Retry-After). */
  retryAfterSeconds: number | undefined;
  /**
   * The request field the refusal is about (`domain`, `limit`, …): the message speaks the
   * domain's words, and a front end names its own input for that field (the CLI its flag).
   */
  field: string | undefined;
  get httpStatus(): number {
    return authorityErrors[this.code].status;
  }
}

/** A refusal of one field of a request, in the domain's words; a front end adds its own name for the field. */
export function invalidField(
  field: string,
  message: string,
  code: AuthorityErrorCode = 'REQUEST_INVALID',
): AuthorityError {
  const err = new AuthorityError(code, message);
  err.field = field;
  return err;
}
