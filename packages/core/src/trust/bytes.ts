// Small strict helpers for the trust records' fixed layouts (big-endian, unsigned).

export function writeU64(buf: Buffer, offset: number, value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`${what} must be a non-negative safe integer, got ${value}`);
  buf.writeBigUInt64BE(BigInt(value), offset);
}

export function writeU32(buf: Buffer, offset: number, value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new RangeError(`${what} must be an integer in 0..2^32-1, got ${value}`);
  buf.writeUInt32BE(value, offset);
}

/** A u64 as a number, or null when it exceeds Number.MAX_SAFE_INTEGER (refused by the decoders). */
export function readU64(buf: Buffer, offset: number): number | null {
  const v = buf.readBigUInt64BE(offset);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(v);
}

export function copyOf(buf: Buffer, offset: number, size: number): Buffer {
  return Buffer.from(buf.subarray(offset, offset + size));
}

export function requireLength(value: Uint8Array, size: number, what: string): void {
  if (value.length !== size) throw new RangeError(`${what} must be ${size} bytes, got ${value.length}`);
}
