import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic, type AtomicWriteFs } from './atomic-file.js';
import { CoreError } from './errors.js';

/**
 * A file written over a good one (a backup, a proxy file) must end whole or not at all: a full
 * disk writes part of a buffer and says so only in the count writeSync returns.
 */
let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(join(tmpdir(), 'volact-atomic-'));
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const real: AtomicWriteFs = {
  openSync: (p, f, m) => fs.openSync(p, f, m),
  writeSync: (fd, b, o, l) => fs.writeSync(fd, b, o, l),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  fstatSync: (fd) => fs.fstatSync(fd),
  closeSync: (fd) => fs.closeSync(fd),
  renameSync: (a, b) => fs.renameSync(a, b),
  rmSync: (p, o) => fs.rmSync(p, o),
};

/** A disk with `room` bytes left: a write beyond it is cut short, then ENOSPC (what Linux does). */
function diskWithRoom(room: number): AtomicWriteFs {
  let used = 0;
  return {
    ...real,
    writeSync: (fd, buffer, offset, length) => {
      if (used >= room) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      const n = Math.min(length, room - used);
      used += n;
      return fs.writeSync(fd, buffer, offset, n);
    },
  };
}

function setUp(name: string): string {
  const path = join(root, name);
  fs.writeFileSync(path, 'the good old backup\n');
  return path;
}
const leftovers = () => fs.readdirSync(root).filter((f) => f.endsWith('.tmp'));
const failureOf = (work: () => void): CoreError => {
  try {
    work();
  } catch (err) {
    if (err instanceof CoreError) return err;
    throw err;
  }
  throw new Error('did not fail');
};

describe('writeFileAtomic', () => {
  it('writes a new file whole, mode 0600, no temporary left', () => {
    const path = join(root, 'new.json');
    writeFileAtomic(path, 'é'.repeat(100_000));
    expect(fs.readFileSync(path, 'utf8')).toBe('é'.repeat(100_000));
    expect(fs.statSync(path).mode & 0o777).toBe(0o600);
    expect(leftovers()).toEqual([]);
  });

  it('continues short writes (each call writes 7 bytes) to the end', () => {
    const path = setUp('short.json');
    const text = 'x'.repeat(10_000);
    writeFileAtomic(path, text, {
      fs: { ...real, writeSync: (fd, b, o, l) => fs.writeSync(fd, b, o, Math.min(l, 7)) },
    });
    expect(fs.readFileSync(path, 'utf8')).toBe(text);
  });

  it('disk full part way: FILE_WRITE_FAILED naming the path and "disk full?"; the old file intact, no temporary left', () => {
    const path = setUp('full.json');
    const err = failureOf(() => writeFileAtomic(path, 'y'.repeat(200_000), { fs: diskWithRoom(65_536) }));
    expect(err.code).toBe('FILE_WRITE_FAILED');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/ENOSPC.*disk full\?/);
    expect(err.message).toMatch(/previous file there is unchanged/);
    expect(fs.readFileSync(path, 'utf8')).toBe('the good old backup\n');
    expect(leftovers()).toEqual([]);
  });

  it('a write that writes nothing, or a size on disk short of the text: failed, the old file intact', () => {
    const path = setUp('zero.json');
    const zero = failureOf(() => writeFileAtomic(path, 'z'.repeat(100), { fs: { ...real, writeSync: () => 0 } }));
    expect(zero.message).toMatch(/disk full\?/);
    const short = failureOf(() =>
      writeFileAtomic(path, 'z'.repeat(100), {
        fs: { ...real, fstatSync: (fd) => ({ size: fs.fstatSync(fd).size - 1 }) },
      }),
    );
    expect(short.message).toMatch(/99 of 100 bytes/);
    expect(fs.readFileSync(path, 'utf8')).toBe('the good old backup\n');
    expect(leftovers()).toEqual([]);
  });

  it('fsync failing (EIO): failed, the old file intact', () => {
    const path = setUp('eio.json');
    const err = failureOf(() =>
      writeFileAtomic(path, 'new', {
        fs: {
          ...real,
          fsyncSync: () => {
            throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
          },
        },
      }),
    );
    expect(err.message).toMatch(/EIO/);
    expect(fs.readFileSync(path, 'utf8')).toBe('the good old backup\n');
    expect(leftovers()).toEqual([]);
  });

  it('a directory that does not exist: FILE_WRITE_FAILED naming the path', () => {
    const path = join(root, 'no-such-dir', 'x.json');
    const err = failureOf(() => writeFileAtomic(path, 'x'));
    expect(err.code).toBe('FILE_WRITE_FAILED');
    expect(err.message).toContain(path);
  });

  // The real thing when this process may mount (root, as here and in CI): a 64 KiB tmpfs.
  const full = join(tmpdir(), `volact-atomic-tmpfs-${process.pid}`);
  let mounted = false;
  try {
    fs.mkdirSync(full, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full], { stdio: 'ignore' });
    mounted = true;
  } catch {
    fs.rmSync(full, { recursive: true, force: true });
  }
  afterAll(() => {
    if (!mounted) return;
    execFileSync('umount', [full], { stdio: 'ignore' });
    fs.rmSync(full, { recursive: true, force: true });
  });
  it.skipIf(!mounted)('on a real full disk (a 64 KiB tmpfs; skipped: mount not permitted here)', () => {
    const path = join(full, 'backup.json');
    fs.writeFileSync(path, 'the good old backup\n');
    const err = failureOf(() => writeFileAtomic(path, 'w'.repeat(200_000)));
    expect(err.code).toBe('FILE_WRITE_FAILED');
    expect(err.message).toMatch(/disk full\?/);
    expect(fs.readFileSync(path, 'utf8')).toBe('the good old backup\n');
    expect(fs.readdirSync(full)).toEqual(['backup.json']);
  });
});
