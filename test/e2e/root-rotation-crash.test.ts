import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority, type KeyRingStatus } from '@volact/authority';
import { startTestPostgres, type TestPostgres } from '@volact/authority/testing';
import {
  TrustStore,
  decodeHostCertificate,
  generateSigningKeyPair,
  parseProductConfig,
  publicKeyFromRaw,
  verifyHostCertificate,
  type ProductConfig,
} from '@volact/core';

/**
 * "Nothing half-rotates after a crash between steps": each ceremony step runs as users run it
 * (the built `volact` binary), killed with SIGKILL (kill -9, by the test-only
 * VOLACT_TEST_CRASH_AT hook) at its worst points — after its key file is written or deleted,
 * inside its transaction before the commit, after the commit. After every crash `root status`
 * shows the ring at the step before or after, never between; running the step again completes
 * it (a prepared key left by a crash is adopted, not doubled); and the authority still signs
 * host certificates a client holding the config exported before the rotation trusts.
 */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
const base = mkdtempSync(join(tmpdir(), 'volact-rotation-crash-'));
let postgres: TestPostgres;
beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);
afterAll(() => {
  postgres?.stop();
  rmSync(base, { recursive: true, force: true });
});

function volact(args: string[], crashAt?: string) {
  const env = { ...process.env };
  delete env.VOLACT_TEST_CRASH_AT;
  if (crashAt) env.VOLACT_TEST_CRASH_AT = crashAt;
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, env });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

const CRASHES = {
  prepare: ['prepare.key-written', 'prepare.in-transaction', 'prepare.committed'],
  publish: ['publish.in-transaction', 'publish.committed'],
  switch: ['switch.in-transaction', 'switch.committed'],
  retire: ['retire.key-destroyed', 'retire.in-transaction', 'retire.committed'],
} as const;
type Step = keyof typeof CRASHES;
const ORDER: Step[] = ['prepare', 'publish', 'switch', 'retire'];
const STATE_AFTER: Record<Step, string> = {
  prepare: 'prepared',
  publish: 'published',
  switch: 'current',
  retire: 'retired',
};

describe.each([
  ['sqlite', async () => [] as string[]],
  ['postgres', async () => ['--db', await postgres.createDatabase()]],
])('root rotation killed at every point (%s)', (_engine, database) => {
  it('leaves the ring at the step before or after, the rerun completes it, and certificates stay trusted', async () => {
    const dir = join(base, `a-${_engine}`);
    const db = await database();
    const run = (args: string[], crashAt?: string) => volact([...args, '--data-dir', dir, ...db], crashAt);
    expect(run(['authority', 'init']).code).toBe(0);
    expect(run(['authority', 'group', 'add', '--name', 'office14']).code).toBe(0);
    const minted = run(['authority', 'key', 'mint', '--type', 'kms-host', '--group', 'office14', '--json']);
    const hostKey = (JSON.parse(minted.stdout) as { key: string }).key;
    const hostPair = generateSigningKeyPair();
    const before: ProductConfig = parseProductConfig(
      JSON.parse(run(['authority', 'product-config', '--group', 'office14']).stdout),
    );
    const status = (): KeyRingStatus => {
      const r = run(['authority', 'root', 'status', '--json']);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as KeyRingStatus;
    };
    /** A ring that is whole: one current root, at most one in rotation, one current and one next online key. */
    const consistent = (s: KeyRingStatus) => {
      expect(s.roots.filter((r) => r.state === 'current')).toHaveLength(1);
      expect(s.roots.filter((r) => ['prepared', 'published', 'previous'].includes(r.state)).length).toBeLessThanOrEqual(
        1,
      );
      expect(s.onlineKeys.filter((k) => k.state === 'current')).toHaveLength(1);
      expect(s.onlineKeys.filter((k) => k.state === 'next')).toHaveLength(1);
      expect(s.roots.find((r) => r.state === 'current')?.heldHere).toBe(true);
    };
    /** A host certified now verifies for a client with the config exported before the rotation. */
    const certifiesTrustedHosts = async () => {
      const authority = Authority.open(dir, db.length ? { databaseUrl: db[1] as string } : {});
      try {
        const { certificate } = await authority.activateHost({
          hostKey,
          hostPublicKey: hostPair.publicKeyRaw, // the same host and key: each renewal is free
          hardwareId: 'hw-1',
        });
        const trust = TrustStore.fromProductConfig(before);
        for (const t of (await authority.trust()).transitions) trust.learnTransition(Buffer.from(t, 'base64'));
        const cert = decodeHostCertificate(certificate);
        const root = trust.rootFor(cert.issuer, cert.issuedAt);
        expect(root?.keyId.toString('hex')).toBe(keyIdOfCurrent(await authority.rootStatus()));
        expect(verifyHostCertificate(cert, publicKeyFromRaw(root?.publicKeyRaw as Buffer))).toBe(true);
      } finally {
        await authority.close();
      }
    };
    const rootFiles = () => readdirSync(join(dir, 'roots')).filter((f) => f.endsWith('.pem'));

    await certifiesTrustedHosts();
    // Out of order: exit 1, and the next step in the JSON error for a script to run.
    const early = run(['authority', 'root', 'rotate', '--step', 'switch', '--json']);
    expect(early.code).toBe(1);
    expect(JSON.parse(early.stdout)).toMatchObject({
      error: { code: 'ROOT_ROTATION_OUT_OF_ORDER', nextStep: 'prepare' },
    });
    for (const [i, step] of ORDER.entries()) {
      const previous = i === 0 ? null : (ORDER[i - 1] as Step);
      for (const point of CRASHES[step]) {
        const killed = run(['authority', 'root', 'rotate', '--step', step, '--json'], point);
        expect(killed.signal, `${point}: ${killed.stderr}`).toBe('SIGKILL');
        const s = status();
        consistent(s);
        const committed = point.endsWith('.committed');
        // Before the commit: the step before; after it: this step. Never in between.
        expect(s.rotation.lastStep, point).toBe(committed ? step : previous);
        if (step === 'prepare') {
          // However many times prepare died, one next root's file at most (the rerun adopts it).
          expect(rootFiles(), point).toHaveLength(2);
        }
        if (step === 'retire' && point === 'retire.key-destroyed') {
          // The old root's file went first: it can sign nothing, though the ring still says previous.
          expect(rootFiles()).toHaveLength(1);
          expect(s.roots.find((r) => r.state === 'previous')?.heldHere).toBe(false);
        }
        await certifiesTrustedHosts();
      }
      const again = run(['authority', 'root', 'rotate', '--step', step, '--json']);
      expect(again.code, again.stderr).toBe(0);
      const result = JSON.parse(again.stdout) as { done: boolean; root: { state: string } };
      expect(result.done).toBe(false); // the last crash came after the commit: already done
      expect(result.root.state).toBe(STATE_AFTER[step]);
    }
    const end = status();
    expect(end.roots.map((r) => r.state)).toEqual(['retired', 'current']);
    expect(rootFiles()).toEqual([`${keyIdOfCurrent(end)}.pem`]);
    // The switch left the online keys: root #1's current and next keys sign on until their end.
    expect(end.onlineKeys.map((k) => k.state)).toEqual(['current', 'next']);
    await certifiesTrustedHosts();
  }, 300_000); // some 40 runs of the CLI, on a loaded machine
});

const keyIdOfCurrent = (s: KeyRingStatus) => s.roots.find((r) => r.state === 'current')?.keyId as string;
