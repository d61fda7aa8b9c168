import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority, createAuthorityServer } from '@volact/authority';
import { Licence } from '@volact/client';
import { makeInstallationId, parseKey } from '@volact/core';
import { HostState, KmsHostError, activateHostOnline } from '@volact/kms-host';
import { bulkConfirm } from '../../packages/console/src/authority-client.js';
import { startTestPostgres, type TestPostgres } from '@volact/authority/testing';

/**
 * Every client of the authority takes its 503 STORE_UNAVAILABLE (PostgreSQL down behind a
 * running node) for what it is: the authority cannot decide now, retry — AUTHORITY_UNREACHABLE,
 * never a refusal of the key. A real PostgreSQL, stopped and started again by the test.
 */
let postgres: TestPostgres | undefined;
const dir = mkdtempSync(join(tmpdir(), 'volact-outage-'));
beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);
afterAll(() => {
  try {
    postgres?.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('clients of an authority whose database is down', () => {
  it('client activate and host activate report AUTHORITY_UNREACHABLE, a bulk confirmation STORE_UNAVAILABLE per IID; all succeed once it is back', async () => {
    const pgServer = postgres!;
    const db = await pgServer.createDatabase();
    const authority = Authority.init(join(dir, 'authority'), { databaseUrl: db });
    await authority.addGroup({ name: 'office14' });
    const mak = (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 10 })).key;
    const hostKey = (await authority.mintKey({ type: 'kms-host', groups: ['office14'] })).key;
    const product = await authority.productConfig('office14');
    const app = createAuthorityServer(authority);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    try {
      const licence = Licence.init({ stateDir: join(dir, 'client'), product, hardwareId: 'hw-client' });
      licence.installKey(mak);
      const host = HostState.installKey(join(dir, 'host'), hostKey, 'hw-host', Date.now());
      const phoneIid = makeInstallationId({
        kind: 'installation',
        key: parseKey(mak),
        hardwareId: 'hw-isolated',
        groupIds: [product.group.id],
      }).text;

      pgServer.halt();
      const client = await licence.activate({ authority: url });
      expect(client.ok).toBe(false);
      expect(client.code).toBe('AUTHORITY_UNREACHABLE');
      expect(client.message).toContain('STORE_UNAVAILABLE');
      const hostErr = await activateHostOnline(host, url).catch((err: unknown) => err);
      expect(hostErr).toBeInstanceOf(KmsHostError);
      expect((hostErr as KmsHostError).code).toBe('AUTHORITY_UNREACHABLE');
      // A bulk call is answered item by item: each IID the database could not decide says so, to be sent again.
      const [bulk] = await bulkConfirm({ url }, [phoneIid]);
      expect(bulk).toMatchObject({ ok: false, error: { code: 'STORE_UNAVAILABLE' } });

      pgServer.resume();
      let again = await licence.activate({ authority: url });
      for (let i = 0; i < 50 && !again.ok; i++) {
        await new Promise((r) => setTimeout(r, 200));
        again = await licence.activate({ authority: url });
      }
      expect(again.ok).toBe(true);
      expect((await activateHostOnline(host, url)).hostsUsed).toBe(1);
      expect((await bulkConfirm({ url }, [phoneIid]))[0]).toMatchObject({ ok: true });
    } finally {
      await app.close();
      await authority.close();
    }
  }, 60_000);
});
