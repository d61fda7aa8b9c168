import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writePrivateFile } from './activation.js';

/**
 * The proxy files `--collect`, `--confirm --out` and `authority confirm-file --out` write: on a
 * disk that fills up part way (a real 64 KiB tmpfs: mounting needs root, as here and in CI;
 * without it the test is skipped, saying why) the command fails, never prints "written" for a
 * truncated file, and a previous file stays whole.
 */
const full = join(tmpdir(), `volact-proxy-file-tmpfs-${process.pid}`);
let mounted = false;
try {
  mkdirSync(full, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full], { stdio: 'ignore' });
  mounted = true;
} catch {
  rmSync(full, { recursive: true, force: true });
}
afterAll(() => {
  if (!mounted) return;
  execFileSync('umount', [full], { stdio: 'ignore' });
  rmSync(full, { recursive: true, force: true });
});

describe('writePrivateFile', () => {
  it.skipIf(!mounted)(
    'a full disk: FILE_WRITE_FAILED, the previous file whole (skipped: mount not permitted here)',
    () => {
      const path = join(full, 'iids.json');
      writeFileSync(path, '{"previous":"file"}\n');
      const text = `${JSON.stringify({ format: 'volact-iid-file/1', pad: 'x'.repeat(200_000) })}\n`;
      expect(() => writePrivateFile(path, text)).toThrow(
        expect.objectContaining({
          code: 'FILE_WRITE_FAILED',
          message: expect.stringMatching(/iids\.json.*disk full\?/),
        }),
      );
      expect(readFileSync(path, 'utf8')).toBe('{"previous":"file"}\n');
      expect(readdirSync(full)).toEqual(['iids.json']);
    },
  );

  it.skipIf(!mounted)('room enough: written whole, mode 0600', () => {
    const path = join(full, 'cids.json');
    rmSync(join(full, 'iids.json'), { force: true });
    writePrivateFile(path, 'c'.repeat(20_000));
    expect(readFileSync(path, 'utf8')).toBe('c'.repeat(20_000));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});
