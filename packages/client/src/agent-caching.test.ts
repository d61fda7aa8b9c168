import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Authority } from '@volact/authority';
import { ManualClock, agentStatusSchema, type ProductConfig } from '@volact/core';
import { Licence } from './index.js';
import { createAgentServer } from './agent-entry.js';

/** PUT /v1/kms-host-caching: the console turns KMS host caching on and off (slmgr /skhc, /ckhc). */
const FLEET = 'fleet-enrolment-token-0123456789';
const MACHINE = 'machine-token-of-this-one-0123456789';

let root: string;
let product: ProductConfig;
const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-agent-caching-'));
  const authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  await authority.close();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
/** An agent on a fresh installation, enrolled by a console (so only MACHINE opens it). */
async function enrolledAgent() {
  const stateDir = join(root, `agent-${++n}`);
  Licence.init({ stateDir, product, hardwareId: `hw-${n}`, clock });
  const lines: string[] = [];
  const app: FastifyInstance = createAgentServer({
    stateDir,
    adminToken: FLEET,
    logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
    clock,
  });
  const call = (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, token: string | null, payload?: string) =>
    app.inject({
      method,
      url,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(payload === undefined ? {} : { payload }),
    });
  const enrolled = await call('POST', '/v1/enrol', FLEET, JSON.stringify({ token: MACHINE }));
  expect(enrolled.statusCode, enrolled.body).toBe(200);
  const caching = () => Licence.open({ stateDir, clock }).status().discovery.caching;
  const store = () => readFileSync(join(stateDir, 'licence.json'), 'utf8');
  return { app, call, caching, store, log: () => lines.join('') };
}

describe('PUT /v1/kms-host-caching', () => {
  it("turns caching off and on again: the licence store, the answer's status and GET /v1/status say so", async () => {
    const t = await enrolledAgent();
    expect(t.caching()).toBe(true); // the reference's default
    const off = await t.call('PUT', '/v1/kms-host-caching', MACHINE, '{"enabled":false}');
    expect(off.statusCode, off.body).toBe(200);
    expect(off.json().status.discovery).toMatchObject({ caching: false, cachedHost: null });
    expect(t.caching()).toBe(false);
    // What the console keeps of the answer (core's schema) still says it.
    expect(agentStatusSchema.parse(off.json().status).discovery?.caching).toBe(false);
    const status = await t.call('GET', '/v1/status', MACHINE);
    expect(status.json().discovery.caching).toBe(false);
    expect(t.log()).toContain('KMS host caching set');

    const on = await t.call('PUT', '/v1/kms-host-caching', MACHINE, '{"enabled":true}');
    expect(on.statusCode).toBe(200);
    expect(on.json().status.discovery.caching).toBe(true);
    expect(t.caching()).toBe(true);
    await t.app.close();
  });

  it('refuses a caller without the machine token (none, a wrong one, the enrolment token after enrolment): 401, nothing changed', async () => {
    const t = await enrolledAgent();
    const before = t.store();
    for (const token of [null, `${MACHINE}x`, MACHINE.slice(0, -1), FLEET]) {
      const r = await t.call('PUT', '/v1/kms-host-caching', token, '{"enabled":false}');
      expect(r.statusCode, String(token)).toBe(401);
      expect(r.json().error.code).toBe('UNAUTHORIZED');
    }
    expect(t.store()).toBe(before);
    expect(t.caching()).toBe(true);
    expect(t.log()).not.toContain(MACHINE);
    await t.app.close();
  });

  it('refuses a body that is not {enabled: boolean} with 400 REQUEST_INVALID naming the field; nothing changed', async () => {
    const t = await enrolledAgent();
    const before = t.store();
    const cases: [string | undefined, RegExp][] = [
      ['{"enabled":"yes"}', /^enabled: .*boolean/i],
      ['{"enabled":0}', /^enabled: .*boolean/i],
      ['{"enabled":null}', /^enabled: /],
      ['{}', /^enabled: /],
      ['{"enabled":false,"extra":1}', /Unrecognized key.*extra/],
      [undefined, /^body: /],
    ];
    for (const [payload, message] of cases) {
      const r = await t.call('PUT', '/v1/kms-host-caching', MACHINE, payload);
      expect(r.statusCode, `${payload}: ${r.body}`).toBe(400);
      expect(r.json().error.code).toBe('REQUEST_INVALID');
      expect(r.json().error.message).toMatch(message);
    }
    expect(t.store()).toBe(before);
    // Only PUT: there is nothing to delete.
    expect((await t.call('DELETE', '/v1/kms-host-caching', MACHINE)).statusCode).toBe(404);
    await t.app.close();
  });
});
