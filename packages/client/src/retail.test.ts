import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Authority, createAuthorityServer } from '@volact/authority';
import { DAY, ManualClock, type ProductConfig } from '@volact/core';
import { ClientError, Licence } from './index.js';
import { createAgentServer } from './agent-entry.js';

let root: string;
let clock: ManualClock;
let authority: Authority;
let api: FastifyInstance;
let authorityUrl: string;
let product: ProductConfig;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-client-retail-'));
  clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
  authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  api = createAuthorityServer(authority);
  await api.listen({ host: '127.0.0.1', port: 0 });
  authorityUrl = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await api.close();
  await authority.close();
  rmSync(root, { recursive: true, force: true });
});

const mintRetail = async () => (await authority.mintKey({ type: 'retail', groups: ['office14'] })).key;
const install = (name: string, key: string, hardwareId = `hw-${name}`, given = product) => {
  const licence = Licence.init({ stateDir: join(root, name), product: given, hardwareId, clock });
  licence.installKey(key);
  return licence;
};

describe('a retail key in the client', () => {
  it('installs as a retail key, activates online for good with method retail; a second machine is refused', async () => {
    const key = await mintRetail();
    const a = install('a', key);
    expect(a.status()).toMatchObject({ installedKeyType: 'retail', method: null, state: 'initial-grace' });
    expect(a.installationId()).toMatch(/^(\d{6}-){12}\d{6}$/);
    expect(await a.activate()).toMatchObject({ ok: false, code: 'NO_AUTHORITY' });
    const outcome = await a.activate({ authority: authorityUrl });
    expect(outcome).toMatchObject({
      ok: true,
      message: expect.stringMatching(/^activated with retail key …\w{5} \(permanent\)$/) as unknown,
      status: { state: 'licensed', method: 'retail', expiresAt: null, installedKeyType: 'retail' },
    });
    // Activated for good: a later attempt contacts no one; years later, still licensed.
    expect(await a.activate()).toMatchObject({ ok: true, status: { method: 'retail' } });
    clock.advance(3 * 365 * DAY);
    expect(Licence.open({ stateDir: join(root, 'a'), clock }).status()).toMatchObject({
      state: 'licensed',
      method: 'retail',
    });
    expect(await a.doctor()).toMatchObject({ ok: true, steps: [{ step: 'config' }, { step: 'retail', status: 'ok' }] });

    const b = install('b', key);
    const refused = await b.activate({ authority: authorityUrl });
    expect(refused).toMatchObject({ ok: false, code: 'RETAIL_ALREADY_ACTIVATED', status: { method: null } });
    expect(refused.message).not.toContain(key);
    expect(await b.doctor()).toMatchObject({ ok: false, failedAt: 'retail' });
    expect((await authority.showKey(key)).used).toBe(1);
  });

  it('by phone: installation ID → confirmation ID → licensed (retail); the GVLK again ends it', async () => {
    const key = await mintRetail();
    // By phone the client learns nothing: its product config must name the online key that
    // signs today (years after the first config: the config the publisher exports now).
    const c = install('phone', key, 'hw-phone', await authority.productConfig('office14'));
    const confirmation = await authority.confirm(c.installationId());
    expect(c.installConfirmation(confirmation.confirmationId)).toMatchObject({
      state: 'licensed',
      method: 'retail',
      expiresAt: null,
    });
    c.installKey(product.gvlk);
    expect(c.status()).toMatchObject({ method: null, installedKeyType: 'gvlk', installationId: null });
    expect(() => c.installationId()).toThrow(ClientError);
  });

  it('through the agent: POST /v1/key takes a retail key, POST /v1/activate activates it', async () => {
    const stateDir = join(root, 'agent');
    Licence.init({ stateDir, product, hardwareId: 'hw-agent', clock });
    const token = 'agent-token-0123456789abcdef';
    // The authority is not the product config's: the agent must be told it may use it.
    const app = createAgentServer({
      stateDir,
      adminToken: token,
      authorities: [authorityUrl],
      logger: pino({ level: 'silent' }),
      clock,
    });
    try {
      const call = (url: string, payload: Record<string, unknown>) =>
        app.inject({ method: 'POST', url, payload, headers: { authorization: `Bearer ${token}` } });
      const key = await mintRetail();
      expect((await call('/v1/key', { key })).json()).toMatchObject({ status: { installedKeyType: 'retail' } });
      expect((await call('/v1/activate', { authority: authorityUrl })).json()).toMatchObject({
        ok: true,
        status: { state: 'licensed', method: 'retail' },
      });
    } finally {
      await app.close();
    }
  });
});
