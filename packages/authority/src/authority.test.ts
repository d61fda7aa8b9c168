import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DAY,
  ManualClock,
  decodeHostCertificate,
  generateSigningKeyPair,
  guidToBytes,
  gvlkFor,
  keyFingerprint,
  makeKey,
  parseKeyOfType,
  parseProductConfig,
  publicKeyFromRaw,
  verifyHostCertificate,
} from '@volact/core';
import { Authority } from './authority.js';
import { AuthorityError, type AuthorityErrorCode } from './errors.js';
import { createAuthorityServer } from './http.js';

async function refusal(promise: Promise<unknown>): Promise<AuthorityError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(AuthorityError);
    return err as AuthorityError;
  }
  throw new Error('expected the authority to refuse');
}
const codeOf = async (p: Promise<unknown>): Promise<AuthorityErrorCode> => (await refusal(p)).code;

describe('Authority', () => {
  let dir: string;
  let clock: ManualClock;
  let authority: Authority;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'volact-authority-'));
    clock = new ManualClock();
    authority = Authority.init(join(dir, 'a'), { clock });
    await authority.addGroup({ name: 'office14', threshold: 5 });
  });
  afterEach(async () => {
    await authority.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const host = (hardwareId: string, key: string, publicKey = generateSigningKeyPair().publicKeyRaw) => ({
    hostKey: key,
    hostPublicKey: publicKey,
    hardwareId,
  });

  describe('host activation limits', () => {
    it('activates 6 hosts with a 6-host key; the 7th is refused with HOST_LIMIT_REACHED', async () => {
      const { key, hosts } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
      expect(hosts).toBe(6);
      for (let i = 1; i <= 6; i++) {
        const result = await authority.activateHost(host(`hw-${i}`, key));
        expect(result.hostsUsed).toBe(i);
        expect(result.hostLimit).toBe(6);
      }
      const err = await refusal(authority.activateHost(host('hw-7', key)));
      expect(err.code).toBe('HOST_LIMIT_REACHED');
      expect(err.httpStatus).toBe(403);
      expect(err.message).toContain('6 of 6');
      expect(err.message).not.toContain(key);
      // a refusal does not use up anything: still refused, and the 6 hosts are still 6
      expect(await codeOf(authority.activateHost(host('hw-8', key)))).toBe('HOST_LIMIT_REACHED');
    });

    it('the same host re-activating (same hardware id and key pair) is free, also when the limit is reached', async () => {
      const { key } = await authority.mintKey({
        type: 'kms-host',
        groups: ['office14'],
        hosts: 2,
        activationsPerHost: 1,
      });
      const pair = generateSigningKeyPair().publicKeyRaw;
      const first = await authority.activateHost(host('hw-a', key, pair));
      await authority.activateHost(host('hw-b', key));
      clock.advance(300 * DAY);
      for (let i = 0; i < 5; i++) {
        const again = await authority.activateHost(host('hw-a', key, pair));
        expect(again.hostsUsed).toBe(2);
        expect(decodeHostCertificate(again.certificate).serial).not.toBe(
          decodeHostCertificate(first.certificate).serial,
        );
        expect(again.expiresAt).toBe(clock.now() + 30 * DAY);
      }
      expect(await codeOf(authority.activateHost(host('hw-c', key)))).toBe('HOST_LIMIT_REACHED');
    });

    it('a host that comes back with a new key pair uses a re-activation; beyond the limit it is refused', async () => {
      const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'], activationsPerHost: 3 });
      await authority.activateHost(host('hw-a', key));
      await authority.activateHost(host('hw-a', key));
      const third = generateSigningKeyPair().publicKeyRaw;
      await authority.activateHost(host('hw-a', key, third));
      const err = await refusal(authority.activateHost(host('hw-a', key)));
      expect(err.code).toBe('HOST_REACTIVATION_LIMIT_REACHED');
      expect(err.message).toContain('limit 3');
      // renewing with the key pair it has is still free, and it is still one host
      expect((await authority.activateHost(host('hw-a', key, third))).hostsUsed).toBe(1);
    });

    it('counts hosts per key: another key has its own 6', async () => {
      const a = await authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 1 });
      const b = await authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 1 });
      await authority.activateHost(host('hw-1', a.key));
      expect((await authority.activateHost(host('hw-1', b.key))).hostsUsed).toBe(1);
      expect(await codeOf(authority.activateHost(host('hw-2', a.key)))).toBe('HOST_LIMIT_REACHED');
    });

    it('concurrent activations of distinct hosts never exceed the limit', async () => {
      const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => authority.activateHost(host(`hw-${i}`, key))),
      );
      expect(results.filter((r) => r.status === 'fulfilled').length).toBe(6);
      for (const r of results)
        if (r.status === 'rejected') expect((r.reason as AuthorityError).code).toBe('HOST_LIMIT_REACHED');
    });
  });

  describe('host certificates', () => {
    it("certifies the host public key for the key's groups, verifiable with the root key, valid 365 days", async () => {
      const windows = await authority.addGroup({ name: 'windows', kind: 'client-os' });
      const office = await authority.group('office14');
      const { key, keyId } = await authority.mintKey({ type: 'kms-host', groups: ['office14', 'windows'] });
      const pair = generateSigningKeyPair();
      const result = await authority.activateHost(host('hw-1', key, pair.publicKeyRaw));
      const cert = decodeHostCertificate(result.certificate);
      expect(verifyHostCertificate(cert, publicKeyFromRaw(authority.rootPublicKeyRaw))).toBe(true);
      expect(verifyHostCertificate(cert, generateSigningKeyPair().publicKey)).toBe(false);
      expect(cert.hostPublicKey).toEqual(pair.publicKeyRaw);
      expect([...cert.groupIds].sort()).toEqual([office.id, windows.id].sort());
      expect(cert.hostKeyId).toBe(keyId);
      expect(cert.issuer).toEqual(keyFingerprint(authority.rootPublicKeyRaw));
      expect(cert.issuedAt).toBe(clock.now());
      expect(cert.expiresAt).toBe(clock.now() + 30 * DAY);
      expect(result.groups.map((g) => g.name).sort()).toEqual(['office14', 'windows']);
      expect(windows.threshold).toBe(25);
    });

    it('uses the configured certificate validity', async () => {
      const other = Authority.init(join(dir, 'b'), { clock, hostCertificateValidity: 7 * DAY });
      try {
        await other.addGroup({ name: 'g' });
        const { key } = await other.mintKey({ type: 'kms-host', groups: ['g'] });
        expect((await other.activateHost(host('hw', key))).expiresAt).toBe(clock.now() + 7 * DAY);
      } finally {
        await other.close();
      }
    });
  });

  describe('refusals before any host is counted', () => {
    it('refuses a mistyped key with KEY_CHECKSUM_FAILED and a non-key with KEY_MALFORMED', async () => {
      const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
      const typo = key.slice(0, 1) + (key[1] === 'A' ? 'B' : 'A') + key.slice(2);
      expect(await codeOf(authority.activateHost(host('hw', typo)))).toBe('KEY_CHECKSUM_FAILED');
      expect(await codeOf(authority.activateHost(host('hw', 'not a key')))).toBe('KEY_MALFORMED');
    });

    it('refuses a key this authority never minted with KEY_NOT_FOUND', async () => {
      expect(await codeOf(authority.activateHost(host('hw', makeKey('kms-host').text)))).toBe('KEY_NOT_FOUND');
    });

    it('refuses a key of another type with KEY_WRONG_TYPE', async () => {
      const { gvlk } = await authority.productConfig('office14');
      const err = await refusal(authority.activateHost(host('hw', gvlk)));
      expect(err.code).toBe('KEY_WRONG_TYPE');
      expect(err.message).toContain('gvlk');
    });

    it('refuses a bad hardware id or public key with REQUEST_INVALID', async () => {
      const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 1 });
      expect(await codeOf(authority.activateHost(host('has space', key)))).toBe('REQUEST_INVALID');
      expect(await codeOf(authority.activateHost(host('', key)))).toBe('REQUEST_INVALID');
      expect(
        await codeOf(authority.activateHost({ hostKey: key, hardwareId: 'hw', hostPublicKey: Buffer.alloc(31) })),
      ).toBe('REQUEST_INVALID');
      // none of these used the one host slot
      expect((await authority.activateHost(host('hw', key))).hostsUsed).toBe(1);
    });

    it('audits refusals without the key', async () => {
      const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 1 });
      await authority.activateHost(host('hw-1', key));
      await refusal(authority.activateHost(host('hw-2', key)));
      const audit = await authority.recentAudit(10);
      expect(audit[0]).toMatchObject({ action: 'host.activate', result: 'HOST_LIMIT_REACHED' });
      expect(JSON.stringify(audit)).not.toContain(key);
    });
  });

  describe('groups, keys, product configs', () => {
    it('refuses invalid and duplicate groups', async () => {
      expect(await codeOf(authority.addGroup({ name: 'office14' }))).toBe('GROUP_EXISTS');
      expect(await codeOf(authority.addGroup({ name: '-bad' }))).toBe('GROUP_INVALID');
      expect(await codeOf(authority.addGroup({ name: 'x', threshold: 0 }))).toBe('GROUP_INVALID');
      expect(await codeOf(authority.addGroup({ name: 'y', kind: 'tv' as never }))).toBe('GROUP_INVALID');
      const err = await refusal(authority.group('nope'));
      expect(err.code).toBe('GROUP_NOT_FOUND');
      expect(err.message).toContain('office14');
    });

    it('mints distinct valid kms-host keys and refuses bad mint requests', async () => {
      const a = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
      const b = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
      expect(a.key).not.toBe(b.key);
      expect(parseKeyOfType(a.key, 'kms-host').text).toBe(a.key);
      expect(a).toMatchObject({ type: 'kms-host', groups: ['office14'], hosts: 6, activationsPerHost: 10 });
      expect(await codeOf(authority.mintKey({ type: 'kms-host', groups: [] }))).toBe('GROUP_INVALID');
      expect(await codeOf(authority.mintKey({ type: 'kms-host', groups: ['nope'] }))).toBe('GROUP_NOT_FOUND');
      expect(await codeOf(authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 0 }))).toBe(
        'REQUEST_INVALID',
      );
      expect(await codeOf(authority.mintKey({ type: 'gvlk' as never, groups: ['office14'] }))).toBe('KEY_WRONG_TYPE');
      expect(await codeOf(authority.mintKey({ type: 'mak', groups: ['office14'] }))).toBe('REQUEST_INVALID');
    });

    it("exports a valid product config with the root key and the group's GVLK", async () => {
      const config = parseProductConfig(await authority.productConfig('office14'));
      const group = await authority.group('office14');
      expect(config.authority.rootPublicKey).toBe(authority.rootPublicKeyRaw.toString('base64'));
      expect(config.group).toEqual({ id: group.id, name: 'office14', kind: 'app', threshold: 5 });
      expect(config.gvlk).toBe(gvlkFor(authority.rootPublicKeyRaw, guidToBytes(group.id)).text);
    });
  });

  describe('data directory', () => {
    it('refuses to overwrite an authority; open() keeps the root key, groups and keys', async () => {
      const path = join(dir, 'a');
      expect(() => Authority.init(path, { clock })).toThrow(AuthorityError);
      const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
      const root = authority.rootPublicKeyRaw;
      await authority.close();
      authority = Authority.open(path, { clock });
      expect(authority.rootPublicKeyRaw).toEqual(root);
      expect((await authority.group('office14')).threshold).toBe(5);
      expect((await authority.activateHost(host('hw', key))).hostsUsed).toBe(1);
    });

    it('open() of an empty directory is AUTHORITY_NOT_INITIALISED', () => {
      let code = '';
      try {
        Authority.open(join(dir, 'none'));
      } catch (err) {
        code = (err as AuthorityError).code;
      }
      expect(code).toBe('AUTHORITY_NOT_INITIALISED');
      expect(existsSync(join(dir, 'none'))).toBe(false);
    });
  });
});

describe('Authority HTTP API', () => {
  let dir: string;
  let authority: Authority;
  let app: ReturnType<typeof createAuthorityServer>;
  let url: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'volact-authority-http-'));
    authority = Authority.init(dir, { clock: new ManualClock() });
    await authority.addGroup({ name: 'office14' });
    app = createAuthorityServer(authority);
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterEach(async () => {
    await app.close();
    await authority.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const activate = (body: unknown) =>
    fetch(`${url}/v1/host-activations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('activates a host: 201 with a certificate, groups and host counts', async () => {
    const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
    const pair = generateSigningKeyPair();
    const res = await activate({
      hostKey: key,
      hostPublicKey: pair.publicKeyRaw.toString('base64'),
      hardwareId: 'hw-1',
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as {
      certificate: string;
      hostsUsed: number;
      hostLimit: number;
      groups: { name: string }[];
    };
    const cert = decodeHostCertificate(Buffer.from(body.certificate, 'base64'));
    expect(cert.hostPublicKey).toEqual(pair.publicKeyRaw);
    expect(verifyHostCertificate(cert, publicKeyFromRaw(authority.rootPublicKeyRaw))).toBe(true);
    expect(body).toMatchObject({ hostsUsed: 1, hostLimit: 6, groups: [{ name: 'office14' }] });
  });

  it('answers a 7th host with 403 HOST_LIMIT_REACHED', async () => {
    const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
    for (let i = 0; i < 6; i++) {
      expect(
        (
          await activate({
            hostKey: key,
            hostPublicKey: generateSigningKeyPair().publicKeyRaw.toString('base64'),
            hardwareId: `hw-${i}`,
          })
        ).status,
      ).toBe(201);
    }
    const res = await activate({
      hostKey: key,
      hostPublicKey: generateSigningKeyPair().publicKeyRaw.toString('base64'),
      hardwareId: 'hw-7',
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('HOST_LIMIT_REACHED');
  });

  it('answers a malformed body with 400 REQUEST_INVALID and an unknown route with 404 NOT_FOUND', async () => {
    const bad = await activate({ hostKey: 'x', hostPublicKey: 'short', hardwareId: 'hw' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('REQUEST_INVALID');
    const extra = await activate({
      hostKey: 'x',
      hostPublicKey: Buffer.alloc(32).toString('base64'),
      hardwareId: 'hw',
      more: 1,
    });
    expect(extra.status).toBe(400);
    const notJson = await fetch(`${url}/v1/host-activations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{',
    });
    expect(notJson.status).toBe(400);
    const missing = await fetch(`${url}/v1/nothing`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  it('serves the product config of a group, 404 GROUP_NOT_FOUND for another', async () => {
    const res = await fetch(`${url}/v1/groups/office14/product-config`);
    expect(res.status).toBe(200);
    expect(parseProductConfig(await res.json()).group.name).toBe('office14');
    const missing = await fetch(`${url}/v1/groups/nope/product-config`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('GROUP_NOT_FOUND');
  });
});
