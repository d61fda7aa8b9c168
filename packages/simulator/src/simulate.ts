import { AuthorityError } from '@volact/authority';
import {
  ClientTrust,
  DEFAULT_INTERVALS,
  EMPTY_TRUST,
  VerificationMemo,
  confirmationSigner,
  attemptMethods,
  deriveState,
  hostIntervals,
  hostsBeforeDiscovery,
  hostsFromDiscovery,
  nextWakeAt,
  orderSrv,
  renewalAt,
  retryAt,
  type AttemptIntervals,
  type AttemptMethod,
} from '@volact/client';
import {
  DAY,
  INTERVAL_BOUNDS,
  LICENCE_STATES,
  MINUTE,
  ManualClock,
  encodeActivationRequest,
  guidToBytes,
  licenceStateCode,
  makeInstallationId,
  parseConfirmationId,
  parseKey,
  type InstallationId,
  type LicenceState,
} from '@volact/core';
import { setUpFleet, type Fleet, type SimHost } from './fleet.js';
import { Random } from './random.js';
import type { Scenario } from './scenario.js';
import type { DayRow, SimEvent, SimulationOptions, SimulationResult } from './results.js';

export type { DayRow, Progress, SimEvent, SimulationOptions, SimulationResult, SimulationSummary } from './results.js';
import { VERIFIED, type VerifyOutcome } from './verify-batch.js';
import { VerifyPool, workersAvailable, type VerifyItem } from './verify-pool.js';
import { WakeQueue } from './wake-queue.js';

/** Day 0 starts here (virtual time). */
export const SIMULATION_START = Date.UTC(2026, 0, 1);
/**
 * The simulation advances in slices of this length: the clamp floor of every interval a host
 * gives (INTERVAL_BOUNDS), so no client attempts twice in one slice and the responses of a
 * slice can be signed in one batch per host and verified in parallel.
 */
export const SLICE = INTERVAL_BOUNDS.activationInterval.min;
const SLICES_PER_DAY = DAY / SLICE;

type LicenceRecord = Parameters<typeof deriveState>[0];
/** What `deriveState` reads of a licence record: the rest of the store is not modelled. */
type RecordView = Pick<LicenceRecord, 'product' | 'installedKey' | 'activation' | 'nonGenuineSince' | 'installedAt'>;

interface SimClient {
  readonly index: number;
  readonly mak: boolean;
  readonly hardwareId: string;
  readonly joinAt: number;
  cmid: Buffer;
  joined: boolean;
  record: RecordView;
  /** Host time of the verified KMS response that granted the licence (what `Licence` derives it from). */
  hostTime: number | null;
  permanent: boolean;
  iid: InstallationId | null;
  /** Index of the cached host (found in DNS, answered with a verified response), or -1. */
  cached: number;
  nextAttemptAt: number;
  /** The intervals the last host's answer set (the client's defaults until one answers). */
  intervals: AttemptIntervals;
  state: LicenceState | null;
  stateEndsAt: number | null;
}

interface PendingExchange {
  readonly client: SimClient;
  readonly at: number;
  readonly before: LicenceState;
  readonly nonce: Buffer;
  readonly host: number;
  readonly via: 'manual' | 'cache' | 'dns';
  payload: Buffer | null;
}

interface Batch {
  readonly pending: readonly PendingExchange[];
  readonly pendingMak: readonly PendingMak[];
  readonly outcome: Promise<VerifyOutcome> | null;
}

interface PendingMak {
  readonly client: SimClient;
  readonly at: number;
  readonly before: LicenceState;
  readonly outcome: Promise<{ confirmationId: string } | { code: string }>;
}

/** A simulated client is a new installation: act-type any. */
const ACT_TYPE = 'any';
/** The methods the simulated fleet offers (no OEM markers, tokens or directory are modelled). */
const MODELLED: readonly AttemptMethod[] = ['authority', 'kms'];
const emptyCounts = (): Record<LicenceState, number> =>
  Object.fromEntries(LICENCE_STATES.map((s) => [s, 0])) as Record<LicenceState, number>;

/**
 * Runs a scenario: a discrete-event simulation over a virtual clock, on the real code — the
 * authority certifies the hosts and activates MAKs, each host's `KmsService` decodes every
 * request, counts the client in its client-ID window and builds the response its
 * `BatchSigner` signs, and each client builds its request with the wire codec, checks the
 * answer with the SDK's `verifyKmsResponse` and derives its licence state with `deriveState`;
 * which method it uses, which hosts it asks in what order, its intervals and its schedule are
 * the SDK's attempt policy (attempt-policy.ts), the functions `Licence` runs. What is not real: sockets (requests are handed over in-process), the DNS server (the SRV
 * records are ordered with the SDK's `orderSrv`), and the licence store on disk.
 */
export async function simulate(scenario: Scenario, options: SimulationOptions = {}): Promise<SimulationResult> {
  const started = performance.now();
  const clock = new ManualClock(SIMULATION_START);
  const fleet = await setUpFleet(scenario, clock);
  const workers = options.workers !== undefined && options.workers > 0 && workersAvailable() ? options.workers : 0;
  const groupId = guidToBytes(fleet.product.group.id);
  const maxClockSkew = fleet.product.policy.maxClockSkewMinutes * MINUTE;
  // Every client trusts what its product config's bundle says (the fleet's answers carry no new root).
  const trustMaterial = { product: fleet.product, stored: EMPTY_TRUST };
  const trust = ClientTrust.of(fleet.product, EMPTY_TRUST);
  const pool = new VerifyPool(
    { trust, memo: new VerificationMemo(trust), trustMaterial, groupId, maxClockSkew },
    workers,
  );
  try {
    return await new Simulation(scenario, fleet, clock, pool, options, started).run();
  } finally {
    await pool.close();
    await fleet.close();
  }
}

class Simulation {
  readonly #rng: Random;
  readonly #clients: SimClient[] = [];
  readonly #queue: WakeQueue;
  readonly #counts = emptyCounts();
  readonly #events: SimEvent[] = [];
  readonly #threshold: number;
  readonly #groupId: Buffer;
  #pending: PendingExchange[] = [];
  #pendingMak: PendingMak[] = [];
  #dnsUp = true;
  #joined = 0;
  #wakes = 0;
  #attempts = 0;
  #failures = 0;
  #exchanges = 0;
  #makActivations = 0;
  #leftLicensed = new Set<number>();
  #peakRss = 0;

  constructor(
    readonly scenario: Scenario,
    readonly fleet: Fleet,
    readonly clock: ManualClock,
    readonly pool: VerifyPool,
    readonly options: SimulationOptions,
    readonly started: number,
  ) {
    this.#rng = new Random(scenario.seed);
    this.#threshold = fleet.product.group.threshold;
    this.#groupId = guidToBytes(fleet.product.group.id);
    const n = scenario.clients.count;
    this.#queue = new WakeQueue(n);
    const joinSpan = scenario.clients.joinOverDays * DAY;
    const makClients = scenario.mak?.clients ?? 0;
    for (let i = 0; i < n; i++) {
      const mak = i < makClients && fleet.mak !== null;
      const joinAt = SIMULATION_START + Math.floor((i * joinSpan) / n);
      const client: SimClient = {
        index: i,
        mak,
        hardwareId: `sim-machine-${i + 1}`,
        joinAt,
        cmid: this.#rng.fill16(Buffer.allocUnsafe(16)),
        joined: false,
        record: {
          product: fleet.product,
          installedKey: mak ? { type: 'mak', text: fleet.mak } : { type: 'gvlk', text: fleet.product.gvlk },
          activation: null,
          nonGenuineSince: null,
          installedAt: joinAt,
        },
        hostTime: null,
        permanent: false,
        iid: null,
        cached: -1,
        nextAttemptAt: joinAt,
        intervals: DEFAULT_INTERVALS,
        state: null,
        stateEndsAt: null,
      };
      this.#clients.push(client);
      this.#queue.set(i, joinAt);
    }
  }

  async run(): Promise<SimulationResult> {
    const s = this.scenario;
    const rows: DayRow[] = [];
    const hosts = this.fleet.hosts;
    let lastRequests = hosts.map((h) => h.service.stats.totalRequests);
    let firstDayAllLicensed: number | null = null;
    for (let day = 0; day < s.days; day++) {
      const dayStart = SIMULATION_START + day * DAY;
      this.#applyOutages(day);
      const reimages = this.#reimagesOf(day);
      const attemptsBefore = this.#attempts;
      const failuresBefore = this.#failures;
      // One slice in flight: its answers are verified (on the workers) while the next slice's
      // events run; its clients' next wake-ups are 2 hours or more away, so none is missed.
      let inFlight: Batch | null = null;
      for (let slice = 0; slice < SLICES_PER_DAY; slice++) {
        const sliceStart = dayStart + slice * SLICE;
        const sliceEnd = sliceStart + SLICE;
        await this.fleet.renewStatuses(this.clock.now());
        const due = reimages.get(slice);
        if (due) {
          if (inFlight) await this.#apply(inFlight);
          inFlight = null;
          for (const c of due) this.#reimage(c, sliceStart);
        }
        this.#runUntil(sliceEnd);
        const batch = this.#dispatch();
        if (inFlight) await this.#apply(inFlight);
        inFlight = batch;
      }
      // The day's counts are taken once every answer of the day is in, and every state that ended that day has.
      const dayEnd = dayStart + DAY;
      while (inFlight || this.#queue.peekTime() < dayEnd) {
        if (inFlight) await this.#apply(inFlight);
        this.#runUntil(dayEnd);
        inFlight = this.#dispatch();
      }
      const requests = hosts.map((h, i) => h.service.stats.totalRequests - (lastRequests[i] as number));
      lastRequests = hosts.map((h) => h.service.stats.totalRequests);
      const states = { ...this.#counts };
      rows.push({
        day,
        date: new Date(dayStart).toISOString().slice(0, 10),
        joined: this.#joined,
        states,
        hostRequests: requests,
        requests: requests.reduce((a, b) => a + b, 0),
        attempts: this.#attempts - attemptsBefore,
        failures: this.#failures - failuresBefore,
        activeHosts: hosts.filter((h) => h.up).length,
        dnsUp: this.#dnsUp,
      });
      if (firstDayAllLicensed === null && states.licensed === this.scenario.clients.count) firstDayAllLicensed = day;
      if (day % 8 === 0) this.#peakRss = Math.max(this.#peakRss, process.memoryUsage.rss());
      this.options.onProgress?.({
        day: day + 1,
        days: s.days,
        joined: this.#joined,
        clients: s.clients.count,
        elapsedMs: performance.now() - this.started,
      });
    }
    this.#peakRss = Math.max(this.#peakRss, process.memoryUsage.rss());
    return {
      scenario: s,
      rows,
      hostNames: hosts.map((h) => h.name),
      events: this.#events,
      summary: {
        clients: s.clients.count,
        hosts: hosts.map((h) => h.name),
        days: s.days,
        seed: s.seed,
        wallMs: Math.round(performance.now() - this.started),
        workers: this.pool.workers,
        events: this.#wakes,
        attempts: this.#attempts,
        failures: this.#failures,
        exchanges: this.#exchanges,
        signatures: hosts.reduce((sum, h) => sum + h.signer.signatures, 0),
        makActivations: this.#makActivations,
        final: { ...this.#counts },
        clientsLeftLicensed: this.#leftLicensed.size,
        firstDayAllLicensed,
        peakRssBytes: this.#peakRss,
      },
    };
  }

  /** Outages start and end at day boundaries: host N answers nothing, or DNS answers no SRV look-up. */
  #applyOutages(day: number): void {
    const within = (o: { fromDay: number; days: number }) => day >= o.fromDay && day < o.fromDay + o.days;
    this.fleet.hosts.forEach((h, i) => {
      h.up = !this.scenario.outages.some((o) => o.host === i + 1 && within(o));
    });
    this.#dnsUp = !this.scenario.dnsOutages.some(within);
  }

  /** The machines re-imaged on `day`, by slice of the day (drawn from those that have joined). */
  #reimagesOf(day: number): Map<number, SimClient[]> {
    const out = new Map<number, SimClient[]>();
    const dayStart = SIMULATION_START + day * DAY;
    const eligible = this.#clients.filter((c) => c.joinAt < dayStart);
    for (const r of this.scenario.reimages) {
      if (r.day !== day) continue;
      for (let k = 0; k < Math.min(r.count, eligible.length); k++) {
        // A partial Fisher-Yates draw: distinct machines.
        const j = k + this.#rng.below(eligible.length - k);
        const c = eligible[j] as SimClient;
        eligible[j] = eligible[k] as SimClient;
        eligible[k] = c;
        const slice = this.#rng.below(SLICES_PER_DAY);
        out.set(slice, [...(out.get(slice) ?? []), c]);
      }
    }
    return out;
  }

  /**
   * A re-imaged machine: the image carries no licence store, so a new client machine ID, no
   * activation, no cached host, initial grace from now (its old ID lingers in the hosts'
   * windows until it expires, as in the reference). A MAK machine keeps its hardware, so its
   * installation ID, so its activation is free again.
   */
  #reimage(c: SimClient, at: number): void {
    if (!c.joined) return;
    c.cmid = this.#rng.fill16(Buffer.allocUnsafe(16));
    c.record = { ...c.record, activation: null, installedAt: at };
    c.hostTime = null;
    c.permanent = false;
    c.cached = -1;
    c.nextAttemptAt = at;
    c.intervals = DEFAULT_INTERVALS;
    if (this.options.eventLog) this.#events.push({ kind: 'reimaged', client: c.index, at });
    this.#settle(c, at, true);
    this.#queue.set(c.index, at);
  }

  #derive(c: SimClient, at: number) {
    return deriveState(c.record as LicenceRecord, at, c.hostTime, true, c.permanent);
  }

  /** Brings the client's state up to `at`: each state that ended by itself ends at its exact time. */
  #settle(c: SimClient, at: number, reimaged = false): void {
    while (c.stateEndsAt !== null && c.stateEndsAt <= at) {
      const end = c.stateEndsAt;
      this.#enter(c, this.#derive(c, end), end, false);
    }
    this.#enter(c, this.#derive(c, at), at, reimaged);
  }

  #enter(c: SimClient, d: { state: LicenceState; stateEndsAt: number | null }, at: number, reimaged: boolean): void {
    const from = c.state;
    c.stateEndsAt = d.stateEndsAt;
    if (from === d.state) return;
    if (from !== null) this.#counts[from]--;
    this.#counts[d.state]++;
    c.state = d.state;
    if (from === 'licensed' && !reimaged) this.#leftLicensed.add(c.index);
    if (this.options.eventLog) this.#events.push({ kind: 'state', client: c.index, at, from, to: d.state });
  }

  /** As `Licence.startSchedule` wakes: at the next attempt or when the current state ends. */
  #schedule(c: SimClient): void {
    this.#queue.set(c.index, nextWakeAt(c.nextAttemptAt, c.stateEndsAt));
  }

  #wake(c: SimClient, at: number): void {
    this.#wakes++;
    if (!c.joined) {
      c.joined = true;
      this.#joined++;
    }
    this.#settle(c, at);
    if (at >= c.nextAttemptAt) this.#attempt(c, at);
    else this.#schedule(c);
  }

  /** A failed attempt, as `Licence` records it: licensed clients wait the renewal interval, others retry sooner. */
  #fail(c: SimClient, at: number, before: LicenceState): void {
    this.#failures++;
    c.nextAttemptAt = retryAt(at, before, c.intervals);
    this.#settle(c, at);
    this.#schedule(c);
  }

  #attempt(c: SimClient, at: number): void {
    this.#attempts++;
    const before = c.state as LicenceState;
    // The client's method order for its key: the first method the fleet models.
    const method = attemptMethods(ACT_TYPE, c.mak ? 'mak' : 'gvlk').find((m) => MODELLED.includes(m));
    if (method === 'authority') {
      this.#attemptMak(c, at, before);
      return;
    }
    const hosts = this.fleet.hosts;
    // Candidates in the client's order (attempt policy): the cached host, then DNS (SRV order),
    // each host once; no host is set by hand.
    const caching = this.scenario.caching;
    const cached = c.cached >= 0 ? c.cached : null;
    const plan = hostsBeforeDiscovery({ manual: null, cached, caching });
    const candidates: { host: number; via: 'manual' | 'cache' | 'dns' }[] = plan.first.map((f) => ({ ...f }));
    let looked = false;
    for (let k = 0; ; k++) {
      if (k === candidates.length) {
        if (looked || !plan.lookUp || !this.#dnsUp) break;
        looked = true;
        const found = orderSrv(
          hosts.map((h) => h.srv),
          () => this.#rng.next(),
        ).map((r) => r.index);
        for (const host of hostsFromDiscovery(found, { cached, caching }, (a, b) => a === b)) {
          candidates.push({ host, via: 'dns' });
        }
        if (k === candidates.length) break;
      }
      const candidate = candidates[k] as { host: number; via: 'manual' | 'cache' | 'dns' };
      const host = hosts[candidate.host] as SimHost;
      if (!host.up) {
        // KMS_UNREACHABLE: the next candidate is asked; a cached host that stopped answering is forgotten.
        if (candidate.via === 'cache') c.cached = -1;
        continue;
      }
      const nonce = this.#rng.fill16(Buffer.allocUnsafe(16));
      const request = encodeActivationRequest({
        licenceState: licenceStateCode(before),
        groupId: this.#groupId,
        clientId: c.cmid,
        nonce,
        clientTime: at,
      });
      this.clock.set(at);
      const decision = host.service.handle(request);
      if (decision.kind === 'refused') {
        // KMS_HOST_ERROR: as an answer that does not verify, the next candidate is asked.
        if (candidate.via === 'cache') c.cached = -1;
        continue;
      }
      const exchange: PendingExchange = {
        client: c,
        at,
        before,
        nonce,
        host: candidate.host,
        via: candidate.via,
        payload: null,
      };
      host.signer.enqueue(decision.body, (framed) => (exchange.payload = framed.subarray(4)));
      this.#pending.push(exchange);
      return;
    }
    // NO_KMS_HOST (DNS gave nothing) or the last host's failure.
    this.#fail(c, at, before);
  }

  #attemptMak(c: SimClient, at: number, before: LicenceState): void {
    if (c.permanent) {
      // Activated for good: nothing to renew, no one is contacted.
      c.nextAttemptAt = renewalAt(at, c.intervals);
      this.#settle(c, at);
      this.#schedule(c);
      return;
    }
    c.iid ??= makeInstallationId({
      kind: 'installation',
      key: parseKey(this.fleet.mak as string),
      hardwareId: c.hardwareId,
      groupIds: [this.fleet.product.group.id],
    });
    this.clock.set(at);
    const outcome = this.fleet.authority
      .activateInstallation({
        key: this.fleet.mak as string,
        installationId: c.iid.text,
        groupId: this.fleet.product.group.id,
      })
      .then(
        (a) => ({ confirmationId: a.confirmationId }),
        (err: unknown) => {
          if (err instanceof AuthorityError) return { code: err.code };
          throw err;
        },
      );
    this.#pendingMak.push({ client: c, at, before, outcome });
  }

  #runUntil(end: number): void {
    while (this.#queue.peekTime() < end) {
      const id = this.#queue.pop();
      this.#wake(this.#clients[id] as SimClient, this.#queue.timeOf(id));
    }
  }

  /** The end of a slice: the hosts sign their batches, and the clients' checks of the answers start. */
  #dispatch(): Batch | null {
    const pending = this.#pending;
    const pendingMak = this.#pendingMak;
    if (pending.length === 0 && pendingMak.length === 0) return null;
    this.#pending = [];
    this.#pendingMak = [];
    for (const h of this.fleet.hosts) h.signer.flush();
    const items: VerifyItem[] = pending.map((e) => ({
      clientId: e.client.cmid,
      nonce: e.nonce,
      payload: e.payload as Buffer,
      now: e.at,
    }));
    return { pending, pendingMak, outcome: pending.length > 0 ? this.pool.verify(items) : null };
  }

  /** The clients take their verified answers: licences and next wake-ups are updated. */
  async #apply(batch: Batch): Promise<void> {
    const { pending, pendingMak } = batch;
    const outcome = batch.outcome ? await batch.outcome : null;
    this.#exchanges += pending.length;
    pending.forEach((e, i) => {
      const c = e.client;
      const code = outcome?.codes[i] as number;
      if (code !== VERIFIED) {
        // Never with genuine hosts; Licence would ask the next candidate, here the attempt fails.
        if (e.via === 'cache') c.cached = -1;
        this.#fail(c, e.at, e.before);
        return;
      }
      const f = outcome?.fields as Float64Array;
      const hostTime = f[4 * i] as number;
      const count = f[4 * i + 1] as number;
      c.intervals = hostIntervals({
        activationIntervalMin: f[4 * i + 2] as number,
        renewalIntervalMin: f[4 * i + 3] as number,
      });
      if (e.via === 'dns' && this.scenario.caching) c.cached = e.host;
      if (count < this.#threshold) {
        // KMS_THRESHOLD_NOT_MET: counted, not activated; retry at the activation interval.
        this.#fail(c, e.at, e.before);
        return;
      }
      const host = this.fleet.hosts[e.host] as SimHost;
      c.hostTime = hostTime;
      c.record = {
        ...c.record,
        activation: { method: 'kms', evidence: '', host: host.name, receivedAt: e.at },
      };
      c.nextAttemptAt = renewalAt(e.at, c.intervals);
      if (this.options.eventLog) this.#events.push({ kind: 'activated', client: c.index, at: e.at, host: host.name });
      this.#settle(c, e.at);
      this.#schedule(c);
    });
    for (const m of pendingMak) {
      const c = m.client;
      const result = await m.outcome;
      const cid = 'confirmationId' in result ? parseConfirmationIdOrNull(result.confirmationId) : null;
      // As the SDK does: the CID is checked by its key index, with the records the answer carries
      // learned first. The authority is called in-process: those records are its trustRecords,
      // read only when the key is not known yet (an online key renewed since the config).
      const signerOf = () =>
        cid
          ? confirmationSigner(this.pool.context.trust, c.iid as InstallationId, this.fleet.product.group.id, cid)
          : null;
      let signer = signerOf();
      if (signer === 'unknown') {
        const records = await this.fleet.authority.trustRecords();
        this.pool.context.trust.learn({
          transitions: records.transitions.map((t) => Buffer.from(t, 'base64')),
          delegations: records.delegations.map((d) => Buffer.from(d, 'base64')),
        });
        signer = signerOf();
      }
      if (!cid || signer === null || signer === 'unknown') {
        this.#fail(c, m.at, m.before);
        continue;
      }
      this.#makActivations++;
      c.permanent = true;
      c.record = {
        ...c.record,
        activation: {
          method: 'mak',
          installationId: (c.iid as InstallationId).text,
          confirmationId: cid.text,
          channel: 'online',
          authority: null,
          receivedAt: m.at,
        },
      };
      c.nextAttemptAt = renewalAt(m.at, c.intervals);
      if (this.options.eventLog) this.#events.push({ kind: 'activated', client: c.index, at: m.at, host: 'authority' });
      this.#settle(c, m.at);
      this.#schedule(c);
    }
  }
}

function parseConfirmationIdOrNull(text: string): ReturnType<typeof parseConfirmationId> | null {
  try {
    return parseConfirmationId(text);
  } catch {
    return null;
  }
}
