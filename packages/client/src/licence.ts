import { z } from 'zod';
import { lastFiveOf, readHardwareFingerprint, systemClock, type Clock } from '@volact/core';
import { attemptMethods, nextWakeAt, retryAt, type AttemptIntervals } from './attempt-policy.js';
import { attemptAuthority, withAuthorityActivation, withConfirmation } from './authority-activation.js';
import { noMethodLeft, oemAttempt, tokenAttempt } from './carried-attempt.js';
import { attemptDirectory, withDirectoryActivation } from './directory-attempt.js';
import { discoverFor, ownDnsDomain, type DiscoveryResult } from './discovery.js';
import { runDoctor, type DoctorReport } from './doctor.js';
import { ClientError } from './errors.js';
import type { EvidenceContext, EvidenceMemo } from './evidence-context.js';
import {
  activationEvidence,
  checkActivationObject,
  currentInstallationId,
  learnStoredObjectTransitions,
} from './evidence.js';
import {
  acceptedProductRef,
  givenFor,
  newRecord,
  parseProduct,
  productOf,
  refuseOtherGroup,
  remember,
  type InitOptions,
  type OpenOptions,
} from './installation.js';
import { withInstalledKey, withoutInstalledKey } from './key-install.js';
import { attemptKms, cacheAfterAttempt, withKmsActivation } from './kms-attempt.js';
import {
  memberDomainOrNull,
  withActType,
  withDirectory,
  withDiscoveryDomains,
  withHostCaching,
  withKmsHost,
  withoutDirectory,
  type DirectoryMembership,
} from './licence-setters.js';
import { describeStatus, type ActivationCode, type ActivationOutcome, type LicenceStatus } from './licence-status.js';
import { LicenceStore, type ActType, type AttemptRecord, type LicenceRecord, type Salvaged } from './licence-store.js';
import { acceptCrl, withOemMarker, withToken, withoutRevokedToken } from './oem-token-install.js';
import { ClientTrust, MAX_RECORD_CHARS, MAX_REVOCATION_LIST_CHARS } from './trust.js';

export type { ActivationCode, ActivationOutcome, LicenceStatus } from './licence-status.js';
export type { DirectoryMembership } from './licence-setters.js';
export type { InitOptions, OpenOptions } from './installation.js';

type Listener = (status: LicenceStatus) => void;

/** The JSON of the authority's GET /v1/trust (fields a later authority adds are ignored). */
const trustFileSchema = z.object({
  roots: z
    .array(z.object({ publicKey: z.string().max(64) }))
    .max(8)
    .optional(),
  transitions: z.array(z.string().max(MAX_RECORD_CHARS)).max(64),
  delegations: z.array(z.string().max(MAX_RECORD_CHARS)).max(64),
  revocationList: z.string().max(MAX_REVOCATION_LIST_CHARS).optional(),
});

/** What `fail` records with a failed attempt: the host asked, and the host's intervals when one answered. */
type Fail = (
  code: ActivationCode,
  message: string,
  extra?: Partial<AttemptRecord>,
  intervals?: AttemptIntervals,
) => ActivationOutcome;

/** How many times one attempt starts again because the key was replaced while it waited. */
const MAX_KEY_RESTARTS = 2;

/**
 * An installation's licence: what an app embeds. Open it, read `status()`, subscribe with
 * `onChange`, call `activate()` or let `startSchedule()` renew in the background. The rules live
 * in plain modules (evidence, attempts, setters, installs, the attempt policy); this class holds
 * the state — the record, the machine as read at this start, the memo of signature checks — and
 * stores each change.
 */
export class Licence {
  readonly #store: LicenceStore;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  /** Whom this installation believes: built at this open, grows with what is learned (stored with every save). */
  readonly #trust: ClientTrust;
  /** The trust generation the memo's results were made under: a record learned since clears it. */
  #memoGeneration: number;
  readonly #listeners = new Set<Listener>();
  #record: LicenceRecord;
  /** Read at this start, never from the store. */
  readonly #hardwareId: string;
  #memberDomain: string | null;
  /** The signature checks already made (each evidence is verified once, the time rules at every read). */
  readonly #memo: EvidenceMemo = {};
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
    this.#trust = ClientTrust.of(record.product, record.trust);
    // A stored directory activation's object carries the transition records to the root that
    // signed it: learned now, so the first read's checks are not made under another generation.
    learnStoredObjectTransitions(record, this.#trust);
    this.#memoGeneration = this.#trust.generation;
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

  static #create(store: LicenceStore, options: InitOptions, kept: Salvaged): Licence {
    const product = parseProduct(options.product);
    const record = newRecord({
      stateDir: options.stateDir,
      product,
      productPath: options.productPath,
      hardwareId: options.hardwareId,
      now: (options.clock ?? systemClock).now(),
      kept,
    });
    store.save(record);
    const memberDomain = options.memberDomain === undefined ? undefined : memberDomainOrNull(options.memberDomain);
    remember(
      options.stateDir,
      {
        // With an installed location, every open reads the file there (and notices a swap).
        ...(record.productRef.path === null ? { product } : {}),
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

  /**
   * Opens an installation. The product, the hardware id and the directory membership come from
   * outside the store at every open (OpenOptions): an edit of licence.json alone never yields a
   * licence.
   */
  static open(options: OpenOptions): Licence {
    const store = new LicenceStore(options.stateDir);
    const stored = store.load();
    const given = givenFor(options.stateDir);
    const product = options.product !== undefined ? parseProduct(options.product) : productOf(options.stateDir, stored);
    refuseOtherGroup(options.stateDir, stored, product);
    const memberDomain =
      options.memberDomain !== undefined
        ? memberDomainOrNull(options.memberDomain)
        : given.memberDomain !== undefined
          ? given.memberDomain
          : ownDnsDomain();
    const hardwareId = options.hardwareId ?? given.hardwareId ?? readHardwareFingerprint();
    return new Licence(store, { ...stored, product }, options, { hardwareId, memberDomain });
  }

  /**
   * Accepts a product file (an update shipped by the publisher) as this installation's: same
   * group; its location and fingerprint are recorded. The activation is kept and re-checked
   * under the new configuration.
   */
  static setProduct(options: { stateDir: string; product: unknown; productPath: string; clock?: Clock }): Licence {
    const store = new LicenceStore(options.stateDir);
    const stored = store.load();
    const product = parseProduct(options.product);
    const productRef = acceptedProductRef(options.stateDir, stored, product, options.productPath);
    store.save({ ...stored, productRef });
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

  /** What the evidence checks read: the record (this one, or one about to be stored), the machine, now. */
  #context(record = this.#record, now = this.#clock.now()): EvidenceContext {
    if (this.#memoGeneration !== this.#trust.generation) {
      // A root, delegation or revocation list learned since: every check is made again.
      for (const slot of Object.keys(this.#memo) as (keyof EvidenceMemo)[]) delete this.#memo[slot];
      this.#memoGeneration = this.#trust.generation;
    }
    return {
      record,
      trust: this.#trust,
      hardwareId: this.#hardwareId,
      memberDomain: this.#memberDomain,
      now,
      memo: this.#memo,
    };
  }

  /** Walks every step an activation takes and says which fails, with the fix. */
  doctor(): Promise<DoctorReport> {
    const status = this.status();
    return runDoctor({
      record: this.#record,
      trust: this.#trust,
      clock: this.#clock,
      timeoutMs: Math.min(this.#timeoutMs, 3_000),
      status: { state: status.state, method: status.method },
      discover: () => this.discover(),
      checkObject: (text) => checkActivationObject(this.#context(), text),
    });
  }

  /** Uses these DNS domains for discovery (none: this machine's own domain). */
  setDiscoveryDomains(domains: readonly string[], dnsServer?: string | null): void {
    this.#update(withDiscoveryDomains(this.#record, domains, dnsServer, this.#clock.now()));
  }

  /** Host caching: on, the host found in DNS is used for renewals until it stops answering. */
  setHostCaching(on: boolean): void {
    this.#update(withHostCaching(this.#record, on));
  }

  /** Makes this installation a member of a directory domain (directory-based activation). */
  joinDomain(membership: DirectoryMembership): void {
    const { record, domain } = withDirectory(this.#record, membership, this.#clock.now());
    // The caller configured this machine as a member: later opens in this process hold to it.
    remember(this.#store.stateDir, { memberDomain: domain });
    this.#memberDomain = domain;
    this.#update(record);
  }

  /** Leaves the directory domain: a directory activation no longer applies. */
  leaveDomain(): void {
    this.#update(withoutDirectory(this.#record, this.#clock.now()));
  }

  /** The installation ID of this machine and its installed MAK, in digit groups. */
  installationId(): string {
    const iid = currentInstallationId(this.#context());
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
    this.#update(withConfirmation(this.#context(), text));
    return this.status();
  }

  status(): LicenceStatus {
    const now = this.#clock.now();
    const dropped = withoutRevokedToken(this.#context(this.#record, now));
    if (dropped) {
      this.#record = dropped;
      this.#saveQuietly();
    }
    const evidence = activationEvidence(this.#context(this.#record, now));
    if (!evidence.valid && this.#record.nonGenuineSince === null) {
      // First sight of an altered store: the non-genuine grace period starts now.
      this.#record = { ...this.#record, nonGenuineSince: now };
      this.#saveQuietly();
    }
    return describeStatus(this.#context(this.#record, now), evidence);
  }

  /** Sets (or with null clears) the KMS host to use instead of discovery. */
  setKmsHost(address: string | null): void {
    this.#update(withKmsHost(this.#record, address, this.#clock.now()));
  }

  /**
   * Installs a product key, replacing the one installed (the reference's /ipk): the group's GVLK
   * for KMS activation, a MAK or a retail key. Another key means the activation made with the old one no
   * longer applies.
   */
  installKey(text: string): void {
    const record = withInstalledKey(this.#record, text, this.#clock.now());
    if (record) this.#update(record);
  }

  /**
   * Uninstalls the product key (the reference's /upk) and the activation that came with it: the
   * state becomes unlicensed until a key is installed again, which does not restart the initial
   * grace. Returns the last five characters of the key removed, or null when none was installed.
   */
  uninstallKey(): string | null {
    const removed = this.#record.installedKey;
    const record = withoutInstalledKey(this.#record, this.#clock.now());
    if (record) this.#update(record);
    return removed ? lastFiveOf(removed.text) : null;
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
    this.#attempting ??= this.#attempt(options, 0).finally(() => (this.#attempting = undefined));
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
        const next = nextWakeAt(this.#record.nextAttemptAt, ends ? Date.parse(ends) : null);
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

  /**
   * OEM activation: installs the marker the manufacturer made for this machine at the factory
   * (\`volact oem mark\`). Checked here with no network; refused, changing nothing, when it does
   * not verify for this product and this machine's hardware. It replaces any other activation
   * (and a MAK: the group's GVLK is installed again), and holds under every act-type.
   */
  installOemMarker(text: string): LicenceStatus {
    this.#update(withOemMarker(this.#context(), text));
    return this.status();
  }

  /**
   * Token-based activation: installs a token of the organisation's CA (and, optionally, the
   * CA's CRL with it). Checked now, with no network: chain to the pinned root, group, this
   * machine's hardware, validity, the CRL. Refused, changing nothing, when a check fails or
   * when act-type is kms or directory.
   */
  installToken(text: string, crlText?: string): LicenceStatus {
    const result = withToken(this.#context(), text, crlText);
    if (!result.ok) {
      // A CRL that revokes the token is kept (what it revokes stays revoked); otherwise nothing changes.
      if (result.keep) this.#update(result.keep);
      throw result.error;
    }
    this.#update(result.record);
    return this.status();
  }

  /**
   * Installs a CA's revocation list: a token on it stops licensing at once. One CRL is kept per
   * CA (by its public key's fingerprint); one older than the installed CRL of the same CA is
   * refused (CRL_OUTDATED), and the serials it revokes are recorded for good: neither an old
   * list nor another CA's can un-revoke a token.
   */
  installCrl(text: string): LicenceStatus {
    const now = this.#clock.now();
    const revocations = acceptCrl(this.#context(), text);
    this.#record = { ...this.#record, ...revocations, nextAttemptAt: now };
    this.#update(withoutRevokedToken(this.#context(this.#record, this.#clock.now())) ?? this.#record);
    return this.status();
  }

  /**
   * Learns the authority's trust bundle (the JSON of its GET /v1/trust, carried in): each
   * transition record and delegation that verifies under a root already trusted, and its
   * revocation list when it is newer than the one held (an older one is kept out, not an
   * error here). The roots it lists are not trusted for being listed: only through a
   * transition. Refused (TRUST_FILE_INVALID) when it is not such a file, or when it lists
   * roots of which none is trusted after learning (another authority's).
   */
  installTrust(json: unknown): {
    learned: { transitions: number; delegations: number };
    revocationListVersion: number | null;
    revocationListKept: 'installed' | 'older' | 'none';
    status: LicenceStatus;
  } {
    const parsed = trustFileSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ClientError(
        'TRUST_FILE_INVALID',
        `not the JSON of the authority's GET /v1/trust (${issue?.path.join('.') || 'top level'}: ${issue?.message ?? 'invalid'})`,
      );
    }
    const file = parsed.data;
    const before = this.#trust.store.learned();
    const records = {
      transitions: file.transitions.map((t) => Buffer.from(t, 'base64')),
      delegations: file.delegations.map((d) => Buffer.from(d, 'base64')),
    };
    // Checked on a copy first: a refused file leaves nothing learned, in memory or in the store.
    const trial = ClientTrust.of(this.#record.product, this.#trust.stored(this.#record.trust));
    trial.learn(records);
    const listed = (file.roots ?? []).map((r) => Buffer.from(r.publicKey, 'base64'));
    if (listed.length > 0 && !listed.some((k) => trial.trustsRoot(k))) {
      throw new ClientError(
        'TRUST_FILE_INVALID',
        "none of the roots this trust bundle lists is trusted by this installation, and no transition record in it connects them: it is another authority's (or install the publisher's current product config with `volact client set-product`)",
      );
    }
    this.#trust.learn(records);
    let kept: 'installed' | 'older' | 'none' = 'none';
    if (file.revocationList !== undefined) {
      try {
        this.#trust.acceptRevocationList(Buffer.from(file.revocationList, 'base64'));
        kept = 'installed';
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'REVOCATION_LIST_STALE') throw err;
        kept = 'older';
      }
    }
    const after = this.#trust.store.learned();
    this.#update({ ...this.#record, nextAttemptAt: Math.min(this.#record.nextAttemptAt, this.#clock.now()) });
    return {
      learned: {
        transitions: after.transitions.length - before.transitions.length,
        delegations: after.delegations.filter((d) => !before.delegations.includes(d)).length,
      },
      revocationListVersion: this.#trust.revocations?.listVersion ?? null,
      revocationListKept: kept,
      status: this.status(),
    };
  }

  /**
   * Installs the publisher's revocation list (binary, from `volact authority revocations
   * --out`): it must verify under a trusted root and be no older than the one held
   * (REVOCATION_LIST_STALE). KMS hosts, OEM manufacturers and token CAs on it are no longer
   * accepted (evidence a KMS host gave before stays until its own end).
   */
  installRevocations(bytes: Uint8Array): LicenceStatus {
    this.#trust.acceptRevocationList(bytes);
    this.#update(this.#record);
    return this.status();
  }

  /**
   * The reference's /act-type: which methods an activation attempt may use. any (default):
   * OEM, token, directory, then KMS; directory: the directory only; kms: KMS hosts only (a
   * directory membership is ignored, a token is not installed); token: the token only (a KMS
   * host is refused). An installed OEM marker holds under every type.
   */
  setActType(type: ActType): LicenceStatus {
    this.#update(withActType(this.#record, type, this.#clock.now()));
    return this.status();
  }

  /** Looks up KMS hosts in DNS (the configured domains, else this machine's), in the order to try. */
  discover(): Promise<DiscoveryResult> {
    return discoverFor(this.#record.discovery, Math.min(this.#timeoutMs, 3_000), this.#random);
  }

  /** Tries the methods the attempt policy gives for the act-type and key, in order; the first that licenses ends it. */
  async #attempt(options: { authority?: string }, restarts: number): Promise<ActivationOutcome> {
    const before = this.status();
    const now = this.#clock.now();
    const r = this.#record;
    const fail: Fail = (code, message, extra = {}, intervals = r.intervals) => {
      const retry = retryAt(now, before.state, intervals);
      this.#update({
        ...this.#record,
        intervals,
        lastAttempt: { at: now, ok: false, code, message, ...extra },
        // A setting changed during the wait asked for an attempt (set-host: "now"): not later.
        nextAttemptAt:
          this.#record.nextAttemptAt !== r.nextAttemptAt ? Math.min(retry, this.#record.nextAttemptAt) : retry,
      });
      return { ok: false, code, message, status: this.status() };
    };
    const licensed = (record: LicenceRecord, message: (status: LicenceStatus) => string): ActivationOutcome => {
      this.#update(record);
      const status = this.status();
      return { ok: true, code: null, message: message(status), status };
    };
    if (!r.installedKey)
      return fail('KEY_INVALID', 'no product key is installed; install the GVLK with `volact client install-key`');
    // Settings changed while a host, the authority or the directory was asked are kept: each
    // answer is merged into the record as it is once it arrives. But an answer obtained for a key
    // that install-key or uninstall-key replaced meanwhile is not for this installation (a
    // confirmation is for the old key's installation ID; a KMS or directory licence goes with the
    // key it was made with): it is dropped, and the attempt starts again with the key installed now.
    const attemptKey = r.installedKey.text;
    const keyReplaced = () => this.#record.installedKey?.text !== attemptKey;
    // Bounded: keys replaced again and again (two callers alternating) end the attempt, with
    // nothing recorded for any of them; the setters have made the next attempt due now.
    const again = (): Promise<ActivationOutcome> =>
      restarts < MAX_KEY_RESTARTS
        ? this.#attempt(options, restarts + 1)
        : Promise.resolve({
            ok: false,
            code: 'KEY_INVALID',
            message:
              'the product key was replaced during the attempt, again and again: nothing was recorded; activate again',
            status: this.status(),
          });
    const tried: Parameters<typeof noMethodLeft>[1] = { token: null, directory: null };
    for (const method of attemptMethods(r.actType, r.installedKey.type)) {
      switch (method) {
        case 'oem': {
          const held = oemAttempt(this.#context(r, now), before);
          if (held) return licensed(held.record, () => held.message);
          break;
        }
        case 'token': {
          const check = tokenAttempt(this.#context(r, now));
          if (check?.ok) return licensed(check.record, () => check.message);
          // act-type any: an expired or revoked token lets the other methods try.
          if (check) tried.token = check;
          break;
        }
        case 'authority': {
          const result = await attemptAuthority(this.#context(r, now), before, options.authority, this.#timeoutMs);
          if (keyReplaced()) return again();
          return result.ok
            ? licensed(withAuthorityActivation(this.#record, result, now), () => result.message)
            : fail(result.code, result.message);
        }
        case 'directory': {
          // A member of a directory domain activates from its activation object first; an
          // unreadable directory or no valid object falls back to KMS (act-type any).
          if (!r.directory) break;
          const result = await attemptDirectory(this.#context(r, now), r.directory, this.#timeoutMs);
          if (keyReplaced()) return again();
          if (result.ok) {
            return licensed(
              withDirectoryActivation(this.#record, result, now),
              (s) => `licensed until ${s.expiresAt} (directory)`,
            );
          }
          tried.directory = result;
          break;
        }
        case 'kms':
          return this.#attemptKms(before, now, fail, tried.directory, () => (keyReplaced() ? again() : null));
      }
    }
    const left = noMethodLeft(r, tried);
    return fail(left.code, left.message);
  }

  async #attemptKms(
    before: LicenceStatus,
    now: number,
    fail: Fail,
    directoryFailure: { code: ActivationCode; message: string } | null,
    /** The attempt again when the key was replaced while the hosts were asked (see #attempt); else null. */
    againIfKeyReplaced: () => Promise<ActivationOutcome> | null,
  ): Promise<ActivationOutcome> {
    const asked = this.#record.discovery;
    const result = await attemptKms({
      record: this.#record,
      before: before.state,
      now,
      clock: this.#clock,
      trust: this.#trust,
      timeoutMs: this.#timeoutMs,
      discover: () => this.discover(),
      directoryFailure,
    });
    const again = againIfKeyReplaced();
    if (again) return again;
    const cached = cacheAfterAttempt(asked, this.#record.discovery, result.cached);
    if (!result.ok) {
      this.#record = { ...this.#record, discovery: { ...this.#record.discovery, cached } };
      return fail(result.code, result.message, result.extra, result.intervals);
    }
    this.#update(withKmsActivation(this.#record, { ...result, cached }, now));
    const status = this.status();
    return {
      ok: true,
      code: null,
      message: `licensed until ${status.expiresAt} (count ${result.count} of ${result.threshold})`,
      status,
    };
  }

  #update(record: LicenceRecord): void {
    this.#record = this.#withTrust(record);
    this.#store.save(this.#record);
    this.#notifyIfChanged();
  }

  /** The record with what this installation learned (records kept before are never dropped). */
  #withTrust(record: LicenceRecord): LicenceRecord {
    return { ...record, trust: this.#trust.stored(record.trust, this.#memo.signature?.verified?.anchor) };
  }

  /** Reading the state must work on a read-only store: these writes are best effort. */
  #saveQuietly(): void {
    this.#record = this.#withTrust(this.#record);
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
