import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ManualClock,
  makeInstallationId,
  parseConfirmationId,
  parseKey,
  parseKeyOfType,
  verifyInstallationConfirmation,
} from '@volact/core';
import { Authority } from './authority.js';
import { AuthorityError } from './errors.js';
import { createAuthorityServer } from './http.js';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AuthorityError) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'no error';
}

const last5Of = (key: string) => `…${key.replace(/-/g, '').slice(-5)}`;

/** Reference (plan-for-volume-activation): "each purchased copy comes with one unique product key". */
describe('retail keys', () => {
  let dir: string;
  let clock: ManualClock;
  let authority: Authority;
  let groupId: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'volact-retail-'));
    clock = new ManualClock(Date.UTC(2026, 10, 25));
    authority = Authority.init(join(dir, 'a'), { clock });
    groupId = (await authority.addGroup({ name: 'office14' })).id;
    await authority.addGroup({ name: 'visio14' });
  });
  afterEach(async () => {
    await authority.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const iidFor = (key: string, hardwareId: string, groups = [groupId]) =>
    makeInstallationId({ kind: 'installation', key: parseKey(key), hardwareId, groupIds: groups });

  it('mints a retail key for one group with a limit of 1; another limit or several groups are refused', async () => {
    const minted = await authority.mintKey({ type: 'retail', groups: ['office14'] });
    expect(parseKeyOfType(minted.key, 'retail').text).toBe(minted.key);
    expect(minted).toMatchObject({
      type: 'retail',
      groups: ['office14'],
      limit: 1,
      hosts: null,
      activationsPerHost: null,
    });
    expect((await authority.mintKey({ type: 'retail', groups: ['office14'], limit: 1 })).limit).toBe(1);
    expect(await codeOf(authority.mintKey({ type: 'retail', groups: ['office14'], limit: 2 }))).toMatch(
      /^REQUEST_INVALID: a retail key activates exactly one installation \(its limit is 1\), got --limit 2/,
    );
    expect(await codeOf(authority.mintKey({ type: 'retail', groups: ['office14', 'visio14'] }))).toMatch(
      /^GROUP_INVALID: a retail key activates one product group/,
    );
    expect(await codeOf(authority.mintKey({ type: 'retail', groups: [] }))).toMatch(/^GROUP_INVALID/);
    expect(await codeOf(authority.setKeyLimit(minted.key, 5))).toMatch(/^KEY_WRONG_TYPE: key …\w{5} is a retail key/);
    expect(await authority.showKey(minted.key)).toMatchObject({ type: 'retail', limit: 1, used: 0, remaining: 1 });
  });

  it('online: one installation activates; the same again is free; another is refused with RETAIL_ALREADY_ACTIVATED', async () => {
    const { key } = await authority.mintKey({ type: 'retail', groups: ['office14'] });
    const first = await authority.activateInstallation({ key, installationId: iidFor(key, 'pc-a').text, groupId });
    expect(first).toMatchObject({ method: 'retail', group: 'office14', used: 1, limit: 1, again: false });
    expect(
      verifyInstallationConfirmation(
        iidFor(key, 'pc-a'),
        groupId,
        parseConfirmationId(first.confirmationId),
        authority.rootPublicKeyRaw,
      ),
    ).toBe(true);
    const again = await authority.activateInstallation({ key, installationId: iidFor(key, 'pc-a').text, groupId });
    expect(again).toMatchObject({ method: 'retail', used: 1, limit: 1, again: true });
    const refused = await codeOf(authority.activateInstallation({ key, installationId: iidFor(key, 'pc-b').text }));
    expect(refused).toBe(
      `RETAIL_ALREADY_ACTIVATED: retail key ${last5Of(key)} is already activated on another installation; a retail key activates one installation (the same machine, re-imaged, activates again free)`,
    );
    expect(refused).not.toContain(key);
    expect(await authority.showKey(key)).toMatchObject({
      type: 'retail',
      group: 'office14',
      limit: 1,
      used: 1,
      remaining: 0,
      activations: [{ channel: 'online', activationCount: 2 }],
    });
    const audit = await authority.recentAudit(10);
    expect(audit[0]).toMatchObject({
      action: 'installation.activate.online',
      result: 'RETAIL_ALREADY_ACTIVATED',
      keyLast5: last5Of(key),
    });
    expect(JSON.stringify(audit)).not.toContain(key);
  });

  it('by phone: the IID alone confirms a retail installation, on the same single activation as online', async () => {
    const { key } = await authority.mintKey({ type: 'retail', groups: ['office14'] });
    const c = await authority.confirm(iidFor(key, 'isolated').text);
    expect(c).toMatchObject({ kind: 'installation', method: 'retail', used: 1, limit: 1, again: false });
    // The same installation online later (a re-imaged machine now connected): free.
    expect(
      await authority.activateInstallation({ key, installationId: iidFor(key, 'isolated').text, groupId }),
    ).toMatchObject({ again: true, used: 1 });
    expect(await codeOf(authority.confirm(iidFor(key, 'second').text))).toMatch(
      /^RETAIL_ALREADY_ACTIVATED: retail key …\w{5}/,
    );
    expect(await codeOf(authority.confirm(iidFor(key, 'x', [(await authority.listGroups())[1]!.id]).text))).toMatch(
      /^GROUP_MISMATCH/,
    );
    expect((await authority.showKey(key)).activations).toMatchObject([{ channel: 'phone', activationCount: 2 }]);
  });

  it('refuses a retail key of another group, a revoked one, and an IID of another key by name', async () => {
    const { key } = await authority.mintKey({ type: 'retail', groups: ['visio14'] });
    const { key: other } = await authority.mintKey({ type: 'retail', groups: ['office14'] });
    expect(await codeOf(authority.activateInstallation({ key, installationId: iidFor(key, 'x').text }))).toMatch(
      /^GROUP_MISMATCH: retail key …\w{5} activates visio14/,
    );
    expect(await codeOf(authority.activateInstallation({ key: other, installationId: iidFor(key, 'x').text }))).toMatch(
      /^IID_KEY_MISMATCH/,
    );
    await authority.revokeKey(other);
    expect(
      await codeOf(authority.activateInstallation({ key: other, installationId: iidFor(other, 'x').text })),
    ).toMatch(/^KEY_REVOKED: retail key …\w{5} was revoked/);
    expect((await authority.showKey(other)).used).toBe(0);
  });

  it('over HTTP: 201 then 200 `again`, then 403 RETAIL_ALREADY_ACTIVATED; the phone route answers method retail', async () => {
    const app = createAuthorityServer(authority);
    try {
      const { key } = await authority.mintKey({ type: 'retail', groups: ['office14'] });
      const post = (url: string, payload: Record<string, unknown>) => app.inject({ method: 'POST', url, payload });
      const body = (hw: string) => ({ key, installationId: iidFor(key, hw).text, groupId });
      const first = await post('/v1/activations', body('a'));
      expect(first.statusCode).toBe(201);
      expect(first.json()).toMatchObject({ method: 'retail', used: 1, limit: 1, again: false });
      const again = await post('/v1/activations', body('a'));
      expect(again.statusCode).toBe(200);
      expect(again.json()).toMatchObject({ again: true, used: 1 });
      const refused = await post('/v1/activations', body('b'));
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toMatchObject({ error: { code: 'RETAIL_ALREADY_ACTIVATED' } });
      const { key: phoneKey } = await authority.mintKey({ type: 'retail', groups: ['office14'] });
      const phone = await post('/v1/confirmations', { installationId: iidFor(phoneKey, 'p').text });
      expect(phone.statusCode).toBe(201);
      expect(phone.json()).toMatchObject({ kind: 'installation', method: 'retail', used: 1, limit: 1 });
      const bulk = await post('/v1/confirmations/bulk', {
        installationIds: [iidFor(phoneKey, 'p').text, iidFor(phoneKey, 'q').text],
      });
      expect(bulk.json()).toMatchObject({
        results: [
          { ok: true, method: 'retail', again: true },
          { ok: false, error: { code: 'RETAIL_ALREADY_ACTIVATED' } },
        ],
      });
    } finally {
      await app.close();
    }
  });
});
