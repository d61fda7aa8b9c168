import { CoreError } from '../errors.js';
import type { ProductConfig } from '../products.js';
import { confirmationKeyIndex, decodeDelegation, verifyDelegation, type Delegation } from './delegation.js';
import { keyIdOf } from './key-id.js';
import { decodeRootTransition, verifyRootTransition } from './root-transition.js';

/** A root the store believes: from the product config, or learned through transition records. */
export interface TrustRoot {
  publicKeyRaw: Buffer;
  keyId: Buffer;
  /** ms since the epoch: the root signs nothing that is accepted as made before this. */
  validFrom: number;
  /** ms since the epoch, or null: no end. */
  validUntil: number | null;
  source: 'config' | 'transition';
}

export interface TrustedDelegate {
  delegation: Delegation;
  /** The root that issued the delegation (valid at its validFrom). */
  root: TrustRoot;
}

/** Transition records followed from a root of the config (and kept), at most. */
export const MAX_TRANSITION_CHAIN = 8;
/** Learned transition records kept. */
export const MAX_LEARNED_TRANSITIONS = 8;
/** Learned delegation certificates kept (the ones ending first are dropped beyond). */
export const MAX_LEARNED_DELEGATIONS = 16;

interface RootEntry {
  root: TrustRoot;
  /** Transitions between a config root and this one (0 for a config root). */
  depth: number;
}

function invalid(why: string): CoreError {
  return new CoreError('TRUST_RECORD_INVALID', why);
}

function within(madeAt: number, from: number, until: number | null, skewMs: number): boolean {
  return madeAt >= from - skewMs && (until === null || madeAt <= until + skewMs);
}

/**
 * The client's (and the host's) view of whom to believe: the roots of the product config, the
 * roots learned from transition records chained to them, and the delegation certificates they
 * signed. A record is learned only when it verifies under a root already trusted.
 */
export class TrustStore {
  readonly #roots: RootEntry[] = [];
  readonly #delegations: { delegation: Delegation; learned: boolean }[] = [];
  readonly #learnedTransitions: Buffer[] = [];
  /** Key IDs (hex) a transition record never makes trusted (the product config's `distrustedRoots`). */
  readonly #distrusted: ReadonlySet<string>;

  private constructor(roots: readonly TrustRoot[], distrusted: readonly string[] = []) {
    this.#distrusted = new Set(distrusted.map((k) => k.toLowerCase()));
    for (const root of roots) {
      if (this.#roots.some((e) => e.root.keyId.equals(root.keyId)))
        throw invalid(`the root ${root.keyId.toString('hex')} is listed twice`);
      this.#roots.push({ root, depth: 0 });
    }
  }

  /** A store trusting these roots (validUntil absent: no end). */
  static fromRoots(
    roots: readonly { publicKeyRaw: Uint8Array; validFrom: number; validUntil?: number | null }[],
    distrusted: readonly string[] = [],
  ): TrustStore {
    if (roots.length === 0) throw invalid('a trust store needs at least one root');
    return new TrustStore(
      roots.map((r) => {
        if (r.publicKeyRaw.length !== 32) throw invalid(`a root public key has 32 bytes, got ${r.publicKeyRaw.length}`);
        const publicKeyRaw = Buffer.from(r.publicKeyRaw);
        return {
          publicKeyRaw,
          keyId: keyIdOf(publicKeyRaw),
          validFrom: r.validFrom,
          validUntil: r.validUntil ?? null,
          source: 'config' as const,
        };
      }),
      distrusted,
    );
  }

  /**
   * The roots of the config (`authority.roots`, or `authority.rootPublicKey` alone, valid from the
   * epoch with no end) and its delegation certificates (each must verify under one of them).
   */
  static fromProductConfig(config: ProductConfig): TrustStore {
    const authority = config.authority;
    const roots = authority.roots
      ? authority.roots.map((r) => ({
          publicKeyRaw: Buffer.from(r.publicKey, 'base64'),
          validFrom: Date.parse(r.validFrom),
          validUntil: r.validUntil === undefined ? null : Date.parse(r.validUntil),
        }))
      : [{ publicKeyRaw: Buffer.from(authority.rootPublicKey, 'base64'), validFrom: 0, validUntil: null }];
    const store = TrustStore.fromRoots(roots, authority.distrustedRoots ?? []);
    for (const d of authority.delegations ?? []) store.#addDelegation(Buffer.from(d, 'base64'), false);
    return store;
  }

  #rootEntry(keyId: Uint8Array): RootEntry | undefined {
    return this.#roots.find((e) => e.root.keyId.equals(keyId));
  }

  /**
   * Learns a root-transition record if it verifies under a root already trusted (chains up to 8
   * transitions). Returns false if its next root is already known; throws CoreError
   * TRUST_RECORD_INVALID if it does not verify.
   *
   * A root with an end (`validUntil`: retired, or given an end by the publisher) hands over to
   * no one: its successor is in the config that gave it the end, and a record signed by it after
   * its key leaked could be dated anything before that end. A root the config distrusts is never
   * learned. The learned root signs nothing dated before its predecessor's start or the record's
   * own issue time (a record cannot reach back before it was made).
   */
  learnTransition(bytes: Uint8Array): boolean {
    const t = decodeRootTransition(bytes);
    if (this.#rootEntry(t.nextKeyId)) return false;
    const previous = this.#rootEntry(t.previousKeyId);
    if (!previous)
      throw invalid(
        `root-transition record: signed by root ${t.previousKeyId.toString('hex')}, which this store does not trust ` +
          '(learn the records before it first, or install a current product config)',
      );
    if (!verifyRootTransition(t, previous.root.publicKeyRaw))
      throw invalid(
        `root-transition record to root ${t.nextKeyId.toString('hex')}: a signature (previous or next root) does not verify`,
      );
    if (this.#distrusted.has(t.nextKeyId.toString('hex')))
      throw invalid(
        `root-transition record to root ${t.nextKeyId.toString('hex')}: the product config distrusts that root (authority.distrustedRoots)`,
      );
    if (previous.root.validUntil !== null)
      throw invalid(
        `root-transition record: root ${t.previousKeyId.toString('hex')} has an end (${new Date(previous.root.validUntil).toISOString()}); a root with an end hands over to no one (its successor is in the product config)`,
      );
    if (previous.depth + 1 > MAX_TRANSITION_CHAIN)
      throw invalid(`root-transition record: a chain longer than ${MAX_TRANSITION_CHAIN} records is not followed`);
    if (this.#learnedTransitions.length >= MAX_LEARNED_TRANSITIONS)
      throw invalid(
        `root-transition record: ${MAX_LEARNED_TRANSITIONS} records are already learned; install a current product config`,
      );
    this.#roots.push({
      root: {
        publicKeyRaw: Buffer.from(t.nextPublicKey),
        keyId: t.nextKeyId,
        validFrom: Math.max(t.nextValidFrom, previous.root.validFrom, t.issuedAt),
        validUntil: null,
        source: 'transition',
      },
      depth: previous.depth + 1,
    });
    this.#learnedTransitions.push(Buffer.from(t.encoded));
    return true;
  }

  /**
   * Learns a delegation certificate if it verifies under a root already trusted. Returns false
   * if already known; throws CoreError TRUST_RECORD_INVALID if it does not verify.
   */
  learnDelegation(bytes: Uint8Array): boolean {
    return this.#addDelegation(bytes, true);
  }

  #addDelegation(bytes: Uint8Array, learned: boolean): boolean {
    const d = decodeDelegation(bytes);
    if (this.#delegations.some((e) => e.delegation.encoded.equals(d.encoded))) return false;
    const issuer = this.#rootEntry(d.issuerKeyId);
    if (!issuer)
      throw invalid(
        `delegation certificate for ${d.delegateKeyId.toString('hex')}: issued by root ${d.issuerKeyId.toString('hex')}, ` +
          'which this store does not trust',
      );
    if (!verifyDelegation(d, issuer.root.publicKeyRaw))
      throw invalid(
        `delegation certificate for ${d.delegateKeyId.toString('hex')}: the root's signature does not verify`,
      );
    this.#delegations.push({ delegation: d, learned });
    if (learned) {
      const kept = this.#delegations.filter((e) => e.learned);
      if (kept.length > MAX_LEARNED_DELEGATIONS) {
        // Drop the learned certificate that ends first.
        const first = kept.reduce((a, b) => (b.delegation.validUntil < a.delegation.validUntil ? b : a));
        this.#delegations.splice(this.#delegations.indexOf(first), 1);
      }
    }
    return true;
  }

  /** Every trusted root, config roots first, then learned ones in the order learned. */
  roots(): readonly TrustRoot[] {
    return this.#roots.map((e) => e.root);
  }

  /** The trusted root with this key ID whose validity covers madeAt (± skewMs), or null. */
  rootFor(keyId: Uint8Array, madeAt: number, skewMs = 0): TrustRoot | null {
    const entry = this.#rootEntry(keyId);
    if (!entry) return null;
    return within(madeAt, entry.root.validFrom, entry.root.validUntil, skewMs) ? entry.root : null;
  }

  /** Any root valid at madeAt (for artefacts verified by trying each root, e.g. CIDs of key index 0). */
  rootsAt(madeAt: number, skewMs = 0): readonly TrustRoot[] {
    return this.#roots.map((e) => e.root).filter((r) => within(madeAt, r.validFrom, r.validUntil, skewMs));
  }

  #trusted(d: Delegation, madeAt: number, purpose: number, skewMs: number): TrustedDelegate | null {
    if (purpose === 0 || (d.purposes & purpose) !== purpose) return null;
    if (!within(madeAt, d.validFrom, d.validUntil, skewMs)) return null;
    const root = this.rootFor(d.issuerKeyId, d.validFrom, skewMs);
    return root ? { delegation: d, root } : null;
  }

  /** A trusted delegate by key ID, with the purpose, valid at madeAt (± skewMs), or null. */
  delegateFor(keyId: Uint8Array, madeAt: number, purpose: number, skewMs = 0): TrustedDelegate | null {
    for (const { delegation } of this.#delegations) {
      if (!delegation.delegateKeyId.equals(keyId)) continue;
      const trusted = this.#trusted(delegation, madeAt, purpose, skewMs);
      if (trusted) return trusted;
    }
    return null;
  }

  /** Delegates for a CID key index (1..3), valid at madeAt (± skewMs), with the purpose. */
  delegatesForIndex(index: 1 | 2 | 3, madeAt: number, purpose: number, skewMs = 0): readonly TrustedDelegate[] {
    const out: TrustedDelegate[] = [];
    for (const { delegation } of this.#delegations) {
      if (confirmationKeyIndex(delegation.sequence) !== index) continue;
      const trusted = this.#trusted(delegation, madeAt, purpose, skewMs);
      if (trusted && !out.some((t) => t.delegation.delegateKeyId.equals(delegation.delegateKeyId))) out.push(trusted);
    }
    return out;
  }

  /** The records learned beyond the product config, base64, to persist (at most 8 transitions, 16 delegations). */
  learned(): { transitions: string[]; delegations: string[] } {
    return {
      transitions: this.#learnedTransitions.map((t) => t.toString('base64')),
      delegations: this.#delegations.filter((e) => e.learned).map((e) => e.delegation.encoded.toString('base64')),
    };
  }
}
