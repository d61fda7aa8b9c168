import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DAY,
  HOUR,
  fileSigner,
  generateSigningKeyPair,
  keyIdHex,
  makeRevocationList,
  makeRootTransition,
} from '@volact/core';
import { productWith } from '../../packages/client/src/trust-fixtures.js';
import { runCliInProcess } from './cli-in-process.js';

/**
 * `volact client install-trust` (the JSON of the authority's GET /v1/trust) and `install-revocations`
 * (a list from `authority revocations --out`), and what `client status` then shows.
 */
describe('client trust on the command line', () => {
  const T = Date.UTC(2027, 4, 1, 9);
  const now = () => T;
  const dir = mkdtempSync(join(tmpdir(), 'volact-client-trust-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const rootA = generateSigningKeyPair();
  const rootB = generateSigningKeyPair();
  const productPath = join(dir, 'product.json');
  writeFileSync(productPath, JSON.stringify(productWith([{ pair: rootA }])));
  const stateDir = join(dir, 'state');
  const listOf = (version: number) =>
    makeRevocationList(
      { listVersion: version, issuedAt: T - HOUR, nextUpdate: T + 7 * DAY, entries: [] },
      fileSigner(rootB),
    );
  const cli = (...args: string[]) =>
    runCliInProcess(['client', ...args, '--state-dir', stateDir, '--hardware-id', 'hw-cli'], { now });

  it('learns a new root from the trust bundle, installs its list, refuses an older one, and status shows both', async () => {
    expect(
      (
        await runCliInProcess(
          ['client', 'init', '--state-dir', stateDir, '--product', productPath, '--hardware-id', 'hw-cli'],
          { now },
        )
      ).code,
    ).toBe(0);
    const transition = makeRootTransition(
      { nextPublicKey: rootB.publicKeyRaw, issuedAt: T - 10 * DAY, nextValidFrom: T - 5 * DAY },
      fileSigner(rootA),
      fileSigner(rootB),
    );
    const trustPath = join(dir, 'trust.json');
    writeFileSync(
      trustPath,
      JSON.stringify({
        roots: [
          {
            publicKey: rootA.publicKeyRaw.toString('base64'),
            keyId: keyIdHex(rootA.publicKeyRaw),
            validFrom: new Date(0).toISOString(),
            state: 'retired',
          },
          {
            publicKey: rootB.publicKeyRaw.toString('base64'),
            keyId: keyIdHex(rootB.publicKeyRaw),
            validFrom: new Date(T - 5 * DAY).toISOString(),
            state: 'current',
          },
        ],
        transitions: [transition.toString('base64')],
        delegations: [],
        revocationList: listOf(2).toString('base64'),
      }),
    );
    const learned = await cli('install-trust', trustPath);
    expect(learned.code).toBe(0);
    expect(learned.stdout).toMatch(
      /learned 1 transition record\(s\), 0 delegation\(s\); revocation list version 2 installed/,
    );

    const older = join(dir, 'old.bin');
    writeFileSync(older, listOf(1));
    const stale = await cli('install-revocations', older);
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toMatch(/REVOCATION_LIST_STALE/);
    const newer = join(dir, 'new.bin');
    writeFileSync(newer, listOf(3));
    expect((await cli('install-revocations', newer)).stdout).toMatch(/revocation list version 3 installed/);

    const status = JSON.parse((await cli('status', '--json')).stdout) as {
      trust: { roots: { keyId: string; source: string }[]; revocationListVersion: number };
      evidence: unknown;
    };
    expect(status.trust.roots.map((r) => [r.keyId, r.source])).toEqual([
      [keyIdHex(rootA.publicKeyRaw), 'config'],
      [keyIdHex(rootB.publicKeyRaw), 'transition'],
    ]);
    expect(status.trust.revocationListVersion).toBe(3);
    expect(status.evidence).toBeNull();
    const text = (await cli('status')).stdout;
    expect(text).toContain(`Trust:        root(s) ${keyIdHex(rootA.publicKeyRaw)} (config`);
    expect(text).toContain('revocation list version 3');
  });
});
