import {
  DAY,
  systemClock,
  type ActivationObject,
  type Clock,
  type GroupKind,
  type OemCertificate,
  type ProductConfig,
  type ProductGroup,
  type TokenCaCertificate,
} from '@volact/core';
import {
  createActivationObject,
  issueOemCertificate,
  issueTokenCa,
  type ActivationObjectRequest,
  type OemCertificateRequest,
  type TokenCaRequest,
} from './certification.js';
import type { AuthorityContext } from './context.js';
import { createDataDir, readDataDir, type AuthoritySecrets } from './data-dir.js';
import { AuthorityError, invalidField } from './errors.js';
import { ProductGroups, productConfigFor } from './groups.js';
import {
  HOST_CERT_VALIDITY_DAYS,
  activateHost,
  type HostActivationRequest,
  type HostActivationResult,
} from './host-activation.js';
import {
  activateInstallation,
  type InstallationActivation,
  type InstallationActivationRequest,
} from './installation-activation.js';
import { InstallationQueue } from './installation-queue.js';
import { ProductKeys, type KeyReport, type MintKeyRequest, type MintedKey } from './keys.js';
import { confirmByPhone, type Confirmation } from './phone-confirmation.js';
import {
  Revocations,
  type HostStatusAnswer,
  type RevocationListReport,
  type RevocationResult,
  type RevokeHostOptions,
  type RevokeOptions,
} from './revocations.js';
import {
  FileRootKeys,
  KeyRing,
  contextWithRing,
  type CrashPoint,
  type KeyRingStatus,
  type OnlineKeyRotation,
  type RotationResult,
  type RotationStep,
  type TrustRecords,
} from './key-ring.js';
import { createRootKey, parseSignerSpec, resolveSignerSpec, type RootSignerSpec } from './root-signer.js';
import { checkDatabaseUrl, openAuthorityStore } from './store-choice.js';
import { TokenRootKeys } from './token-root-keys.js';
import type { AuthorityStore } from './store.js';
import type { AccessApi } from './access/types.js';
import { Access } from './access/access.js';
import type { OrganisationsApi } from './organisations/types.js';
import { Organisations } from './organisations/organisations.js';
import type { RaiseRequestsApi } from './raise-requests/types.js';
import { RaiseRequests } from './raise-requests/raise-requests.js';
import type { WebhooksApi } from './webhooks/types.js';
import { Webhooks } from './webhooks/webhooks.js';

export { HOST_CERT_VALIDITY_DAYS } from './host-activation.js';
export { PHONE_CERT_VALIDITY_DAYS } from './phone-confirmation.js';
export { MAX_CERTIFIED_DAYS } from './certification.js';
export type { HostActivationRequest, HostActivationResult } from './host-activation.js';
export type { InstallationActivation, InstallationActivationRequest } from './installation-activation.js';
export type { KeyReport, MintKeyRequest, MintedKey } from './keys.js';
export type { Confirmation } from './phone-confirmation.js';
export type {
  HostStatusAnswer,
  KmsHostKeySubject,
  RevocationListReport,
  RevocationResult,
  RevokeHostOptions,
  RevokeOptions,
} from './revocations.js';

export interface AuthorityOptions {
  readonly clock?: Clock;
  /**
   * How long a host certificate issued online is valid (default 30 days); the host renews it
   * (free) at half its life, and a revoked host key is refused renewal: this bounds how long
   * a revoked key keeps licensing clients.
   */
  readonly hostCertificateValidity?: number;
  /**
   * postgres://… to keep the authority's records in PostgreSQL (many nodes on one database);
   * otherwise SQLite in the data directory. The root key stays in the data directory.
   */
  readonly databaseUrl?: string;
  /** Tests only: called at each crash point of a root-rotation step (the crash test kills the process there). */
  readonly crashAt?: (point: CrashPoint) => void;
  /** log2 of scrypt's N for new passwords (default 15: 32 MiB, ~70 ms); tests use 10. */
  readonly passwordCost?: number;
  /** How often this node's webhook dispatcher looks for events and due deliveries (default 1 s; `webhooks.start()`). */
  readonly webhookDispatchIntervalMs?: number;
  /**
   * Organisations' webhook endpoints may be private addresses too. Off by default: an
   * organisation's admin would otherwise make the authority call into the publisher's network.
   */
  readonly webhookPrivateTargets?: boolean;
}

export type { CrashPoint, KeyRingStatus, OnlineKeyRotation, RotationResult, RotationStep, TrustRecords };

/**
 * The publisher's authority: root key, product groups, keys, host certificates. Each job is
 * its own module (data-dir, store-choice, groups, keys, host-activation, installation-queue,
 * installation-activation, phone-confirmation, certification, audit); this is their one face.
 */
export class Authority {
  readonly name: string;
  readonly #ring: KeyRing;
  readonly #store: AuthorityStore;
  readonly #clock: Clock;
  readonly #certValidity: number;
  readonly #groups: ProductGroups;
  readonly #keys: ProductKeys;
  readonly #ctx: AuthorityContext;
  readonly #revocations: Revocations;
  /** The publisher's service (docs/portal.md): customers, people, requests, webhooks. */
  readonly organisations: OrganisationsApi;
  readonly access: AccessApi;
  readonly raiseRequests: RaiseRequestsApi;
  readonly webhooks: WebhooksApi;

  private constructor(secrets: AuthoritySecrets, store: AuthorityStore, options: AuthorityOptions) {
    this.name = secrets.name;
    this.#store = store;
    this.#clock = options.clock ?? systemClock;
    this.#certValidity = options.hostCertificateValidity ?? HOST_CERT_VALIDITY_DAYS * DAY;
    this.#groups = new ProductGroups(store, this.#clock);
    this.#keys = new ProductKeys(store, this.#groups, this.#clock, secrets.keyHashSecret);
    const ring = new KeyRing({
      store: store.keyRing,
      rootKeys:
        secrets.signerSpec === null
          ? new FileRootKeys(secrets.dataDir, secrets.rootFiles)
          : new TokenRootKeys(
              secrets.signerSpec,
              resolveSignerSpec(parseSignerSpec(secrets.signerSpec), secrets.dataDir),
            ),
      keyHashSecret: secrets.keyHashSecret,
      clock: this.#clock,
      ...(options.crashAt ? { crashAt: options.crashAt } : {}),
    });
    this.#ring = ring;
    // Read (or make: init, an authority from before the ring) at once, renewing nothing (root
    // status only reads); a failure is met again by the first call, which reads the ring first.
    void ring.open().catch(() => undefined);
    this.#ctx = contextWithRing(
      {
        keyHashSecret: secrets.keyHashSecret,
        store,
        clock: this.#clock,
        groups: this.#groups,
        keys: this.#keys,
        installations: new InstallationQueue(store),
      },
      ring,
    );
    this.#revocations = new Revocations(this.#ctx);
    this.organisations = new Organisations({ ctx: this.#ctx }); // organisations/organisations.ts
    this.access = new Access({ store: store.access, clock: this.#clock, passwordCost: options.passwordCost });
    this.raiseRequests = new RaiseRequests({ store: store.raiseRequests, clock: this.#clock });
    this.webhooks = new Webhooks({
      store: store.webhooks,
      clock: this.#clock,
      secret: secrets.keyHashSecret,
      orgExists: async (orgId) => (await store.organisations.get(orgId)) !== undefined,
      ...(options.webhookDispatchIntervalMs !== undefined
        ? { dispatchIntervalMs: options.webhookDispatchIntervalMs }
        : {}),
      ...(options.webhookPrivateTargets ? { privateTargets: true } : {}),
    });
  }

  /** Creates the root signing key, the key-hash secret and the database. Refuses to overwrite. */
  static init(dataDir: string, options: AuthorityOptions & { name?: string; signer?: string } = {}): Authority {
    if (options.databaseUrl !== undefined) checkDatabaseUrl(options.databaseUrl); // before any file is made
    const signer = tokenSignerOf(options.signer ?? 'file', dataDir);
    const secrets = createDataDir(
      dataDir,
      options.name ?? 'volact authority',
      options.clock ?? systemClock,
      signer ? { spec: signer.text, createRoot: () => createRootKey(signer.spec, 'root-1').close() } : undefined,
    );
    return new Authority(secrets, openAuthorityStore(dataDir, options.databaseUrl), options);
  }

  static open(dataDir: string, options: AuthorityOptions = {}): Authority {
    const secrets = readDataDir(dataDir);
    return new Authority(secrets, openAuthorityStore(dataDir, options.databaseUrl), options);
  }

  /**
   * The current root's public key (what product configs pin as `rootPublicKey`). Before the key
   * ring is first read (just after init or open), the data directory's first root.
   */
  get rootPublicKeyRaw(): Buffer {
    return this.#ring.loaded ? this.#ring.currentRoot().publicKey : this.#ring.localRootPublicKey();
  }

  addGroup(input: { name: string; kind?: GroupKind; threshold?: number }): Promise<ProductGroup> {
    return this.#groups.add(input);
  }

  listGroups(): Promise<ProductGroup[]> {
    return this.#groups.list();
  }

  group(nameOrId: string): Promise<ProductGroup> {
    return this.#groups.find(nameOrId);
  }

  /**
   * The file a publisher ships inside its product: pinned root key, group, GVLK, policy.
   * `url`: where installations activate a MAK online (the product's default authority).
   */
  async productConfig(groupName: string, options: { url?: string } = {}): Promise<ProductConfig> {
    const group = await this.#groups.find(groupName);
    const bundle = await this.#ring.bundle();
    return productConfigFor(
      group,
      { name: this.name, bundle, identityRootPublicKeyRaw: this.#ring.firstRoot().publicKey },
      options.url,
    );
  }

  mintKey(request: MintKeyRequest): Promise<MintedKey> {
    return this.#keys.mint(request);
  }

  /** What a key may do and has done: limit, used, remaining, and each activation. */
  showKey(text: string): Promise<KeyReport> {
    return this.#keys.show(text);
  }

  /** Sets how many hosts or installations a key may activate, never below those made. */
  setKeyLimit(text: string, limit: number): Promise<KeyReport> {
    return this.#keys.setLimit(text, limit);
  }

  /** Refuses the key's later activations; those already made stay listed (and their certificates valid). */
  revokeKey(text: string): Promise<KeyReport> {
    return this.#keys.revoke(text);
  }

  /** A KMS host online: its key's host count, then a certificate for its public key. */
  activateHost(request: HostActivationRequest): Promise<HostActivationResult> {
    return activateHost(this.#ctx, request, this.#certValidity);
  }

  /** An installation online: its MAK or retail key's limit, then a confirmation ID. */
  activateInstallation(request: InstallationActivationRequest): Promise<InstallationActivation> {
    return activateInstallation(this.#ctx, request);
  }

  /** By phone: an installation ID (product installation, KMS host or activation object) to its confirmation ID. */
  confirm(installationIdText: string): Promise<Confirmation> {
    return confirmByPhone(this.#ctx, installationIdText);
  }

  /** An activation object for a product group and a directory domain, signed by the root. */
  createActivationObject(request: ActivationObjectRequest): Promise<ActivationObject> {
    return createActivationObject(this.#ctx, request);
  }

  /** OEM activation: a manufacturer's public key certified for some product groups. */
  issueOemCertificate(request: OemCertificateRequest): Promise<OemCertificate> {
    return issueOemCertificate(this.#ctx, request);
  }

  /** Token-based activation: an organisation's issuing CA key certified for one product group. */
  issueTokenCa(request: TokenCaRequest): Promise<TokenCaCertificate> {
    return issueTokenCa(this.#ctx, request);
  }

  /**
   * Puts a host key on the revocation list: by KMS host key ID (every host it activated), host
   * certificate serial, or host key reference. The host gets no renewal and no status from now on.
   * A KMS host key ID with `alsoRevokeKey`: the key itself too (it activates no new host).
   */
  revokeHost(subject: string, options: RevokeHostOptions = {}): Promise<RevocationResult> {
    return this.#revocations.revokeHost(subject, options);
  }

  /** Puts an OEM manufacturer key (key ID, 16 hex digits) on the revocation list. */
  revokeManufacturer(keyId: string, options: RevokeOptions = {}): Promise<RevocationResult> {
    return this.#revocations.revokeKeyId('manufacturer', keyId, options);
  }

  /** Puts a token CA key (key ID, 16 hex digits) on the revocation list. */
  revokeTokenCa(keyId: string, options: RevokeOptions = {}): Promise<RevocationResult> {
    return this.#revocations.revokeKeyId('tokenCa', keyId, options);
  }

  /** The current revocation list (re-issued first when a day old), its entries and signed bytes. */
  revocationList(): Promise<RevocationListReport> {
    return this.#revocations.report();
  }

  /** A host status for a host certificate this authority issued online (HOST_REVOKED when its key is revoked). */
  hostStatus(certificate: Buffer): Promise<HostStatusAnswer> {
    return this.#revocations.hostStatus(certificate);
  }

  /** The key ring: roots, online keys, the rotation's last and next step (read afresh). */
  rootStatus(): Promise<KeyRingStatus> {
    return this.#ring.status();
  }

  /**
   * One step of the root rotation (docs/trust.md "Rotation ceremony"): prepare, publish, switch,
   * retire. Idempotent (done: false the second time); out of order: ROOT_ROTATION_OUT_OF_ORDER.
   */
  rotateRoot(step: RotationStep): Promise<RotationResult> {
    return this.#ring.rotate(step);
  }

  /** A new online key, certified by the current root, signs confirmations from now on. */
  rotateOnlineKey(): Promise<OnlineKeyRotation> {
    return this.#ring.rotateOnlineKey();
  }

  /** GET /v1/trust: the roots clients may know, the transition records and the delegations. */
  trust() {
    return this.#ring.trust();
  }

  /** The records an online answer carries (`trust`): transitions and delegations. */
  trustRecords(): Promise<TrustRecords> {
    return this.#ring.records();
  }

  /** Audits a request refused before any decision (bad body, rate limit, auth): who asked what. */
  async auditRefusedRequest(action: string, code: string, detail: string): Promise<void> {
    await this.#store.audit({ at: this.#clock.now(), action, result: code, detail: detail.slice(0, 300) });
  }

  recentAudit(limit = 100) {
    return this.#store.recentAudit(limit);
  }

  /** Whether the database answers now: resolves, or throws STORE_UNAVAILABLE / STORE_DAMAGED. */
  health(): Promise<void> {
    return this.#store.ping();
  }

  /** The authority's clock (injected in tests): routes that stamp files read time from it. */
  get clock(): Clock {
    return this.#clock;
  }

  async close(): Promise<void> {
    await this.webhooks.stop(); // deliveries in flight finish (or their leases lapse) first
    await this.#ring.settle();
    this.#ring.close();
    await this.#store.close();
  }

  /**
   * Every call that may sign reads the key ring first (this node's copy while it is fresh): the
   * current root and online key are the ring's, and another node's rotation step changes them.
   * Those that never sign (health, close, the audit log, the ring's own status) are left as they are.
   */
  static {
    const ringFree = new Set(['constructor', 'close', 'health', 'recentAudit', 'auditRefusedRequest', 'rootStatus']);
    for (const name of Object.getOwnPropertyNames(Authority.prototype)) {
      const descriptor = Object.getOwnPropertyDescriptor(Authority.prototype, name);
      const method: unknown = descriptor?.value;
      if (ringFree.has(name) || typeof method !== 'function') continue;
      Object.defineProperty(Authority.prototype, name, {
        ...descriptor,
        value: async function (this: Authority, ...args: unknown[]) {
          await this.#ring.ready();
          return (method as (...a: unknown[]) => Promise<unknown>).apply(this, args);
        },
      });
    }
  }
}

/**
 * `--signer`: `file` (the default: roots/<keyId>.pem in the data directory) gives null; a
 * `pkcs11:` URI its parsed spec (roots made in the token). Other places for files are refused.
 */
function tokenSignerOf(text: string, dataDir: string): { text: string; spec: RootSignerSpec } | null {
  let spec: RootSignerSpec;
  try {
    spec = parseSignerSpec(text);
  } catch (err) {
    if (err instanceof AuthorityError) err.field = 'signer'; // the CLI names --signer
    throw err;
  }
  if (spec.kind === 'file') {
    if (text.trim() === 'file') return null;
    throw invalidField('signer', 'root key files are kept in the data directory: use --signer file (or pkcs11:…)');
  }
  return { text: text.trim(), spec: resolveSignerSpec(spec, dataDir) };
}
