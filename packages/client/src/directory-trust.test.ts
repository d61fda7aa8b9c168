import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DAY,
  ManualClock,
  fileSigner,
  generateSigningKeyPair,
  keyIdHex,
  makeRootTransition,
  randomGuid,
  signActivationObject,
  type SigningKeyPair,
} from '@volact/core';
import { Licence } from './licence.js';
import { FIXTURE_GROUP, productWith } from './trust-fixtures.js';

/**
 * A directory-only member (it reads its activation object from LDAP, never asks a KMS host or
 * the authority) learns a new root from the transition records the object carries (docs/trust.md).
 */
const T = Date.UTC(2027, 2, 1, 12);
const rootA = generateSigningKeyPair();
const rootB = generateSigningKeyPair();
const stranger = generateSigningKeyPair();
const productA = productWith([{ pair: rootA }]);
const transitionAB = makeRootTransition(
  { nextPublicKey: rootB.publicKeyRaw, issuedAt: T - 10 * DAY, nextValidFrom: T - 5 * DAY },
  fileSigner(rootA),
  fileSigner(rootB),
);
const dir = mkdtempSync(join(tmpdir(), 'volact-client-directory-trust-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function objectBy(root: SigningKeyPair, transitions: readonly Buffer[]) {
  return signActivationObject(
    {
      name: 'office-corp',
      objectId: randomGuid(),
      group: { id: FIXTURE_GROUP, name: 'fixture' },
      domain: 'corp.test',
      issuedAt: T - DAY,
      transitions: transitions.map((t) => t.toString('base64')),
    },
    fileSigner(root),
  );
}

let n = 0;
/** A member of corp.test whose store holds this object as its directory activation, opened again. */
function memberHolding(object: unknown): { open: () => Licence; file: string } {
  const stateDir = join(dir, `m${++n}`);
  const clock = new ManualClock(T);
  const licence = Licence.init({
    stateDir,
    product: productA,
    hardwareId: `hw-${n}`,
    clock,
    memberDomain: 'corp.test',
  });
  licence.joinDomain({ url: 'ldap://127.0.0.1:1', domain: 'corp.test', base: 'dc=corp,dc=test' });
  const file = join(stateDir, 'licence.json');
  const stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  stored.activation = { method: 'directory', object: JSON.stringify(object), checkedAt: T - HOUR_MS };
  writeFileSync(file, JSON.stringify(stored));
  return {
    file,
    open: () => Licence.open({ stateDir, product: productA, clock, memberDomain: 'corp.test', hardwareId: `hw-${n}` }),
  };
}
const HOUR_MS = 3_600_000;

describe('directory-based activation across a root switch: a member whose config knows only root A', () => {
  it('is licensed by an object root B signed that carries A→B, and keeps B after the record leaves the object', () => {
    const object = objectBy(rootB, [transitionAB]);
    const member = memberHolding(object);
    const licence = member.open();
    const status = licence.status();
    expect(status).toMatchObject({ state: 'licensed', method: 'directory' });
    expect(status.evidence).toEqual({
      method: 'directory',
      signedBy: keyIdHex(rootB.publicKeyRaw),
      root: keyIdHex(rootB.publicKeyRaw),
    });
    expect(status.trust.roots.map((r) => r.keyId)).toEqual([
      keyIdHex(rootA.publicKeyRaw),
      keyIdHex(rootB.publicKeyRaw),
    ]);
    // Persisted like the records learned from answers (at the next write): the store keeps A→B ...
    licence.setKmsHost(null);
    const saved = JSON.parse(readFileSync(member.file, 'utf8')) as {
      trust: { transitions: string[] };
      activation: { object: string };
    };
    expect(saved.trust.transitions).toEqual([transitionAB.toString('base64')]);
    // ... so the object still verifies after a restart without it (the records are not signed).
    const bare: Record<string, unknown> = { ...object };
    delete bare.transitions;
    saved.activation.object = JSON.stringify(bare);
    writeFileSync(member.file, JSON.stringify(saved));
    expect(member.open().status()).toMatchObject({ state: 'licensed', method: 'directory' });
  });

  it('without the record, the object of root B grants nothing (signed by a root it does not know)', () => {
    const status = memberHolding(objectBy(rootB, [])).open().status();
    expect(status.state).not.toBe('licensed');
    expect(status.trust.roots).toHaveLength(1);
  });

  it('ignores a forged transition (a stranger claiming to be A): its object grants nothing, nothing is learned', () => {
    const forged = makeRootTransition(
      { nextPublicKey: stranger.publicKeyRaw, issuedAt: T - 10 * DAY, nextValidFrom: T - 5 * DAY },
      { ...fileSigner(stranger), keyId: fileSigner(rootA).keyId },
      fileSigner(stranger),
    );
    const member = memberHolding(objectBy(stranger, [forged]));
    const status = member.open().status();
    expect(status.state).not.toBe('licensed');
    expect(status.method).toBeNull();
    expect(status.trust.roots.map((r) => r.keyId)).toEqual([keyIdHex(rootA.publicKeyRaw)]);
    const saved = JSON.parse(readFileSync(member.file, 'utf8')) as { trust: { transitions: string[] } };
    expect(saved.trust.transitions).toEqual([]);
  });

  it('refuses an object carrying more than 8 records or one that is not base64 (the object is invalid)', () => {
    const object = objectBy(rootB, [transitionAB]);
    for (const transitions of [Array(9).fill(transitionAB.toString('base64')), ['not base64!']]) {
      const status = memberHolding({ ...object, transitions })
        .open()
        .status();
      expect(status.state).not.toBe('licensed');
      expect(status.trust.roots).toHaveLength(1);
    }
  });
});
