import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  CoreError,
  DAY,
  DEFAULT_THRESHOLD,
  GROUP_KINDS,
  GROUP_NAME_RE,
  KMS_DEFAULTS,
  defaultPolicy,
  generateSigningKeyPair,
  guidToBytes,
  gvlkFor,
  issueHostCertificate,
  keyedHash,
  lastFiveOf,
  makeKey,
  parseKey,
  privateKeyToPem,
  randomGuid,
  signingKeyPairFromPem,
  systemClock,
  type Clock,
  type GroupKind,
  type KeyType,
  type ProductConfig,
  type ProductGroup,
  type SigningKeyPair,
  authorityEndpoint,
  DOMAIN_NAME_RE,
  OBJECT_NAME_RE,
  normaliseDomain,
  signActivationObject,
  signPhoneActivationObject,
  DEFAULT_OBJECT_VALIDITY_DAYS,
  MAX_OBJECT_VALIDITY_DAYS,
  type ActivationObject,
  confirmInstallation,
  encodeConfirmationId,
  dayOf,
  groupsRefOf,
  hardwareRefOf,
  hostKeyRefOf,
  installationProofValid,
  keyRefOf,
  parseInstallationId,
  proofKeyOf,
  shortSigningKey,
  signPhoneCertificate,
  type InstallationId,
  type ShortSigningKey,
  MAX_OEM_GROUPS,
  keyFingerprint,
  signOemCertificate,
  signTokenCaCertificate,
  type OemCertificate,
  type TokenCaCertificate,
} from '@volact/core';
import { seal, unseal } from './sealing.js';
import { AuthorityError } from './errors.js';
import { SqliteAuthorityStore } from './sqlite-store.js';
import { PostgresAuthorityStore } from './postgres-store.js';
import type { AuthorityStore, HostActivationTx, InstallationOutcome, InstallationRequest, KeyRecord } from './store.js';

const ROOT_KEY_FILE = 'root-signing-key.pem';
const KEY_HASH_SECRET_FILE = 'key-hash.secret';
const DB_FILE = 'authority.db';
const META_FILE = 'authority.json';

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
}

function openStore(dataDir: string, options: AuthorityOptions): AuthorityStore {
  const url = options.databaseUrl;
  if (url === undefined) {
    const store = new SqliteAuthorityStore(join(dataDir, DB_FILE));
    secureDataDir(dataDir); // the database (and its -wal, -shm) SQLite just made with the umask's mode
    return store;
  }
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new AuthorityError('REQUEST_INVALID', `--db must be a postgres:// URL, got "${url.slice(0, 40)}"`);
  }
  return new PostgresAuthorityStore(url);
}

/**
 * The data directory holds the root key and the key-hash secret: only its owner may read it.
 * A directory or file others can read (made by hand, restored from a backup, an older volact)
 * is tightened to 0700 / 0600; when that is not allowed (another owner), the authority refuses
 * to start and names the chmod to run.
 */
function secureDataDir(dataDir: string): void {
  const tighten = (path: string, mode: number) => {
    let current: number;
    try {
      current = statSync(path).mode & 0o777;
    } catch {
      return; // absent (a PostgreSQL authority has no authority.db)
    }
    if ((current & 0o077) === 0) return;
    try {
      chmodSync(path, mode);
    } catch (err) {
      throw new AuthorityError(
        'DATA_DIR_INSECURE',
        `${path} has mode ${current.toString(8).padStart(4, '0')}: others can read the authority's secrets and it cannot be changed (${(err as NodeJS.ErrnoException).code ?? 'error'}); run \`chmod 700 ${dataDir} && chmod 600 ${dataDir}/*\` as its owner`,
      );
    }
  };
  tighten(dataDir, 0o700);
  for (const file of [ROOT_KEY_FILE, KEY_HASH_SECRET_FILE, META_FILE, DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) {
    tighten(join(dataDir, file), 0o600);
  }
}

/** The fix for a damaged file of the data directory: it cannot be made again without losing what it holds. */
const restoreHint = (path: string, loses: string) =>
  `restore ${path} from the backup of the data directory (making a new one ${loses})`;

export interface MintKeyRequest {
  readonly type: Extract<KeyType, 'kms-host' | 'mak' | 'retail'>;
  readonly groups: readonly string[];
  /** kms-host keys: how many hosts (default 6). */
  readonly hosts?: number;
  readonly activationsPerHost?: number;
  /** MAK: how many installations it may activate. Retail: 1, the only value accepted (the default). */
  readonly limit?: number;
}

/**
 * A KMS host certificate is issued by phone for whole days: this many. A phone-activated host
 * has no online renewal to refuse, so revoking its key takes effect when this ends.
 */
export const PHONE_CERT_VALIDITY_DAYS = 365;
/** A host certificate issued online lasts this many days by default; the host renews it at half-life. */
export const HOST_CERT_VALIDITY_DAYS = 30;
/** The longest an OEM or token CA certificate may run (ten years). */
export const MAX_CERTIFIED_DAYS = 3653;

export interface InstallationActivationRequest {
  readonly key: string;
  readonly installationId: string;
  /** The product group the client runs; a key of another group is refused by name. */
  readonly groupId?: string;
}

export interface InstallationActivation {
  readonly confirmationId: string;
  /** The installation's key type: a MAK, or a retail key (one installation). */
  readonly method: 'mak' | 'retail';
  readonly group: string;
  readonly used: number;
  readonly limit: number;
  /** true when this installation had been activated before (nothing was used). */
  readonly again: boolean;
}

export type Confirmation =
  | (InstallationActivation & { readonly kind: 'installation' })
  | {
      readonly kind: 'kms-host';
      readonly confirmationId: string;
      readonly groups: readonly string[];
      readonly hostsUsed: number;
      readonly hostLimit: number;
      readonly expiresAt: string;
    }
  | {
      readonly kind: 'activation-object';
      readonly confirmationId: string;
      readonly group: string;
      readonly hostsUsed: number;
      readonly hostLimit: number;
    };

export interface MintedKey {
  readonly key: string;
  readonly keyId: string;
  readonly type: KeyType;
  readonly groups: readonly string[];
  readonly limit: number;
  readonly hosts: number | null;
  readonly activationsPerHost: number | null;
}

export interface KeyReport {
  /** The key's last five characters: a report never carries the key. */
  readonly key: string;
  readonly keyId: string;
  readonly type: KeyType;
  /** The key's product group (the first, for a KMS host key that covers several). */
  readonly group: string;
  readonly groups: readonly string[];
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly activationsPerHost: number | null;
  readonly revokedAt: string | null;
  readonly activations: readonly (
    | {
        hardwareId: string;
        activationCount: number;
        firstActivatedAt: string;
        lastActivatedAt: string;
        certificateSerial: string;
        certificateExpiresAt: string;
      }
    | {
        installationId: string;
        channel: string;
        activationCount: number;
        firstActivatedAt: string;
        lastActivatedAt: string;
      }
  )[];
}

export interface HostActivationRequest {
  readonly hostKey: string;
  /** Raw Ed25519 public key of the host (32 bytes). */
  readonly hostPublicKey: Buffer;
  /** The host machine's hardware fingerprint: identifies "the same host" across re-activations. */
  readonly hardwareId: string;
}

export interface HostActivationResult {
  readonly certificate: Buffer;
  readonly expiresAt: number;
  readonly groups: readonly ProductGroup[];
  readonly hostKeyId: string;
  readonly hostsUsed: number;
  readonly hostLimit: number;
}

const HARDWARE_ID_RE = /^[0-9A-Za-z._:-]{1,128}$/;

/** How messages name an installation's key: a MAK or a retail key. */
const keyLabel = (type: KeyType) => (type === 'retail' ? 'retail key' : 'MAK');

/**
 * A host is recorded by the hash of its hardware id and of its public key, the only forms a
 * phone activation's installation ID carries: a host activated by phone and later online (or
 * the reverse) is the same host, with the same key pair.
 */
const hostRecordId = (hardwareRef: Buffer) => `hw:${hardwareRef.toString('hex')}`;

/** The publisher's authority: root key, product groups, keys, host certificates. */
export class Authority {
  readonly #root: SigningKeyPair;
  readonly #keyHashSecret: Buffer;
  readonly #store: AuthorityStore;
  readonly #clock: Clock;
  readonly #certValidity: number;
  readonly name: string;
  #shortKey: ShortSigningKey | undefined;
  /** Installation activations waiting for the next batch, and whether one is in the database. */
  #pendingInstallations: { request: InstallationRequest; settle: (o: InstallationOutcome | Error) => void }[] = [];
  #batchInFlight = false;
  /** What never changes about a key or group, so the hot path reads the database once per batch. */
  readonly #keysByHash = new Map<string, KeyRecord>();
  readonly #groupsById = new Map<string, ProductGroup>();

  private constructor(
    root: SigningKeyPair,
    secret: Buffer,
    store: AuthorityStore,
    name: string,
    options: AuthorityOptions,
  ) {
    this.#root = root;
    this.#keyHashSecret = secret;
    this.#store = store;
    this.name = name;
    this.#clock = options.clock ?? systemClock;
    this.#certValidity = options.hostCertificateValidity ?? HOST_CERT_VALIDITY_DAYS * DAY;
  }

  /** Creates the root signing key, the key-hash secret and the database. Refuses to overwrite. */
  static init(dataDir: string, options: AuthorityOptions & { name?: string } = {}): Authority {
    if (existsSync(join(dataDir, ROOT_KEY_FILE))) {
      throw new AuthorityError(
        'AUTHORITY_EXISTS',
        `${dataDir} already holds an authority (its root key would be lost)`,
      );
    }
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    secureDataDir(dataDir); // mkdirSync leaves an existing directory's mode as it was
    const root = generateSigningKeyPair();
    const secret = randomBytes(32);
    writeFileSync(join(dataDir, ROOT_KEY_FILE), privateKeyToPem(root.privateKey), { mode: 0o600, flag: 'wx' });
    writeFileSync(join(dataDir, KEY_HASH_SECRET_FILE), secret.toString('base64'), { mode: 0o600, flag: 'wx' });
    const name = options.name ?? 'volact authority';
    const clock = options.clock ?? systemClock;
    writeFileSync(
      join(dataDir, META_FILE),
      JSON.stringify({ format: 'volact-authority/1', name, createdAt: new Date(clock.now()).toISOString() }, null, 2),
    );
    return new Authority(root, secret, openStore(dataDir, options), name, options);
  }

  static open(dataDir: string, options: AuthorityOptions = {}): Authority {
    const keyPath = join(dataDir, ROOT_KEY_FILE);
    if (!existsSync(keyPath)) {
      throw new AuthorityError(
        'AUTHORITY_NOT_INITIALISED',
        `no authority in ${dataDir}: run \`volact authority init --data-dir ${dataDir}\` first`,
      );
    }
    const read = (file: string): string => {
      try {
        return readFileSync(join(dataDir, file), 'utf8');
      } catch (err) {
        throw new AuthorityError(
          'AUTHORITY_NOT_INITIALISED',
          `${join(dataDir, file)} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): restore the data directory from its backup`,
        );
      }
    };
    secureDataDir(dataDir);
    let root: SigningKeyPair;
    try {
      root = signingKeyPairFromPem(read(ROOT_KEY_FILE));
    } catch (err) {
      if (err instanceof AuthorityError) throw err;
      throw new AuthorityError(
        'AUTHORITY_FILE_DAMAGED',
        `${keyPath} is not a valid Ed25519 private key (truncated or damaged: ${(err as { code?: string }).code ?? (err as Error).message}); ${restoreHint(keyPath, "would orphan every product shipped with this authority's root public key")}`,
      );
    }
    const secretPath = join(dataDir, KEY_HASH_SECRET_FILE);
    const secretText = read(KEY_HASH_SECRET_FILE).trim();
    const secret = Buffer.from(secretText, 'base64');
    // Any text decodes as base64: a truncated secret would silently hash every key differently.
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(secretText) || secret.length !== 32) {
      throw new AuthorityError(
        'AUTHORITY_FILE_DAMAGED',
        `${secretPath} is truncated or damaged (${secret.length} bytes of base64, expected 32); ${restoreHint(secretPath, 'would make every minted key unknown')}`,
      );
    }
    let meta: { name?: string };
    try {
      meta = JSON.parse(read(META_FILE)) as { name?: string };
    } catch (err) {
      if (err instanceof AuthorityError) throw err;
      throw new AuthorityError(
        'AUTHORITY_FILE_DAMAGED',
        `${join(dataDir, META_FILE)} is not valid JSON: restore it from the backup, or write {"format":"volact-authority/1","name":"…"} into it`,
      );
    }
    return new Authority(root, secret, openStore(dataDir, options), meta.name ?? 'volact authority', options);
  }

  get rootPublicKeyRaw(): Buffer {
    return this.#root.publicKeyRaw;
  }

  async addGroup(input: { name: string; kind?: GroupKind; threshold?: number }): Promise<ProductGroup> {
    if (!GROUP_NAME_RE.test(input.name)) {
      throw new AuthorityError(
        'GROUP_INVALID',
        `group name "${input.name.slice(0, 80)}" is invalid: use 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      );
    }
    const kind = input.kind ?? 'app';
    if (!GROUP_KINDS.includes(kind)) {
      throw new AuthorityError('GROUP_INVALID', `group kind "${kind}" is invalid; expected ${GROUP_KINDS.join(', ')}`);
    }
    const threshold = input.threshold ?? DEFAULT_THRESHOLD[kind];
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > 1_000_000) {
      throw new AuthorityError(
        'GROUP_INVALID',
        `threshold ${threshold} is invalid; expected a whole number from 1 to 1000000`,
      );
    }
    if (await this.#store.findGroup(input.name)) {
      throw new AuthorityError('GROUP_EXISTS', `a product group named "${input.name}" exists already`);
    }
    const group: ProductGroup = { id: randomGuid(), name: input.name, kind, threshold };
    await this.#store.addGroup({ ...group, createdAt: this.#clock.now() }); // GROUP_EXISTS on a race
    await this.#store.audit({ at: this.#clock.now(), action: 'group.add', result: 'OK', detail: group.name });
    return group;
  }

  listGroups(): Promise<ProductGroup[]> {
    return this.#store.listGroups();
  }

  async group(nameOrId: string): Promise<ProductGroup> {
    const cached = this.#groupsById.get(nameOrId);
    if (cached) return cached;
    const group = await this.#store.findGroup(nameOrId);
    if (group && group.id === nameOrId) this.#groupsById.set(group.id, group);
    if (!group) {
      const known = (await this.#store.listGroups()).map((g) => g.name);
      throw new AuthorityError(
        'GROUP_NOT_FOUND',
        `no product group "${nameOrId.slice(0, 80)}"; known groups: ${known.length ? known.join(', ') : '(none — add one with `volact authority group add`)'}`,
      );
    }
    return group;
  }

  /** The file a publisher ships inside its product: pinned root key, group, GVLK, policy. */
  /** `url`: where installations activate a MAK online (the product's default for `--authority`). */
  async productConfig(groupName: string, options: { url?: string } = {}): Promise<ProductConfig> {
    const group = await this.group(groupName);
    if (options.url !== undefined) {
      try {
        authorityEndpoint(options.url, '/');
      } catch (err) {
        throw new AuthorityError('REQUEST_INVALID', (err as Error).message);
      }
    }
    return {
      format: 'volact-product-config/1',
      authority: {
        rootPublicKey: this.#root.publicKeyRaw.toString('base64'),
        name: this.name,
        ...(options.url === undefined ? {} : { url: new URL(options.url).origin }),
      },
      group: { id: group.id, name: group.name, kind: group.kind, threshold: group.threshold },
      gvlk: gvlkFor(this.#root.publicKeyRaw, guidToBytes(group.id)).text,
      policy: defaultPolicy(),
    };
  }

  async mintKey(request: MintKeyRequest): Promise<MintedKey> {
    const type = request.type as string;
    if (type !== 'kms-host' && type !== 'mak' && type !== 'retail') {
      throw new AuthorityError('KEY_WRONG_TYPE', `minting ${type} keys is not supported; use kms-host, mak or retail`);
    }
    if (request.groups.length === 0)
      throw new AuthorityError('GROUP_INVALID', `a ${type} key needs a product group (--group)`);
    const resolved = await Promise.all(request.groups.map((g) => this.group(g)));
    const groups = resolved.filter((g, i) => resolved.findIndex((h) => h.id === g.id) === i);
    if (type !== 'kms-host' && groups.length !== 1) {
      const what = type === 'mak' ? 'a MAK' : 'a retail key';
      throw new AuthorityError('GROUP_INVALID', `${what} activates one product group; got ${groups.length}`);
    }
    // Reference (plan-for-volume-activation): "each purchased copy comes with one unique product
    // key": a retail key activates one installation, online or by phone; the limit is not a choice.
    if (type === 'retail' && request.limit !== undefined && request.limit !== 1) {
      throw new AuthorityError(
        'REQUEST_INVALID',
        `a retail key activates exactly one installation (its limit is 1), got --limit ${request.limit}; mint a MAK for more`,
      );
    }
    const installationKey = type !== 'kms-host';
    const limit = type === 'retail' ? 1 : type === 'mak' ? request.limit : (request.hosts ?? KMS_DEFAULTS.hostLimit);
    const perHost = installationKey ? null : (request.activationsPerHost ?? KMS_DEFAULTS.activationsPerHost);
    if (limit === undefined)
      throw new AuthorityError('REQUEST_INVALID', 'a MAK needs its number of activations (--limit N)');
    for (const [name, v] of [
      [installationKey ? 'limit' : 'hosts', limit],
      ['activations per host', perHost ?? 1],
    ] as const) {
      if (!Number.isInteger(v) || v < 1 || v > 10_000_000) {
        throw new AuthorityError('REQUEST_INVALID', `${name} must be a whole number from 1 to 10000000, got ${v}`);
      }
    }
    const key = makeKey(type);
    const record: KeyRecord = {
      id: randomGuid(),
      keyHash: keyedHash(this.#keyHashSecret, key.text),
      type: key.type,
      last5: lastFiveOf(key),
      groupIds: groups.map((g) => g.id),
      limit,
      activationsPerHost: perHost,
      createdAt: this.#clock.now(),
      revokedAt: null,
      keyRef: keyRefOf(key).toString('hex'),
      proofKeySealed: seal(this.#keyHashSecret, proofKeyOf(key)),
      used: 0,
    };
    await this.#store.addKey(record);
    await this.#store.audit({ at: this.#clock.now(), action: 'key.mint', result: 'OK', keyLast5: record.last5 });
    return {
      key: key.text,
      keyId: record.id,
      type: key.type,
      groups: groups.map((g) => g.name),
      limit,
      hosts: installationKey ? null : limit,
      activationsPerHost: perHost,
    };
  }

  /**
   * Activates a KMS host key for one host and certifies the host's public key. Ordered checks;
   * the first failing one decides. The same host (hardware id) renewing with the same public
   * key is free; with a new key pair it uses one of its re-activations.
   */
  async activateHost(request: HostActivationRequest): Promise<HostActivationResult> {
    const now = this.#clock.now();
    const refuse = async (code: ConstructorParameters<typeof AuthorityError>[0], message: string, last5?: string) => {
      await this.#store.audit({ at: now, action: 'host.activate', result: code, keyLast5: last5, detail: message });
      return new AuthorityError(code, message);
    };
    let parsed;
    try {
      parsed = parseKey(request.hostKey);
    } catch (err) {
      if (err instanceof CoreError && (err.code === 'KEY_MALFORMED' || err.code === 'KEY_CHECKSUM_FAILED')) {
        throw await refuse(err.code, err.message);
      }
      throw err;
    }
    const last5 = lastFiveOf(parsed);
    if (parsed.type !== 'kms-host') {
      throw await refuse('KEY_WRONG_TYPE', `key ${last5} is a ${parsed.type} key; a host needs a kms-host key`, last5);
    }
    if (!HARDWARE_ID_RE.test(request.hardwareId)) {
      throw await refuse('REQUEST_INVALID', 'hardwareId must be 1-128 letters, digits or ._:-', last5);
    }
    if (request.hostPublicKey.length !== 32) {
      throw await refuse('REQUEST_INVALID', 'hostPublicKey must be a 32-byte Ed25519 public key', last5);
    }
    const key = await this.#store.findKeyByHash(keyedHash(this.#keyHashSecret, parsed.text));
    if (!key) throw await refuse('KEY_NOT_FOUND', `KMS host key ${last5} was not minted by this authority`, last5);
    if (key.revokedAt !== null) throw await refuse('KEY_REVOKED', `KMS host key ${last5} was revoked`, last5);
    const hostLimit = key.limit ?? KMS_DEFAULTS.hostLimit;

    const decision = await this.#recordHostActivation(
      key,
      last5,
      hostRecordId(hardwareRefOf(request.hardwareId)),
      hostKeyRefOf(request.hostPublicKey),
      {
        now,
        expiresAt: now + this.#certValidity,
        serial: randomGuid(),
        action: 'host.activate',
      },
    );
    // The decision's audit row was written with it.
    if (decision.refused) throw new AuthorityError(decision.refused, decision.message);

    const groups = await Promise.all(key.groupIds.map((id) => this.group(id)));
    const certificate = issueHostCertificate(
      {
        hostPublicKey: request.hostPublicKey,
        serial: decision.serial,
        hostKeyId: key.id,
        issuedAt: now,
        expiresAt: decision.expiresAt,
        groupIds: key.groupIds,
      },
      this.#root,
    );
    return {
      certificate,
      expiresAt: decision.expiresAt,
      groups,
      hostKeyId: key.id,
      hostsUsed: decision.hostsUsed,
      hostLimit,
    };
  }

  /**
   * The host-count decision, under the key's row lock. `hostKey` is the host's public key
   * (online) or its 16-byte reference from an installation ID (phone); the same host with the
   * same key renews free, with a new one it uses one of its re-activations.
   */
  async #recordHostActivation(
    key: KeyRecord,
    last5: string,
    hardwareId: string,
    hostKey: Buffer,
    cert: { now: number; expiresAt: number; serial: string; action: string },
  ): Promise<
    | { refused: 'HOST_LIMIT_REACHED' | 'HOST_REACTIVATION_LIMIT_REACHED'; message: string }
    | { refused: null; serial: string; expiresAt: number; hostsUsed: number }
  > {
    const hostLimit = key.limit ?? KMS_DEFAULTS.hostLimit;
    const perHost = key.activationsPerHost ?? KMS_DEFAULTS.activationsPerHost;
    const decided = await this.#store.withHostActivation(key.id, async (tx) => {
      const decision = await decide(tx);
      await tx.audit({
        at: cert.now,
        action: cert.action,
        result: decision.refused ?? 'OK',
        keyLast5: last5,
        detail: decision.refused
          ? decision.message
          : `host ${decision.hostsUsed} of ${hostLimit}, certificate ${decision.serial}`,
      });
      return decision;
    });
    return decided;

    async function decide(
      tx: HostActivationTx,
    ): Promise<
      | { refused: 'HOST_LIMIT_REACHED' | 'HOST_REACTIVATION_LIMIT_REACHED'; message: string }
      | { refused: null; serial: string; expiresAt: number; hostsUsed: number }
    > {
      const existing = await tx.findHost(key.id, hardwareId);
      let activationCount = 1;
      if (existing) {
        const sameKeyPair = existing.hostPublicKey.equals(hostKey);
        activationCount = existing.activationCount + (sameKeyPair ? 0 : 1);
        if (activationCount > perHost) {
          return {
            refused: 'HOST_REACTIVATION_LIMIT_REACHED' as const,
            message: `KMS host key ${last5} has been activated ${existing.activationCount} times on this host (limit ${perHost}); ask the publisher to raise it`,
          };
        }
      } else {
        const used = await tx.countHosts(key.id);
        if (used >= hostLimit) {
          return {
            refused: 'HOST_LIMIT_REACHED' as const,
            message: `KMS host key ${last5} has activated ${used} of ${hostLimit} hosts; ask the publisher to raise the limit or use another host key`,
          };
        }
      }
      await tx.saveHost({
        keyId: key.id,
        hardwareId,
        hostPublicKey: hostKey,
        activationCount,
        firstActivatedAt: existing?.firstActivatedAt ?? cert.now,
        lastActivatedAt: cert.now,
        certificateSerial: cert.serial,
        certificateExpiresAt: cert.expiresAt,
      });
      return { refused: null, serial: cert.serial, expiresAt: cert.expiresAt, hostsUsed: await tx.countHosts(key.id) };
    }
  }

  #signer(): ShortSigningKey {
    this.#shortKey ??= shortSigningKey(this.#root.privateKey);
    return this.#shortKey;
  }

  /**
   * Online MAK activation: the key and the installation ID (made from that key and the
   * machine's hardware) in, a confirmation ID out — the same signed answer the phone flow
   * gives. A new installation uses one activation; the same installation again uses none.
   */
  async activateInstallation(request: InstallationActivationRequest): Promise<InstallationActivation> {
    const now = this.#clock.now();
    const refuse = async (code: ConstructorParameters<typeof AuthorityError>[0], message: string, last5?: string) => {
      await this.#store.audit({
        at: now,
        action: 'installation.activate.online',
        result: code,
        keyLast5: last5,
        detail: message,
      });
      return new AuthorityError(code, message);
    };
    let parsed;
    try {
      parsed = parseKey(request.key);
    } catch (err) {
      if (err instanceof CoreError && (err.code === 'KEY_MALFORMED' || err.code === 'KEY_CHECKSUM_FAILED')) {
        throw await refuse(err.code, err.message);
      }
      throw err;
    }
    const last5 = lastFiveOf(parsed);
    if (parsed.type !== 'mak' && parsed.type !== 'retail') {
      throw await refuse(
        'KEY_WRONG_TYPE',
        `key ${last5} is a ${parsed.type} key; online installation activation takes a MAK or a retail key`,
        last5,
      );
    }
    const label = keyLabel(parsed.type);
    const iid = await this.#parseIid(request.installationId, (code, message) => refuse(code, message, last5));
    if (iid.kind !== 'installation') {
      throw await refuse(
        'IID_INVALID',
        "this is a KMS host's installation ID; activate the host with `volact host activate`",
        last5,
      );
    }
    if (!iid.keyRef.equals(keyRefOf(parsed)) || !installationProofValid(iid, proofKeyOf(parsed))) {
      throw await refuse(
        'IID_KEY_MISMATCH',
        `the installation ID was not made with key ${last5}: read it again after installing this key`,
        last5,
      );
    }
    const key = await this.#findKey(keyedHash(this.#keyHashSecret, parsed.text));
    if (!key) throw await refuse('KEY_NOT_FOUND', `${label} ${last5} was not minted by this authority`, last5);
    if (key.revokedAt !== null) throw await refuse('KEY_REVOKED', `${label} ${last5} was revoked`, last5);
    // The IID names its product group too: checked even when the caller gives no groupId, so
    // an activation is never spent on a confirmation its installation could not verify.
    if (
      (request.groupId !== undefined && !key.groupIds.includes(request.groupId.toLowerCase())) ||
      !iid.groupsRef.equals(groupsRefOf([...key.groupIds].sort()))
    ) {
      const group = await this.group(key.groupIds[0] as string);
      throw await refuse('GROUP_MISMATCH', `${label} ${last5} activates ${group.name}, not this product`, last5);
    }
    return this.#completeInstallation(key, last5, iid, 'online', now);
  }

  /**
   * Phone activation: the installation ID a machine read out becomes its confirmation ID. A
   * product installation's MAK is used as online; a KMS host's certificate is signed into the
   * confirmation and rebuilt by the host.
   */
  async confirm(installationIdText: string): Promise<Confirmation> {
    const now = this.#clock.now();
    const refuse = async (code: ConstructorParameters<typeof AuthorityError>[0], message: string, last5?: string) => {
      await this.#store.audit({ at: now, action: 'confirm', result: code, keyLast5: last5, detail: message });
      return new AuthorityError(code, message);
    };
    const iid = await this.#parseIid(installationIdText, refuse);
    const candidates = await this.#store.findKeyByRef(iid.keyRef.toString('hex'));
    const key = candidates.find((k) => {
      const proofKey = k.proofKeySealed === null ? null : unseal(this.#keyHashSecret, k.proofKeySealed);
      return proofKey !== null && installationProofValid(iid, proofKey);
    });
    if (!key) {
      throw await refuse(
        candidates.length ? 'IID_KEY_MISMATCH' : 'KEY_NOT_FOUND',
        candidates.length
          ? 'the installation ID does not check out against its key: read it out again'
          : 'the installation ID names a key this authority never minted (or minted before phone activation existed: mint a new one)',
      );
    }
    const last5 = key.last5;
    if (key.revokedAt !== null) throw await refuse('KEY_REVOKED', `key ${last5} was revoked`, last5);
    const groupIds = [...key.groupIds].sort();
    if (iid.kind === 'activation-object') return this.#confirmActivationObject(key, iid, now, refuse);
    if (!iid.groupsRef.equals(groupsRefOf(groupIds))) {
      const names = (await Promise.all(groupIds.map((g) => this.group(g)))).map((g) => g.name);
      throw await refuse(
        'GROUP_MISMATCH',
        `key ${last5} activates ${names.join(', ')}; the installation ID was made for other product groups`,
        last5,
      );
    }
    if (iid.kind === 'installation') {
      if (key.type !== 'mak' && key.type !== 'retail') {
        throw await refuse(
          'KEY_WRONG_TYPE',
          `key ${last5} is a ${key.type} key; a product installation needs a MAK or a retail key`,
          last5,
        );
      }
      return { kind: 'installation', ...(await this.#completeInstallation(key, last5, iid, 'phone', now)) };
    }
    if (key.type !== 'kms-host') {
      throw await refuse('KEY_WRONG_TYPE', `key ${last5} is a ${key.type} key; a KMS host needs a kms-host key`, last5);
    }
    const issuedDay = dayOf(now);
    const hostKeyRef = iid.hostKeyRef as Buffer;
    const decision = await this.#recordHostActivation(key, last5, hostRecordId(iid.hardwareRef), hostKeyRef, {
      now,
      expiresAt: (issuedDay + PHONE_CERT_VALIDITY_DAYS) * DAY,
      serial: `phone-${issuedDay}`,
      action: 'confirm',
    });
    if (decision.refused) throw new AuthorityError(decision.refused, decision.message);
    const signature = signPhoneCertificate(
      { keyRef: iid.keyRef, hostKeyRef, issuedDay, validityDays: PHONE_CERT_VALIDITY_DAYS, groupIds },
      this.#signer(),
    );
    return {
      kind: 'kms-host',
      confirmationId: encodeConfirmationId(issuedDay, signature).text,
      groups: (await Promise.all(groupIds.map((g) => this.group(g)))).map((g) => g.name),
      hostsUsed: decision.hostsUsed,
      hostLimit: key.limit ?? KMS_DEFAULTS.hostLimit,
      expiresAt: new Date(decision.expiresAt).toISOString(),
    };
  }

  /**
   * A disconnected forest's activation object, by phone: the forest's KMS host key activates
   * it and uses one of its host activations (the reference's CSVLK activates the object).
   */
  async #confirmActivationObject(
    key: KeyRecord,
    iid: InstallationId,
    now: number,
    refuse: (code: 'KEY_WRONG_TYPE' | 'GROUP_MISMATCH', message: string, last5?: string) => Promise<AuthorityError>,
  ): Promise<Confirmation> {
    const last5 = key.last5;
    if (key.type !== 'kms-host') {
      throw await refuse(
        'KEY_WRONG_TYPE',
        `key ${last5} is a ${key.type} key; an activation object needs a KMS host key`,
        last5,
      );
    }
    const groupId = key.groupIds.find((g) => iid.groupsRef.equals(groupsRefOf([g])));
    if (groupId === undefined) {
      const names = (await Promise.all(key.groupIds.map((g) => this.group(g)))).map((g) => g.name);
      throw await refuse(
        'GROUP_MISMATCH',
        `key ${last5} activates ${names.join(', ')}; the installation ID names another group`,
        last5,
      );
    }
    const domainRef = iid.domainRef as Buffer;
    const issuedDay = dayOf(now);
    const decision = await this.#recordHostActivation(key, last5, `ao:${domainRef.toString('hex')}`, domainRef, {
      now,
      // The phone-made object is valid this long from its signed issue day (core: activationObjectValidity).
      expiresAt: (issuedDay + DEFAULT_OBJECT_VALIDITY_DAYS) * DAY,
      serial: `object-${issuedDay}`,
      action: 'confirm',
    });
    if (decision.refused) throw new AuthorityError(decision.refused, decision.message);
    const signature = signPhoneActivationObject({ keyRef: iid.keyRef, domainRef, groupId, issuedDay }, this.#signer());
    return {
      kind: 'activation-object',
      confirmationId: encodeConfirmationId(issuedDay, signature).text,
      group: (await this.group(groupId)).name,
      hostsUsed: decision.hostsUsed,
      hostLimit: key.limit ?? KMS_DEFAULTS.hostLimit,
    };
  }

  async #parseIid(
    text: string,
    refuse: (code: 'IID_INVALID', message: string) => Promise<AuthorityError>,
  ): Promise<InstallationId> {
    try {
      return parseInstallationId(text);
    } catch (err) {
      if (err instanceof CoreError) throw await refuse('IID_INVALID', err.message);
      throw err;
    }
  }

  async #completeInstallation(
    key: KeyRecord,
    last5: string,
    iid: InstallationId,
    channel: 'online' | 'phone',
    now: number,
  ): Promise<InstallationActivation> {
    const retail = key.type === 'retail';
    const outcome = await this.#enqueueInstallation({
      keyId: key.id,
      keyLast5: last5,
      hardwareRef: iid.hardwareRef.toString('hex'),
      installationId: iid.text,
      channel,
      at: now,
      ...(retail ? { limitCode: 'RETAIL_ALREADY_ACTIVATED' as const } : {}),
    });
    if (outcome.outcome === 'revoked') {
      throw new AuthorityError('KEY_REVOKED', `${keyLabel(key.type)} ${last5} was revoked`);
    }
    if (outcome.outcome === 'limit' && retail) {
      // One key, one installation: only the installation that activated it may activate again.
      throw new AuthorityError(
        'RETAIL_ALREADY_ACTIVATED',
        `retail key ${last5} is already activated on another installation; a retail key activates one installation (the same machine, re-imaged, activates again free)`,
      );
    }
    if (outcome.outcome === 'limit') {
      // The decision's audit row was written with it.
      throw new AuthorityError(
        'MAK_LIMIT_REACHED',
        `MAK ${last5} has used all ${outcome.limit} of its activations; ask the publisher to raise its limit (\`volact authority key raise\`)`,
      );
    }
    const group = await this.group(key.groupIds[0] as string);
    return {
      confirmationId: confirmInstallation(iid, group.id, dayOf(now), this.#signer()).text,
      method: retail ? 'retail' : 'mak',
      group: group.name,
      used: outcome.used,
      limit: outcome.limit,
      again: outcome.outcome === 'existing',
    };
  }

  /**
   * Concurrent activations share a transaction: requests that arrive while the previous batch
   * is in the database wait for the next one (at most 500 per batch, any keys). One commit and
   * one round of row locks per batch instead of per request; the decision stays exact.
   */
  #enqueueInstallation(request: InstallationRequest): Promise<InstallationOutcome> {
    return new Promise((resolve, reject) => {
      this.#pendingInstallations.push({ request, settle: (o) => (o instanceof Error ? reject(o) : resolve(o)) });
      if (this.#pendingInstallations.length === 1 && !this.#batchInFlight) {
        setImmediate(() => void this.#flushInstallations());
      }
    });
  }

  async #flushInstallations(): Promise<void> {
    if (this.#batchInFlight || this.#pendingInstallations.length === 0) return;
    const batch = this.#pendingInstallations.splice(0, 500);
    this.#batchInFlight = true;
    try {
      const outcomes = await this.#store.activateInstallations(batch.map((b) => b.request));
      batch.forEach((b, i) => b.settle(outcomes[i] as InstallationOutcome));
    } catch (err) {
      for (const b of batch) b.settle(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.#batchInFlight = false;
      if (this.#pendingInstallations.length > 0) void this.#flushInstallations();
    }
  }

  /** A key by its keyed hash; cached (its id, type, groups and reference never change). */
  async #findKey(keyHash: string): Promise<KeyRecord | undefined> {
    // A stale limit or revocation does not matter: the batch transaction reads both afresh.
    const cached = this.#keysByHash.get(keyHash);
    if (cached) return cached;
    const key = await this.#store.findKeyByHash(keyHash);
    if (key) {
      if (this.#keysByHash.size >= 100_000) this.#keysByHash.clear();
      this.#keysByHash.set(keyHash, key);
    }
    return key;
  }

  /** A minted key by its text: parse errors and unknown keys become AuthorityErrors. */
  async #key(text: string): Promise<{ record: KeyRecord; last5: string }> {
    let parsed;
    try {
      parsed = parseKey(text);
    } catch (err) {
      if (err instanceof CoreError && (err.code === 'KEY_MALFORMED' || err.code === 'KEY_CHECKSUM_FAILED')) {
        throw new AuthorityError(err.code, err.message);
      }
      throw err;
    }
    const last5 = lastFiveOf(parsed);
    const record = await this.#store.findKeyByHash(keyedHash(this.#keyHashSecret, parsed.text));
    if (!record) throw new AuthorityError('KEY_NOT_FOUND', `key ${last5} was not minted by this authority`);
    return { record, last5 };
  }

  /** What a key may do and has done: limit, used, remaining, and each activation. */
  async showKey(text: string): Promise<KeyReport> {
    const { record, last5 } = await this.#key(text);
    const groups = await Promise.all(record.groupIds.map((id) => this.group(id)));
    const base = {
      key: last5,
      keyId: record.id,
      type: record.type,
      group: groups[0]?.name ?? '',
      groups: groups.map((g) => g.name),
      revokedAt: record.revokedAt === null ? null : new Date(record.revokedAt).toISOString(),
    };
    const iso = (ms: number) => new Date(ms).toISOString();
    if (record.type === 'mak' || record.type === 'retail') {
      const limit = record.limit ?? 0;
      const installations = await this.#store.listInstallations(record.id);
      return {
        ...base,
        limit,
        used: record.used,
        remaining: Math.max(0, limit - record.used),
        activationsPerHost: null,
        activations: installations.map((i) => ({
          installationId: i.installationId,
          channel: i.channel,
          activationCount: i.activationCount,
          firstActivatedAt: iso(i.firstActivatedAt),
          lastActivatedAt: iso(i.lastActivatedAt),
        })),
      };
    }
    const hosts = await this.#store.listHosts(record.id);
    const limit = record.limit ?? KMS_DEFAULTS.hostLimit;
    return {
      ...base,
      limit,
      used: hosts.length,
      remaining: Math.max(0, limit - hosts.length),
      activationsPerHost: record.activationsPerHost ?? KMS_DEFAULTS.activationsPerHost,
      activations: hosts.map((h) => ({
        hardwareId: h.hardwareId,
        activationCount: h.activationCount,
        firstActivatedAt: iso(h.firstActivatedAt),
        lastActivatedAt: iso(h.lastActivatedAt),
        certificateSerial: h.certificateSerial,
        certificateExpiresAt: iso(h.certificateExpiresAt),
      })),
    };
  }

  /** Sets how many hosts or installations a key may activate (the reference: "raise the limit by calling"). */
  async setKeyLimit(text: string, limit: number): Promise<KeyReport> {
    const { record, last5 } = await this.#key(text);
    if (record.type === 'retail') {
      throw new AuthorityError(
        'KEY_WRONG_TYPE',
        `key ${last5} is a retail key: it activates one installation and its limit stays 1; mint a MAK for more`,
      );
    }
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000_000) {
      throw new AuthorityError('REQUEST_INVALID', `the limit must be a whole number from 1 to 10000000, got ${limit}`);
    }
    if (!(await this.#store.setLimit(record.id, limit))) {
      const used =
        record.type === 'mak' ? (await this.#key(text)).record.used : (await this.#store.listHosts(record.id)).length;
      throw new AuthorityError(
        'KEY_LIMIT_BELOW_USED',
        `key ${last5} has made ${used} activations; the limit cannot go below that`,
      );
    }
    await this.#store.audit({
      at: this.#clock.now(),
      action: 'key.limit',
      result: 'OK',
      keyLast5: last5,
      detail: `limit ${limit}`,
    });
    return this.showKey(text);
  }

  /** Refuses the key's later activations; those already made stay listed (and their certificates valid). */
  async revokeKey(text: string): Promise<KeyReport> {
    const { record, last5 } = await this.#key(text);
    await this.#store.revokeKey(record.id, this.#clock.now());
    await this.#store.audit({ at: this.#clock.now(), action: 'key.revoke', result: 'OK', keyLast5: last5 });
    return this.showKey(text);
  }

  /**
   * An activation object for a product group and a directory domain (the reference's
   * Active Directory-Based activation), signed by the root. The organisation publishes it in
   * its directory with `volact directory publish`; member installations of the group activate
   * from it with no KMS host.
   */
  async createActivationObject(request: {
    group: string;
    domain: string;
    name: string;
    /** How long the object licenses members (default DEFAULT_OBJECT_VALIDITY_DAYS); the publisher re-issues it. */
    validityDays?: number;
  }): Promise<ActivationObject> {
    const now = this.#clock.now();
    const domain = normaliseDomain(request.domain);
    if (!DOMAIN_NAME_RE.test(domain)) {
      throw new AuthorityError(
        'REQUEST_INVALID',
        `--domain "${request.domain.slice(0, 80)}" is not a DNS domain name (e.g. corp.example.com)`,
      );
    }
    if (!OBJECT_NAME_RE.test(request.name)) {
      throw new AuthorityError(
        'REQUEST_INVALID',
        `--name "${request.name.slice(0, 80)}" is invalid: 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      );
    }
    const validityDays = request.validityDays ?? DEFAULT_OBJECT_VALIDITY_DAYS;
    if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > MAX_OBJECT_VALIDITY_DAYS) {
      throw new AuthorityError(
        'REQUEST_INVALID',
        `--validity-days must be a whole number from 1 to ${MAX_OBJECT_VALIDITY_DAYS}, got ${String(request.validityDays).slice(0, 20)}`,
      );
    }
    const group = await this.group(request.group);
    const object = signActivationObject(
      {
        name: request.name,
        objectId: randomGuid(),
        group: { id: group.id, name: group.name },
        domain,
        issuedAt: now,
        validityDays,
      },
      this.#root,
    );
    await this.#store.audit({
      at: now,
      action: 'activation-object.create',
      result: 'OK',
      detail: `${object.name} for ${group.name} in ${domain}, valid ${validityDays} days`,
    });
    return object;
  }

  /**
   * OEM activation: certifies a manufacturer's public key for some product groups. The
   * manufacturer made its key pair and keeps the private key; its factory signs one marker per
   * machine with it (`volact oem mark`). What was issued is in the audit log.
   */
  async issueOemCertificate(request: {
    manufacturer: string;
    publicKeyRaw: Buffer;
    groups: readonly string[];
    days: number;
  }): Promise<OemCertificate> {
    const now = this.#clock.now();
    const fields = this.#checkCertifiedKey(request.publicKeyRaw, request.days);
    if (!/^[\x20-\x7e]{1,64}$/.test(request.manufacturer.trim())) {
      throw new AuthorityError('REQUEST_INVALID', '--manufacturer must be 1-64 printable ASCII characters');
    }
    if (request.groups.length < 1 || request.groups.length > MAX_OEM_GROUPS) {
      throw new AuthorityError('REQUEST_INVALID', `an OEM certificate names 1..${MAX_OEM_GROUPS} product groups`);
    }
    const groups = await Promise.all(request.groups.map((g) => this.group(g)));
    const certificate = signOemCertificate(
      {
        serial: randomGuid(),
        manufacturer: request.manufacturer,
        publicKeyRaw: request.publicKeyRaw,
        groups: [...new Map(groups.map((g) => [g.id, { id: g.id, name: g.name }])).values()],
        notBefore: now,
        notAfter: now + fields.days * DAY,
      },
      this.#root,
    );
    await this.#store.audit({
      at: now,
      action: 'oem-certificate.issue',
      result: 'OK',
      detail: `serial ${certificate.serial} for ${certificate.manufacturer} (key ${fields.keyId}) groups ${certificate.groups.map((g) => g.name).join(',')} until ${certificate.notAfter}`,
    });
    return certificate;
  }

  /**
   * Token-based activation: certifies an organisation's issuing CA key for one product group.
   * The organisation made its key pair and keeps the private key; its CA issues the tokens
   * (`volact token issue`) and CRLs. What was issued is in the audit log.
   */
  async issueTokenCa(request: {
    organisation: string;
    group: string;
    publicKeyRaw: Buffer;
    days: number;
  }): Promise<TokenCaCertificate> {
    const now = this.#clock.now();
    const fields = this.#checkCertifiedKey(request.publicKeyRaw, request.days);
    if (!/^[\x20-\x7e]{1,64}$/.test(request.organisation.trim())) {
      throw new AuthorityError('REQUEST_INVALID', '--organisation must be 1-64 printable ASCII characters');
    }
    const group = await this.group(request.group);
    const certificate = signTokenCaCertificate(
      {
        serial: randomGuid(),
        organisation: request.organisation,
        group: { id: group.id, name: group.name },
        publicKeyRaw: request.publicKeyRaw,
        notBefore: now,
        notAfter: now + fields.days * DAY,
      },
      this.#root,
    );
    await this.#store.audit({
      at: now,
      action: 'token-ca.issue',
      result: 'OK',
      detail: `serial ${certificate.serial} for ${certificate.organisation} (key ${fields.keyId}) group ${group.name} until ${certificate.notAfter}`,
    });
    return certificate;
  }

  /** The root signs only a public key someone else holds the private half of, never its own. */
  #checkCertifiedKey(publicKeyRaw: Buffer, days: number): { keyId: string; days: number } {
    if (publicKeyRaw.length !== 32) throw new AuthorityError('REQUEST_INVALID', 'an Ed25519 public key has 32 bytes');
    if (publicKeyRaw.equals(this.#root.publicKeyRaw)) {
      throw new AuthorityError(
        'REQUEST_INVALID',
        "that is the authority's own root key: certify the other party's key",
      );
    }
    if (!Number.isInteger(days) || days < 1 || days > MAX_CERTIFIED_DAYS) {
      throw new AuthorityError('REQUEST_INVALID', `--days must be a whole number from 1 to ${MAX_CERTIFIED_DAYS}`);
    }
    return { keyId: keyFingerprint(publicKeyRaw).toString('hex'), days };
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

  close(): Promise<void> {
    return this.#store.close();
  }
}
