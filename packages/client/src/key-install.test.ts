import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority } from '@volact/authority';
import { ManualClock, makeKey, parseKey, type ProductConfig } from '@volact/core';
import { ClientError, Licence } from './index.js';

let root: string;
let authority: Authority;
let office: ProductConfig;
const clock = new ManualClock(Date.UTC(2026, 11, 2, 9));

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-key-install-'));
  authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  await authority.addGroup({ name: 'project14', threshold: 5 });
  office = await authority.productConfig('office14');
});
afterAll(async () => {
  await authority.close();
  rmSync(root, { recursive: true, force: true });
});

let machines = 0;
const officeMachine = () =>
  Licence.init({ stateDir: join(root, `m${++machines}`), product: office, hardwareId: `hw-${machines}`, clock });

describe('installing a MAK or retail key minted for another product group', () => {
  it.each(['mak', 'retail'] as const)(
    'a %s key of another group is refused at install, naming both, and nothing changes',
    async (type) => {
      const other = await authority.mintKey({ type, groups: ['project14'], ...(type === 'mak' ? { limit: 10 } : {}) });
      const licence = officeMachine();
      const before = licence.status();
      let error: unknown;
      try {
        licence.installKey(other.key);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({
        code: 'KEY_INVALID',
        message: expect.stringMatching(
          /of another product group, not of office14; install a key minted for office14$/,
        ) as unknown,
      });
      expect((error as Error).message).not.toContain(other.key);
      expect(licence.status()).toEqual(before);
    },
  );

  it('a key minted for the product group installs', async () => {
    const own = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 10 });
    expect(parseKey(own.key).groupTag).not.toBeNull();
    const licence = officeMachine();
    licence.installKey(own.key);
    expect(licence.status()).toMatchObject({ installedKeyType: 'mak' });
  });

  it('a MAK minted before keys named their group still installs (only the authority can tell)', () => {
    const older = makeKey('mak');
    expect(older.groupTag).toBeNull();
    const licence = officeMachine();
    licence.installKey(older.text);
    expect(licence.status()).toMatchObject({ installedKeyType: 'mak' });
  });
});
