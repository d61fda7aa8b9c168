import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import { TlsMaterialError, checkCertificateAndKey } from '@volact/core';
import { CliError } from '../output.js';

/** The certificate and key `authority serve` presents, as read from their files. */
export interface ServeTls {
  readonly cert: string;
  readonly key: string;
  /** What the certificate says, for the start line and the reload log. */
  readonly subject: string;
  readonly serialNumber: string;
  readonly fingerprint: string;
  readonly validTo: string;
}

const NOT_PEM = /-----BEGIN [A-Z0-9 ]+-----/;

/** Reads one PEM file; the message names the flag, the file and what is wrong (never the content). */
function readPem(file: string, flag: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TlsMaterialError(
      code === 'ENOENT'
        ? `${flag} ${file} does not exist`
        : code === 'EACCES' || code === 'EPERM'
          ? `${flag} ${file} cannot be read: permission denied (the authority runs as a user that must read it)`
          : code === 'EISDIR'
            ? `${flag} ${file} is a directory, not a PEM file`
            : `${flag} ${file} cannot be read (${code ?? 'unreadable'})`,
    );
  }
  if (!NOT_PEM.test(text)) throw new TlsMaterialError(`${flag} ${file} is not PEM (no -----BEGIN … line): ${what}`);
  return text;
}

/**
 * Reads `--tls-cert` and `--tls-key` and checks them: both exist and are readable, both are
 * PEM, the key is unencrypted and is the certificate's. Throws TlsMaterialError naming the file.
 */
export function loadServeTls(certFile: string, keyFile: string): ServeTls {
  const cert = readPem(certFile, '--tls-cert', 'a certificate (-----BEGIN CERTIFICATE-----) is expected');
  const key = readPem(keyFile, '--tls-key', 'a private key (-----BEGIN PRIVATE KEY-----) is expected');
  const certificate = checkCertificateAndKey(cert, key, {
    cert: `--tls-cert ${certFile}`,
    key: `--tls-key ${keyFile}`,
  });
  return {
    cert,
    key,
    subject: certificate.subject.replace(/\n/g, ', '),
    serialNumber: certificate.serialNumber,
    fingerprint: certificate.fingerprint256,
    validTo: new Date(certificate.validTo).toISOString(),
  };
}

/** loadServeTls at start: a problem stops the command (OPTION_INVALID, the message names the file). */
export function loadServeTlsAtStart(certFile: string | undefined, keyFile: string | undefined): ServeTls | undefined {
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new CliError(
      'OPTION_INVALID',
      `${certFile === undefined ? '--tls-key needs --tls-cert' : '--tls-cert needs --tls-key'}: they go together (neither: plain HTTP)`,
    );
  }
  if (certFile === undefined || keyFile === undefined) return undefined;
  try {
    return loadServeTls(certFile, keyFile);
  } catch (err) {
    if (err instanceof TlsMaterialError) throw new CliError('OPTION_INVALID', err.message);
    throw err;
  }
}

export type { TlsServer };

/**
 * On SIGHUP, re-reads both files and swaps them in with `setSecureContext`: new handshakes get
 * the new certificate, open connections (keep-alive) keep theirs and are not dropped. A file
 * that is missing, not PEM, or a key that does not match keeps the old certificate, and the log
 * says why. A SIGHUP no longer stops the process while this runs. Returns the unsubscribe.
 */
export function reloadTlsOnSighup(server: TlsServer, certFile: string, keyFile: string, logger: Logger): () => void {
  const reload = () => {
    let next: ServeTls;
    try {
      next = loadServeTls(certFile, keyFile);
    } catch (err) {
      if (!(err instanceof TlsMaterialError)) throw err;
      logger.error({ reason: err.message }, 'tls reload refused: the previous certificate is still served');
      return;
    }
    try {
      server.setSecureContext({ cert: next.cert, key: next.key });
    } catch (err) {
      logger.error(
        { reason: (err as Error).message.slice(0, 200) },
        'tls reload refused: the previous certificate is still served',
      );
      return;
    }
    logger.info(
      { subject: next.subject, serialNumber: next.serialNumber, fingerprint: next.fingerprint, validTo: next.validTo },
      'tls certificate reloaded',
    );
  };
  process.on('SIGHUP', reload);
  return () => {
    process.off('SIGHUP', reload);
  };
}

/**
 * Plain HTTP: a SIGHUP (a service manager's reload, a closed terminal) is logged and changes
 * nothing, as with TLS, rather than ending the authority. Returns the unsubscribe.
 */
export function ignoreSighup(logger: Logger): () => void {
  const note = () =>
    logger.info('SIGHUP: nothing to reload (plain HTTP; with --tls-cert and --tls-key both are re-read)');
  process.on('SIGHUP', note);
  return () => {
    process.off('SIGHUP', note);
  };
}

/** Whether a --listen host is this machine only. */
export const isLoopbackHost = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);

/** Names proxy-addr knows for address ranges, accepted as they are. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * `--trust-proxy 10.0.0.5,10.1.0.0/16`: the reverse proxies' addresses or CIDRs (IPv4 or IPv6;
 * also loopback, linklocal, uniquelocal). Comma-separated, given once or several times.
 */
export function parseTrustProxy(values: readonly string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const entries = values.flatMap((v) => v.split(',')).map((v) => v.trim());
  if (entries.length === 0 || entries.some((e) => e === '')) {
    throw new CliError(
      'OPTION_INVALID',
      '--trust-proxy needs addresses or CIDRs separated by commas (e.g. 10.0.0.5,10.1.0.0/16)',
    );
  }
  for (const entry of entries) {
    if (PROXY_RANGE_NAMES.has(entry)) continue;
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const bits = family === 4 ? 32 : 128;
    const prefixOk =
      prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits && extra === undefined);
    if (family === 0 || !prefixOk) {
      throw new CliError(
        'OPTION_INVALID',
        `--trust-proxy "${entry.slice(0, 100)}" is not an IP address or CIDR (e.g. 10.0.0.5, 10.1.0.0/16, ::1, loopback)`,
      );
    }
  }
  return entries;
}
