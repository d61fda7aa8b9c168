import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Authority } from '@volact/authority';
import { Licence } from '@volact/client';
import { AGENT_SETTINGS_FILE, createAgentServer } from '@volact/client/agent';
import { serveParent } from './child.js';

/**
 * The console benchmark's machines and its bare HTTP client. A fleet is N real installations
 * (`Licence.init`, each its own state directory) with a real agent (`createAgentServer`, the
 * code `volact client agent` runs) in front of each, all on 127.0.0.1 in one process, each on
 * its own free port, all with one admin token; next to it the baseline server.
 *
 * Imported, it runs them in the bench's own process. Run as `node console-fleet.js`, it is a
 * child of the bench (see child.ts): command `start` {dir, agents, token} starts the fleet and
 * the baseline server and answers with their addresses; `memory` reports its memory; closing
 * its stdin closes every server and ends it.
 */

export interface Fleet {
  /** `127.0.0.1:PORT` of each agent, in order. */
  readonly addresses: readonly string[];
  close(): Promise<void>;
}

/** Runs `work` over `items` with at most `parallel` at a time. */
async function inParallel<T>(items: readonly T[], parallel: number, work: (t: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i] as T, i);
      }
    }),
  );
}

/**
 * An authority in `dir` makes the product configuration (one group) and is closed again: the
 * machines do not need it to answer GET /v1/status. Then `count` installations and agents.
 */
export async function startFleet(
  dir: string,
  count: number,
  token: string,
  onProgress: (started: number) => void,
): Promise<Fleet> {
  const authority = Authority.init(join(dir, 'authority'), { name: 'volact bench authority' });
  let product: unknown;
  try {
    await authority.addGroup({ name: 'bench', threshold: 5 });
    product = await authority.productConfig('bench');
  } finally {
    await authority.close();
  }
  mkdirSync(join(dir, 'machines'));
  const apps: ReturnType<typeof createAgentServer>[] = [];
  const addresses = new Array<string>(count);
  let started = 0;
  const close = async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  };
  try {
    await inParallel(
      Array.from({ length: count }, (_, i) => i),
      64,
      async (i) => {
        const stateDir = join(dir, 'machines', `pc-${i}`);
        Licence.init({ stateDir, product, hardwareId: `bench-hw-${i}` });
        const app = createAgentServer({ stateDir, adminToken: token });
        apps.push(app);
        await app.listen({ host: '127.0.0.1', port: 0 });
        addresses[i] = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
        onProgress(++started);
      },
    );
  } catch (err) {
    await close();
    throw err;
  }
  return { addresses, close };
}

export interface RoundTrips {
  readonly requests: number;
  readonly failed: number;
  readonly seconds: number;
  readonly latenciesMs: Float64Array;
  /** Mean response body size (bytes). */
  readonly bodyBytes: number;
}

/**
 * One GET and its JSON answer, as the console's `requestJson` makes it (packages/console/src/
 * http.ts): `agent: false`, so a new connection per request, closed after the answer (node
 * sends `Connection: close`); the body read whole and parsed. Nothing else: no deadline
 * timer, no schema, no store.
 */
export function getJson(
  port: number,
  path: string,
  token: string,
): Promise<{ status: number; bytes: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        method: 'GET',
        hostname: '127.0.0.1',
        port,
        path,
        headers: { accept: 'application/json', authorization: `Bearer ${token}`, host: `127.0.0.1:${port}` },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            JSON.parse(text);
          } catch {
            reject(new Error(`127.0.0.1:${port}${path} did not answer JSON`));
            return;
          }
          resolve({ status: res.statusCode ?? 0, bytes, text });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** `ports.length` GETs of `path`, one to each port in turn, at most `concurrency` in flight. */
export async function roundTrips(
  ports: readonly number[],
  concurrency: number,
  path: string,
  token: string,
): Promise<RoundTrips> {
  const latencies = new Float64Array(ports.length);
  let failed = 0;
  let bytes = 0;
  const start = performance.now();
  await inParallel(ports, concurrency, async (port, i) => {
    const t0 = performance.now();
    try {
      const r = await getJson(port, path, token);
      if (r.status !== 200) failed++;
      bytes += r.bytes;
    } catch {
      failed++;
    }
    latencies[i] = performance.now() - t0;
  });
  const seconds = (performance.now() - start) / 1000;
  return { requests: ports.length, failed, seconds, latenciesMs: latencies, bodyBytes: bytes / ports.length };
}

/** The baseline server: node:http answering every request with one fixed JSON body. */
export async function startBaselineServer(body: string): Promise<{ port: number; close(): Promise<void> }> {
  const payload = Buffer.from(body);
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': payload.length });
    res.end(payload);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Opens every machine of the fleet in `dir` to enrolment again, as a local administrator would:
 * each console pass enrols the agents with tokens of its own (a new console could not take
 * them over), and the bare round trips use the enrolment token.
 */
export function openFleetToEnrolment(dir: string): void {
  const machines = join(dir, 'machines');
  for (const name of readdirSync(machines)) rmSync(join(machines, name, AGENT_SETTINGS_FILE), { force: true });
}

/** Open file descriptors of this process and its soft limit (`ulimit -n`). */
export function fileDescriptors(): { open: number; limit: number } {
  const open = readdirSync('/proc/self/fd').length;
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return { open, limit: m?.[1] === undefined || m[1] === 'unlimited' ? Infinity : Number(m[1]) };
}

export interface Machines {
  /** `127.0.0.1:PORT` of each agent, in order. */
  readonly addresses: readonly string[];
  readonly baselinePort: number;
  /** One agent's GET /v1/status body, which the baseline server answers with. */
  readonly statusBody: string;
  close(): Promise<void>;
}

/** The fleet, then the baseline server answering with a body as large as a real agent's status. */
export async function startMachines(
  dir: string,
  count: number,
  token: string,
  onProgress: (started: number) => void,
): Promise<Machines> {
  const fleet = await startFleet(dir, count, token, onProgress);
  try {
    const first = fleet.addresses[0] as string;
    const sample = await getJson(Number(first.slice(first.lastIndexOf(':') + 1)), '/v1/status', token);
    if (sample.status !== 200) throw new Error(`agent ${first} answered HTTP ${sample.status}: ${sample.text}`);
    const baseline = await startBaselineServer(sample.text);
    return {
      addresses: fleet.addresses,
      baselinePort: baseline.port,
      statusBody: sample.text,
      close: async () => {
        await baseline.close();
        await fleet.close();
      },
    };
  } catch (err) {
    await fleet.close();
    throw err;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let machines: Machines | undefined;
  serveParent(
    { pid: process.pid },
    {
      start: async (msg) => {
        const count = Number(msg.agents);
        (globalThis as { gc?: () => void }).gc?.();
        const rssBefore = process.memoryUsage().rss;
        machines = await startMachines(String(msg.dir), count, String(msg.token), (n) => {
          if (n % 50 === 0 || n === count) process.stderr.write(`\rstarting agents (child): ${n} of ${count}   `);
        });
        const { addresses, baselinePort, statusBody } = machines;
        return { addresses, baselinePort, statusBody, fds: fileDescriptors(), rssBefore };
      },
      memory: () => {
        // Started with --expose-gc: the heap in use is what the agents hold, not uncollected garbage.
        (globalThis as { gc?: () => void }).gc?.();
        const m = process.memoryUsage();
        return { rss: m.rss, heapUsed: m.heapUsed };
      },
    },
    async () => {
      await machines?.close();
    },
  );
}
