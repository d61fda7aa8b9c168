import type { KeyObject } from 'node:crypto';
import {
  CoreError,
  DAY,
  DELEGATION_PURPOSE,
  MINUTE,
  TrustStore,
  assertNotOlder,
  decodeDelegation,
  decodeRevocationList,
  decodeRootTransition,
  isRevoked,
  keyIdHex,
  keyIdOf,
  publicKeyFromRaw,
  revocationSubjectOfKeyId,
  verifyInstallationConfirmation,
  verifyRevocationList,
  type ConfirmationId,
  type ConfirmationKeys,
  type InstallationId,
  type ProductConfig,
  type RevocationEntry,
  type RevocationList,
  type TrustRoot,
} from '@volact/core';
import { ClientError } from './errors.js';

/**
 * Whom this installation believes (docs/trust.md): the roots of the product config's bundle,
 * the roots learned through transition records, the online keys their delegation certificates
 * name, and the revocation list it holds. Every verification asks it for the key by the
 * artefact's key ID and signed time. Built at every open from the product config and what the
 * licence store keeps (`trust`); what is learned later is persisted by the caller (`learned()`).
 */

/** How many learned records the licence store keeps (as TrustStore.learned). */
export const MAX_STORED_TRANSITIONS = 8;
export const MAX_STORED_DELEGATIONS = 16;
/** A revocation list holds at most 65 536 entries of 25 bytes: its base64 fits in this. */
export const MAX_REVOCATION_LIST_CHARS = 4 * Math.ceil((101 + 25 * 65_536) / 3);
/** A transition record is 185 bytes and a delegation 126: base64 well within this. */
export const MAX_RECORD_CHARS = 400;

/** What the licence store keeps of the trust learned beyond the product config. */
export interface StoredTrust {
  readonly transitions: readonly string[];
  readonly delegations: readonly string[];
  /** The newest revocation list this installation holds (base64), verified at every open. */
  readonly revocationList: string | null;
}

export const EMPTY_TRUST: StoredTrust = { transitions: [], delegations: [], revocationList: null };

/** A key chosen for an artefact: the key, its ID, and the root that anchors it. */
export interface ChosenKey {
  readonly key: KeyObject;
  readonly raw: Buffer;
  /** The key ID of the key that signed (a root, or an online key), hex. */
  readonly signedBy: string;
  /** The key ID of the root that anchors it, hex. */
  readonly root: string;
  readonly delegated: boolean;
}

/** The records a KMS answer or an authority's answer hands out. */
export interface TrustRecords {
  readonly transitions: readonly Uint8Array[];
  readonly delegations: readonly Uint8Array[];
}

/** A fix named by every "unknown signer" refusal. */
export const TRUST_FIX =
  "install the publisher's current product config (`volact client set-product`), or the authority's trust bundle: `volact client install-trust FILE` with the JSON of its GET /v1/trust";

function keyIdBuffer(hex: string): Buffer | null {
  return /^[0-9a-f]{16}$/.test(hex) ? Buffer.from(hex, 'hex') : null;
}

export class ClientTrust {
  readonly store: TrustStore;
  readonly skewMs: number;
  #revocations: RevocationList | null = null;
  readonly #keys = new Map<string, KeyObject>();
  /** Grows with every record learned: memos of earlier verifications compare it. */
  #generation = 0;

  private constructor(store: TrustStore, skewMs: number) {
    this.store = store;
    this.skewMs = skewMs;
  }

  /**
   * The product config's bundle, then the stored records (each that verifies; an invalid one is
   * ignored, as is a revocation list that does not verify under a trusted root).
   */
  static of(product: ProductConfig, stored: StoredTrust = EMPTY_TRUST): ClientTrust {
    const trust = new ClientTrust(TrustStore.fromProductConfig(product), product.policy.maxClockSkewMinutes * MINUTE);
    trust.learn({
      transitions: stored.transitions.map((t) => Buffer.from(t, 'base64')),
      delegations: stored.delegations.map((d) => Buffer.from(d, 'base64')),
    });
    if (stored.revocationList !== null) {
      try {
        trust.#revocations = trust.#verifiedList(Buffer.from(stored.revocationList, 'base64'));
      } catch {
        trust.#revocations = null; // edited or under a root no longer trusted: none held
      }
    }
    return trust;
  }

  get generation(): number {
    return this.#generation;
  }

  /**
   * Learns what verifies (transitions first, again while a pass learns more: a chain may arrive
   * in any order); a record that does not verify is ignored. True when anything was new.
   */
  learn(records: TrustRecords): boolean {
    let learnedAny = false;
    let pending = [...records.transitions];
    for (let pass = 0; pass < 9 && pending.length > 0; pass++) {
      const next: Uint8Array[] = [];
      for (const t of pending) {
        try {
          if (this.store.learnTransition(t)) learnedAny = true;
        } catch {
          next.push(t);
        }
      }
      if (next.length === pending.length) break;
      pending = next;
    }
    for (const d of records.delegations) {
      try {
        if (this.store.learnDelegation(d)) learnedAny = true;
      } catch {
        // does not verify under a trusted root: ignored
      }
    }
    if (learnedAny) this.#generation++;
    return learnedAny;
  }

  /**
   * The records learned beyond the product config, merged into what the store kept. Beyond the
   * caps (8 transitions, 16 delegations) the records that anchor the stored evidence come first
   * (`anchor`: the key that signed it and its root — the delegation of that key, the transitions
   * on the path to that root), then the newest; the rest is dropped.
   */
  stored(
    before: StoredTrust,
    anchor?: { signedBy: string; root: string } | null,
  ): { transitions: string[]; delegations: string[]; revocationList: string | null } {
    const learned = this.store.learned();
    // What does not decode at all is dropped (it can never verify); a record that decodes is
    // kept even when it does not verify now (a product config may make it verify later).
    const transitions = [...new Set([...decodableRecords('transition', before.transitions), ...learned.transitions])];
    const delegations = [...new Set([...decodableRecords('delegation', before.delegations), ...learned.delegations])];
    const decodedTransitions = new Map(transitions.map((t) => [t, decodeRootTransition(Buffer.from(t, 'base64'))]));
    const decodedDelegations = new Map(delegations.map((d) => [d, decodeDelegation(Buffer.from(d, 'base64'))]));
    // The transitions on the path to the anchoring root, walking back from it.
    const path = new Set<string>();
    for (let at = anchor?.root, hops = 0; at !== undefined && hops < MAX_STORED_TRANSITIONS; hops++) {
      const into = transitions.find((t) => !path.has(t) && decodedTransitions.get(t)!.nextKeyId.toString('hex') === at);
      if (!into) break;
      path.add(into);
      at = decodedTransitions.get(into)!.previousKeyId.toString('hex');
    }
    const anchoring = new Set(
      delegations.filter((d) => decodedDelegations.get(d)!.delegateKeyId.toString('hex') === anchor?.signedBy),
    );
    return {
      transitions: keepWithin(transitions, MAX_STORED_TRANSITIONS, path, (t) => decodedTransitions.get(t)!.issuedAt),
      delegations: keepWithin(
        delegations,
        MAX_STORED_DELEGATIONS,
        anchoring,
        (d) => decodedDelegations.get(d)!.validFrom,
      ),
      revocationList: this.#revocations ? this.#revocations.encoded.toString('base64') : before.revocationList,
    };
  }

  get revocations(): RevocationList | null {
    return this.#revocations;
  }

  #verifiedList(bytes: Uint8Array): RevocationList {
    const list = decodeRevocationList(bytes);
    const root = this.store.rootFor(list.issuerKeyId, list.issuedAt, this.skewMs);
    if (!root || !verifyRevocationList(list, root.publicKeyRaw)) {
      throw new CoreError(
        'REVOCATION_LIST_INVALID',
        `the revocation list (version ${list.listVersion}) is not signed by a root this installation trusts: ${TRUST_FIX}`,
      );
    }
    return list;
  }

  /**
   * A revocation list carried in: it must verify under a trusted root and be no older than the
   * one held (REVOCATION_LIST_STALE). Returns it; the caller stores `stored()`.
   */
  acceptRevocationList(bytes: Uint8Array): RevocationList {
    const list = this.#verifiedList(bytes);
    assertNotOlder(this.#revocations, list);
    this.#revocations = list;
    this.#generation++;
    return list;
  }

  /** The entry of the held list for this subject, or null (no list held: nothing is revoked). */
  revoked(kind: RevocationEntry['kind'], subject: Uint8Array): RevocationEntry | null {
    return this.#revocations ? isRevoked(this.#revocations, kind, subject) : null;
  }

  /** Whether an OEM manufacturer or token CA key (raw public key) is on the held list. */
  keyRevoked(kind: 'manufacturer' | 'tokenCa', publicKeyRaw: Uint8Array): RevocationEntry | null {
    return this.revoked(kind, revocationSubjectOfKeyId(keyIdOf(publicKeyRaw)));
  }

  keyObject(raw: Buffer): KeyObject {
    const id = raw.toString('base64');
    let key = this.#keys.get(id);
    if (!key) {
      if (this.#keys.size > 256) this.#keys.clear();
      key = publicKeyFromRaw(raw);
      this.#keys.set(id, key);
    }
    return key;
  }

  #chosen(raw: Buffer, root: TrustRoot, delegated: boolean): ChosenKey {
    return {
      key: this.keyObject(raw),
      raw,
      signedBy: keyIdHex(raw),
      root: root.keyId.toString('hex'),
      delegated,
    };
  }

  /** The root with this key ID valid when the artefact says it was signed, or null. */
  root(issuer: Uint8Array | string, madeAt: number): ChosenKey | null {
    const id = typeof issuer === 'string' ? keyIdBuffer(issuer) : Buffer.from(issuer);
    if (!id || !Number.isFinite(madeAt)) return null;
    const root = this.store.rootFor(id, madeAt, this.skewMs);
    return root ? this.#chosen(root.publicKeyRaw, root, false) : null;
  }

  /** A root, else an online key with this purpose, with this key ID at that time. */
  rootOrDelegate(issuer: Uint8Array | string, madeAt: number, purpose: number): ChosenKey | null {
    const root = this.root(issuer, madeAt);
    if (root) return root;
    const id = typeof issuer === 'string' ? keyIdBuffer(issuer) : Buffer.from(issuer);
    if (!id || !Number.isFinite(madeAt)) return null;
    const d = this.store.delegateFor(id, madeAt, purpose, this.skewMs);
    return d ? this.#chosen(d.delegation.delegatePublicKey, d.root, true) : null;
  }

  /**
   * The keys that may have signed a confirmation ID of this key index on that day: index 0, the
   * roots valid that day; 1..3, the online keys of that index valid that day with the purpose.
   */
  confirmationCandidates(keyIndex: number, issuedDay: number): ChosenKey[] {
    const midday = issuedDay * DAY + DAY / 2;
    const slack = DAY / 2 + this.skewMs;
    if (keyIndex === 0) return this.store.rootsAt(midday, slack).map((r) => this.#chosen(r.publicKeyRaw, r, false));
    if (keyIndex !== 1 && keyIndex !== 2 && keyIndex !== 3) return [];
    return this.store
      .delegatesForIndex(keyIndex, midday, DELEGATION_PURPOSE.confirmations, slack)
      .map((d) => this.#chosen(d.delegation.delegatePublicKey, d.root, true));
  }

  /** The roots as `client status` shows them. */
  roots(): { keyId: string; validFrom: string; validUntil: string | null; source: TrustRoot['source'] }[] {
    return this.store.roots().map((r) => ({
      keyId: r.keyId.toString('hex'),
      validFrom: new Date(r.validFrom).toISOString(),
      validUntil: r.validUntil === null ? null : new Date(r.validUntil).toISOString(),
      source: r.source,
    }));
  }

  /** Whether this root's public key (raw) is trusted now (any validity). */
  trustsRoot(publicKeyRaw: Uint8Array): boolean {
    const raw = Buffer.from(publicKeyRaw);
    return this.store.roots().some((r) => r.publicKeyRaw.equals(raw));
  }
}

/**
 * At most `max` of the records: all when they fit (in their order); else the anchoring ones, then
 * the newest by `time`.
 */
function keepWithin(
  records: readonly string[],
  max: number,
  anchoring: ReadonlySet<string>,
  time: (record: string) => number,
): string[] {
  if (records.length <= max) return [...records];
  const rest = records.filter((r) => !anchoring.has(r)).sort((a, b) => time(b) - time(a));
  return [...records.filter((r) => anchoring.has(r)), ...rest].slice(0, max);
}

/** Reads a stored record list, dropping what does not decode at all (never what may verify later). */
export function decodableRecords(kind: 'transition' | 'delegation', texts: readonly string[]): string[] {
  return texts.filter((t) => {
    try {
      if (kind === 'transition') decodeRootTransition(Buffer.from(t, 'base64'));
      else decodeDelegation(Buffer.from(t, 'base64'));
      return true;
    } catch {
      return false;
    }
  });
}

/** The "unknown signer" refusal of a confirmation ID. */
export function cidSignerUnknown(keyIndex: number, issuedDay: number): ClientError {
  const who = keyIndex === 0 ? 'a root' : `the online key of index ${keyIndex}`;
  return new ClientError(
    'CID_SIGNER_UNKNOWN',
    `this confirmation ID was signed by ${who} on ${new Date(issuedDay * DAY).toISOString().slice(0, 10)} that this installation does not know: ${TRUST_FIX}`,
  );
}

/**
 * One candidate key, as `verifyInstallationConfirmation` takes its keys (tried one at a time so
 * the status can name the signer).
 */
function oneKey(raw: Buffer): ConfirmationKeys {
  return { forIndex: () => [raw] };
}

/** The key index a confirmation ID carries (0 for those made before key indexes). */
export function keyIndexOf(cid: ConfirmationId): number {
  return cid.keyIndex;
}

/**
 * Verifies a confirmation ID against the keys its key index and issue day name. Returns who
 * signed it; null when a candidate exists and none verifies; 'unknown' when no key is known.
 */
export function confirmationSigner(
  trust: ClientTrust,
  iid: InstallationId,
  groupId: string,
  cid: ConfirmationId,
): ChosenKey | null | 'unknown' {
  const candidates = trust.confirmationCandidates(keyIndexOf(cid), cid.issuedDay);
  if (candidates.length === 0) return 'unknown';
  for (const c of candidates) {
    try {
      if (verifyInstallationConfirmation(iid, groupId, cid, oneKey(c.raw))) return c;
    } catch {
      // a malformed candidate: the next
    }
  }
  return null;
}
