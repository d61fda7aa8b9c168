import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { ManualClock, type ProductConfig } from '@volact/core';
import { VolumeConsole } from './console.js';

/** KMS host caching set from the console (slmgr /ckhc, /skhc) over real agents. */
const TOKEN = 'console-caching-agent-token-0123';

let root: string;
let product: ProductConfig;
const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
const agents: { stateDir: string; address: string; app: FastifyInstance }[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-console-caching-'));
  const authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  await authority.close();
  for (const n of [1, 2]) {
    const stateDir = join(root, `machine-${n}`);
    Licence.init({ stateDir, product, hardwareId: `hw-${n}`, clock });
    const app = createAgentServer({ stateDir, adminToken: TOKEN, clock });
    await app.listen({ host: '127.0.0.1', port: 0 });
    agents.push({ stateDir, app, address: `127.0.0.1:${(app.server.address() as AddressInfo).port}` });
  }
});
afterAll(async () => {
  for (const a of agents) await a.app.close();
  rmSync(root, { recursive: true, force: true });
});

const caching = (stateDir: string) => Licence.open({ stateDir, clock }).status().discovery.caching;

describe('VolumeConsole.setKmsHostCaching', () => {
  it('turns caching off on 2 machines (their licence stores say so), logs each, and the refreshed status shows it', async () => {
    const c = VolumeConsole.init(join(root, 'console'), { clock });
    try {
      await c.addMachines(
        agents.map((a) => a.address),
        TOKEN,
        ['pc-1', 'pc-2'],
      );
      expect(agents.map((a) => caching(a.stateDir))).toEqual([true, true]);
      // What the console keeps of a machine's status: caching on (the reference's default).
      expect((await c.refresh('all')).every((r) => r.ok)).toBe(true);
      expect((await c.history('pc-1')).at(-1)?.status.discovery?.caching).toBe(true);

      clock.advance(60_000);
      const off = await c.setKmsHostCaching('all', false);
      expect(off.map((r) => [r.machine, r.ok, r.code, r.message])).toEqual([
        ['pc-1', true, null, 'KMS host caching off'],
        ['pc-2', true, null, 'KMS host caching off'],
      ]);
      expect(agents.map((a) => caching(a.stateDir))).toEqual([false, false]);

      const logged = (await c.operations()).filter((o) => o.operation === 'set-kms-host-caching');
      expect(logged.map((o) => [o.machine, o.ok, o.code, o.detail]).sort()).toEqual([
        ['pc-1', true, null, 'KMS host caching off'],
        ['pc-2', true, null, 'KMS host caching off'],
      ]);

      // The answer's status was recorded (a history row: the status changed); a refresh agrees.
      expect((await c.history('pc-2')).map((h) => h.status.discovery?.caching)).toEqual([true, false]);
      clock.advance(60_000);
      const refreshed = await c.refresh(['pc-1', 'pc-2']);
      expect(refreshed.map((r) => [r.ok, r.changed])).toEqual([
        [true, false],
        [true, false],
      ]);
      for (const name of ['pc-1', 'pc-2']) {
        expect((await c.history(name)).at(-1)?.status.discovery).toMatchObject({ caching: false, cachedHost: null });
      }

      // One machine back on; the other is left alone.
      const on = await c.setKmsHostCaching(['pc-2'], true);
      expect(on.map((r) => [r.machine, r.ok, r.message])).toEqual([['pc-2', true, 'KMS host caching on']]);
      expect(agents.map((a) => caching(a.stateDir))).toEqual([false, true]);
    } finally {
      await c.close();
    }
  });

  it('a machine whose agent is down fails alone (AGENT_UNREACHABLE, not logged as done); the other is changed', async () => {
    const c = VolumeConsole.init(join(root, 'console-2'), { clock });
    const [up, down] = await Promise.all(
      ['up', 'down'].map(async (name) => {
        const stateDir = join(root, `machine-${name}`);
        Licence.init({ stateDir, product, hardwareId: `hw-${name}`, clock });
        const app = createAgentServer({ stateDir, adminToken: TOKEN, clock });
        await app.listen({ host: '127.0.0.1', port: 0 });
        return { stateDir, app, address: `127.0.0.1:${(app.server.address() as AddressInfo).port}` };
      }),
    );
    try {
      await c.addMachines([up!.address, down!.address], TOKEN, ['pc-up', 'pc-down']);
      await down!.app.close();
      const off = await c.setKmsHostCaching('all', false);
      expect(off.map((r) => [r.machine, r.ok, r.code])).toEqual([
        ['pc-down', false, 'AGENT_UNREACHABLE'],
        ['pc-up', true, null],
      ]);
      expect([caching(up!.stateDir), caching(down!.stateDir)]).toEqual([false, true]);
      const logged = (await c.operations()).filter((o) => o.operation === 'set-kms-host-caching');
      expect(logged.map((o) => o.machine)).toEqual(['pc-up']);
    } finally {
      await up!.app.close();
      await c.close();
    }
  });

  it('an agent older than the route (404 NOT_FOUND) fails with a result that says to upgrade it', async () => {
    const c = VolumeConsole.init(join(root, 'console-3'), { clock });
    const stateDir = join(root, 'machine-old');
    Licence.init({ stateDir, product, hardwareId: 'hw-old', clock });
    const old = createAgentServer({ stateDir, adminToken: TOKEN, clock });
    // As an older agent answers: no such route.
    old.addHook('onRequest', async (request, reply) => {
      if (request.url === '/v1/kms-host-caching') {
        await reply.status(404).send({ error: { code: 'NOT_FOUND', message: 'no route PUT /v1/kms-host-caching' } });
      }
    });
    await old.listen({ host: '127.0.0.1', port: 0 });
    try {
      await c.addMachines([`127.0.0.1:${(old.server.address() as AddressInfo).port}`], TOKEN, ['pc-old']);
      const [result] = await c.setKmsHostCaching('all', false);
      expect(result).toMatchObject({ ok: false, code: 'NOT_FOUND' });
      expect(result?.message).toMatch(/upgrade volact on that machine.*client set-caching/);
      expect(caching(stateDir)).toBe(true);
    } finally {
      await old.close();
      await c.close();
    }
  });
});
