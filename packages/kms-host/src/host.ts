import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { HOUR, LICENCE_STATES, systemClock, type Clock } from '@volact/core';
import { activateHostOnline } from './activation.js';
import { HostState } from './host-state.js';
import { KmsService, defaultKmsPolicy, type GroupCount, type KmsPolicy } from './kms-service.js';
import { KmsServer } from './kms-server.js';
import { WindowStore, type HostStatistics } from './window-store.js';
import { KmsHostError } from './errors.js';
import { PHONE_ACTIVATION } from './phone-activation.js';
import { createMetricsRegistry, serveMetrics } from './metrics.js';
import { nowWindowSeconds } from './client-id-window.js';
import {
  DnsPublisher,
  readDnsPublicationStatus,
  type DnsPublicationStatus,
  type DnsPublishConfig,
} from './dns-publisher.js';

export interface KmsHostConfig {
  readonly dataDir: string;
  readonly listen: { host: string; port: number };
  readonly policy?: KmsPolicy;
  readonly metrics?: { host: string; port: number };
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly flushIntervalMs?: number;
  readonly maxConnections?: number;
  /**
   * Renew the host certificate online this long before it expires (default: half its lifetime,
   * 15 days of the authority's default 30: a revoked host key is refused the renewal).
   */
  readonly renewCertificateBefore?: number;
  /** Publish the host in DNS (SRV + A/AAAA by TSIG-signed dynamic update); off when absent. */
  readonly dnsPublish?: DnsPublishConfig;
}

export interface RunningKmsHost {
  readonly address: { host: string; port: number };
  readonly metricsAddress: { host: string; port: number } | undefined;
  counts(): GroupCount[];
  statistics(): HostStatistics;
  /**
   * Renews the host certificate with the authority it was activated against when it expires
   * within `renewCertificateBefore` (a free re-activation: same host, same key pair). The
   * running host checks this every 6 hours; failures are logged and retried.
   */
  renewCertificateIfDue(): Promise<{ renewed: boolean; expiresAt: number }>;
  /** What was published in DNS and when (undefined when publishing is off). */
  dnsPublication(): DnsPublicationStatus | undefined;
  /** Publishes the DNS records again now (they are also refreshed on a timer). */
  publishDnsNow(): Promise<void>;
  /**
   * Stops accepting, answers what is in flight, writes the window, closes the store; removes
   * its DNS records unless told not to (a host that goes away uncleanly leaves them).
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
  const store = new WindowStore(state.windowDbPath);
  const service = new KmsService({
    clock,
    store,
    certificate,
    groups: activation.groups,
    policy: config.policy ?? defaultKmsPolicy,
    ...(config.logger ? { logger: config.logger } : {}),
  });
  const server = new KmsServer(service, state.signingKey().privateKey, {
    host: config.listen.host,
    port: config.listen.port,
    ...(config.logger ? { logger: config.logger } : {}),
    ...(config.flushIntervalMs ? { flushIntervalMs: config.flushIntervalMs } : {}),
    ...(config.maxConnections ? { maxConnections: config.maxConnections } : {}),
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
        createMetricsRegistry(service, server.signer),
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
  config.logger?.info({ address, groups: service.counts() }, 'KMS host listening');
  // At half-life by default: certificates are short (a revoked key stops at their end), so a
  // host renews with half of one left to ride out an authority outage.
  const renewBefore = (c: { issuedAt: number; expiresAt: number }) =>
    config.renewCertificateBefore ?? (c.expiresAt - c.issuedAt) / 2;
  let renewing: Promise<{ renewed: boolean; expiresAt: number }> | undefined;
  const renewOnce = async () => {
    const current = service.certificate;
    if (current.expiresAt - clock.now() > renewBefore(current)) return { renewed: false, expiresAt: current.expiresAt };
    // Read the data directory afresh: a key installed since start must not be overwritten
    // with the one this process started with; a certificate renewed by another run is reused.
    const fresh = HostState.open(config.dataDir);
    let next = fresh.certificate();
    if (!next || next.expiresAt - clock.now() <= renewBefore(next)) {
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
    config.logger?.info(
      { serial: next.serial, expiresAt: new Date(next.expiresAt).toISOString() },
      'host certificate renewed',
    );
    return { renewed: true, expiresAt: next.expiresAt };
  };
  const renewCertificateIfDue = () => (renewing ??= renewOnce().finally(() => (renewing = undefined)));
  const renewInBackground = () =>
    void renewCertificateIfDue().catch((err: unknown) =>
      config.logger?.warn({ err }, 'could not renew the host certificate; will retry in 6 hours'),
    );
  renewInBackground(); // at start too: a host restarted hours before expiry must not wait 6 hours
  const renewTimer = setInterval(renewInBackground, 6 * HOUR);
  renewTimer.unref();
  // Published once serving: a DNS server that is down delays nothing but this first attempt.
  const publisher = config.dnsPublish
    ? new DnsPublisher({ ...config.dnsPublish, port: config.dnsPublish.port || address.port }, config.dataDir, {
        clock,
        ...(config.logger ? { logger: config.logger } : {}),
      })
    : undefined;
  await publisher?.start();
  return {
    address,
    metricsAddress,
    counts: () => service.counts(),
    statistics: () => structuredClone(service.stats),
    renewCertificateIfDue,
    dnsPublication: () => publisher?.status,
    publishDnsNow: () => publisher?.publishNow() ?? Promise.resolve(),
    async close(options = {}) {
      clearInterval(renewTimer);
      await publisher?.stop({ removeRecords: options.removeDnsRecords ?? true });
      await server.close();
      if (metricsServer) await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
      store.close();
    },
  };
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
  };
}
