import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, ManualClock } from '@volact/core';
import type { LicenceStatus } from '@volact/client';
import { cliExpectations, cliInstallations, onMachine, runCliInProcess } from './cli-in-process.js';
import { startSlice, type Slice } from './harness.js';

/**
 * Issue 12: a product key can be taken off an installation again (`client uninstall-key`,
 * `Licence.uninstallKey()`), and the discovery domains set by hand can be cleared
 * (`client clear-domain`, as `clear-host` clears the host). Through the real command tree, on
 * the slice's clock, against a real KMS host and authority.
 */
const clock = new ManualClock(Date.UTC(2026, 10, 2, 9));
const machines = new Map<string, string>();
const { ok, json, refused } = cliExpectations({ now: () => clock.now(), machines, anyFailureExit: true });
let slice: Slice;
let productFile: string;

const status = (stateDir: string) => json<LicenceStatus>('client', 'status', '--state-dir', stateDir);
const run = (...args: string[]) => runCliInProcess(onMachine(args, machines), { now: () => clock.now() });

const installation = cliInstallations(
  ok,
  () => ({ root: slice.root, productFile, hostAddress: () => slice.hostAddress() }),
  'k',
);

beforeAll(async () => {
  slice = await startSlice(clock, { threshold: 1 });
  productFile = join(slice.root, 'product.json');
  writeFileSync(productFile, JSON.stringify(slice.product));
});
afterAll(() => slice?.close());

describe('client uninstall-key', () => {
  it('takes the key and its KMS activation off: unlicensed, nothing to activate, until a key is installed again', async () => {
    const c = await installation();
    await ok('client', 'activate', '--state-dir', c);
    expect(await status(c)).toMatchObject({ state: 'licensed', method: 'kms', installedKeyType: 'gvlk' });

    const r = await run('client', 'uninstall-key', '--state-dir', c);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^key …[0-9A-Z]{5} uninstalled with its kms activation; state: unlicensed /m);
    expect(r.stdout).toContain('volact client install-key');
    expect(await status(c)).toMatchObject({
      state: 'unlicensed',
      method: null,
      installedKey: null,
      installedKeyType: null,
      expiresAt: null,
      lastAttempt: null,
    });
    // The host set by hand is how hosts are found, not the key: it stays.
    expect((await status(c)).host).toBe(slice.hostAddress());

    // Nothing to activate with: an attempt says to install a key.
    const attempt = await refused('client', 'activate', '--state-dir', c);
    expect(attempt).toMatchObject({ code: 'KEY_INVALID' });
    expect(attempt.message).toContain('no product key is installed');

    // Again: nothing installed, nothing changes, said plainly.
    const again = await run('client', 'uninstall-key', '--state-dir', c);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('no product key is installed (nothing changed)');
    expect(await json('client', 'uninstall-key', '--state-dir', c)).toEqual({
      uninstalledKey: null,
      state: 'unlicensed',
    });

    // The GVLK installed again: the installation activates as before.
    await ok('client', 'install-key', '--state-dir', c, slice.product.gvlk);
    expect((await status(c)).state).toBe('initial-grace');
    await ok('client', 'activate', '--state-dir', c);
    expect((await status(c)).state).toBe('licensed');
  });

  it('installing a key again does not restart the initial grace (counted from the install date)', async () => {
    const c = await installation();
    await ok('client', 'uninstall-key', '--state-dir', c);
    const saved = clock.now();
    try {
      clock.advance(31 * DAY);
      await ok('client', 'install-key', '--state-dir', c, slice.product.gvlk);
      expect((await status(c)).state).toBe('notification');
    } finally {
      clock.set(saved);
    }
  });

  it('takes a MAK off with what it carries: no installation ID to read out any more', async () => {
    const c = await installation();
    const { key } = await slice.authority.mintKey({ type: 'mak', groups: [slice.product.group.name], limit: 2 });
    await ok('client', 'install-key', '--state-dir', c, key);
    const { installationId } = await json<{ installationId: string }>('client', 'installation-id', '--state-dir', c);
    expect(installationId).toBeTruthy();

    const out = await json<{ uninstalledKey: string; state: string }>('client', 'uninstall-key', '--state-dir', c);
    expect(out).toEqual({ uninstalledKey: `…${key.replace(/-/g, '').slice(-5)}`, state: 'unlicensed' });
    expect((await refused('client', 'installation-id', '--state-dir', c)).code).toBe('NO_MAK_INSTALLED');
  });

  it('Licence.uninstallKey() in the SDK: returns the key removed, tells subscribers, and null once none is left', async () => {
    const licence = slice.newClient('sdk-uninstall');
    expect((await licence.activate()).ok).toBe(true);
    const states: string[] = [];
    licence.onChange((s) => states.push(s.state));
    expect(licence.uninstallKey()).toBe(`…${slice.product.gvlk.replace(/-/g, '').slice(-5)}`);
    expect(licence.status()).toMatchObject({ state: 'unlicensed', installedKey: null, method: null });
    expect(states).toEqual(['unlicensed']);
    expect(licence.uninstallKey()).toBeNull();
    expect(states).toEqual(['unlicensed']);
  });
});

describe('client clear-domain', () => {
  it("forgets the domains and DNS server set by hand: back to this machine's own domain and the system resolver", async () => {
    const c = await installation();
    await ok(
      'client',
      'set-domain',
      '--state-dir',
      c,
      'corp.test',
      'branch.corp.test',
      '--dns-server',
      '127.0.0.1:5353',
    );
    expect((await status(c)).discovery).toMatchObject({
      domains: ['corp.test', 'branch.corp.test'],
      dnsServer: '127.0.0.1:5353',
    });

    const r = await run('client', 'clear-domain', '--state-dir', c);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("this machine's own domain");
    expect((await status(c)).discovery).toMatchObject({ domains: [], dnsServer: null });
    expect(await json('client', 'clear-domain', '--state-dir', c)).toMatchObject({ domains: [], dnsServer: null });
  });
});
