import { Client, ResultCodeError } from 'ldapts';
import { DirectoryError } from './errors.js';

/** How to reach and bind to the directory. Without bindDn and password the bind is anonymous. */
export interface DirectoryConnection {
  /** `ldap://HOST[:PORT]` or `ldaps://HOST[:PORT]` (no DN, attributes or credentials in it). */
  readonly url: string;
  readonly bindDn?: string;
  readonly password?: string;
  /** Connect and per-operation timeout; 10 000 ms by default. */
  readonly timeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 10_000;

/** LDAP result codes (RFC 4511 section 4.1.9) this package gives a meaning to. */
export const LdapResult = {
  referral: 10,
  noSuchObject: 32,
  invalidDNSyntax: 34,
  invalidCredentials: 49,
  insufficientAccessRights: 50,
  unwillingToPerform: 53,
  entryAlreadyExists: 68,
} as const;

/** The LDAP result code of an error ldapts raised for a result, else undefined. */
export function ldapCode(err: unknown): number | undefined {
  return err instanceof ResultCodeError ? err.code : undefined;
}

/**
 * Whether the directory says the DN does not exist: noSuchObject, or a DN outside every naming
 * context it holds (OpenLDAP: unwillingToPerform "no global superior knowledge"; Active
 * Directory and others: a referral to another server).
 */
export function isNoSuchObject(err: unknown): boolean {
  const code = ldapCode(err);
  return (
    code === LdapResult.noSuchObject ||
    code === LdapResult.referral ||
    (code === LdapResult.unwillingToPerform && /no global superior knowledge/i.test((err as Error).message))
  );
}

/**
 * Checks an LDAP URL: scheme ldap or ldaps, a host, an optional port, nothing else (a base DN
 * or credentials in the URL would be ignored or leaked; they have their own settings).
 * The message never repeats a URL that carries a password.
 */
export function checkDirectoryUrl(text: string): string {
  const invalid = (why: string) =>
    new DirectoryError(
      'DIRECTORY_URL_INVALID',
      `${why}; give the directory as ldap://HOST[:PORT] or ldaps://HOST[:PORT] (e.g. ldaps://dc1.corp.example)`,
    );
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(`directory URL ${JSON.stringify(text)} is not a URL`);
  }
  if (url.username || url.password) {
    throw invalid(
      'the directory URL carries credentials (they would be ignored and could be logged): give the bind DN and password separately',
    );
  }
  if (url.protocol !== 'ldap:' && url.protocol !== 'ldaps:') {
    throw invalid(`directory URL ${JSON.stringify(text)} has scheme ${url.protocol.replace(/:$/, '')}`);
  }
  if (!url.hostname) throw invalid(`directory URL ${JSON.stringify(text)} has no host`);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) {
    throw invalid(`directory URL ${JSON.stringify(text)} has a DN or query part (give the base DN separately)`);
  }
  return `${url.protocol}//${url.host}`;
}

/** The directory's own text without ldapts' " Code: 0x.." suffix (it never holds a password). */
function diagnostic(err: ResultCodeError): string {
  return err.message.replace(/\s*Code: 0x[0-9a-f]+$/i, '').trim();
}

/**
 * Maps what ldapts throws to a DirectoryError. Result codes with a meaning that depends on the
 * operation (no such object, already exists) are handled by the callers first; this is the
 * fallback. Anything that is not an LDAP result is a transport failure.
 */
export function toDirectoryError(err: unknown, url: string): DirectoryError {
  if (err instanceof DirectoryError) return err;
  if (err instanceof ResultCodeError) {
    const code = err.code;
    const text = diagnostic(err);
    switch (code) {
      case LdapResult.invalidCredentials:
        return new DirectoryError(
          'DIRECTORY_BIND_FAILED',
          `the directory refused the bind DN/password (LDAP code 49); check the bind DN and the password file`,
          code,
        );
      case LdapResult.insufficientAccessRights:
        return new DirectoryError(
          'DIRECTORY_ACCESS_DENIED',
          `the directory denied the operation to this bind (LDAP code 50: ${text}); bind as an account with write access to the container, or ask the directory administrator to grant it`,
          code,
        );
      case LdapResult.noSuchObject:
      case LdapResult.referral:
        return new DirectoryError(
          'DIRECTORY_BASE_NOT_FOUND',
          `the directory has no such entry (LDAP code ${code}: ${text}); check the base DN, or this bind may not see it`,
          code,
        );
      case LdapResult.invalidDNSyntax:
        return new DirectoryError(
          'DIRECTORY_ERROR',
          `the directory says a DN is not valid (LDAP code 34: ${text}); check the base DN and container`,
          code,
        );
      default:
        if (isNoSuchObject(err)) {
          return new DirectoryError(
            'DIRECTORY_BASE_NOT_FOUND',
            `the DN is outside what the directory holds (LDAP code ${code}: ${text}); check the base DN`,
            code,
          );
        }
        return new DirectoryError('DIRECTORY_ERROR', `the directory answered LDAP code ${code}: ${text}`, code);
    }
  }
  const e = err instanceof Error ? (err as NodeJS.ErrnoException) : undefined;
  const errno = typeof e?.code === 'string' ? e.code : undefined;
  const reason = errno?.startsWith('ERR_SSL_')
    ? errno
    : [errno, (e?.message ?? String(err)).split('\n')[0]].filter(Boolean).join(': ');
  let fix = 'check the host and port, that the LDAP server runs and that no firewall blocks it';
  if (errno && /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME/.test(errno)) {
    fix =
      "the server's TLS certificate is not trusted or not for this host name: add its CA with NODE_EXTRA_CA_CERTS=ca.pem and use the name the certificate carries";
  } else if (errno?.startsWith('ERR_SSL_') || /before secure TLS connection/i.test(e?.message ?? '')) {
    fix = 'the server does not speak TLS on that port: ldaps:// is usually port 636, ldap:// port 389';
  }
  return new DirectoryError('DIRECTORY_UNREACHABLE', `the directory at ${url} could not be used (${reason}); ${fix}`);
}

/**
 * Connects, binds (simple bind, or anonymous without bindDn/password), runs `operation` and
 * always closes the connection. Every failure is a DirectoryError.
 */
export async function withDirectory<T>(
  conn: DirectoryConnection,
  operation: (client: Client) => Promise<T>,
): Promise<T> {
  const url = checkDirectoryUrl(conn.url);
  const timeout = conn.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeout) || timeout <= 0) {
    throw new TypeError(`timeoutMs must be a positive whole number of milliseconds, got ${timeout}`);
  }
  if ((conn.bindDn === undefined) !== (conn.password === undefined) || conn.bindDn === '' || conn.password === '') {
    // An empty password makes an "unauthenticated bind" that many servers accept as anonymous.
    throw new DirectoryError(
      'DIRECTORY_BIND_FAILED',
      'a bind needs both a bind DN and a non-empty password (or neither, for an anonymous bind)',
    );
  }
  const client = new Client({ url, timeout, connectTimeout: timeout });
  try {
    if (conn.bindDn !== undefined && conn.password !== undefined) {
      await client.bind(conn.bindDn, conn.password);
    }
    return await operation(client);
  } catch (err) {
    // A programming error stays what it is; everything else is the directory's or the network's.
    if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError) throw err;
    throw toDirectoryError(err, url);
  } finally {
    await client.unbind().catch(() => undefined);
  }
}
