import { afterAll, describe, it } from 'vitest';
import { rotationOverTwoYears } from './trust-rotation-scenario.js';

/**
 * Issue 13's "Done when" (the scenario: trust-rotation-scenario.ts): a root rotation over two
 * simulated years, the roots in files, checked every day (the host every 3 days) — every client of the fleet made from
 * the day-0 product config stays licensed with no client update, a day-0 client accepts the
 * host re-certified under the new root, nothing new carries the old key ID after retire, and
 * evidence made under the old root still verifies.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('root rotation over two years (issue 13)', () => {
  it('keeps every client licensed, with no client update, through prepare, publish, switch and retire', async () => {
    await rotationOverTwoYears({ stepDays: 1, hostCheckDays: 3, cleanups });
  }, 120_000);
});
