import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as Pkcs11Js from 'pkcs11js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DAY, ManualClock, generateSigningKeyPair, makeInstallationId, parseKey } from '@volact/core';
import { startTestSoftHsm, type TestSoftHsm } from '@volact/authority/testing';
import { Authority } from './authority.js';
import type { AuthorityContext, RingSigner } from './context.js';
import { readDataDir } from './data-dir.js';
import { AuthorityError } from './errors.js';
import { ProductGroups } from './groups.js';
import { activateHost } from './host-activation.js';
import { InstallationQueue } from './installation-queue.js';
import { activateInstallation } from './installation-activation.js';
import { FileRootKeys, KeyRing, contextWithRing } from './key-ring.js';
import { ProductKeys } from './keys.js';
import { confirmByPhone } from './phone-confirmation.js';
import { openAuthorityStore } from './store-choice.js';
import type { AuthorityStore } from './store.js';

/**
 * A signature that cannot be made must fail before the decision that counts an activation:
 * a node lacking the current root's key file (after a switch made on another node), a token
 * absent or locked, an online key that does not unseal. Nothing is recorded — no host slot
 * used, no record naming a serial that was never issued, no OK audit row — and the same request
 * succeeds once the signer is back.
 */
let dir: string;
let clock: ManualClock;
let groupId: string;
let hostKey: string;
let mak: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volact-signer-faults-'));
  clock = new ManualClock(Date.UTC(2026, 10, 25));
  const authority = Authority.init(join(dir, 'a'), { clock });
  groupId = (await authority.addGroup({ name: 'office14' })).id;
  // One host only: a slot used by a failed signature would refuse the retry.
  hostKey = (await authority.mintKey({ type: 'kms-host', groups: ['office14'], limit: 1 })).key;
  mak = (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 1 })).key;
  await authority.close();
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

type Fault = 'root-file-missing' | 'token-unavailable' | 'online-key-unsealed' | 'none';

/** The authority's context on its own database, as a node with the given fault sees it. */
async function contextWith(fault: Fault): Promise<{ ctx: AuthorityContext; store: AuthorityStore }> {
  const secrets = readDataDir(join(dir, 'a'));
  const store = openAuthorityStore(join(dir, 'a'), undefined);
  const groups = new ProductGroups(store, clock);
  // A node whose data directory holds no root file: the ring (in the database) names root #1.
  const emptyDir = join(dir, 'node-without-roots');
  mkdirSync(emptyDir, { recursive: true });
  const rootKeys =
    fault === 'root-file-missing'
      ? new FileRootKeys(emptyDir, [])
      : new FileRootKeys(secrets.dataDir, secrets.rootFiles);
  const ring = new KeyRing({ store: store.keyRing, rootKeys, keyHashSecret: secrets.keyHashSecret, clock });
  await ring.ready();
  const base = contextWithRing(
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
  if (fault === 'token-unavailable') {
    // What a PKCS#11 signer does when the token was unplugged between two signatures.
    const real = base.rootSigner();
    const unplugged: RingSigner = {
      publicKeyRaw: real.publicKeyRaw,
      keyId: real.keyId,
      sign: () => {
        throw new AuthorityError('SIGNER_TOKEN_UNAVAILABLE', 'no token labelled volact is present');
      },
    };
    return { ctx: { ...base, rootSigner: () => unplugged }, store };
  }
  if (fault === 'online-key-unsealed') {
    const confirmationSigner = () => {
      throw new AuthorityError('AUTHORITY_FILE_DAMAGED', 'the online key #0 does not unseal with key-hash.secret');
    };
    return { ctx: { ...base, confirmationSigner }, store };
  }
  return { ctx: base, store };
}

async function attempt<T>(fault: Fault, call: (ctx: AuthorityContext) => Promise<T>): Promise<T | string> {
  const { ctx, store } = await contextWith(fault);
  try {
    return await call(ctx);
  } catch (err) {
    if (err instanceof AuthorityError) return err.code;
    throw err;
  } finally {
    await store.close();
  }
}

/** What the key has used and what the audit log says, read by a healthy authority afterwards. */
async function recorded(key: string): Promise<{ used: number; activations: number; okRows: number }> {
  const authority = Authority.open(join(dir, 'a'), { clock });
  try {
    const report = await authority.showKey(key);
    const store = openAuthorityStore(join(dir, 'a'), undefined);
    const rows = await store.recentAudit(100);
    await store.close();
    const okRows = rows.filter(
      (r) => r.result === 'OK' && /^(host\.activate|confirm|installation\.activate)/.test(r.action),
    ).length;
    return { used: report.used, activations: report.activations.length, okRows };
  } finally {
    await authority.close();
  }
}

const hostPublicKey = generateSigningKeyPair().publicKeyRaw;
const online = (ctx: AuthorityContext) =>
  activateHost(ctx, { hostKey, hostPublicKey, hardwareId: 'hw-host-1' }, 30 * DAY);

describe('an online host activation whose root signature fails records nothing', () => {
  it.each(['root-file-missing', 'token-unavailable'] as const)(
    '%s: no host recorded, the slot stays free',
    async (fault) => {
      expect(await attempt(fault, online)).toBe(
        fault === 'root-file-missing' ? 'ROOT_KEY_UNAVAILABLE' : 'SIGNER_TOKEN_UNAVAILABLE',
      );
      expect(await recorded(hostKey)).toEqual({ used: 0, activations: 0, okRows: 0 });

      // The signer back: the host (limit 1) activates, and its record names the certificate issued.
      const result = await attempt('none', online);
      if (typeof result === 'string') throw new Error(`activation refused: ${result}`);
      expect(result.hostsUsed).toBe(1);
      const store = openAuthorityStore(join(dir, 'a'), undefined);
      try {
        const [host] = await store.listHosts(result.hostKeyId);
        const issuedSerial = /certificate ([0-9a-f-]{36})/.exec(
          (await store.recentAudit(10)).find((r) => r.action === 'host.activate' && r.result === 'OK')?.detail ?? '',
        )?.[1];
        expect(host?.certificateSerial).toBe(issuedSerial);
        expect(host?.certificateExpiresAt).toBe(result.expiresAt);
      } finally {
        await store.close();
      }
    },
  );
});

describe('a phone confirmation whose online key fails records nothing', () => {
  it('a KMS host by phone', async () => {
    const installationId = makeInstallationId({
      kind: 'kms-host',
      key: parseKey(hostKey),
      hardwareId: 'hw-host-2',
      groupIds: [groupId],
      hostPublicKey,
    }).text;
    expect(await attempt('online-key-unsealed', (ctx) => confirmByPhone(ctx, installationId))).toBe(
      'AUTHORITY_FILE_DAMAGED',
    );
    expect(await recorded(hostKey)).toEqual({ used: 0, activations: 0, okRows: 0 });
    expect(await attempt('none', (ctx) => confirmByPhone(ctx, installationId))).toMatchObject({
      kind: 'kms-host',
      hostsUsed: 1,
    });
  });

  it("a disconnected forest's activation object by phone", async () => {
    const installationId = makeInstallationId({
      kind: 'activation-object',
      key: parseKey(hostKey),
      domain: 'corp.example',
      groupIds: [groupId],
    }).text;
    expect(await attempt('online-key-unsealed', (ctx) => confirmByPhone(ctx, installationId))).toBe(
      'AUTHORITY_FILE_DAMAGED',
    );
    expect(await recorded(hostKey)).toEqual({ used: 0, activations: 0, okRows: 0 });
    expect(await attempt('none', (ctx) => confirmByPhone(ctx, installationId))).toMatchObject({
      kind: 'activation-object',
      hostsUsed: 1,
    });
  });

  it('a product installation, online and by phone: the MAK (limit 1) keeps its activation', async () => {
    const installationId = makeInstallationId({
      kind: 'installation',
      key: parseKey(mak),
      hardwareId: 'pc-1',
      groupIds: [groupId],
    }).text;
    expect(await attempt('online-key-unsealed', (ctx) => confirmByPhone(ctx, installationId))).toBe(
      'AUTHORITY_FILE_DAMAGED',
    );
    expect(await attempt('online-key-unsealed', (ctx) => activateInstallation(ctx, { key: mak, installationId }))).toBe(
      'AUTHORITY_FILE_DAMAGED',
    );
    expect(await recorded(mak)).toEqual({ used: 0, activations: 0, okRows: 0 });
    expect(await attempt('none', (ctx) => activateInstallation(ctx, { key: mak, installationId }))).toMatchObject({
      used: 1,
      again: false,
    });
  });
});

describe('a root in a PKCS#11 token (SoftHSM2) that cannot sign', () => {
  let hsm: TestSoftHsm;
  beforeAll(() => {
    hsm = startTestSoftHsm();
  });
  afterAll(() => hsm?.cleanup());

  /** The token's sessions dropped (re-plugged): the signer must log in again, with the PIN file. */
  function dropSessions(): void {
    const pkcs11js = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11Js;
    const other = new pkcs11js.PKCS11();
    other.load(hsm.modulePath);
    try {
      other.C_Initialize();
    } catch {
      // initialised by the authority's signer in this process: the same module
    }
    const slot = other.C_GetSlotList(true).find((s) => other.C_GetTokenInfo(s).label.trimEnd() === hsm.tokenLabel)!;
    other.C_CloseAllSessions(slot);
    other.close();
  }

  it('a token locked (no PIN to log in again) records no host and uses no slot', async () => {
    const data = join(dir, 'token');
    const uri = `${hsm.uri};object=faults`;
    const authority = Authority.init(data, { clock, signer: uri });
    try {
      await authority.addGroup({ name: 'office14' });
      const key = (await authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 2 })).key;
      const host = (hardwareId: string) =>
        authority.activateHost({ hostKey: key, hostPublicKey: generateSigningKeyPair().publicKeyRaw, hardwareId });
      expect((await host('hw-1')).hostsUsed).toBe(1);

      const pin = readFileSync(hsm.pinFile, 'utf8');
      rmSync(hsm.pinFile);
      dropSessions();
      const refused = await host('hw-2').then(
        () => null,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(AuthorityError);
      expect((refused as AuthorityError).code).toBe('SIGNER_TOKEN_LOCKED');
      const report = await authority.showKey(key);
      expect({ used: report.used, activations: report.activations.length }).toEqual({ used: 1, activations: 1 });

      // The PIN back: another host takes the second slot, which the failure did not use.
      writeFileSync(hsm.pinFile, pin, { mode: 0o600 });
      expect((await host('hw-3')).hostsUsed).toBe(2);
    } finally {
      await authority.close();
    }
  });
});
