import type { Clock, ConfirmationSigner } from '@volact/core';
import type { ProductGroups } from './groups.js';
import type { InstallationQueue } from './installation-queue.js';
import type { ProductKeys } from './keys.js';
import type { AuthorityStore } from './store.js';

/**
 * What signs with a root or an online key (the shape of @volact/core's trust Signer: a key file
 * in memory or a key in a PKCS#11 token). `sign` is synchronous and returns an Ed25519 signature.
 */
export interface RingSigner {
  readonly publicKeyRaw: Buffer;
  /** The first 8 bytes of SHA-256 of publicKeyRaw. */
  readonly keyId: Buffer;
  sign(message: Uint8Array): Buffer;
}

/** What the activation paths of one authority share: its root, its records and its clock. */
export interface AuthorityContext {
  /**
   * The current root of the key ring: everything the root signs (host certificates, activation
   * objects, OEM and token-CA certificates, revocation lists, host statuses) is signed by it.
   * Throws ROOT_KEY_UNAVAILABLE when this node lacks the root's private key (naming the file).
   */
  rootSigner(): RingSigner;
  /** Reads the key ring if this node's copy is missing or stale (the Authority's calls do it first). */
  ringReady(): Promise<void>;
  /** The records an online answer carries so clients learn them: transition records and delegations (base64). */
  trustRecords(): Promise<{ transitions: string[]; delegations: string[] }>;
  /** The public keys of this authority's roots clients may know (published, current, previous, retired), oldest first. */
  rootPublicKeys(): Buffer[];
  /** Keys are stored hashed with it, and their IID proof keys sealed under it. */
  readonly keyHashSecret: Buffer;
  readonly store: AuthorityStore;
  readonly clock: Clock;
  readonly groups: ProductGroups;
  readonly keys: ProductKeys;
  readonly installations: InstallationQueue;
  /**
   * The online key that signs confirmation IDs, phone host certificates and phone activation
   * objects (short signature v2), with the key index its CIDs carry.
   */
  confirmationSigner(): ConfirmationSigner;
}
