import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, generateSigningKeyPair } from '@volact/core';
import { Authority } from './authority.js';
import { AuthorityError } from './errors.js';

/**
 * A refusal about one field of a request names the field in the domain's words and carries
 * it as `field`; no message names a command-line flag (the CLI adds its own).
 */
describe('refusals name the request field, never a flag', () => {
  const dir = mkdtempSync(join(tmpdir(), 'volact-fields-'));
  let authority: Authority;

  beforeAll(async () => {
    authority = Authority.init(join(dir, 'a'), { clock: new ManualClock() });
    await authority.addGroup({ name: 'office14' });
  });
  afterAll(async () => {
    await authority.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const refusal = async (call: () => unknown): Promise<AuthorityError> => {
    const err = await Promise.resolve()
      .then(call)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthorityError);
    expect((err as AuthorityError).message).not.toMatch(/(^|\s|`)--[a-z]/);
    return err as AuthorityError;
  };
  const publicKeyRaw = generateSigningKeyPair().publicKeyRaw;

  it.each([
    ['domain', () => authority.createActivationObject({ group: 'office14', domain: 'bad domain', name: 'n' })],
    ['name', () => authority.createActivationObject({ group: 'office14', domain: 'corp.test', name: '-n' })],
    [
      'validityDays',
      () => authority.createActivationObject({ group: 'office14', domain: 'corp.test', name: 'n', validityDays: 0 }),
    ],
    ['limit', () => authority.mintKey({ type: 'retail', groups: ['office14'], limit: 2 })],
    ['limit', () => authority.mintKey({ type: 'mak', groups: ['office14'] })],
    ['groups', () => authority.mintKey({ type: 'mak', groups: [] })],
    ['days', () => authority.issueTokenCa({ organisation: 'Org', group: 'office14', publicKeyRaw, days: 0 })],
    [
      'manufacturer',
      () => authority.issueOemCertificate({ manufacturer: '', publicKeyRaw, groups: ['office14'], days: 10 }),
    ],
    ['url', () => authority.productConfig('office14', { url: 'http://example.com' })],
  ])('%s', async (field, call) => {
    expect((await refusal(call)).field).toBe(field);
  });

  it('a data directory without an authority, and a database URL that is not PostgreSQL (nothing is made)', async () => {
    expect((await refusal(() => Authority.open(join(dir, 'none')))).field).toBe('dataDir');
    const err = await refusal(() => Authority.init(join(dir, 'b'), { databaseUrl: 'mysql://x' }));
    expect([err.code, err.field]).toEqual(['REQUEST_INVALID', 'databaseUrl']);
    expect(existsSync(join(dir, 'b'))).toBe(false);
  });
});
