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
  parseKeyOfType,
  decodeDelegation,
  publicKeyFromRaw,
  verifyHostCertificate,
  verifyInstallationConfirmation,
  type ConfirmationKeys,
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

// Every test: a fresh authority with the groups office14 and visio14, on a manual clock.
let dir: string;
let clock: ManualClock;
let authority: Authority;
let groupId: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volact-installations-'));
  clock = new ManualClock(Date.UTC(2026, 10, 25));
  authority = Authority.init(join(dir, 'a'), { clock });
  groupId = (await authority.addGroup({ name: 'office14' })).id;
  await authority.addGroup({ name: 'visio14' });
});
afterEach(async () => {
  await authority.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The keys a client trusts for CIDs of this authority: its root, and the online keys its
 * delegations name (the interim authority signs with the root's own key, the key ring with its
 * online key: both are accepted here, as a client's TrustStore would after learning them).
 */
async function cidKeys(): Promise<ConfirmationKeys> {
  const ring = authority as unknown as { trustRecords?: () => Promise<{ delegations: string[] }> };
  const delegations = ring.trustRecords ? (await ring.trustRecords()).delegations : [];
  const keys = [
    authority.rootPublicKeyRaw,
    ...delegations.map((d) => decodeDelegation(Buffer.from(d, 'base64')).delegatePublicKey),
  ];
  return { forIndex: () => keys };
}

/** The key that signed a phone host certificate's CID: the first of cidKeys that verifies it. */
async function phoneIssuer(build: (issuer: Buffer) => ReturnType<typeof decodeHostCertificate>) {
  for (const key of (await cidKeys()).forIndex(1, 0)) {
    const cert = build(Buffer.from(key));
    if (verifyHostCertificate(cert, publicKeyFromRaw(key), 'delegate')) return cert;
  }
  return null;
}

const iidFor = (key: string, hardwareId: string, groups = [groupId]) =>
  makeInstallationId({ kind: 'installation', key: parseKey(key), hardwareId, groupIds: groups });

describe('MAK activation', () => {
  it('limit 3: three installations activate, the fourth is refused and uses nothing; the first again is free; raise lets the fourth in', async () => {
    const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 3 });
    for (const hw of ['pc-1', 'pc-2', 'pc-3']) {
      const r = await authority.activateInstallation({ key, installationId: iidFor(key, hw).text, groupId });
      expect(r.again).toBe(false);
      const cid = parseConfirmationId(r.confirmationId);
      expect(cid.keyIndex).toBe(1); // signed by the online key (v2), never by the root on an activation
      expect(verifyInstallationConfirmation(iidFor(key, hw), groupId, cid, await cidKeys())).toBe(true);
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
    expect(verifyInstallationConfirmation(iid, groupId, parseConfirmationId(c.confirmationId), await cidKeys())).toBe(
      true,
    );
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
    const found = await phoneIssuer((issuerPublicKeyRaw) =>
      decodeHostCertificate(
        buildPhoneCertificate(
          {
            keyRef: keyRefOf(key),
            issuedDay: cid.issuedDay,
            validityDays: 365,
            groupIds: [groupId],
            hostPublicKey: hostPair.publicKeyRaw,
            issuerPublicKeyRaw,
          },
          cid.signature,
        ),
      ),
    );
    expect(cid.keyIndex).toBe(1);
    expect(found).not.toBeNull();
    const cert = found!;
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

const last5Of = (key: string) => `…${key.replace(/-/g, '').slice(-5)}`;

/** Reference (plan-for-volume-activation): "each purchased copy comes with one unique product key". */
describe('retail keys', () => {
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
      /^REQUEST_INVALID: a retail key activates exactly one installation \(its limit is 1\), got a limit of 2/,
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
        await cidKeys(),
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
