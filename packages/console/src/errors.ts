import { VolactError } from '@volact/core';

/**
 * The console's error catalogue. Per-machine results carry these codes, or the agent's own
 * code when an agent refused a call (see `ConsoleError.agentCode`).
 */
export const consoleErrors = {
  CONSOLE_NOT_INITIALISED: 'the data directory holds no console; run `volact console init --data-dir D`',
  CONSOLE_EXISTS: 'the data directory already holds a console (its key file would be lost)',
  KEY_FILE_INVALID: 'console.key is unreadable or not 32 bytes of base64; restore it from the backup of the data dir',
  SECRET_UNREADABLE:
    'a stored key or token does not decrypt under console.key (the key file was replaced or the row altered)',
  ADDRESS_INVALID: 'a machine address is not HOST:PORT, [IPv6]:PORT or http(s)://HOST:PORT',
  RANGE_INVALID: 'a discovery range is malformed or holds more than 1 024 addresses',
  TOKEN_INVALID: "an agent token is shorter than 16 characters (the agent's own minimum)",
  MACHINE_EXISTS: 'a machine with that name or address is already in the console',
  MACHINE_NOT_FOUND: 'no machine with that name or address in the console; `volact console machine list`',
  KEY_INVALID: 'the product key is malformed, mistyped, or of a type this operation cannot use',
  KEY_EXISTS: 'the key (or a key with that name) is already stored',
  KEY_NOT_FOUND: 'no stored key with that name; `volact console key list`, or give the key itself',
  UNAUTHORIZED: "the agent refused the console's token (HTTP 401): the agent runs with another --admin-token-file",
  AGENT_UNREACHABLE: 'nothing answered at the machine address (agent not running, wrong port, firewall)',
  AGENT_TIMEOUT: 'the agent did not answer in time',
  AGENT_BAD_RESPONSE: 'what answered is not a volact agent of API version 1 (not JSON, or fields missing)',
  AGENT_REFUSED: "the agent refused the call; the per-machine result carries the agent's own code",
  PROOF_FAILED:
    "what answered at the machine's address did not prove it holds the console's token for that address (wrong token, enrolled by another console, or a relay); nothing was sent",
  MACHINE_UNTRUSTED:
    'the machine failed its proof once and the console calls it no more; check it, then `volact console machine enrol MACHINE`',
  CONSOLE_DB_INVALID:
    'console.db is empty, not a SQLite database, or damaged; restore it from the backup of the data directory (or `console init` a new console)',
  AUTHORITY_URL_INVALID: 'the --authority URL is not a URL, or plain http:// to another machine (use https://)',
  AUTHORITY_UNREACHABLE: 'the authority did not answer (network, DNS, TLS, or timeout)',
  AUTHORITY_REFUSED: "the authority refused the call; the message carries the authority's code",
  AUTHORITY_BAD_RESPONSE: 'the authority answered something that is not its API (not JSON, or fields missing)',
  PROXY_URL_INVALID: 'the --proxy URL is not http://[user:password@]HOST:PORT',
  PROXY_UNREACHABLE: 'the proxy did not accept a connection or did not answer in time',
  PROXY_AUTH_FAILED: 'the proxy refused the user name and password (HTTP 407)',
  PROXY_REFUSED: 'the proxy refused to forward the request or open the tunnel (another status than 200)',
  NO_CONFIRMATION_STORED:
    "no stored confirmation ID for the machine's current installation ID (key or hardware changed): proxy-activate it",
  REPORT_UNKNOWN: 'the report name is not at-risk, duplicate-cmid, mak-usage, unlicensed or by-authority',
  SECRET_MISSING: 'a key or agent token was imported without its secret: add the key again, or import with secrets',
  IMPORT_INVALID: 'the file is not a volact-console-export/1 file, or a field is wrong (the message names it)',
  IMPORT_TOO_LARGE: 'the export file, or one of its lists, is larger than an import accepts',
  PASSPHRASE_REQUIRED: 'secrets in an export need a --passphrase-file of at least 12 characters',
  PASSPHRASE_WRONG: "the passphrase does not open the export's secrets (or the file was altered); nothing was imported",
  ADMIN_EXISTS: 'a console user with that name already exists',
  ADMIN_NOT_FOUND: 'no console user with that name; `volact console admin add`',
  ADMIN_NAME_INVALID: "an admin name is not 1-64 letters, digits, '.', '_', '@' or '-'",
  ADMIN_PASSWORD_INVALID: 'an admin password is shorter than 12 characters or longer than 1 024',
  DATABASE_URL_INVALID: 'the --db URL is not postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE',
  DATABASE_UNREACHABLE: 'the console database (PostgreSQL) did not accept a connection',
  ADMIN_ROLE_INVALID: 'a console user role is not admin or viewer',
  LAST_ADMIN: 'the last console user with the admin role cannot be removed or made a viewer',
  CONFIRMATION_ID_INVALID:
    'the confirmation ID typed is malformed or a digit group is wrong (the message names the group): read it again',
  PROXY_FILE_INVALID:
    'the file is not a volact installation-ID file or confirmation file of a known version, or a field is wrong (the message names it)',
  PROXY_FILE_TAMPERED:
    'the installation-ID file was edited after the console wrote it (its signature does not verify): collect it again',
  PROXY_FILE_FOREIGN:
    'the file was collected by another console (another console key): apply it on the console that collected it',
  PROXY_FILE_UNKNOWN:
    'this console has no record of the collection the confirmation file answers (collected before a restore, or removed)',
  CONSOLE_SERVED:
    'another `volact console serve` (the message names its pid) serves this data directory: stop it first, or serve another data directory',
} as const;

export type ConsoleErrorCode = keyof typeof consoleErrors;

export class ConsoleError extends VolactError<ConsoleErrorCode> {
  override readonly name = 'ConsoleError';
  constructor(
    code: ConsoleErrorCode,
    message: string,
    /** With AGENT_REFUSED: the agent's own code (NO_MAK_INSTALLED, CONFIRMATION_INVALID, …). */
    readonly agentCode?: string,
  ) {
    super(code, message);
  }

  /** The code a per-machine result shows: the agent's own when it refused, else the console's. */
  get resultCode(): string {
    return this.agentCode ?? this.code;
  }
}
