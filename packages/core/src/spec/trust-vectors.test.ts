import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeDelegation, verifyDelegation, DELEGATION_BYTES } from '../trust/delegation.js';
import { keyIdOf } from '../trust/key-id.js';
import {
  DELEGATION_LAYOUT,
  HOST_STATUS_LAYOUT,
  REVOCATION_ENTRY_LAYOUT,
  REVOCATION_LIST_LAYOUT,
  ROOT_TRANSITION_LAYOUT,
  TRUST_LAYOUTS,
} from '../trust/layout.js';
import {
  HOST_STATUS_BYTES,
  decodeHostStatus,
  decodeRevocationList,
  isRevoked,
  verifyHostStatus,
  verifyRevocationList,
} from '../trust/revocation.js';
import { ROOT_TRANSITION_BYTES, decodeRootTransition, verifyRootTransition } from '../trust/root-transition.js';
import { TrustStore } from '../trust/trust-store.js';
import { hostKeyRefOf } from '../installation-id.js';
import { DOC_PATHS } from './test-vectors.js';
import {
  TRUST_VECTOR_INPUTS,
  buildTrustVectors,
  renderTrustLayoutBlocks,
  trustLayoutBlocksOf,
} from './trust-vectors.js';

const t = buildTrustVectors();

describe('trust record layouts', () => {
  it('declare the sizes the codecs use (185, 126, 37 + 25·n + 64, 113)', () => {
    expect(ROOT_TRANSITION_LAYOUT.size).toBe(ROOT_TRANSITION_BYTES);
    expect(ROOT_TRANSITION_BYTES).toBe(185);
    expect(DELEGATION_LAYOUT.size).toBe(DELEGATION_BYTES);
    expect(DELEGATION_BYTES).toBe(126);
    expect(REVOCATION_LIST_LAYOUT.size).toBe(37);
    expect(REVOCATION_ENTRY_LAYOUT.size).toBe(25);
    expect(HOST_STATUS_LAYOUT.size).toBe(HOST_STATUS_BYTES);
    expect(HOST_STATUS_BYTES).toBe(113);
  });

  it('docs/protocol.md holds every trust layout, rendered from trust/layout.ts', () => {
    const doc = readFileSync(DOC_PATHS.protocol, 'utf8');
    expect(trustLayoutBlocksOf(doc).sort()).toEqual(TRUST_LAYOUTS.map((l) => l.id).sort());
    expect(renderTrustLayoutBlocks(doc), 'run `npm run docs:vectors`').toBe(doc);
    expect(doc).toContain('## Trust records');
  });
});

describe('trust record vectors (docs/test-vectors.md)', () => {
  const rootRaw = t.root.publicKeyRaw;

  it('the transition verifies under the root and teaches the next root from nextValidFrom', () => {
    const rt = decodeRootTransition(t.transition);
    expect(verifyRootTransition(rt, rootRaw)).toBe(true);
    const store = TrustStore.fromRoots([{ publicKeyRaw: rootRaw, validFrom: 0 }]);
    expect(store.learnTransition(t.transition)).toBe(true);
    expect(store.rootFor(keyIdOf(t.nextRoot.publicKeyRaw), TRUST_VECTOR_INPUTS.nextValidFrom)).not.toBeNull();
  });

  it('the delegation, the list and the status verify under the root; the list names its two subjects', () => {
    expect(verifyDelegation(decodeDelegation(t.delegation), rootRaw)).toBe(true);
    const list = decodeRevocationList(t.revocationList);
    expect(verifyRevocationList(list, rootRaw)).toBe(true);
    expect(list.entries).toHaveLength(2);
    expect(isRevoked(list, 'host', hostKeyRefOf(t.revokedHost.publicKeyRaw))).not.toBeNull();
    expect(isRevoked(list, 'tokenCa', keyIdOf(t.revokedTokenCa.publicKeyRaw))).not.toBeNull();
    expect(isRevoked(list, 'host', hostKeyRefOf(t.host.publicKeyRaw))).toBeNull();
    const status = decodeHostStatus(t.hostStatus);
    expect(verifyHostStatus(status, rootRaw)).toBe(true);
    expect(status.hostKeyRef).toEqual(hostKeyRefOf(t.host.publicKeyRaw));
  });

  it('the bytes are in docs/test-vectors.md', () => {
    const doc = readFileSync(DOC_PATHS.testVectors, 'utf8').replace(/```text\n([0-9a-f\n]+)```/g, (_m, hex: string) =>
      hex.replace(/\n/g, ''),
    );
    for (const bytes of [t.transition, t.delegation, t.revocationList, t.hostStatus]) {
      expect(doc).toContain(bytes.toString('hex'));
    }
  });
});
