import {
  CoreError,
  KMS_DEFAULTS,
  keyRefOf,
  keyedHash,
  lastFiveOf,
  guidToBytes,
  makeKey,
  parseKey,
  proofKeyOf,
  randomGuid,
  type Clock,
  type KeyType,
  type ProductKey,
} from '@volact/core';
import { refusalsOf, type Refuse } from './audit.js';
import { AuthorityError, invalidField, type AuthorityErrorCode } from './errors.js';
import type { ProductGroups } from './groups.js';
import { seal } from './sealing.js';
import type { AuthorityStore, KeyRecord } from './store.js';
import { outboxEvent } from './webhooks/events.js';

/** Who owns a key and who acts on it (the audit row's organisation and actor). */
export interface KeyOwner {
  readonly orgId?: string;
  readonly note?: string | null;
  /** The principal's name; the CLI on the data directory is `cli`. */
  readonly actor?: string;
}

/** What a limit change or a revocation needs of a key, from any of its records. */
export interface KeyRef {
  readonly id: string;
  readonly type: KeyType;
  readonly last5: string;
  readonly orgId?: string | undefined;
  readonly limit: number | null;
}

/** What a key's report is made from. */
type Reported = Pick<KeyRecord, 'id' | 'type' | 'groupIds' | 'revokedAt' | 'limit' | 'used' | 'activationsPerHost'>;

export interface MintKeyRequest {
  readonly type: Extract<KeyType, 'kms-host' | 'mak' | 'retail'>;
  readonly groups: readonly string[];
  /** kms-host keys: how many hosts (default 6). */
  readonly hosts?: number;
  readonly activationsPerHost?: number;
  /** MAK: how many installations it may activate. Retail: 1, the only value accepted (the default). */
  readonly limit?: number;
}

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

/** The highest limit a key may have (hosts or installations). */
const MAX_LIMIT = 10_000_000;

/** How messages name an installation's key: a MAK or a retail key. */
export const keyLabel = (type: KeyType) => (type === 'retail' ? 'retail key' : 'MAK');

/**
 * A key as typed: a mistyped one is refused with the parser's code and message (through
 * `refuse`, which audits it where the request is audited).
 */
export async function readKeyText(
  text: string,
  refuse: (code: AuthorityErrorCode, message: string) => AuthorityError | Promise<AuthorityError>,
): Promise<ProductKey> {
  try {
    return parseKey(text);
  } catch (err) {
    if (err instanceof CoreError && (err.code === 'KEY_MALFORMED' || err.code === 'KEY_CHECKSUM_FAILED')) {
      throw await refuse(err.code, err.message);
    }
    throw err;
  }
}

/** Refuses (and audits) a key of another type than the path takes, naming both: `need` says what it takes. */
export async function requireKeyType(
  type: KeyType,
  last5: string,
  accepted: readonly KeyType[],
  need: string,
  refuse: Refuse,
): Promise<void> {
  if (!accepted.includes(type)) throw await refuse('KEY_WRONG_TYPE', `key ${last5} is a ${type} key; ${need}`, last5);
}

/**
 * The start of an activation that brings its key: the request's refusals (audited as
 * `action`), its time, and the key as typed, of a type the path takes.
 */
export async function keyOfRequest(
  authority: { store: AuthorityStore; clock: Clock },
  path: KeyedPath,
  keyText: string,
): Promise<{ now: number; refuse: Refuse; key: ProductKey; last5: string }> {
  const now = authority.clock.now();
  const refuse = refusalsOf(authority.store, path.action, now);
  const key = await readKeyText(keyText, refuse);
  const last5 = lastFiveOf(key);
  await requireKeyType(key.type, last5, path.accepted, path.need, refuse);
  return { now, refuse, key, last5 };
}

/** An activation path that brings a key: what it is audited as, the key types it takes, and how to say so. */
export interface KeyedPath {
  readonly action: string;
  readonly accepted: readonly KeyType[];
  readonly need: string;
}

/**
 * The keys an authority minted: stored as a keyed hash (never the key), with their limits,
 * what they have used, and the sealed proof key phone activation needs.
 */
export class ProductKeys {
  /** What never changes about a key, so the hot path reads the database once per key. */
  readonly #byHash = new Map<string, KeyRecord>();

  constructor(
    private readonly store: AuthorityStore,
    private readonly groups: ProductGroups,
    private readonly clock: Clock,
    private readonly keyHashSecret: Buffer,
  ) {}

  /** The keyed hash a key is stored and found by. */
  hashOf(key: ProductKey): string {
    return keyedHash(this.keyHashSecret, key.text);
  }

  async mint(request: MintKeyRequest, owner: KeyOwner = {}): Promise<MintedKey> {
    const type = request.type as string;
    if (type !== 'kms-host' && type !== 'mak' && type !== 'retail') {
      throw invalidField(
        'type',
        `minting ${type} keys is not supported; use kms-host, mak or retail`,
        'KEY_WRONG_TYPE',
      );
    }
    if (request.groups.length === 0) {
      throw invalidField('groups', `a ${type} key needs a product group`, 'GROUP_INVALID');
    }
    const resolved = await Promise.all(request.groups.map((g) => this.groups.find(g)));
    const groups = resolved.filter((g, i) => resolved.findIndex((h) => h.id === g.id) === i);
    if (type !== 'kms-host' && groups.length !== 1) {
      const what = type === 'mak' ? 'a MAK' : 'a retail key';
      throw invalidField('groups', `${what} activates one product group; got ${groups.length}`, 'GROUP_INVALID');
    }
    // Reference (plan-for-volume-activation): "each purchased copy comes with one unique product
    // key": a retail key activates one installation, online or by phone; the limit is not a choice.
    if (type === 'retail' && request.limit !== undefined && request.limit !== 1) {
      throw invalidField(
        'limit',
        `a retail key activates exactly one installation (its limit is 1), got a limit of ${request.limit}; mint a MAK for more`,
      );
    }
    const installationKey = type !== 'kms-host';
    const limit = type === 'retail' ? 1 : type === 'mak' ? request.limit : (request.hosts ?? KMS_DEFAULTS.hostLimit);
    const perHost = installationKey ? null : (request.activationsPerHost ?? KMS_DEFAULTS.activationsPerHost);
    if (limit === undefined) throw invalidField('limit', 'a MAK needs its number of activations (a limit)');
    for (const [field, name, v] of [
      [installationKey ? 'limit' : 'hosts', installationKey ? 'limit' : 'hosts', limit],
      ['activationsPerHost', 'activations per host', perHost ?? 1],
    ] as const) {
      if (!Number.isInteger(v) || v < 1 || v > MAX_LIMIT) {
        throw invalidField(field, `${name} must be a whole number from 1 to ${MAX_LIMIT}, got ${v}`);
      }
    }
    // A MAK or retail key names its one group, so a client refuses it for another group at install.
    const key = type === 'kms-host' ? makeKey(type) : makeKey(type, undefined, guidToBytes(groups[0]!.id));
    const record: KeyRecord = {
      id: randomGuid(),
      keyHash: this.hashOf(key),
      type: key.type,
      last5: lastFiveOf(key),
      groupIds: groups.map((g) => g.id),
      limit,
      activationsPerHost: perHost,
      createdAt: this.clock.now(),
      revokedAt: null,
      keyRef: keyRefOf(key).toString('hex'),
      proofKeySealed: seal(this.keyHashSecret, proofKeyOf(key)),
      used: 0,
      orgId: owner.orgId ?? 'org_default',
      note: owner.note ?? null,
      // Sealed like the proof key: a database copy alone does not give the keys (docs/portal.md).
      keySealed: seal(this.keyHashSecret, Buffer.from(key.text, 'utf8')),
    };
    await this.store.addKey(record);
    await this.store.audit({
      at: this.clock.now(),
      action: 'key.mint',
      result: 'OK',
      keyLast5: record.last5,
      orgId: record.orgId,
      keyId: record.id,
      actor: owner.actor ?? null,
    });
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

  /** A key by its keyed hash; cached (its id, type, groups and reference never change). */
  async findCached(key: ProductKey): Promise<KeyRecord | undefined> {
    // A stale limit or revocation does not matter: the batch transaction reads both afresh.
    const keyHash = this.hashOf(key);
    const cached = this.#byHash.get(keyHash);
    if (cached) return cached;
    const record = await this.store.findKeyByHash(keyHash);
    if (record) {
      if (this.#byHash.size >= 100_000) this.#byHash.clear();
      this.#byHash.set(keyHash, record);
    }
    return record;
  }

  /** A minted key by its text, read afresh: parse errors and unknown keys become AuthorityErrors. */
  async #minted(text: string): Promise<{ record: KeyRecord; last5: string }> {
    const parsed = await readKeyText(text, (code, message) => new AuthorityError(code, message));
    const last5 = lastFiveOf(parsed);
    const record = await this.store.findKeyByHash(this.hashOf(parsed));
    if (!record) throw new AuthorityError('KEY_NOT_FOUND', `key ${last5} was not minted by this authority`);
    return { record, last5 };
  }

  /** What a key may do and has done: limit, used, remaining, and each activation. */
  async show(text: string): Promise<KeyReport> {
    const { record, last5 } = await this.#minted(text);
    return this.report(record, last5);
  }

  /** The report of a key found by any of its records. */
  async report(record: Reported, last5: string): Promise<KeyReport> {
    const groups = await this.groups.names(record.groupIds);
    const iso = (ms: number) => new Date(ms).toISOString();
    const base = {
      key: last5,
      keyId: record.id,
      type: record.type,
      group: groups[0] ?? '',
      groups,
      revokedAt: record.revokedAt === null ? null : iso(record.revokedAt),
    };
    if (record.type === 'mak' || record.type === 'retail') {
      const limit = record.limit ?? 0;
      const installations = await this.store.listInstallations(record.id);
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
    const hosts = await this.store.listHosts(record.id);
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
  async setLimit(text: string, limit: number, actor: string | null = null): Promise<KeyReport> {
    const { record, last5 } = await this.#minted(text);
    await this.changeLimit({ ...record, last5 }, limit, actor);
    return this.show(text);
  }

  /**
   * Sets the limit with its audit row, and the `key.limit_raised` event in the same transaction
   * as the change (none when refused: KEY_LIMIT_BELOW_USED).
   */
  async changeLimit(record: KeyRef, limit: number, actor: string | null): Promise<void> {
    const last5 = record.last5;
    if (record.type === 'retail') {
      throw new AuthorityError(
        'KEY_WRONG_TYPE',
        `key ${last5} is a retail key: it activates one installation and its limit stays 1; mint a MAK for more`,
      );
    }
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw invalidField('limit', `the limit must be a whole number from 1 to ${MAX_LIMIT}, got ${limit}`);
    }
    const orgId = record.orgId ?? 'org_default';
    const at = this.clock.now();
    const event = outboxEvent(
      'key.limit_raised',
      at,
      { orgId, keyId: record.id },
      // The same fields as an approved request's (requestId null); `limit`/`previousLimit` kept for receivers of 14.
      {
        keyLast5: last5.slice(-5),
        limitBefore: record.limit,
        limitAfter: limit,
        requestId: null,
        limit,
        previousLimit: record.limit,
      },
    );
    if (!(await this.store.setLimit(record.id, limit, [event]))) {
      const used =
        record.type === 'mak'
          ? ((await this.store.organisations.keyById(record.id))?.used ?? 0)
          : (await this.store.listHosts(record.id)).length;
      throw new AuthorityError(
        'KEY_LIMIT_BELOW_USED',
        `key ${last5} has made ${used} activations; the limit cannot go below that`,
      );
    }
    await this.store.audit({
      at,
      action: 'key.limit',
      result: 'OK',
      keyLast5: last5,
      detail: `limit ${limit}`,
      orgId,
      keyId: record.id,
      actor,
    });
  }

  /** Refuses the key's later activations; those already made stay listed (and their certificates valid). */
  async revoke(text: string, actor: string | null = null): Promise<KeyReport> {
    const { record, last5 } = await this.#minted(text);
    await this.revokeRef({ ...record, last5 }, null, actor);
    return this.show(text);
  }

  /** Revokes with its audit row, and `key.revoked` in the same transaction (once: not again when revoked before). */
  async revokeRef(record: KeyRef, reason: string | null, actor: string | null): Promise<void> {
    const at = this.clock.now();
    const orgId = record.orgId ?? 'org_default';
    const event = outboxEvent(
      'key.revoked',
      at,
      { orgId, keyId: record.id },
      { keyLast5: record.last5.slice(-5), reason },
    );
    await this.store.revokeKey(record.id, at, [event]);
    await this.store.audit({
      at,
      action: 'key.revoke',
      result: 'OK',
      keyLast5: record.last5,
      orgId,
      keyId: record.id,
      actor,
      ...(reason ? { detail: reason.slice(0, 300) } : {}),
    });
  }
}
