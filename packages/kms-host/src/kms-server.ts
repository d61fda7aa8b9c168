import type { KeyObject } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import {
  CoreError,
  FRAME_HEADER,
  FrameError,
  FrameReader,
  frame,
  encodeErrorResponse,
  HostErrorCode,
} from '@volact/core';
import { BatchSigner } from './batch-signer.js';
import type { KmsService } from './kms-service.js';
import { KmsHostError } from './errors.js';
import {
  ConnectionTable,
  connectionLimits,
  type ConnectionCounters,
  type ConnectionLimits,
} from './connection-limits.js';

/** A request is 68 bytes; anything declaring more than this is not our protocol. */
export const MAX_REQUEST_FRAME = 1024;

/** After a framing error, how long the host reads (and discards) before it drops the peer. */
const LINGER_MS = 2_000;
const FLUSH_SLICE = 1_000;

export interface KmsServerOptions {
  readonly host: string;
  readonly port: number;
  /** Connection caps and deadlines (slowloris); the defaults where absent. */
  readonly limits?: Partial<ConnectionLimits>;
  /** How often changed window entries and statistics are written to disk. */
  readonly flushIntervalMs?: number;
  /**
   * Told after each flush that wrote or failed (for the live status). After a failure the
   * host checkpoints the WAL here, so the space it took is free before the next try.
   */
  readonly onFlush?: (outcome: FlushOutcome) => void;
  readonly logger?: Logger;
}

/** What the last flush did: how many client IDs are still not on disk, and its error. */
export interface FlushOutcome {
  readonly at: number;
  readonly unsaved: number;
  readonly error: unknown;
}

/** After a failed flush, smaller slices: on a nearly full disk a small transaction may still fit. */
const FLUSH_SLICE_AFTER_ERROR = 50;
/** How long a stop keeps trying to write the window before it reports what it could not. */
const FINAL_FLUSH_MS = 2_000;

/**
 * The TCP transport: framing, limits, batching of signatures. Malformed frames are answered
 * with an error frame and the connection is closed when the byte stream cannot be trusted any
 * more; nothing a peer sends can crash the process or change a count unless it is a valid request.
 */
export class KmsServer {
  readonly #server: Server;
  readonly #signer: BatchSigner;
  readonly #sockets = new Set<Socket>();
  readonly #table: ConnectionTable;
  #sweepTimer: NodeJS.Timeout | undefined;
  /** performance.now() at the last sweep: the idle clock (a timer per socket costs more per read). */
  #coarseNow = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #flushing = false;
  #sliceRows = FLUSH_SLICE;
  #address: { host: string; port: number } | undefined;

  constructor(
    readonly service: KmsService,
    signingKey: KeyObject,
    private readonly options: KmsServerOptions,
  ) {
    this.#signer = new BatchSigner(signingKey, service.certificate.encoded);
    this.#server = createServer({ noDelay: true }, (socket) => this.#onConnection(socket));
    // Admission (caps per source, the reserve, eviction) is the table's: see #onConnection.
    this.#table = new ConnectionTable(connectionLimits(options.limits));
  }

  get signer(): BatchSigner {
    return this.#signer;
  }

  /** Open connections and sources, and what the limits refused or closed so far. */
  connections(): ConnectionCounters & { largestSource: number } {
    return { ...this.#table.counters, largestSource: this.#table.largestSource() };
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) =>
        reject(
          new KmsHostError(
            'HOST_LISTEN_FAILED',
            `cannot listen on ${this.options.host}:${this.options.port}: ${err.message}`,
          ),
        );
      this.#server.once('error', onError);
      this.#server.listen(this.options.port, this.options.host, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
    this.#server.on('error', (err) => this.options.logger?.error({ err }, 'server error'));
    const addr = this.#server.address();
    if (!addr || typeof addr === 'string') throw new KmsHostError('HOST_LISTEN_FAILED', 'no TCP address');
    this.#address = { host: addr.address, port: addr.port };
    this.#flushTimer = setInterval(() => this.#flush(), this.options.flushIntervalMs ?? 250);
    this.#flushTimer.unref();
    return this.#address;
  }

  get address(): { host: string; port: number } | undefined {
    return this.#address;
  }

  /**
   * Writes the window in slices of FLUSH_SLICE rows, one event-loop turn each, so a busy
   * second's changes never hold the loop for long (one big transaction stalled p99.9 by ~10 ms).
   */
  #flush(): void {
    if (this.#flushing) return;
    const slice = () => {
      if (!this.#address) {
        this.#flushing = false; // closing: close() writes the rest in one go
        return;
      }
      let left: number;
      try {
        left = this.service.flush(this.#sliceRows);
      } catch (err) {
        // Kept in memory and retried every interval (in small slices) until the disk takes it.
        this.#sliceRows = FLUSH_SLICE_AFTER_ERROR;
        this.options.onFlush?.({ at: Date.now(), unsaved: this.service.unsavedCount, error: err });
        this.#flushing = false;
        return;
      }
      this.#sliceRows = FLUSH_SLICE;
      this.options.onFlush?.({ at: Date.now(), unsaved: left, error: undefined });
      if (left > 0) {
        setImmediate(slice);
        return;
      }
      this.#flushing = false;
    };
    this.#flushing = true;
    slice();
  }

  #onConnection(socket: Socket): void {
    const admission = this.#table.admit(socket);
    if (!admission.admitted) {
      // Closed unread: a flood costs the host an accept and a close, nothing more.
      this.options.logger?.debug({ source: socket.remoteAddress, reason: admission.reason }, 'connection refused');
      socket.destroy();
      return;
    }
    if (admission.evicted) admission.evicted.socket.destroy();
    const conn = admission.connection;
    const limits = this.#table.limits;
    this.#startSweeping();
    conn.prefixDue = performance.now() + limits.headerDeadlineMs;
    conn.lastActive = this.#coarseNow;
    this.#sockets.add(socket);
    const reader = new FrameReader(MAX_REQUEST_FRAME);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.#sockets.delete(socket);
      this.#table.release(conn);
    });
    const deliver = (framed: Buffer) => {
      if (!socket.destroyed) socket.write(framed);
    };
    const source = conn.source.key;
    let outOfSync = false;
    socket.on('data', (chunk: Buffer) => {
      if (outOfSync) return; // after a bad length prefix nothing more on this stream is read
      conn.lastActive = this.#coarseNow;
      if (conn.prefixDue !== 0 && (conn.received += chunk.length) >= FRAME_HEADER) conn.prefixDue = 0;
      let payloads: Buffer[];
      let framingError: unknown;
      try {
        payloads = reader.push(chunk);
      } catch (err) {
        // Frames complete in front of a bad length prefix are served like any others.
        payloads = err instanceof FrameError ? err.completed : [];
        framingError = err;
      }
      // The frame deadline runs from a frame's first byte; trickling bytes do not extend it.
      if (reader.bufferedBytes === 0) conn.frameDue = 0;
      else if (payloads.length > 0 || conn.frameDue === 0) conn.frameDue = performance.now() + limits.frameDeadlineMs;
      for (const payload of payloads) {
        const decision = this.service.handle(payload, source);
        if (decision.kind === 'counted') this.#signer.enqueue(decision.body, deliver);
        else deliver(frame(decision.payload));
      }
      if (framingError !== undefined) {
        // The length prefix is bad: the stream is out of sync, so answer once and close —
        // after the signed answers to the frames in front of it.
        // (Flushed unconditionally: bodies queued by an earlier chunk in this turn go out first.)
        this.#signer.flush();
        this.service.stats.totalRequests++;
        this.service.stats.failedRequests++;
        const message = framingError instanceof CoreError ? framingError.message : 'bad frame';
        this.options.logger?.info({ decision: 'MALFORMED_FRAME', detail: message }, 'request');
        outOfSync = true;
        conn.prefixDue = conn.frameDue = 0; // the linger below decides when it goes
        socket.end(frame(encodeErrorResponse(HostErrorCode.MALFORMED_REQUEST, undefined, message)));
        // Lingering close: destroying the socket while the peer's bytes still arrive would
        // reset the connection, and the kernel would drop the answers not yet sent. Discard
        // input until the peer closes its side (which closes ours), for a short while at most.
        const linger = setTimeout(() => socket.destroy(), LINGER_MS);
        linger.unref();
        socket.once('close', () => clearTimeout(linger));
        return;
      }
      // Back-pressure: a peer that does not read its responses stops being read.
      if (socket.writableLength > 1 << 20) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
  }

  /**
   * One timer for every connection's deadlines and idle timeout, running while connections
   * are open. A tenth of the shortest limit apart, so a deadline is enforced at most that late.
   */
  #startSweeping(): void {
    if (this.#sweepTimer) return;
    const l = this.#table.limits;
    const every = Math.min(
      500,
      Math.max(5, Math.floor(Math.min(l.headerDeadlineMs, l.frameDeadlineMs, l.idleTimeoutMs) / 10)),
    );
    this.#coarseNow = performance.now();
    this.#sweepTimer = setInterval(() => this.#sweep(), every);
    this.#sweepTimer.unref();
  }

  #sweep(): void {
    const now = (this.#coarseNow = performance.now());
    if (this.#table.open === 0) {
      clearInterval(this.#sweepTimer);
      this.#sweepTimer = undefined;
      return;
    }
    const idleBefore = now - this.#table.limits.idleTimeoutMs;
    const counters = this.#table.counters;
    for (const conn of this.#table.connections()) {
      const late = (conn.prefixDue !== 0 && conn.prefixDue <= now) || (conn.frameDue !== 0 && conn.frameDue <= now);
      if (late) counters.closedByDeadline++;
      else if (conn.lastActive <= idleBefore && conn.frameDue === 0 && conn.prefixDue === 0) counters.closedIdle++;
      else continue;
      this.#table.release(conn);
      conn.socket.destroy();
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#flushTimer);
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#signer.flush();
    // Answers already written reach their clients: end each connection, and force it shut
    // only if the peer does not close its side in time.
    for (const s of this.#sockets) {
      s.end();
      setTimeout(() => s.destroy(), LINGER_MS).unref();
    }
    await closed;
    this.#address = undefined;
    await this.#finalFlush();
  }

  /**
   * Writes everything answered before the stop. A failure is retried (after a checkpoint, in
   * small slices, so as much as fits is saved) for FINAL_FLUSH_MS; then the stop fails with
   * HOST_WINDOW_UNSAVED and the number of client IDs lost, never silently.
   */
  async #finalFlush(): Promise<void> {
    const deadline = Date.now() + FINAL_FLUSH_MS;
    for (;;) {
      let error: unknown;
      try {
        const left = this.service.flush(this.#sliceRows);
        this.options.onFlush?.({ at: Date.now(), unsaved: left, error: undefined });
        if (left === 0) return;
        continue;
      } catch (err) {
        error = err;
        this.#sliceRows = FLUSH_SLICE_AFTER_ERROR;
        this.options.onFlush?.({ at: Date.now(), unsaved: this.service.unsavedCount, error: err });
      }
      if (Date.now() >= deadline) {
        const n = this.service.unsavedCount;
        throw new KmsHostError(
          'HOST_WINDOW_UNSAVED',
          `${n} client ID${n === 1 ? ' was' : 's were'} answered but not saved at shutdown: ${error instanceof Error ? error.message : String(error)}. They count again when those clients renew (within the renewal interval)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
