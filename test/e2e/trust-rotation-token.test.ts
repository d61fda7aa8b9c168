import { afterAll, describe, it } from 'vitest';
import { startTestSoftHsm } from '@volact/authority/testing';
import { rotationOverTwoYears } from './trust-rotation-scenario.js';

/**
 * The rotation of trust-rotation.test.ts with the roots in a PKCS#11 token (a real SoftHSM2:
 * `authority init --signer pkcs11:…`, the next root made in the token at prepare, the old one
 * destroyed there at retire), checked every week: the same fleet stays licensed throughout.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('root rotation over two years, roots in a PKCS#11 token (issue 13)', () => {
  it('keeps every client licensed through the ceremony made in the token', async () => {
    const hsm = startTestSoftHsm();
    cleanups.push(() => hsm.cleanup());
    await rotationOverTwoYears({ stepDays: 7, signer: `${hsm.uri};object=e2e-ring`, cleanups });
  }, 120_000);
});
