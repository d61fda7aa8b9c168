import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '@volact/core';
import { VolumeConsole } from './console.js';
import { generateFleet } from './generate-fleet.js';
import { openConsoleStore } from './open-store.js';

/**
 * `volact console export --out BACKUP` over the previous good backup, on a disk that fills up
 * part way (a real 64 KiB tmpfs: mounting needs root, as here and in CI; without it the test is
 * skipped, saying why — core's atomic-file.test.ts injects the full disk instead).
 */
const full = join(tmpdir(), `volact-export-tmpfs-${process.pid}`);
let mounted = false;
try {
  mkdirSync(full, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full], { stdio: 'ignore' });
  mounted = true;
} catch {
  rmSync(full, { recursive: true, force: true });
}

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'volact-export-full-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  if (!mounted) return;
  execFileSync('umount', [full], { stdio: 'ignore' });
  rmSync(full, { recursive: true, force: true });
});

describe('console export on a full disk', () => {
  it.skipIf(!mounted)(
    'fails with FILE_WRITE_FAILED ("disk full?") and leaves the previous backup whole (skipped: mount not permitted here)',
    async () => {
      const clock = new ManualClock(Date.UTC(2026, 11, 3, 9));
      const dir = join(root, 'console');
      await VolumeConsole.init(dir, { clock }).close();
      const store = await openConsoleStore(dir);
      await generateFleet(store, 400, { now: clock.now() }); // an export far over 64 KiB
      await store.close();
      const c = VolumeConsole.open(dir, { clock });
      const backup = join(full, 'backup.json');
      writeFileSync(backup, '{"the":"good old backup"}\n');
      const failure = await c.exportTo(backup).then(
        () => null,
        (err: unknown) => err as { code?: string; message: string },
      );
      await c.close();
      expect(failure?.code).toBe('FILE_WRITE_FAILED');
      expect(failure?.message).toContain(backup);
      expect(failure?.message).toMatch(/disk full\?/);
      expect(readFileSync(backup, 'utf8')).toBe('{"the":"good old backup"}\n');
      expect(readdirSync(full)).toEqual(['backup.json']);
    },
  );
});
