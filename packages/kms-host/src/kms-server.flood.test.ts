/**
 * The slowloris attack on the KMS port, with real sockets: many connections from several
 * source addresses (127.0.x.y: Linux routes all of 127/8 to lo, so binding the client socket's
 * localAddress gives each one its own source), each trickling one byte at a time so that no
 * idle timeout ever fires. Scaled down from the report (10 050 connections, a byte every 10 s,
 * 10 000 global cap) but the same shape: per-source cap exceeded, global cap under pressure,
 * slow bytes — and a real client from another address must be answered throughout.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FrameReader,
  MAX_RESPONSE_SIZE,
  MessageType,
  decodeActivationResponse,
  frame,
  messageTypeOf,
} from '@volact/core';
import { startKmsHost, type RunningKmsHost } from './host.js';
import type { ConnectionLimits } from './connection-limits.js';
import { createActivatedHost, requestPayload, type HostFixture } from './test-fixture.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One request from `localAddress`: the response payload, or the reason there was none. */
function askFrom(
  localAddress: string,
  port: number,
  payload: Buffer,
  timeoutMs = 3_000,
): Promise<{ response?: Buffer; failure?: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    const reader = new FrameReader(MAX_RESPONSE_SIZE);
    let done = false;
    const finish = (r: { response?: Buffer; failure?: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ failure: 'no answer in time' }), timeoutMs);
    socket.on('connect', () => socket.write(frame(payload)));
    socket.on('data', (chunk: Buffer) => {
      const [response] = reader.push(chunk);
      if (response) finish({ response });
    });
    socket.on('error', (err) => finish({ failure: err.message }));
    socket.on('close', () => finish({ failure: 'closed without an answer' }));
  });
}

/**
 * `perSource` connections from each source, each writing a valid request one byte every
 * `byteEveryMs` (it would take 72 × byteEveryMs to complete), reconnecting 20 ms after the host
 * closes it, as flood tools do. Records how long each accepted connection stayed open.
 */
class SlowFlood {
  readonly lifetimesMs: number[] = [];
  readonly #sockets = new Set<Socket>();
  #stopped = false;

  constructor(
    private readonly port: number,
    private readonly sources: readonly string[],
    private readonly perSource: number,
    private readonly byteEveryMs: number,
    private readonly stream: Buffer,
  ) {}

  start(): void {
    for (const source of this.sources) for (let i = 0; i < this.perSource; i++) this.#slot(source);
  }

  get open(): number {
    return this.#sockets.size;
  }

  stop(): void {
    this.#stopped = true;
    for (const s of this.#sockets) s.destroy();
  }

  #slot(source: string): void {
    if (this.#stopped) return;
    const socket = connect({ host: '127.0.0.1', port: this.port, localAddress: source });
    this.#sockets.add(socket);
    let connectedAt = 0;
    let sent = 0;
    let drip: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      connectedAt = performance.now();
      const one = () => {
        if (sent < this.stream.length && !socket.destroyed) socket.write(this.stream.subarray(sent, ++sent));
      };
      one();
      drip = setInterval(one, this.byteEveryMs);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(drip);
      this.#sockets.delete(socket);
      // A connection the host kept past its first byte: how long it held a slot.
      if (connectedAt && sent > 1 && !this.#stopped) this.lifetimesMs.push(performance.now() - connectedAt);
      if (!this.#stopped) setTimeout(() => this.#slot(source), 20);
    });
  }
}

describe('KMS host under a slow-connection flood', () => {
  let fx: HostFixture;
  let host: RunningKmsHost | undefined;
  const flood: SlowFlood[] = [];

  const start = async (connectionLimits: Partial<ConnectionLimits>, metrics = false) => {
    host = await startKmsHost({
      dataDir: fx.hostDir,
      listen: { host: '127.0.0.1', port: 0 },
      clock: fx.clock,
      connectionLimits,
      ...(metrics ? { metrics: { host: '127.0.0.1', port: 0 } } : {}),
    });
    return host;
  };

  beforeEach(async () => {
    fx = await createActivatedHost();
  });
  afterEach(async () => {
    for (const f of flood.splice(0)) f.stop();
    await host?.close();
    host = undefined;
    await fx.cleanup();
  });

  it('answers a real client from another address throughout the flood; no source exceeds its cap, no slow connection outlives the frame deadline', async () => {
    const limits = {
      maxConnections: 24,
      maxConnectionsPerSource: 6,
      headerDeadlineMs: 400,
      frameDeadlineMs: 400,
      idleTimeoutMs: 30_000, // never reached: each byte would reset it
    };
    const h = await start(limits);
    // 6 sources × 10 connections: 60 wanted, 10 per source against a cap of 6, 36 capped
    // connections against a global 24. One byte every 100 ms: a request would take 7.2 s.
    const sources = Array.from({ length: 6 }, (_, i) => `127.0.1.${i + 1}`);
    const f = new SlowFlood(h.address.port, sources, 10, 100, frame(requestPayload(fx.group.id)));
    flood.push(f);
    f.start();

    let largestSource = 0;
    let mostOpen = 0;
    const watch = setInterval(() => {
      const c = h.connections();
      largestSource = Math.max(largestSource, c.largestSource);
      mostOpen = Math.max(mostOpen, c.open);
    }, 10);
    try {
      const answers: { at: number; response?: Buffer; failure?: string }[] = [];
      const t0 = performance.now();
      for (const at of [300, 900, 1_500, 2_100]) {
        await sleep(at - (performance.now() - t0));
        const r = await askFrom('127.0.2.1', h.address.port, requestPayload(fx.group.id));
        answers.push({ at, ...r });
      }
      // The flood kept the host at its global cap while the client was answered.
      expect(mostOpen).toBe(limits.maxConnections);
      expect(answers.map((a) => a.failure ?? 'answered')).toEqual(answers.map(() => 'answered'));
      for (const a of answers) expect(messageTypeOf(a.response!)).toBe(MessageType.ActivationResponse);
      expect(answers.map((a) => decodeActivationResponse(a.response!).count)).toEqual([1, 2, 3, 4]);

      const c = h.connections();
      expect(largestSource).toBeLessThanOrEqual(limits.maxConnectionsPerSource);
      expect(c.refusedPerSource).toBeGreaterThan(0);
      expect(c.refusedReserve + c.refusedFull + c.evicted).toBeGreaterThan(0);
      expect(c.closedByDeadline).toBeGreaterThan(0);
      // Deadline (400 ms) + one sweep (40 ms) + scheduling slack on a busy machine; without the
      // deadline each would stay open for the whole flood.
      expect(f.lifetimesMs.length).toBeGreaterThan(0);
      expect(Math.max(...f.lifetimesMs)).toBeLessThan(1_200);
      // The flood never completed a request: only the client's four count.
      expect(h.counts()[0]?.count).toBe(4);
    } finally {
      clearInterval(watch);
    }
  });

  it('a newcomer at the global cap takes a connection of the source holding the most', async () => {
    // No deadlines in the way: the flood's connections stay until evicted.
    const h = await start({
      maxConnections: 10,
      maxConnectionsPerSource: 8,
      headerDeadlineMs: 60_000,
      frameDeadlineMs: 60_000,
    });
    const untilOpen = async (n: number) => {
      for (let i = 0; i < 100 && h.connections().open < n; i++) await sleep(20);
      expect(h.connections().open).toBe(n);
    };
    const slow = (source: string, n: number) => {
      const f = new SlowFlood(h.address.port, [source], n, 1_000, frame(requestPayload(fx.group.id)));
      flood.push(f);
      f.start();
    };
    slow('127.0.3.1', 8); // a source at its cap
    await untilOpen(8);
    slow('127.0.3.2', 1); // the last tenth (one connection) is only for sources holding none
    slow('127.0.3.3', 1);
    await untilOpen(10);
    expect(h.connections().refusedReserve).toBe(0);
    const r = await askFrom('127.0.3.4', h.address.port, requestPayload(fx.group.id));
    expect(r.failure).toBeUndefined();
    expect(decodeActivationResponse(r.response!).count).toBe(1);
    const c = h.connections();
    expect(c.evicted).toBe(1);
    expect(c.largestSource).toBe(7); // the evicted connection was 127.0.3.1's
    expect(c.open).toBeLessThanOrEqual(10);
  });

  it('closes a connection that sends nothing after the header deadline, and one trickling bytes after the frame deadline', async () => {
    const h = await start({ headerDeadlineMs: 300, frameDeadlineMs: 300, idleTimeoutMs: 30_000 });
    const openFor = (drip: boolean) =>
      new Promise<number>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: h.address.port });
        const stream = frame(requestPayload(fx.group.id));
        let sent = 0;
        let timer: NodeJS.Timeout | undefined;
        let t0 = 0;
        socket.on('connect', () => {
          t0 = performance.now();
          if (drip) timer = setInterval(() => socket.write(stream.subarray(sent, ++sent)), 50);
        });
        socket.on('error', () => {});
        socket.on('close', () => {
          clearInterval(timer);
          resolve(performance.now() - t0);
        });
      });
    const [silent, trickling] = await Promise.all([openFor(false), openFor(true)]);
    expect(silent).toBeGreaterThanOrEqual(250);
    expect(silent).toBeLessThan(1_500);
    expect(trickling).toBeGreaterThanOrEqual(250);
    expect(trickling).toBeLessThan(1_500);
    expect(h.connections().closedByDeadline).toBe(2);
    expect(h.counts()[0]?.count).toBe(0);
  });

  it('shows refusals and deadline closes in the Prometheus metrics', async () => {
    const h = await start({ maxConnectionsPerSource: 2, headerDeadlineMs: 200, frameDeadlineMs: 200 }, true);
    const f = new SlowFlood(h.address.port, ['127.0.6.1'], 4, 50, frame(requestPayload(fx.group.id)));
    flood.push(f);
    f.start();
    for (let i = 0; i < 100 && h.connections().closedByDeadline === 0; i++) await sleep(20);
    const text = await (await fetch(`http://127.0.0.1:${h.metricsAddress!.port}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    expect(value(/^volact_kms_connections_refused_total\{reason="per-source"\} (\d+)$/m)).toBeGreaterThan(0);
    expect(value(/^volact_kms_connections_closed_total\{reason="deadline"\} (\d+)$/m)).toBeGreaterThan(0);
    expect(value(/^volact_kms_connections_open (\d+)$/m)).toBeLessThanOrEqual(2);
    expect(value(/^volact_kms_connection_sources (\d+)$/m)).toBeLessThanOrEqual(1);
  });

  it('closes a connection idle (no request in progress) for idleTimeoutMs, after answering it', async () => {
    const h = await start({ idleTimeoutMs: 300 });
    const { answers, openMs } = await new Promise<{ answers: number; openMs: number }>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: h.address.port });
      const reader = new FrameReader(MAX_RESPONSE_SIZE);
      let answers = 0;
      const t0 = performance.now();
      socket.on('connect', () => socket.write(frame(requestPayload(fx.group.id))));
      socket.on('data', (chunk: Buffer) => (answers += reader.push(chunk).length));
      socket.on('error', () => {});
      socket.on('close', () => resolve({ answers, openMs: performance.now() - t0 }));
    });
    expect(answers).toBe(1);
    expect(openMs).toBeGreaterThanOrEqual(250);
    expect(openMs).toBeLessThan(1_500);
    expect(h.connections()).toMatchObject({ closedIdle: 1, closedByDeadline: 0, open: 0 });
  });

  it('serves a request that arrives in pieces within the frame deadline, and keeps the connection for the next', async () => {
    const h = await start({ headerDeadlineMs: 1_000, frameDeadlineMs: 1_000 });
    const responses = await new Promise<Buffer[]>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: h.address.port });
      const reader = new FrameReader(MAX_RESPONSE_SIZE);
      const got: Buffer[] = [];
      const pieces = (b: Buffer) => [b.subarray(0, 2), b.subarray(2, 30), b.subarray(30)];
      const send = async () => {
        for (const p of pieces(frame(requestPayload(fx.group.id)))) {
          socket.write(p);
          await sleep(150);
        }
        // Idle between requests for longer than a frame deadline: only the idle timeout applies.
        await sleep(1_300);
        for (const p of pieces(frame(requestPayload(fx.group.id)))) {
          socket.write(p);
          await sleep(150);
        }
      };
      socket.on('connect', () => void send());
      socket.on('data', (chunk: Buffer) => {
        got.push(...reader.push(chunk));
        if (got.length === 2) {
          socket.destroy();
          resolve(got);
        }
      });
      socket.on('error', reject);
      socket.on('close', () => reject(new Error(`closed after ${got.length} answers`)));
    });
    expect(responses.map((p) => decodeActivationResponse(p).count)).toEqual([1, 2]);
    expect(h.connections().closedByDeadline).toBe(0);
  });
});
