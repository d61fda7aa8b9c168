import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import {
  CoreError,
  decodeHostCertificate,
  generateSigningKeyPair,
  lastFiveOf,
  parseKeyOfType,
  privateKeyToPem,
  signingKeyPairFromPem,
  type HostCertificate,
  type SigningKeyPair,
} from '@volact/core';
import { KmsHostError } from './errors.js';

const STATE_FILE = 'host.json';
const SIGNING_KEY_FILE = 'host-signing-key.pem';
export const WINDOW_DB_FILE = 'host.db';

const groupSchema = z.object({ id: z.string(), name: z.string(), threshold: z.number().int() });
const windowResetSchema = z.object({
  at: z.string(),
  code: z.enum(['HOST_STORE_CORRUPT', 'HOST_STORE_LOST']),
  message: z.string(),
  /** Where the damaged file was moved (null when there was nothing to keep). */
  movedTo: z.string().nullable(),
});
export type WindowReset = z.infer<typeof windowResetSchema>;
const base64 = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/);
const problemSchema = z.object({ at: z.string(), code: z.string().max(64), message: z.string().max(1000) });
/**
 * What the host learned from its authority (docs/trust.md "Revocation"): the latest revocation
 * list (never replaced by an older one), its host status, the transition records and delegation
 * certificates it hands to clients, and the roots as the authority last listed them.
 */
const trustSchema = z.object({
  /** The latest revocation list, base64 (a list of 65 536 entries is about 2.2 MB). */
  revocationList: base64(2_200_000).optional(),
  /** The host status (113 bytes), base64: stapled to every version-2 answer. */
  hostStatus: base64(200).optional(),
  transitions: z.array(base64(300)).max(8),
  delegations: z.array(base64(200)).max(16),
  /**
   * The roots the host trusts by itself (raw public keys, base64): the root that certified it,
   * pinned at its first trust check (its certificate verifies under it). Roots learned since come
   * only through transition records chained to these; the authority's `roots` never add one.
   */
  anchors: z.array(base64(64)).max(8).optional(),
  roots: z
    .array(
      z.object({
        publicKey: z.string().max(64),
        keyId: z.string().max(16),
        validFrom: z.string().max(40),
        validUntil: z.string().max(40).optional(),
        state: z.string().max(20),
      }),
    )
    .max(8),
  checkedAt: z.string().optional(),
  /** Set when the authority answered HOST_REVOKED: the time and the message. */
  revoked: problemSchema.optional(),
  /** The last check that failed (cleared by one that succeeds). */
  lastError: problemSchema.optional(),
});
export type HostTrustState = z.infer<typeof trustSchema>;
export const EMPTY_TRUST: HostTrustState = { transitions: [], delegations: [], roots: [] };
const stateSchema = z.object({
  format: z.literal('volact-host/1'),
  hostKey: z.string(),
  hardwareId: z.string(),
  installedAt: z.string(),
  activation: z
    .object({
      authorityUrl: z.string(),
      certificate: z.string(),
      activatedAt: z.string(),
      groups: z.array(groupSchema),
    })
    .optional(),
  /**
   * Set once host.db first held a window: a host.db missing or empty afterwards is a loss to
   * report, not a first start.
   */
  window: z.object({ createdAt: z.string() }).optional(),
  /** The last times the window was started empty because host.db was damaged or lost (newest last). */
  windowResets: z.array(windowResetSchema).optional(),
  /** Trust learned from the authority (online-certified hosts); absent before the first check. */
  trust: trustSchema.optional(),
  /**
   * Phone activation in progress: the groups the installation ID was made for, their root, and
   * the delegation certificates of their product config (the confirmation ID's key index names
   * one of those online keys).
   */
  phoneRequest: z
    .object({
      groups: z.array(groupSchema).min(1),
      rootPublicKey: z.string(),
      delegations: z.array(base64(200)).max(16).optional(),
    })
    .optional(),
});
export type HostStateFile = z.infer<typeof stateSchema>;
export type HostGroup = z.infer<typeof groupSchema>;

/**
 * The host's data directory: host.json (installed key — a secret, mode 0600 — hardware id and
 * the activation), host-signing-key.pem (the key pair the certificate certifies), host.db
 * (client-ID windows and statistics).
 */
export class HostState {
  private constructor(
    readonly dataDir: string,
    private file: HostStateFile,
  ) {}

  static exists(dataDir: string): boolean {
    return existsSync(join(dataDir, STATE_FILE));
  }

  /** Installs a host key (replacing any earlier one; a new key needs a new activation). */
  static installKey(dataDir: string, hostKey: string, hardwareId: string, now: number): HostState {
    let key;
    try {
      key = parseKeyOfType(hostKey, 'kms-host');
    } catch (err) {
      if (err instanceof CoreError) throw new KmsHostError('HOST_KEY_INVALID', err.message);
      throw err;
    }
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (!existsSync(join(dataDir, SIGNING_KEY_FILE))) {
      writeFileSync(join(dataDir, SIGNING_KEY_FILE), privateKeyToPem(generateSigningKeyPair().privateKey), {
        mode: 0o600,
      });
    }
    const state = new HostState(dataDir, {
      format: 'volact-host/1',
      hostKey: key.text,
      hardwareId,
      installedAt: new Date(now).toISOString(),
    });
    state.save();
    return state;
  }

  static open(dataDir: string): HostState {
    const path = join(dataDir, STATE_FILE);
    if (!existsSync(path)) {
      throw new KmsHostError(
        'HOST_NOT_INITIALISED',
        `no KMS host in ${dataDir}: run \`volact host install-key --data-dir ${dataDir} KEY\` first`,
      );
    }
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new KmsHostError(
        'HOST_CONFIG_INVALID',
        `${path} is not readable JSON (${(err as Error).message}); restore it or reinstall the host key`,
      );
    }
    const parsed = stateSchema.safeParse(raw);
    if (!parsed.success)
      throw new KmsHostError('HOST_CONFIG_INVALID', `${path} is damaged: ${parsed.error.issues[0]?.message}`);
    return new HostState(dataDir, parsed.data);
  }

  get hostKeyLast5(): string {
    return lastFiveOf(this.file.hostKey);
  }
  get hostKey(): string {
    return this.file.hostKey;
  }
  get hardwareId(): string {
    return this.file.hardwareId;
  }
  get activation(): HostStateFile['activation'] {
    return this.file.activation;
  }
  get windowDbPath(): string {
    return join(this.dataDir, WINDOW_DB_FILE);
  }

  /**
   * Replaces the host's key pair (host-signing-key.pem, written to a temporary name and renamed):
   * `host activate --new-key-pair` after the authority revoked the old one. host.json and host.db
   * (the window and its counts) are kept; the certificate of the old key pair is replaced by the
   * activation that follows.
   */
  replaceSigningKey(pair: SigningKeyPair): void {
    const path = join(this.dataDir, SIGNING_KEY_FILE);
    writeFileSync(`${path}.tmp`, privateKeyToPem(pair.privateKey), { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  }

  signingKey(): SigningKeyPair {
    return signingKeyPairFromPem(readFileSync(join(this.dataDir, SIGNING_KEY_FILE), 'utf8'));
  }

  certificate(): HostCertificate | undefined {
    const a = this.file.activation;
    return a ? decodeHostCertificate(Buffer.from(a.certificate, 'base64')) : undefined;
  }

  get phoneRequest(): HostStateFile['phoneRequest'] {
    return this.file.phoneRequest;
  }

  recordPhoneRequest(phoneRequest: NonNullable<HostStateFile['phoneRequest']>): void {
    this.file = { ...this.file, phoneRequest };
    this.save();
  }

  get windowCreatedAt(): string | undefined {
    return this.file.window?.createdAt;
  }

  get windowResets(): readonly WindowReset[] {
    return this.file.windowResets ?? [];
  }

  /** Records that host.db holds a window (once; see `window` above). */
  recordWindowCreated(at: string): void {
    if (this.file.window) return;
    this.file = { ...this.file, window: { createdAt: at } };
    this.save();
  }

  /** Records a window started empty over a damaged or lost host.db (the last 10 are kept). */
  recordWindowReset(reset: WindowReset): void {
    this.file = { ...this.file, windowResets: [...(this.file.windowResets ?? []), reset].slice(-10) };
    this.save();
  }

  /**
   * The data directory holds the host key and the client IDs: 0700, its files 0600, even when
   * they were made looser by hand or by an older version (run at every start).
   */
  securePermissions(): void {
    chmodSync(this.dataDir, 0o700);
    for (const name of readdirSync(this.dataDir)) {
      const path = join(this.dataDir, name);
      if (statSync(path).isFile()) chmodSync(path, 0o600);
    }
  }

  /** Reads host.json again (after another HostState of the same directory saved it). */
  reload(): void {
    this.file = HostState.open(this.dataDir).file;
  }

  get trust(): HostTrustState {
    return this.file.trust ?? EMPTY_TRUST;
  }

  /** Replaces the trust state (the caller merged it: see trust-sync.ts). */
  recordTrust(trust: HostTrustState): void {
    this.file = { ...this.file, trust };
    this.save();
  }

  recordActivation(activation: NonNullable<HostStateFile['activation']>): void {
    this.file = { ...this.file, activation };
    this.save();
  }

  private save(): void {
    const path = join(this.dataDir, STATE_FILE);
    writeFileSync(`${path}.tmp`, JSON.stringify(this.file, null, 2), { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  }
}
