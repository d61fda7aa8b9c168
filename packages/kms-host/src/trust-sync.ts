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
  publicKeyFromRaw,
  verifyDelegation,
  verifyHostCertificate,
  verifyRootTransition,
  TrustStore,
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

/**
 * The roots the host believes (docs/kms-host.md "Trust and revocation"), built like a client's:
 * its anchors (the root that certified it, pinned at its first check), the root of its phone
 * activation's product config (`extraRoots`), and the roots learned from transition records
 * that verify under one already trusted (chains). The authority's `roots` never add one.
 * Undefined when the host has no anchor yet.
 */
export function hostTrustStore(trust: HostTrustState, extraRoots: readonly Buffer[] = []): TrustStore | undefined {
  const keys = new Map<string, Buffer>();
  for (const k of [...(trust.anchors ?? []).map((b) => Buffer.from(b, 'base64')), ...extraRoots])
    if (k.length === 32) keys.set(k.toString('hex'), k);
  if (keys.size === 0) return undefined;
  const store = TrustStore.fromRoots([...keys.values()].map((publicKeyRaw) => ({ publicKeyRaw, validFrom: 0 })));
  learnChains(
    store,
    trust.transitions.map((b) => Buffer.from(b, 'base64')),
  );
  return store;
}

/**
 * Learns every record that chains to the store's roots (in any order); returns the others
 * (not verified here: those whose next root was trusted already, and those that do not chain).
 */
function learnChains(store: TrustStore, records: readonly Buffer[]): Buffer[] {
  let pending = [...records];
  const known: Buffer[] = [];
  for (let progress = true; progress && pending.length > 0;) {
    progress = false;
    pending = pending.filter((r) => {
      try {
        if (store.learnTransition(r)) progress = true;
        else known.push(r); // its next root is trusted already: checked by the caller
        return false;
      } catch {
        return true;
      }
    });
  }
  return [...known, ...pending];
}

/** The raw public key of a root the store trusts, by key ID. */
function trustedRootKey(store: TrustStore | undefined, keyId: Buffer): Buffer | undefined {
  return store?.roots().find((r) => r.keyId.equals(keyId))?.publicKeyRaw;
}

function untrusted(what: string, keyId: Buffer): CoreError {
  return new CoreError(
    'REVOCATION_LIST_INVALID',
    `the ${what} is signed by root ${keyId.toString('hex')}, which this host does not trust (not the root that certified it, nor one learned from a transition record chained to it); ignored, the one held is kept`,
  );
}

/**
 * A revocation list the host may keep: strict decoding, signed by a root the host trusts
 * (`store`: hostTrustStore) and verifying under it, and never older than the one held
 * (REVOCATION_LIST_STALE).
 */
export function acceptRevocationList(
  trust: HostTrustState,
  bytes: Buffer,
  store: TrustStore | undefined,
): RevocationList {
  const list = decodeRevocationList(bytes);
  const key = trustedRootKey(store, list.issuerKeyId);
  if (!key) throw untrusted('revocation list', list.issuerKeyId);
  if (!verifyRevocationList(list, key))
    throw new CoreError(
      'REVOCATION_LIST_INVALID',
      `the revocation list's signature does not verify under root ${list.issuerKeyId.toString('hex')}`,
    );
  const held = trust.revocationList ? decodeRevocationList(Buffer.from(trust.revocationList, 'base64')) : null;
  assertNotOlder(held, list);
  return list;
}

/** Keeps the newest `max` by `order`. */
function newest<T>(items: readonly T[], order: (x: T) => number, max: number): T[] {
  return [...items].sort((x, y) => order(y) - order(x)).slice(0, max);
}

function decoded<T>(records: readonly string[], decode: (b: Buffer) => T): T[] {
  const out: T[] = [];
  for (const b of records) {
    try {
      out.push(decode(Buffer.from(b, 'base64')));
    } catch {
      /* a record the host cannot read is not handed out */
    }
  }
  return out;
}

/**
 * Pins the root that certified the host when it has no anchor yet (its first check after
 * `host install-key`, or after an upgrade): the key the authority lists under the certificate's
 * issuer, only if the certificate verifies under it.
 */
function pinCertificateRoot(
  trust: HostTrustState,
  certificate: HostCertificate | undefined,
  reply: TrustReply,
): HostTrustState {
  if ((trust.anchors ?? []).length > 0 || !certificate || certificate.version !== 1) return trust;
  const issuer = certificate.issuer.toString('hex');
  for (const r of reply.roots) {
    if (r.keyId.toLowerCase() !== issuer) continue;
    const raw = Buffer.from(r.publicKey, 'base64');
    if (raw.length !== 32) continue;
    try {
      if (verifyHostCertificate(certificate, publicKeyFromRaw(raw)))
        return { ...trust, anchors: [raw.toString('base64')] };
    } catch {
      /* not a key */
    }
  }
  return trust;
}

/**
 * Merges a /v1/trust reply into the state. Transition records are learned only when they chain
 * to a root the host trusts (a forged one is ignored, with a warning); records and delegation
 * certificates handed to clients are those that verify under a trusted root, or that a trusted
 * root's record vouches for (the record to it from its predecessor, so clients with older configs
 * reach it); the list is kept if a trusted root signed it and it is not older. The authority's
 * `roots` are kept for display only.
 */
export function mergeTrustReply(
  trust: HostTrustState,
  reply: TrustReply,
  warnings: string[],
  certificate?: HostCertificate,
  extraRoots: readonly Buffer[] = [],
): HostTrustState {
  let next: HostTrustState = {
    ...trust,
    roots: reply.roots.map((r) => ({
      publicKey: r.publicKey,
      keyId: r.keyId.toLowerCase(),
      validFrom: r.validFrom,
      ...(r.validUntil ? { validUntil: r.validUntil } : {}),
      state: r.state,
    })),
  };
  next = pinCertificateRoot(next, certificate, reply);
  const store = hostTrustStore(next, extraRoots);
  if (!store) {
    warnings.push(
      `TRUST_RECORD_INVALID: this host trusts no root yet (the authority lists none its certificate verifies under); nothing from ${'/v1/trust'} is kept`,
    );
    return next;
  }
  const offered = decoded([...trust.transitions, ...reply.transitions], decodeRootTransition);
  const unlearned = learnChains(
    store,
    offered.map((t) => t.encoded),
  );
  // Keys to look a record's previous root up by (never trusted for that): listed, or named by a record.
  const known = new Map<string, Buffer>();
  for (const r of [...trust.roots, ...reply.roots]) {
    const raw = Buffer.from(r.publicKey, 'base64');
    if (raw.length === 32) known.set(r.keyId.toLowerCase(), raw);
  }
  for (const t of offered) known.set(t.nextKeyId.toString('hex'), t.nextPublicKey);
  const vouched = new Map(store.roots().map((r) => [r.keyId.toString('hex'), r.publicKeyRaw] as const));
  const kept = new Map<string, (typeof offered)[number]>();
  for (const b of store.learned().transitions) {
    const t = decodeRootTransition(Buffer.from(b, 'base64'));
    kept.set(b, t);
  }
  // Backwards: a record to a vouched root, signed by it and by its predecessor.
  let pending = unlearned.map((b) => decodeRootTransition(b));
  for (let progress = true; progress;) {
    progress = false;
    pending = pending.filter((t) => {
      const prev = known.get(t.previousKeyId.toString('hex'));
      if (!vouched.has(t.nextKeyId.toString('hex')) || !prev || !verifyRootTransition(t, prev)) return true;
      kept.set(t.encoded.toString('base64'), t);
      vouched.set(t.previousKeyId.toString('hex'), prev);
      progress = true;
      return false;
    });
  }
  const forged = new Set(pending.map((t) => t.encoded.toString('base64')));
  if (forged.size > 0)
    warnings.push(
      `TRUST_RECORD_INVALID: ${forged.size} root-transition record(s) from the authority do not chain to a root this host trusts (${pending.map((t) => `${t.previousKeyId.toString('hex')}→${t.nextKeyId.toString('hex')}`).join(', ')}); ignored`,
    );
  const delegations = decoded([...new Set([...trust.delegations, ...reply.delegations])], decodeDelegation).filter(
    (d) => {
      const key = vouched.get(d.issuerKeyId.toString('hex'));
      return key !== undefined && verifyDelegation(d, key);
    },
  );
  next = {
    ...next,
    transitions: newest([...kept.entries()], ([, t]) => t.issuedAt, 8).map(([b]) => b),
    delegations: newest(delegations, (d) => d.validFrom, 16).map((d) => d.encoded.toString('base64')),
  };
  if (reply.revocationList) {
    try {
      acceptRevocationList(next, Buffer.from(reply.revocationList, 'base64'), store);
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
  const opened = HostState.open(dataDir);
  let trust = opened.trust;
  const certificate = opened.certificate();
  const productRoot = opened.phoneRequest?.rootPublicKey;
  const extraRoots = productRoot ? [Buffer.from(productRoot, 'base64')] : [];
  let trustFetched = false;
  try {
    const reply = await fetchTrust(authorityUrl, options.timeoutMs);
    trust = mergeTrustReply(trust, reply, warnings, certificate, extraRoots);
    trustFetched = true;
  } catch (err) {
    if (!(err instanceof KmsHostError) && !(err instanceof CoreError)) throw err;
    warnings.push(`${err.code}: ${err.message}`);
  }
  let revoked = false;
  let statusFetched = false;
  if (certificate) {
    try {
      const answer = await fetchHostStatus(authorityUrl, certificate.encoded, options.timeoutMs);
      if (answer.kind === 'revoked') {
        revoked = true;
        trust = { ...trust, revoked: { at, code: 'HOST_REVOKED', message: answer.message } };
      } else {
        const before = trust.hostStatus;
        trust = acceptHostStatus(
          trust,
          certificate,
          answer.status,
          answer.list,
          warnings,
          hostTrustStore(trust, extraRoots),
        );
        statusFetched = trust.hostStatus !== before || before === answer.status.toString('base64');
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
  // Only a root the host trusts (learned through a transition record) makes it re-certify.
  const rootChanged =
    trustFetched &&
    certificate !== undefined &&
    current !== undefined &&
    current !== certificate.issuer.toString('hex') &&
    trustedRootKey(hostTrustStore(trust, extraRoots), Buffer.from(current, 'hex')) !== undefined;
  return { rootChanged, revoked, warnings };
}

/**
 * Keeps a status (and the list it came with) when it names this host's key, is signed by a root
 * the host trusts (`store`: hostTrustStore), names a list no older than the one held
 * (REVOCATION_LIST_STALE), and is not older than the status held. What is refused is a warning;
 * the state held is kept.
 */
export function acceptHostStatus(
  trust: HostTrustState,
  certificate: HostCertificate,
  statusBytes: Buffer,
  listBytes: Buffer,
  warnings: string[],
  store: TrustStore | undefined,
): HostTrustState {
  let next = trust;
  try {
    acceptRevocationList(next, listBytes, store);
    next = { ...next, revocationList: listBytes.toString('base64') };
  } catch (err) {
    if (!(err instanceof CoreError)) throw err;
    warnings.push(`${err.code}: ${err.message}`);
  }
  try {
    const status = decodeHostStatus(statusBytes);
    if (!status.hostKeyRef.equals(hostKeyRefOf(certificate.hostPublicKey)))
      throw new CoreError('REVOCATION_LIST_INVALID', "the authority's host status names another host key");
    const key = trustedRootKey(store, status.issuerKeyId);
    if (!key) throw untrusted('host status', status.issuerKeyId);
    if (!verifyHostStatus(status, key))
      throw new CoreError(
        'REVOCATION_LIST_INVALID',
        `the host status's signature does not verify under root ${status.issuerKeyId.toString('hex')}`,
      );
    const list = next.revocationList ? decodeRevocationList(Buffer.from(next.revocationList, 'base64')) : null;
    if (list && status.listVersion < list.listVersion)
      throw new CoreError(
        'REVOCATION_LIST_STALE',
        `the host status names revocation list version ${status.listVersion}, older than the one held (${list.listVersion}); the status held is kept`,
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
