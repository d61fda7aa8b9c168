import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { TlsMaterialError, checkCertificateAndKey, checkCertificateAuthorities } from '@volact/core';
import { ClientError } from './errors.js';

/**
 * The agent's TLS material, PEM. With `clientCa` the agent asks every console for a client
 * certificate and drops a connection without one signed by that CA (mutual TLS).
 */
export interface AgentTlsOptions {
  /** The agent's certificate (its chain may follow), for the address consoles call. */
  readonly cert: string | Buffer;
  /** The private key of `cert` (unencrypted PEM). */
  readonly key: string | Buffer;
  /** The CA certificate(s) a console's client certificate must chain to: mTLS. */
  readonly clientCa?: string | Buffer;
}

/** What the agent's certificate says, for its start line (and a warning when expired). */
export interface AgentTlsSummary {
  readonly subject: string;
  readonly fingerprint: string;
  readonly validFrom: string;
  readonly validTo: string;
}

/** A verified client certificate (mTLS): what the log and the probe show of a console. */
export interface AgentClientIdentity {
  /** The subject's common name (CN), bounded; '' when it has none. */
  readonly subject: string;
  /** SHA-256 fingerprint, `AB:CD:…` as openssl prints it. */
  readonly fingerprint: string;
}

/**
 * Checks the agent's TLS material before it serves: each PEM parses, and the key is the
 * certificate's. `names` label the parts in messages (the CLI passes its flags and files).
 * Throws AGENT_TLS_INVALID naming the part.
 */
export function checkAgentTls(
  tls: AgentTlsOptions,
  names: { cert: string; key: string; clientCa: string } = {
    cert: 'tls.cert',
    key: 'tls.key',
    clientCa: 'tls.clientCa',
  },
): AgentTlsSummary {
  let certificate: X509Certificate;
  try {
    certificate = checkCertificateAndKey(tls.cert, tls.key, names);
    if (tls.clientCa !== undefined) checkCertificateAuthorities(tls.clientCa, names.clientCa);
  } catch (err) {
    if (err instanceof TlsMaterialError) throw new ClientError('AGENT_TLS_INVALID', err.message);
    throw err;
  }
  return {
    subject: certificate.subject,
    fingerprint: certificate.fingerprint256,
    validFrom: new Date(certificate.validFrom).toISOString(),
    validTo: new Date(certificate.validTo).toISOString(),
  };
}

/** The verified client certificate of a TLS connection, or null (plain HTTP, none, or not verified). */
export function clientIdentityOf(socket: Socket | undefined): AgentClientIdentity | null {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return null;
  return identityOf(socket.getPeerCertificate());
}

export function identityOf(
  cert: { subject?: { CN?: string | string[] }; fingerprint256?: string } | null,
): AgentClientIdentity | null {
  if (!cert?.fingerprint256) return null;
  const cn = cert.subject?.CN;
  return { subject: (Array.isArray(cn) ? cn.join(',') : (cn ?? '')).slice(0, 200), fingerprint: cert.fingerprint256 };
}
