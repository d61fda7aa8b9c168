import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Licence, ClientError } from '@volact/client';
import { HostState, hostInstallationId, installHostConfirmation, startKmsHost, KmsHostError } from '@volact/kms-host';
import { DAY, ManualClock } from '@volact/core';
import { startSlice, type Slice } from './harness.js';

let slice: Slice;
let clock: ManualClock;

beforeEach(async () => {
  clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
  slice = await startSlice(clock);
});
afterEach(async () => {
  await slice.close();
});

/** A product installation with its own state dir and hardware id, the MAK installed. */
function makClient(name: string, mak: string, hardwareId = `hw-${name}`): Licence {
  const licence = Licence.init({
    stateDir: join(slice.root, 'mak-clients', name),
    product: slice.product,
    hardwareId,
    clock,
  });
  licence.installKey(mak);
  return licence;
}

const mintMak = async (limit: number) =>
  (await slice.authority.mintKey({ type: 'mak', groups: ['office14'], limit })).key;

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ClientError || err instanceof KmsHostError) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'no error';
};

describe('MAK online activation (reference: "Multiple Activation Key (MAK)")', () => {
  it("limit 3: three installations licensed for good; the 4th refused with MAK_LIMIT_REACHED and the key's last 5; raise → it works", async () => {
    const mak = await mintMak(3);
    const last5 = `…${mak.replace(/-/g, '').slice(-5)}`;
    for (const name of ['a', 'b', 'c']) {
      const outcome = await makClient(name, mak).activate({ authority: slice.authorityUrl });
      expect(outcome).toMatchObject({ ok: true, status: { state: 'licensed', method: 'mak', expiresAt: null } });
    }
    const fourth = makClient('d', mak);
    const refused = await fourth.activate({ authority: slice.authorityUrl });
    expect(refused.ok).toBe(false);
    expect(refused.code).toBe('MAK_LIMIT_REACHED');
    expect(refused.message).toContain(last5);
    expect(refused.message).not.toContain(mak);
    expect(fourth.status().state).toBe('initial-grace');

    // Re-imaged machine a: a new install, the same key and hardware → the same IID, nothing used.
    const reimaged = makClient('a-reimaged', mak, 'hw-a');
    expect(reimaged.installationId()).toBe(
      Licence.open({ stateDir: join(slice.root, 'mak-clients', 'a') }).installationId(),
    );
    expect((await reimaged.activate({ authority: slice.authorityUrl })).ok).toBe(true);
    expect(await slice.authority.showKey(mak)).toMatchObject({
      type: 'mak',
      group: 'office14',
      limit: 3,
      used: 3,
      remaining: 0,
    });

    await slice.authority.setKeyLimit(mak, 4);
    expect((await fourth.activate({ authority: slice.authorityUrl })).ok).toBe(true);

    // Licensed permanently: years later, still licensed, with no network.
    clock.advance(3 * 365 * DAY);
    expect(fourth.status()).toMatchObject({ state: 'licensed', method: 'mak' });
  });

  it('a significant hardware change gives a new installation ID and uses one more activation', async () => {
    const mak = await mintMak(5);
    const before = makClient('pc', mak, 'board-1');
    await before.activate({ authority: slice.authorityUrl });
    const after = makClient('pc-new-board', mak, 'board-2');
    expect(after.installationId()).not.toBe(before.installationId());
    await after.activate({ authority: slice.authorityUrl });
    expect((await slice.authority.showKey(mak)).used).toBe(2);
  });

  it('a MAK of another product is refused by name at install; an unreachable authority and plain http to another machine are reported', async () => {
    await slice.authority.addGroup({ name: 'visio14' });
    const visioMak = (await slice.authority.mintKey({ type: 'mak', groups: ['visio14'], limit: 2 })).key;
    // The key names its group: the client refuses it offline, before anything is sent.
    expect(() => makClient('x', visioMak)).toThrow(
      expect.objectContaining({
        code: 'KEY_INVALID',
        message: expect.stringMatching(/is a MAK of another product group, not of office14/) as unknown,
      }),
    );
    const client = makClient('y', await mintMak(1));
    expect((await client.activate({ authority: 'http://127.0.0.1:1' })).code).toBe('AUTHORITY_UNREACHABLE');
    expect((await client.activate({ authority: 'http://activation.example.com' })).code).toBe('AUTHORITY_URL_INSECURE');
    expect((await client.activate()).code).toBe('NO_AUTHORITY');
    expect((await slice.authority.showKey(visioMak)).used).toBe(0);
  });

  it("activates at the product config's authority URL when none is given", async () => {
    const mak = await mintMak(1);
    const product = await slice.authority.productConfig('office14', { url: slice.authorityUrl });
    const licence = Licence.init({ stateDir: join(slice.root, 'with-url'), product, hardwareId: 'hw-url', clock });
    licence.installKey(mak);
    expect(await licence.activate()).toMatchObject({ ok: true, status: { method: 'mak' } });
  });

  it('installing a GVLK again switches back to KMS: the MAK activation no longer applies', async () => {
    const mak = await mintMak(2);
    const client = makClient('switch', mak);
    await client.activate({ authority: slice.authorityUrl });
    client.installKey(slice.product.gvlk);
    expect(client.status()).toMatchObject({ method: null, installedKeyType: 'gvlk', installationId: null });
  });
});

describe('phone activation (installation ID → confirmation ID)', () => {
  it('round trip: the IID read out becomes a CID that licenses this machine; the same IID again is free', async () => {
    const mak = await mintMak(1);
    const client = makClient('isolated', mak);
    const iid = client.installationId();
    expect(iid).toMatch(/^(\d{6}-){12}\d{6}$/);
    const confirmation = await slice.authority.confirm(iid);
    const status = client.installConfirmation(confirmation.confirmationId.replace(/-/g, ' '));
    expect(status).toMatchObject({ state: 'licensed', method: 'mak', expiresAt: null });
    await slice.authority.confirm(iid);
    expect((await slice.authority.showKey(mak)).used).toBe(1);
  });

  it("names the group of a mistyped digit, rejects another installation's CID and a forged one, and changes nothing", async () => {
    const mak = await mintMak(5);
    const client = makClient('one', mak);
    const other = makClient('two', mak);
    const cid = (await slice.authority.confirm(client.installationId())).confirmationId;
    const groups = cid.split('-');
    groups[6] = groups[6]!.replace(/^(\d)/, (d) => String((Number(d) + 1) % 10));
    expect(codeOf(() => client.installConfirmation(groups.join('-')))).toMatch(
      /^CONFIRMATION_INVALID: confirmation ID: group 7 is wrong/,
    );
    expect(codeOf(() => other.installConfirmation(cid))).toMatch(
      /^CONFIRMATION_INVALID: this confirmation ID was not issued/,
    );
    // Forged: right format and every check digit right, but not the authority's signature.
    const { encodeConfirmationId, parseConfirmationId } = await import('@volact/core');
    const real = parseConfirmationId(cid);
    const forged = encodeConfirmationId(real.issuedDay, { e: real.signature.e ^ 1n, s: real.signature.s }).text;
    expect(codeOf(() => client.installConfirmation(forged))).toMatch(/^CONFIRMATION_INVALID/);
    expect(client.status().state).toBe('initial-grace');
    expect(other.status().state).toBe('initial-grace');
    expect(client.installConfirmation(cid).state).toBe('licensed');
  });

  it('an edited stored confirmation is detected: non-genuine grace', async () => {
    const mak = await mintMak(1);
    const client = makClient('tamper', mak);
    client.installConfirmation((await slice.authority.confirm(client.installationId())).confirmationId);
    const file = join(slice.root, 'mak-clients', 'tamper', 'licence.json');
    const record = JSON.parse(readFileSync(file, 'utf8')) as { activation: { confirmationId: string } };
    const { encodeConfirmationId, parseConfirmationId } = await import('@volact/core');
    const real = parseConfirmationId(record.activation.confirmationId);
    record.activation.confirmationId = encodeConfirmationId(real.issuedDay + 1, real.signature).text;
    writeFileSync(file, JSON.stringify(record));
    expect(Licence.open({ stateDir: join(slice.root, 'mak-clients', 'tamper'), clock }).status().state).toBe(
      'non-genuine-grace',
    );
  });
});

describe('a KMS host activated by phone', () => {
  it('serves clients that trust its phone-issued certificate, and counts on the host key like online', async () => {
    const hostKey = (await slice.authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 2 })).key;
    const dir = join(slice.root, 'phone-host');
    const state = HostState.installKey(dir, hostKey, 'phone-host-hw', clock.now());
    const iid = hostInstallationId(state, [slice.product]);
    expect(iid).toMatch(/^(\d{6}-){19}\d{6}$/);
    const confirmation = await slice.authority.confirm(iid);
    expect(confirmation.kind).toBe('kms-host');
    expect(
      codeOf(() =>
        installHostConfirmation(
          state,
          confirmation.confirmationId.replace(/^\d/, (d) => String((Number(d) + 1) % 10)),
        ),
      ),
    ).toMatch(/^CONFIRMATION_INVALID: confirmation ID: group 1 is wrong/);
    const activated = installHostConfirmation(HostState.open(dir), confirmation.confirmationId);
    expect(activated.groups.map((g) => g.name)).toEqual(['office14']);
    expect(activated.expiresAt).toBeGreaterThan(clock.now() + 364 * DAY);
    expect((await slice.authority.showKey(hostKey)).used).toBe(1);

    const host = await startKmsHost({
      dataDir: dir,
      listen: { host: '127.0.0.1', port: 0 },
      clock,
      flushIntervalMs: 50,
    });
    try {
      const clients = Array.from({ length: 5 }, (_, i) => {
        const licence = slice.newClient(`phone-host-client-${i}`);
        licence.setKmsHost(`127.0.0.1:${host.address.port}`);
        return licence;
      });
      for (const c of clients) await c.activate();
      const last = await clients[4]!.activate();
      expect(last).toMatchObject({ ok: true, status: { state: 'licensed', method: 'kms', count: 5 } });
    } finally {
      await host.close();
    }
  });

  it('refuses a confirmation whose certificate has already expired', async () => {
    const hostKey = (await slice.authority.mintKey({ type: 'kms-host', groups: ['office14'] })).key;
    const state = HostState.installKey(join(slice.root, 'late'), hostKey, 'hw-late', clock.now());
    const cid = (await slice.authority.confirm(hostInstallationId(state, [slice.product]))).confirmationId;
    clock.advance(366 * DAY);
    expect(codeOf(() => installHostConfirmation(HostState.open(join(slice.root, 'late')), cid, { clock }))).toMatch(
      /^CONFIRMATION_INVALID: .*expired/,
    );
  });

  it("refuses a confirmation made for another host's installation ID", async () => {
    const hostKey = (await slice.authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 3 })).key;
    const first = HostState.installKey(join(slice.root, 'h1'), hostKey, 'hw-h1', clock.now());
    const second = HostState.installKey(join(slice.root, 'h2'), hostKey, 'hw-h2', clock.now());
    const cid = (await slice.authority.confirm(hostInstallationId(first, [slice.product]))).confirmationId;
    hostInstallationId(second, [slice.product]);
    expect(codeOf(() => installHostConfirmation(HostState.open(join(slice.root, 'h2')), cid))).toMatch(
      /^CONFIRMATION_INVALID: this confirmation ID was not issued/,
    );
  });
});
