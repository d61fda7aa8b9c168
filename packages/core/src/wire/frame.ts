import { CoreError } from '../errors.js';

/**
 * Framing on the KMS TCP connection: every message is a 4-byte big-endian payload length
 * followed by the payload. Lengths are checked before anything is buffered, so a peer
 * cannot make the other side hold more than `maxPayload` bytes per connection.
 */
export const FRAME_HEADER = 4;

export function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, FRAME_HEADER);
  return out;
}

/**
 * A bad length prefix. `completed` holds the payloads that were complete in front of it in the
 * same push: they were framed correctly, and whether they are served must not depend on how
 * the bytes happened to be split into chunks. `prefix` is the 4 bytes read as the length (a
 * peer that is not speaking this protocol shows there: "HTTP" is an HTTP server's answer).
 */
export class FrameError extends CoreError {
  constructor(
    code: 'FRAME_MALFORMED' | 'FRAME_TOO_LARGE',
    message: string,
    readonly completed: Buffer[],
    readonly prefix: Buffer = Buffer.alloc(0),
  ) {
    super(code, message);
  }

  /** The length the prefix declared. */
  get declaredLength(): number {
    return this.prefix.length === FRAME_HEADER ? this.prefix.readUInt32BE(0) : 0;
  }
}

function prefixAt(buf: Buffer, off: number): Buffer {
  return Buffer.from(buf.subarray(off, off + FRAME_HEADER));
}

/**
 * Splits a byte stream into frame payloads. `push` returns the complete payloads found;
 * a declared length outside 1..maxPayload throws a FrameError (FRAME_TOO_LARGE /
 * FRAME_MALFORMED, with the payloads complete before it) and the caller drops the connection
 * (the stream can no longer be trusted to be in sync).
 */
export class FrameReader {
  #pending: Buffer | null = null;
  constructor(readonly maxPayload: number) {}

  push(chunk: Buffer): Buffer[] {
    let buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = null;
    const out: Buffer[] = [];
    let off = 0;
    while (buf.length - off >= FRAME_HEADER) {
      const len = buf.readUInt32BE(off);
      if (len === 0) throw new FrameError('FRAME_MALFORMED', 'empty frame', out, prefixAt(buf, off));
      if (len > this.maxPayload) {
        throw new FrameError(
          'FRAME_TOO_LARGE',
          `frame of ${len} bytes exceeds the limit of ${this.maxPayload}`,
          out,
          prefixAt(buf, off),
        );
      }
      if (buf.length - off - FRAME_HEADER < len) break;
      out.push(buf.subarray(off + FRAME_HEADER, off + FRAME_HEADER + len));
      off += FRAME_HEADER + len;
    }
    if (off < buf.length) {
      // Copy so a small remainder does not pin a large socket buffer.
      buf = Buffer.from(buf.subarray(off));
      this.#pending = buf;
    }
    return out;
  }

  get bufferedBytes(): number {
    return this.#pending?.length ?? 0;
  }
}
