import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { FrameReader, MAX_RESPONSE_SIZE, MessageType } from '@volact/core';
import type { FramePool } from './frames.js';
import { FrameScanner, REQUEST_FRAME_SIZE, type RequestFactory } from './frames.js';

/**
 * The load generator. It runs in the bench's own process, apart from the server under test,
 * and does as little per request as it can: hand out a pre-built frame, note the time, find
 * the end of the response by its length prefix. Nothing is decoded or verified in the timed
 * part; a few responses are copied out for verification afterwards.
 */

export type ConnectionMode = 'reused' | 'per-request';

export interface ScenarioOptions {
  readonly port: number;
  readonly mode: ConnectionMode;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly pool: FramePool;
  /** CPU time of the server process so far (µs); read when the timed window opens and closes. */
  readonly serverCpuMicros: () => number;
  /** How many responses to copy out, spread over the timed window. */
  readonly samples: number;
}

export interface Sample {
  readonly request: Buffer;
  readonly response: Buffer;
}

export interface ScenarioResult {
  /** Responses that arrived in the timed window. */
  readonly requests: number;
  readonly seconds: number;
  /** Latency of each of those requests (send of the request → end of its response). */
  readonly latenciesMs: Float64Array;
  readonly serverCpuMicros: number;
  /** Error frames among the responses (a healthy run has none). */
  readonly refusals: number;
  readonly connectionErrors: number;
  /** Mean response payload size in the timed window. */
  readonly meanResponseBytes: number;
  readonly samples: Sample[];
}

/** Run-wide bookkeeping shared by all connections of a scenario. */
class Run {
  phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  #latencies = new Float64Array(1 << 18);
  requests = 0;
  refusals = 0;
  connectionErrors = 0;
  responseBytes = 0;
  samples: Sample[] = [];
  #warmupResponses = 0;
  #sampleEvery = 1;
  #untilSample = 1;

  constructor(private readonly maxSamples: number) {}

  /** Opens the timed window; samples are spread over it at the rate seen in the warm-up. */
  startMeasuring(warmupMs: number, durationMs: number): void {
    const expected = (this.#warmupResponses / warmupMs) * durationMs;
    this.#sampleEvery = this.#untilSample = Math.max(1, Math.floor(expected / Math.max(1, this.maxSamples)));
    this.phase = 'measure';
  }

  /** True when the request about to be sent should have its response copied out. */
  wantSample(): boolean {
    if (this.phase !== 'measure' || this.samples.length >= this.maxSamples) return false;
    if (--this.#untilSample > 0) return false;
    this.#untilSample = this.#sampleEvery;
    return true;
  }

  record(sentAt: number, type: number, length: number, request: Buffer, captured: Buffer | null): void {
    if (this.phase !== 'measure') {
      if (this.phase === 'warmup') this.#warmupResponses++;
      return;
    }
    const latency = performance.now() - sentAt;
    if (this.requests === this.#latencies.length) {
      const grown = new Float64Array(this.#latencies.length * 2);
      grown.set(this.#latencies);
      this.#latencies = grown;
    }
    this.#latencies[this.requests++] = latency;
    this.responseBytes += length;
    if (type !== MessageType.ActivationResponse) this.refusals++;
    if (captured) this.samples.push({ request, response: captured });
  }

  latencies(): Float64Array {
    return this.#latencies.subarray(0, this.requests);
  }
}

const HOST = '127.0.0.1';

/**
 * Runs one scenario: `concurrency` clients, each with one request outstanding at a time, either
 * on a persistent connection or on a new connection per request, for warm-up + duration.
 */
export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const run = new Run(o.samples);
  let live = 0;
  let allDone!: () => void;
  const done = new Promise<void>((resolve) => (allDone = resolve));
  const finished = () => {
    if (--live === 0) allDone();
  };
  const sockets = new Set<Socket>();

  if (o.mode === 'reused') {
    // Open every connection before the clock starts.
    const clients = await Promise.all(Array.from({ length: o.concurrency }, () => openPersistent(o.port)));
    for (const socket of clients) {
      sockets.add(socket);
      live++;
      let sentAt = 0;
      let request: Buffer;
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        finished();
      };
      const send = () => {
        if (run.phase === 'stop') {
          socket.end();
          return end();
        }
        request = o.pool.next();
        scanner.captureNext = run.wantSample();
        sentAt = performance.now();
        socket.write(request);
      };
      const scanner = new FrameScanner((type, length, captured) => {
        run.record(sentAt, type, length, request, captured);
        send();
      }, MAX_RESPONSE_SIZE);
      socket.on('data', (chunk: Buffer) => {
        try {
          scanner.push(chunk);
        } catch {
          socket.destroy(); // not our protocol any more: counted on close
        }
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        if (!ended) run.connectionErrors++; // lost before the scenario ended
        end();
      });
      send();
    }
  } else {
    // Each slot opens a connection, sends one request, reads one response, closes, repeats.
    const slot = () => {
      if (run.phase === 'stop') return finished();
      const request = o.pool.next();
      let settled = false;
      const scanner = new FrameScanner((type, length, captured) => {
        settled = true;
        run.record(sentAt, type, length, request, captured);
        socket.destroy();
        slot();
      }, MAX_RESPONSE_SIZE);
      scanner.captureNext = run.wantSample();
      const sentAt = performance.now();
      const socket = connect({ host: HOST, port: o.port, noDelay: true });
      sockets.add(socket);
      const fail = () => {
        if (settled) return;
        settled = true;
        run.connectionErrors++;
        socket.destroy();
        // Keep going, but do not spin on a server that refuses everything.
        if (run.connectionErrors > 1000) run.phase = 'stop';
        setTimeout(slot, 1);
      };
      socket.on('data', (chunk: Buffer) => {
        try {
          scanner.push(chunk);
        } catch {
          fail();
        }
      });
      socket.on('error', fail);
      socket.on('close', () => {
        sockets.delete(socket);
        fail(); // closed before its response arrived
      });
      socket.write(request);
    };
    for (let i = 0; i < o.concurrency; i++) {
      live++;
      slot();
    }
  }

  // Warm-up, then the timed window.
  await sleep(o.warmupMs);
  const cpuStart = o.serverCpuMicros();
  const t0 = performance.now();
  run.startMeasuring(o.warmupMs, o.durationMs);
  await sleep(o.durationMs);
  run.phase = 'stop';
  const seconds = (performance.now() - t0) / 1000;
  const cpuEnd = o.serverCpuMicros();

  // Let the requests still in flight finish (they are not counted); never wait forever.
  const drained = await withTimeout(done, 5_000).then(
    () => true,
    () => false,
  );
  if (!drained) for (const s of sockets) s.destroy();

  return {
    requests: run.requests,
    seconds,
    latenciesMs: run.latencies(),
    serverCpuMicros: cpuEnd - cpuStart,
    refusals: run.refusals,
    connectionErrors: run.connectionErrors,
    meanResponseBytes: run.requests ? run.responseBytes / run.requests : 0,
    samples: run.samples,
  };
}

function openPersistent(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port, noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Rejects with `message` if `promise` has not settled within `ms`; the timer never outlives it. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message = `timed out after ${ms} ms`): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** Percentile by nearest rank over a (copied, sorted) sample. */
export function percentiles(values: Float64Array, ps: readonly number[]): number[] {
  if (values.length === 0) return ps.map(() => Number.NaN);
  const sorted = Float64Array.from(values).sort();
  return ps.map(
    (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number,
  );
}

export interface FillOptions {
  readonly port: number;
  readonly factory: RequestFactory;
  /** Client indices 0..total-1 are sent, each once. */
  readonly total: number;
  readonly connections: number;
  /** Requests outstanding per connection; frames are written `batch` at a time. */
  readonly window: number;
  readonly batch: number;
  readonly onProgress: (sent: number, answered: number) => void;
  readonly timeoutMs: number;
}

export interface FillResult {
  readonly answered: number;
  readonly refusals: number;
  /** Highest count the host reported in a response: the group's size after the fill. */
  readonly maxCount: number;
  readonly seconds: number;
}

/**
 * Sends `total` requests with distinct client IDs as fast as the host takes them, pipelining
 * `window` requests per connection (the host reads many frames per TCP chunk and signs them
 * in one batch). Responses are decoded only as far as the count field.
 */
export async function fillClientIds(o: FillOptions): Promise<FillResult> {
  const started = performance.now();
  let next = 0;
  let answered = 0;
  let refusals = 0;
  let maxCount = 0;
  const progress = setInterval(() => o.onProgress(next, answered), 1000);
  const sockets: Socket[] = [];
  try {
    await withTimeout(
      Promise.all(
        Array.from({ length: o.connections }, async () => {
          const socket = await openPersistent(o.port);
          sockets.push(socket);
          const reader = new FrameReader(MAX_RESPONSE_SIZE);
          let outstanding = 0;
          await new Promise<void>((resolve, reject) => {
            const top = () => {
              while (outstanding + o.batch <= o.window && next < o.total) {
                const count = Math.min(o.batch, o.total - next);
                socket.write(o.factory.frames(next, count));
                next += count;
                outstanding += count;
              }
              if (outstanding === 0 && next >= o.total) {
                socket.end();
                resolve();
              }
            };
            socket.on('data', (chunk: Buffer) => {
              for (const payload of reader.push(chunk)) {
                outstanding--;
                answered++;
                if (payload[1] === MessageType.ActivationResponse)
                  maxCount = Math.max(maxCount, payload.readUInt32BE(60));
                else refusals++;
              }
              top();
            });
            socket.on('error', reject);
            socket.on('close', () =>
              reject(new Error(`fill connection closed with ${outstanding} requests unanswered`)),
            );
            top();
          });
        }),
      ),
      o.timeoutMs,
      `the fill did not finish in ${o.timeoutMs / 1000} s`,
    );
  } finally {
    clearInterval(progress);
    for (const s of sockets) s.destroy();
  }
  o.onProgress(next, answered);
  return { answered, refusals, maxCount, seconds: (performance.now() - started) / 1000 };
}

export { REQUEST_FRAME_SIZE };
