import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DAY,
  ManualClock,
  buildPhoneCertificate,
  dayOf,
  decodeHostCertificate,
  generateSigningKeyPair,
  keyRefOf,
  makeInstallationId,
  makeKey,
  parseConfirmationId,
  parseKey,
  publicKeyFromRaw,
  verifyHostCertificate,
  verifyInstallationConfirmation,
} from '@volact/core';
import { Authority } from './authority.js';
import { AuthorityError } from './errors.js';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AuthorityError) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'no error';
}

describe('MAK activation', () => {
  let dir: string;
  let clock: ManualClock;
  let authority: Authority;
  let groupId: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'volact-mak-'));
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

  it('limit 3: three installations activate, the fourth is refused and uses nothing; the first again is free; raise lets the fourth in', async () => {
    const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 3 });
    for (const hw of ['pc-1', 'pc-2', 'pc-3']) {
      const r = await authority.activateInstallation({ key, installationId: iidFor(key, hw).text, groupId });
      expect(r.again).toBe(false);
      const cid = parseConfirmationId(r.confirmationId);
      expect(verifyInstallationConfirmation(iidFor(key, hw), groupId, cid, authority.rootPublicKeyRaw)).toBe(true);
    }
    expect(await codeOf(authority.activateInstallation({ key, installationId: iidFor(key, 'pc-4').text }))).toBe(
      `MAK_LIMIT_REACHED: MAK ${key.replace(/-/g, '').slice(-5).replace(/^/, '…')} has used all 3 of its activations; ask the publisher to raise its limit (\`volact authority key raise\`)`,
    );
    const again = await authority.activateInstallation({ key, installationId: iidFor(key, 'pc-1').text });
    expect(again).toMatchObject({ again: true, used: 3, limit: 3 });
    const shown = await authority.showKey(key);
    expect(shown).toMatchObject({ type: 'mak', group: 'office14', limit: 3, used: 3, remaining: 0 });
    expect(shown.activations.length).toBe(3);
    expect(JSON.stringify(shown)).not.toContain(key);
    await authority.setKeyLimit(key, 4);
    expect(await authority.activateInstallation({ key, installationId: iidFor(key, 'pc-4').text })).toMatchObject({
      again: false,
      used: 4,
    });
    expect(await codeOf(authority.setKeyLimit(key, 3))).toMatch(/^KEY_LIMIT_BELOW_USED/);
  });

  it('a significant hardware change is a new installation and uses one more', async () => {
    const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 5 });
    await authority.activateInstallation({ key, installationId: iidFor(key, 'board-A').text });
    const r = await authority.activateInstallation({ key, installationId: iidFor(key, 'board-B').text });
    expect(r).toMatchObject({ again: false, used: 2 });
  });

  it('concurrent activations of one key are decided exactly: limit 10, 40 at once, 10 succeed', async () => {
    const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 10 });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        authority.activateInstallation({ key, installationId: iidFor(key, `m${i}`).text }),
      ),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled').length).toBe(10);
    expect((await authority.showKey(key)).used).toBe(10);
  });

  it('refuses an IID made for another product even when the caller names no group, spending nothing', async () => {
    const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 3 });
    const visio = (await authority.listGroups()).find((g) => g.name === 'visio14')!.id;
    expect(
      await codeOf(authority.activateInstallation({ key, installationId: iidFor(key, 'x', [visio]).text })),
    ).toMatch(/^GROUP_MISMATCH/);
    expect((await authority.showKey(key)).used).toBe(0);
  });

  it('refuses with a specific code: wrong key type, an IID of another key, another group, a revoked key, a typo', async () => {
    const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 3 });
    const { key: other } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 3 });
    const { key: hostKey } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
    expect(
      await codeOf(authority.activateInstallation({ key: hostKey, installationId: iidFor(key, 'x').text })),
    ).toMatch(/^KEY_WRONG_TYPE/);
    expect(await codeOf(authority.activateInstallation({ key, installationId: iidFor(other, 'x').text }))).toMatch(
      /^IID_KEY_MISMATCH/,
    );
    const visio = (await authority.listGroups()).find((g) => g.name === 'visio14')!.id;
    expect(
      await codeOf(authority.activateInstallation({ key, installationId: iidFor(key, 'x').text, groupId: visio })),
    ).toMatch(/^GROUP_MISMATCH: MAK …\w{5} activates office14/);
    const typo = iidFor(key, 'x').text.split('-');
    typo[2] = typo[2]!.replace(/^(\d)/, (d) => String((Number(d) + 3) % 10));
    expect(await codeOf(authority.activateInstallation({ key, installationId: typo.join('-') }))).toMatch(
      /^IID_INVALID: installation ID: group 3 is wrong/,
    );
    expect(
      await codeOf(authority.activateInstallation({ key: makeKey('mak').text, installationId: iidFor(key, 'x').text })),
    ).toMatch(/^IID_KEY_MISMATCH/);
    await authority.revokeKey(key);
    expect(await codeOf(authority.activateInstallation({ key, installationId: iidFor(key, 'x').text }))).toMatch(
      /^KEY_REVOKED/,
    );
    expect((await authority.showKey(key)).used).toBe(0);
    const audit = await authority.recentAudit(50);
    expect(audit.some((a) => a.result === 'KEY_REVOKED')).toBe(true);
    expect(JSON.stringify(audit)).not.toContain(key);
  });

  it('by phone: the IID alone gives the same CID, on the same count', async () => {
    const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 1 });
    const iid = iidFor(key, 'isolated-pc');
    const c = await authority.confirm(iid.text.replace(/-/g, ' '));
    expect(c.kind).toBe('installation');
    expect(
      verifyInstallationConfirmation(iid, groupId, parseConfirmationId(c.confirmationId), authority.rootPublicKeyRaw),
    ).toBe(true);
    expect((await authority.confirm(iid.text)).kind).toBe('installation'); // the same installation again: free
    expect(await codeOf(authority.confirm(iidFor(key, 'second-pc').text))).toMatch(/^MAK_LIMIT_REACHED/);
    expect(await codeOf(authority.confirm(iidFor(makeKey('mak').text, 'pc').text))).toMatch(/^KEY_NOT_FOUND/);
    expect(await codeOf(authority.confirm(iidFor(key, 'pc', [(await authority.listGroups())[1]!.id]).text))).toMatch(
      /^GROUP_MISMATCH/,
    );
    expect((await authority.showKey(key)).activations).toMatchObject([{ channel: 'phone', activationCount: 2 }]);
  });

  it('a KMS host key by phone: the host rebuilds a certificate clients trust; the host count is kept', async () => {
    const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 1 });
    const hostPair = generateSigningKeyPair();
    const iid = makeInstallationId({
      kind: 'kms-host',
      key: parseKey(key),
      hardwareId: 'kms-1',
      groupIds: [groupId],
      hostPublicKey: hostPair.publicKeyRaw,
    });
    const c = await authority.confirm(iid.text);
    if (c.kind !== 'kms-host') throw new Error('expected a host confirmation');
    const cid = parseConfirmationId(c.confirmationId);
    const cert = decodeHostCertificate(
      buildPhoneCertificate(
        {
          keyRef: keyRefOf(key),
          issuedDay: cid.issuedDay,
          validityDays: 365,
          groupIds: [groupId],
          hostPublicKey: hostPair.publicKeyRaw,
          rootPublicKeyRaw: authority.rootPublicKeyRaw,
        },
        cid.signature,
      ),
    );
    expect(verifyHostCertificate(cert, publicKeyFromRaw(authority.rootPublicKeyRaw))).toBe(true);
    expect(cert.issuedAt).toBe(dayOf(clock.now()) * DAY);
    expect(c.hostsUsed).toBe(1);
    // The same host later activating online (same hardware, same key pair) is the same host, free.
    const online = await authority.activateHost({
      hostKey: key,
      hostPublicKey: hostPair.publicKeyRaw,
      hardwareId: 'kms-1',
    });
    expect(online.hostsUsed).toBe(1);
    expect((await authority.showKey(key)).activations).toMatchObject([{ activationCount: 1 }]);
    const second = makeInstallationId({
      kind: 'kms-host',
      key: parseKey(key),
      hardwareId: 'kms-2',
      groupIds: [groupId],
      hostPublicKey: generateSigningKeyPair().publicKeyRaw,
    });
    expect(await codeOf(authority.confirm(second.text))).toMatch(/^HOST_LIMIT_REACHED/);
    // One audit row per decision, written in the decision's transaction.
    const audit = (await authority.recentAudit(10)).filter(
      (a) => a.action === 'confirm' || a.action === 'host.activate',
    );
    expect(audit.map((a) => `${a.action}:${a.result}`)).toEqual([
      'confirm:HOST_LIMIT_REACHED',
      'host.activate:OK',
      'confirm:OK',
    ]);
  });
});
