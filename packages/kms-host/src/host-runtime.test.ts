import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHostLogDestination } from './host-runtime.js';

describe('host runtime', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes a quiet host’s log lines within a second (they are not held until 4 KiB)', () => {
    // Only the flush timer is faked: the file writes stay real, the half-second is not waited.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const dir = mkdtempSync(join(tmpdir(), 'volact-log-'));
    try {
      const file = join(dir, 'host.log');
      const logger = pino(createHostLogDestination(file));
      logger.info({ decision: 'COUNTED' }, 'request');
      // Below 4 KiB the line waits in the buffer…
      expect(readFileSync(file, 'utf8')).not.toContain('"decision":"COUNTED"');
      // …until the periodic flush, well within a second.
      vi.advanceTimersByTime(1000);
      expect(readFileSync(file, 'utf8')).toContain('"decision":"COUNTED"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
