import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../ports.js';
import { dig, startTestBind, type TestBind } from './bind-test-server.js';

/**
 * Tests run two files at a time: the port a launcher picked may be taken by another process
 * before named binds it. The launcher then starts named again on another port.
 */
let bind: TestBind | undefined;
afterAll(async () => {
  await bind?.stop();
});

describe('the test BIND launcher', () => {
  it('a port taken between picking and binding: named starts on another', async () => {
    const taken = await freeLoopbackPort({ udp: true });
    const tcp = createServer();
    await new Promise<void>((resolve) => tcp.listen(taken, '127.0.0.1', resolve));
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(taken, '127.0.0.1', resolve));
    const picked: number[] = [];
    try {
      bind = await startTestBind({
        zones: ['ports.test'],
        pickPort: async () => {
          const port = picked.length === 0 ? taken : await freeLoopbackPort({ udp: true });
          picked.push(port);
          return port;
        },
      });
      expect(picked[0]).toBe(taken);
      expect(picked.length).toBeGreaterThanOrEqual(2);
      expect(bind.port).not.toBe(taken);
      expect(dig(bind.port, 'ns1.ports.test', 'A')).toBe('127.0.0.1');
    } finally {
      tcp.close();
      udp.close();
    }
  }, 60_000);
});
