import { execFileSync } from 'node:child_process';
import { createHash, verify } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeyPair, publicKeyFromRaw, signMessage } from '@volact/core';
import { startTestSoftHsm, type TestSoftHsm } from '@volact/authority/testing';
import { AuthorityError } from './errors.js';
import type * as Pkcs11Js from 'pkcs11js';
import { inspectPkcs11RootKey } from './pkcs11-signer.js';
import { TokenRootKeys } from './token-root-keys.js';
import {
  createRootKey,
  describeSigner,
  destroyRootKey,
  listRootKeys,
  openRootSigner,
  openRootSignerByKeyId,
  parseSignerSpec,
  resolveSignerSpec,
  type Pkcs11SignerSpec,
  type RootSignerSpec,
} from './root-signer.js';

const message = Buffer.from('volact/root-transition/v1\0 a message a root signs');
const verifies = (raw: Buffer, msg: Uint8Array, sig: Buffer) => verify(null, msg, publicKeyFromRaw(raw), sig);
const keyIdOf = (raw: Buffer) => createHash('sha256').update(raw).digest().subarray(0, 8);

function refusal(fn: () => unknown): AuthorityError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AuthorityError);
    return err as AuthorityError;
  }
  throw new Error('expected a refusal');
}

describe('parseSignerSpec', () => {
  it('reads file and pkcs11 signers, with module-path and pin-source in the path or the query', () => {
    expect(parseSignerSpec('file')).toEqual({ kind: 'file', path: 'roots' });
    expect(parseSignerSpec('file:/srv/roots')).toEqual({ kind: 'file', path: '/srv/roots' });
    expect(parseSignerSpec('pkcs11:token=volact;object=root;pin-source=file:/etc/volact/pin')).toEqual({
      kind: 'pkcs11',
      uri: 'pkcs11:token=volact;object=root;pin-source=file:/etc/volact/pin',
      pinFile: '/etc/volact/pin',
    });
    expect(
      parseSignerSpec('pkcs11:token=my%20hsm;slot-id=7?module-path=/opt/hsm/lib.so&pin-source=file:///etc/pin'),
    ).toMatchObject({ kind: 'pkcs11', modulePath: '/opt/hsm/lib.so', pinFile: '/etc/pin' });
  });

  it('refuses a PIN in the URI, a PIN command, unknown attributes, no token, bad slot ids and other text', () => {
    const bad: [string, RegExp][] = [
      ['pkcs11:token=volact;pin-value=1234', /must not carry the PIN.*pin-source=file:/],
      ['pkcs11:token=volact;pin-source=|/bin/echo 1234', /only name a file/],
      ['pkcs11:token=volact;library-version=1', /"library-version" is not supported/],
      ['pkcs11:object=root', /names no token: add token=/],
      ['pkcs11:token=volact;slot-id=0x10', /slot-id must be a decimal number/],
      ['pkcs11:token=a;token=b', /names "token" twice/],
      ['pkcs11:token=volact;module-path=libsofthsm2.so', /module-path must be an absolute path/],
      ['pkcs11:token=%zz', /bad %-escape/],
      ['pkcs11:token=', /"token" has no value/],
      ['hsm:volact', /neither "file" nor a PKCS#11 URI/],
    ];
    for (const [text, reason] of bad) {
      const err = refusal(() => parseSignerSpec(text));
      expect(err.code, text).toBe('REQUEST_INVALID');
      expect(err.message, text).toMatch(reason);
      expect(err.message).not.toContain('1234');
    }
  });

  it('resolves a file folder and a PIN file against the data directory', () => {
    expect(resolveSignerSpec(parseSignerSpec('file'), '/srv/authority')).toEqual({
      kind: 'file',
      path: '/srv/authority/roots',
    });
    expect(resolveSignerSpec(parseSignerSpec('pkcs11:token=t;pin-source=file:token.pin'), '/srv/a')).toMatchObject({
      pinFile: '/srv/a/token.pin',
    });
    expect(describeSigner(parseSignerSpec('pkcs11:token=t'))).toBe(
      'PKCS#11 token "t", object "volact-root-<label>", module /usr/lib/softhsm/libsofthsm2.so, no PIN',
    );
  });

  it('describes a signer without its PIN', () => {
    const spec: RootSignerSpec = {
      ...(parseSignerSpec('pkcs11:token=volact;object=root;slot-id=3') as Pkcs11SignerSpec),
      pin: 'secret-pin-4711',
    };
    const text = describeSigner(spec, '1');
    expect(text).toContain('token "volact"');
    expect(text).toContain('object "root-1"');
    expect(text).toContain('slot 3');
    expect(text).not.toContain('secret-pin-4711');
  });
});

describe('file root keys', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'volact-root-file-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a key file 0600, never overwrites it, reopens it, and retires it', () => {
    const spec = { kind: 'file', path: join(dir, 'roots') } as const;
    const signer = createRootKey(spec, 'root-1');
    expect(statSync(join(dir, 'roots', 'root-1.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'roots')).mode & 0o777).toBe(0o700);
    expect(signer.keyId).toEqual(keyIdOf(signer.publicKeyRaw));
    expect(verifies(signer.publicKeyRaw, message, signer.sign(message))).toBe(true);

    expect(refusal(() => createRootKey(spec, 'root-1')).code).toBe('AUTHORITY_EXISTS');
    const again = openRootSigner(spec, 'root-1', signer.keyId);
    expect(again.publicKeyRaw).toEqual(signer.publicKeyRaw);
    expect(verifies(signer.publicKeyRaw, message, again.sign(message))).toBe(true);
    expect(refusal(() => openRootSigner(spec, 'root-1', Buffer.alloc(8))).code).toBe('ROOT_KEY_UNAVAILABLE');
    expect(listRootKeys(spec)).toEqual([{ label: 'root-1', keyId: signer.keyId }]);
    expect(openRootSignerByKeyId(spec, signer.keyId).publicKeyRaw).toEqual(signer.publicKeyRaw);

    expect(destroyRootKey(spec, 'root-1')).toBe(true);
    expect(destroyRootKey(spec, 'root-1')).toBe(false);
    const gone = refusal(() => openRootSigner(spec, 'root-1'));
    expect(gone.code).toBe('ROOT_KEY_UNAVAILABLE');
    expect(gone.message).toContain('root-1.pem');
    expect(refusal(() => createRootKey(spec, '../escape')).code).toBe('REQUEST_INVALID');
  });
});

describe('a root key in a PKCS#11 token (SoftHSM2)', () => {
  let hsm: TestSoftHsm;
  let spec: Pkcs11SignerSpec;
  beforeAll(() => {
    hsm = startTestSoftHsm();
    spec = parseSignerSpec(`${hsm.uri};object=root`) as Pkcs11SignerSpec;
  });
  afterAll(() => hsm?.cleanup());

  it('generates the key in the token and signs there: node verifies the signature with the public key it reports', () => {
    const signer = createRootKey(spec, '1');
    try {
      expect(signer.publicKeyRaw).toHaveLength(32);
      expect(signer.keyId).toEqual(keyIdOf(signer.publicKeyRaw));
      const signature = signer.sign(message);
      expect(signature).toHaveLength(64);
      expect(verifies(signer.publicKeyRaw, message, signature)).toBe(true);
      expect(verifies(signer.publicKeyRaw, Buffer.from('another message'), signature)).toBe(false);
      // Ed25519 is deterministic: the token computes the same signature as any Ed25519.
      expect(signer.sign(message)).toEqual(signature);
      expect(refusal(() => createRootKey(spec, '1')).code).toBe('AUTHORITY_EXISTS');
    } finally {
      signer.close();
    }
  });

  it('never exports the private key: sensitive, not extractable, CKA_VALUE refused (CKR_ATTRIBUTE_SENSITIVE)', () => {
    expect(
      inspectPkcs11RootKey(
        { object: 'root', token: hsm.tokenLabel, modulePath: hsm.modulePath, pinFile: hsm.pinFile },
        '1',
      ),
    ).toEqual({
      label: 'root-1',
      sensitive: true,
      extractable: false,
      valueReadable: false,
    });
    // And asked directly, through a module load of its own (no signer is open now).
    const pkcs11js = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11Js;
    const module = new pkcs11js.PKCS11();
    module.load(hsm.modulePath);
    module.C_Initialize();
    try {
      const slot = module.C_GetSlotList(true).find((s) => module.C_GetTokenInfo(s).label.trimEnd() === hsm.tokenLabel)!;
      const session = module.C_OpenSession(slot, 4);
      module.C_Login(session, 1, hsm.pin);
      module.C_FindObjectsInit(session, [
        { type: 0x0, value: 3 },
        { type: 0x3, value: 'root-1' },
      ]);
      const [privateKey] = module.C_FindObjects(session, 4);
      module.C_FindObjectsFinal(session);
      expect(privateKey).toBeDefined();
      const attrs = module.C_GetAttributeValue(session, privateKey!, [{ type: 0x162 }, { type: 0x103 }]);
      expect(attrs.map((a) => a.value[0])).toEqual([0, 1]);
      expect(() => module.C_GetAttributeValue(session, privateKey!, [{ type: 0x11 }])).toThrow(
        /CKR_ATTRIBUTE_SENSITIVE/,
      );
      // Nor can it be made extractable afterwards.
      expect(() => module.C_SetAttributeValue(session, privateKey!, [{ type: 0x162, value: true }])).toThrow(/CKR_/);
    } finally {
      module.C_Finalize();
      module.close();
    }
  });

  it('signs again after the module was finalised and loaded anew, and from another process', () => {
    const first = openRootSigner(spec, '1');
    const publicKeyRaw = first.publicKeyRaw;
    first.close();
    const reopened = openRootSigner(spec, '1', keyIdOf(publicKeyRaw));
    try {
      expect(reopened.publicKeyRaw).toEqual(publicKeyRaw);
      expect(verifies(publicKeyRaw, message, reopened.sign(message))).toBe(true);
    } finally {
      reopened.close();
    }
    // Another process loads SoftHSM with the same configuration and signs with the key in the token.
    const child = `
      const p = require('pkcs11js'); const m = new p.PKCS11(); m.load(${JSON.stringify(hsm.modulePath)}); m.C_Initialize();
      const slot = m.C_GetSlotList(true).find((s) => m.C_GetTokenInfo(s).label.trimEnd() === ${JSON.stringify(hsm.tokenLabel)});
      const s = m.C_OpenSession(slot, 4); m.C_Login(s, 1, ${JSON.stringify(hsm.pin)});
      m.C_FindObjectsInit(s, [{ type: 0, value: 3 }, { type: 3, value: 'root-1' }]); const [k] = m.C_FindObjects(s, 1); m.C_FindObjectsFinal(s);
      m.C_SignInit(s, { mechanism: 0x1057 }, k);
      process.stdout.write(m.C_Sign(s, Buffer.from(process.argv[1], 'hex'), Buffer.alloc(64)).toString('hex'));
      m.C_Finalize();`;
    const out = execFileSync(process.execPath, ['-e', child, message.toString('hex')], {
      cwd: join(import.meta.dirname, '..'),
      env: { ...process.env, ...hsm.env },
      encoding: 'utf8',
    });
    expect(verifies(publicKeyRaw, message, Buffer.from(out, 'hex'))).toBe(true);
  });

  it('a session the token dropped is opened again once: the next signature still verifies', () => {
    const signer = openRootSigner(spec, '1');
    // Another user of the same loaded module closes every session of the slot (as a token
    // re-plugged or an HSM restarted does): the signer's session handle is no longer valid.
    const pkcs11js = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11Js;
    const other = new pkcs11js.PKCS11();
    other.load(hsm.modulePath);
    expect(() => other.C_Initialize()).toThrow(/CKR_CRYPTOKI_ALREADY_INITIALIZED/);
    try {
      const slot = other.C_GetSlotList(true).find((s) => other.C_GetTokenInfo(s).label.trimEnd() === hsm.tokenLabel)!;
      other.C_CloseAllSessions(slot);
      expect(verifies(signer.publicKeyRaw, message, signer.sign(message))).toBe(true);
      expect(verifies(signer.publicKeyRaw, message, signer.sign(message))).toBe(true);
    } finally {
      signer.close();
      other.close();
    }
  });

  it('two signers share the loaded module: closing one leaves the other signing', () => {
    const a = openRootSigner(spec, '1');
    const b = openRootSigner(spec, '1');
    a.close();
    a.close();
    try {
      expect(verifies(b.publicKeyRaw, message, b.sign(message))).toBe(true);
    } finally {
      b.close();
    }
  });

  it('a wrong PIN is SIGNER_TOKEN_LOCKED naming the token and slot, never the PIN', () => {
    const other = hsm.initToken('volact-pin-test', 'right-pin-5555');
    const err = refusal(() =>
      openRootSigner(
        { ...spec, uri: `pkcs11:token=volact-pin-test;module-path=${hsm.modulePath}`, pin: 'wrong-pin-9999' },
        '1',
      ),
    );
    expect(err.code).toBe('SIGNER_TOKEN_LOCKED');
    expect(err.message).toContain('token "volact-pin-test"');
    expect(err.message).toContain(`slot ${other}`);
    expect(err.message).toContain('CKR_PIN_INCORRECT');
    expect(err.message).not.toContain('wrong-pin-9999');
    expect(err.message).not.toContain('right-pin-5555');

    const noPin = refusal(() =>
      openRootSigner({ kind: 'pkcs11', uri: `pkcs11:token=volact-pin-test;module-path=${hsm.modulePath}` }, '1'),
    );
    expect(noPin.code).toBe('SIGNER_TOKEN_LOCKED');
    expect(noPin.message).toMatch(/pin-source=file:/);
    const noFile = refusal(() => openRootSigner({ ...spec, pinFile: join(hsm.dir, 'absent.pin') }, '1'));
    expect(noFile.code).toBe('SIGNER_TOKEN_LOCKED');
    expect(noFile.message).toContain('absent.pin');
  });

  it('an absent token or module is SIGNER_TOKEN_UNAVAILABLE naming it, the module and the fix', () => {
    const noToken = refusal(() =>
      openRootSigner(
        {
          ...spec,
          uri: spec.uri.replace(`token=${hsm.tokenLabel}`, 'token=volact-absent'),
        },
        '1',
      ),
    );
    expect(noToken.code).toBe('SIGNER_TOKEN_UNAVAILABLE');
    expect(noToken.message).toContain('token "volact-absent"');
    expect(noToken.message).toContain(hsm.modulePath);
    expect(noToken.message).toContain(`"${hsm.tokenLabel}" (slot ${hsm.slot})`);
    expect(noToken.message).toMatch(/softhsm2-util --init-token/);

    const noModule = refusal(() => openRootSigner({ ...spec, modulePath: join(hsm.dir, 'no-such-module.so') }, '1'));
    expect(noModule.code).toBe('SIGNER_TOKEN_UNAVAILABLE');
    expect(noModule.message).toContain('no-such-module.so');
    expect(noModule.message).toMatch(/module-path=/);
  });

  it('a key of another ID under the label, or no key, is ROOT_KEY_UNAVAILABLE', () => {
    const wrongId = refusal(() => openRootSigner(spec, '1', Buffer.alloc(8, 0xab)));
    expect(wrongId.code).toBe('ROOT_KEY_UNAVAILABLE');
    expect(wrongId.message).toContain('abababababababab');
    expect(refusal(() => openRootSigner(spec, 'never-made')).code).toBe('ROOT_KEY_UNAVAILABLE');
    expect(refusal(() => openRootSignerByKeyId(spec, Buffer.alloc(8, 0xab))).code).toBe('ROOT_KEY_UNAVAILABLE');
  });

  it('lists the roots under its object prefix by key ID, and opens one by key ID alone', () => {
    const foreign = createRootKey({ ...spec, uri: spec.uri.replace('object=root', 'object=other') }, '1');
    foreign.close();
    const [root] = listRootKeys(spec).filter((k) => k.label === '1');
    expect(root).toBeDefined();
    expect(listRootKeys(spec).map((k) => k.keyId.toString('hex'))).not.toContain(foreign.keyId.toString('hex'));
    const signer = openRootSignerByKeyId(spec, root!.keyId);
    try {
      expect(signer.keyId).toEqual(root!.keyId);
      expect(verifies(signer.publicKeyRaw, message, signer.sign(message))).toBe(true);
    } finally {
      signer.close();
    }
  });

  it('destroyRootKey destroys both halves: the key is gone, a second destroy does nothing', () => {
    const signer = createRootKey(spec, 'to-retire');
    signer.close();
    expect(destroyRootKey(spec, 'to-retire', signer.keyId)).toBe(true);
    const gone = refusal(() => openRootSigner(spec, 'to-retire'));
    expect(gone.code).toBe('ROOT_KEY_UNAVAILABLE');
    expect(gone.message).toContain('"root-to-retire"');
    expect(destroyRootKey(spec, 'to-retire')).toBe(false);
    expect(listRootKeys(spec).map((k) => k.label)).not.toContain('to-retire');
    // The other root in the token is untouched.
    const kept = openRootSigner(spec, '1');
    kept.close();
  });

  /**
   * The token as another program sees it, through a module load of its own (logged in, R/W):
   * what a token that refuses CKA_ID makes, and what a crash between two C_DestroyObject leaves.
   */
  function inToken<T>(work: (m: Pkcs11Js.PKCS11, session: Buffer) => T): T {
    const pkcs11js = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11Js;
    const module = new pkcs11js.PKCS11();
    module.load(hsm.modulePath);
    let initialisedHere = true;
    try {
      module.C_Initialize();
    } catch {
      initialisedHere = false; // a signer of this process holds it
    }
    try {
      const slot = module.C_GetSlotList(true).find((s) => module.C_GetTokenInfo(s).label.trimEnd() === hsm.tokenLabel)!;
      const session = module.C_OpenSession(slot, 4 | 2);
      try {
        module.C_Login(session, 1, hsm.pin);
      } catch {
        // logged in already by a session of this process
      }
      try {
        return work(module, session);
      } finally {
        module.C_CloseSession(session);
      }
    } finally {
      if (initialisedHere) module.C_Finalize();
      module.close();
    }
  }
  const objectsLabelled = (objectLabel: string, objectClass: number) =>
    inToken((m, session) => {
      m.C_FindObjectsInit(session, [
        { type: 0x0, value: objectClass },
        { type: 0x3, value: objectLabel },
      ]);
      const found = m.C_FindObjects(session, 16);
      m.C_FindObjectsFinal(session);
      return found.length;
    });
  /** A root key pair as createRootKey makes it in a token that refused CKA_ID: label only. */
  const generateWithoutId = (objectLabel: string) =>
    inToken((m, session) => {
      const params = Buffer.from('06032b6570', 'hex');
      m.C_GenerateKeyPair(
        session,
        { mechanism: 0x1055 },
        [
          { type: 0x0, value: 2 },
          { type: 0x100, value: 0x40 },
          { type: 0x1, value: true },
          { type: 0x2, value: false },
          { type: 0x10a, value: true },
          { type: 0x180, value: params },
          { type: 0x3, value: objectLabel },
        ],
        [
          { type: 0x0, value: 3 },
          { type: 0x100, value: 0x40 },
          { type: 0x1, value: true },
          { type: 0x2, value: true },
          { type: 0x103, value: true },
          { type: 0x162, value: false },
          { type: 0x108, value: true },
          { type: 0x3, value: objectLabel },
        ],
      );
    });
  /** A crash after the public half was destroyed: destroys only the public object of that label. */
  const destroyPublicOnly = (objectLabel: string) =>
    inToken((m, session) => {
      m.C_FindObjectsInit(session, [
        { type: 0x0, value: 2 },
        { type: 0x3, value: objectLabel },
      ]);
      const found = m.C_FindObjects(session, 16);
      m.C_FindObjectsFinal(session);
      expect(found).toHaveLength(1);
      m.C_DestroyObject(session, found[0]!);
    });

  it('a key whose CKA_ID the token would not set is still destroyed, both halves', () => {
    generateWithoutId('root-no-id');
    const [listed] = listRootKeys(spec).filter((k) => k.label === 'no-id');
    expect(listed).toBeDefined();
    // The signer opens it by its label (the probe finds the private half).
    const signer = openRootSigner(spec, 'no-id', listed!.keyId);
    expect(verifies(signer.publicKeyRaw, message, signer.sign(message))).toBe(true);
    signer.close();

    expect(destroyRootKey(spec, 'no-id', listed!.keyId)).toBe(true);
    expect(objectsLabelled('root-no-id', 3)).toBe(0);
    expect(objectsLabelled('root-no-id', 2)).toBe(0);
    expect(destroyRootKey(spec, 'no-id', listed!.keyId)).toBe(false);
    // A key of another ID under the same label is not this one: nothing destroyed.
    generateWithoutId('root-no-id-2');
    expect(destroyRootKey(spec, 'no-id-2', Buffer.alloc(8, 0xcd))).toBe(false);
    expect(objectsLabelled('root-no-id-2', 3)).toBe(1);
    expect(destroyRootKey(spec, 'no-id-2')).toBe(true);
  });

  it('a retire that crashed after destroying the public half: the rerun finds the private half and destroys it', () => {
    const roots = new TokenRootKeys(spec.uri, spec);
    try {
      // With CKA_ID (the usual token) and without (a token that refused it).
      const withId = createRootKey(spec, 'crashed');
      withId.close();
      generateWithoutId('root-crashed-no-id');
      const noId = listRootKeys(spec).find((k) => k.label === 'crashed-no-id')!.keyId;
      for (const [objectLabel, keyId] of [
        ['root-crashed', withId.keyId],
        ['root-crashed-no-id', noId],
      ] as const) {
        destroyPublicOnly(objectLabel);
        expect(objectsLabelled(objectLabel, 3)).toBe(1);
        expect(listRootKeys(spec).map((k) => k.keyId.toString('hex'))).not.toContain(keyId.toString('hex'));

        const destroyed = roots.destroy(keyId.toString('hex'));
        expect(destroyed).toHaveLength(1);
        expect(destroyed[0]).toContain(`"${objectLabel}"`);
        expect(objectsLabelled(objectLabel, 3)).toBe(0);
        expect(roots.destroy(keyId.toString('hex'))).toEqual([]);
      }
      // The other root in the token is untouched.
      const kept = openRootSigner(spec, '1');
      expect(verifies(kept.publicKeyRaw, message, kept.sign(message))).toBe(true);
      kept.close();
    } finally {
      roots.close();
    }
  });

  it('measures µs per signature: SoftHSM2 through PKCS#11 and node native', () => {
    const token = openRootSigner(spec, '1');
    const native = generateSigningKeyPair();
    const rounds = 300;
    const time = (fn: () => void) => {
      for (let i = 0; i < 20; i++) fn();
      const start = process.hrtime.bigint();
      for (let i = 0; i < rounds; i++) fn();
      return Number(process.hrtime.bigint() - start) / 1000 / rounds;
    };
    try {
      const tokenUs = time(() => token.sign(message));
      const nativeUs = time(() => signMessage(native.privateKey, message));
      console.log(
        `root signature: SoftHSM2 via PKCS#11 ${tokenUs.toFixed(1)} µs, node native ${nativeUs.toFixed(1)} µs`,
      );
      // A root signs a few times a day: anything under 50 ms a signature is plenty.
      expect(tokenUs).toBeLessThan(50_000);
    } finally {
      token.close();
    }
  });
});
