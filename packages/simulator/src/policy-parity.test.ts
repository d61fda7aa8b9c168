import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Authority } from '@volact/authority';
import { Licence, type retryAt } from '@volact/client';
import { DAY, HOUR, KMS_DEFAULTS, ManualClock, type ProductConfig } from '@volact/core';
import { parseScenario } from './scenario.js';
import { SIMULATION_START, simulate } from './simulate.js';

/**
 * The simulator and `Licence` must follow one attempt policy. Here the policy's retry rule is
 * bent (a failed attempt waits an hour more): both must follow the bent rule. A simulator that
 * kept its own copy of the rule, or a client that stopped using the policy, fails this test.
 */
const bend = vi.hoisted(() => ({ retryMs: 0 }));
vi.mock('../../client/src/attempt-policy.js', async (importOriginal) => {
  const policy = await importOriginal<{ retryAt: typeof retryAt }>();
  return {
    ...policy,
    retryAt: (...args: Parameters<typeof retryAt>) => policy.retryAt(...args) + bend.retryMs,
  };
});

let root: string;
let product: ProductConfig;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-policy-parity-'));
  const authority = Authority.init(join(root, 'authority'), { clock: new ManualClock(SIMULATION_START) });
  await authority.addGroup({ name: 'parity', threshold: 5 });
  product = await authority.productConfig('parity');
  await authority.close();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the simulator and the client run one attempt policy', () => {
  for (const [name, retryMs] of [
    ['as shipped', 0],
    ['with the retry rule bent by an hour', HOUR],
  ] as const) {
    it(`a KMS host that does not answer: both retry when the policy says (${name})`, async () => {
      bend.retryMs = retryMs;
      const clock = new ManualClock(SIMULATION_START);
      const licence = Licence.init({
        stateDir: join(root, `client-${retryMs}`),
        product,
        hardwareId: 'hw-parity',
        clock,
      });
      licence.setKmsHost('127.0.0.1:1'); // nothing listens there
      const outcome = await licence.activate();
      expect(outcome).toMatchObject({ ok: false, code: 'KMS_UNREACHABLE' });
      const clientWait = Date.parse(outcome.status.nextAttemptAt) - clock.now();
      expect(clientWait).toBe(KMS_DEFAULTS.activationInterval + retryMs);

      // One simulated client, its only host down all day: it retries all day long.
      const run = await simulate(
        parseScenario({
          days: 1,
          seed: 1,
          clients: { count: 1, joinOverDays: 0 },
          hosts: { count: 1 },
          outages: [{ host: 1, fromDay: 0, days: 1 }],
        }),
      );
      expect(run.rows[0]).toMatchObject({
        attempts: Math.ceil(DAY / clientWait),
        failures: Math.ceil(DAY / clientWait),
      });
    });
  }
});
