import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { LICENCE_STATES } from '@volact/core';
import type { KmsService } from './kms-service.js';
import type { BatchSigner } from './batch-signer.js';
import type { ConnectionCounters } from './connection-limits.js';

/**
 * Prometheus metrics, read from the host's own counters at scrape time: nothing is added to
 * the request path.
 */
export function createMetricsRegistry(
  service: KmsService,
  signer: BatchSigner,
  connections?: () => ConnectionCounters,
): Registry {
  const registry = new Registry();
  new Counter({
    name: 'volact_kms_requests_total',
    help: 'KMS requests by result (counted: answered with a signed count; failed: refused or malformed)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      this.reset();
      const failed = service.stats.failedRequests;
      this.inc({ result: 'counted' }, service.stats.totalRequests - failed);
      this.inc({ result: 'failed' }, failed);
    },
  });
  new Counter({
    name: 'volact_kms_requests_by_client_state_total',
    help: 'Counted KMS requests by the licence state the client reported',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      LICENCE_STATES.forEach((s, i) => this.inc({ state: s }, service.stats.byLicenceState[i] ?? 0));
    },
  });
  new Gauge({
    name: 'volact_kms_group_count',
    help: 'Distinct client IDs in the group window (the count sent to clients)',
    labelNames: ['group'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of service.counts()) this.set({ group: g.name }, g.count);
    },
  });
  new Gauge({
    name: 'volact_kms_group_threshold',
    help: 'Activation threshold of the group',
    labelNames: ['group'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of service.counts()) this.set({ group: g.name }, g.threshold);
    },
  });
  new Gauge({
    name: 'volact_kms_unsaved_client_ids',
    help: 'Client IDs answered but not yet written to host.db (grows while the disk is full; a crash loses them)',
    registers: [registry],
    collect() {
      this.set(service.unsavedCount);
    },
  });
  new Counter({
    name: 'volact_kms_signatures_total',
    help: 'Batch signatures made (responses per signature = responses / signatures)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(signer.signatures);
    },
  });
  if (connections) {
    // A flood shows as refusals and deadline closes climbing while the open count stays capped.
    new Gauge({
      name: 'volact_kms_connections_open',
      help: 'Open KMS connections',
      registers: [registry],
      collect() {
        this.set(connections().open);
      },
    });
    new Gauge({
      name: 'volact_kms_connection_sources',
      help: 'Addresses (IPv6: /64s) holding open KMS connections',
      registers: [registry],
      collect() {
        this.set(connections().sources);
      },
    });
    new Counter({
      name: 'volact_kms_connections_refused_total',
      help: 'KMS connections closed unread at accept, by rule (per-source cap, reserve for new sources, full)',
      labelNames: ['reason'],
      registers: [registry],
      collect() {
        this.reset();
        const c = connections();
        this.inc({ reason: 'per-source' }, c.refusedPerSource);
        this.inc({ reason: 'reserve' }, c.refusedReserve);
        this.inc({ reason: 'full' }, c.refusedFull);
      },
    });
    new Counter({
      name: 'volact_kms_connections_closed_total',
      help: 'KMS connections the host closed: evicted for a newcomer at the cap, past a deadline, idle',
      labelNames: ['reason'],
      registers: [registry],
      collect() {
        this.reset();
        const c = connections();
        this.inc({ reason: 'evicted' }, c.evicted);
        this.inc({ reason: 'deadline' }, c.closedByDeadline);
        this.inc({ reason: 'idle' }, c.closedIdle);
      },
    });
  }
  return registry;
}

export async function serveMetrics(registry: Registry, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        })
        .catch(() => {
          res.writeHead(500).end();
        });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
