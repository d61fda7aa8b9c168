import { DAY, keyIdHex, makeRootTransition, type Clock, type Signer } from '@volact/core';
import { AuthorityError } from './errors.js';
import type { KeyRingStatus, OnlineKeyView, RootView } from './key-ring.js';
import type { KeyRingStore, OnlineKeyRecord, RingSnapshot, RootRecord, RootState } from './key-ring-store.js';
import type { RootKeys } from './root-files.js';
import type { AuditEntry } from './store.js';

/**
 * The root-rotation ceremony (docs/trust.md "Rotation ceremony"): prepare, publish, switch,
 * retire, and online-key rotation. Each step's key file (or token object) is made or destroyed
 * before the one transaction that records the step with its audit row; each step is
 * idempotent and refused out of order. Runs on the key ring's records through RingAccess.
 */

export const ROTATION_STEPS = ['prepare', 'publish', 'switch', 'retire'] as const;
export type RotationStep = (typeof ROTATION_STEPS)[number];

/** Where a test crashes the process (kill -9) in the middle of a step: see the crash test. */
export type CrashPoint =
  | 'prepare.key-written'
  | 'retire.key-destroyed'
  | `${RotationStep}.in-transaction`
  | `${RotationStep}.committed`
  | 'online-key.in-transaction';

export interface RotationResult {
  readonly step: RotationStep;
  /** False: the step had been done already; nothing changed. */
  readonly done: boolean;
  readonly message: string;
  readonly nextStep: RotationStep;
  /** The root the step was about (the next root for prepare/publish/switch, the old one for retire). */
  readonly root: RootView;
  readonly status: KeyRingStatus;
}

export interface OnlineKeyRotation {
  readonly onlineKey: OnlineKeyView;
  readonly previous: OnlineKeyView | null;
  readonly status: KeyRingStatus;
}

const iso = (ms: number) => new Date(ms).toISOString();
const startOfDay = (ms: number) => Math.floor(ms / DAY) * DAY;

/** The last step done and the next one, from the roots' states. */
export function rotationPhase(roots: readonly RootRecord[]): {
  lastStep: RotationStep | null;
  nextStep: RotationStep;
} {
  if (roots.some((r) => r.state === 'prepared')) return { lastStep: 'prepare', nextStep: 'publish' };
  if (roots.some((r) => r.state === 'published')) return { lastStep: 'publish', nextStep: 'switch' };
  if (roots.some((r) => r.state === 'previous')) return { lastStep: 'switch', nextStep: 'retire' };
  if (roots.some((r) => r.state === 'retired')) return { lastStep: 'retire', nextStep: 'prepare' };
  return { lastStep: null, nextStep: 'prepare' };
}

export function outOfOrder(step: RotationStep, phase: { lastStep: RotationStep | null; nextStep: RotationStep }) {
  const err = new AuthorityError(
    'ROOT_ROTATION_OUT_OF_ORDER',
    `the rotation step "${step}" is out of order: ${phase.lastStep ? `the last step done is "${phase.lastStep}", ` : 'no rotation has started, '}the next one is "${phase.nextStep}" (\`volact authority root rotate --step ${phase.nextStep}\`)`,
  );
  return Object.assign(err, { nextStep: phase.nextStep });
}

export function currentOf(ring: RingSnapshot): RootRecord {
  const current = ring.roots.find((r) => r.state === 'current');
  if (!current) {
    throw new AuthorityError('INTERNAL', 'the key ring has no current root (its records were altered by hand)');
  }
  return current;
}

/** What the ceremony uses of the key ring (KeyRing gives it its own). */
export interface RingAccess {
  readonly store: KeyRingStore;
  readonly rootKeys: RootKeys;
  readonly clock: Clock;
  crash(point: CrashPoint): void;
  /** Reads the ring now (and keeps it as this node's copy). */
  reload(): Promise<RingSnapshot>;
  /** A root's signer, or ROOT_KEY_UNAVAILABLE naming its file. */
  requireSigner(root: RootRecord): Signer;
  /** `online-key rotate`: the next online key becomes current, a new next is certified by `root`. */
  renewOnlineKeys(
    ring: RingSnapshot,
    root: Signer,
    now: number,
  ): {
    onlineKeys: OnlineKeyRecord[];
    audit: AuditEntry;
    current: OnlineKeyRecord;
    before: OnlineKeyRecord | undefined;
  };
  rootView(r: RootRecord): RootView;
  onlineKeyView(k: OnlineKeyRecord): OnlineKeyView;
  status(ring: RingSnapshot): KeyRingStatus;
}

export class RingCeremony {
  constructor(private readonly ring: RingAccess) {}

  /** One ceremony step (docs/trust.md "Rotation ceremony"): idempotent, in order, one audit row. */
  async rotate(step: RotationStep): Promise<RotationResult> {
    switch (step) {
      case 'prepare':
        return this.#prepare();
      case 'publish':
        return this.#transition('publish', 'prepared', (ring, now) => {
          const next = ring.roots.find((r) => r.state === 'prepared') as RootRecord;
          const published = { ...next, state: 'published' as const, changedAt: now };
          return {
            roots: [published],
            root: published,
            message: `root #${next.ordinal} ${next.keyId} published: product configs exported from now on list it, and /v1/trust and online answers hand out its transition record`,
          };
        });
      case 'switch': {
        // This node must hold the root it switches to: every node signs with it from the commit on.
        const published = (await this.ring.store.load()).roots.find((r) => r.state === 'published');
        if (published) this.ring.requireSigner(published);
        return this.#transition('switch', 'published', (ring, now) => {
          const next = ring.roots.find((r) => r.state === 'published') as RootRecord;
          const old = currentOf(ring);
          const switched = { ...next, state: 'current' as const, changedAt: now };
          // The online keys stay: certified while the old root was valid, they sign until their
          // end (configs exported before verify what they sign); the next ones are certified by the new root.
          return {
            roots: [{ ...old, state: 'previous', changedAt: now }, switched],
            root: switched,
            message: `root #${next.ordinal} ${next.keyId} is current: it signs host certificates, activation objects, OEM and token-CA certificates, revocation lists and the next online keys' delegations from now on; root #${old.ordinal} ${old.keyId} is previous (retire it when hosts have re-certified)`,
          };
        });
      }
      case 'retire':
        return this.#retire();
    }
  }

  /** A step that only changes states in the database (publish, switch). */
  async #transition(
    step: 'publish' | 'switch',
    from: RootState,
    apply: (
      ring: RingSnapshot,
      now: number,
    ) => { roots: RootRecord[]; onlineKeys?: OnlineKeyRecord[]; root: RootRecord; message: string },
  ): Promise<RotationResult> {
    const now = this.ring.clock.now();
    const outcome = await this.ring.store.change((ring) => {
      const phase = rotationPhase(ring.roots);
      if (phase.lastStep === step) return { result: this.#alreadyDone(step, ring) };
      if (phase.nextStep !== step || !ring.roots.some((r) => r.state === from)) throw outOfOrder(step, phase);
      const change = apply(ring, now);
      this.ring.crash(`${step}.in-transaction`);
      return {
        roots: change.roots,
        ...(change.onlineKeys ? { onlineKeys: change.onlineKeys } : {}),
        audit: this.#auditRow(step, now, change.message),
        result: { done: true, root: change.root, message: change.message },
      };
    });
    this.ring.crash(`${step}.committed`);
    return this.#result(step, outcome);
  }

  #alreadyDone(step: RotationStep, ring: RingSnapshot): { done: false; root: RootRecord; message: string } {
    const stateOf: Record<RotationStep, RootState> = {
      prepare: 'prepared',
      publish: 'published',
      switch: 'current',
      retire: 'retired',
    };
    const root =
      step === 'retire'
        ? (ring.roots.filter((r) => r.state === 'retired').at(-1) as RootRecord)
        : (ring.roots.find((r) => r.state === stateOf[step]) as RootRecord);
    return {
      done: false,
      root,
      message: `already done: root #${root.ordinal} ${root.keyId} is ${root.state}; nothing changed`,
    };
  }

  #auditRow(step: RotationStep, at: number, detail: string): AuditEntry {
    return { at, action: `root.rotate.${step}`, result: 'OK', detail: detail.slice(0, 300) };
  }

  async #result(
    step: RotationStep,
    outcome: { done: boolean; root: RootRecord; message: string },
  ): Promise<RotationResult> {
    const ring = await this.ring.reload();
    const root = ring.roots.find((r) => r.keyId === outcome.root.keyId) ?? outcome.root;
    return {
      step,
      done: outcome.done,
      message: outcome.message,
      nextStep: rotationPhase(ring.roots).nextStep,
      root: this.ring.rootView(root),
      status: this.ring.status(ring),
    };
  }

  /**
   * prepare: the next root's key is made (file written under a temporary name and renamed, or
   * made in the token) BEFORE the transaction that records it; a rerun after a crash between
   * the two adopts that key. The transaction records the root (prepared) and its transition
   * record (signed by the current root and by it; valid from the start of today). A run that
   * loses to another node's prepare (both made a key; the other recorded its own) destroys the
   * key it made: no unrecorded root key is left behind.
   */
  async #prepare(): Promise<RotationResult> {
    const ring = await this.ring.reload();
    const phase = rotationPhase(ring.roots);
    if (phase.lastStep === 'prepare') return this.#result('prepare', this.#alreadyDone('prepare', ring));
    if (phase.nextStep !== 'prepare') throw outOfOrder('prepare', phase);
    const current = this.ring.requireSigner(currentOf(ring));
    const made = this.ring.rootKeys.create(new Set(ring.roots.map((r) => r.keyId)));
    this.ring.crash('prepare.key-written');
    const next = made.signer;
    const nextKeyId = keyIdHex(next.publicKeyRaw);
    const now = this.ring.clock.now();
    // Set when the transaction decided (under the ring's lock) not to record this key.
    let lost = false;
    const loses = (latest: RingSnapshot) => (lost = !latest.roots.some((r) => r.keyId === nextKeyId));
    const outcome = await this.ring.store
      .change((latest) => {
        const again = rotationPhase(latest.roots);
        if (again.lastStep === 'prepare') {
          loses(latest);
          return { result: this.#alreadyDone('prepare', latest) }; // another node
        }
        if (again.nextStep !== 'prepare' || !currentOf(latest).publicKey.equals(current.publicKeyRaw)) {
          loses(latest);
          throw outOfOrder('prepare', again);
        }
        const validFrom = startOfDay(now);
        const root: RootRecord = {
          keyId: nextKeyId,
          ordinal: Math.max(...latest.roots.map((r) => r.ordinal)) + 1,
          publicKey: Buffer.from(next.publicKeyRaw),
          state: 'prepared',
          signer: this.ring.rootKeys.location,
          validFrom,
          validUntil: null,
          transition: makeRootTransition(
            { nextPublicKey: Buffer.from(next.publicKeyRaw), issuedAt: now, nextValidFrom: validFrom },
            current,
            next,
          ),
          createdAt: now,
          changedAt: now,
        };
        const message = `root #${root.ordinal} ${root.keyId} prepared (${made.adopted ? 'adopted the key a crashed prepare made: ' : ''}${made.where}) with its transition record from root ${currentOf(latest).keyId}; next: publish`;
        this.ring.crash('prepare.in-transaction');
        return {
          roots: [root],
          audit: this.#auditRow('prepare', now, message),
          result: { done: true, root, message },
        };
      })
      .finally(() => {
        if (lost) this.ring.rootKeys.destroy(nextKeyId); // another node's prepare won: its key is the next root
      });
    this.ring.crash('prepare.committed');
    return this.#result('prepare', outcome);
  }

  /**
   * retire: the old root's private key is destroyed first (its file deleted), then its state and
   * end (validUntil = now) are committed: a crash between the two leaves a previous root no node
   * can sign with (it was not current), and the rerun commits. Other nodes delete their copy of
   * the file when they next read the ring.
   */
  async #retire(): Promise<RotationResult> {
    const ring = await this.ring.reload();
    const phase = rotationPhase(ring.roots);
    if (phase.lastStep === 'retire') return this.#result('retire', this.#alreadyDone('retire', ring));
    if (phase.nextStep !== 'retire') throw outOfOrder('retire', phase);
    const old = ring.roots.find((r) => r.state === 'previous') as RootRecord;
    const destroyed = this.ring.rootKeys.destroy(old.keyId);
    this.ring.crash('retire.key-destroyed');
    const now = this.ring.clock.now();
    const outcome = await this.ring.store.change((latest) => {
      const again = rotationPhase(latest.roots);
      if (again.lastStep === 'retire') return { result: this.#alreadyDone('retire', latest) };
      if (again.nextStep !== 'retire') throw outOfOrder('retire', again);
      const retired: RootRecord = { ...old, state: 'retired', validUntil: now, changedAt: now };
      const message = `root #${old.ordinal} ${old.keyId} retired: valid until ${iso(now)}, its private key destroyed (${destroyed.length > 0 ? destroyed.join(', ') : 'no copy on this node'}); delete any other copy (other nodes delete theirs when they next read the ring)`;
      this.ring.crash('retire.in-transaction');
      return {
        roots: [retired],
        audit: this.#auditRow('retire', now, message),
        result: { done: true, root: retired, message },
      };
    });
    this.ring.crash('retire.committed');
    return this.#result('retire', outcome);
  }

  /**
   * `volact authority online-key rotate`: the next online key becomes current and a new next,
   * certified by the current root, is made; the one before stays verifiable (its certificate is
   * unchanged) but signs no more.
   */
  async rotateOnlineKey(): Promise<OnlineKeyRotation> {
    const ring = await this.ring.reload();
    const root = this.ring.requireSigner(currentOf(ring));
    const now = this.ring.clock.now();
    const { online, previous } = await this.ring.store.change((latest) => {
      if (!currentOf(latest).publicKey.equals(root.publicKeyRaw)) {
        throw new AuthorityError(
          'ROOT_ROTATION_OUT_OF_ORDER',
          'the current root changed meanwhile (another node switched): run it again',
        );
      }
      const next = this.ring.renewOnlineKeys(latest, root, now);
      this.ring.crash('online-key.in-transaction');
      return {
        onlineKeys: next.onlineKeys,
        audit: next.audit,
        result: { online: next.current, previous: next.before ?? null },
      };
    });
    const after = await this.ring.reload();
    return {
      onlineKey: this.ring.onlineKeyView(online),
      previous: previous ? this.ring.onlineKeyView({ ...previous, state: 'previous' }) : null,
      status: this.ring.status(after),
    };
  }
}
