import type { Clock, ShortSigningKey, SigningKeyPair } from '@volact/core';
import type { ProductGroups } from './groups.js';
import type { InstallationQueue } from './installation-queue.js';
import type { ProductKeys } from './keys.js';
import type { AuthorityStore } from './store.js';

/** What the activation paths of one authority share: its root, its records and its clock. */
export interface AuthorityContext {
  readonly root: SigningKeyPair;
  /** Keys are stored hashed with it, and their IID proof keys sealed under it. */
  readonly keyHashSecret: Buffer;
  readonly store: AuthorityStore;
  readonly clock: Clock;
  readonly groups: ProductGroups;
  readonly keys: ProductKeys;
  readonly installations: InstallationQueue;
  /** The root's short-signature key (confirmation IDs), derived once. */
  signer(): ShortSigningKey;
}
