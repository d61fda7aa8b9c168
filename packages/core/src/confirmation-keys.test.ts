import { describe, expect, it } from 'vitest';
import { DAY } from './clock.js';
import { trustConfirmationKeys } from './confirmation-keys.js';
import { generateSigningKeyPair } from './crypto.js';
import { randomGuid } from './ids.js';
import {
  confirmInstallation,
  confirmInstallationWithRoot,
  makeInstallationId,
  verifyInstallationConfirmation,
} from './installation-id.js';
import { makeKey } from './keys.js';
import { shortSigningKey } from './short-signature.js';
import { fileSigner } from './trust/signer.js';
import { DELEGATION_PURPOSE, confirmationKeyIndex, makeDelegation } from './trust/delegation.js';
import { TrustStore } from './trust/trust-store.js';

// A client's view: the root from its product config, the online key from a delegation it learned.
const root = generateSigningKeyPair();
const online = generateSigningKeyPair();
const DAY0 = 20_400;
const sequence = 4; // key index 4 % 3 + 1 = 2
const delegation = makeDelegation(
  {
    delegatePublicKey: online.publicKeyRaw,
    sequence,
    validFrom: DAY0 * DAY + 10 * 3_600_000, // 10:00 on DAY0
    validUntil: (DAY0 + 30) * DAY,
    purposes: DELEGATION_PURPOSE.confirmations,
  },
  fileSigner(root),
);
const trust = TrustStore.fromRoots([{ publicKeyRaw: root.publicKeyRaw, validFrom: 0 }]);
trust.learnDelegation(delegation);
const group = randomGuid();
const iid = makeInstallationId({ kind: 'installation', key: makeKey('mak'), hardwareId: 'pc', groupIds: [group] });
const signer = { keyIndex: confirmationKeyIndex(sequence), short: shortSigningKey(online.privateKey) };

describe('trustConfirmationKeys: the keys a CID names, from a TrustStore', () => {
  const keys = trustConfirmationKeys(trust);

  it('index 0 gives the roots, the delegated index its online key (from the day its delegation starts)', () => {
    expect(signer.keyIndex).toBe(2);
    expect(keys.forIndex(0, DAY0).map((k) => Buffer.from(k).toString('hex'))).toEqual([
      root.publicKeyRaw.toString('hex'),
    ]);
    expect(keys.forIndex(2, DAY0).map((k) => Buffer.from(k).toString('hex'))).toEqual([
      online.publicKeyRaw.toString('hex'),
    ]);
    expect(keys.forIndex(1, DAY0)).toEqual([]);
    expect(keys.forIndex(3, DAY0)).toEqual([]);
    expect(keys.forIndex(2, DAY0 - 1)).toEqual([]); // before the delegation
    expect(keys.forIndex(2, DAY0 + 31)).toEqual([]); // after it
  });

  it("verifies the online key's CID and a root's, and refuses one for another purpose", () => {
    const cid = confirmInstallation(iid, group, DAY0 + 3, signer);
    expect(verifyInstallationConfirmation(iid, group, cid, keys)).toBe(true);
    const rootCid = confirmInstallationWithRoot(iid, group, DAY0 + 3, shortSigningKey(root.privateKey));
    expect(verifyInstallationConfirmation(iid, group, rootCid, keys)).toBe(true);
    // a delegation for confirmations does not let the key sign phone host certificates
    expect(trustConfirmationKeys(trust, DELEGATION_PURPOSE.phoneHostCertificates).forIndex(2, DAY0 + 3)).toEqual([]);
    // a key the root never delegated, claiming index 2: refused
    const stranger = { keyIndex: 2 as const, short: shortSigningKey(generateSigningKeyPair().privateKey) };
    expect(verifyInstallationConfirmation(iid, group, confirmInstallation(iid, group, DAY0 + 3, stranger), keys)).toBe(
      false,
    );
  });
});
