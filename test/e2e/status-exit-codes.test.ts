import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, ManualClock } from '@volact/core';
import { cliExpectations, cliInstallations, onMachine, runCliInProcess } from './cli-in-process.js';
import { startSlice, type Slice } from './harness.js';

/**
 * `client status` and `host status` tell the state by their exit code (issue 12), so that a
 * script or a monitoring check needs no parsing: one code per licence state, and for a host
 * whether it can license clients. Run through the real command tree on the slice's clock.
 */
const clock = new ManualClock(Date.UTC(2026, 10, 2, 9));
const machines = new Map<string, string>();
const { ok, json } = cliExpectations({ now: () => clock.now(), machines });
let slice: Slice;
let productFile: string;

async function statusOf(command: 'client' | 'host', dir: string, ...extra: string[]) {
  const flag = command === 'client' ? '--state-dir' : '--data-dir';
  return runCliInProcess(onMachine([command, 'status', flag, dir, ...extra], machines), { now: () => clock.now() });
}

const installation = cliInstallations(
  ok,
  () => ({ root: slice.root, productFile, hostAddress: () => slice.hostAddress() }),
  'c',
);

beforeAll(async () => {
  slice = await startSlice(clock, { threshold: 1 });
  productFile = join(slice.root, 'product.json');
  writeFileSync(productFile, JSON.stringify(slice.product));
});
afterAll(() => slice?.close());

describe('client status: an exit code per licence state', () => {
  it('initial grace 10, licensed 0, out of tolerance 11, notification 13 — the plain output still names the state', async () => {
    const c = await installation();
    const grace = await statusOf('client', c);
    expect(grace.code).toBe(10);
    expect(grace.stdout).toMatch(/^State:\s+initial-grace$/m);

    await ok('client', 'activate', '--state-dir', c);
    const licensed = await statusOf('client', c);
    expect(licensed.code).toBe(0);
    expect(licensed.stdout).toMatch(/^State:\s+licensed$/m);

    // Later (and back: the slice's host certificate must stay valid for the other tests).
    const saved = clock.now();
    try {
      clock.advance(181 * DAY); // past the 180 days of a KMS activation, not renewed
      expect((await statusOf('client', c)).code).toBe(11);
      clock.advance(30 * DAY); // past the tolerance
      const notification = await statusOf('client', c);
      expect(notification.code).toBe(13);
      expect(notification.stdout).toMatch(/^State:\s+notification$/m);

      // --json: the state is in the output, the exit code says only that the store was read.
      const asJson = await statusOf('client', c, '--json');
      expect(asJson.code).toBe(0);
      expect(JSON.parse(asJson.stdout)).toMatchObject({ state: 'notification' });
    } finally {
      clock.set(saved);
    }
  });

  it('non-genuine grace 12 (the stored activation no longer verifies), unlicensed 14 (key uninstalled)', async () => {
    const c = await installation();
    await ok('client', 'activate', '--state-dir', c);
    const file = join(c, 'licence.json');
    const record = JSON.parse(readFileSync(file, 'utf8')) as { activation: { evidence: string } };
    const evidence = Buffer.from(record.activation.evidence, 'base64');
    // a byte of the signed body (the count's last): the signature no longer matches (the end of a
    // version-2 answer is its extension area, not the signature)
    evidence[63] = (evidence[63] ?? 0) ^ 1;
    writeFileSync(
      file,
      JSON.stringify({ ...record, activation: { ...record.activation, evidence: evidence.toString('base64') } }),
    );
    expect(await json('client', 'status', '--state-dir', c)).toMatchObject({ state: 'non-genuine-grace' });
    expect((await statusOf('client', c)).code).toBe(12);

    await ok('client', 'uninstall-key', '--state-dir', c);
    const unlicensed = await statusOf('client', c);
    expect(unlicensed.code).toBe(14);
    expect(unlicensed.stdout).toMatch(/^State:\s+unlicensed$/m);
  });

  it('activate keeps its own codes beside them: 3 when no host answers, and the state stays initial grace (10)', async () => {
    const c = await installation();
    await ok('client', 'set-host', '--state-dir', c, '127.0.0.1:1');
    const r = await runCliInProcess(onMachine(['client', 'activate', '--state-dir', c], machines), {
      now: () => clock.now(),
    });
    expect(r.code).toBe(3);
    expect((await statusOf('client', c)).code).toBe(10);
  });

  it('a store that cannot be read stays an error: 1, with its code', async () => {
    const r = await statusOf('client', join(slice.root, 'no-such-installation'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error [A-Z_]+:/);
  });
});

describe('host status: 0 activated, 10 not activated, 11 certificate expired', () => {
  it('tells an activated host from one with a key only, and one whose certificate has ended', async () => {
    const activated = await statusOf('host', slice.hostDir);
    expect(activated.code).toBe(0);
    expect(activated.stdout).toContain('(activated)');

    const { key } = await slice.authority.mintKey({ type: 'kms-host', groups: [slice.product.group.name] });
    const keyOnly = join(slice.root, 'host-key-only');
    await ok('host', 'install-key', '--data-dir', keyOnly, key, '--hardware-id', 'host-hw-2');
    const notActivated = await statusOf('host', keyOnly);
    expect(notActivated.code).toBe(10);
    expect(notActivated.stdout).toContain('NOT activated');
    expect((await statusOf('host', keyOnly, '--json')).code).toBe(0);

    const { certificate } = await json<{ certificate: { expiresAt: string } }>(
      'host',
      'status',
      '--data-dir',
      slice.hostDir,
    );
    const saved = clock.now();
    clock.set(Date.parse(certificate.expiresAt) + 1);
    try {
      expect((await statusOf('host', slice.hostDir)).code).toBe(11);
    } finally {
      clock.set(saved);
    }

    expect((await statusOf('host', join(slice.root, 'no-such-host'))).code).toBe(1);
  });
});

describe('host status: the trust the host holds (roots, revocation list, host status)', () => {
  it('shows them, plain and --json; a status ending within 2 days is a WARNING line, the exit code stays 0', async () => {
    const plain = await statusOf('host', slice.hostDir);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^Root [0-9a-f]{16}: current.*\(authority\); certified this host$/m);
    expect(plain.stdout).toMatch(/^Revocation list: version \d+, next update /m);
    expect(plain.stdout).toMatch(/^Host status: current, next update /m);
    expect(plain.stdout).not.toContain('WARNING');

    type Trust = {
      trust: {
        roots: { keyId: string; state: string; source: string }[];
        certificateIssuer: string;
        revocationList: { version: number; nextUpdate: string };
        hostStatus: { state: string; listVersion: number; nextUpdate: string };
        warnings: string[];
      };
    };
    const { trust } = await json<Trust>('host', 'status', '--data-dir', slice.hostDir);
    expect(trust.roots).toContainEqual(
      expect.objectContaining({ keyId: trust.certificateIssuer, state: 'current', source: 'authority' }),
    );
    expect(trust.hostStatus.state).toBe('current');
    expect(trust.hostStatus.listVersion).toBe(trust.revocationList.version);
    expect(trust.warnings).toEqual([]);

    const saved = clock.now();
    clock.set(Date.parse(trust.hostStatus.nextUpdate) - DAY);
    try {
      const late = await statusOf('host', slice.hostDir);
      expect(late.code).toBe(0);
      expect(late.stdout).toMatch(/^WARNING: the host status ends /m);
    } finally {
      clock.set(saved);
    }
  });
});
