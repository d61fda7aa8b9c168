import { describe, expect, it } from 'vitest';
import { DAY, HOUR } from '../clock.js';
import { generateSigningKeyPair } from '../crypto.js';
import type { CoreError } from '../errors.js';
import { gvlkFor } from '../keys.js';
import { defaultPolicy, parseProductConfig, type ProductConfig } from '../products.js';
import { guidToBytes } from '../ids.js';
import { DELEGATION_PURPOSE, makeDelegation } from './delegation.js';
import { makeRootTransition } from './root-transition.js';
import { fileSigner, type Signer } from './signer.js';
import { MAX_LEARNED_DELEGATIONS, TrustStore } from './trust-store.js';

const T0 = Date.UTC(2026, 0, 1);
const GROUP = '00000000-0000-0000-0000-000000000001';
const signer = (): Signer => fileSigner(generateSigningKeyPair());
const r1 = signer();
const r2 = signer();
const r3 = signer();
const online = signer();

function config(authority: Record<string, unknown>): ProductConfig {
  const rootPublicKey = authority.rootPublicKey as string;
  return parseProductConfig({
    format: 'volact-product-config/1',
    authority,
    group: { id: GROUP, name: 'office', kind: 'app', threshold: 5 },
    gvlk: gvlkFor(Buffer.from(rootPublicKey, 'base64'), guidToBytes(GROUP)).text,
    policy: defaultPolicy(),
  });
}

const b64 = (b: Buffer): string => b.toString('base64');
const legacy = (): TrustStore => TrustStore.fromProductConfig(config({ rootPublicKey: b64(r1.publicKeyRaw) }));
const transition = (from: Signer, to: Signer, validFrom: number, issuedAt = validFrom): Buffer =>
  makeRootTransition({ nextPublicKey: to.publicKeyRaw, issuedAt, nextValidFrom: validFrom }, from, to);

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    return (err as CoreError).code;
  }
}

describe('product config trust bundle', () => {
  it('old configs (rootPublicKey alone) stay valid: one root from the epoch with no end', () => {
    const roots = legacy().roots();
    expect(roots).toHaveLength(1);
    expect(roots[0]).toMatchObject({ publicKeyRaw: r1.publicKeyRaw, keyId: r1.keyId, validFrom: 0, validUntil: null });
    expect(roots[0]!.source).toBe('config');
  });

  it('roots and delegations are read; rootPublicKey must be one of the roots; delegations must decode', () => {
    const d = makeDelegation(
      { delegatePublicKey: online.publicKeyRaw, sequence: 0, validFrom: T0, validUntil: T0 + 90 * DAY, purposes: 1 },
      r1,
    );
    const store = TrustStore.fromProductConfig(
      config({
        rootPublicKey: b64(r2.publicKeyRaw),
        roots: [
          {
            publicKey: b64(r1.publicKeyRaw),
            validFrom: '2026-01-01T00:00:00.000Z',
            validUntil: '2027-06-30T00:00:00.000Z',
          },
          { publicKey: b64(r2.publicKeyRaw), validFrom: '2027-01-01T00:00:00.000Z' },
        ],
        delegations: [b64(d)],
      }),
    );
    expect(store.roots().map((r) => [r.validFrom, r.validUntil])).toEqual([
      [T0, Date.UTC(2027, 5, 30)],
      [Date.UTC(2027, 0, 1), null],
    ]);
    expect(store.delegateFor(online.keyId, T0 + DAY, DELEGATION_PURPOSE.confirmations)).not.toBeNull();
    expect(store.learned()).toEqual({ transitions: [], delegations: [] });
    const roots = [{ publicKey: b64(r1.publicKeyRaw), validFrom: '2026-01-01T00:00:00.000Z' }];
    expect(codeOf(() => config({ rootPublicKey: b64(r2.publicKeyRaw), roots }))).toBe('PRODUCT_CONFIG_INVALID');
    expect(
      codeOf(() => config({ rootPublicKey: b64(r1.publicKeyRaw), roots, delegations: [b64(d.subarray(1))] })),
    ).toBe('PRODUCT_CONFIG_INVALID');
    expect(codeOf(() => config({ rootPublicKey: b64(r1.publicKeyRaw), roots: [] }))).toBe('PRODUCT_CONFIG_INVALID');
  });

  it('a config delegation not signed by one of its roots is refused', () => {
    const d = makeDelegation(
      { delegatePublicKey: online.publicKeyRaw, sequence: 0, validFrom: T0, validUntil: T0 + DAY, purposes: 1 },
      r3,
    );
    const cfg = config({ rootPublicKey: b64(r1.publicKeyRaw), delegations: [b64(d)] });
    expect(codeOf(() => TrustStore.fromProductConfig(cfg))).toBe('TRUST_RECORD_INVALID');
  });
});

describe('TrustStore roots and transitions', () => {
  it('a config-only store trusts its root', () => {
    const store = legacy();
    expect(store.rootFor(r1.keyId, T0)?.publicKeyRaw).toEqual(r1.publicKeyRaw);
    expect(store.rootFor(r2.keyId, T0)).toBeNull();
    expect(store.rootsAt(T0)).toHaveLength(1);
  });

  it('a transition signed by the old root teaches the next root, valid from nextValidFrom', () => {
    const store = legacy();
    const t = transition(r1, r2, T0 + 10 * DAY, T0);
    expect(store.learnTransition(t)).toBe(true);
    expect(store.learnTransition(t)).toBe(false);
    expect(store.roots()[1]).toMatchObject({
      keyId: r2.keyId,
      validFrom: T0 + 10 * DAY,
      validUntil: null,
      source: 'transition',
    });
    expect(store.rootFor(r2.keyId, T0 + 10 * DAY)).not.toBeNull();
    expect(store.rootFor(r2.keyId, T0 + 10 * DAY - 1)).toBeNull();
    expect(store.rootFor(r2.keyId, T0 + 10 * DAY - HOUR, HOUR)).not.toBeNull();
    expect(store.rootFor(r1.keyId, T0 + 20 * DAY)).not.toBeNull(); // the old root keeps verifying
    expect(store.rootsAt(T0 + 20 * DAY)).toHaveLength(2);
    expect(store.learned().transitions).toEqual([t.toString('base64')]);
  });

  it('a forged transition is refused: signed by an unknown key, or without the next root’s signature', () => {
    const store = legacy();
    expect(codeOf(() => store.learnTransition(transition(r3, r2, T0)))).toBe('TRUST_RECORD_INVALID');
    const claimed = transition(r3, r2, T0);
    r1.keyId.copy(claimed, 1); // names the trusted root, signed by another
    expect(codeOf(() => store.learnTransition(claimed))).toBe('TRUST_RECORD_INVALID');
    const noNext = transition(r1, r2, T0);
    noNext.copy(noNext, 121, 57, 121); // the previous root signed twice: no proof the next key is held
    expect(codeOf(() => store.learnTransition(noNext))).toBe('TRUST_RECORD_INVALID');
    const altered = transition(r1, r2, T0);
    altered.writeBigUInt64BE(BigInt(T0 - 365 * DAY), 49); // backdate the next root's start
    expect(codeOf(() => store.learnTransition(altered))).toBe('TRUST_RECORD_INVALID');
    expect(codeOf(() => store.learnTransition(Buffer.alloc(10)))).toBe('TRUST_RECORD_INVALID');
    expect(store.roots()).toHaveLength(1);
    expect(store.learned().transitions).toEqual([]);
  });

  it('chains of two are learned in order (and the second alone is refused)', () => {
    const t12 = transition(r1, r2, T0 + DAY);
    const t23 = transition(r2, r3, T0 + 2 * DAY);
    const early = legacy();
    expect(codeOf(() => early.learnTransition(t23))).toBe('TRUST_RECORD_INVALID');
    const store = legacy();
    expect(store.learnTransition(t12)).toBe(true);
    expect(store.learnTransition(t23)).toBe(true);
    expect(store.rootFor(r3.keyId, T0 + 2 * DAY)).not.toBeNull();
    // A restarted client re-learns from what it persisted.
    const again = legacy();
    for (const t of store.learned().transitions) again.learnTransition(Buffer.from(t, 'base64'));
    expect(again.roots().map((r) => r.keyId)).toEqual([r1.keyId, r2.keyId, r3.keyId]);
  });

  it('chains are followed up to 8 records, no further', () => {
    const store = legacy();
    let previous = r1;
    for (let i = 1; i <= 8; i++) {
      const nextRoot = signer();
      expect(store.learnTransition(transition(previous, nextRoot, T0 + i * DAY))).toBe(true);
      previous = nextRoot;
    }
    expect(codeOf(() => store.learnTransition(transition(previous, signer(), T0 + 9 * DAY)))).toBe(
      'TRUST_RECORD_INVALID',
    );
    expect(store.roots()).toHaveLength(9);
    expect(store.learned().transitions).toHaveLength(8);
  });

  it('a root with an end: evidence made after validUntil (± skew) is refused, and it teaches no root after its end', () => {
    const store = TrustStore.fromRoots([{ publicKeyRaw: r1.publicKeyRaw, validFrom: T0, validUntil: T0 + 30 * DAY }]);
    expect(store.rootFor(r1.keyId, T0 - 1)).toBeNull();
    expect(store.rootFor(r1.keyId, T0)).not.toBeNull();
    expect(store.rootFor(r1.keyId, T0 + 30 * DAY)).not.toBeNull();
    expect(store.rootFor(r1.keyId, T0 + 30 * DAY + 1)).toBeNull();
    expect(store.rootFor(r1.keyId, T0 + 30 * DAY + HOUR, HOUR)).not.toBeNull();
    expect(store.rootFor(r1.keyId, T0 + 30 * DAY + HOUR + 1, HOUR)).toBeNull();
    expect(store.rootsAt(T0 + 31 * DAY)).toEqual([]);
    expect(codeOf(() => store.learnTransition(transition(r1, r2, T0 + 31 * DAY)))).toBe('TRUST_RECORD_INVALID');
  });

  it('a root given an end (a leaked one) teaches no root at all, even by a record dated before its end', () => {
    const store = TrustStore.fromRoots([{ publicKeyRaw: r1.publicKeyRaw, validFrom: T0, validUntil: T0 + 30 * DAY }]);
    // The thief of r1 mints a successor, backdated inside r1's validity, valid from the epoch.
    const backdated = makeRootTransition(
      { nextPublicKey: r2.publicKeyRaw, issuedAt: T0 + DAY, nextValidFrom: 0 },
      r1,
      r2,
    );
    expect(codeOf(() => store.learnTransition(backdated))).toBe('TRUST_RECORD_INVALID');
    expect(() => store.learnTransition(backdated)).toThrow(/has an end/);
    expect(store.roots()).toHaveLength(1);
    expect(store.rootFor(r2.keyId, T0 + 400 * DAY)).toBeNull();
  });

  it('a learned root signs nothing dated before the record was made or before its predecessor began', () => {
    const store = TrustStore.fromRoots([{ publicKeyRaw: r1.publicKeyRaw, validFrom: T0 }]);
    // nextValidFrom 0 (the epoch), issued at T0 + 10 days: valid from T0 + 10 days.
    store.learnTransition(
      makeRootTransition({ nextPublicKey: r2.publicKeyRaw, issuedAt: T0 + 10 * DAY, nextValidFrom: 0 }, r1, r2),
    );
    expect(store.roots()[1]!.validFrom).toBe(T0 + 10 * DAY);
    expect(store.rootFor(r2.keyId, T0 + 5 * DAY)).toBeNull();
    // Issued with a time before the predecessor's start: from the predecessor's start.
    const second = TrustStore.fromRoots([{ publicKeyRaw: r1.publicKeyRaw, validFrom: T0 }]);
    second.learnTransition(
      makeRootTransition({ nextPublicKey: r2.publicKeyRaw, issuedAt: 0, nextValidFrom: 0 }, r1, r2),
    );
    expect(second.roots()[1]!.validFrom).toBe(T0);
  });

  it('a root the product config distrusts is never learned again, and the config may not list it', () => {
    const store = TrustStore.fromProductConfig(
      config({ rootPublicKey: b64(r1.publicKeyRaw), distrustedRoots: [r2.keyId.toString('hex')] }),
    );
    expect(() => store.learnTransition(transition(r1, r2, T0))).toThrow(/distrusts/);
    expect(store.roots()).toHaveLength(1);
    expect(store.learnTransition(transition(r1, r3, T0))).toBe(true);
    expect(() => config({ rootPublicKey: b64(r1.publicKeyRaw), distrustedRoots: [r1.keyId.toString('hex')] })).toThrow(
      /distrusted root is also listed/,
    );
  });
});

describe('TrustStore delegations', () => {
  const delegation = (
    root: Signer,
    f: Partial<{ sequence: number; validFrom: number; validUntil: number; purposes: number }> = {},
    key: Signer = online,
  ): Buffer =>
    makeDelegation(
      {
        delegatePublicKey: key.publicKeyRaw,
        sequence: f.sequence ?? 4,
        validFrom: f.validFrom ?? T0,
        validUntil: f.validUntil ?? T0 + 90 * DAY,
        purposes: f.purposes ?? DELEGATION_PURPOSE.confirmations,
      },
      root,
    );

  it('delegateFor checks the purpose and the validity (± skew)', () => {
    const store = legacy();
    expect(store.learnDelegation(delegation(r1))).toBe(true);
    expect(store.learnDelegation(delegation(r1))).toBe(false);
    const c = DELEGATION_PURPOSE.confirmations;
    expect(store.delegateFor(online.keyId, T0 + DAY, c)?.root.keyId).toEqual(r1.keyId);
    expect(store.delegateFor(online.keyId, T0 + DAY, DELEGATION_PURPOSE.phoneHostCertificates)).toBeNull();
    expect(store.delegateFor(online.keyId, T0 - 1, c)).toBeNull();
    expect(store.delegateFor(online.keyId, T0 - HOUR, c, HOUR)).not.toBeNull();
    expect(store.delegateFor(online.keyId, T0 + 90 * DAY + 1, c)).toBeNull();
    expect(store.delegateFor(r2.keyId, T0 + DAY, c)).toBeNull();
  });

  it('a delegation by an unknown root, or altered, is refused', () => {
    const store = legacy();
    expect(codeOf(() => store.learnDelegation(delegation(r3)))).toBe('TRUST_RECORD_INVALID');
    const forged = delegation(r3);
    r1.keyId.copy(forged, 1);
    expect(codeOf(() => store.learnDelegation(forged))).toBe('TRUST_RECORD_INVALID');
    const widened = delegation(r1);
    widened[61] = 7; // all purposes
    expect(codeOf(() => store.learnDelegation(widened))).toBe('TRUST_RECORD_INVALID');
    expect(store.learned().delegations).toEqual([]);
  });

  it('the issuing root must be valid at the delegation’s validFrom', () => {
    // r2 is learned valid from T0 + 10 days; a delegation it backdates to T0 is not trusted.
    const store = legacy();
    store.learnTransition(transition(r1, r2, T0 + 10 * DAY, T0));
    store.learnDelegation(delegation(r2, { validFrom: T0 }));
    expect(store.delegateFor(online.keyId, T0 + 11 * DAY, DELEGATION_PURPOSE.confirmations)).toBeNull();
    store.learnDelegation(delegation(r2, { validFrom: T0 + 10 * DAY }));
    expect(store.delegateFor(online.keyId, T0 + 11 * DAY, DELEGATION_PURPOSE.confirmations)?.root.keyId).toEqual(
      r2.keyId,
    );
    // And a root that ended before the delegation's start does not vouch for it.
    const ended = TrustStore.fromRoots([{ publicKeyRaw: r1.publicKeyRaw, validFrom: 0, validUntil: T0 }]);
    ended.learnDelegation(delegation(r1, { validFrom: T0 + DAY }));
    expect(ended.delegateFor(online.keyId, T0 + 2 * DAY, DELEGATION_PURPOSE.confirmations)).toBeNull();
  });

  it('delegatesForIndex picks the keys whose sequence mod 3 + 1 is the index, valid that day', () => {
    const store = legacy();
    const k1 = signer();
    const k2 = signer();
    const k4 = signer();
    store.learnDelegation(delegation(r1, { sequence: 1, validUntil: T0 + 30 * DAY }, k1)); // index 2
    store.learnDelegation(delegation(r1, { sequence: 2 }, k2)); // index 3
    store.learnDelegation(delegation(r1, { sequence: 4, validFrom: T0 + 20 * DAY }, k4)); // index 2
    const c = DELEGATION_PURPOSE.confirmations;
    const keys = (index: 1 | 2 | 3, at: number) =>
      store.delegatesForIndex(index, at, c).map((t) => t.delegation.delegateKeyId.toString('hex'));
    expect(keys(2, T0 + DAY)).toEqual([k1.keyId.toString('hex')]);
    expect(keys(2, T0 + 25 * DAY)).toEqual([k1.keyId.toString('hex'), k4.keyId.toString('hex')]);
    expect(keys(2, T0 + 31 * DAY)).toEqual([k4.keyId.toString('hex')]);
    expect(keys(3, T0 + DAY)).toEqual([k2.keyId.toString('hex')]);
    expect(keys(1, T0 + DAY)).toEqual([]);
    expect(store.delegatesForIndex(3, T0 + DAY, DELEGATION_PURPOSE.phoneActivationObjects)).toEqual([]);
  });

  it('learned() is bounded: 16 delegations kept, the one ending first dropped', () => {
    const store = legacy();
    const all: Buffer[] = [];
    for (let i = 0; i < MAX_LEARNED_DELEGATIONS + 3; i++) {
      const d = delegation(r1, { sequence: i, validUntil: T0 + (100 - i) * DAY }, signer());
      all.push(d);
      store.learnDelegation(d);
    }
    const kept = store.learned().delegations;
    expect(kept).toHaveLength(MAX_LEARNED_DELEGATIONS);
    // The three ending first (the last three made) are the ones dropped.
    expect(kept).toEqual(all.slice(0, MAX_LEARNED_DELEGATIONS).map((d) => d.toString('base64')));
  });
});
