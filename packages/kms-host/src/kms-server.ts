import type { KeyObject } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { CoreError, FrameError, FrameReader, frame, encodeErrorResponse, HostErrorCode } from '@volact/core';
import { BatchSigner } from './batch-signer.js';
import type { KmsService } from './kms-service.js';
import { KmsHostError } from './errors.js';

/** A request is 68 bytes; anything declaring more than this is not our protocol. */
export const MAX_REQUEST_FRAME = 1024;

/** After a framing error, how long the host reads (and discards) before it drops the peer. */
const LINGER_MS = 2_000;
const FLUSH_SLICE = 1_000;

export interface KmsServerOptions {
  readonly host: string;
  readonly port: number;
  /** Connections beyond this are refused at accept. */
  readonly maxConnections?: number;
  /** An idle connection is closed after this long. */
  readonly idleTimeoutMs?: number;
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
    this.#server.maxConnections = options.maxConnections ?? 10_000;
  }

  get signer(): BatchSigner {
    return this.#signer;
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
    this.#sockets.add(socket);
    const reader = new FrameReader(MAX_REQUEST_FRAME);
    socket.setTimeout(this.options.idleTimeoutMs ?? 30_000);
    socket.on('timeout', () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#sockets.delete(socket));
    const deliver = (framed: Buffer) => {
      if (!socket.destroyed) socket.write(framed);
    };
    let outOfSync = false;
    socket.on('data', (chunk: Buffer) => {
      if (outOfSync) return; // after a bad length prefix nothing more on this stream is read
      let payloads: Buffer[];
      let framingError: unknown;
      try {
        payloads = reader.push(chunk);
      } catch (err) {
        // Frames complete in front of a bad length prefix are served like any others.
        payloads = err instanceof FrameError ? err.completed : [];
        framingError = err;
      }
      for (const payload of payloads) {
        const decision = this.service.handle(payload);
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
