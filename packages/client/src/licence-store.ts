import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import {
  LICENCE_STATES,
  MAX_CRL_CHARS,
  MAX_CRL_SERIALS,
  MAX_OEM_MARKER_CHARS,
  MAX_TOKEN_CHARS,
  parseTokenCrl,
  sha256,
  tokenCaFingerprint,
  type ProductConfig,
} from '@volact/core';
import { ClientError } from './errors.js';
import { ParsedFiles } from './parsed-files.js';
import {
  MAX_RECORD_CHARS,
  MAX_REVOCATION_LIST_CHARS,
  MAX_STORED_DELEGATIONS,
  MAX_STORED_TRANSITIONS,
} from './trust.js';

const STORE_FILE = 'licence.json';

const attemptSchema = z.object({
  at: z.number(),
  ok: z.boolean(),
  code: z.string().optional(),
  message: z.string(),
  host: z.string().optional(),
  /** How the host (or object) was found: set by hand, cached from DNS, DNS, the directory. */
  via: z.enum(['manual', 'cache', 'dns', 'directory']).optional(),
  domain: z.string().optional(),
  count: z.number().optional(),
  threshold: z.number().optional(),
});

/**
 * The reference's activation types (slmgr /act-type): any method, directory-based only, KMS
 * only, token-based only. An OEM licence is made at the factory, not by an attempt: it holds
 * under every type.
 */
export const ACT_TYPES = ['any', 'directory', 'kms', 'token'] as const;
export type ActType = (typeof ACT_TYPES)[number];

/** The authority's confirmation of this installation ID: the evidence of a MAK or retail activation. */
const confirmedInstallation = {
  installationId: z.string(),
  confirmationId: z.string(),
  channel: z.enum(['online', 'phone']),
  authority: z.string().nullable(),
  receivedAt: z.number(),
};

/**
 * Where the product configuration lives and what it was: the store keeps no copy of it (an edited
 * copy would be trusted), only its installed location (the CLI and agent read it there at every
 * start) and a fingerprint that reports a swapped file instead of using it.
 */
const productRefSchema = z.object({
  /** The product's installed location, outside the state directory; null when the SDK caller passes it. */
  path: z.string().max(4096).nullable(),
  /** SHA-256 of the product configuration as parsed, hex (productFingerprint). */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  groupId: z.string(),
  groupName: z.string(),
  /**
   * SHA-256 of the product's root public key at init, hex (rootKeyFingerprint): set-product
   * accepts only a product with this root (a new root arrives with a new installation). Absent
   * in stores made before it was recorded: the root of the product file they name then.
   */
  rootKey: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});

const caFingerprintField = z.string().regex(/^[0-9a-f]{64}$/);
const serialField = z.string().regex(/^[0-9a-f-]{36}$/);

/** The licence store as written: format 2 (format 1 held a trusted copy of the product). */
export const storedRecordSchema = z.object({
  format: z.literal('volact-client/2'),
  productRef: productRefSchema,
  clientMachineId: z.string(),
  /** The hardware id given at init: shown, compared; the one in force is read at every start. */
  hardwareId: z.string(),
  /** Start of the initial grace period: when the product was installed. */
  installedAt: z.number(),
  installedKey: z.object({ type: z.enum(['gvlk', 'mak', 'retail']), text: z.string() }).nullable(),
  kmsHost: z.string().nullable(),
  activation: z
    .discriminatedUnion('method', [
      z.object({
        method: z.literal('kms'),
        /** The signed KMS response that granted the licence: state is derived from it. */
        evidence: z.string(),
        host: z.string(),
        receivedAt: z.number(),
      }),
      z.object({
        method: z.literal('directory'),
        /** The activation object read from the directory, as signed by the authority. */
        object: z.string().max(8192),
        /**
         * When the directory last confirmed it. Not signed: the licence runs from the object's
         * signed issue date, and this time can only end it earlier, never later.
         */
        checkedAt: z.number(),
      }),
      z.object({
        method: z.literal('oem'),
        /** The OEM marker made at the factory for this machine: checked at every read, never expires. */
        marker: z.string().max(MAX_OEM_MARKER_CHARS),
        installedAt: z.number(),
      }),
      z.object({
        method: z.literal('token'),
        /** The activation token the organisation's CA issued for this machine: valid until its notAfter. */
        token: z.string().max(MAX_TOKEN_CHARS),
        installedAt: z.number(),
      }),
      z.object({ method: z.literal('mak'), ...confirmedInstallation }),
      // A retail key: the same confirmation as a MAK's (the authority allows one installation per key).
      z.object({ method: z.literal('retail'), ...confirmedInstallation }),
    ])
    .nullable(),
  intervals: z.object({ activationMs: z.number(), renewalMs: z.number() }),
  /** DNS discovery of KMS hosts (the reference's DNS suffix list, skms-domain, host caching). */
  discovery: z
    .object({
      domains: z.array(z.string()).max(16),
      dnsServer: z.string().nullable(),
      caching: z.boolean(),
      cached: z
        .object({ address: z.string(), connect: z.string().optional(), domain: z.string(), foundAt: z.number() })
        .nullable(),
    })
    .default({ domains: [], dnsServer: null, caching: true, cached: null }),
  /** Membership of a directory domain, for directory-based activation. */
  directory: z
    .object({
      url: z.string(),
      domain: z.string(),
      base: z.string(),
      container: z.string().nullable(),
      bindDn: z.string().nullable(),
      password: z.string().nullable(),
    })
    .nullable()
    .default(null),
  /**
   * Format 2 stores before CRLs were kept per CA: the one CRL installed. Moved into `crls` at
   * load (when no CRL of its CA is there), never written again.
   */
  crl: z.string().max(MAX_CRL_CHARS).nullable().optional(),
  /**
   * Each token CA's newest revocation list carried in, by the CA's fingerprint (tokenCaFingerprint);
   * checked at every read. A CRL filed under another CA's fingerprint is an edited store.
   */
  crls: z.record(caFingerprintField, z.string().max(MAX_CRL_CHARS)).default({}),
  /**
   * The serials seen revoked by a verified CRL, by CA fingerprint: only ever added to (a later or
   * another CRL, a reset, never un-revokes). Unsigned: it can only refuse tokens, never license one.
   */
  revoked: z.record(caFingerprintField, z.array(serialField).max(4 * MAX_CRL_SERIALS)).default({}), // as licence.ts MAX_SEEN_REVOKED
  /** Which volume activation methods an attempt may use (the reference's /act-type). */
  actType: z.enum(ACT_TYPES).default('any'),
  /**
   * What this installation learned beyond its product config (docs/trust.md): root-transition
   * records and delegation certificates (from KMS answers, the authority's answers,
   * install-trust), and the newest revocation list it holds. Unsigned as a whole: each record is
   * verified at every open under the roots trusted then, and one that does not verify is ignored.
   */
  trust: z
    .object({
      transitions: z.array(z.string().max(MAX_RECORD_CHARS)).max(MAX_STORED_TRANSITIONS),
      delegations: z.array(z.string().max(MAX_RECORD_CHARS)).max(MAX_STORED_DELEGATIONS),
      revocationList: z.string().max(MAX_REVOCATION_LIST_CHARS).nullable(),
    })
    .default({ transitions: [], delegations: [], revocationList: null }),
  lastAttempt: attemptSchema.nullable(),
  nextAttemptAt: z.number(),
  nonGenuineSince: z.number().nullable(),
  lastReportedState: z.enum(LICENCE_STATES).nullable(),
});

export type StoredRecord = z.infer<typeof storedRecordSchema>;
/** The record in memory: the stored one with the product configuration read from outside the store. */
export type LicenceRecord = StoredRecord & { readonly product: ProductConfig };

/** The product's root public key's fingerprint as the store keeps it. */
export function rootKeyFingerprint(product: ProductConfig): string {
  return rootFingerprintOf(Buffer.from(product.authority.rootPublicKey, 'base64'));
}

/** A root public key's fingerprint as the store keeps it (SHA-256, hex). */
export function rootFingerprintOf(publicKeyRaw: Uint8Array): string {
  return sha256(publicKeyRaw).toString('hex');
}

/** What a reset carries over from the old store: unchecked here (the new installation verifies the CRLs). */
export interface Salvaged {
  clientMachineId?: string;
  installedAt?: number;
  crls?: string[];
  revoked?: Record<string, string[]>;
  /** The trust records learned and the revocation list held (verified again under the new product). */
  trust?: StoredRecord['trust'];
}

/** A legacy single `crl` moved into the per-CA map, unless that CA already has one there. */
function migrateCrl(record: StoredRecord): StoredRecord {
  const { crl, ...rest } = record;
  if (crl === undefined || crl === null) return rest;
  try {
    const fp = tokenCaFingerprint(parseTokenCrl(crl).caCertificate);
    return fp in rest.crls ? rest : { ...rest, crls: { ...rest.crls, [fp]: crl } };
  } catch {
    return { ...rest, crls: { ...rest.crls, ['0'.repeat(64)]: crl } }; // unreadable: reported as an edited CRL
  }
}

/** The product configuration's fingerprint as the store keeps it. */
export function productFingerprint(product: ProductConfig): string {
  return sha256(Buffer.from(`volact-product-v1\0${JSON.stringify(product)}`)).toString('hex');
}
export type AttemptRecord = z.infer<typeof attemptSchema>;

/** The records loaded, by path, with the text each was parsed from (see ParsedFiles). */
const storedRecords = new ParsedFiles<StoredRecord>();

/** The licence store: one JSON file in the state directory (0700), itself 0600, replaced atomically. */
export class LicenceStore {
  constructor(readonly stateDir: string) {}

  get path(): string {
    return join(this.stateDir, STORE_FILE);
  }

  exists(): boolean {
    return existsSync(this.path);
  }

  /** The fix a damaged store's error names: a new store that keeps this machine's hardware binding. */
  #damaged(why: string): ClientError {
    return new ClientError(
      'LICENCE_STORE_DAMAGED',
      `${this.path} is damaged (${why}): make a new store with \`volact client reset --state-dir ${this.stateDir} --product PRODUCT.json\` (the hardware id is read again at every start; the client ID and install date are kept when readable), then activate again`,
    );
  }

  load(): StoredRecord {
    if (!this.exists()) {
      throw new ClientError(
        'CLIENT_NOT_INITIALISED',
        `no installation in ${this.stateDir}: run \`volact client init --state-dir ${this.stateDir} --product product.json\``,
      );
    }
    this.#tighten();
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      throw this.#damaged(`not JSON: ${(err as Error).message.slice(0, 120)}`);
    }
    // Read at every load; parsed and checked again whenever its text is not the last one's.
    return storedRecords.parse(this.path, text, (t) => this.#parse(t));
  }

  #parse(text: string): StoredRecord {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw this.#damaged(`not JSON: ${(err as Error).message.slice(0, 120)}`);
    }
    if ((raw as { format?: unknown } | null)?.format === 'volact-client/1') {
      throw new ClientError(
        'LICENCE_STORE_DAMAGED',
        `${this.path} has format 1, which kept a trusted copy of the product: make a format 2 store with \`volact client reset --state-dir ${this.stateDir} --product PRODUCT.json\` (the client ID and install date are kept), then activate again`,
      );
    }
    const parsed = storedRecordSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw this.#damaged(`${issue?.path.join('.') || '(top level)'}: ${issue?.message ?? 'invalid'}`);
    }
    return migrateCrl(parsed.data);
  }

  /**
   * What a damaged or old store still tells (for `reset`): the client ID (so the KMS host does
   * not count a second machine), the install date (a reset does not restart the initial grace),
   * the token CRLs (the new installation keeps those that verify under its product) and the
   * serials seen revoked (a reset never un-revokes a token).
   */
  salvage(): Salvaged {
    try {
      const raw = JSON.parse(readFileSync(this.path, 'utf8')) as Record<string, unknown>;
      const out: Salvaged = {};
      if (typeof raw.clientMachineId === 'string' && /^[0-9a-f-]{36}$/i.test(raw.clientMachineId)) {
        out.clientMachineId = raw.clientMachineId;
      }
      if (typeof raw.installedAt === 'number' && Number.isFinite(raw.installedAt)) out.installedAt = raw.installedAt;
      const crls: string[] = [];
      if (typeof raw.crl === 'string' && raw.crl.length <= MAX_CRL_CHARS) crls.push(raw.crl);
      if (raw.crls && typeof raw.crls === 'object') {
        for (const text of Object.values(raw.crls as Record<string, unknown>)) {
          if (typeof text === 'string' && text.length <= MAX_CRL_CHARS) crls.push(text);
        }
      }
      if (crls.length > 0) out.crls = crls;
      const revoked = z.record(caFingerprintField, z.array(z.unknown())).safeParse(raw.revoked);
      if (revoked.success) {
        const kept: Record<string, string[]> = {};
        for (const [ca, serials] of Object.entries(revoked.data)) {
          const valid = serials.filter((s): s is string => typeof s === 'string' && serialField.safeParse(s).success);
          if (valid.length > 0) kept[ca] = valid.slice(0, MAX_CRL_SERIALS);
        }
        out.revoked = kept;
      }
      const trust = storedRecordSchema.shape.trust.safeParse(raw.trust);
      if (trust.success) out.trust = trust.data;
      return out;
    } catch {
      return {};
    }
  }

  save(record: LicenceRecord | StoredRecord): void {
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    // The product configuration is never written: it is read from outside the store.
    const stored = { ...record, product: undefined };
    writeFileSync(`${this.path}.tmp`, JSON.stringify(stored, null, 2), { mode: 0o600 });
    chmodSync(`${this.path}.tmp`, 0o600); // a leftover .tmp keeps its old mode otherwise
    renameSync(`${this.path}.tmp`, this.path);
    this.#tighten();
  }

  /**
   * The directory 0700 and the file 0600 even when they were made looser (by hand, by an older
   * version): other local users must not read the installed key or the bind password. Best effort
   * on a store this process does not own (read-only reads still work).
   */
  #tighten(): void {
    for (const [path, mode] of [
      [this.stateDir, 0o700],
      [this.path, 0o600],
    ] as const) {
      try {
        if ((statSync(path).mode & 0o777) !== mode) chmodSync(path, mode);
      } catch {
        // not ours, or gone: nothing to tighten
      }
    }
  }
}
