import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority, createAuthorityServer } from '@volact/authority';
import { agentStatusSchema } from '@volact/console';
import {
  TrustStore,
  parseConfirmationId,
  parseInstallationId,
  parseKeyOfType,
  parseProductConfig,
  trustConfirmationKeys,
  verifyInstallationConfirmation,
} from '@volact/core';
import { cliExpectations, onMachine, runCliInProcess } from './cli-in-process.js';

/**
 * Retail activation, reference (plan-for-volume-activation): "each purchased copy comes with one
 * unique product key … Most activations are performed online, but telephone activation is also
 * available." One key, one installation: the same installation (a re-imaged machine) activates
 * again free; any other is refused. Everything the user types goes through the CLI; the
 * authority is served over real HTTP on loopback.
 */
let dir: string;
let api: FastifyInstance;
let served: Authority;
let authorityUrl: string;
let product: string;
const path = (...p: string[]) => join(dir, ...p);

/** Each state directory's machine: its hardware id, given at every `client` command (as a machine reads its own). */
const machines = new Map<string, string>();
const { ok, json } = cliExpectations({ machines });

interface Status {
  state: string;
  method: string | null;
  expiresAt: string | null;
  installedKeyType: string | null;
  installationId: string | null;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volact-retail-e2e-'));
  await ok('authority', 'init', '--data-dir', path('a'));
  await ok('authority', 'group', 'add', '--data-dir', path('a'), '--name', 'office14');
  product = path('product.json');
  writeFileSync(product, await ok('authority', 'product-config', '--data-dir', path('a'), '--group', 'office14'));
  served = Authority.open(path('a'));
  api = createAuthorityServer(served);
  await api.listen({ host: '127.0.0.1', port: 0 });
  authorityUrl = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await api?.close();
  await served?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A product installation: `client init` with its hardware id, then `client install-key KEY`. */
async function installation(name: string, key: string, hardwareId: string): Promise<string> {
  await ok('client', 'init', '--state-dir', path(name), '--product', product, '--hardware-id', hardwareId);
  await ok('client', 'install-key', '--state-dir', path(name), key);
  return path(name);
}

const mintRetail = async () =>
  (
    await json<{ key: string; type: string; limit: number }>(
      'authority',
      'key',
      'mint',
      '--data-dir',
      path('a'),
      '--type',
      'retail',
      '--group',
      'office14',
    )
  ).key;

describe('retail activation (one key, one installation; online or by phone)', () => {
  it('mints with limit 1 only: --limit 2 is refused by name', async () => {
    const minted = await json<{ key: string; type: string; limit: number; groups: string[] }>(
      'authority',
      'key',
      'mint',
      '--data-dir',
      path('a'),
      '--type',
      'retail',
      '--group',
      'office14',
    );
    expect(minted).toMatchObject({ type: 'retail', limit: 1, groups: ['office14'] });
    expect(parseKeyOfType(minted.key, 'retail').type).toBe('retail');
    const r = await runCliInProcess([
      ...['authority', 'key', 'mint', '--data-dir', path('a'), '--type', 'retail', '--group', 'office14'],
      ...['--limit', '2', '--json'],
    ]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      error: { code: 'REQUEST_INVALID', message: expect.stringContaining('its limit is 1') as unknown },
    });
  });

  it('online: A activates (201); A re-imaged activates again free (200 again); B is refused with RETAIL_ALREADY_ACTIVATED', async () => {
    const key = await mintRetail();
    const last5 = `…${key.replace(/-/g, '').slice(-5)}`;
    const a = await installation('pc-a', key, 'hw-a');
    const iidA = await json<{ installationId: string }>('client', 'installation-id', '--state-dir', a);

    // The wire, as the client's activate sends it: a new installation is 201.
    const post = (installationId: string) =>
      fetch(`${authorityUrl}/v1/activations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key, installationId }),
      });
    const first = await post(iidA.installationId);
    expect(first.status).toBe(201);
    const firstBody = (await first.json()) as { confirmationId: string; method: string; used: number; again: boolean };
    expect(firstBody).toMatchObject({ method: 'retail', used: 1, limit: 1, again: false });
    // The signature path: the CID is the online key's signature over this IID and the group (its key
    // index names the key; the product config's delegation certifies it).
    const config = parseProductConfig(JSON.parse(readFileSync(product, 'utf8')));
    expect(
      verifyInstallationConfirmation(
        parseInstallationId(iidA.installationId),
        config.group.id,
        parseConfirmationId(firstBody.confirmationId),
        trustConfirmationKeys(TrustStore.fromProductConfig(config)),
      ),
    ).toBe(true);

    const activated = await json<Status & { ok: boolean }>(
      'client',
      'activate',
      '--state-dir',
      a,
      '--authority',
      authorityUrl,
    );
    expect(activated).toMatchObject({
      ok: true,
      state: 'licensed',
      method: 'retail',
      expiresAt: null,
      installedKeyType: 'retail',
    });
    const status = await json<Status>('client', 'status', '--state-dir', a);
    expect(agentStatusSchema.parse(status)).toMatchObject({ method: 'retail', installedKeyType: 'retail' });

    // Re-imaged A: a new install on the same hardware gives the same IID: free.
    const reimaged = await installation('pc-a-reimaged', key, 'hw-a');
    expect(await json<{ installationId: string }>('client', 'installation-id', '--state-dir', reimaged)).toEqual(iidA);
    const again = await post(iidA.installationId);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ method: 'retail', used: 1, limit: 1, again: true });
    expect(
      await json<Status & { ok: boolean }>('client', 'activate', '--state-dir', reimaged, '--authority', authorityUrl),
    ).toMatchObject({ ok: true, state: 'licensed', method: 'retail' });

    // B: another installation with the same key is refused, naming only the key's last 5.
    const b = await installation('pc-b', key, 'hw-b');
    const refused = await runCliInProcess(
      onMachine(['client', 'activate', '--state-dir', b, '--authority', authorityUrl, '--json'], machines),
    );
    expect(refused.code).toBe(1);
    const out = JSON.parse(refused.stdout) as { ok: boolean; code: string; message: string; state: string };
    expect(out).toMatchObject({ ok: false, code: 'RETAIL_ALREADY_ACTIVATED', state: 'initial-grace' });
    expect(out.message).toContain(last5);
    expect(out.message).not.toContain(key);
    expect(out.message).not.toContain(key.replace(/-/g, ''));

    const shown = await json<{ type: string; limit: number; used: number; remaining: number; activations: unknown[] }>(
      'authority',
      'key',
      'show',
      key,
      '--data-dir',
      path('a'),
    );
    expect(shown).toMatchObject({ key: last5, type: 'retail', limit: 1, used: 1, remaining: 0 });
    // The first activation, then three free ones: A's own, the wire's repeat and the re-imaged A's.
    expect(shown.activations).toMatchObject([{ channel: 'online', activationCount: 4 }]);
    expect(await ok('authority', 'key', 'show', key, '--data-dir', path('a'))).toContain(
      'installations: limit 1, used 1, remaining 0',
    );
  });

  it('by phone: installation-id → authority confirm → install-confirmation; a second installation is refused', async () => {
    const key = await mintRetail();
    const isolated = await installation('isolated', key, 'hw-isolated');
    const { installationId } = await json<{ installationId: string }>(
      'client',
      'installation-id',
      '--state-dir',
      isolated,
    );
    expect(installationId).toMatch(/^(\d{6}-){12}\d{6}$/);
    const confirmation = await json<{ kind: string; confirmationId: string; method: string; used: number }>(
      'authority',
      'confirm',
      installationId,
      '--data-dir',
      path('a'),
    );
    expect(confirmation).toMatchObject({ kind: 'installation', method: 'retail', used: 1, limit: 1, again: false });
    const status = await json<Status>(
      'client',
      'install-confirmation',
      '--state-dir',
      isolated,
      ...confirmation.confirmationId.split('-'),
    );
    expect(status).toMatchObject({ state: 'licensed', method: 'retail', expiresAt: null });

    const other = await installation('isolated-2', key, 'hw-other');
    const otherIid = (await json<{ installationId: string }>('client', 'installation-id', '--state-dir', other))
      .installationId;
    const r = await runCliInProcess(['authority', 'confirm', otherIid, '--data-dir', path('a'), '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'RETAIL_ALREADY_ACTIVATED' } });
    expect(
      await json<{ limit: number; used: number }>('authority', 'key', 'show', key, '--data-dir', path('a')),
    ).toMatchObject({ type: 'retail', limit: 1, used: 1, activations: [{ channel: 'phone' }] });
  });
});
