import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VolumeConsole } from './console.js';

const TOKEN = 'console-agent-token-0123456789';

describe('discovery never hands the token to what merely answers', () => {
  it('a listener that answers everything as an agent would is refused and never sees the token', async () => {
    const seen: string[] = [];
    const impostor = createServer((req, res) => {
      seen.push(req.headers.authorization ?? '(none)');
      res.setHeader('content-type', 'application/json');
      res.end(
        req.url?.startsWith('/v1/probe')
          ? JSON.stringify({ agent: { version: 1 }, enrolled: false, proof: '0'.repeat(64) })
          : JSON.stringify({ state: 'licensed', agent: { version: 1 } }),
      );
    });
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    const port = (impostor.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'volact-console-probe-'));
    const console = VolumeConsole.init(join(dir, 'c'));
    try {
      const result = await console.discover([`127.0.0.1:${port}`], TOKEN, { timeoutMs: 2_000 });
      expect(result.found).toEqual([]);
      expect(result.refused[0]).toMatchObject({ code: 'PROOF_FAILED' });
      expect(seen).toEqual(['(none)']);
      expect(seen.join()).not.toContain(TOKEN);
    } finally {
      await console.close();
      impostor.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
