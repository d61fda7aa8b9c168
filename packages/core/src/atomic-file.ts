import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { CoreError } from './errors.js';

/** The file-system calls writeFileAtomic makes (a test injects a full disk or short writes). */
export interface AtomicWriteFs {
  openSync(path: string, flags: string, mode: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  fstatSync(fd: number): { size: number };
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  rmSync(path: string, options: { force: boolean }): void;
}

const nodeFs: AtomicWriteFs = {
  openSync: (path, flags, mode) => fs.openSync(path, flags, mode),
  writeSync: (fd, buffer, offset, length) => fs.writeSync(fd, buffer, offset, length),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  fstatSync: (fd) => fs.fstatSync(fd),
  closeSync: (fd) => fs.closeSync(fd),
  renameSync: (from, to) => fs.renameSync(from, to),
  rmSync: (path, options) => fs.rmSync(path, options),
};

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return `${code}: no space left on the device (disk full?)`;
  if (code === 'EROFS') return 'EROFS: the file system is read-only';
  if (code === 'EACCES' || code === 'EPERM') return `${code}: no permission to write there`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Writes every byte of `data` to the open file `fd` (writeSync may write part of a buffer: a
 * full disk says so only in its count). A write that writes nothing is ENOSPC.
 */
export function writeWholeSync(
  fd: number,
  data: string | Uint8Array,
  io: Pick<AtomicWriteFs, 'writeSync'> = nodeFs,
): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let offset = 0;
  while (offset < bytes.length) {
    const written = io.writeSync(fd, bytes, offset, bytes.length - offset);
    if (written <= 0) throw Object.assign(new Error('ENOSPC: a write wrote nothing'), { code: 'ENOSPC' });
    offset += written;
  }
}

/**
 * Writes `data` to `path` atomically and whole: a temporary file beside it (mode 0600 unless
 * told), every byte written (a short write is continued; one that writes nothing is a full
 * disk), fsync, its size checked, then renamed over `path`. On any failure the temporary file
 * is removed, `path` is left as it was (a good previous file is never replaced by a truncated
 * one), and FILE_WRITE_FAILED names the path and why ("disk full?" for ENOSPC).
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: { mode?: number; fs?: AtomicWriteFs } = {},
): void {
  const io = options.fs ?? nodeFs;
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = io.openSync(temporary, 'wx', options.mode ?? 0o600);
  } catch (err) {
    throw new CoreError('FILE_WRITE_FAILED', `could not write ${path}: ${reason(err)}`);
  }
  try {
    try {
      writeWholeSync(fd, bytes, io);
      io.fsyncSync(fd);
      const size = io.fstatSync(fd).size;
      if (size !== bytes.length) {
        throw new Error(`${size} of ${bytes.length} bytes are on disk (disk full?)`);
      }
    } finally {
      io.closeSync(fd);
    }
    io.renameSync(temporary, path);
  } catch (err) {
    try {
      io.rmSync(temporary, { force: true });
    } catch {
      // already gone, or the directory went away: nothing left to clean
    }
    throw new CoreError(
      'FILE_WRITE_FAILED',
      `could not write ${path} (${bytes.length} bytes): ${reason(err)}; any previous file there is unchanged`,
    );
  }
}
