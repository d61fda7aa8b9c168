import {
  CoreError,
  authorityEndpoint,
  decodeHostCertificate,
  errorReplySchema,
  generateSigningKeyPair,
  hostActivationReplySchema,
  readAuthorityReply,
  systemClock,
  type Clock,
  type HostActivationRequestBody,
} from '@volact/core';
import { KmsHostError } from './errors.js';
import type { HostState } from './host-state.js';
import { refreshHostTrust, type TrustCheck } from './trust-sync.js';

export interface HostActivationOutcome {
  readonly expiresAt: number;
  readonly groups: { id: string; name: string; threshold: number }[];
  readonly hostsUsed: number;
  readonly hostLimit: number;
  /**
   * The trust bundle and host status fetched right after (docs/kms-host.md "Trust and
   * revocation"): what failed there is in `warnings`, the activation stands.
   */
  readonly trust: TrustCheck;
}

/** The fix for a host whose key pair the authority revoked (logs, `host status`, refusals). */
export function newKeyPairFix(dataDir: string, authorityUrl?: string): string {
  return `make a new host key pair and activate it: \`volact host activate --new-key-pair --data-dir ${dataDir} --authority ${authorityUrl ?? 'URL'}\` (keeps the host key, the client-ID window and its counts), then restart \`volact host serve\``;
}

/**
 * Activates the installed host key online: sends the key, the host's public key and its
 * hardware id to the authority and stores the certificate it returns. Sends nothing about
 * clients (the reference: client IDs are never transmitted).
 *
 * `newKeyPair`: a fresh host key pair is made and certified instead of the one held (the
 * authority revoked it: HOST_REVOKED names the key pair, not the host key). It replaces
 * host-signing-key.pem only once the authority certified it; host.db is untouched.
 */
export async function activateHostOnline(
  state: HostState,
  authorityUrl: string,
  options: { clock?: Clock; timeoutMs?: number; newKeyPair?: boolean } = {},
): Promise<HostActivationOutcome> {
  const clock = options.clock ?? systemClock;
  const pair = options.newKeyPair ? generateSigningKeyPair() : state.signingKey();
  let url: URL;
  try {
    url = authorityEndpoint(authorityUrl, '/v1/host-activations');
  } catch (err) {
    if (!(err instanceof CoreError)) throw err;
    throw new KmsHostError(err.code === 'URL_INSECURE' ? 'AUTHORITY_URL_INSECURE' : 'HOST_CONFIG_INVALID', err.message);
  }
  const body: HostActivationRequestBody = {
    hostKey: state.hostKey,
    hostPublicKey: pair.publicKeyRaw.toString('base64'),
    hardwareId: state.hardwareId,
  };
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
  } catch (err) {
    throw new KmsHostError(
      'AUTHORITY_UNREACHABLE',
      `cannot reach the authority at ${url.origin}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
    );
  }
  const payload: unknown = await response.json().catch(() => undefined);
  // A refusal's body is read only for its code and message; one that is not the authority's is named by its status.
  const refusal = readAuthorityReply(errorReplySchema, payload);
  const error = refusal.ok ? refusal.value.error : undefined;
  if (response.status === 503) {
    // The authority is up but its database is not (STORE_UNAVAILABLE): nothing was decided; retry.
    throw new KmsHostError(
      'AUTHORITY_UNREACHABLE',
      `the authority at ${url.origin} cannot decide now (${error?.code ?? 'HTTP 503'}: ${error?.message ?? 'unavailable'}); retry in ${response.headers.get('retry-after')?.slice(0, 10) ?? 'a few'} s`,
      error?.code,
    );
  }
  if (!response.ok) {
    throw new KmsHostError(
      'HOST_ACTIVATION_REFUSED',
      `the authority refused: ${error?.code ?? response.status}: ${error?.message ?? response.statusText.slice(0, 100)}${error?.code === 'HOST_REVOKED' && !options.newKeyPair ? `; ${newKeyPairFix(state.dataDir, url.origin)}` : ''}`,
      error?.code,
    );
  }
  // Each known field typed and bounded; one the schema does not know (a later /v1 authority's) is
  // dropped, not refused: the certificate is what activates, and every client checks it against the root key.
  const reply = readAuthorityReply(hostActivationReplySchema, payload);
  if (!reply.ok) {
    throw new KmsHostError(
      'HOST_ACTIVATION_REFUSED',
      `${url.origin} answered HTTP ${response.status} with a reply that is not a volact authority's host activation (${reply.problem}); nothing was recorded`,
    );
  }
  const certificate = Buffer.from(reply.value.certificate, 'base64');
  const cert = decodeHostCertificate(certificate);
  if (!cert.hostPublicKey.equals(pair.publicKeyRaw)) {
    throw new KmsHostError('HOST_ACTIVATION_REFUSED', "the authority certified another public key than this host's");
  }
  // The key first: a crash before the certificate is recorded is mended by a plain `host activate`.
  if (options.newKeyPair) state.replaceSigningKey(pair);
  const groups = reply.value.groups.map((g) => ({ id: g.id, name: g.name, threshold: g.threshold }));
  state.recordActivation({
    authorityUrl: url.origin,
    certificate: certificate.toString('base64'),
    activatedAt: new Date(clock.now()).toISOString(),
    groups,
  });
  // The status and the records clients need from this host: fetched now, so a host started
  // right after its activation staples them to its first answers.
  const trust = await refreshHostTrust(state.dataDir, url.origin, { clock, timeoutMs: options.timeoutMs ?? 15_000 });
  state.reload();
  return {
    expiresAt: cert.expiresAt,
    groups,
    hostsUsed: reply.value.hostsUsed,
    hostLimit: reply.value.hostLimit,
    trust,
  };
}
