import {
  CoreError,
  DAY,
  REVOCATION_LIST_LIFETIME,
  decodeHostCertificate,
  decodeRevocationList,
  hostKeyRefOf,
  isGuid,
  isRevoked,
  keyFingerprint,
  makeHostStatus,
  makeRevocationList,
  publicKeyFromRaw,
  revocationSubjectOfKeyId,
  verifyHostCertificate,
  type HostCertificate,
  type RevocationList,
} from '@volact/core';
import { refusalsOf } from './audit.js';
import type { AuthorityContext, RingSigner } from './context.js';
import { AuthorityError, invalidField } from './errors.js';
import type { IssueList, IssuedList, RevocationKind, StoredRevocation } from './revocation-store.js';
import type { HostActivationRecord } from './store.js';
import { outboxEvent } from './webhooks/events.js';

/**
 * Revocation at the authority (docs/trust.md "Revocation"): one revocation list, signed by the
 * current root, whose version only grows; re-issued at every change and, lazily, by the first
 * request after it is a day old (or after a root switch). A host certified by this authority and
 * not on the list gets a host status for its key; a revoked one gets neither status nor renewal.
 */

/** The list is re-issued by the first request after it is this old. */
export const REVOCATION_LIST_REISSUE_AFTER = DAY;
/** A host certificate this long past its end gets no status: the host must renew it first. */
export const HOST_STATUS_EXPIRED_GRACE = 7 * DAY;
/** The longest reason a revocation keeps (printable characters). */
export const MAX_REVOCATION_REASON = 200;

const KIND_ACTION: Record<RevocationKind, string> = {
  host: 'revocation.host',
  manufacturer: 'revocation.manufacturer',
  tokenCa: 'revocation.token-ca',
};
const KIND_LABEL: Record<RevocationKind, string> = {
  host: 'host key',
  manufacturer: 'OEM manufacturer key',
  tokenCa: 'token CA key',
};

export interface RevokeOptions {
  /** Why, for the audit log and `authority revocations` (printable, at most 200 characters). */
  readonly reason?: string;
  /** Who, for the audit log (the CLI: its OS user). */
  readonly actor?: string;
}

export interface RevokeHostOptions extends RevokeOptions {
  /**
   * When the subject is a KMS host key ID: revoke the key too (as `authority key revoke` does),
   * before its hosts are listed, so it activates no new host key pair. Refused for other subjects.
   */
  readonly alsoRevokeKey?: boolean;
}

/**
 * A revoke-host whose subject was a KMS host key ID: listing the hosts it activated does not stop
 * the key activating new host key pairs (whoever leaked it activates another); revoking the key does.
 */
export interface KmsHostKeySubject {
  readonly keyId: string;
  /** The key is revoked (by --also-revoke-key, or before by `key revoke`): its later activations are refused. */
  readonly keyRevoked: boolean;
  /** What stops new activations with the key: null once it is revoked. */
  readonly stopNewActivations: string | null;
}

export interface RevokedSubject {
  /** 32 hex digits: a host key reference, or a key ID followed by 16 zeros. */
  readonly subject: string;
  /** Hosts: the KMS host key the host activated, and the host's record. */
  readonly hostKeyId?: string;
  readonly hostRecord?: string;
  readonly alreadyRevoked: boolean;
}

export interface RevocationResult {
  readonly kind: RevocationKind;
  readonly subjects: readonly RevokedSubject[];
  /** Every subject was on the list already: nothing changed, no new version. */
  readonly alreadyRevoked: boolean;
  readonly listVersion: number;
  readonly issuedAt: string;
  readonly nextUpdate: string;
  /** revoke-host by KMS host key ID only: whether the key itself still activates new hosts. */
  readonly kmsHostKey?: KmsHostKeySubject;
}

export interface RevocationListReport {
  readonly listVersion: number;
  readonly issuedAt: string;
  readonly nextUpdate: string;
  /** The root that signed it (key ID, 16 hex digits). */
  readonly issuerKeyId: string;
  readonly entries: readonly { kind: RevocationKind; subject: string; revokedAt: string; reason: string | null }[];
  /** The signed list (what `client install-revocations` and hosts read). */
  readonly encoded: Buffer;
}

export interface HostStatusAnswer {
  readonly status: Buffer;
  readonly list: Buffer;
  readonly listVersion: number;
  readonly nextUpdate: number;
}

const iso = (ms: number) => new Date(ms).toISOString();
const HOST_KEY_REF_RE = /^[0-9a-f]{32}$/i;
/** A host's record ID, as `key show` lists it: `hw:` and the hash of its hardware id. */
const HOST_RECORD_RE = /^hw:[0-9a-f]{16}$/i;
const KEY_ID_RE = /^[0-9a-f]{16}$/i;

/** The root that signs lists and statuses: the key ring's current root. */
const currentRoot = (ctx: AuthorityContext): RingSigner => ctx.rootSigner();

/** The public keys of this authority's roots a posted host certificate may be signed by (the key ring's). */
const authorityRootKeys = (ctx: AuthorityContext): Buffer[] => ctx.rootPublicKeys();

export class Revocations {
  /** The last list decoded (a status checks its host against the very list it names). */
  #decoded: { encoded: Buffer; list: RevocationList } | undefined;

  constructor(private readonly ctx: AuthorityContext) {}

  /** Signs the next list with the current root (asked only when a list is issued). */
  #issue(): IssueList {
    return ({ listVersion, entries }) => {
      const issuedAt = this.ctx.clock.now();
      const nextUpdate = issuedAt + REVOCATION_LIST_LIFETIME;
      const encoded = makeRevocationList(
        {
          listVersion,
          issuedAt,
          nextUpdate,
          entries: entries.map((e) => ({
            kind: e.kind,
            subject: Buffer.from(e.subject, 'hex'),
            revokedAt: e.revokedAt,
          })),
        },
        currentRoot(this.ctx),
      );
      return { listVersion, issuedAt, nextUpdate, encoded };
    };
  }

  /**
   * The latest list, re-issued first when it is a day old or was signed by a root no longer
   * current. A node that cannot sign (ROOT_KEY_UNAVAILABLE) still serves a list that is fresh.
   */
  async current(): Promise<IssuedList> {
    const now = this.ctx.clock.now();
    const stale = (list: IssuedList | null) => {
      if (list === null || now - list.issuedAt > REVOCATION_LIST_REISSUE_AFTER) return true;
      let current: Buffer;
      try {
        current = currentRoot(this.ctx).keyId;
      } catch {
        return false; // this node cannot sign: the list it has is still within its day
      }
      return !list.encoded.subarray(1, 9).equals(current);
    };
    return this.ctx.store.revocations.current(stale, this.#issue());
  }

  async report(): Promise<RevocationListReport> {
    const list = await this.current();
    const entries = await this.ctx.store.revocations.entries();
    const reasons = new Map(entries.map((e) => [`${e.kind}:${e.subject}`, e.reason]));
    const decoded = this.#decode(list);
    return {
      listVersion: list.listVersion,
      issuedAt: iso(list.issuedAt),
      nextUpdate: iso(list.nextUpdate),
      issuerKeyId: decoded.issuerKeyId.toString('hex'),
      // What the signed list says (entries revoked after it are in the next version).
      entries: decoded.entries.map((e) => {
        const subject = e.subject.toString('hex');
        return {
          kind: e.kind,
          subject,
          revokedAt: iso(e.revokedAt),
          reason: reasons.get(`${e.kind}:${subject}`) ?? null,
        };
      }),
      encoded: list.encoded,
    };
  }

  #decode(list: IssuedList): RevocationList {
    if (this.#decoded?.encoded.equals(list.encoded)) return this.#decoded.list;
    const decoded = decodeRevocationList(list.encoded);
    this.#decoded = { encoded: list.encoded, list: decoded };
    return decoded;
  }

  /**
   * Revokes the host key(s) named: a KMS host key ID (every host it activated), a host
   * certificate serial (that host's latest certificate), a host record (`hw:…`, as `key show`
   * lists it) or a host key reference (32 hex digits). A KMS host key ID's answer says that the
   * key still activates new host key pairs, and how to stop it; `alsoRevokeKey` does that first.
   */
  async revokeHost(text: string, options: RevokeHostOptions = {}): Promise<RevocationResult> {
    const given = text.trim();
    checkReason(options.reason); // refused before anything is written
    const named = await this.#hostsNamed(given);
    const byKeyId = named.byKeyId;
    let hosts = named.hosts;
    if (options.alsoRevokeKey === true && byKeyId === null) {
      throw invalidField(
        'alsoRevokeKey',
        `--also-revoke-key takes a KMS host key ID, and "${given.slice(0, 40)}" names a host: revoke the key it activated with \`volact authority revoke-host <its KMS host key ID> --also-revoke-key\` or \`volact authority key revoke <the key>\``,
      );
    }
    if (options.alsoRevokeKey === true && byKeyId !== null) {
      // The key first, then its hosts read again: every host it activated is listed, and it activates no more.
      const now = this.ctx.clock.now();
      // `key.revoked` (webhooks) commits with the revocation, for the key's organisation.
      const key = await this.ctx.store.organisations.keyById(byKeyId);
      const orgId = key?.orgId ?? null;
      const event = outboxEvent(
        'key.revoked',
        now,
        { orgId, keyId: byKeyId },
        { keyLast5: key ? key.last5.slice(-5) : null, reason: options.reason ?? null },
      );
      await this.ctx.store.revokeKey(byKeyId, now, [event]);
      await this.ctx.store.audit({
        at: now,
        action: 'key.revoke',
        result: 'OK',
        detail: `KMS host key ${byKeyId} by ${actorOf(options)} (revoke-host --also-revoke-key)`,
        keyId: byKeyId,
        orgId,
        ...(key ? { keyLast5: key.last5 } : {}),
      });
      hosts = (await this.#hostsNamed(given)).hosts;
    }
    // Hosts are recorded by their key's reference; a record made before that holds the raw key.
    const refOf = (stored: Buffer) => (stored.length === 32 ? hostKeyRefOf(stored) : stored).toString('hex');
    const subjects = [...new Map(hosts.map((h) => [refOf(h.hostPublicKey), h])).entries()];
    const result = await this.#revoke(
      'host',
      subjects.map(([subject, h]) => ({ subject, hostKeyId: h.keyId, hostRecord: h.hardwareId })),
      `host ${given}`,
      options,
    );
    if (byKeyId === null) return result;
    // Revoked now, or before (`key revoke`): either way it activates no new host.
    const keyRevoked =
      options.alsoRevokeKey === true || ((await this.ctx.store.revocations.keyRevokedAt(byKeyId)) ?? null) !== null;
    return {
      ...result,
      kmsHostKey: {
        keyId: byKeyId,
        keyRevoked,
        stopNewActivations: keyRevoked
          ? null
          : `volact authority key revoke <the KMS host key> (or volact authority revoke-host ${byKeyId} --also-revoke-key)`,
      },
    };
  }

  async revokeKeyId(
    kind: 'manufacturer' | 'tokenCa',
    text: string,
    options: RevokeOptions = {},
  ): Promise<RevocationResult> {
    const keyId = text.trim().toLowerCase();
    if (!KEY_ID_RE.test(keyId)) {
      throw invalidField(
        'subject',
        `"${text.slice(0, 40)}" is not a key ID: expected 16 hex digits (the first 8 bytes of SHA-256 of the ${KIND_LABEL[kind]}, as \`authority ${kind === 'manufacturer' ? 'oem-certificate' : 'token-ca'} issue\` audits it)`,
      );
    }
    const subject = revocationSubjectOfKeyId(Buffer.from(keyId, 'hex')).toString('hex');
    return this.#revoke(kind, [{ subject }], `${KIND_LABEL[kind]} ${keyId}`, options);
  }

  /** The hosts named, and the KMS host key ID when that is what was given (else null). */
  async #hostsNamed(given: string): Promise<{ hosts: HostActivationRecord[]; byKeyId: string | null }> {
    // Activation objects are recorded as hosts under their domain's reference: not a host key.
    const hostsOnly = (records: HostActivationRecord[]) => records.filter((h) => !h.hardwareId.startsWith('ao:'));
    const named = (hosts: HostActivationRecord[]) => ({ hosts, byKeyId: null });
    if (isGuid(given)) {
      const id = given.toLowerCase();
      const byKey = hostsOnly(await this.ctx.store.listHosts(id));
      if (byKey.length > 0) return { hosts: byKey, byKeyId: id };
      const bySerial = hostsOnly(await this.ctx.store.revocations.hostsBySerial(id));
      if (bySerial.length > 0) return named(bySerial);
      throw new AuthorityError(
        'REVOCATION_SUBJECT_UNKNOWN',
        `no KMS host key with ID ${id} that activated a host, and no host whose latest certificate has serial ${id}, is recorded by this authority: give the KMS host key ID (\`authority key show\`) or the serial of the host's current certificate (\`host status\`), or its host key reference (32 hex digits)`,
      );
    }
    if (HOST_RECORD_RE.test(given)) {
      const byRecord = await this.ctx.store.revocations.hostsByRecord(given.toLowerCase());
      if (byRecord.length > 0) return named(byRecord);
      throw new AuthorityError(
        'REVOCATION_SUBJECT_UNKNOWN',
        `no host ${given.toLowerCase()} is recorded by this authority: give a host as \`authority key show\` lists it (hw:…), its certificate serial or its KMS host key ID`,
      );
    }
    if (HOST_KEY_REF_RE.test(given)) {
      const byRef = hostsOnly(await this.ctx.store.revocations.hostsByKeyRef(given.toLowerCase()));
      if (byRef.length > 0) return named(byRef);
      throw new AuthorityError(
        'REVOCATION_SUBJECT_UNKNOWN',
        `no host with host key reference ${given.toLowerCase()} is recorded by this authority: give the KMS host key ID or the host certificate serial`,
      );
    }
    throw invalidField(
      'subject',
      `"${given.slice(0, 40)}" is neither a KMS host key ID nor a host certificate serial (a GUID, xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) nor a host record (hw:…, as \`authority key show\` lists it) nor a host key reference (32 hex digits)`,
    );
  }

  async #revoke(
    kind: RevocationKind,
    named: readonly Omit<RevokedSubject, 'alreadyRevoked'>[],
    asked: string,
    options: RevokeOptions,
  ): Promise<RevocationResult> {
    const reason = checkReason(options.reason);
    const actor = actorOf(options);
    const now = this.ctx.clock.now();
    const entries: StoredRevocation[] = named.map((n) => ({ kind, subject: n.subject, revokedAt: now, reason }));
    const { added, list } = await this.ctx.store.revocations.revoke(entries, this.#issue(), (fresh) => {
      const shown = named
        .slice(0, 4)
        .map((n) => n.subject)
        .join(', ');
      const more = named.length > 4 ? ` and ${named.length - 4} more` : '';
      return {
        at: now,
        action: KIND_ACTION[kind],
        result: 'OK',
        detail: `by ${actor}: ${asked}: ${KIND_LABEL[kind]} ${shown}${more}${reason ? ` (reason: ${reason})` : ''}; ${
          fresh.length === 0 ? 'already revoked, no new list' : `${fresh.length} added`
        }`.slice(0, 600),
      };
    });
    const fresh = new Set(added.map((a) => a.subject));
    return {
      kind,
      subjects: named.map((n) => ({ ...n, alreadyRevoked: !fresh.has(n.subject) })),
      alreadyRevoked: added.length === 0,
      listVersion: list.listVersion,
      issuedAt: iso(list.issuedAt),
      nextUpdate: iso(list.nextUpdate),
    };
  }

  /**
   * The host status of a host certificate this authority issued online: "its host key is not on
   * list version V", signed by the current root, valid until the list's nextUpdate.
   */
  async hostStatus(certificate: Buffer): Promise<HostStatusAnswer> {
    const cert = this.#checkCertificate(certificate);
    const hostKeyRef = hostKeyRefOf(cert.hostPublicKey);
    const list = await this.current();
    // Checked against the list the status names, so no status can contradict its own list.
    if (isRevoked(this.#decode(list), 'host', hostKeyRef)) {
      await refuseRevokedHost(this.ctx, hostKeyRef, 'host.status');
      throw new AuthorityError('HOST_REVOKED', `this host's key (reference ${hostKeyRef.toString('hex')}) was revoked`);
    }
    const status = makeHostStatus(
      { hostKeyRef, listVersion: list.listVersion, issuedAt: this.ctx.clock.now(), nextUpdate: list.nextUpdate },
      currentRoot(this.ctx),
    );
    return { status, list: list.encoded, listVersion: list.listVersion, nextUpdate: list.nextUpdate };
  }

  #checkCertificate(bytes: Buffer): HostCertificate {
    let cert: HostCertificate;
    try {
      cert = decodeHostCertificate(bytes);
    } catch (err) {
      if (!(err instanceof CoreError)) throw err;
      throw new AuthorityError(
        'HOST_CERTIFICATE_INVALID',
        `the certificate is not a volact host certificate: ${err.message}`,
      );
    }
    if (cert.version !== 1) {
      throw new AuthorityError(
        'HOST_CERTIFICATE_INVALID',
        `a host certificate of version ${cert.version} (by phone) gets no status: only hosts certified online (version 1, \`host activate\`) do`,
      );
    }
    const root = authorityRootKeys(this.ctx).find(
      (raw) => keyFingerprint(raw).equals(cert.issuer) && verifyHostCertificate(cert, publicKeyFromRaw(raw)),
    );
    if (!root) {
      throw new AuthorityError(
        'HOST_CERTIFICATE_UNTRUSTED',
        `the certificate (issuer ${cert.issuer.toString('hex')}) is not signed by a root of this authority: a host gets its status from the authority that certified it`,
      );
    }
    const now = this.ctx.clock.now();
    if (now > cert.expiresAt + HOST_STATUS_EXPIRED_GRACE) {
      throw new AuthorityError(
        'HOST_CERTIFICATE_EXPIRED',
        `the certificate ended ${iso(cert.expiresAt)}, more than ${HOST_STATUS_EXPIRED_GRACE / DAY} days ago: renew it (\`host activate\`) before asking for a status`,
      );
    }
    return cert;
  }
}

/** Who revoked, for the audit log: printable, at most 64 characters. */
const actorOf = (options: RevokeOptions) => (options.actor ?? 'operator').replace(/[^\x20-\x7e]/g, '?').slice(0, 64);

function checkReason(reason: string | undefined): string | null {
  if (reason === undefined) return null;
  const text = reason.trim();
  if (text.length === 0) return null;
  if (text.length > MAX_REVOCATION_REASON || !/^[\x20-\x7e]+$/.test(text)) {
    throw invalidField('reason', `the reason must be 1-${MAX_REVOCATION_REASON} printable ASCII characters`);
  }
  return text;
}

/**
 * Refuses a host whose key is on the list (renewal online, certification by phone) with
 * HOST_REVOKED, audited as `action`; read afresh, as a revoked KMS host key is.
 */
export async function refuseRevokedHost(
  ctx: AuthorityContext,
  hostKeyRef: Buffer,
  action: string,
  last5?: string,
): Promise<void> {
  const entry = await ctx.store.revocations.isRevoked('host', hostKeyRef.toString('hex'));
  if (!entry) return;
  throw await refusalsOf(ctx.store, action, ctx.clock.now())(
    'HOST_REVOKED',
    `this host's key (reference ${hostKeyRef.toString('hex')}) was revoked by the publisher on ${iso(entry.revokedAt)}: it gets no certificate and no status; ask the publisher`,
    last5,
  );
}
