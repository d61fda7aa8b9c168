import { randomBytes } from 'node:crypto';
import { keyIdHex, type Signer, type SigningKeyPair } from '@volact/core';
import { AuthorityError } from './errors.js';
import type { RootKeys } from './key-ring.js';
import {
  createRootKey,
  describeSigner,
  destroyRootKey,
  listOrphanRootKeys,
  listRootKeys,
  openRootSignerByKeyId,
  type RootSigner,
  type RootSignerSpec,
} from './root-signer.js';

/**
 * Roots in a PKCS#11 token (`authority init --signer pkcs11:…`): each made in the token, never
 * exported; the ring records the spec (never a PIN) as where they are. A root made by a prepare
 * that crashed before its commit is found by listing the token's root objects and adopted.
 */
export class TokenRootKeys implements RootKeys {
  readonly #signers = new Map<string, RootSigner>();

  constructor(
    /** The spec as given (recorded in the ring and signer.json). */
    readonly location: string,
    private readonly spec: RootSignerSpec,
  ) {}

  signer(keyId: string): Signer | null {
    const cached = this.#signers.get(keyId);
    if (cached) return cached;
    try {
      const signer = openRootSignerByKeyId(this.spec, Buffer.from(keyId, 'hex'));
      this.#signers.set(keyId, signer);
      return signer;
    } catch (err) {
      if (err instanceof AuthorityError && err.code === 'ROOT_KEY_UNAVAILABLE') return null;
      throw err;
    }
  }

  describe(keyId: string): string {
    return `${describeSigner(this.spec)}, key ${keyId}`;
  }

  first(): Signer | null {
    const keys = listRootKeys(this.spec);
    const first = keys.find((k) => k.label === 'root-1') ?? (keys.length === 1 ? keys[0] : undefined);
    return first ? this.signer(first.keyId.toString('hex')) : null;
  }

  pair(): SigningKeyPair | null {
    return null; // a token's key never leaves it
  }

  create(known: ReadonlySet<string>): { signer: Signer; where: string; adopted: boolean } {
    const orphan = listRootKeys(this.spec).find((k) => !known.has(k.keyId.toString('hex')));
    if (orphan) {
      const keyId = orphan.keyId.toString('hex');
      const signer = this.signer(keyId);
      if (signer) return { signer, where: this.describe(keyId), adopted: true };
    }
    const signer = createRootKey(this.spec, `root-${randomBytes(4).toString('hex')}`);
    const keyId = keyIdHex(signer.publicKeyRaw);
    this.#signers.set(keyId, signer);
    return { signer, where: this.describe(keyId), adopted: false };
  }

  destroy(keyId: string): string[] {
    this.#signers.get(keyId)?.close();
    this.#signers.delete(keyId);
    const wanted = Buffer.from(keyId, 'hex');
    const pairs = listRootKeys(this.spec).filter((k) => k.keyId.equals(wanted));
    // A private half whose public half is gone (a retire that crashed between the two): by its
    // CKA_ID, or, without one, when this key's pair is gone too (no root can open such a half).
    const orphans = listOrphanRootKeys(this.spec).filter((o) =>
      o.keyId !== null ? o.keyId.equals(wanted) : pairs.length === 0,
    );
    const labels = [...new Set([...pairs, ...orphans].map((k) => k.label))];
    return labels
      .filter((label) => destroyRootKey(this.spec, label, wanted))
      .map((label) => `${describeSigner(this.spec, label)} (destroyed)`);
  }

  close(): void {
    for (const s of this.#signers.values()) s.close();
    this.#signers.clear();
  }
}
