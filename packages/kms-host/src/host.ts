import { existsSync, renameSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { DAY, HOUR, LICENCE_STATES, MINUTE, systemClock, type Clock } from '@volact/core';
import { activateHostOnline, newKeyPairFix } from './activation.js';
import { HostState, type WindowReset } from './host-state.js';
import { KmsService, defaultKmsPolicy, type GroupCount, type KmsPolicy } from './kms-service.js';
import { KmsServer, type FlushOutcome } from './kms-server.js';
import type { ConnectionCounters, ConnectionLimits } from './connection-limits.js';
import { WindowStore, isCorruption, type HostStatistics } from './window-store.js';
import { KmsHostError } from './errors.js';
import { PHONE_ACTIVATION } from './phone-activation.js';
import { HOST_STATUS_WARN_BEFORE, extensionAreaOf, refreshHostTrust, type TrustCheck } from './trust-sync.js';
import { hostTrustStatus, type HostTrustStatus } from './trust-status.js';
import { createMetricsRegistry, serveMetrics } from './metrics.js';
import {
  DEFAULT_REQUEST_LOG,
  LIVE_STATUS_FILE,
  LiveStatusFile,
  RequestLogSampler,
  readLiveStatus,
  type LiveStatus,
  type RequestLogPolicy,
} from './host-runtime.js';
import { nowWindowSeconds } from './client-id-window.js';
import {
  DnsPublisher,
  readDnsPublicationStatus,
  type DnsPublicationStatus,
  type DnsPublishConfig,
  type Timers,
} from './dns-publisher.js';

export interface KmsHostConfig {
  readonly dataDir: string;
  readonly listen: { host: string; port: number };
  readonly policy?: KmsPolicy;
  readonly metrics?: { host: string; port: number };
  readonly clock?: Clock;
  readonly logger?: Logger;
  /**
   * How often the window is written to host.db (write-behind, default 250 ms): the most a
   * crash (kill -9, power loss) can lose. A clean stop loses nothing.
   */
  readonly flushIntervalMs?: number;
  /** Connection caps per source and in all, request deadlines, idle timeout (defaults where absent). */
  readonly connectionLimits?: Partial<ConnectionLimits>;
  /** Per-request log lines: refusals always, counted requests up to N a minute (default 20). */
  readonly requestLog?: RequestLogPolicy;
  /**
   * Renew the host certificate online this long before it expires (default: half its lifetime,
   * at most 30 days: 15 days of the authority's default 30; a revoked host key is refused the renewal).
   */
  readonly renewCertificateBefore?: number;
  /** Publish the host in DNS (SRV + A/AAAA by TSIG-signed dynamic update); off when absent. */
  readonly dnsPublish?: DnsPublishConfig;
  /** The DNS publisher's refresh and check timers (tests fire them by hand); node's by default. */
  readonly timers?: Timers;
}

export interface RunningKmsHost {
  readonly address: { host: string; port: number };
  readonly metricsAddress: { host: string; port: number } | undefined;
  /** Set when this start found host.db damaged or lost and began with an empty window. */
  readonly windowReset: WindowReset | undefined;
  counts(): GroupCount[];
  statistics(): HostStatistics;
  /**
   * Renews the host certificate with the authority it was activated against when it expires
   * within `renewCertificateBefore` (a free re-activation: same host, same key pair). The
   * running host checks this every 6 hours; failures are logged and retried.
   */
  renewCertificateIfDue(options?: { force?: boolean }): Promise<{ renewed: boolean; expiresAt: number }>;
  /**
   * The check the host runs at start and every 6 hours: the trust bundle and its host status
   * from the authority (online-certified hosts), a re-certification at once when the authority's
   * current root is not the one that certified the host, the renewal when due; then the
   * extension area stapled to version-2 answers is encoded again. Failures are logged, never thrown.
   */
  checkNow(): Promise<HostCheckOutcome>;
  /** What was published in DNS and when (undefined when publishing is off). */
  dnsPublication(): DnsPublicationStatus | undefined;
  /** Publishes the DNS records again now (they are also refreshed on a timer). */
  publishDnsNow(): Promise<void>;
  /** Open connections and sources, and what the connection limits refused or closed. */
  connections(): ConnectionCounters & { largestSource: number };
  /** Looks the SRV records up now and publishes again where missing (also every `checkMs`). */
  checkDnsNow(): Promise<void>;
  /** Write-behind state: client IDs answered but not yet in host.db, the last write and its error. */
  persistence(): PersistenceStatus;
  /**
   * Stops accepting, answers what is in flight, writes the window, closes the store; removes
   * its DNS records unless told not to (a host that goes away uncleanly leaves them). Rejects
   * with HOST_WINDOW_UNSAVED (after closing everything) when the window could not be written.
   */
  close(options?: { removeDnsRecords?: boolean }): Promise<void>;
}

/** Opens the host's data directory, checks its activation, restores its windows and serves. */
export async function startKmsHost(config: KmsHostConfig): Promise<RunningKmsHost> {
  const clock = config.clock ?? systemClock;
  const state = HostState.open(config.dataDir);
  const certificate = state.certificate();
  const activation = state.activation;
  if (!certificate || !activation) {
    throw new KmsHostError(
      'HOST_NOT_ACTIVATED',
      `host key ${state.hostKeyLast5} is installed but not activated: run \`volact host activate --data-dir ${config.dataDir} --authority URL\``,
    );
  }
  if (clock.now() >= certificate.expiresAt) {
    throw new KmsHostError(
      'HOST_CERTIFICATE_EXPIRED',
      `the host certificate expired on ${new Date(certificate.expiresAt).toISOString()}: renew it with \`volact host activate\`${state.activation?.authorityUrl === PHONE_ACTIVATION ? ' or by phone (`volact host installation-id`)' : ''}`,
    );
  }
  state.securePermissions();
  const sampler = config.logger
    ? new RequestLogSampler(config.logger, clock, config.requestLog ?? DEFAULT_REQUEST_LOG)
    : undefined;
  const { store, service, reset: windowReset } = openWindow(state, clock, config, sampler?.logger);
  const flushIntervalMs = config.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
  const persistence = {
    lastSavedAt: null as string | null,
    lastFlushError: null as LiveStatus['lastFlushError'],
  };
  let failingSince: number | undefined;
  let lastFailureLog = 0;
  let live: LiveStatusFile | undefined;
  const startedAt = new Date().toISOString();
  const liveStatus = (stoppedAt: string | null): LiveStatus => ({
    format: 'volact-host-live/1',
    pid: process.pid,
    startedAt,
    updatedAt: new Date().toISOString(),
    stoppedAt,
    flushIntervalMs,
    unsaved: service.unsavedCount,
    lastSavedAt: persistence.lastSavedAt,
    lastFlushError: persistence.lastFlushError,
  });
  const onFlush = (outcome: FlushOutcome) => {
    if (outcome.error === undefined) {
      persistence.lastSavedAt = new Date(outcome.at).toISOString();
      if (failingSince !== undefined) {
        config.logger?.warn(
          { failedForMs: outcome.at - failingSince, unsaved: outcome.unsaved },
          'the client-ID window is written to host.db again',
        );
        failingSince = undefined;
        persistence.lastFlushError = null;
        live?.write(liveStatus(null));
      }
      return;
    }
    const err = outcome.error;
    const code = err instanceof KmsHostError ? err.code : 'HOST_STORE_FAILED';
    const message = err instanceof Error ? err.message : 'unknown error';
    persistence.lastFlushError = { at: new Date(outcome.at).toISOString(), code, message };
    // Once when it starts failing, then once a minute (it is retried every flush interval).
    if (failingSince === undefined || outcome.at - lastFailureLog >= MINUTE) {
      config.logger?.error(
        { code, err: message, unsaved: outcome.unsaved },
        `could not write the client-ID window (${outcome.unsaved} client IDs kept in memory only); retrying every ${flushIntervalMs} ms`,
      );
      lastFailureLog = outcome.at;
    }
    failingSince ??= outcome.at;
    // The space a failed transaction's WAL frames took goes back to the disk before the retry.
    store.checkpoint();
    live?.write(liveStatus(null));
  };
  const server = new KmsServer(service, state.signingKey().privateKey, {
    host: config.listen.host,
    port: config.listen.port,
    ...(sampler ? { logger: sampler.logger } : {}),
    flushIntervalMs,
    onFlush,
    ...(config.connectionLimits ? { limits: config.connectionLimits } : {}),
  });
  let address;
  try {
    address = await server.listen();
  } catch (err) {
    store.close();
    throw err;
  }
  let metricsServer: Server | undefined;
  let metricsAddress: { host: string; port: number } | undefined;
  if (config.metrics) {
    try {
      metricsServer = await serveMetrics(
        createMetricsRegistry(service, server.signer, () => server.connections()),
        config.metrics.host,
        config.metrics.port,
      );
    } catch (err) {
      // Do not leave the KMS port listening (and the store open) behind a failed start.
      await server.close();
      store.close();
      throw new KmsHostError(
        'HOST_LISTEN_FAILED',
        `cannot serve metrics on ${config.metrics.host}:${config.metrics.port}: ${(err as Error).message}`,
      );
    }
    const a = metricsServer.address();
    if (a && typeof a !== 'string') metricsAddress = { host: a.address, port: a.port };
  }
  // Once the start can no longer fail: a live file without a clean stop reads as a crash.
  try {
    live = new LiveStatusFile(join(config.dataDir, LIVE_STATUS_FILE));
    live.write(liveStatus(null));
  } catch (err) {
    config.logger?.warn({ err }, `cannot write ${LIVE_STATUS_FILE}: \`host status\` will not show the unsaved backlog`);
  }
  state.securePermissions(); // host.db, its WAL and the live file were just created
  const liveTimer = setInterval(() => {
    live?.write(liveStatus(null));
    sampler?.tick();
  }, 1_000);
  liveTimer.unref();
  config.logger?.info({ address, groups: service.counts() }, 'KMS host listening');
  // At half-life by default (at most 30 days before the end): online certificates are short
  // (a revoked key stops at their end), so a host renews with half of one left to ride out an
  // authority outage; a 365-day phone certificate still warns from 30 days before its end.
  const renewBefore = (c: { issuedAt: number; expiresAt: number }) =>
    config.renewCertificateBefore ?? Math.min(30 * DAY, (c.expiresAt - c.issuedAt) / 2);
  let renewing: Promise<{ renewed: boolean; expiresAt: number }> | undefined;
  const renewOnce = async (force: boolean) => {
    const current = service.certificate;
    if (!force && current.expiresAt - clock.now() > renewBefore(current))
      return { renewed: false, expiresAt: current.expiresAt };
    // Read the data directory afresh: a key installed since start must not be overwritten
    // with the one this process started with; a certificate renewed by another run is reused.
    const fresh = HostState.open(config.dataDir);
    let next = fresh.certificate();
    const stale = (c: typeof next) =>
      !c || c.expiresAt - clock.now() <= renewBefore(c) || (force && c.issuer.equals(current.issuer));
    if (stale(next)) {
      if (fresh.activation?.authorityUrl === PHONE_ACTIVATION) {
        throw new KmsHostError(
          'HOST_CERTIFICATE_EXPIRED',
          `the host certificate (issued by phone) ends ${new Date(current.expiresAt).toISOString()}: activate again by phone (\`volact host installation-id\`)`,
        );
      }
      await activateHostOnline(fresh, fresh.activation?.authorityUrl ?? activation.authorityUrl, { clock });
      next = fresh.certificate();
    }
    if (!next) throw new KmsHostError('HOST_NOT_ACTIVATED', 'the renewal stored no certificate');
    service.renewCertificate(next); // refuses another key or other groups: those need a restart
    server.signer.setCertificate(next.encoded);
    restaple(); // the renewal fetched a status (and records) afresh: activateHostOnline
    config.logger?.info(
      { serial: next.serial, expiresAt: new Date(next.expiresAt).toISOString() },
      'host certificate renewed',
    );
    return { renewed: true, expiresAt: next.expiresAt };
  };
  const renewCertificateIfDue = (options: { force?: boolean } = {}) =>
    (renewing ??= renewOnce(options.force ?? false).finally(() => (renewing = undefined)));
  // What version-2 answers carry: from host.json at start (an authority down at start does not
  // take the status away), encoded again after every check; never per answer.
  const restaple = () =>
    server.signer.setExtensions(extensionAreaOf(HostState.open(config.dataDir).trust, service.certificate));
  restaple();
  let checking: Promise<HostCheckOutcome> | undefined;
  const checkOnce = async (): Promise<HostCheckOutcome> => {
    const url = HostState.open(config.dataDir).activation?.authorityUrl ?? activation.authorityUrl;
    let renewal: { renewed: boolean; expiresAt: number } | undefined;
    let renewalError: unknown;
    const renew = async (force: boolean) => {
      try {
        // (A renewal fetches the trust bundle and the status again: activateHostOnline.)
        renewal = await renewCertificateIfDue({ force });
        renewalError = undefined;
      } catch (err) {
        renewalError = err;
        config.logger?.warn({ err }, 'could not renew the host certificate; will retry in 6 hours');
      }
    };
    // The renewal when due first (decided by the clock now), then the trust bundle and status;
    // a root switch found there re-certifies at once.
    await renew(false);
    let trust: TrustCheck | undefined;
    if (url !== PHONE_ACTIVATION) trust = await refreshHostTrust(config.dataDir, url, { clock });
    if (trust?.rootChanged && !renewal?.renewed) await renew(true);
    restaple();
    const status = logTrust(config.dataDir, trust, clock, config.logger, url === PHONE_ACTIVATION);
    return {
      renewal,
      renewalError,
      rootChanged: trust?.rootChanged ?? false,
      revoked: trust?.revoked ?? false,
      warnings: trust?.warnings ?? [],
      status,
    };
  };
  const checkNow = () => (checking ??= checkOnce().finally(() => (checking = undefined)));
  const checkInBackground = () =>
    void checkNow().catch((err: unknown) =>
      config.logger?.warn({ err }, 'the trust check failed; will retry in 6 hours'),
    );
  checkInBackground(); // at start too: a host restarted hours before expiry must not wait 6 hours
  const renewTimer = setInterval(checkInBackground, 6 * HOUR);
  renewTimer.unref();
  // Published once serving: a DNS server that is down delays nothing but this first attempt.
  const publisher = config.dnsPublish
    ? new DnsPublisher({ ...config.dnsPublish, port: config.dnsPublish.port || address.port }, config.dataDir, {
        clock,
        ...(config.logger ? { logger: config.logger } : {}),
        ...(config.timers ? { timers: config.timers } : {}),
      })
    : undefined;
  await publisher?.start();
  return {
    address,
    metricsAddress,
    windowReset,
    counts: () => service.counts(),
    statistics: () => structuredClone(service.stats),
    renewCertificateIfDue,
    checkNow,
    dnsPublication: () => publisher?.status,
    publishDnsNow: () => publisher?.publishNow() ?? Promise.resolve(),
    connections: () => server.connections(),
    checkDnsNow: () => publisher?.checkNow() ?? Promise.resolve(),
    persistence: () => ({
      flushIntervalMs,
      unsaved: service.unsavedCount,
      lastSavedAt: persistence.lastSavedAt,
      lastFlushError: persistence.lastFlushError,
    }),
    async close(options = {}) {
      clearInterval(renewTimer);
      clearInterval(liveTimer);
      await publisher?.stop({ removeRecords: options.removeDnsRecords ?? true });
      let unsaved: Error | undefined;
      try {
        await server.close();
      } catch (err) {
        unsaved = err instanceof Error ? err : new Error('the final write of the window failed');
      }
      if (metricsServer) await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
      store.close();
      sampler?.tick(true);
      live?.write(liveStatus(new Date().toISOString()));
      live?.close();
      if (unsaved) {
        config.logger?.error({ err: unsaved }, 'stopped with client IDs not saved');
        throw unsaved;
      }
    },
  };
}

export const DEFAULT_FLUSH_INTERVAL_MS = 250;

/** What one check did (RunningKmsHost.checkNow). */
export interface HostCheckOutcome {
  /** Undefined when the renewal failed (then renewalError). */
  readonly renewal: { renewed: boolean; expiresAt: number } | undefined;
  readonly renewalError: unknown;
  /** The authority's current root was not the certificate's issuer (a re-certification was due). */
  readonly rootChanged: boolean;
  /** The authority answered HOST_REVOKED. */
  readonly revoked: boolean;
  /** What could not be fetched or was refused (the state kept). */
  readonly warnings: readonly string[];
  /** The trust state after the check. */
  readonly status: HostTrustStatus;
}

/**
 * Logs what the check found: an error for a revoked key (naming the fix), a warning for what
 * failed (the last state is kept) and, at every check, for a status ending within 2 days.
 */
function logTrust(
  dataDir: string,
  trust: TrustCheck | undefined,
  clock: Clock,
  logger: Logger | undefined,
  phone: boolean,
): HostTrustStatus {
  const state = HostState.open(dataDir);
  const status = hostTrustStatus(state, clock.now());
  if (phone) return status;
  const ends = status.hostStatus.nextUpdate;
  if (trust?.revoked) {
    logger?.error(
      { code: 'HOST_REVOKED' },
      `the authority revoked this host's key (${state.trust.revoked?.message ?? 'HOST_REVOKED'}): clients refuse this host's answers ${ends ? `once its last status ends (${ends})` : 'now (it holds no status)'}; the host keeps answering until then. Fix: ${newKeyPairFix(dataDir, HostState.open(dataDir).activation?.authorityUrl)}`,
    );
  }
  if (trust && trust.warnings.length > 0)
    logger?.warn(
      { problems: trust.warnings },
      'the trust check could not complete; the host keeps what it holds and retries in 6 hours',
    );
  if (!trust?.revoked) {
    if (!ends) {
      logger?.warn(
        'this host holds no host status: clients of this release refuse its answers until the authority gives it one (checked every 6 hours; `volact host status` shows why)',
      );
    } else {
      const left = Date.parse(ends) - clock.now();
      if (left < HOST_STATUS_WARN_BEFORE)
        logger?.warn(
          { nextUpdate: ends },
          `the host status ${left <= 0 ? 'ended' : 'ends'} ${ends}: clients refuse this host's answers from then until it gets a new one from the authority (reachable? \`volact host status\`)`,
        );
    }
  }
  return status;
}

/** The write-behind state of a running host (also in host-live.json for `host status`). */
export interface PersistenceStatus {
  readonly flushIntervalMs: number;
  readonly unsaved: number;
  readonly lastSavedAt: string | null;
  readonly lastFlushError: LiveStatus['lastFlushError'];
}

/**
 * Opens host.db and restores the windows from it. The window can be rebuilt (clients renew
 * every 7 days), so a damaged host.db never stops the host: it is moved aside, the host starts
 * empty and says so in the log and in `host status`. A host.db that is missing or empty
 * although the host had a window (host.json says so) is reported the same way.
 */
function openWindow(
  state: HostState,
  clock: Clock,
  config: KmsHostConfig,
  logger: Logger | undefined,
): { store: WindowStore; service: KmsService; reset: WindowReset | undefined } {
  const path = state.windowDbPath;
  const open = () => {
    const store = new WindowStore(path);
    try {
      store.verify();
      const service = new KmsService({
        clock,
        store,
        certificate: state.certificate()!,
        groups: state.activation!.groups,
        policy: config.policy ?? defaultKmsPolicy,
        ...(logger ? { logger } : {}),
      });
      return { store, service };
    } catch (err) {
      store.close();
      throw err;
    }
  };
  const at = new Date(clock.now()).toISOString();
  let lastReset: WindowReset | undefined;
  const size = existsSync(path) ? statSync(path).size : -1;
  if (state.windowCreatedAt && size <= 0) {
    const reset: WindowReset = {
      at,
      code: 'HOST_STORE_LOST',
      message: `${path} is ${size < 0 ? 'missing' : 'empty (0 bytes)'} although this host has kept a window there since ${state.windowCreatedAt}: the counts restart from zero and refill as clients renew (within the renewal interval); restore host.db from a backup before the next start to keep them`,
      movedTo: null,
    };
    HostState.open(state.dataDir).recordWindowReset(reset);
    lastReset = reset;
    config.logger?.error({ code: reset.code, file: path }, reset.message);
  }
  let opened;
  try {
    opened = open();
  } catch (err) {
    if (!isCorruption(err)) throw err;
    const movedTo = `${path}.corrupt-${at.replace(/[:.]/g, '-')}`;
    renameSync(path, movedTo);
    for (const suffix of ['-wal', '-shm']) {
      if (existsSync(path + suffix)) renameSync(path + suffix, movedTo + suffix);
    }
    const reset: WindowReset = {
      at,
      code: 'HOST_STORE_CORRUPT',
      message: `${path} was damaged (${(err as Error).message}); moved to ${movedTo}. The host started with an empty window: counts restart from zero and refill as clients renew (within the renewal interval). Keep the damaged file for diagnosis or delete it`,
      movedTo,
    };
    HostState.open(state.dataDir).recordWindowReset(reset);
    lastReset = reset;
    config.logger?.error({ code: reset.code, file: path, movedTo }, reset.message);
    opened = open();
  }
  if (!state.windowCreatedAt) HostState.open(state.dataDir).recordWindowCreated(at);
  return { ...opened, reset: lastReset };
}

export interface HostStatus {
  readonly keyInstalled: string;
  readonly hardwareId: string;
  readonly activated: boolean;
  readonly authorityUrl: string | undefined;
  readonly certificate: { serial: string; expiresAt: string; issuedAt: string } | undefined;
  readonly groups: { name: string; id: string; count: number; threshold: number }[];
  readonly requests: {
    total: number;
    failed: number;
    byClientState: Record<string, number>;
  };
  /** DNS publication as the running host last wrote it; undefined when it never published. */
  readonly dns: DnsPublicationStatus | undefined;
  /**
   * Write-behind of the window: whether a host runs on this directory, its flush interval
   * (the most a crash can lose), the client IDs not yet in host.db and the last write error.
   */
  readonly persistence: {
    readonly running: boolean;
    /** False when the last run ended without a clean stop (crash, kill -9). */
    readonly stoppedCleanly: boolean | null;
    readonly flushIntervalMs: number;
    readonly unsaved: number;
    readonly lastSavedAt: string | null;
    readonly lastFlushError: LiveStatus['lastFlushError'];
  };
  /** The last time the window was started empty over a damaged or lost host.db. */
  readonly windowReset: WindowReset | undefined;
  /** Roots, revocation list and host status as the host holds them (docs/kms-host.md "Trust and revocation"). */
  readonly trust: HostTrustStatus;
}

/**
 * The host's state as the reference's `slmgr /dlv` shows it, read from the data directory
 * (works whether or not the host is running; a running host writes every flush interval).
 */
export function hostStatus(dataDir: string, clock: Clock = systemClock): HostStatus {
  const state = HostState.open(dataDir);
  const cert = state.certificate();
  const activation = state.activation;
  let groups: HostStatus['groups'] = (activation?.groups ?? []).map((g) => ({ ...g, count: 0 }));
  let stats: HostStatistics | undefined;
  // Read-only: a status query never creates or migrates the host's database.
  if (existsSync(state.windowDbPath)) {
    const store = new WindowStore(state.windowDbPath, { readonly: true });
    try {
      const now = nowWindowSeconds(clock.now());
      groups = groups.map((g) => ({ ...g, count: store.liveCount(g.id, now) }));
      stats = store.loadStatistics();
    } finally {
      store.close();
    }
  }
  const live = readLiveStatus(dataDir);
  const byClientState: Record<string, number> = {};
  LICENCE_STATES.forEach((s, i) => (byClientState[s] = stats?.byLicenceState[i] ?? 0));
  return {
    keyInstalled: state.hostKeyLast5,
    hardwareId: state.hardwareId,
    activated: Boolean(cert),
    authorityUrl: activation?.authorityUrl,
    certificate: cert && {
      serial: cert.serial,
      issuedAt: new Date(cert.issuedAt).toISOString(),
      expiresAt: new Date(cert.expiresAt).toISOString(),
    },
    groups,
    requests: { total: stats?.totalRequests ?? 0, failed: stats?.failedRequests ?? 0, byClientState },
    dns: readDnsPublicationStatus(dataDir),
    persistence: {
      running: live?.running ?? false,
      stoppedCleanly: live ? (live.running ? null : live.stoppedAt !== null) : null,
      flushIntervalMs: live?.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
      unsaved: live?.unsaved ?? 0,
      lastSavedAt: live?.lastSavedAt ?? null,
      lastFlushError: live?.lastFlushError ?? null,
    },
    windowReset: state.windowResets.at(-1),
    trust: hostTrustStatus(state, clock.now()),
  };
}
