import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority } from '@volact/authority';
import { ManualClock, type ProductConfig } from '@volact/core';
import { ClientError, Licence } from './index.js';

/**
 * The SDK side of issue 11: what Licence.open takes from its caller instead of from the store
 * (product, hardware id, membership), and a damaged store named with its fix. The CLI side is in
 * test/e2e/store-edits.test.ts.
 */
let root: string;
let clock: ManualClock;
let authority: Authority;
let product: ProductConfig;
let productPath: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-client-store-'));
  clock = new ManualClock(Date.UTC(2026, 10, 2, 9));
  authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  productPath = join(root, 'product.json');
  writeFileSync(productPath, JSON.stringify(product));
});
afterAll(async () => {
  await authority.close();
  rmSync(root, { recursive: true, force: true });
});

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (err) {
    if (err instanceof ClientError) return err.code;
    throw err;
  }
  return undefined;
};

describe('Licence.open reads trust from outside the store', () => {
  it('the product: from the app, or from the installed file whose fingerprint the store keeps', () => {
    const stateDir = join(root, 'sdk-product');
    Licence.init({ stateDir, product, productPath, hardwareId: 'hw-1', clock });
    const stored = JSON.parse(readFileSync(join(stateDir, 'licence.json'), 'utf8')) as Record<string, unknown>;
    expect(stored).not.toHaveProperty('product');
    expect(Licence.open({ stateDir, clock }).status().threshold).toBe(5);
    // The installed file swapped for one with threshold 1: refused, naming the file.
    writeFileSync(productPath, JSON.stringify({ ...product, group: { ...product.group, threshold: 1 } }));
    try {
      expect(() => Licence.open({ stateDir, clock })).toThrow(/product\.json is not the one this installation/);
      expect(codeOf(() => Licence.open({ stateDir, clock }))).toBe('PRODUCT_FILE_CHANGED');
      // The app's own copy is what it ships: used as given.
      expect(Licence.open({ stateDir, clock, product }).status().threshold).toBe(5);
      // set-product accepts an update of the same group.
      Licence.setProduct({ stateDir, productPath, product: JSON.parse(readFileSync(productPath, 'utf8')) });
      expect(Licence.open({ stateDir, clock }).status().threshold).toBe(1);
    } finally {
      writeFileSync(productPath, JSON.stringify(product));
    }
  });

  it('the hardware id: given at each open (status shows it and whether it differs from the one at init)', () => {
    const stateDir = join(root, 'sdk-hardware');
    Licence.init({ stateDir, product, productPath, hardwareId: 'hw-init', clock });
    expect(Licence.open({ stateDir, clock, hardwareId: 'hw-elsewhere' }).status().hardware).toEqual({
      id: 'hw-elsewhere',
      recorded: 'hw-init',
      changed: true,
    });
    expect(Licence.open({ stateDir, clock, hardwareId: 'hw-elsewhere' }).hardwareId).toBe('hw-elsewhere');
    // The same process that made it: what init was given.
    expect(Licence.open({ stateDir, clock }).status().hardware.changed).toBe(false);
  });

  it('a damaged store: LICENCE_STORE_DAMAGED naming the file and `client reset`; reset keeps the client ID and install date', () => {
    const stateDir = join(root, 'sdk-damaged');
    const made = Licence.init({ stateDir, product, productPath, hardwareId: 'hw-d', clock }).status();
    const file = join(stateDir, 'licence.json');
    const before = JSON.parse(readFileSync(file, 'utf8')) as { installedAt: number };
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 200));
    expect(() => Licence.open({ stateDir, clock })).toThrow(
      new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is damaged .*volact client reset --state-dir`),
    );
    expect(codeOf(() => Licence.init({ stateDir, product, productPath, hardwareId: 'hw-d', clock }))).toBe(
      'CLIENT_EXISTS',
    );
    // Format 1 (a trusted product copy inside): refused the same way.
    writeFileSync(file, JSON.stringify({ ...before, format: 'volact-client/1' }));
    expect(codeOf(() => Licence.open({ stateDir, clock }))).toBe('LICENCE_STORE_DAMAGED');
    clock.advance(3 * 24 * 3600_000);
    const reset = Licence.reset({ stateDir, product, productPath, hardwareId: 'hw-d', clock }).status();
    expect(reset.clientMachineId).toBe(made.clientMachineId);
    expect(reset.expiresAt).toBe(made.expiresAt); // the initial grace is not restarted
    expect(Licence.open({ stateDir, clock }).status().state).toBe('initial-grace');
  });

  it('reset refuses a store that still reads (it would throw its activation and revocations away), naming the fix', () => {
    const stateDir = join(root, 'sdk-healthy-reset');
    Licence.init({ stateDir, product, productPath, hardwareId: 'hw-r', clock });
    expect(() => Licence.reset({ stateDir, product, productPath, hardwareId: 'hw-r', clock })).toThrow(
      /is not damaged.*set-product.*client init/,
    );
    expect(codeOf(() => Licence.reset({ stateDir, product, productPath, hardwareId: 'hw-r', clock }))).toBe(
      'CLIENT_EXISTS',
    );
  });

  it('the product location the store names is checked at every open; set-product refuses the product of another authority', () => {
    const stateDir = join(root, 'sdk-anchor');
    Licence.init({ stateDir, product, productPath, hardwareId: 'hw-a', clock });
    const file = join(stateDir, 'licence.json');
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { productRef: Record<string, unknown> };
    expect(stored.productRef.rootKey).toMatch(/^[0-9a-f]{64}$/);
    const inside = join(stateDir, 'product.json');
    writeFileSync(inside, JSON.stringify(product));
    writeFileSync(file, JSON.stringify({ ...stored, productRef: { ...stored.productRef, path: inside } }));
    expect(() => Licence.open({ stateDir, clock })).toThrow(/is inside the state directory/);
    writeFileSync(file, JSON.stringify(stored));
    // Another authority's product: its root alone in its bundle (no delegation of ours).
    const otherRoot = Buffer.alloc(32, 9).toString('base64');
    const other = {
      ...product,
      authority: {
        url: product.authority.url,
        rootPublicKey: otherRoot,
        roots: [{ publicKey: otherRoot, validFrom: new Date(0).toISOString() }],
      },
    };
    const otherPath = join(root, 'other-root-product.json');
    writeFileSync(otherPath, JSON.stringify(other));
    expect(() => Licence.setProduct({ stateDir, product: other, productPath: otherPath, clock })).toThrow(
      /another root key/,
    );
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(stored);
  });

  it('refuses a product location inside the state directory', () => {
    const stateDir = join(root, 'sdk-inside');
    expect(
      codeOf(() =>
        Licence.init({ stateDir, product, productPath: join(stateDir, 'product.json'), hardwareId: 'h', clock }),
      ),
    ).toBe('PRODUCT_CONFIG_INVALID');
  });
});
