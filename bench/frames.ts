import { randomBytes } from 'node:crypto';
import { FRAME_HEADER, encodeActivationRequest, frame, licenceStateCode } from '@volact/core';

/** A framed activation request: 4-byte length prefix + 68-byte payload. */
export const REQUEST_FRAME_SIZE = 72;

/**
 * Builds valid framed activation requests for one group. Client IDs are deterministic —
 * a per-run random 12-byte prefix followed by a 32-bit index — so the pool used by the timed
 * scenarios (indices 0..poolSize-1) and the memory fill (indices 0..N-1) overlap exactly and
 * the host ends up holding exactly N distinct client IDs. Nonces are random per frame.
 * Each frame goes through encodeActivationRequest, which computes the 8-byte check.
 */
export class RequestFactory {
  readonly #prefix = randomBytes(12);
  readonly #state = licenceStateCode('initial-grace');

  constructor(readonly groupId: Buffer) {}

  clientId(index: number): Buffer {
    const id = Buffer.allocUnsafe(16);
    this.#prefix.copy(id, 0);
    id.writeUInt32BE(index, 12);
    return id;
  }

  /** `count` consecutive frames for client indices first.., in one buffer. */
  frames(first: number, count: number): Buffer {
    const out = Buffer.allocUnsafe(count * REQUEST_FRAME_SIZE);
    const nonces = randomBytes(16 * count);
    const now = Date.now();
    for (let i = 0; i < count; i++) {
      const payload = encodeActivationRequest({
        licenceState: this.#state,
        groupId: this.groupId,
        clientId: this.clientId(first + i),
        nonce: nonces.subarray(16 * i, 16 * (i + 1)),
        clientTime: now,
      });
      frame(payload).copy(out, i * REQUEST_FRAME_SIZE);
    }
    return out;
  }
}

/** A ring of pre-built request frames, so the hot loop only hands out existing buffers. */
export class FramePool {
  readonly #frames: Buffer[];
  #next = 0;

  constructor(factory: RequestFactory, size: number) {
    const all = factory.frames(0, size);
    this.#frames = Array.from({ length: size }, (_, i) =>
      all.subarray(i * REQUEST_FRAME_SIZE, (i + 1) * REQUEST_FRAME_SIZE),
    );
  }

  get size(): number {
    return this.#frames.length;
  }

  next(): Buffer {
    const f = this.#frames[this.#next] as Buffer;
    this.#next = this.#next + 1 === this.#frames.length ? 0 : this.#next + 1;
    return f;
  }
}

export type FrameHandler = (type: number, length: number, captured: Buffer | null) => void;

/**
 * Splits a byte stream into frames by their length prefix without copying or decoding:
 * the hot loop only needs to know where each response ends (and its type byte, to count
 * refusals). When `captureNext` is set, the next frame's payload is copied out so it can be
 * verified later, outside the timed part.
 */
export class FrameScanner {
  #header = 0;
  #headerBytes = 0;
  #length = 0;
  #seen = 0;
  #type = 0;
  #capture: Buffer | null = null;
  captureNext = false;

  constructor(
    private readonly onFrame: FrameHandler,
    private readonly maxPayload: number,
  ) {}

  push(chunk: Buffer): void {
    const n = chunk.length;
    let off = 0;
    while (off < n) {
      if (this.#seen === this.#length) {
        // Between frames: read (the rest of) the 4-byte big-endian length prefix.
        while (this.#headerBytes < FRAME_HEADER && off < n) {
          this.#header = this.#header * 256 + (chunk[off++] as number);
          this.#headerBytes++;
        }
        if (this.#headerBytes < FRAME_HEADER) return;
        const length = this.#header;
        this.#header = 0;
        this.#headerBytes = 0;
        if (length === 0 || length > this.maxPayload) throw new Error(`peer sent a frame of ${length} bytes`);
        this.#length = length;
        this.#seen = 0;
        this.#capture = this.captureNext ? Buffer.allocUnsafe(length) : null;
        this.captureNext = false;
        if (off === n) return;
      }
      const take = Math.min(this.#length - this.#seen, n - off);
      // payload byte 1 is the message type
      if (this.#seen <= 1 && this.#seen + take > 1) this.#type = chunk[off + 1 - this.#seen] as number;
      if (this.#capture) chunk.copy(this.#capture, this.#seen, off, off + take);
      this.#seen += take;
      off += take;
      if (this.#seen === this.#length) {
        const captured = this.#capture;
        const length = this.#length;
        this.#capture = null;
        this.#seen = this.#length = 0;
        this.onFrame(this.#type, length, captured);
      }
    }
  }
}
