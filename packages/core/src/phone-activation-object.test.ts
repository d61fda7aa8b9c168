import { describe, expect, it } from 'vitest';
import {
  activationObjectFromConfirmation,
  activationObjectInstallationId,
  activationObjectSignatureValid,
  signPhoneActivationObject,
  signPhoneActivationObjectWithRoot,
} from './activation-object.js';
import { generateSigningKeyPair, keyFingerprint } from './crypto.js';
import { CoreError } from './errors.js';
import { randomGuid } from './ids.js';
import { encodeConfirmationId, parseConfirmationId, type ConfirmationKeys } from './installation-id.js';
import { makeKey } from './keys.js';
import { shortSigningKey } from './short-signature.js';

// Phone-made activation objects (format 2): the CID's key index names the signer, as for MAK CIDs.
const root = generateSigningKeyPair();
const online = generateSigningKeyPair();
const onlineSigner = { keyIndex: 1 as const, short: shortSigningKey(online.privateKey) };
const key = makeKey('kms-host');
const group = { id: randomGuid(), name: 'office14' };
const domain = 'corp.example';
const issuedDay = 20_400;
const keys: ConfirmationKeys = {
  forIndex: (index) => (index === 0 ? [root.publicKeyRaw] : index === 1 ? [online.publicKeyRaw] : []),
};

function cidFor(signer: 'root' | 'online', forDomain = domain): string {
  const iid = activationObjectInstallationId({ key, domain: forDomain, groupId: group.id });
  const refs = { keyRef: iid.keyRef, domainRef: iid.domainRef as Buffer, groupId: group.id, issuedDay };
  return signer === 'online'
    ? encodeConfirmationId(issuedDay, signPhoneActivationObject(refs, onlineSigner), onlineSigner.keyIndex).text
    : encodeConfirmationId(issuedDay, signPhoneActivationObjectWithRoot(refs, shortSigningKey(root.privateKey))).text;
}

const build = (confirmationId: string, withKeys?: ConfirmationKeys) =>
  activationObjectFromConfirmation({
    key,
    domain,
    group,
    name: 'office14-corp',
    rootPublicKeyRaw: root.publicKeyRaw,
    confirmationId,
    ...(withKeys ? { keys: withKeys } : {}),
  });

describe('phone-made activation objects by key index', () => {
  it('an online key (index 1, short signature v2) makes an object whose issuer is that key', () => {
    const object = build(cidFor('online'), keys);
    expect(object.issuer).toBe(keyFingerprint(online.publicKeyRaw).toString('hex'));
    expect(activationObjectSignatureValid(object, online.publicKey, 'delegate')).toBe(true);
    expect(activationObjectSignatureValid(object, online.publicKey)).toBe(true);
    expect(activationObjectSignatureValid(object, online.publicKey, 'root')).toBe(false);
    expect(activationObjectSignatureValid(object, root.publicKey)).toBe(false);
  });

  it('a root CID (index 0, v1, as before online keys) still builds, with the root as issuer', () => {
    const object = build(cidFor('root'));
    expect(object.issuer).toBe(keyFingerprint(root.publicKeyRaw).toString('hex'));
    expect(activationObjectSignatureValid(object, root.publicKey, 'root')).toBe(true);
    expect(build(cidFor('root'), keys).issuer).toBe(object.issuer);
  });

  it('refuses an online CID no known key signed, moved to another index, or made for another domain', () => {
    const cid = cidFor('online');
    expect(() => build(cid, { forIndex: () => [] })).toThrow(CoreError);
    expect(() => build(cid, { forIndex: () => [root.publicKeyRaw] })).toThrow(/not issued for this installation ID/);
    const parsed = parseConfirmationId(cid);
    // The index is not signed: it only picks the candidate keys. Moved to 0, the online key's v2
    // signature is read as a root's v1 one and fails even when the online key is offered.
    const asRoot = encodeConfirmationId(parsed.issuedDay, parsed.signature, 0).text;
    expect(() => build(asRoot, { forIndex: () => [root.publicKeyRaw, online.publicKeyRaw] })).toThrow(CoreError);
    for (const index of [2, 3] as const) {
      expect(() => build(encodeConfirmationId(parsed.issuedDay, parsed.signature, index).text, keys)).toThrow(
        CoreError,
      );
    }
    expect(() => build(cidFor('online', 'other.example'), keys)).toThrow(/not issued/);
  });
});
