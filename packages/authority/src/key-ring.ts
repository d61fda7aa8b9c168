import { performance } from 'node:perf_hooks';
import {
  DAY,
  DELEGATION_PURPOSE,
  confirmationKeyIndex,
  generateSigningKeyPair,
  keyIdHex,
  makeDelegation,
  privateKeyToPem,
  shortSigningKey,
  signingKeyPairFromPem,
  type Clock,
  type ConfirmationSigner,
  type Signer,
} from '@volact/core';
import type { AuthorityContext } from './context.js';
import { AuthorityError } from './errors.js';
import {
  RingCeremony,
  currentOf,
  rotationPhase,
  type CrashPoint,
  type OnlineKeyRotation,
  type RotationResult,
  type RotationStep,
} from './key-ring-ceremony.js';
import type { KeyRingStore, OnlineKeyRecord, RingSnapshot, RootRecord, RootState } from './key-ring-store.js';
import type { RootKeys } from './root-files.js';
import { seal, unseal } from './sealing.js';
import type { AuditEntry } from './store.js';

export { FileRootKeys, type RootKeys } from './root-files.js';
export {
  ROTATION_STEPS,
  rotationPhase,
  type CrashPoint,
  type OnlineKeyRotation,
  type RotationResult,
  type RotationStep,
} from './key-ring-ceremony.js';

/**
 * The authority's key ring: its roots and its online (delegated) keys, which key signs what, and
 * what clients are given; the root-rotation ceremony is key-ring-ceremony.ts. The ring's state is in
 * the database (every node reads the same); roots' private keys are in each node's data
 * directory (roots/<keyId>.pem) or a token; online keys' private keys are sealed in the
 * database. See docs/trust.md.
 */

/**
 * Online keys (docs/trust.md "Keys and their jobs"): the ring always holds a current one and a
 * NEXT one, certified by the current root when the current one became current and handed out
 * from then on (product configs, /v1/trust). The next becomes current when it is
 * ONLINE_KEY_NEXT_DAYS old (or the current one ends within ONLINE_KEY_RENEWAL_DAYS, or at
 * `online-key rotate`), and a new next is made. A key is certified for ONLINE_KEY_VALIDITY_DAYS
 * from the start of its day: next for about two years, current for about two, 30 days to spare.
 * So a product config exported at any time verifies phone CIDs for at least two years
 * (ONLINE_KEY_NEXT_DAYS) with no update and nothing learned.
 */
export const ONLINE_KEY_NEXT_DAYS = 730;
export const ONLINE_KEY_VALIDITY_DAYS = 2 * ONLINE_KEY_NEXT_DAYS + 30;
/** A current online key ending within this many days is replaced by the next read of the ring that can (automatically). */
export const ONLINE_KEY_RENEWAL_DAYS = 30;
export const ALL_PURPOSES =
  DELEGATION_PURPOSE.confirmations |
  DELEGATION_PURPOSE.phoneHostCertificates |
  DELEGATION_PURPOSE.phoneActivationObjects;
/** Roots and delegations a product config carries at most (the schema's bounds). */
export const MAX_BUNDLE_ROOTS = 8;
export const MAX_BUNDLE_DELEGATIONS = 8;
/** Transition records and delegations handed out in online answers and at /v1/trust, at most. */
export const MAX_TRUST_RECORDS = 8;
/** How long a node trusts its copy of the ring before reading it again (real time: other nodes' steps). */
export const RING_REFRESH_MS = 5_000;

export interface RootView {
  readonly ordinal: number;
  readonly keyId: string;
  readonly publicKey: string;
  readonly state: RootState;
  readonly validFrom: string;
  readonly validUntil: string | null;
  /** `file` or the token's spec. */
  readonly signer: string;
  /** Whether this node holds its private key (a retired root's is destroyed). */
  readonly heldHere: boolean;
  /** Where its private key is (or was). */
  readonly where: string;
}

export interface OnlineKeyView {
  readonly sequence: number;
  readonly keyId: string;
  readonly state: OnlineKeyRecord['state'];
  readonly issuerKeyId: string;
  /** The confirmation IDs' key index it signs with (sequence mod 3 + 1). */
  readonly keyIndex: 1 | 2 | 3;
  readonly validFrom: string;
  readonly validUntil: string;
  readonly purposes: string[];
}

export interface KeyRingStatus {
  readonly roots: RootView[];
  readonly onlineKeys: OnlineKeyView[];
  /** The last ceremony step done (null: no rotation yet) and the next one. */
  readonly rotation: { readonly lastStep: RotationStep | null; readonly nextStep: RotationStep };
}

/** The trust records a client learns from the authority (base64): transitions and delegations. */
export interface TrustRecords {
  readonly transitions: string[];
  readonly delegations: string[];
}

/** What `authority.roots` / `authority.delegations` of a product config say. */
export interface TrustBundle {
  readonly rootPublicKey: string;
  readonly roots: { publicKey: string; validFrom: string; validUntil?: string }[];
  readonly delegations: string[];
}

const iso = (ms: number) => new Date(ms).toISOString();
const startOfDay = (ms: number) => Math.floor(ms / DAY) * DAY;
const PURPOSE_NAMES: [number, string][] = [
  [DELEGATION_PURPOSE.confirmations, 'confirmations'],
  [DELEGATION_PURPOSE.phoneHostCertificates, 'phoneHostCertificates'],
  [DELEGATION_PURPOSE.phoneActivationObjects, 'phoneActivationObjects'],
];

export interface KeyRingOptions {
  readonly store: KeyRingStore;
  readonly rootKeys: RootKeys;
  readonly keyHashSecret: Buffer;
  readonly clock: Clock;
  /** Tests only: called at each crash point of a step (a test kills the process there). */
  readonly crashAt?: (point: CrashPoint) => void;
}

/**
 * One node's view of the key ring: loaded from the database at first use and again after
 * RING_REFRESH_MS (another node's step shows within seconds), after each of this node's steps.
 */
export class KeyRing {
  readonly #store: KeyRingStore;
  readonly #rootKeys: RootKeys;
  readonly #secret: Buffer;
  readonly #clock: Clock;
  #crashAt: ((point: CrashPoint) => void) | undefined;
  #ring: RingSnapshot | undefined;
  #loadedAt = -Infinity;
  #loading: Promise<RingSnapshot> | undefined;
  #confirmation: { sequence: number; signer: ConfirmationSigner } | undefined;
  readonly #ceremony: RingCeremony;

  constructor(options: KeyRingOptions) {
    this.#store = options.store;
    this.#rootKeys = options.rootKeys;
    this.#secret = options.keyHashSecret;
    this.#clock = options.clock;
    this.#crashAt = options.crashAt;
    this.#ceremony = new RingCeremony({
      store: this.#store,
      rootKeys: this.#rootKeys,
      clock: this.#clock,
      crash: (point) => this.#crash(point),
      reload: () => this.reload(),
      requireSigner: (root) => this.#requireSigner(root),
      renewOnlineKeys: (ring, root, now) => this.#renewOnlineKeys(ring, root, now, true),
      rootView: (r) => this.#rootView(r),
      onlineKeyView: (k) => this.#onlineKeyView(k),
      status: (ring) => this.#status(ring),
    });
  }

  /** Tests only: where the next steps crash. */
  setCrashHook(crashAt: ((point: CrashPoint) => void) | undefined): void {
    this.#crashAt = crashAt;
  }

  #crash(point: CrashPoint): void {
    this.#crashAt?.(point);
  }

  /**
   * Reads the ring when this node's copy is missing or older than RING_REFRESH_MS; makes it on
   * first use. A failed refresh (the database away a moment) keeps the copy this node has: the
   * call itself meets the database next and reports it.
   */
  async ready(): Promise<RingSnapshot> {
    // Real time only decides when to look for other nodes' steps; whether an online key is due
    // or ended is the authority's clock's (a copy read a second ago may be years old by it).
    const fresh = performance.now() - this.#loadedAt < RING_REFRESH_MS;
    if (this.#ring && fresh && !this.#onlineKeyDue(this.#ring) && !this.#onlineKeyEnded(this.#ring)) {
      return this.#ring;
    }
    try {
      const ring = await this.reload();
      // A read in flight that renews nothing (open()): read again, renewing.
      return this.#onlineKeyDue(ring) ? await this.reload() : ring;
    } catch (err) {
      if (this.#ring && !(err instanceof AuthorityError && err.code !== 'STORE_UNAVAILABLE')) return this.#ring;
      throw err;
    }
  }

  /** Ends the root keys' sessions (a token's). */
  close(): void {
    this.#rootKeys.close?.();
  }

  /** Waits for a read in flight (before the store closes). */
  async settle(): Promise<void> {
    await this.#loading?.catch(() => undefined);
  }

  /**
   * The first read as the authority opens: makes the ring when the database has none (init, an
   * older authority) but renews nothing (`root status` opens the authority and must not write;
   * the first call that signs renews what is due).
   */
  open(): Promise<RingSnapshot> {
    return this.reload(false);
  }

  /** Reads the ring now (one read at a time); makes it when the database has none (a new or older authority). */
  reload(renew = true): Promise<RingSnapshot> {
    this.#loading ??= (async () => {
      try {
        let ring = await this.#store.load();
        if (ring.roots.length === 0) ring = await this.#create();
        if (renew && this.#onlineKeyDue(ring)) ring = await this.#renewOnlineKey();
        this.#adopt(ring);
        return ring;
      } finally {
        this.#loading = undefined;
      }
    })();
    return this.#loading;
  }

  /**
   * Whether the online keys are due by the authority's clock (no next key, the next one
   * ONLINE_KEY_NEXT_DAYS old, or the current one ending within ONLINE_KEY_RENEWAL_DAYS) and this
   * node can certify a new next (it holds the current root): then they are renewed.
   */
  #onlineKeyDue(ring: RingSnapshot): boolean {
    const root = ring.roots.find((r) => r.state === 'current');
    if (!root || !this.#dueIn(ring, this.#clock.now())) return false;
    try {
      return this.#rootKeys.signer(root.keyId) !== null;
    } catch {
      return false; // a token that does not answer: the keys are renewed by the next read that can
    }
  }

  /** Whether the current online key has ended by the authority's clock (read the ring again: another node may have renewed it). */
  #onlineKeyEnded(ring: RingSnapshot): boolean {
    const online = ring.onlineKeys.find((k) => k.state === 'current');
    return online !== undefined && online.validUntil <= this.#clock.now();
  }

  async #renewOnlineKey(): Promise<RingSnapshot> {
    const ring = await this.#store.load();
    const root = this.#requireSigner(currentOf(ring));
    const now = this.#clock.now();
    await this.#store.change((latest) => {
      // Decided again under the ring's lock: nodes reading together renew once.
      if (!this.#dueIn(latest, now) || !currentOf(latest).publicKey.equals(root.publicKeyRaw)) {
        return { result: undefined };
      }
      return { ...this.#renewOnlineKeys(latest, root, now, false), result: undefined };
    });
    return this.#store.load();
  }

  /** Whether the online keys need a change: a ring with no next key (made by an older volact) gets one; a due next becomes current. */
  #dueIn(ring: RingSnapshot, now: number): boolean {
    if (!ring.onlineKeys.some((k) => k.state === 'current')) return false;
    return !ring.onlineKeys.some((k) => k.state === 'next') || this.#whyDue(ring, now) !== null;
  }

  /** Why the next online key must become current now (null: not yet). */
  #whyDue(ring: RingSnapshot, now: number): string | null {
    const online = ring.onlineKeys.find((k) => k.state === 'current');
    const next = ring.onlineKeys.find((k) => k.state === 'next');
    if (online && online.validUntil - now <= ONLINE_KEY_RENEWAL_DAYS * DAY)
      return 'the current one ends within 30 days';
    if (!next) return null;
    if (now - next.validFrom >= ONLINE_KEY_NEXT_DAYS * DAY) return `the next one is ${ONLINE_KEY_NEXT_DAYS} days old`;
    if (next.validUntil - now <= ONLINE_KEY_RENEWAL_DAYS * DAY) return 'the next one ends within 30 days';
    return null;
  }

  /**
   * The rows and audit row that renew the online keys: a ring with no next key gets one
   * (certified by `root`); when due (or `force`: \`online-key rotate\`) the next becomes current,
   * the current previous, and a new next is made (again, when the clock jumped past that one too).
   */
  #renewOnlineKeys(
    ring: RingSnapshot,
    root: Signer,
    now: number,
    force: boolean,
  ): {
    onlineKeys: OnlineKeyRecord[];
    audit: AuditEntry;
    current: OnlineKeyRecord;
    before: OnlineKeyRecord | undefined;
  } {
    const keys = new Map(ring.onlineKeys.map((k) => [k.sequence, k]));
    const changed = new Map<number, OnlineKeyRecord>();
    const put = (k: OnlineKeyRecord) => {
      keys.set(k.sequence, k);
      changed.set(k.sequence, k);
    };
    const of = (state: OnlineKeyRecord['state']) => [...keys.values()].find((k) => k.state === state);
    const makeNext = () => put(this.#makeOnlineKey(Math.max(-1, ...keys.keys()) + 1, root, now, 'next'));
    const before = of('current');
    const notes: string[] = [];
    if (!of('next')) {
      makeNext();
      notes.push(`online key #${(of('next') as OnlineKeyRecord).sequence} made next`);
    }
    let why = force ? 'online-key rotate' : this.#whyDue({ roots: ring.roots, onlineKeys: [...keys.values()] }, now);
    for (let i = 0; why !== null && i < 3; i++) {
      const next = of('next') as OnlineKeyRecord;
      const current = of('current');
      if (current) put({ ...current, state: 'previous', changedAt: now });
      put({ ...next, state: 'current', changedAt: now });
      makeNext();
      notes.push(
        `#${next.sequence} ${next.keyId} current (${why})${current ? `, #${current.sequence} signs no more` : ''}`,
      );
      why = this.#whyDue({ roots: ring.roots, onlineKeys: [...keys.values()] }, now);
    }
    const current = of('current') as OnlineKeyRecord;
    const next = of('next') as OnlineKeyRecord;
    return {
      onlineKeys: [...changed.values()].sort((a, b) => a.sequence - b.sequence),
      audit: {
        at: now,
        action: current === before ? 'online-key.next' : 'online-key.rotate',
        result: 'OK',
        detail:
          `${notes.join('; ')}; next: #${next.sequence} ${next.keyId} certified by root ${keyIdHex(root.publicKeyRaw)} until ${iso(next.validUntil)}`.slice(
            0,
            300,
          ),
      },
      current,
      before,
    };
  }

  #adopt(ring: RingSnapshot): void {
    this.#ring = ring;
    this.#loadedAt = performance.now();
    // A root retired on another node: this node's copy of its private key goes too.
    for (const r of ring.roots) {
      if (r.state === 'retired' && this.#rootKeys.location === 'file' && this.#rootKeys.pair(r.keyId)) {
        this.#rootKeys.destroy(r.keyId);
      }
    }
  }

  /**
   * The ring of an authority whose database has none: made at init, and when an authority made
   * before the ring opens (its root-signing-key.pem becomes root #1, current). Root #1 is valid
   * from the epoch, as a product config without `roots` says: whatever it signed still verifies.
   */
  async #create(): Promise<RingSnapshot> {
    const first = this.#firstRootSigner();
    const now = this.#clock.now();
    await this.#store.change((ring) => {
      if (ring.roots.length > 0) return { result: undefined }; // another node made it meanwhile
      const root: RootRecord = {
        keyId: keyIdHex(first.publicKeyRaw),
        ordinal: 1,
        publicKey: Buffer.from(first.publicKeyRaw),
        state: 'current',
        signer: this.#rootKeys.location,
        validFrom: 0,
        validUntil: null,
        transition: null,
        createdAt: now,
        changedAt: now,
      };
      const online = this.#makeOnlineKey(0, first, now, 'current');
      const next = this.#makeOnlineKey(1, first, now, 'next');
      return {
        roots: [root],
        onlineKeys: [online, next],
        audit: {
          at: now,
          action: 'key-ring.create',
          result: 'OK',
          detail: `root #1 ${root.keyId} current (${this.#rootKeys.describe(root.keyId)}); online keys #0 ${online.keyId} (current) and #1 ${next.keyId} (next) certified until ${iso(online.validUntil)}`,
        },
        result: undefined,
      };
    });
    return this.#store.load();
  }

  #firstRootSigner(): Signer {
    const first = this.#rootKeys.first();
    if (first) return first;
    throw new AuthorityError(
      'ROOT_KEY_UNAVAILABLE',
      this.#rootKeys.location === 'file'
        ? 'the data directory holds no root key file the key ring can start from (root-signing-key.pem or one roots/<keyId>.pem): restore the data directory from its backup'
        : `the token ${this.#rootKeys.location} holds no root key the key ring can start from`,
    );
  }

  /** A new online key, its private key sealed, certified by `root` from the start of today for ONLINE_KEY_VALIDITY_DAYS. */
  #makeOnlineKey(sequence: number, root: Signer, now: number, state: OnlineKeyRecord['state']): OnlineKeyRecord {
    const pair = generateSigningKeyPair();
    const validFrom = startOfDay(now);
    const validUntil = validFrom + ONLINE_KEY_VALIDITY_DAYS * DAY;
    const delegation = makeDelegation(
      { delegatePublicKey: pair.publicKeyRaw, sequence, validFrom, validUntil, purposes: ALL_PURPOSES },
      root,
    );
    return {
      sequence,
      keyId: keyIdHex(pair.publicKeyRaw),
      publicKey: pair.publicKeyRaw,
      privateSealed: seal(this.#secret, Buffer.from(privateKeyToPem(pair.privateKey))),
      issuerKeyId: keyIdHex(root.publicKeyRaw),
      delegation,
      purposes: ALL_PURPOSES,
      validFrom,
      validUntil,
      state,
      createdAt: now,
      changedAt: now,
    };
  }

  #loaded(): RingSnapshot {
    if (!this.#ring) {
      throw new AuthorityError(
        'INTERNAL',
        'the key ring is not loaded yet: await the authority call (it reads the ring first), or ctx.ringReady()',
      );
    }
    return this.#ring;
  }

  /** The current root's record (this node's copy). */
  currentRoot(): RootRecord {
    return currentOf(this.#loaded());
  }

  /** The first root: the authority's identity (GVLKs are derived from it and never change). */
  firstRoot(): RootRecord {
    return this.#loaded().roots[0] as RootRecord;
  }

  /** The root the data directory starts from (before the ring is read): its first root file or the token's. */
  localRootPublicKey(): Buffer {
    return Buffer.from(this.#firstRootSigner().publicKeyRaw);
  }

  /** The public keys of the roots clients may know (all but a prepared one), oldest first. */
  publicKeys(): Buffer[] {
    return this.#publicRoots(this.#loaded()).map((r) => r.publicKey);
  }

  /** Whether the ring was read (a sync caller may then use rootSigner()). */
  get loaded(): boolean {
    return this.#ring !== undefined;
  }

  /** The current root's signer; ROOT_KEY_UNAVAILABLE (naming the file to copy) when this node lacks it. */
  rootSigner(): Signer {
    return this.#requireSigner(this.currentRoot());
  }

  #requireSigner(root: RootRecord): Signer {
    const signer = this.#rootKeys.signer(root.keyId);
    if (signer) return signer;
    throw new AuthorityError(
      'ROOT_KEY_UNAVAILABLE',
      this.#rootKeys.location === 'file'
        ? `this node does not hold the private key of root #${root.ordinal} ${root.keyId} (${root.state}): copy ${this.#rootKeys.describe(root.keyId)} from the node where \`root rotate --step prepare\` ran into this data directory (mode 0600)`
        : `the token this node uses does not hold the private key of root #${root.ordinal} ${root.keyId} (${root.state}): ${this.#rootKeys.describe(root.keyId)} is not there; connect the token where \`root rotate --step prepare\` made it (the token and slot that signer.json names) to this node`,
    );
  }

  /** The current online key as CIDs, phone host certificates and phone activation objects are signed with it. */
  confirmationSigner(): ConfirmationSigner {
    const ring = this.#loaded();
    const online = ring.onlineKeys.find((k) => k.state === 'current');
    if (!online) throw new AuthorityError('INTERNAL', 'the key ring has no current online key');
    if (online.validUntil <= this.#clock.now()) {
      // Never sign with an ended key (clients would refuse what it signs): renewal needs the current root.
      const root = currentOf(ring);
      throw new AuthorityError(
        'ONLINE_KEY_EXPIRED',
        `online key #${online.sequence} ${online.keyId} ended ${iso(online.validUntil)} and this node cannot certify the next one: it needs root #${root.ordinal} ${root.keyId} (${this.#rootKeys.describe(root.keyId)}); give this node that root, or run \`volact authority online-key rotate\` on a node that holds it`,
      );
    }
    if (this.#confirmation?.sequence === online.sequence) return this.#confirmation.signer;
    const pem = unseal(this.#secret, online.privateSealed);
    if (!pem) {
      throw new AuthorityError(
        'AUTHORITY_FILE_DAMAGED',
        `the online key #${online.sequence} does not unseal with key-hash.secret: the data directory's key-hash.secret is not the one of this database; restore it from the backup`,
      );
    }
    const signer: ConfirmationSigner = {
      keyIndex: confirmationKeyIndex(online.sequence),
      short: shortSigningKey(signingKeyPairFromPem(pem.toString('utf8')).privateKey),
    };
    this.#confirmation = { sequence: online.sequence, signer };
    return signer;
  }

  /** The current online key's public key and sequence. */
  currentOnlineKey(): OnlineKeyRecord {
    const online = this.#loaded().onlineKeys.find((k) => k.state === 'current');
    if (!online) throw new AuthorityError('INTERNAL', 'the key ring has no current online key');
    return online;
  }

  // ---- what clients are given ------------------------------------------------------------

  /** Roots clients may know: all but a prepared one (it enters bundles at publish). */
  #publicRoots(ring: RingSnapshot): RootRecord[] {
    return ring.roots.filter((r) => r.state !== 'prepared');
  }

  /** The roots a bundle lists: oldest first; beyond eight, the oldest are left out (never the current). */
  #bundledRoots(ring: RingSnapshot): RootRecord[] {
    const current = currentOf(ring);
    let roots = this.#publicRoots(ring);
    while (roots.length > MAX_BUNDLE_ROOTS) roots = roots.filter((r) => r !== roots.find((x) => x !== current));
    return roots;
  }

  /** Delegations clients may know: unexpired, by a root they may know, newest first, at most `max`. */
  #publicDelegations(ring: RingSnapshot, now: number, max: number): OnlineKeyRecord[] {
    const roots = new Set(this.#publicRoots(ring).map((r) => r.keyId));
    return ring.onlineKeys
      .filter((k) => roots.has(k.issuerKeyId) && k.validUntil > now)
      .sort((a, b) => b.sequence - a.sequence)
      .slice(0, max);
  }

  /** `authority.rootPublicKey`, `roots` and `delegations` of a product config exported now. */
  async bundle(): Promise<TrustBundle> {
    const ring = await this.ready();
    const now = this.#clock.now();
    const current = currentOf(ring);
    const roots = this.#bundledRoots(ring);
    return {
      rootPublicKey: current.publicKey.toString('base64'),
      roots: roots.map((r) => ({
        publicKey: r.publicKey.toString('base64'),
        validFrom: iso(r.validFrom),
        ...(r.validUntil === null ? {} : { validUntil: iso(r.validUntil) }),
      })),
      delegations: this.#publicDelegations(ring, now, MAX_BUNDLE_DELEGATIONS)
        .reverse()
        .map((k) => k.delegation.toString('base64')),
    };
  }

  /** The transition records (oldest first) and delegations clients learn from online answers and /v1/trust. */
  async records(): Promise<TrustRecords> {
    const ring = await this.ready();
    return this.#records(ring);
  }

  #records(ring: RingSnapshot): TrustRecords {
    const transitions = this.#publicRoots(ring)
      .filter((r) => r.transition !== null)
      .slice(-MAX_TRUST_RECORDS)
      .map((r) => (r.transition as Buffer).toString('base64'));
    const delegations = this.#publicDelegations(ring, this.#clock.now(), MAX_TRUST_RECORDS)
      .reverse()
      .map((k) => k.delegation.toString('base64'));
    return { transitions, delegations };
  }

  /** GET /v1/trust: the roots clients may know with their states, and the records. */
  async trust(): Promise<TrustRecords & { roots: Omit<RootView, 'heldHere' | 'where' | 'signer' | 'ordinal'>[] }> {
    const ring = await this.ready();
    return {
      roots: this.#bundledRoots(ring).map((r) => ({
        publicKey: r.publicKey.toString('base64'),
        keyId: r.keyId,
        state: r.state,
        validFrom: iso(r.validFrom),
        validUntil: r.validUntil === null ? null : iso(r.validUntil),
      })),
      ...this.#records(ring),
    };
  }

  // ---- status and the ceremony --------------------------------------------------------------

  #rootView(r: RootRecord): RootView {
    return {
      ordinal: r.ordinal,
      keyId: r.keyId,
      publicKey: r.publicKey.toString('base64'),
      state: r.state,
      validFrom: iso(r.validFrom),
      validUntil: r.validUntil === null ? null : iso(r.validUntil),
      signer: r.signer,
      ...this.#held(r),
    };
  }

  /** Whether this node holds a root's private key; a token that does not answer is shown as such, not thrown. */
  #held(r: RootRecord): { heldHere: boolean; where: string } {
    const where = this.#rootKeys.describe(r.keyId);
    if (r.state === 'retired') return { heldHere: false, where };
    try {
      return { heldHere: this.#rootKeys.signer(r.keyId) !== null, where };
    } catch (err) {
      const code = err instanceof AuthorityError ? err.code : 'ERROR';
      return { heldHere: false, where: `${where} (unavailable: ${code})` };
    }
  }

  #onlineKeyView(k: OnlineKeyRecord): OnlineKeyView {
    return {
      sequence: k.sequence,
      keyId: k.keyId,
      state: k.state,
      issuerKeyId: k.issuerKeyId,
      keyIndex: confirmationKeyIndex(k.sequence),
      validFrom: iso(k.validFrom),
      validUntil: iso(k.validUntil),
      purposes: PURPOSE_NAMES.filter(([bit]) => (k.purposes & bit) !== 0).map(([, name]) => name),
    };
  }

  #status(ring: RingSnapshot): KeyRingStatus {
    return {
      roots: ring.roots.map((r) => this.#rootView(r)),
      onlineKeys: ring.onlineKeys.map((k) => this.#onlineKeyView(k)),
      rotation: rotationPhase(ring.roots),
    };
  }

  /**
   * `volact authority root status`: read afresh from the database, read-only: nothing is
   * renewed, audited or deleted (an online key due is renewed by the next call that signs; a
   * retired root's copy here is deleted by the next read of the ring).
   */
  async status(): Promise<KeyRingStatus> {
    await this.settle(); // the read as the authority opened (it may be making the ring)
    const ring = await this.#store.load();
    // Kept as this node's copy (memory only): what signs next is what status showed.
    if (ring.roots.length > 0) {
      this.#ring = ring;
      this.#loadedAt = performance.now();
    }
    return this.#status(ring);
  }

  /** One ceremony step (docs/trust.md "Rotation ceremony"): idempotent, in order, one audit row. */
  rotate(step: RotationStep): Promise<RotationResult> {
    return this.#ceremony.rotate(step);
  }

  /**
   * `volact authority online-key rotate`: a new online key certified by the current root becomes
   * current; the one before stays verifiable (its certificate is unchanged) but signs no more.
   */
  rotateOnlineKey(): Promise<OnlineKeyRotation> {
    return this.#ceremony.rotateOnlineKey();
  }
}

/** The parts of an authority's context that come from its key ring. */
export type RingContextKeys = 'confirmationSigner' | 'rootSigner' | 'ringReady' | 'trustRecords' | 'rootPublicKeys';

/** An authority's context whose signers are the key ring's current root and online key. */
export function contextWithRing(base: Omit<AuthorityContext, RingContextKeys>, ring: KeyRing): AuthorityContext {
  return {
    ...base,
    confirmationSigner: () => ring.confirmationSigner(),
    rootSigner: () => ring.rootSigner(),
    ringReady: async () => {
      await ring.ready();
    },
    trustRecords: () => ring.records(),
    rootPublicKeys: () => ring.publicKeys(),
  };
}
