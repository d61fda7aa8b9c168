import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
} from '@volact/core';
import { AuthorityError } from './errors.js';
import { SqliteAuthorityStore } from './sqlite-store.js';
import { PostgresAuthorityStore } from './postgres-store.js';
import type { AuthorityStore, HostActivationRecord, KeyRecord } from './store.js';

const ROOT_KEY_FILE = 'root-signing-key.pem';
const KEY_HASH_SECRET_FILE = 'key-hash.secret';
const DB_FILE = 'authority.db';
const META_FILE = 'authority.json';

export interface AuthorityOptions {
  readonly clock?: Clock;
  /** How long a host certificate is valid; the host re-activates (free) before it ends. */
  readonly hostCertificateValidity?: number;
  /**
   * postgres://… to keep the authority's records in PostgreSQL (many nodes on one database);
   * otherwise SQLite in the data directory. The root key stays in the data directory.
   */
  readonly databaseUrl?: string;
}

function openStore(dataDir: string, options: AuthorityOptions): AuthorityStore {
  const url = options.databaseUrl;
  if (url === undefined) return new SqliteAuthorityStore(join(dataDir, DB_FILE));
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new AuthorityError('REQUEST_INVALID', `--db must be a postgres:// URL, got "${url.slice(0, 40)}"`);
  }
  return new PostgresAuthorityStore(url);
}

export interface MintKeyRequest {
  readonly type: Extract<KeyType, 'kms-host'>;
  readonly groups: readonly string[];
  readonly hosts?: number;
  readonly activationsPerHost?: number;
}

export interface MintedKey {
  readonly key: string;
  readonly keyId: string;
  readonly type: KeyType;
  readonly groups: readonly string[];
  readonly hosts: number | null;
  readonly activationsPerHost: number | null;
}

export interface KeyReport {
  /** The key's last five characters: a report never carries the key. */
  readonly key: string;
  readonly keyId: string;
  readonly type: KeyType;
  readonly groups: readonly string[];
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly activationsPerHost: number;
  readonly revokedAt: string | null;
  readonly activations: readonly {
    hardwareId: string;
    activationCount: number;
    firstActivatedAt: string;
    lastActivatedAt: string;
    certificateSerial: string;
    certificateExpiresAt: string;
  }[];
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

/** The publisher's authority: root key, product groups, keys, host certificates. */
export class Authority {
  readonly #root: SigningKeyPair;
  readonly #keyHashSecret: Buffer;
  readonly #store: AuthorityStore;
  readonly #clock: Clock;
  readonly #certValidity: number;
  readonly name: string;

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
    this.#certValidity = options.hostCertificateValidity ?? 365 * DAY;
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
    const root = signingKeyPairFromPem(read(ROOT_KEY_FILE));
    const secret = Buffer.from(read(KEY_HASH_SECRET_FILE).trim(), 'base64');
    let meta: { name?: string };
    try {
      meta = JSON.parse(read(META_FILE)) as { name?: string };
    } catch (err) {
      if (err instanceof AuthorityError) throw err;
      throw new AuthorityError('AUTHORITY_NOT_INITIALISED', `${join(dataDir, META_FILE)} is not valid JSON`);
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
    const group = await this.#store.findGroup(nameOrId);
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
  async productConfig(groupName: string): Promise<ProductConfig> {
    const group = await this.group(groupName);
    return {
      format: 'volact-product-config/1',
      authority: { rootPublicKey: this.#root.publicKeyRaw.toString('base64'), name: this.name },
      group: { id: group.id, name: group.name, kind: group.kind, threshold: group.threshold },
      gvlk: gvlkFor(this.#root.publicKeyRaw, guidToBytes(group.id)).text,
      policy: defaultPolicy(),
    };
  }

  async mintKey(request: MintKeyRequest): Promise<MintedKey> {
    if (request.type !== 'kms-host') {
      throw new AuthorityError(
        'KEY_WRONG_TYPE',
        `minting ${String(request.type)} keys is not supported yet; use kms-host`,
      );
    }
    if (request.groups.length === 0)
      throw new AuthorityError('GROUP_INVALID', 'a KMS host key needs at least one group (--group)');
    const resolved = await Promise.all(request.groups.map((g) => this.group(g)));
    const groups = resolved.filter((g, i) => resolved.findIndex((h) => h.id === g.id) === i);
    const hosts = request.hosts ?? KMS_DEFAULTS.hostLimit;
    const perHost = request.activationsPerHost ?? KMS_DEFAULTS.activationsPerHost;
    for (const [name, v] of [
      ['hosts', hosts],
      ['activations per host', perHost],
    ] as const) {
      if (!Number.isInteger(v) || v < 1 || v > 100_000) {
        throw new AuthorityError('REQUEST_INVALID', `${name} must be a whole number from 1 to 100000, got ${v}`);
      }
    }
    const key = makeKey('kms-host');
    const record: KeyRecord = {
      id: randomGuid(),
      keyHash: keyedHash(this.#keyHashSecret, key.text),
      type: key.type,
      last5: lastFiveOf(key),
      groupIds: groups.map((g) => g.id),
      hostLimit: hosts,
      activationsPerHost: perHost,
      createdAt: this.#clock.now(),
      revokedAt: null,
    };
    await this.#store.addKey(record);
    await this.#store.audit({ at: this.#clock.now(), action: 'key.mint', result: 'OK', keyLast5: record.last5 });
    return {
      key: key.text,
      keyId: record.id,
      type: key.type,
      groups: groups.map((g) => g.name),
      hosts,
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
    const hostLimit = key.hostLimit ?? KMS_DEFAULTS.hostLimit;
    const perHost = key.activationsPerHost ?? KMS_DEFAULTS.activationsPerHost;

    const decision = await this.#store.withHostActivation(key.id, async (tx) => {
      const existing = await tx.findHost(key.id, request.hardwareId);
      let activationCount = 1;
      if (existing) {
        const sameKeyPair = existing.hostPublicKey.equals(request.hostPublicKey);
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
      const serial = randomGuid();
      const expiresAt = now + this.#certValidity;
      const record: HostActivationRecord = {
        keyId: key.id,
        hardwareId: request.hardwareId,
        hostPublicKey: request.hostPublicKey,
        activationCount,
        firstActivatedAt: existing?.firstActivatedAt ?? now,
        lastActivatedAt: now,
        certificateSerial: serial,
        certificateExpiresAt: expiresAt,
      };
      await tx.saveHost(record);
      return { refused: null, serial, expiresAt, hostsUsed: await tx.countHosts(key.id) };
    });
    if (decision.refused) throw await refuse(decision.refused, decision.message, last5);

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
    await this.#store.audit({
      at: now,
      action: 'host.activate',
      result: 'OK',
      keyLast5: last5,
      detail: `host ${decision.hostsUsed} of ${hostLimit}, certificate ${decision.serial}`,
    });
    return {
      certificate,
      expiresAt: decision.expiresAt,
      groups,
      hostKeyId: key.id,
      hostsUsed: decision.hostsUsed,
      hostLimit,
    };
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
    const hosts = await this.#store.listHosts(record.id);
    const groups = await Promise.all(record.groupIds.map((id) => this.group(id)));
    const limit = record.hostLimit ?? KMS_DEFAULTS.hostLimit;
    return {
      key: last5,
      keyId: record.id,
      type: record.type,
      groups: groups.map((g) => g.name),
      limit,
      used: hosts.length,
      remaining: Math.max(0, limit - hosts.length),
      activationsPerHost: record.activationsPerHost ?? KMS_DEFAULTS.activationsPerHost,
      revokedAt: record.revokedAt === null ? null : new Date(record.revokedAt).toISOString(),
      activations: hosts.map((h) => ({
        hardwareId: h.hardwareId,
        activationCount: h.activationCount,
        firstActivatedAt: new Date(h.firstActivatedAt).toISOString(),
        lastActivatedAt: new Date(h.lastActivatedAt).toISOString(),
        certificateSerial: h.certificateSerial,
        certificateExpiresAt: new Date(h.certificateExpiresAt).toISOString(),
      })),
    };
  }

  /** Sets how many hosts a KMS host key may activate (the reference: "raise the limit by calling"). */
  async setKeyLimit(text: string, limit: number): Promise<KeyReport> {
    const { record, last5 } = await this.#key(text);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
      throw new AuthorityError('REQUEST_INVALID', `the limit must be a whole number from 1 to 100000, got ${limit}`);
    }
    if (!(await this.#store.setHostLimit(record.id, limit))) {
      const used = (await this.#store.listHosts(record.id)).length;
      throw new AuthorityError(
        'KEY_LIMIT_BELOW_USED',
        `key ${last5} has activated ${used} hosts; the limit cannot go below that`,
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

  recentAudit(limit = 100) {
    return this.#store.recentAudit(limit);
  }

  close(): Promise<void> {
    return this.#store.close();
  }
}
