import { readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { keyIdHex, newClientMachineId, parseProductConfig, type Clock, type ProductConfig } from '@volact/core';
import { DEFAULT_INTERVALS } from './attempt-policy.js';
import { ClientError } from './errors.js';
import { ParsedFiles } from './parsed-files.js';
import {
  productFingerprint,
  rootFingerprintOf,
  rootKeyFingerprint,
  type LicenceRecord,
  type Salvaged,
  type StoredRecord,
} from './licence-store.js';
import { keptRevocations } from './oem-token-install.js';
import { ClientTrust, EMPTY_TRUST } from './trust.js';

/**
 * Where an installation's product comes from, and what a new one starts with. The store keeps
 * no copy of the product: it is passed at every open (an app), read from its installed
 * location (the CLI, the agent), or taken from what this process was given.
 */

export interface InitOptions {
  readonly stateDir: string;
  /** The product configuration exported by the authority (parsed JSON). */
  readonly product: unknown;
  /**
   * The product file's installed location, outside the state directory: the CLI and the agent
   * read the product there at every start. Without it, every later open passes `product`.
   */
  readonly productPath?: string;
  /** Overrides the hardware fingerprint (containers, VMs, simulations of many machines). */
  readonly hardwareId: string;
  /** The directory domain this machine is a member of (see OpenOptions.memberDomain). */
  readonly memberDomain?: string | null;
  readonly clock?: Clock;
}

export interface OpenOptions {
  readonly stateDir: string;
  readonly clock?: Clock;
  /** How long to wait for a KMS host's answer. */
  readonly timeoutMs?: number;
  /**
   * The product configuration the app ships (parsed JSON). An app should always pass it: the
   * root key and the licence policy are then pinned in the app. Without it (the CLI, the agent)
   * the product file at the location given at init is read, and refused (PRODUCT_FILE_CHANGED)
   * when it is not the file the installation was made with. The store keeps no copy.
   */
  readonly product?: unknown;
  /**
   * This machine's hardware id, read by the caller at this start (never taken from the store, so
   * a store copied to other hardware no longer holds a MAK, retail, OEM or token licence).
   * Default: what Licence.init was given in this process, else this machine's fingerprint.
   */
  readonly hardwareId?: string;
  /**
   * The directory domain this machine is a member of, as configured outside the store (the
   * machine's own domain, an option at each start). A directory licence holds only when it is
   * the activation object's. Default: what this process was given (init, joinDomain), else the
   * domain in /etc/resolv.conf; null: a member of none.
   */
  readonly memberDomain?: string | null;
  /** Called with errors of the background schedule (which never throws out of its timer). */
  readonly onScheduleError?: (err: unknown) => void;
  /** Random source of the weighted choice among DNS-published hosts (tests inject one). */
  readonly random?: () => number;
}

/** What a caller told this process about a state directory (see givenInProcess). */
export interface GivenInProcess {
  readonly product?: ProductConfig;
  readonly hardwareId?: string;
  readonly memberDomain?: string | null;
}

/**
 * What a caller told this process about a state directory (Licence.init, joinDomain): used by
 * later opens in the same process that pass nothing (an in-process agent). Never read from the
 * store: a new process passes them again (SDK) or reads them from the machine (CLI, agent).
 */
const givenInProcess = new Map<string, GivenInProcess>();
/**
 * Product configurations callers gave this process (Licence.init, Licence.open with `product`),
 * by fingerprint: a store copied in this process (a cloned image) that has no product file opens
 * with the product whose fingerprint it records. Never a product read from a store.
 */
const productsInProcess = new Map<string, ProductConfig>();

export function givenFor(stateDir: string): GivenInProcess {
  return givenInProcess.get(resolve(stateDir)) ?? {};
}

/** Records what was given for a state directory; a new installation (init, reset) forgets what was given for the one it replaces. */
export function remember(stateDir: string, given: GivenInProcess, replace = false): void {
  const key = resolve(stateDir);
  givenInProcess.set(key, { ...(replace ? {} : givenInProcess.get(key)), ...given });
}

export function parseProduct(value: unknown): ProductConfig {
  try {
    return parseProductConfig(value);
  } catch (err) {
    throw new ClientError('PRODUCT_CONFIG_INVALID', (err as Error).message);
  }
}

/** A path with its symbolic links resolved as far as it exists (a link out of the state directory is where it points). */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/**
 * The product file must live outside the state directory: a file beside the licence store could
 * be swapped with it, and the store would then choose its own root key. Checked at init, reset,
 * set-product and every open that reads the file the store names.
 */
export function refuseProductInsideStateDir(stateDir: string, productPath: string): void {
  const rel = relative(realPath(stateDir), realPath(productPath));
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
    throw new ClientError(
      'PRODUCT_CONFIG_INVALID',
      `the product file ${productPath} is inside the state directory ${stateDir}: give the product's installed location, outside it (a file beside the licence store could be swapped with it), e.g. \`volact client set-product --state-dir ${stateDir} /opt/PRODUCT/product.json\``,
    );
  }
}

/** The product files read, by path, with the text each was parsed from (see ParsedFiles). */
const installedProducts = new ParsedFiles<{ product: ProductConfig; fingerprint: string }>();

/** The product file at its installed location, as long as it is the one the store was made with. */
export function installedProduct(stateDir: string, stored: StoredRecord): ProductConfig {
  const path = stored.productRef.path;
  if (path === null) {
    throw new ClientError(
      'PRODUCT_CONFIG_INVALID',
      `${stateDir} was made by an app that passes its product configuration at every open: pass it (the store keeps no copy)`,
    );
  }
  // The store is writable by whoever edits it: the file it names is read only from outside it.
  refuseProductInsideStateDir(stateDir, path);
  const unreadable = (err: unknown) =>
    new ClientError(
      'PRODUCT_CONFIG_INVALID',
      `the product file ${path} (given at init) cannot be read: ${(err as Error).message.slice(0, 160)}; restore it, or \`volact client set-product --state-dir ${stateDir} FILE\``,
    );
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw unreadable(err);
  }
  // Read at every open; parsed, checked and fingerprinted again whenever its text is not the last one's.
  const { product, fingerprint } = installedProducts.parse(path, text, (t) => {
    let raw: unknown;
    try {
      raw = JSON.parse(t);
    } catch (err) {
      throw unreadable(err);
    }
    const parsed = parseProduct(raw);
    return { product: parsed, fingerprint: productFingerprint(parsed) };
  });
  if (fingerprint !== stored.productRef.sha256) {
    throw new ClientError(
      'PRODUCT_FILE_CHANGED',
      `the product file ${path} is not the one this installation was made with (fingerprint …${fingerprint.slice(-5)}, expected …${stored.productRef.sha256.slice(-5)}): it was swapped or updated; restore it, or accept the new one with \`volact client set-product --state-dir ${stateDir} ${path}\``,
    );
  }
  return product;
}

/** The product an open uses when the caller passes none: given in this process, else its installed file. */
export function productOf(stateDir: string, stored: StoredRecord): ProductConfig {
  return (
    givenFor(stateDir).product ??
    (stored.productRef.path === null ? productsInProcess.get(stored.productRef.sha256) : undefined) ??
    installedProduct(stateDir, stored)
  );
}

/** Refuses a product of another group than the installation's. */
export function refuseOtherGroup(stateDir: string, stored: StoredRecord, product: ProductConfig, fix = ''): void {
  if (product.group.id !== stored.productRef.groupId) {
    throw new ClientError(
      'PRODUCT_CONFIG_INVALID',
      `${stateDir} holds an installation of group ${stored.productRef.groupName}, not ${product.group.name}${fix}`,
    );
  }
}

/**
 * A new installation's record: the product's root key pinned by fingerprint, the group's GVLK,
 * a client machine ID. A reset passes what it kept of the old store (the client ID, the install
 * date, the revocations).
 */
export function newRecord(options: {
  stateDir: string;
  product: ProductConfig;
  productPath: string | undefined;
  hardwareId: string;
  now: number;
  kept: Salvaged;
}): LicenceRecord {
  const { product, kept, now } = options;
  productsInProcess.set(productFingerprint(product), product);
  const productPath = options.productPath === undefined ? null : resolve(options.productPath);
  if (productPath !== null) refuseProductInsideStateDir(options.stateDir, productPath);
  // What the old store learned is kept as far as it verifies under this product.
  const trust = ClientTrust.of(product, kept.trust ?? EMPTY_TRUST);
  const { crls, revoked } = keptRevocations(product, trust, kept);
  return {
    format: 'volact-client/2',
    product,
    productRef: {
      path: productPath,
      sha256: productFingerprint(product),
      groupId: product.group.id,
      groupName: product.group.name,
      rootKey: rootKeyFingerprint(product),
    },
    clientMachineId: kept.clientMachineId ?? newClientMachineId(),
    hardwareId: options.hardwareId,
    installedAt: Math.min(kept.installedAt ?? now, now),
    installedKey: { type: 'gvlk', text: product.gvlk },
    kmsHost: null,
    activation: null,
    intervals: { ...DEFAULT_INTERVALS },
    discovery: { domains: [], dnsServer: null, caching: true, cached: null },
    directory: null,
    lastAttempt: null,
    nextAttemptAt: now,
    nonGenuineSince: null,
    lastReportedState: null,
    crls,
    revoked,
    actType: 'any',
    trust: trust.stored(EMPTY_TRUST),
  };
}

/**
 * The product reference after set-product: same group, and the same authority as the
 * installation is bound to: the new product's bundle lists the bound root, or one of its roots
 * is trusted by this installation now (its product config and the transition records it
 * learned: the publisher rotated its root). The binding moves to the new product's current
 * root. (Stores from before the binding was recorded: the root of the product file they name,
 * which must still be the one they were made with.)
 */
export function acceptedProductRef(
  stateDir: string,
  stored: StoredRecord,
  product: ProductConfig,
  productPath: string,
): StoredRecord['productRef'] {
  refuseOtherGroup(stateDir, stored, product, ': a new installation (`volact client init` in another --state-dir)');
  const path = resolve(productPath);
  refuseProductInsideStateDir(stateDir, path);
  const current = (): ProductConfig =>
    (stored.productRef.path === null ? productsInProcess.get(stored.productRef.sha256) : undefined) ??
    installedProduct(stateDir, stored);
  let before: ProductConfig | null;
  if (stored.productRef.rootKey === undefined) {
    before = current(); // no binding recorded: the product file it names must still be its own
  } else {
    try {
      before = current();
    } catch {
      before = null; // swapped or gone: the recorded binding alone then
    }
  }
  const recordedRoot = stored.productRef.rootKey ?? (before ? rootKeyFingerprint(before) : null);
  const bundle = [product.authority.rootPublicKey, ...(product.authority.roots ?? []).map((r) => r.publicKey)].map(
    (k) => Buffer.from(k, 'base64'),
  );
  // Every root of the new bundle (and so every delegation it carries, each signed by one of
  // them) must be the bound root or one this installation trusts now: through its current
  // product config and the transition records it stored (each verified again), or learned from
  // the bound root. One trusted root is not enough: a local administrator could list the bound
  // root beside one of its own (docs/client.md, What a local administrator can do).
  const isBound = (k: Buffer): boolean => recordedRoot !== null && rootFingerprintOf(k) === recordedRoot;
  const distrustedRoots = product.authority.distrustedRoots;
  const withDistrust = (c: ProductConfig): ProductConfig => ({
    ...c,
    authority: {
      ...c.authority,
      distrustedRoots: [...new Set([...(c.authority.distrustedRoots ?? []), ...(distrustedRoots ?? [])])],
    },
  });
  const trusting: ClientTrust[] = [];
  const bound = bundle.find(isBound);
  const configs: ProductConfig[] = [
    ...(before ? [before] : []),
    ...(bound
      ? [{ ...product, authority: { rootPublicKey: bound.toString('base64'), delegations: [] } } as ProductConfig]
      : []),
  ];
  for (const c of configs) {
    try {
      trusting.push(ClientTrust.of(withDistrust(c), stored.trust));
    } catch {
      // a config that no longer reads: it vouches for nothing
    }
  }
  const untrusted = bundle.filter((k) => !isBound(k) && !trusting.some((t) => t.trustsRoot(k)));
  if (untrusted.length > 0) {
    const root = rootKeyFingerprint(product);
    const connectedAny = bound !== undefined || untrusted.length < bundle.length;
    throw new ClientError(
      'PRODUCT_CONFIG_INVALID',
      connectedAny
        ? `${path} lists ${untrusted.length === 1 ? 'a root' : 'roots'} (${untrusted.map((k) => keyIdHex(k)).join(', ')}) that this installation does not trust: neither the root it is bound to (…${(recordedRoot ?? '?').slice(-8)}) nor one learned from it through a transition record. Every root of a product config must be: install the authority's trust bundle first (\`volact client install-trust FILE\` with the JSON of its GET /v1/trust, which carries the transition records), then set-product again`
        : `${path} pins another root key (…${root.slice(-8)}) than the product this installation is bound to (…${(recordedRoot ?? '?').slice(-8)}), and none of its roots is one this installation trusts (no transition record connects them): set-product accepts updates of the same authority only; a product of another authority is installed anew (\`volact client init\` in another --state-dir)`,
    );
  }
  return {
    path,
    sha256: productFingerprint(product),
    groupId: product.group.id,
    groupName: product.group.name,
    rootKey: rootKeyFingerprint(product),
  };
}
