import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, decodeHostCertificate, generateSigningKeyPair, keyIdHex } from '@volact/core';
import { startTestSoftHsm, type TestSoftHsm } from '@volact/authority/testing';
import { Authority } from './authority.js';
import { destroyRootKey, listRootKeys, parseSignerSpec, resolveSignerSpec } from './root-signer.js';

/**
 * The key ring with its roots in a PKCS#11 token (a real SoftHSM2): `init --signer pkcs11:…`
 * makes root #1 in the token, prepare makes the next one there (a key left by a prepare that
 * died before its commit is adopted, not doubled), retire destroys the old one in the token.
 */
let hsm: TestSoftHsm;
const dirs: string[] = [];
beforeAll(() => {
  hsm = startTestSoftHsm();
});
afterAll(() => {
  hsm?.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('key ring with roots in a PKCS#11 token', () => {
  it('init, the ceremony and retire happen in the token; nothing of a root is in the data directory', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'volact-key-ring-token-')), 'a');
    dirs.push(dir);
    const uri = `${hsm.uri};object=ring`;
    const spec = resolveSignerSpec(parseSignerSpec(uri), dir);
    const inToken = () => listRootKeys(spec).map((k) => k.keyId.toString('hex'));
    const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
    let authority = Authority.init(dir, { clock, signer: uri });
    const host = generateSigningKeyPair().publicKeyRaw;
    try {
      await authority.addGroup({ name: 'office14' });
      const hostKey = (await authority.mintKey({ type: 'kms-host', groups: ['office14'] })).key;
      const issuer = async () =>
        decodeHostCertificate(
          (await authority.activateHost({ hostKey, hostPublicKey: host, hardwareId: 'hw-1' })).certificate,
        ).issuer.toString('hex');
      const root1 = keyIdHex(authority.rootPublicKeyRaw);
      expect(inToken()).toEqual([root1]);
      expect(existsSync(join(dir, 'roots')) ? readdirSync(join(dir, 'roots')) : []).toEqual([]);
      expect(readFileSync(join(dir, 'signer.json'), 'utf8')).not.toContain(hsm.pin);
      expect(await issuer()).toBe(root1);
      expect((await authority.rootStatus()).roots[0]).toMatchObject({ signer: uri, heldHere: true });

      // A prepare that dies after making its key and before recording it: the rerun adopts that key.
      await authority.close();
      authority = Authority.open(dir, {
        clock,
        crashAt: (point) => {
          if (point === 'prepare.key-written') throw new Error('crash');
        },
      });
      await expect(authority.rotateRoot('prepare')).rejects.toThrow('crash');
      expect(inToken()).toHaveLength(2);
      expect((await authority.rootStatus()).rotation.lastStep).toBeNull();
      await authority.close();
      authority = Authority.open(dir, { clock });
      const prepared = await authority.rotateRoot('prepare');
      expect(prepared.message).toContain('adopted');
      expect(inToken().sort()).toEqual([root1, prepared.root.keyId].sort());

      await authority.rotateRoot('publish');
      await authority.rotateRoot('switch');
      expect(await issuer()).toBe(prepared.root.keyId);
      await authority.rotateRoot('retire');
      expect(inToken()).toEqual([prepared.root.keyId]);
      expect(await issuer()).toBe(prepared.root.keyId);
    } finally {
      await authority.close();
    }
    // A node opening the directory signs with the token's current root.
    const reopened = Authority.open(dir, { clock });
    try {
      const object = await reopened.createActivationObject({ group: 'office14', domain: 'corp.test', name: 'ao' });
      expect(object.issuer).toBe(inToken()[0]);
    } finally {
      await reopened.close();
    }
    // The token away (signer.json names one this machine lacks): root status shows the root as
    // not held, with the token's error code, instead of failing; signing says what is wrong.
    const signerFile = join(dir, 'signer.json');
    const signer = JSON.parse(readFileSync(signerFile, 'utf8')) as { format: string; spec: string };
    writeFileSync(signerFile, JSON.stringify({ ...signer, spec: signer.spec.replace(/token=[^;]*/, 'token=away') }));
    const away = Authority.open(dir, { clock });
    try {
      const status = await away.rootStatus();
      expect(status.roots.find((r) => r.state === 'current')).toMatchObject({ heldHere: false });
      expect(status.roots.find((r) => r.state === 'current')?.where).toContain('unavailable: SIGNER_TOKEN_UNAVAILABLE');
      await expect(
        away.createActivationObject({ group: 'office14', domain: 'corp.test', name: 'ao-2' }),
      ).rejects.toMatchObject({ code: 'SIGNER_TOKEN_UNAVAILABLE' });
    } finally {
      await away.close();
    }
  });
  it('switch to a next root the token does not hold is refused with ROOT_KEY_UNAVAILABLE naming the token, not a file to copy', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'volact-key-ring-token-')), 'b');
    dirs.push(dir);
    const uri = `${hsm.uri};object=lost`;
    const spec = resolveSignerSpec(parseSignerSpec(uri), dir);
    const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
    let authority = Authority.init(dir, { clock, signer: uri });
    try {
      await authority.trust();
      const next = (await authority.rotateRoot('prepare')).root.keyId;
      await authority.rotateRoot('publish');
      // The next root's objects are gone from the token (another token, a mistaken cleanup).
      for (const k of listRootKeys(spec).filter((k) => k.keyId.toString('hex') === next)) {
        destroyRootKey(spec, k.label, k.keyId);
      }
      await authority.close(); // a node that opens the token afresh
      authority = Authority.open(dir, { clock });
      const refused = await authority.rotateRoot('switch').then(
        () => null,
        (err: unknown) => err as { code: string; message: string },
      );
      expect(refused?.code).toBe('ROOT_KEY_UNAVAILABLE');
      expect(refused?.message).toContain('token');
      expect(refused?.message).not.toContain('data directory');
      expect((await authority.rootStatus()).rotation.lastStep).toBe('publish');
    } finally {
      await authority.close();
    }
  });
});
