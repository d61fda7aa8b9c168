import { createServer } from 'node:net';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '@volact/core/testing';
import { startTestPostgres, type TestPostgres } from './postgres-test-server.js';

/**
 * Tests run two files at a time: the port the launcher picked may be taken by another process
 * before PostgreSQL binds it ("could not bind … Address already in use"). It starts on another.
 */
let server: TestPostgres | undefined;
afterAll(() => server?.stop());

describe('the test PostgreSQL launcher', () => {
  it('a port taken between picking and binding: the server starts on another', async () => {
    const taken = await freeLoopbackPort();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(taken, '127.0.0.1', resolve));
    const picked: number[] = [];
    try {
      server = await startTestPostgres({
        pickPort: async () => {
          const port = picked.length === 0 ? taken : await freeLoopbackPort();
          picked.push(port);
          return port;
        },
      });
      expect(picked[0]).toBe(taken);
      expect(picked.length).toBeGreaterThanOrEqual(2);
      expect(new URL(server.url).port).not.toBe(String(taken));
      const client = new pg.Client({ connectionString: await server.createDatabase() });
      await client.connect();
      try {
        expect((await client.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await client.end();
      }
    } finally {
      holder.close();
    }
  }, 60_000);
});
