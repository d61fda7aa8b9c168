import { randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { relative, resolve, isAbsolute } from 'node:path';
import {
  CoreError,
  INTERVAL_BOUNDS,
  authorityEndpoint,
  DOMAIN_NAME_RE,
  KMS_DEFAULTS as DEFAULTS,
  VolactError,
  activationObjectSignatureValid,
  normaliseDomain,
  parseActivationObject,
  parseActivationToken,
  parseOemMarker,
  makeInstallationId,
  parseConfirmationId,
  parseKey,
  verifyInstallationConfirmation,
  type InstallationId,
  KMS_DEFAULTS,
  MAX_CRL_SERIALS,
  MINUTE,
  encodeActivationRequest,
  guidToBytes,
  lastFiveOf,
  licenceStateCode,
  newClientMachineId,
  parseKeyOfType,
  parseProductConfig,
  publicKeyFromRaw,
  systemClock,
  type Clock,
  type LicenceState,
  type ProductConfig,
  DAY,
  activationObjectValidity,
  readHardwareFingerprint,
  tokenCaFingerprint,
  type TokenCrl,
} from '@volact/core';
import { ClientError, type ClientErrorCode } from './errors.js';
import { exchangeWithKmsHost } from './kms-exchange.js';
import { formatKmsAddress, parseKmsAddress } from './kms-address.js';
import {
  ACT_TYPES,
  LicenceStore,
  productFingerprint,
  rootKeyFingerprint,
  type ActType,
  type AttemptRecord,
  type LicenceRecord,
  type Salvaged,
  type StoredRecord,
} from './licence-store.js';
import { readCrl, readOemMarker, readToken, type OfflineContext } from './offline-activation.js';
import { deriveState } from './licence-state.js';
import { DEFAULT_KMS_SERVICE, discoverKmsHosts, ownDnsDomain, type DiscoveryResult } from './discovery.js';
import { readEntries } from '@volact/directory';
import { runDoctor, type DoctorReport } from './doctor.js';
import { verifyKmsResponse } from './verify-response.js';

export interface LicenceStatus {
  readonly state: LicenceState;
  /**
   * How the licence was granted: a KMS host's signed answer, a MAK or a retail key confirmed by
   * the authority, an activation object, an OEM marker made at the factory, or an activation token of the
   * organisation's CA.
   */
  readonly method: 'kms' | 'mak' | 'retail' | 'directory' | 'oem' | 'token' | null;
  /** Which methods an activation attempt may use (the reference's /act-type). */
  readonly actType: ActType;
  /** With an OEM marker installed: who made the machine, its label, and whether the marker holds here. */
  readonly oem: { manufacturer: string | null; machine: string | null; code: string | null } | null;
  /** With a token installed: its serial, CA organisation and validity; `code` when it does not grant a licence. */
  readonly token: {
    serial: string | null;
    organisation: string | null;
    notAfter: string | null;
    code: string | null;
  } | null;
  /** The installed CRL: when it was issued, its next update (`stale` past it: still applied), how many serials. */
  readonly crl: { issuedAt: string; nextUpdate: string; stale: boolean; revoked: number } | null;
  /** How the host of the last attempt was found: set by hand, cached from DNS, DNS; null when none. */
  readonly hostSource: 'manual' | 'cache' | 'dns' | null;
  /** With method "directory": the activation object's name and domain. */
  readonly directoryObject: { name: string; domain: string } | null;
  readonly discovery: { domains: string[]; dnsServer: string | null; caching: boolean; cachedHost: string | null };
  readonly directory: { url: string; domain: string; base: string } | null;
  /** When the licence (or the current grace period) ends, ISO 8601; null when it does not. */
  readonly expiresAt: string | null;
  readonly host: string | null;
  readonly count: number | null;
  readonly threshold: number;
  readonly group: string;
  readonly clientMachineId: string;
  /**
   * The hardware id in force (read at this start, never from the store) and whether it differs
   * from the one the installation was made with (copied to other hardware: MAK, retail, OEM and
   * token licences no longer apply).
   */
  readonly hardware: { id: string; recorded: string; changed: boolean };
  /** The directory domain this machine is a member of, read at this start (never from the store); null: none. */
  readonly memberDomain: string | null;
  readonly installedKey: string | null;
  readonly installedKeyType: 'gvlk' | 'mak' | 'retail' | null;
  /** With a MAK or retail key installed: the installation ID to read out for phone activation. */
  readonly installationId: string | null;
  readonly lastAttempt: (Omit<AttemptRecord, 'at'> & { at: string }) | null;
  readonly nextAttemptAt: string;
}

export interface ActivationOutcome {
  readonly ok: boolean;
  readonly code: string | null;
  readonly message: string;
  readonly status: LicenceStatus;
}

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

/**
 * What a caller told this process about a state directory (Licence.init, joinDomain): used by
 * later opens in the same process that pass nothing (an in-process agent). Never read from the
 * store: a new process passes them again (SDK) or reads them from the machine (CLI, agent).
 */
const givenInProcess = new Map<
  string,
  { product?: ProductConfig; hardwareId?: string; memberDomain?: string | null }
>();
/**
 * Product configurations callers gave this process (Licence.init, Licence.open with `product`),
 * by fingerprint: a store copied in this process (a cloned image) that has no product file opens
 * with the product whose fingerprint it records. Never a product read from a store.
 */
const productsInProcess = new Map<string, ProductConfig>();

const remember = (
  stateDir: string,
  given: { product?: ProductConfig; hardwareId?: string; memberDomain?: string | null },
  replace = false,
) => {
  const key = resolve(stateDir);
  // A new installation (init, reset) forgets what was given for the one it replaces.
  givenInProcess.set(key, { ...(replace ? {} : givenInProcess.get(key)), ...given });
};

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

export interface DirectoryMembership {
  /** ldap:// or ldaps:// URL of the directory. */
  readonly url: string;
  readonly domain: string;
  /** Base DN under which the activation objects' container is, e.g. dc=corp,dc=test. */
  readonly base: string;
  readonly container?: string;
  readonly bindDn?: string;
  readonly password?: string;
}

type Listener = (status: LicenceStatus) => void;

/** The licence store keeps at most this many discovery domains (the reference's suffix list is short too). */
const MAX_DISCOVERY_DOMAINS = 16;
const DNS_PORT = 53;
/** As the licence store keeps it. */
const MAX_OBJECT_TEXT = 8192;

/** At most this many token CAs' CRLs and revoked serials are kept (the root certifies few per group). */
const MAX_TOKEN_CAS = 64;
/** Serials seen revoked, per CA (CRLs drop expired serials: the record keeps them). */
const MAX_SEEN_REVOKED = 4 * MAX_CRL_SERIALS;

/** The installed CRLs as read and verified, by CA fingerprint; the first that does not verify. */
interface CrlsRead {
  crls: StoredRecord['crls'];
  byCa: Map<string, TokenCrl>;
  failure: { ok: false; code: 'CRL_INVALID' | 'TOKEN_CA_UNTRUSTED'; message: string } | null;
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
function refuseProductInsideStateDir(stateDir: string, productPath: string): void {
  const rel = relative(realPath(stateDir), realPath(productPath));
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
    throw new ClientError(
      'PRODUCT_CONFIG_INVALID',
      `the product file ${productPath} is inside the state directory ${stateDir}: give the product's installed location, outside it (a file beside the licence store could be swapped with it), e.g. \`volact client set-product --state-dir ${stateDir} /opt/PRODUCT/product.json\``,
    );
  }
}

const clampInterval = (ms: number, b: { min: number; max: number }) => Math.min(b.max, Math.max(b.min, ms));

/**
 * An installation's licence: what an app embeds. Open it, read `status()`, subscribe with
 * `onChange`, call `activate()` or let `startSchedule()` renew in the background.
 */
export class Licence {
  readonly #store: LicenceStore;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #rootKey: KeyObject;
  readonly #rootKeyRaw: Buffer;
  #installationIdCache: { key: string; iid: InstallationId } | undefined;
  readonly #listeners = new Set<Listener>();
  #record: LicenceRecord;
  /** Read at this start, never from the store. */
  readonly #hardwareId: string;
  #memberDomain: string | null;
  #verifiedEvidence: { evidence: string; verified: { hostTime: number; count: number } | null } | undefined;
  /** The last OEM marker and token checks, by what they checked (the signatures are verified once). */
  #oemCheck: { key: string; result: ReturnType<typeof readOemMarker> } | undefined;
  #tokenCheck:
    | {
        key: string;
        crls: StoredRecord['crls'];
        revoked: StoredRecord['revoked'];
        result: ReturnType<typeof readToken> | ReturnType<typeof readCrl>;
      }
    | undefined;
  /** The installed CRLs as last read and verified, by CA fingerprint (once per `crls` object). */
  #crlsRead: CrlsRead | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scheduleGeneration = 0;
  readonly #onScheduleError: (err: unknown) => void;
  #attempting: Promise<ActivationOutcome> | undefined;
  readonly #random: (() => number) | undefined;

  private constructor(
    store: LicenceStore,
    record: LicenceRecord,
    options: OpenOptions,
    machine: { hardwareId: string; memberDomain: string | null },
  ) {
    this.#store = store;
    this.#record = record;
    this.#hardwareId = machine.hardwareId;
    this.#memberDomain = machine.memberDomain;
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#onScheduleError = options.onScheduleError ?? (() => undefined);
    this.#random = options.random;
    this.#rootKeyRaw = Buffer.from(record.product.authority.rootPublicKey, 'base64');
    this.#rootKey = publicKeyFromRaw(this.#rootKeyRaw);
  }

  /** Creates an installation: pins the product's root key, installs the group's GVLK, makes a CMID. */
  static init(options: InitOptions): Licence {
    const store = new LicenceStore(options.stateDir);
    if (store.exists()) {
      throw new ClientError(
        'CLIENT_EXISTS',
        `${options.stateDir} already holds an installation; use another --state-dir (a damaged one is replaced with \`volact client reset\`)`,
      );
    }
    return Licence.#create(store, options, {});
  }

  /**
   * Replaces the store of a state directory (a damaged one, one of an old format) with a new
   * installation, keeping what still reads of the old one: the client ID (a KMS host does not
   * count a second machine) and the install date (a reset does not restart the initial grace).
   * The activation is not kept: activate again.
   */
  static reset(options: InitOptions): Licence {
    const store = new LicenceStore(options.stateDir);
    if (store.exists()) {
      let healthy = false;
      try {
        store.load();
        healthy = true;
      } catch {
        // damaged or of an old format: what reset is for
      }
      if (healthy) {
        throw new ClientError(
          'CLIENT_EXISTS',
          `${store.path} is not damaged: reset only replaces a store that no longer reads (it would throw away this installation's activation). To accept a product update: \`volact client set-product --state-dir ${options.stateDir} FILE\`; for a product with another root key: a new installation, \`volact client init\` in another --state-dir`,
        );
      }
    }
    const kept = store.exists() ? store.salvage() : {};
    return Licence.#create(store, options, kept);
  }

  /**
   * What a reset keeps of the old store's revocations: each CA's newest CRL that verifies under
   * the new product, and every serial seen revoked (they only ever refuse a token).
   */
  static #keptRevocations(
    product: ProductConfig,
    kept: Salvaged,
  ): { crls: Record<string, string>; revoked: Record<string, string[]> } {
    const ctx = {
      rootPublicKey: publicKeyFromRaw(Buffer.from(product.authority.rootPublicKey, 'base64')),
      groupId: product.group.id,
      groupName: product.group.name,
      hardwareId: '',
    };
    const newest = new Map<string, { text: string; crl: TokenCrl }>();
    for (const text of kept.crls ?? []) {
      const read = readCrl(text, ctx);
      if (!read.ok) continue;
      const fp = tokenCaFingerprint(read.crl.caCertificate);
      const had = newest.get(fp);
      if (!had || Date.parse(had.crl.issuedAt) < Date.parse(read.crl.issuedAt)) newest.set(fp, { text, crl: read.crl });
    }
    const revoked: Record<string, string[]> = {};
    for (const [fp, serials] of Object.entries(kept.revoked ?? {})) revoked[fp] = [...serials];
    const crls: Record<string, string> = {};
    for (const [fp, { text, crl }] of [...newest].slice(0, MAX_TOKEN_CAS)) {
      crls[fp] = text;
      revoked[fp] = [...new Set([...(revoked[fp] ?? []), ...crl.revoked.map((x) => x.toLowerCase())])].sort();
    }
    const cas = Object.keys(revoked).slice(0, MAX_TOKEN_CAS);
    return {
      crls,
      revoked: Object.fromEntries(cas.map((fp) => [fp, revoked[fp]!.slice(0, MAX_SEEN_REVOKED)])),
    };
  }

  static #create(store: LicenceStore, options: InitOptions, kept: Salvaged): Licence {
    const product = Licence.#parseProduct(options.product);
    productsInProcess.set(productFingerprint(product), product);
    const productPath = options.productPath === undefined ? null : resolve(options.productPath);
    if (productPath !== null) refuseProductInsideStateDir(options.stateDir, productPath);
    const { crls, revoked } = Licence.#keptRevocations(product, kept);
    const now = (options.clock ?? systemClock).now();
    const record: LicenceRecord = {
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
      intervals: { activationMs: KMS_DEFAULTS.activationInterval, renewalMs: KMS_DEFAULTS.renewalInterval },
      discovery: { domains: [], dnsServer: null, caching: true, cached: null },
      directory: null,
      lastAttempt: null,
      nextAttemptAt: now,
      nonGenuineSince: null,
      lastReportedState: null,
      crls,
      revoked,
      actType: 'any',
    };
    store.save(record);
    const memberDomain = options.memberDomain === undefined ? undefined : Licence.#domainOrNull(options.memberDomain);
    remember(
      options.stateDir,
      {
        // With an installed location, every open reads the file there (and notices a swap).
        ...(productPath === null ? { product } : {}),
        hardwareId: options.hardwareId,
        ...(memberDomain === undefined ? {} : { memberDomain }),
      },
      true,
    );
    return new Licence(
      store,
      record,
      { stateDir: options.stateDir, ...(options.clock ? { clock: options.clock } : {}) },
      { hardwareId: options.hardwareId, memberDomain: memberDomain ?? ownDnsDomain() },
    );
  }

  static #parseProduct(value: unknown): ProductConfig {
    try {
      return parseProductConfig(value);
    } catch (err) {
      throw new ClientError('PRODUCT_CONFIG_INVALID', (err as Error).message);
    }
  }

  static #domainOrNull(domain: string | null): string | null {
    if (domain === null || domain.trim() === '') return null;
    const d = normaliseDomain(domain);
    if (!DOMAIN_NAME_RE.test(d)) {
      throw new ClientError('DOMAIN_INVALID', `"${domain.slice(0, 80)}" is not a domain name (e.g. corp.test)`);
    }
    return d;
  }

  /**
   * Opens an installation. The product, the hardware id and the directory membership come from
   * outside the store at every open (OpenOptions): an edit of licence.json alone never yields a
   * licence.
   */
  static open(options: OpenOptions): Licence {
    const store = new LicenceStore(options.stateDir);
    const stored = store.load();
    const given = givenInProcess.get(resolve(options.stateDir)) ?? {};
    const product =
      options.product !== undefined
        ? Licence.#parseProduct(options.product)
        : (given.product ??
          (stored.productRef.path === null ? productsInProcess.get(stored.productRef.sha256) : undefined) ??
          Licence.#installedProduct(options.stateDir, stored));
    if (product.group.id !== stored.productRef.groupId) {
      throw new ClientError(
        'PRODUCT_CONFIG_INVALID',
        `${options.stateDir} holds an installation of group ${stored.productRef.groupName}, not ${product.group.name}`,
      );
    }
    const memberDomain =
      options.memberDomain !== undefined
        ? Licence.#domainOrNull(options.memberDomain)
        : given.memberDomain !== undefined
          ? given.memberDomain
          : ownDnsDomain();
    const hardwareId = options.hardwareId ?? given.hardwareId ?? readHardwareFingerprint();
    return new Licence(store, { ...stored, product }, options, { hardwareId, memberDomain });
  }

  /** The product file at its installed location, as long as it is the one the store was made with. */
  static #installedProduct(stateDir: string, stored: StoredRecord): ProductConfig {
    const path = stored.productRef.path;
    if (path === null) {
      throw new ClientError(
        'PRODUCT_CONFIG_INVALID',
        `${stateDir} was made by an app that passes its product configuration at every open: pass it (the store keeps no copy)`,
      );
    }
    // The store is writable by whoever edits it: the file it names is read only from outside it.
    refuseProductInsideStateDir(stateDir, path);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new ClientError(
        'PRODUCT_CONFIG_INVALID',
        `the product file ${path} (given at init) cannot be read: ${(err as Error).message.slice(0, 160)}; restore it, or \`volact client set-product --state-dir ${stateDir} FILE\``,
      );
    }
    const product = Licence.#parseProduct(raw);
    const fingerprint = productFingerprint(product);
    if (fingerprint !== stored.productRef.sha256) {
      throw new ClientError(
        'PRODUCT_FILE_CHANGED',
        `the product file ${path} is not the one this installation was made with (fingerprint …${fingerprint.slice(-5)}, expected …${stored.productRef.sha256.slice(-5)}): it was swapped or updated; restore it, or accept the new one with \`volact client set-product --state-dir ${stateDir} ${path}\``,
      );
    }
    return product;
  }

  /**
   * Accepts a product file (an update shipped by the publisher) as this installation's: same
   * group; its location and fingerprint are recorded. The activation is kept and re-checked
   * under the new configuration.
   */
  static setProduct(options: { stateDir: string; product: unknown; productPath: string; clock?: Clock }): Licence {
    const store = new LicenceStore(options.stateDir);
    const stored = store.load();
    const product = Licence.#parseProduct(options.product);
    if (product.group.id !== stored.productRef.groupId) {
      throw new ClientError(
        'PRODUCT_CONFIG_INVALID',
        `${options.stateDir} holds an installation of group ${stored.productRef.groupName}, not ${product.group.name}: a new installation (\`volact client init\` in another --state-dir)`,
      );
    }
    const path = resolve(options.productPath);
    refuseProductInsideStateDir(options.stateDir, path);
    // The root the installation was made with (stores from before it was recorded: the root of the
    // product file they name, which must still be the one they were made with).
    const recordedRoot =
      stored.productRef.rootKey ??
      rootKeyFingerprint(
        (stored.productRef.path === null ? productsInProcess.get(stored.productRef.sha256) : undefined) ??
          Licence.#installedProduct(options.stateDir, stored),
      );
    const root = rootKeyFingerprint(product);
    if (root !== recordedRoot) {
      throw new ClientError(
        'PRODUCT_CONFIG_INVALID',
        `${path} pins another root key (…${root.slice(-8)}) than the product this installation was made with (…${recordedRoot.slice(-8)}): set-product accepts updates under the same root only; a product with a new root is installed anew (\`volact client init\` in another --state-dir)`,
      );
    }
    store.save({
      ...stored,
      productRef: {
        path,
        sha256: productFingerprint(product),
        groupId: product.group.id,
        groupName: product.group.name,
        rootKey: recordedRoot,
      },
    });
    return Licence.open({ stateDir: options.stateDir, product, ...(options.clock ? { clock: options.clock } : {}) });
  }

  get clientMachineId(): string {
    return this.#record.clientMachineId;
  }

  /** This machine's hardware id, read at this start: what an OEM marker or a token is issued for. */
  get hardwareId(): string {
    return this.#hardwareId;
  }

  /** The authority the product config names (MAK and retail activation), or null. */
  get productAuthorityUrl(): string | null {
    return this.#record.product.authority.url ?? null;
  }

  /**
   * The stored activation: `hostTime` when its evidence grants a licence, null when there is
   * none or it does not reach the threshold (a higher threshold shipped by an app update: not
   * activated, not tampered); `valid: false` when the evidence does not verify (altered).
   * The signatures are checked once per evidence; the time rule at every read.
   */
  #evidence(): { hostTime: number | null; valid: boolean; permanent: boolean } {
    const a = this.#record.activation;
    if (!a) return { hostTime: null, valid: true, permanent: false };
    if (a.method === 'mak' || a.method === 'retail') return this.#makEvidence(a);
    if (a.method === 'directory') return this.#directoryEvidence(a);
    if (a.method === 'oem') return this.#oemEvidence(a.marker);
    if (a.method === 'token') return this.#tokenEvidence(a.token);
    if (this.#verifiedEvidence?.evidence !== a.evidence) {
      let verified: { hostTime: number; count: number } | null = null;
      try {
        const { response } = verifyKmsResponse(Buffer.from(a.evidence, 'base64'), {
          rootPublicKey: this.#rootKey,
          groupId: guidToBytes(this.#record.product.group.id),
          clientId: guidToBytes(this.#record.clientMachineId),
          mode: { kind: 'stored' },
          now: Number.MAX_SAFE_INTEGER, // the "not from the future" rule is applied below, at every read
          maxClockSkew: this.#record.product.policy.maxClockSkewMinutes * MINUTE,
        });
        verified = { hostTime: response.hostTime, count: response.count };
      } catch {
        verified = null;
      }
      this.#verifiedEvidence = { evidence: a.evidence, verified };
    }
    const v = this.#verifiedEvidence.verified;
    const maxSkew = this.#record.product.policy.maxClockSkewMinutes * MINUTE;
    if (!v || v.hostTime > this.#clock.now() + maxSkew) return { hostTime: null, valid: false, permanent: false };
    if (v.count < this.#record.product.group.threshold) return { hostTime: null, valid: true, permanent: false };
    return { hostTime: v.hostTime, valid: true, permanent: false };
  }

  /**
   * A MAK activation holds while its confirmation verifies for the installation ID this
   * machine has now. Another key or a significant hardware change gives another IID: the
   * activation then no longer applies (activate again), which is not tampering.
   */
  #makEvidence(a: { installationId: string; confirmationId: string }): {
    hostTime: null;
    valid: boolean;
    permanent: boolean;
  } {
    const current = this.#currentInstallationId();
    if (!current || current.text !== a.installationId) return { hostTime: null, valid: true, permanent: false };
    const cacheKey = `${a.installationId}/${a.confirmationId}`;
    if (this.#verifiedEvidence?.evidence !== cacheKey) {
      let ok = false;
      try {
        ok = verifyInstallationConfirmation(
          current,
          this.#record.product.group.id,
          parseConfirmationId(a.confirmationId),
          this.#rootKeyRaw,
        );
      } catch {
        ok = false;
      }
      this.#verifiedEvidence = { evidence: cacheKey, verified: ok ? { hostTime: 0, count: 0 } : null };
    }
    const ok = this.#verifiedEvidence.verified !== null;
    return { hostTime: null, valid: ok, permanent: ok };
  }

  #offlineContext(): OfflineContext {
    const r = this.#record;
    return {
      rootPublicKey: this.#rootKey,
      groupId: r.product.group.id,
      groupName: r.product.group.name,
      hardwareId: this.#hardwareId,
    };
  }

  /** The marker's checks (oem.ts), once per marker and hardware id. */
  #checkOem(marker: string): ReturnType<typeof readOemMarker> {
    const key = `${this.#hardwareId}\0${marker}`;
    if (this.#oemCheck?.key !== key) this.#oemCheck = { key, result: readOemMarker(marker, this.#offlineContext()) };
    return this.#oemCheck.result;
  }

  /**
   * The installed CRLs, each verified (root, group, its CA's signature) and filed under its own
   * CA's fingerprint; the first that is not is reported (an edited store). Once per `crls`.
   */
  #readCrls(): CrlsRead {
    const crls = this.#record.crls;
    if (this.#crlsRead?.crls !== crls) {
      const byCa = new Map<string, TokenCrl>();
      let failure: CrlsRead['failure'] = null;
      for (const [fp, text] of Object.entries(crls)) {
        const read = readCrl(text, this.#offlineContext());
        if (!read.ok) {
          failure ??= read;
        } else if (tokenCaFingerprint(read.crl.caCertificate) !== fp) {
          failure ??= {
            ok: false,
            code: 'CRL_INVALID',
            message: `the CRL of ${read.crl.caCertificate.organisation} is filed under another CA's fingerprint (…${fp.slice(-8)}): an edited store`,
          };
        } else {
          byCa.set(fp, read.crl);
        }
      }
      this.#crlsRead = { crls, byCa, failure };
    }
    return this.#crlsRead;
  }

  /** The fingerprint of a token's CA, or null when it does not parse (the signature checks report it). */
  static #tokenCa(token: string): string | null {
    try {
      return tokenCaFingerprint(parseActivationToken(token).caCertificate);
    } catch {
      return null;
    }
  }

  /**
   * The token's checks without the time rule (activation-token.ts) against its own CA's installed
   * CRL and the serials seen revoked by that CA (kept whatever CRL is installed later), once per
   * token, CRLs, revocations and hardware id. An installed CRL that does not verify is an edited store.
   */
  #checkToken(token: string): ReturnType<typeof readToken> | ReturnType<typeof readCrl> {
    const { crls, revoked } = this.#record;
    const key = `${this.#hardwareId}\0${token}`;
    const cached = this.#tokenCheck;
    if (cached?.key !== key || cached.crls !== crls || cached.revoked !== revoked) {
      const read = this.#readCrls();
      let result: ReturnType<typeof readToken> | ReturnType<typeof readCrl>;
      if (read.failure) {
        result = read.failure;
      } else {
        const ca = Licence.#tokenCa(token);
        result = readToken(token, ca === null ? null : (read.byCa.get(ca) ?? null), this.#offlineContext());
        // Seen revoked once: revoked for good, whichever CRL (or none) is installed now.
        if ((result.ok || result.code === 'TOKEN_CRL_REQUIRED') && ca !== null) {
          const serial = parseActivationToken(token).serial.toLowerCase();
          if (revoked[ca]?.includes(serial)) {
            result = {
              ok: false,
              code: 'TOKEN_REVOKED',
              message: `token ${serial} was revoked by its CA (seen on a CRL installed here; a later or another CRL does not un-revoke it)`,
            };
          }
        }
      }
      this.#tokenCheck = { key, crls, revoked, result };
    }
    return this.#tokenCheck!.result;
  }

  /**
   * An OEM licence is permanent while its marker verifies for this machine's hardware (the
   * reference: valid "as long as the customer uses the OEM-provided image"). A marker for other
   * hardware no longer applies, which is not tampering; one that does not verify is.
   */
  #oemEvidence(marker: string): { hostTime: null; valid: boolean; permanent: boolean } {
    const check = this.#checkOem(marker);
    if (check.ok) return { hostTime: null, valid: true, permanent: true };
    return { hostTime: null, valid: check.code === 'OEM_HARDWARE_MISMATCH', permanent: false };
  }

  /**
   * A token licenses until its notAfter (or its CA certificate's, if earlier); then, like a
   * lapsed KMS activation, out-of-tolerance grace and notification: the IT pro carries in a new
   * token. A revoked token (on the installed CRL) or another machine's no longer applies at
   * once, which is not tampering; an edited token or CRL is.
   */
  #tokenEvidence(token: string): { hostTime: number | null; valid: boolean; permanent: boolean } {
    const check = this.#checkToken(token);
    if (!check.ok) {
      const applies = [
        'TOKEN_REVOKED',
        'TOKEN_HARDWARE_MISMATCH',
        'TOKEN_GROUP_MISMATCH',
        'TOKEN_CRL_REQUIRED',
      ].includes(check.code);
      return { hostTime: null, valid: applies, permanent: false };
    }
    if (!('validUntil' in check)) return { hostTime: null, valid: false, permanent: false };
    const p = this.#record.product.policy;
    if (this.#clock.now() + p.maxClockSkewMinutes * MINUTE < check.validFrom) {
      return { hostTime: null, valid: true, permanent: false };
    }
    if (this.#staleRequiredCrl(token, this.#clock.now())) return { hostTime: null, valid: true, permanent: false };
    // deriveState counts the validity from an activation time: the one that ends at the token's end.
    return { hostTime: check.validUntil - p.activationValidityDays * DAY, valid: true, permanent: false };
  }

  /**
   * A directory activation holds while this machine is a member of the object's domain (the
   * membership read at this start, outside the store, and the store's join) and the object
   * verifies (an edited one is tampering). The licence runs from the object's signed issue date,
   * for the activation validity, never past the object's signed end; the stored check time is
   * not signed and can only end it earlier.
   */
  #directoryEvidence(a: { object: string; checkedAt: number }): {
    hostTime: number | null;
    valid: boolean;
    permanent: boolean;
  } {
    const check = this.#checkActivationObject(a.object, this.#membershipDomain());
    // A check time in the future is an edited store (or a clock that was wrong).
    const maxSkew = this.#record.product.policy.maxClockSkewMinutes * MINUTE;
    if (a.checkedAt > this.#clock.now() + maxSkew) return { hostTime: null, valid: false, permanent: false };
    const validity = this.#record.product.policy.activationValidityDays * DAY;
    // deriveState ends the licence at hostTime + validity: the earliest of the three ends.
    const start = (v: { issuedAt: number; expiresAt: number }) =>
      Math.min(v.issuedAt, v.expiresAt - validity, a.checkedAt);
    if (check.ok) return { hostTime: start(check), valid: true, permanent: false };
    if (check.code === 'DIRECTORY_OBJECT_EXPIRED') {
      // Past its end the licence runs down as a lapsed one does (out-of-tolerance, then
      // notification); an object not yet valid grants nothing.
      const v = activationObjectValidity(parseActivationObject(a.object));
      return { hostTime: this.#clock.now() >= v.expiresAt ? start(v) : null, valid: true, permanent: false };
    }
    if (check.code === 'DIRECTORY_OBJECT_DOMAIN_MISMATCH') return { hostTime: null, valid: true, permanent: false };
    return { hostTime: null, valid: false, permanent: false };
  }

  /**
   * The domain a directory licence may be for: this machine's membership read at this start,
   * and only while the store has joined that same domain (leaving ends the licence).
   */
  #membershipDomain(): string | null {
    const joined = this.#record.directory?.domain ?? null;
    return joined !== null && joined === this.#memberDomain ? joined : null;
  }

  /** The checks an activation object must pass, in order: form, authority, domain, group. */
  #checkActivationObject(
    text: string,
    domain: string | null,
  ):
    | { ok: true; name: string; domain: string; issuedAt: number; expiresAt: number }
    | {
        ok: false;
        code:
          | 'DIRECTORY_OBJECT_INVALID'
          | 'DIRECTORY_OBJECT_UNTRUSTED'
          | 'DIRECTORY_OBJECT_DOMAIN_MISMATCH'
          | 'DIRECTORY_OBJECT_GROUP_MISMATCH'
          | 'DIRECTORY_OBJECT_EXPIRED';
        message: string;
      } {
    let object;
    try {
      object = parseActivationObject(text);
    } catch (err) {
      return { ok: false, code: 'DIRECTORY_OBJECT_INVALID', message: (err as Error).message };
    }
    const cacheKey = `ao:${text}`;
    if (this.#verifiedEvidence?.evidence !== cacheKey) {
      const good = activationObjectSignatureValid(object, this.#rootKey);
      this.#verifiedEvidence = { evidence: cacheKey, verified: good ? { hostTime: 0, count: 0 } : null };
    }
    if (this.#verifiedEvidence.verified === null) {
      return {
        ok: false,
        code: 'DIRECTORY_OBJECT_UNTRUSTED',
        message: `activation object ${object.name} is not signed by this product's authority`,
      };
    }
    if (domain === null || object.domain !== domain) {
      const joined = this.#record.directory?.domain ?? null;
      const why =
        joined === null
          ? 'this installation has not joined a domain (`volact client join-domain`)'
          : this.#memberDomain === null
            ? `this machine is configured as a member of no domain (give \`--member-domain ${joined}\` at each start, or set the machine's DNS domain)`
            : joined !== this.#memberDomain
              ? `this machine is configured as a member of ${this.#memberDomain}, not of ${joined} it joined`
              : `this machine is a member of ${joined}`;
      return {
        ok: false,
        code: 'DIRECTORY_OBJECT_DOMAIN_MISMATCH',
        message: `activation object ${object.name} is bound to ${object.domain}: ${why}`,
      };
    }
    if (object.group.id !== this.#record.product.group.id) {
      return {
        ok: false,
        code: 'DIRECTORY_OBJECT_GROUP_MISMATCH',
        message: `activation object ${object.name} is for ${object.group.name}, not ${this.#record.product.group.name}`,
      };
    }
    const { issuedAt, expiresAt } = activationObjectValidity(object);
    const now = this.#clock.now();
    const skew = this.#record.product.policy.maxClockSkewMinutes * MINUTE;
    if (now >= expiresAt || now + skew < issuedAt) {
      return {
        ok: false,
        code: 'DIRECTORY_OBJECT_EXPIRED',
        message: `activation object ${object.name} is valid from ${new Date(issuedAt).toISOString()} to ${new Date(expiresAt).toISOString()}; now is ${new Date(now).toISOString()}: the publisher re-issues it (\`volact authority activation-object create\`) and it is published again (\`volact directory publish --replace\`)`,
      };
    }
    return { ok: true, name: object.name, domain: object.domain, issuedAt, expiresAt };
  }

  async #attemptDirectory(
    membership: NonNullable<LicenceRecord['directory']>,
    now: number,
  ): Promise<{ outcome: ActivationOutcome } | { code: string; message: string }> {
    let entries;
    try {
      entries = await readEntries(
        {
          url: membership.url,
          ...(membership.bindDn ? { bindDn: membership.bindDn } : {}),
          ...(membership.password ? { password: membership.password } : {}),
          timeoutMs: this.#timeoutMs,
        },
        { base: membership.base, ...(membership.container ? { container: membership.container } : {}) },
      );
    } catch (err) {
      if (err instanceof VolactError) {
        const { code, message } = err as VolactError;
        return { code, message: `the directory ${membership.url} could not be read: ${message}` };
      }
      throw err;
    }
    const rank = [
      'NO_DIRECTORY_OBJECT',
      'DIRECTORY_OBJECT_INVALID',
      'DIRECTORY_OBJECT_EXPIRED',
      'DIRECTORY_OBJECT_GROUP_MISMATCH',
      'DIRECTORY_OBJECT_DOMAIN_MISMATCH',
      'DIRECTORY_OBJECT_UNTRUSTED',
    ];
    let best = {
      code: 'NO_DIRECTORY_OBJECT',
      message: `the directory holds no activation object for ${this.#record.product.group.name} under ${membership.base}: publish one with \`volact directory publish\``,
    };
    for (const entry of entries) {
      if (entry.content.length > MAX_OBJECT_TEXT) {
        best = {
          code: 'DIRECTORY_OBJECT_INVALID',
          message: `activation object ${entry.name} is larger than ${MAX_OBJECT_TEXT} characters`,
        };
        continue;
      }
      const check = this.#checkActivationObject(entry.content, this.#membershipDomain());
      if (!check.ok) {
        if (rank.indexOf(check.code) > rank.indexOf(best.code)) best = { code: check.code, message: check.message };
        continue;
      }
      this.#update({
        ...this.#record,
        activation: { method: 'directory', object: entry.content, checkedAt: now },
        lastAttempt: {
          at: now,
          ok: true,
          via: 'directory',
          domain: check.domain,
          message: `activated by activation object ${check.name} of ${check.domain}`,
        },
        nextAttemptAt: now + DEFAULTS.renewalInterval,
        nonGenuineSince: null,
      });
      const status = this.status();
      return { outcome: { ok: true, code: null, message: `licensed until ${status.expiresAt} (directory)`, status } };
    }
    return best;
  }

  /** Walks every step an activation takes and says which fails, with the fix. */
  doctor(): Promise<DoctorReport> {
    const status = this.status();
    return runDoctor({
      record: this.#record,
      rootKey: this.#rootKey,
      clock: this.#clock,
      timeoutMs: Math.min(this.#timeoutMs, 3_000),
      status: { state: status.state, method: status.method },
      discover: () => this.discover(),
      checkObject: (text) => this.#checkActivationObject(text, this.#membershipDomain()),
    });
  }

  /** Uses these DNS domains for discovery (none: this machine's own domain). */
  setDiscoveryDomains(domains: readonly string[], dnsServer?: string | null): void {
    const normalised = [...new Set(domains.map(normaliseDomain))];
    const bad = normalised.find((d) => !DOMAIN_NAME_RE.test(d));
    if (bad !== undefined) throw new ClientError('DOMAIN_INVALID', `"${bad.slice(0, 80)}" is not a DNS domain name`);
    if (normalised.length > MAX_DISCOVERY_DOMAINS) {
      throw new ClientError(
        'DOMAIN_INVALID',
        `at most ${MAX_DISCOVERY_DOMAINS} discovery domains; got ${normalised.length}`,
      );
    }
    const server =
      dnsServer === undefined
        ? this.#record.discovery.dnsServer
        : dnsServer === null
          ? null
          : formatKmsAddress(parseKmsAddress(dnsServer, DNS_PORT));
    this.#update({
      ...this.#record,
      discovery: { ...this.#record.discovery, domains: normalised, dnsServer: server, cached: null },
      nextAttemptAt: this.#clock.now(),
    });
  }

  /** Host caching: on, the host found in DNS is used for renewals until it stops answering. */
  setHostCaching(on: boolean): void {
    this.#update({
      ...this.#record,
      discovery: { ...this.#record.discovery, caching: on, cached: on ? this.#record.discovery.cached : null },
    });
  }

  /** Makes this installation a member of a directory domain (directory-based activation). */
  joinDomain(membership: DirectoryMembership): void {
    const domain = normaliseDomain(membership.domain);
    if (!DOMAIN_NAME_RE.test(domain)) {
      throw new ClientError(
        'DOMAIN_INVALID',
        `"${membership.domain.slice(0, 80)}" is not a domain name (e.g. corp.test)`,
      );
    }
    if (!/^ldaps?:\/\//.test(membership.url)) {
      throw new ClientError(
        'DOMAIN_INVALID',
        `the directory URL must be ldap:// or ldaps://, got "${membership.url.slice(0, 80)}"`,
      );
    }
    // The caller configured this machine as a member: later opens in this process hold to it.
    remember(this.#store.stateDir, { memberDomain: domain });
    this.#memberDomain = domain;
    this.#update({
      ...this.#record,
      directory: {
        url: membership.url,
        domain,
        base: membership.base,
        container: membership.container ?? null,
        bindDn: membership.bindDn ?? null,
        password: membership.password ?? null,
      },
      nextAttemptAt: this.#clock.now(),
    });
  }

  /** Leaves the directory domain: a directory activation no longer applies. */
  leaveDomain(): void {
    this.#update({ ...this.#record, directory: null, nextAttemptAt: this.#clock.now() });
  }

  /** How an installation ID's confirmation licenses: with a MAK, or with a retail key. */
  #installationMethod(): 'mak' | 'retail' {
    return this.#record.installedKey?.type === 'retail' ? 'retail' : 'mak';
  }

  #currentInstallationId(): InstallationId | null {
    const k = this.#record.installedKey;
    // A MAK or a retail key: both activate one installation ID (a retail key just one of them).
    if (!k || k.type === 'gvlk') return null;
    const cacheKey = `${k.text}/${this.#hardwareId}`;
    if (this.#installationIdCache?.key !== cacheKey) {
      const iid = makeInstallationId({
        kind: 'installation',
        key: parseKey(k.text),
        hardwareId: this.#hardwareId,
        groupIds: [this.#record.product.group.id],
      });
      this.#installationIdCache = { key: cacheKey, iid };
    }
    return this.#installationIdCache.iid;
  }

  /** The installation ID of this machine and its installed MAK, in digit groups. */
  installationId(): string {
    const iid = this.#currentInstallationId();
    if (!iid) {
      throw new ClientError(
        'NO_MAK_INSTALLED',
        'installation IDs are for MAK or retail activation: install a MAK or retail key first with `volact client install-key`',
      );
    }
    return iid.text;
  }

  /**
   * Phone activation: installs the confirmation ID the publisher gave for this machine's
   * installation ID. A typo names its group; a confirmation of another installation, another
   * product or not from this product's authority is refused and changes nothing.
   */
  installConfirmation(text: string): LicenceStatus {
    const iid = this.#currentInstallationId();
    if (!iid) {
      throw new ClientError(
        'NO_MAK_INSTALLED',
        'confirmation IDs are for MAK or retail activation: install a MAK or retail key first',
      );
    }
    let cid;
    try {
      cid = parseConfirmationId(text);
    } catch (err) {
      if (err instanceof CoreError) throw new ClientError('CONFIRMATION_INVALID', err.message);
      throw err;
    }
    if (!verifyInstallationConfirmation(iid, this.#record.product.group.id, cid, this.#rootKeyRaw)) {
      throw new ClientError(
        'CONFIRMATION_INVALID',
        "this confirmation ID was not issued for this machine's installation ID (another machine's or key's, or not by this product's authority): read out `volact client installation-id` again",
      );
    }
    const now = this.#clock.now();
    this.#update({
      ...this.#record,
      activation: {
        method: this.#installationMethod(),
        installationId: iid.text,
        confirmationId: cid.text,
        channel: 'phone',
        authority: null,
        receivedAt: now,
      },
      lastAttempt: { at: now, ok: true, message: 'activated by phone (confirmation ID installed)' },
      nextAttemptAt: now + this.#record.intervals.renewalMs,
      nonGenuineSince: null,
    });
    return this.status();
  }

  /**
   * A revocation, once seen, is kept in a way deleting or rolling back the CRL cannot undo: the
   * revoked token's licence is dropped from the store (carry in a new token).
   */
  #dropRevokedToken(now: number): void {
    const a = this.#record.activation;
    if (a?.method !== 'token') return;
    const check = this.#checkToken(a.token);
    if (check.ok || check.code !== 'TOKEN_REVOKED') return;
    this.#record = {
      ...this.#record,
      activation: null,
      lastAttempt: { at: now, ok: false, code: 'TOKEN_REVOKED', message: `${check.message}: its licence was removed` },
      nextAttemptAt: now,
    };
    this.#saveQuietly();
  }

  status(): LicenceStatus {
    const now = this.#clock.now();
    this.#dropRevokedToken(now);
    const r = this.#record;
    const evidence = this.#evidence();
    if (!evidence.valid && r.nonGenuineSince === null) {
      // First sight of an altered store: the non-genuine grace period starts now.
      this.#record = { ...r, nonGenuineSince: now };
      this.#saveQuietly();
    }
    const derived = deriveState(this.#record, now, evidence.hostTime, evidence.valid, evidence.permanent);
    const last = this.#record.lastAttempt;
    return {
      state: derived.state,
      method:
        evidence.permanent || (derived.validUntil !== null && evidence.valid)
          ? (this.#record.activation?.method ?? null)
          : null,
      actType: this.#record.actType,
      oem: this.#oemStatus(),
      token: this.#tokenStatus(now),
      crl: this.#crlStatus(now),
      hostSource: last?.via === 'directory' ? null : (last?.via ?? null),
      directoryObject: this.#directoryObjectName(),
      discovery: {
        domains: [...this.#record.discovery.domains],
        dnsServer: this.#record.discovery.dnsServer,
        caching: this.#record.discovery.caching,
        cachedHost: this.#record.discovery.cached?.address ?? null,
      },
      directory: this.#record.directory
        ? { url: this.#record.directory.url, domain: this.#record.directory.domain, base: this.#record.directory.base }
        : null,
      expiresAt: derived.stateEndsAt === null ? null : new Date(derived.stateEndsAt).toISOString(),
      host:
        this.#record.kmsHost ??
        last?.host ??
        (this.#record.activation?.method === 'kms' ? this.#record.activation.host : null),
      count: last?.count ?? null,
      threshold: this.#record.product.group.threshold,
      group: this.#record.product.group.name,
      clientMachineId: this.#record.clientMachineId,
      hardware: {
        id: this.#hardwareId,
        recorded: this.#record.hardwareId,
        changed: this.#hardwareId !== this.#record.hardwareId,
      },
      memberDomain: this.#memberDomain,
      installedKey: this.#record.installedKey ? lastFiveOf(this.#record.installedKey.text) : null,
      installedKeyType: this.#record.installedKey?.type ?? null,
      installationId: this.#currentInstallationId()?.text ?? null,
      lastAttempt: last ? { ...last, at: new Date(last.at).toISOString() } : null,
      nextAttemptAt: new Date(this.#record.nextAttemptAt).toISOString(),
    };
  }

  #oemStatus(): LicenceStatus['oem'] {
    const a = this.#record.activation;
    if (a?.method !== 'oem') return null;
    const check = this.#checkOem(a.marker);
    if (check.ok) return { manufacturer: check.manufacturer, machine: check.machine, code: null };
    try {
      const m = parseOemMarker(a.marker);
      return { manufacturer: m.certificate.manufacturer, machine: m.machine, code: check.code };
    } catch {
      return { manufacturer: null, machine: null, code: check.code };
    }
  }

  #tokenStatus(now: number): LicenceStatus['token'] {
    const a = this.#record.activation;
    if (a?.method !== 'token') return null;
    const check = this.#checkToken(a.token);
    if (check.ok && 'validUntil' in check) {
      const early = now + this.#record.product.policy.maxClockSkewMinutes * MINUTE < check.validFrom;
      return {
        serial: check.serial,
        organisation: check.organisation,
        notAfter: new Date(check.validUntil).toISOString(),
        code:
          early || now >= check.validUntil
            ? 'TOKEN_EXPIRED'
            : this.#staleRequiredCrl(a.token, now)
              ? 'TOKEN_CRL_REQUIRED'
              : null,
      };
    }
    try {
      const t = parseActivationToken(a.token);
      return {
        serial: t.serial,
        organisation: t.caCertificate.organisation,
        notAfter: t.notAfter,
        code: check.ok ? null : check.code,
      };
    } catch {
      return { serial: null, organisation: null, notAfter: null, code: check.ok ? null : check.code };
    }
  }

  /**
   * The CRL shown: the installed token's CA's, else the newest installed (CRLs are kept per CA). A
   * CRL past its next update still applies (an isolated network gets new ones by hand): flagged `stale`.
   */
  #crlStatus(now: number): LicenceStatus['crl'] {
    const a = this.#record.activation;
    const ca = a?.method === 'token' ? Licence.#tokenCa(a.token) : null;
    const byCa = this.#readCrls().byCa;
    const crl =
      (ca === null ? undefined : byCa.get(ca)) ??
      [...byCa.values()].reduce<TokenCrl | undefined>(
        (newest, c) => (newest && Date.parse(newest.issuedAt) >= Date.parse(c.issuedAt) ? newest : c),
        undefined,
      );
    return crl ? Licence.#crlSummaryOf(crl, now) : null;
  }

  static #crlSummaryOf(crl: TokenCrl, now: number): NonNullable<LicenceStatus['crl']> {
    return {
      issuedAt: crl.issuedAt,
      nextUpdate: crl.nextUpdate,
      revoked: crl.revoked.length,
      stale: now > Date.parse(crl.nextUpdate),
    };
  }

  #directoryObjectName(): { name: string; domain: string } | null {
    const a = this.#record.activation;
    if (a?.method !== 'directory') return null;
    try {
      const o = parseActivationObject(a.object);
      return { name: o.name, domain: o.domain };
    } catch {
      return null;
    }
  }

  /** Sets (or with null clears) the KMS host to use instead of discovery. */
  setKmsHost(address: string | null): void {
    const value = address === null ? null : formatKmsAddress(parseKmsAddress(address));
    this.#update({ ...this.#record, kmsHost: value, nextAttemptAt: this.#clock.now() });
  }

  /**
   * Installs a product key, replacing the one installed (the reference's /ipk): the group's GVLK
   * for KMS activation, a MAK or a retail key. Another key means the activation made with the old one no
   * longer applies.
   */
  installKey(text: string): void {
    let key;
    try {
      key = parseKeyOfType(text, 'gvlk', 'mak', 'retail');
    } catch (err) {
      throw new ClientError('KEY_INVALID', err instanceof CoreError ? err.message : String(err));
    }
    if (key.type === 'gvlk' && key.text !== this.#record.product.gvlk) {
      throw new ClientError(
        'KEY_INVALID',
        `key ${lastFiveOf(key)} is the GVLK of another product group, not of ${this.#record.product.group.name}`,
      );
    }
    const installed = this.#record.installedKey;
    if (installed?.text === key.text) return;
    const keepsActivation = key.type === 'gvlk' && this.#record.activation?.method === 'kms';
    this.#update({
      ...this.#record,
      installedKey: { type: key.type === 'gvlk' || key.type === 'retail' ? key.type : 'mak', text: key.text },
      activation: keepsActivation ? this.#record.activation : null,
      nextAttemptAt: this.#clock.now(),
    });
  }

  onChange(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * One activation attempt now: at the KMS host with a GVLK, online at the authority with a
   * MAK (`authority` overrides the product config's URL). Expected failures are returned, not
   * thrown.
   */
  activate(options: { authority?: string } = {}): Promise<ActivationOutcome> {
    this.#attempting ??= this.#attempt(options).finally(() => (this.#attempting = undefined));
    return this.#attempting;
  }

  /** Attempts activation when the schedule says it is due; returns null when nothing was due. */
  async runDue(): Promise<ActivationOutcome | null> {
    this.#notifyIfChanged();
    if (this.#clock.now() < this.#record.nextAttemptAt) return null;
    return this.activate();
  }

  /** Runs the activation schedule in the background (timers are unref'd). */
  startSchedule(): void {
    this.stopSchedule();
    // A loop belongs to one start: a tick still awaiting an exchange when the schedule is
    // stopped (or restarted) ends there instead of running beside the new loop.
    const generation = ++this.#scheduleGeneration;
    // Wakes at the next attempt or state boundary; an error is reported, never thrown out of
    // the timer (an embedding app must not crash because a renewal failed).
    const tick = async () => {
      let wait = 60_000;
      try {
        await this.runDue();
        const ends = this.status().expiresAt;
        const next = Math.min(this.#record.nextAttemptAt, ends ? Date.parse(ends) : Infinity);
        wait = Math.min(Math.max(1_000, next - this.#clock.now()), 2 ** 31 - 1);
      } catch (err) {
        this.#onScheduleError(err);
      }
      if (generation !== this.#scheduleGeneration) return;
      this.#timer = setTimeout(() => void tick(), wait);
      this.#timer.unref();
    };
    this.#timer = setTimeout(() => void tick(), 0);
    this.#timer.unref();
  }

  stopSchedule(): void {
    this.#scheduleGeneration++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #attempt(options: { authority?: string }): Promise<ActivationOutcome> {
    const before = this.status();
    const now = this.#clock.now();
    const r = this.#record;
    const fail = (code: string, message: string, extra: Partial<AttemptRecord> = {}, intervals = r.intervals) => {
      const wait = before.state === 'licensed' ? intervals.renewalMs : intervals.activationMs;
      this.#update({
        ...this.#record,
        intervals,
        lastAttempt: { at: now, ok: false, code, message, ...extra },
        nextAttemptAt: now + wait,
      });
      return { ok: false, code, message, status: this.status() };
    };
    if (!r.installedKey)
      return fail('KEY_INVALID', 'no product key is installed; install the GVLK with `volact client install-key`');
    const carried = this.#attemptCarried(before, now, fail);
    if (carried) return carried;
    if (r.installedKey.type !== 'gvlk') return this.#attemptMak(options.authority, before, fail);
    let directoryFailure: { code: string; message: string } | null = null;
    if (r.directory && (r.actType === 'any' || r.actType === 'directory')) {
      // A member of a directory domain activates from its activation object first; an
      // unreadable directory or no valid object falls back to KMS.
      const viaDirectory = await this.#attemptDirectory(r.directory, now);
      if ('outcome' in viaDirectory) return viaDirectory.outcome;
      directoryFailure = viaDirectory;
    }
    if (r.actType === 'directory') {
      return directoryFailure
        ? fail(directoryFailure.code, `${directoryFailure.message} (act-type directory: no KMS host is asked)`)
        : fail(
            'ACT_TYPE_FORBIDS',
            'act-type directory: only directory-based activation is allowed, and this installation is not a member of a directory domain (`volact client join-domain`)',
          );
    }
    return this.#attemptKms(before, now, fail, directoryFailure);
  }

  /**
   * OEM markers and tokens are carried in, not fetched: an attempt re-checks the installed one
   * with no network. Null when the attempt goes on to the other methods. With act-type token
   * nothing else is tried: a KMS host or directory that is set is refused (ACT_TYPE_FORBIDS).
   */
  #attemptCarried(
    before: LicenceStatus,
    now: number,
    fail: (code: string, message: string) => ActivationOutcome,
  ): ActivationOutcome | null {
    const r = this.#record;
    const a = r.activation;
    if (a?.method === 'oem' && before.method === 'oem') {
      this.#update({ ...r, nextAttemptAt: now + r.intervals.renewalMs });
      return {
        ok: true,
        code: null,
        message: `licensed by the OEM marker of ${before.oem?.machine} (${before.oem?.manufacturer}; permanent)`,
        status: this.status(),
      };
    }
    if (r.actType !== 'any' && r.actType !== 'token') return null;
    if (a?.method === 'token') {
      const check = this.#tokenNow(a.token, now);
      if (check.ok) {
        const until = new Date(check.validUntil).toISOString();
        this.#update({
          ...r,
          lastAttempt: { at: now, ok: true, message: `licensed by token ${check.serial} of ${check.organisation}` },
          nextAttemptAt: Math.min(now + r.intervals.renewalMs, check.validUntil),
          nonGenuineSince: null,
        });
        return {
          ok: true,
          code: null,
          message: `licensed until ${until} (token ${check.serial})`,
          status: this.status(),
        };
      }
      // act-type any: an expired or revoked token lets the other methods try.
      return r.actType === 'token' ? fail(check.code, check.message) : null;
    }
    if (r.actType !== 'token') return null;
    const other = r.kmsHost
      ? `the KMS host ${r.kmsHost}`
      : r.directory
        ? `the directory of ${r.directory.domain}`
        : null;
    return other
      ? fail(
          'ACT_TYPE_FORBIDS',
          `act-type token: ${other} is not asked; install an activation token (\`volact client install-token\`) or change the type (\`volact client set-act-type any\`)`,
        )
      : fail('NO_TOKEN', 'act-type token: no activation token is installed; `volact client install-token FILE`');
  }

  /** The token's checks with the time rule, now (an attempt, an install). */
  #tokenNow(
    token: string,
    now: number,
  ):
    | { ok: true; serial: string; organisation: string; validUntil: number }
    | { ok: false; code: ClientErrorCode; message: string } {
    const check = this.#checkToken(token);
    if (!check.ok) return check;
    if (!('validUntil' in check)) return { ok: false, code: 'CRL_INVALID', message: 'the installed CRL is invalid' };
    const skew = this.#record.product.policy.maxClockSkewMinutes * MINUTE;
    if (now + skew < check.validFrom || now >= check.validUntil) {
      return {
        ok: false,
        code: 'TOKEN_EXPIRED',
        message: `token ${check.serial} is valid from ${new Date(check.validFrom).toISOString()} to ${new Date(check.validUntil).toISOString()}; now is ${new Date(now).toISOString()}: carry in a new token`,
      };
    }
    const stale = this.#staleRequiredCrl(token, now);
    if (stale) return { ok: false, code: 'TOKEN_CRL_REQUIRED', message: stale };
    return check;
  }

  /**
   * A token that requires a CRL requires a current one: past the installed CRL's next update it
   * no longer licenses. A CRL from before a revocation pasted back into the store (with the
   * token) thus licenses at most until that CRL's next update. Null when it holds.
   */
  #staleRequiredCrl(token: string, now: number): string | null {
    let required: ReturnType<typeof parseActivationToken>;
    try {
      required = parseActivationToken(token);
    } catch {
      return null; // the signature checks report it
    }
    const own = this.#readCrls().byCa.get(tokenCaFingerprint(required.caCertificate));
    const crl = own ? Licence.#crlSummaryOf(own, now) : null;
    if (!required.crlRequired || !crl?.stale) return null;
    return `token ${required.serial} requires a current CRL of its CA: the installed one was to be replaced on ${crl.nextUpdate}; install the newest (\`volact client install-crl FILE\`)`;
  }

  /**
   * OEM activation: installs the marker the manufacturer made for this machine at the factory
   * (\`volact oem mark\`). Checked here with no network; refused, changing nothing, when it does
   * not verify for this product and this machine's hardware. It replaces any other activation
   * (and a MAK: the group's GVLK is installed again), and holds under every act-type.
   */
  installOemMarker(text: string): LicenceStatus {
    const check = readOemMarker(text, this.#offlineContext());
    if (!check.ok) throw new ClientError(check.code, check.message);
    const now = this.#clock.now();
    this.#update({
      ...this.#record,
      installedKey: { type: 'gvlk', text: this.#record.product.gvlk },
      activation: { method: 'oem', marker: text, installedAt: now },
      lastAttempt: {
        at: now,
        ok: true,
        message: `OEM marker of ${check.machine} by ${check.manufacturer} installed (permanent)`,
      },
      nextAttemptAt: now + this.#record.intervals.renewalMs,
      nonGenuineSince: null,
    });
    return this.status();
  }

  /**
   * Token-based activation: installs a token of the organisation's CA (and, optionally, the
   * CA's CRL with it). Checked now, with no network: chain to the pinned root, group, this
   * machine's hardware, validity, the CRL. Refused, changing nothing, when a check fails or
   * when act-type is kms or directory.
   */
  installToken(text: string, crlText?: string): LicenceStatus {
    if (this.#record.actType === 'kms' || this.#record.actType === 'directory') {
      throw new ClientError(
        'ACT_TYPE_FORBIDS',
        `act-type ${this.#record.actType}: token-based activation is not allowed (\`volact client set-act-type token\` or any)`,
      );
    }
    const revocations =
      crlText === undefined ? { crls: this.#record.crls, revoked: this.#record.revoked } : this.#acceptCrl(crlText);
    // Checked against the CRL it comes with (and every serial seen revoked before).
    const previous = this.#record;
    const now = this.#clock.now();
    let check;
    try {
      this.#record = { ...previous, ...revocations };
      check = this.#tokenNow(text, now);
    } finally {
      this.#record = previous;
    }
    if (!check.ok) {
      // A CRL that revokes the token is kept (what it revokes stays revoked); otherwise nothing changes.
      if (check.code === 'TOKEN_REVOKED' && crlText !== undefined) {
        this.#update({ ...this.#record, ...revocations });
      }
      throw new ClientError(check.code, check.message);
    }
    this.#update({
      ...this.#record,
      ...revocations,
      installedKey: { type: 'gvlk', text: this.#record.product.gvlk },
      activation: { method: 'token', token: text, installedAt: now },
      lastAttempt: { at: now, ok: true, message: `token ${check.serial} of ${check.organisation} installed` },
      nextAttemptAt: Math.min(now + this.#record.intervals.renewalMs, check.validUntil),
      nonGenuineSince: null,
    });
    return this.status();
  }

  /**
   * Installs a CA's revocation list: a token on it stops licensing at once. One CRL is kept per
   * CA (by its public key's fingerprint); one older than the installed CRL of the same CA is
   * refused (CRL_OUTDATED), and the serials it revokes are recorded for good: neither an old
   * list nor another CA's can un-revoke a token.
   */
  installCrl(text: string): LicenceStatus {
    const revocations = this.#acceptCrl(text);
    this.#record = { ...this.#record, ...revocations, nextAttemptAt: this.#clock.now() };
    this.#dropRevokedToken(this.#clock.now());
    this.#update(this.#record);
    return this.status();
  }

  /** The store's CRLs and revocations with this CRL (verified, not older than its CA's installed one). */
  #acceptCrl(text: string): { crls: StoredRecord['crls']; revoked: StoredRecord['revoked'] } {
    const read = readCrl(text, this.#offlineContext());
    if (!read.ok) throw new ClientError(read.code, read.message);
    const fp = tokenCaFingerprint(read.crl.caCertificate);
    const { crls, revoked } = this.#record;
    const installedText = crls[fp];
    const installed = installedText === undefined ? null : readCrl(installedText, this.#offlineContext());
    if (installed?.ok && Date.parse(read.crl.issuedAt) < Date.parse(installed.crl.issuedAt)) {
      throw new ClientError(
        'CRL_OUTDATED',
        `this CRL of ${read.crl.caCertificate.organisation} was issued ${read.crl.issuedAt}, before the installed one of the same CA (${installed.crl.issuedAt}): carry in the newest`,
      );
    }
    const cas = new Set([...Object.keys(crls), ...Object.keys(revoked)]);
    if (!cas.has(fp) && cas.size >= MAX_TOKEN_CAS) {
      throw new ClientError(
        'CRL_INVALID',
        `this store already keeps the CRLs of ${MAX_TOKEN_CAS} CAs, the most it keeps: a new installation is needed for more`,
      );
    }
    const seen = [...new Set([...(revoked[fp] ?? []), ...read.crl.revoked.map((x) => x.toLowerCase())])].sort();
    if (seen.length > MAX_SEEN_REVOKED) {
      throw new ClientError(
        'CRL_INVALID',
        `the CA ${read.crl.caCertificate.organisation} has revoked more than ${MAX_SEEN_REVOKED} serials seen here, the most a store keeps`,
      );
    }
    return { crls: { ...crls, [fp]: text }, revoked: { ...revoked, [fp]: seen } };
  }

  /**
   * The reference's /act-type: which methods an activation attempt may use. any (default):
   * OEM, token, directory, then KMS; directory: the directory only; kms: KMS hosts only (a
   * directory membership is ignored, a token is not installed); token: the token only (a KMS
   * host is refused). An installed OEM marker holds under every type.
   */
  setActType(type: ActType): LicenceStatus {
    if (!(ACT_TYPES as readonly string[]).includes(type)) {
      throw new ClientError(
        'ACT_TYPE_INVALID',
        `"${String(type).slice(0, 40)}" is not an activation type: ${ACT_TYPES.join(', ')}`,
      );
    }
    this.#update({ ...this.#record, actType: type, nextAttemptAt: this.#clock.now() });
    return this.status();
  }

  /** The KMS hosts to try, in order: the manual host alone; else the cached one, then DNS. */
  async *#kmsCandidates(
    dnsFailures: { domain: string; code: string; message: string }[],
    searched: string[],
  ): AsyncGenerator<{ address: string; connect: string; via: 'manual' | 'cache' | 'dns'; domain?: string }> {
    const r = this.#record;
    if (r.kmsHost) {
      yield { address: r.kmsHost, connect: r.kmsHost, via: 'manual' };
      return;
    }
    const cached = r.discovery.caching ? r.discovery.cached : null;
    if (cached)
      yield { address: cached.address, connect: cached.connect ?? cached.address, via: 'cache', domain: cached.domain };
    const found = await this.discover();
    searched.push(...found.domains);
    dnsFailures.push(...found.errors);
    for (const h of found.hosts) {
      if (h.address !== cached?.address) yield { address: h.address, connect: h.connect, via: 'dns', domain: h.domain };
    }
  }

  /** Looks up KMS hosts in DNS (the configured domains, else this machine's), in the order to try. */
  discover(): Promise<DiscoveryResult> {
    const d = this.#record.discovery;
    const own = d.domains.length === 0 ? ownDnsDomain() : null;
    const domains = d.domains.length > 0 ? d.domains : own ? [own] : [];
    return discoverKmsHosts({
      domains,
      dnsServer: d.dnsServer === null ? null : parseKmsAddress(d.dnsServer),
      timeoutMs: Math.min(this.#timeoutMs, 3_000),
      ...(this.#random ? { random: this.#random } : {}),
    });
  }

  async #attemptKms(
    before: LicenceStatus,
    now: number,
    fail: (
      code: string,
      message: string,
      extra?: Partial<AttemptRecord>,
      intervals?: LicenceRecord['intervals'],
    ) => ActivationOutcome,
    directoryFailure: { code: string; message: string } | null,
  ): Promise<ActivationOutcome> {
    const r = this.#record;
    const groupId = guidToBytes(r.product.group.id);
    const clientId = guidToBytes(r.clientMachineId);
    const dnsFailures: { domain: string; code: string; message: string }[] = [];
    const searched: string[] = [];
    let lastFailure: { code: string; message: string; extra: Partial<AttemptRecord> } | null = null;
    for await (const candidate of this.#kmsCandidates(dnsFailures, searched)) {
      const via = {
        host: candidate.address,
        via: candidate.via,
        ...(candidate.domain ? { domain: candidate.domain } : {}),
      };
      const nonce = randomBytes(16);
      const request = encodeActivationRequest({
        licenceState: licenceStateCode(before.state),
        groupId,
        clientId,
        nonce,
        clientTime: now,
      });
      let payload: Buffer;
      let verified;
      try {
        payload = await exchangeWithKmsHost(parseKmsAddress(candidate.connect), request, this.#timeoutMs);
        verified = verifyKmsResponse(payload, {
          rootPublicKey: this.#rootKey,
          groupId,
          clientId,
          mode: { kind: 'live', nonce },
          now: this.#clock.now(),
          maxClockSkew: r.product.policy.maxClockSkewMinutes * MINUTE,
        });
      } catch (err) {
        if (!(err instanceof ClientError)) throw err;
        // An unreachable or untrusted host: try the next one (an emulator published in DNS
        // must not keep genuine hosts from being used). A cached host that stopped answering
        // is forgotten: discovery runs again.
        lastFailure = { code: err.code, message: err.message, extra: via };
        if (candidate.via === 'cache') this.#forgetCachedHost();
        continue;
      }
      const { response } = verified;
      const intervals = {
        activationMs: clampInterval(response.activationIntervalMin * MINUTE, INTERVAL_BOUNDS.activationInterval),
        renewalMs: clampInterval(response.renewalIntervalMin * MINUTE, INTERVAL_BOUNDS.renewalInterval),
      };
      if (candidate.via === 'dns' && r.discovery.caching) {
        this.#record = {
          ...this.#record,
          discovery: {
            ...this.#record.discovery,
            cached: {
              address: candidate.address,
              connect: candidate.connect,
              domain: candidate.domain ?? '',
              foundAt: now,
            },
          },
        };
      }
      const threshold = r.product.group.threshold;
      const counted = { ...via, count: response.count, threshold };
      if (response.count < threshold) {
        return fail(
          'KMS_THRESHOLD_NOT_MET',
          `count ${response.count} of ${threshold}: the host has counted ${response.count} client(s) of ${r.product.group.name} in its window; activation needs ${threshold}. Retrying in ${Math.round(intervals.activationMs / MINUTE)} minutes`,
          counted,
          intervals,
        );
      }
      this.#update({
        ...this.#record,
        intervals,
        activation: { method: 'kms', evidence: payload.toString('base64'), host: candidate.address, receivedAt: now },
        lastAttempt: {
          at: now,
          ok: true,
          message: `activated by ${candidate.address} (${candidate.via === 'dns' ? `found in DNS, ${candidate.domain}` : candidate.via === 'cache' ? 'cached from DNS' : 'set by hand'}; count ${response.count} of ${threshold})`,
          ...counted,
        },
        nextAttemptAt: now + intervals.renewalMs,
        nonGenuineSince: null,
      });
      const status = this.status();
      return {
        ok: true,
        code: null,
        message: `licensed until ${status.expiresAt} (count ${response.count} of ${threshold})`,
        status,
      };
    }
    if (lastFailure) return fail(lastFailure.code, lastFailure.message, lastFailure.extra);
    const service = DEFAULT_KMS_SERVICE;
    const why =
      searched.length === 0
        ? 'no KMS host is set and no DNS domain is known: run `volact client set-host --state-dir DIR HOST:PORT` or `volact client set-domain --state-dir DIR DOMAIN`'
        : `no KMS host is set and DNS discovery found none: ${searched
            .map((d) => {
              const failure = dnsFailures.find((f) => f.domain === d);
              return failure
                ? `${service}.${d}: ${failure.message}`
                : `no SRV record for ${service}.${d}: is the host publishing? see \`volact host status\``;
            })
            .join('; ')}`;
    if (directoryFailure) return fail(directoryFailure.code, `${directoryFailure.message}; and ${why}`);
    return fail('NO_KMS_HOST', why);
  }

  #forgetCachedHost(): void {
    this.#record = { ...this.#record, discovery: { ...this.#record.discovery, cached: null } };
  }

  async #attemptMak(
    authorityOption: string | undefined,
    before: LicenceStatus,
    fail: (code: string, message: string) => ActivationOutcome,
  ): Promise<ActivationOutcome> {
    const r = this.#record;
    const now = this.#clock.now();
    const key = r.installedKey as { text: string };
    const method = this.#installationMethod();
    const label = method === 'retail' ? 'retail key' : 'MAK';
    if (before.method === method && authorityOption === undefined) {
      // Activated for good: nothing to renew.
      this.#update({ ...r, nextAttemptAt: now + r.intervals.renewalMs });
      return {
        ok: true,
        code: null,
        message: `activated with ${label} ${lastFiveOf(key.text)}`,
        status: this.status(),
      };
    }
    const base = authorityOption ?? r.product.authority.url;
    if (base === undefined) {
      return fail(
        'NO_AUTHORITY',
        `a ${label} activates at the publisher's authority: pass --authority URL, or activate by phone (\`volact client installation-id\`, then \`volact client install-confirmation CID\`)`,
      );
    }
    let url: URL;
    try {
      url = authorityEndpoint(base, '/v1/activations');
    } catch (err) {
      if (!(err instanceof CoreError)) throw err;
      return fail(err.code === 'URL_INSECURE' ? 'AUTHORITY_URL_INSECURE' : 'NO_AUTHORITY', err.message);
    }
    const iid = this.#currentInstallationId() as InstallationId;
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: key.text, installationId: iid.text, groupId: r.product.group.id }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const cause =
        (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
      return fail('AUTHORITY_UNREACHABLE', `cannot reach the authority at ${url.origin}: ${cause}`);
    }
    const payload = (await response.json().catch(() => ({}))) as {
      confirmationId?: unknown;
      error?: { code?: string; message?: string };
    };
    if (response.status === 503) {
      // The authority is up but its database is not (STORE_UNAVAILABLE): nothing was decided; retry.
      return fail(
        'AUTHORITY_UNREACHABLE',
        `the authority at ${url.origin} cannot decide now (${payload.error?.code ?? 'HTTP 503'}: ${payload.error?.message ?? 'unavailable'}); retry in ${response.headers.get('retry-after') ?? 'a few'} s`,
      );
    }
    if (!response.ok) {
      // The authority's own code (MAK_LIMIT_REACHED, RETAIL_ALREADY_ACTIVATED, KEY_REVOKED, …): scripts match on it.
      return fail(
        payload.error?.code ?? 'AUTHORITY_UNREACHABLE',
        payload.error?.message ?? `the authority answered HTTP ${response.status}`,
      );
    }
    let verified = false;
    let cid;
    try {
      cid = parseConfirmationId(typeof payload.confirmationId === 'string' ? payload.confirmationId : '');
      verified = verifyInstallationConfirmation(iid, r.product.group.id, cid, this.#rootKeyRaw);
    } catch {
      verified = false;
    }
    if (!verified || !cid) {
      return fail(
        'ACTIVATION_UNTRUSTED',
        `${url.origin} answered with a confirmation that does not verify against this product's root key: is it this publisher's authority?`,
      );
    }
    this.#update({
      ...this.#record,
      activation: {
        method,
        installationId: iid.text,
        confirmationId: cid.text,
        channel: 'online',
        authority: url.origin,
        receivedAt: now,
      },
      lastAttempt: {
        at: now,
        ok: true,
        message: `activated online by ${url.origin} with ${label} ${lastFiveOf(key.text)}`,
      },
      nextAttemptAt: now + r.intervals.renewalMs,
      nonGenuineSince: null,
    });
    return {
      ok: true,
      code: null,
      message: `activated with ${label} ${lastFiveOf(key.text)} (permanent)`,
      status: this.status(),
    };
  }

  #update(record: LicenceRecord): void {
    this.#record = record;
    this.#store.save(record);
    this.#notifyIfChanged();
  }

  /** Reading the state must work on a read-only store: these writes are best effort. */
  #saveQuietly(): void {
    try {
      this.#store.save(this.#record);
    } catch {
      // kept in memory; written with the next activation
    }
  }

  #notifyIfChanged(): void {
    const status = this.status();
    if (status.state === this.#record.lastReportedState) return;
    this.#record = { ...this.#record, lastReportedState: status.state };
    this.#saveQuietly();
    for (const listener of this.#listeners) {
      try {
        listener(status);
      } catch (err) {
        // A subscriber's bug must not break activation or the schedule.
        this.#onScheduleError(err);
      }
    }
  }
}
