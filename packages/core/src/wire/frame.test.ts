import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CoreError } from '../errors.js';
import { FRAME_HEADER, FrameError, FrameReader, frame } from './frame.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CoreError);
    return (err as CoreError).code;
  }
  throw new Error('expected a CoreError');
}

/** Feeds chunks and returns all payloads, copied (so later pushes cannot alter them). */
function readAll(reader: FrameReader, chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) for (const p of reader.push(c)) out.push(Buffer.from(p));
  return out;
}

function seeded(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

describe('frame', () => {
  it('prefixes the payload with its length as a 4-byte big-endian integer', () => {
    const payload = Buffer.from('hello');
    const framed = frame(payload);
    expect(framed.length).toBe(FRAME_HEADER + 5);
    expect(framed.readUInt32BE(0)).toBe(5);
    expect(framed.subarray(4)).toEqual(payload);
  });
});

describe('FrameReader', () => {
  const payloads = [randomBytes(68), randomBytes(1), randomBytes(300), randomBytes(68), randomBytes(1024)];
  const stream = Buffer.concat(payloads.map(frame));

  it('returns several frames from one chunk, in order', () => {
    expect(readAll(new FrameReader(1024), [stream])).toEqual(payloads);
  });

  it('reassembles frames fed byte by byte', () => {
    const reader = new FrameReader(1024);
    const chunks = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    expect(readAll(reader, chunks)).toEqual(payloads);
    expect(reader.bufferedBytes).toBe(0);
  });

  it('reassembles frames split at every possible pair of boundaries', () => {
    const small = Buffer.concat([frame(Buffer.from('abcdefg')), frame(Buffer.from('xy')), frame(Buffer.from('z'))]);
    for (let i = 0; i <= small.length; i++) {
      for (let j = i; j <= small.length; j++) {
        const got = readAll(new FrameReader(64), [small.subarray(0, i), small.subarray(i, j), small.subarray(j)]);
        expect(got.map(String)).toEqual(['abcdefg', 'xy', 'z']);
      }
    }
  });

  it('reassembles frames split at random boundaries (seeded)', () => {
    const rand = seeded(20260101);
    for (let trial = 0; trial < 200; trial++) {
      const chunks: Buffer[] = [];
      for (let off = 0; off < stream.length;) {
        const len = 1 + rand(trial % 2 ? 10 : 400);
        chunks.push(stream.subarray(off, off + len));
        off += len;
      }
      expect(readAll(new FrameReader(1024), chunks)).toEqual(payloads);
    }
  });

  it('holds back an incomplete frame and reports how much is buffered', () => {
    const reader = new FrameReader(1024);
    expect(reader.push(stream.subarray(0, 3))).toEqual([]);
    expect(reader.bufferedBytes).toBe(3);
    expect(reader.push(stream.subarray(3, 50))).toEqual([]);
    expect(reader.bufferedBytes).toBe(50);
    const [first] = reader.push(stream.subarray(50, 72 + 2));
    expect(first).toEqual(payloads[0]);
    expect(reader.bufferedBytes).toBe(2);
  });

  it('accepts a frame of exactly the maximum and refuses one byte more with FRAME_TOO_LARGE', () => {
    expect(readAll(new FrameReader(100), [frame(Buffer.alloc(100, 7))])).toEqual([Buffer.alloc(100, 7)]);
    expect(codeOf(() => new FrameReader(100).push(frame(Buffer.alloc(101))))).toBe('FRAME_TOO_LARGE');
  });

  it('refuses a huge declared length as soon as the header is complete, before any payload arrives', () => {
    for (const len of [1025, 65_536, 0x7fffffff, 0xffffffff]) {
      const header = Buffer.alloc(4);
      header.writeUInt32BE(len);
      const reader = new FrameReader(1024);
      expect(reader.push(header.subarray(0, 2))).toEqual([]);
      let message = '';
      try {
        reader.push(header.subarray(2));
      } catch (err) {
        expect((err as CoreError).code).toBe('FRAME_TOO_LARGE');
        message = (err as CoreError).message;
      }
      expect(message).toContain(String(len));
      expect(message).toContain('1024');
    }
  });

  it('refuses a declared length of zero with FRAME_MALFORMED', () => {
    expect(codeOf(() => new FrameReader(1024).push(Buffer.alloc(4)))).toBe('FRAME_MALFORMED');
    // also after good frames in the same chunk
    expect(codeOf(() => new FrameReader(1024).push(Buffer.concat([frame(Buffer.from('ok')), Buffer.alloc(4)])))).toBe(
      'FRAME_MALFORMED',
    );
  });

  it('hands over the frames that were complete in front of a bad header with the error', () => {
    const bad = Buffer.alloc(4);
    bad.writeUInt32BE(5000);
    const reader = new FrameReader(1024);
    let caught: unknown;
    try {
      reader.push(
        Buffer.concat([frame(Buffer.from('one')), frame(Buffer.from('two')), bad, frame(Buffer.from('three'))]),
      );
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FrameError);
    expect(caught).toBeInstanceOf(CoreError);
    expect((caught as FrameError).code).toBe('FRAME_TOO_LARGE');
    expect((caught as FrameError).completed.map(String)).toEqual(['one', 'two']);
    let zero: unknown;
    try {
      new FrameReader(1024).push(Buffer.alloc(4));
    } catch (err) {
      zero = err;
    }
    expect((zero as FrameError).code).toBe('FRAME_MALFORMED');
    expect((zero as FrameError).completed).toEqual([]);
  });

  it('refuses a bad header that follows good frames split across chunks', () => {
    const reader = new FrameReader(16);
    const bad = Buffer.alloc(4);
    bad.writeUInt32BE(17);
    expect(readAll(reader, [frame(Buffer.from('a')), frame(Buffer.from('b')).subarray(0, 3)]).map(String)).toEqual([
      'a',
    ]);
    expect(codeOf(() => reader.push(Buffer.concat([frame(Buffer.from('b')).subarray(3), bad])))).toBe(
      'FRAME_TOO_LARGE',
    );
  });
});
