import { describe, expect, it } from 'vitest';
import {
  DEFAULT_OBJECT_VALIDITY_DAYS,
  activationObjectSignatureValid,
  activationObjectValidity,
  parseActivationObject,
  signActivationObject,
} from './activation-object.js';
import { DAY } from './clock.js';
import { generateSigningKeyPair } from './crypto.js';
import { fileSigner } from './trust/signer.js';
import { CoreError } from './errors.js';

const rootPair = generateSigningKeyPair();
const root = { ...rootPair, ...fileSigner(rootPair) };
const T0 = Date.UTC(2026, 10, 2, 9);
const fields = {
  name: 'office14-corp',
  objectId: '6191a9b3-f19a-e9dd-8a4f-ef3ad0f35be5',
  group: { id: '8e8a62d7-6e59-ab22-580f-eeab136a3cd4', name: 'office14' },
  domain: 'Corp.Example.',
  issuedAt: T0,
};

describe('activation objects carry a signed validity period (issue 11)', () => {
  it('ends DEFAULT_OBJECT_VALIDITY_DAYS after its issue unless told, and the signature covers the end', () => {
    const object = signActivationObject(fields, root);
    expect(object).toMatchObject({ format: 'volact-activation-object/3', domain: 'corp.example' });
    expect(activationObjectValidity(object)).toEqual({
      issuedAt: T0,
      expiresAt: T0 + DEFAULT_OBJECT_VALIDITY_DAYS * DAY,
    });
    expect(activationObjectSignatureValid(object, root.publicKey)).toBe(true);
    // A later end written into the object: the root did not sign that.
    const stretched = parseActivationObject(
      JSON.stringify({ ...object, expiresAt: new Date(T0 + 3650 * DAY).toISOString() }),
    );
    expect(activationObjectSignatureValid(stretched, root.publicKey)).toBe(false);
    const long = signActivationObject({ ...fields, validityDays: 365 }, root);
    expect(activationObjectValidity(long).expiresAt).toBe(T0 + 365 * DAY);
  });

  it('refuses a validity outside 1-3650 days, and format 1 objects (which never expired) with the fix', () => {
    for (const validityDays of [0, 3651, 1.5]) {
      expect(() => signActivationObject({ ...fields, validityDays }, root)).toThrow(CoreError);
    }
    const object = signActivationObject(fields, root);
    const { expiresAt: _dropped, ...withoutEnd } = object as typeof object & { expiresAt: string };
    void _dropped;
    const old = JSON.stringify({ ...withoutEnd, format: 'volact-activation-object/1' });
    expect(() => parseActivationObject(old)).toThrow(/format 1, which never expires .*re-issue it/);
    expect(() => parseActivationObject(JSON.stringify(withoutEnd))).toThrow(/expiresAt/);
  });
});
