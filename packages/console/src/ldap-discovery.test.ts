import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'ldapts';
import { Authority } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { startTestSlapd, type TestSlapd } from '@volact/directory/testing';
import { VolumeConsole } from './console.js';
import { addressesFromDirectory } from './ldap-discovery.js';

const TOKEN = 'console-agent-token-0123456789';

describe('discovery by an LDAP query (computer entries)', () => {
  let slapd: TestSlapd;
  let dir: string;
  beforeAll(async () => {
    slapd = await startTestSlapd();
    dir = mkdtempSync(join(tmpdir(), 'volact-console-ldap-'));
    const client = new Client({ url: slapd.url });
    try {
      await client.bind(slapd.adminDn, slapd.adminPassword);
      await client.add(`ou=computers,${slapd.base}`, { objectClass: ['organizationalUnit'], ou: 'computers' });
      await client.add(`cn=pc-01,ou=computers,${slapd.base}`, {
        objectClass: ['computer'],
        cn: 'pc-01',
        dNSHostName: '127.0.0.1',
      });
      await client.add(`cn=gone,ou=computers,${slapd.base}`, { objectClass: ['device'], cn: 'gone.invalid' });
    } finally {
      await client.unbind();
    }
  }, 30_000);
  afterAll(async () => {
    await slapd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("finds the computers' agents on the agent port: the live one added, the missing one silent", async () => {
    const authority = Authority.init(join(dir, 'authority'));
    await authority.addGroup({ name: 'office14' });
    const product = await authority.productConfig('office14');
    await authority.close();
    const stateDir = join(dir, 'pc-01');
    Licence.init({ stateDir, product, hardwareId: 'hw-pc-01' });
    const agent = createAgentServer({ stateDir, adminToken: TOKEN });
    await agent.listen({ host: '127.0.0.1', port: 0 });
    const port = (agent.server.address() as { port: number }).port;
    const console = VolumeConsole.init(join(dir, 'console'));
    try {
      const found = await addressesFromDirectory(
        { url: slapd.url, bindDn: slapd.userDn, password: slapd.userPassword },
        { base: slapd.base },
        port,
      );
      expect(found.computers).toBe(2);
      expect(found.addresses.sort()).toEqual([`gone.invalid:${port}`, `127.0.0.1:${port}`].sort());
      const result = await console.discover(found.addresses, TOKEN, { timeoutMs: 2_000 });
      expect(result.found.map((f) => f.address)).toEqual([`127.0.0.1:${port}`]);
      expect(result.silent + result.refused.length).toBe(1);
    } finally {
      await console.close();
      await agent.close();
    }
  }, 30_000);
});
