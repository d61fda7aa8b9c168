import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY } from '@volact/core';
import { cliExpectations } from './cli-in-process.js';

/**
 * The rotation ceremony as an operator runs it (`volact authority root rotate --step …`,
 * `volact authority root status --json`) on a data directory: each step in order, each one
 * idempotent, a step out of order refused with ROOT_ROTATION_OUT_OF_ORDER naming the next step,
 * and the product config following (two roots after publish, the old one with an end after retire).
 */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
let dir: string;
let now = Date.UTC(2027, 0, 4, 9);
const { ok, json, refused } = cliExpectations({ now: () => now });

interface RootsStatus {
  roots: { keyId: string; state: string; validFrom: string; validUntil: string | null; heldHere: boolean }[];
  rotation: { lastStep: string | null; nextStep: string };
}
interface ProductFile {
  authority: { rootPublicKey: string; roots?: { publicKey: string; validFrom: string; validUntil?: string }[] };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volact-trust-cli-'));
  await ok('authority', 'init', '--data-dir', join(dir, 'a'));
  await ok('authority', 'group', 'add', '--data-dir', join(dir, 'a'), '--name', 'office14');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const data = () => join(dir, 'a');
const rotate = (step: string) =>
  json<Record<string, unknown>>('authority', 'root', 'rotate', '--data-dir', data(), '--step', step);
const outOfOrder = async (step: string, next: string) => {
  const error = await refused('authority', 'root', 'rotate', '--data-dir', data(), '--step', step);
  expect(error).toMatchObject({ code: 'ROOT_ROTATION_OUT_OF_ORDER', nextStep: next });
  expect(error.message).toContain(next);
  expect((await status()).rotation.nextStep).toBe(next);
};
const status = () => json<RootsStatus>('authority', 'root', 'status', '--data-dir', data());
const productConfig = async () =>
  JSON.parse(await ok('authority', 'product-config', '--data-dir', data(), '--group', 'office14')) as ProductFile;

describe('volact authority root rotate (CLI)', () => {
  it('the built binary: a step out of order exits 1 with ROOT_ROTATION_OUT_OF_ORDER and the next step; status --json names it', () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
    const d = join(dir, 'bin');
    expect(run('authority', 'init', '--data-dir', d).status).toBe(0);
    const early = run('authority', 'root', 'rotate', '--data-dir', d, '--step', 'switch', '--json');
    expect(early.status, early.stderr).toBe(1);
    expect(JSON.parse(early.stdout)).toMatchObject({
      error: { code: 'ROOT_ROTATION_OUT_OF_ORDER', nextStep: 'prepare', message: expect.stringContaining('prepare') },
    });
    const s = run('authority', 'root', 'status', '--data-dir', d, '--json');
    expect(s.status, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ rotation: { lastStep: null, nextStep: 'prepare' } });
  });

  it('runs prepare, publish, switch, retire in order; refuses a step out of order naming the next; each step twice is a no-op', async () => {
    const before = await status();
    expect(before.roots).toHaveLength(1);
    const oldRoot = before.roots[0]!.keyId;
    expect((await productConfig()).authority.roots ?? [{}]).toHaveLength(1);

    // Nothing prepared: publish, switch and retire are refused, each naming prepare.
    for (const step of ['publish', 'switch', 'retire']) await outOfOrder(step, 'prepare');

    now += DAY;
    expect(await rotate('prepare')).toMatchObject({ step: 'prepare', done: true });
    const prepared = await status();
    expect(prepared.roots).toHaveLength(2);
    const newRoot = prepared.roots.find((r) => r.keyId !== oldRoot)!.keyId;
    // Prepared, not published: product configs still list one root.
    expect((await productConfig()).authority.roots ?? [{}]).toHaveLength(1);
    expect(await rotate('prepare')).toMatchObject({ step: 'prepare', done: false });
    for (const step of ['switch', 'retire']) await outOfOrder(step, 'publish');

    now += 30 * DAY;
    expect(await rotate('publish')).toMatchObject({ step: 'publish', done: true });
    const published = await productConfig();
    expect(published.authority.roots).toHaveLength(2);
    expect(await rotate('publish')).toMatchObject({ step: 'publish', done: false });
    await outOfOrder('retire', 'switch');

    now += 30 * DAY;
    expect(await rotate('switch')).toMatchObject({ step: 'switch', done: true });
    const switched = await status();
    expect(switched.roots.find((r) => r.keyId === newRoot)?.state).toMatch(/current/);
    await outOfOrder('prepare', 'retire');

    now += 190 * DAY;
    expect(await rotate('retire')).toMatchObject({ step: 'retire', done: true });
    expect(await rotate('retire')).toMatchObject({ step: 'retire', done: false });
    const retired = await status();
    expect(retired.roots.find((r) => r.keyId === oldRoot)?.validUntil).toBeTruthy();
    const after = await productConfig();
    const oldEntry = after.authority.roots?.find((r) => r.validUntil !== undefined);
    expect(oldEntry).toBeDefined();
    expect(Date.parse(oldEntry!.validUntil!)).toBeLessThanOrEqual(now);
  });
});
