import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DAY, ManualClock, generateSigningKeyPair, makeInstallationId, parseKey } from '@volact/core';
import { Authority } from './authority.js';
import type { AuthorityContext } from './context.js';
import { readDataDir } from './data-dir.js';
import { AuthorityError } from './errors.js';
import { ProductGroups } from './groups.js';
import { activateHost } from './host-activation.js';
import { InstallationQueue } from './installation-queue.js';
import { FileRootKeys, KeyRing, contextWithRing } from './key-ring.js';
import { ProductKeys } from './keys.js';
import { confirmByPhone } from './phone-confirmation.js';
import { openAuthorityStore } from './store-choice.js';
import type { AuthorityStore } from './store.js';

/**
 * A store fault on a product group read must come before a decision, never after it: once a
 * host (online or by phone) or an activation object is recorded, a 503 would tell the caller
 * nothing was decided while one of the key's host activations was used. The groups are read
 * from a cold cache (a node just started, or another node of the same database), with every
 * group read failing as a database gone away would: the answer is STORE_UNAVAILABLE and the
 * key has used nothing.
 */
let dir: string;
let clock: ManualClock;
let groupId: string;
let hostKey: string;
let mak: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volact-host-decision-faults-'));
  clock = new ManualClock(Date.UTC(2026, 10, 25));
  const authority = Authority.init(join(dir, 'a'), { clock });
  groupId = (await authority.addGroup({ name: 'office14' })).id;
  hostKey = (await authority.mintKey({ type: 'kms-host', groups: ['office14'] })).key;
  mak = (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 5 })).key;
  await authority.close();
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The authority's context on its own database, whose group reads all fail (the cache is cold). */
async function withFailingGroupReads(): Promise<{ ctx: AuthorityContext; store: AuthorityStore }> {
  const secrets = readDataDir(join(dir, 'a'));
  const real = openAuthorityStore(join(dir, 'a'), undefined);
  const unavailable = () => Promise.reject(new AuthorityError('STORE_UNAVAILABLE', 'the database did not answer'));
  const store: AuthorityStore = new Proxy(real, {
    get(target, property, receiver) {
      if (property === 'findGroup' || property === 'listGroups') return unavailable;
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  const groups = new ProductGroups(store, clock);
  const ring = new KeyRing({
    store: real.keyRing,
    rootKeys: new FileRootKeys(secrets.dataDir, secrets.rootFiles),
    keyHashSecret: secrets.keyHashSecret,
    clock,
  });
  await ring.ready();
  const ctx = contextWithRing(
    {
      keyHashSecret: secrets.keyHashSecret,
      store,
      clock,
      groups,
      keys: new ProductKeys(store, groups, clock, secrets.keyHashSecret),
      installations: new InstallationQueue(store),
    },
    ring,
  );
  return { ctx, store };
}

async function codeOf(attempt: (ctx: AuthorityContext) => Promise<unknown>): Promise<string> {
  const { ctx, store } = await withFailingGroupReads();
  try {
    await attempt(ctx);
    return 'no error';
  } catch (err) {
    if (err instanceof AuthorityError) return err.code;
    throw err;
  } finally {
    await store.close();
  }
}

/** What the key has used, read by a healthy authority afterwards. */
async function usedBy(key: string): Promise<{ used: number; activations: number }> {
  const authority = Authority.open(join(dir, 'a'), { clock });
  try {
    const report = await authority.showKey(key);
    return { used: report.used, activations: report.activations.length };
  } finally {
    await authority.close();
  }
}

const iidOf = (input: Parameters<typeof makeInstallationId>[0]) => makeInstallationId(input).text;

describe('a group read that fails answers STORE_UNAVAILABLE before any decision', () => {
  it('an online host activation', async () => {
    const code = await codeOf((ctx) =>
      activateHost(
        ctx,
        { hostKey, hostPublicKey: generateSigningKeyPair().publicKeyRaw, hardwareId: 'hw-host-1' },
        30 * DAY,
      ),
    );
    expect(code).toBe('STORE_UNAVAILABLE');
    expect(await usedBy(hostKey)).toEqual({ used: 0, activations: 0 });
  });

  it('a KMS host confirmed by phone', async () => {
    const installationId = iidOf({
      kind: 'kms-host',
      key: parseKey(hostKey),
      hardwareId: 'hw-host-2',
      groupIds: [groupId],
      hostPublicKey: generateSigningKeyPair().publicKeyRaw,
    });
    expect(await codeOf((ctx) => confirmByPhone(ctx, installationId))).toBe('STORE_UNAVAILABLE');
    expect(await usedBy(hostKey)).toEqual({ used: 0, activations: 0 });
  });

  it("a disconnected forest's activation object confirmed by phone", async () => {
    const installationId = iidOf({
      kind: 'activation-object',
      key: parseKey(hostKey),
      domain: 'corp.example',
      groupIds: [groupId],
    });
    expect(await codeOf((ctx) => confirmByPhone(ctx, installationId))).toBe('STORE_UNAVAILABLE');
    expect(await usedBy(hostKey)).toEqual({ used: 0, activations: 0 });
  });

  it('a product installation confirmed by phone (as fixed for installations)', async () => {
    const installationId = iidOf({ kind: 'installation', key: parseKey(mak), hardwareId: 'pc-1', groupIds: [groupId] });
    expect(await codeOf((ctx) => confirmByPhone(ctx, installationId))).toBe('STORE_UNAVAILABLE');
    expect(await usedBy(mak)).toEqual({ used: 0, activations: 0 });
  });
});
