import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '@volact/core/testing';
import { startTestSlapd, type TestSlapd } from './slapd-test-server.js';

/**
 * Tests run two files at a time: the port the launcher picked may be taken by another process
 * before slapd binds it. It starts on another — and a port that answers because another process
 * holds it is not taken for slapd's.
 */
let server: TestSlapd | undefined;
afterAll(async () => {
  await server?.stop();
});

describe('the test slapd launcher', () => {
  it('a port taken between picking and binding: slapd starts on another', async () => {
    const taken = await freeLoopbackPort();
    const holder = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => holder.listen(taken, '127.0.0.1', resolve));
    const picked: number[] = [];
    try {
      server = await startTestSlapd({
        pickPort: async () => {
          const port = picked.length === 0 ? taken : await freeLoopbackPort();
          picked.push(port);
          return port;
        },
      });
      expect(picked[0]).toBe(taken);
      expect(picked.length).toBeGreaterThanOrEqual(2);
      expect(server.url).not.toBe(`ldap://127.0.0.1:${taken}`);
      expect(server.url).toBe(`ldap://127.0.0.1:${picked[picked.length - 1]}`);
    } finally {
      holder.close();
    }
    // slapd answers on its port (an LDAP client's first step: the TCP connection).
    const port = Number(new URL(server.url).port);
    await new Promise<void>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', () => resolve()); // taken: slapd holds it
      probe.listen(port, '127.0.0.1', () => probe.close(() => reject(new Error('slapd does not hold its port'))));
    });
  }, 60_000);
});
