import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createHostLogDestination } from './host-runtime.js';

describe('host runtime', () => {
  it('writes a quiet host’s log lines within a second (they are not held until 4 KiB)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volact-log-'));
    const file = join(dir, 'host.log');
    const logger = pino(createHostLogDestination(file));
    logger.info({ decision: 'COUNTED' }, 'request');
    await new Promise((r) => setTimeout(r, 900));
    expect(readFileSync(file, 'utf8')).toContain('"decision":"COUNTED"');
    rmSync(dir, { recursive: true, force: true });
  });
});
