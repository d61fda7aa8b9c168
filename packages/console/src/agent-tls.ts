import type { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  TlsMaterialError,
  checkCertificateAndKey,
  checkCertificateAuthorities,
  systemClock,
  writeFileAtomic,
  type Clock,
} from '@volact/core';
import { ConsoleError } from './errors.js';
import { KEY_FILE } from './secrets.js';

/**
 * What the console needs to call agents over mutual TLS (PEM text): the CA the agents'
 * certificates chain to (it replaces the system's CAs for https:// agent addresses), and the
 * console's client certificate and key, shown to agents started with `--client-ca`.
 */
export interface AgentTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** The files of the console's agent TLS in its data directory (each 0600). */
export const AGENT_TLS_FILES = { ca: 'agent-ca.pem', cert: 'agent-client.pem', key: 'agent-client.key' } as const;

/** What `installAgentTls` installed, to show (never the key). */
export interface AgentTlsSummary {
  /** The client certificate's subject and issuer (`CN=…` lines as node:crypto prints them). */
  readonly subject: string;
  readonly issuer: string;
  /** SHA-256 fingerprint of the client certificate, `AB:CD:…` (what agents log). */
  readonly fingerprint: string;
  readonly validTo: string;
  /** The client certificate is past its validTo: agents will refuse it (installed anyway). */
  readonly expired: boolean;
  /** How many CA certificates agent-ca.pem holds. */
  readonly caCertificates: number;
  readonly files: { readonly ca: string; readonly cert: string; readonly key: string };
}

/** RFC 5280 §4.2.1.12: id-kp-clientAuth, and anyExtendedKeyUsage. */
const CLIENT_AUTH = ['1.3.6.1.5.5.7.3.2', '2.5.29.37.0'];

/**
 * The files' problems have no code of their own yet: KEY_FILE_INVALID (a key file of the
 * console's data dir is unreadable or invalid), the message naming the file and the fault.
 */
const invalid = (message: string) => new ConsoleError('KEY_FILE_INVALID', message);
const reason = (err: unknown) => ((err as Error).message || 'unreadable').slice(0, 200);

/**
 * The ordered checks of the PEMs (the first failing one decides): the CA file holds
 * certificates that parse; the client certificate parses; the key parses (unencrypted); the key
 * is the certificate's; the certificate may be used for client authentication.
 */
function check(pem: AgentTls, names: AgentTls, now: number): Omit<AgentTlsSummary, 'files'> {
  let caCertificates: number;
  let certificate: X509Certificate;
  try {
    caCertificates = checkCertificateAuthorities(pem.ca, names.ca);
    certificate = checkCertificateAndKey(pem.cert, pem.key, names);
  } catch (err) {
    if (err instanceof TlsMaterialError) throw invalid(err.message);
    throw err;
  }
  const usages = certificate.keyUsage as string[] | undefined;
  if (usages && usages.length > 0 && !usages.some((oid) => CLIENT_AUTH.includes(oid))) {
    throw invalid(
      `${names.cert} is not for client authentication (its extendedKeyUsage lacks clientAuth): agents would refuse it`,
    );
  }
  const validTo = new Date(certificate.validTo);
  return {
    subject: certificate.subject,
    issuer: certificate.issuer,
    fingerprint: certificate.fingerprint256,
    validTo: validTo.toISOString(),
    expired: validTo.getTime() < now,
    caCertificates,
  };
}

function readPem(file: string, name: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw invalid(`${name} cannot be read (${(err as NodeJS.ErrnoException).code ?? reason(err)})`);
  }
}

/**
 * Validates the agent CA, the console's client certificate and its key, then copies them into
 * the console's data directory (AGENT_TLS_FILES, 0600; each written whole, then renamed), in
 * place of any installed before. Nothing is copied when a check fails. The key is never shown.
 * `clock` decides whether the client certificate has expired (the summary says so).
 */
export function installAgentTls(
  dataDir: string,
  files: { caFile: string; certFile: string; keyFile: string },
  clock: Clock = systemClock,
): AgentTlsSummary {
  if (!existsSync(join(dataDir, KEY_FILE))) {
    throw new ConsoleError(
      'CONSOLE_NOT_INITIALISED',
      `no console in ${dataDir}: run \`volact console init --data-dir ${dataDir}\` first`,
    );
  }
  const names = { ca: `--ca ${files.caFile}`, cert: `--cert ${files.certFile}`, key: `--key ${files.keyFile}` };
  const pem = {
    ca: readPem(files.caFile, names.ca),
    cert: readPem(files.certFile, names.cert),
    key: readPem(files.keyFile, names.key),
  };
  const summary = check(pem, names, clock.now());
  const paths = {
    ca: join(dataDir, AGENT_TLS_FILES.ca),
    cert: join(dataDir, AGENT_TLS_FILES.cert),
    key: join(dataDir, AGENT_TLS_FILES.key),
  };
  for (const part of ['ca', 'cert', 'key'] as const) {
    writeFileAtomic(paths[part], pem[part]); // whole, fsynced, 0600; a full disk leaves the old file
  }
  return { ...summary, files: paths };
}

/**
 * The console's agent TLS, read and checked once (at open): undefined when none is installed.
 * A partial or altered set is an error naming the file, not a silent fallback to no TLS.
 */
export function loadAgentTls(dataDir: string, clock: Clock = systemClock): AgentTls | undefined {
  const paths = {
    ca: join(dataDir, AGENT_TLS_FILES.ca),
    cert: join(dataDir, AGENT_TLS_FILES.cert),
    key: join(dataDir, AGENT_TLS_FILES.key),
  };
  const present = (['ca', 'cert', 'key'] as const).filter((part) => existsSync(paths[part]));
  if (present.length === 0) return undefined;
  if (present.length < 3) {
    const missing = (['ca', 'cert', 'key'] as const).filter((part) => !present.includes(part));
    throw invalid(
      `${dataDir} holds ${present.map((p) => AGENT_TLS_FILES[p]).join(', ')} but not ${missing.map((p) => AGENT_TLS_FILES[p]).join(', ')}: install the three again with \`volact console agent-tls\``,
    );
  }
  const pem = {
    ca: readPem(paths.ca, paths.ca),
    cert: readPem(paths.cert, paths.cert),
    key: readPem(paths.key, paths.key),
  };
  check(pem, paths, clock.now());
  return pem;
}
