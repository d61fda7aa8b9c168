import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import {
  LICENCE_STATES,
  MAX_CRL_CHARS,
  MAX_OEM_MARKER_CHARS,
  MAX_TOKEN_CHARS,
  productConfigSchema,
} from '@volact/core';
import { ClientError } from './errors.js';

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

export const licenceRecordSchema = z.object({
  format: z.literal('volact-client/1'),
  product: productConfigSchema,
  clientMachineId: z.string(),
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
        /** When the directory last confirmed it: the licence runs from here. */
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
  /** The token CA's revocation list carried in (token-based activation); checked at every read. */
  crl: z.string().max(MAX_CRL_CHARS).nullable().default(null),
  /** Which volume activation methods an attempt may use (the reference's /act-type). */
  actType: z.enum(ACT_TYPES).default('any'),
  lastAttempt: attemptSchema.nullable(),
  nextAttemptAt: z.number(),
  nonGenuineSince: z.number().nullable(),
  lastReportedState: z.enum(LICENCE_STATES).nullable(),
});

export type LicenceRecord = z.infer<typeof licenceRecordSchema>;
export type AttemptRecord = z.infer<typeof attemptSchema>;

/** The licence store: one JSON file in the state directory, replaced atomically. */
export class LicenceStore {
  constructor(readonly stateDir: string) {}

  get path(): string {
    return join(this.stateDir, STORE_FILE);
  }

  exists(): boolean {
    return existsSync(this.path);
  }

  load(): LicenceRecord {
    if (!this.exists()) {
      throw new ClientError(
        'CLIENT_NOT_INITIALISED',
        `no installation in ${this.stateDir}: run \`volact client init --state-dir ${this.stateDir} --product product.json\``,
      );
    }
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch (err) {
      throw new ClientError('LICENCE_TAMPERED', `${this.path} is not readable JSON (${(err as Error).message})`);
    }
    const parsed = licenceRecordSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ClientError('LICENCE_TAMPERED', `${this.path}: ${issue?.path.join('.')}: ${issue?.message}`);
    }
    return parsed.data;
  }

  save(record: LicenceRecord): void {
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(`${this.path}.tmp`, JSON.stringify(record, null, 2), { mode: 0o600 });
    renameSync(`${this.path}.tmp`, this.path);
  }
}
