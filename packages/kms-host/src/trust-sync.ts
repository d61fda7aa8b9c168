import { z } from 'zod';
import {
  CoreError,
  DAY,
  EMPTY_EXTENSION_AREA,
  MAX_STAPLED_DELEGATIONS,
  MAX_STAPLED_TRANSITIONS,
  assertNotOlder,
  authorityEndpoint,
  decodeDelegation,
  decodeHostStatus,
  decodeRevocationList,
  decodeRootTransition,
  encodeResponseExtensions,
  errorReplySchema,
  hostKeyRefOf,
  readAuthorityReply,
  verifyHostStatus,
  verifyRevocationList,
  type Clock,
  type HostCertificate,
  type RevocationList,
} from '@volact/core';
import { KmsHostError } from './errors.js';
import { EMPTY_TRUST, HostState, type HostTrustState } from './host-state.js';

/**
 * The host's side of trust and revocation (docs/trust.md, docs/kms-host.md "Trust"): at start
 * and at every renewal check an online-certified host asks its authority for the trust bundle
 * (`GET /v1/trust`: roots, transition records, delegation certificates, the revocation list) and
 * for its own host status (`POST /v1/host-status` with its certificate), keeps them in host.json
 * and staples the status, the records and the certificates to every version-2 answer.
 */

/** The host warns at every check while its status ends within this long. */
export const HOST_STATUS_WARN_BEFORE = 2 * DAY;

const b64 = z
  .string()
  .max(2_200_000)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');
const recordB64 = z
  .string()
  .max(400)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');

/** GET /v1/trust, as far as the host reads it (fields it does not know are dropped). */
const trustReplySchema = z.object({
  roots: z
    .array(
      z.object({
        publicKey: z.string().max(64),
        keyId: z
          .string()
          .max(16)
          .regex(/^[0-9a-f]{16}$/i),
        validFrom: z.string().max(40),
        validUntil: z.string().max(40).nullish(),
        state: z.string().max(20),
      }),
    )
    .max(8),
  transitions: z.array(recordB64).max(16),
  delegations: z.array(recordB64).max(16),
  revocationList: b64.optional(),
});
export type TrustReply = z.infer<typeof trustReplySchema>;

/** POST /v1/host-status. */
const hostStatusReplySchema = z.object({ status: recordB64, list: b64 });

export interface TrustCheck {
  /** The authority's current root differs from the issuer of the host's certificate. */
  readonly rootChanged: boolean;
  /** The authority refused the status: the host key is revoked. */
  readonly revoked: boolean;
  /** Problems met (the authority unreachable, a stale list…), for the log; the state kept. */
  readonly warnings: readonly string[];
}

async function call(
  url: URL,
  init: RequestInit,
  timeoutMs: number,
): Promise<{ status: number; payload: unknown; error: { code: string; message: string } | undefined }> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const e = err as Error;
    throw new KmsHostError(
      'AUTHORITY_UNREACHABLE',
      `cannot reach the authority at ${url.origin}: ${e.cause instanceof Error ? e.cause.message : e.message}`,
    );
  }
  const payload: unknown = await response.json().catch(() => undefined);
  const refusal = readAuthorityReply(errorReplySchema, payload);
  return { status: response.status, payload, error: refusal.ok ? refusal.value.error : undefined };
}

function endpoint(authorityUrl: string, path: string): URL {
  try {
    return authorityEndpoint(authorityUrl, path);
  } catch (err) {
    if (!(err instanceof CoreError)) throw err;
    throw new KmsHostError(err.code === 'URL_INSECURE' ? 'AUTHORITY_URL_INSECURE' : 'HOST_CONFIG_INVALID', err.message);
  }
}

function failed(url: URL, r: { status: number; error: { code: string; message: string } | undefined }): never {
  throw new KmsHostError(
    'AUTHORITY_UNREACHABLE',
    `the authority at ${url.origin} answered ${r.error?.code ?? `HTTP ${r.status}`}${r.error ? `: ${r.error.message}` : ''} to ${url.pathname}`,
    r.error?.code,
  );
}

export async function fetchTrust(authorityUrl: string, timeoutMs = 15_000): Promise<TrustReply> {
  const url = endpoint(authorityUrl, '/v1/trust');
  const r = await call(url, { method: 'GET' }, timeoutMs);
  if (r.status !== 200) failed(url, r);
  const reply = readAuthorityReply(trustReplySchema, r.payload);
  if (!reply.ok)
    throw new KmsHostError(
      'AUTHORITY_UNREACHABLE',
      `${url.origin}/v1/trust: not a volact trust reply (${reply.problem})`,
    );
  return reply.value;
}

export type HostStatusAnswer =
  | { readonly kind: 'status'; readonly status: Buffer; readonly list: Buffer }
  | { readonly kind: 'revoked'; readonly message: string };

export async function fetchHostStatus(
  authorityUrl: string,
  certificate: Buffer,
  timeoutMs = 15_000,
): Promise<HostStatusAnswer> {
  const url = endpoint(authorityUrl, '/v1/host-status');
  const r = await call(
    url,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ certificate: certificate.toString('base64') }),
    },
    timeoutMs,
  );
  if (r.status === 403 && r.error?.code === 'HOST_REVOKED')
    return { kind: 'revoked', message: r.error.message.slice(0, 500) };
  if (r.status !== 200) failed(url, r);
  const reply = readAuthorityReply(hostStatusReplySchema, r.payload);
  if (!reply.ok)
    throw new KmsHostError(
      'AUTHORITY_UNREACHABLE',
      `${url.origin}/v1/host-status: not a volact status reply (${reply.problem})`,
    );
  return {
    kind: 'status',
    status: Buffer.from(reply.value.status, 'base64'),
    list: Buffer.from(reply.value.list, 'base64'),
  };
}

/** The root public key (raw) the state knows for a key ID, if any. */
function rootKeyOf(trust: HostTrustState, keyId: Buffer): Buffer | undefined {
  const hex = keyId.toString('hex');
  const r = trust.roots.find((x) => x.keyId.toLowerCase() === hex);
  return r ? Buffer.from(r.publicKey, 'base64') : undefined;
}

/**
 * A revocation list the host may keep: strict decoding, the signature under the root it names
 * when the host knows that root (it learns roots from /v1/trust), and never older than the one
 * held (REVOCATION_LIST_STALE).
 */
export function acceptRevocationList(trust: HostTrustState, bytes: Buffer): RevocationList {
  const list = decodeRevocationList(bytes);
  const key = rootKeyOf(trust, list.issuerKeyId);
  if (key && !verifyRevocationList(list, key))
    throw new CoreError(
      'REVOCATION_LIST_INVALID',
      `the revocation list's signature does not verify under root ${list.issuerKeyId.toString('hex')}`,
    );
  const held = trust.revocationList ? decodeRevocationList(Buffer.from(trust.revocationList, 'base64')) : null;
  assertNotOlder(held, list);
  return list;
}

/** Keeps the newest valid records, at most `max`: decodable ones only. */
function newest(records: readonly string[], decode: (b: Buffer) => { order: number }, max: number): string[] {
  const ok: { b: string; order: number }[] = [];
  for (const b of records) {
    try {
      ok.push({ b, order: decode(Buffer.from(b, 'base64')).order });
    } catch {
      /* a record the host cannot read is not handed out */
    }
  }
  return ok
    .sort((x, y) => y.order - x.order)
    .slice(0, max)
    .map((x) => x.b);
}

/** Merges a /v1/trust reply into the state: roots, records (bounded), the list if newer. */
export function mergeTrustReply(trust: HostTrustState, reply: TrustReply, warnings: string[]): HostTrustState {
  const next: HostTrustState = {
    ...trust,
    roots: reply.roots.map((r) => ({
      publicKey: r.publicKey,
      keyId: r.keyId.toLowerCase(),
      validFrom: r.validFrom,
      ...(r.validUntil ? { validUntil: r.validUntil } : {}),
      state: r.state,
    })),
    transitions: newest(reply.transitions, (b) => ({ order: decodeRootTransition(b).issuedAt }), 8),
    delegations: newest(reply.delegations, (b) => ({ order: decodeDelegation(b).validFrom }), 16),
  };
  if (reply.revocationList) {
    try {
      acceptRevocationList(next, Buffer.from(reply.revocationList, 'base64'));
      next.revocationList = reply.revocationList;
    } catch (err) {
      if (!(err instanceof CoreError)) throw err;
      warnings.push(`${err.code}: ${err.message}`);
    }
  }
  return next;
}

/** The key ID (hex) of the authority's current root, when it said which. */
export function currentRootKeyId(trust: HostTrustState): string | undefined {
  return trust.roots.find((r) => r.state === 'current')?.keyId;
}

/**
 * Asks the authority for the trust bundle and this host's status, and records what it learned
 * in host.json (read afresh: another process may have renewed the certificate). Never throws for
 * an authority that cannot be reached or answers badly: the last state is kept and the problem
 * is in `warnings` (and in host.json's `lastError`).
 */
export async function refreshHostTrust(
  dataDir: string,
  authorityUrl: string,
  options: { clock: Clock; timeoutMs?: number },
): Promise<TrustCheck> {
  const warnings: string[] = [];
  const at = new Date(options.clock.now()).toISOString();
  let trust = HostState.open(dataDir).trust;
  let trustFetched = false;
  try {
    trust = mergeTrustReply(trust, await fetchTrust(authorityUrl, options.timeoutMs), warnings);
    trustFetched = true;
  } catch (err) {
    if (!(err instanceof KmsHostError) && !(err instanceof CoreError)) throw err;
    warnings.push(`${err.code}: ${err.message}`);
  }
  const certificate = HostState.open(dataDir).certificate();
  let revoked = false;
  let statusFetched = false;
  if (certificate) {
    try {
      const answer = await fetchHostStatus(authorityUrl, certificate.encoded, options.timeoutMs);
      if (answer.kind === 'revoked') {
        revoked = true;
        trust = { ...trust, revoked: { at, code: 'HOST_REVOKED', message: answer.message } };
      } else {
        trust = acceptHostStatus(trust, certificate, answer.status, answer.list, warnings);
        statusFetched = true;
      }
    } catch (err) {
      if (!(err instanceof KmsHostError) && !(err instanceof CoreError)) throw err;
      warnings.push(`${err.code}: ${err.message}`);
    }
  }
  trust = { ...trust, checkedAt: at };
  delete trust.lastError;
  if (warnings.length > 0)
    trust.lastError = { at, code: warnings[0]!.split(':')[0]!, message: warnings.join('; ').slice(0, 1000) };
  if (statusFetched) delete trust.revoked; // a status again: the key is no longer revoked (or was re-keyed)
  HostState.open(dataDir).recordTrust(trust);
  const current = currentRootKeyId(trust);
  const rootChanged =
    trustFetched &&
    certificate !== undefined &&
    current !== undefined &&
    current !== certificate.issuer.toString('hex');
  return { rootChanged, revoked, warnings };
}

/**
 * Keeps a status (and the list it came with) when it names this host's key, is signed by a root
 * the host knows (when it knows the issuer), names a list no older than the one held, and is not
 * older than the status held.
 */
export function acceptHostStatus(
  trust: HostTrustState,
  certificate: HostCertificate,
  statusBytes: Buffer,
  listBytes: Buffer,
  warnings: string[],
): HostTrustState {
  let next = trust;
  try {
    acceptRevocationList(next, listBytes);
    next = { ...next, revocationList: listBytes.toString('base64') };
  } catch (err) {
    if (!(err instanceof CoreError)) throw err;
    warnings.push(`${err.code}: ${err.message}`);
  }
  try {
    const status = decodeHostStatus(statusBytes);
    if (!status.hostKeyRef.equals(hostKeyRefOf(certificate.hostPublicKey)))
      throw new CoreError('REVOCATION_LIST_INVALID', "the authority's host status names another host key");
    const key = rootKeyOf(next, status.issuerKeyId);
    if (key && !verifyHostStatus(status, key))
      throw new CoreError(
        'REVOCATION_LIST_INVALID',
        `the host status's signature does not verify under root ${status.issuerKeyId.toString('hex')}`,
      );
    const held = next.hostStatus ? decodeHostStatus(Buffer.from(next.hostStatus, 'base64')) : null;
    if (held && held.hostKeyRef.equals(status.hostKeyRef)) assertNotOlder(held, status);
    if (held && held.hostKeyRef.equals(status.hostKeyRef) && held.issuedAt > status.issuedAt)
      throw new CoreError('REVOCATION_LIST_STALE', 'the host status is older than the one held');
    next = { ...next, hostStatus: statusBytes.toString('base64') };
  } catch (err) {
    if (!(err instanceof CoreError)) throw err;
    warnings.push(`${err.code}: ${err.message}`);
  }
  return next;
}

/**
 * The extension area the host appends to every version-2 answer: its status (if it holds one
 * for its key), the newest transition records and delegation certificates (at most 4 each).
 * Encoded once per change (host start, each check), never per answer.
 */
export function extensionAreaOf(trust: HostTrustState, certificate: HostCertificate | undefined): Buffer {
  let hostStatus: Buffer | undefined;
  if (trust.hostStatus && certificate) {
    const bytes = Buffer.from(trust.hostStatus, 'base64');
    try {
      if (decodeHostStatus(bytes).hostKeyRef.equals(hostKeyRefOf(certificate.hostPublicKey))) hostStatus = bytes;
    } catch {
      /* not handed out */
    }
  }
  const transitions = trust.transitions.slice(0, MAX_STAPLED_TRANSITIONS).map((b) => Buffer.from(b, 'base64'));
  const delegations = trust.delegations.slice(0, MAX_STAPLED_DELEGATIONS).map((b) => Buffer.from(b, 'base64'));
  if (!hostStatus && transitions.length === 0 && delegations.length === 0) return EMPTY_EXTENSION_AREA;
  return encodeResponseExtensions({ ...(hostStatus ? { hostStatus } : {}), transitions, delegations });
}

export { EMPTY_TRUST };
