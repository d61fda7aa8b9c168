import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliExpectations, onMachine, runCliInProcess } from './cli-in-process.js';
import { forbidNetwork } from './no-network.js';

/**
 * OEM activation, reference: "The hardware vendor activates [the product] by associating [it]
 * with the firmware/BIOS of the computer. This activation occurs before the computer is sent to
 * the customer, and no additional actions are required." The publisher certifies a
 * manufacturer's key; the factory signs a marker per machine; the machine is licensed offline.
 * No server runs in this file.
 */
let dir: string;
const path = (...p: string[]) => join(dir, ...p);

/** Each state directory's machine: its hardware id, given at every `client` command (as a machine reads its own). */
const machines = new Map<string, string>();
const { ok, json, refused } = cliExpectations({ machines });

interface Status {
  state: string;
  method: string | null;
  expiresAt: string | null;
  oem: { manufacturer: string | null; machine: string | null; code: string | null } | null;
}

/** Sets up an authority with one group and a product config; returns the config file. */
async function publisher(name: string): Promise<string> {
  await ok('authority', 'init', '--data-dir', path(name));
  await ok('authority', 'group', 'add', '--data-dir', path(name), '--name', 'office14');
  await ok('authority', 'group', 'add', '--data-dir', path(name), '--name', 'visio14');
  const product = path(`${name}-product.json`);
  writeFileSync(product, await ok('authority', 'product-config', '--data-dir', path(name), '--group', 'office14'));
  return product;
}

/** A manufacturer: key pair, certified by `authority`'s publisher for office14. */
async function manufacturer(name: string, authority: string): Promise<{ key: string; cert: string }> {
  await ok('oem', 'keygen', '--out', path(name));
  const cert = path(`${name}-cert.json`);
  await ok(
    'authority',
    'oem-certificate',
    'issue',
    '--data-dir',
    path(authority),
    '--manufacturer',
    `${name} Devices`,
    '--public-key',
    path(name, 'oem-public-key.pem'),
    '--group',
    'office14',
    '--out',
    cert,
  );
  return { key: path(name, 'oem-signing-key.pem'), cert };
}

const mark = (m: { key: string; cert: string }, hardwareId: string, out: string) =>
  ok(
    'oem',
    'mark',
    '--oem-key',
    m.key,
    '--certificate',
    m.cert,
    '--group',
    'office14',
    '--hardware-id',
    hardwareId,
    '--machine',
    `SN-${hardwareId}`,
    '--out',
    out,
  );

let product: string;
let contoso: { key: string; cert: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volact-oem-'));
  product = await publisher('publisher');
  contoso = await manufacturer('contoso', 'publisher');
  await mark(contoso, 'hw-1', path('marker-hw-1.json'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('OEM activation (no network)', () => {
  it('a marker made at the factory verifies on its hardware: licensed, method oem, permanent; no socket is opened', async () => {
    await ok('client', 'init', '--state-dir', path('c1'), '--product', product, '--hardware-id', 'hw-1');
    expect((await ok('client', 'hardware-id', '--state-dir', path('c1'))).trim()).toBe('hw-1');
    const net_ = forbidNetwork();
    try {
      const installed = await json<Status>(
        'client',
        'install-oem-marker',
        '--state-dir',
        path('c1'),
        path('marker-hw-1.json'),
      );
      expect(installed).toMatchObject({
        state: 'licensed',
        method: 'oem',
        expiresAt: null,
        oem: { manufacturer: 'contoso Devices', machine: 'SN-hw-1', code: null },
      });
      // An activation attempt re-checks the marker and asks nobody (no KMS host, DNS or directory).
      const activated = await json<Status & { ok: boolean }>('client', 'activate', '--state-dir', path('c1'));
      expect(activated).toMatchObject({ ok: true, state: 'licensed', method: 'oem' });
      const status = await json<Status>('client', 'status', '--state-dir', path('c1'));
      expect(status).toMatchObject({ state: 'licensed', method: 'oem' });
      const doctor = await runCliInProcess(
        onMachine(['client', 'doctor', '--state-dir', path('c1'), '--json'], machines),
      );
      expect(JSON.parse(doctor.stdout)).toMatchObject({
        ok: true,
        steps: [{ step: 'config' }, { step: 'oem', status: 'ok' }],
      });
      expect(net_.attempts).toEqual([]);
    } finally {
      net_.restore();
    }
  });

  it('the network guard catches the activation paths that need a network (it would fail loudly)', async () => {
    await ok('client', 'init', '--state-dir', path('c0'), '--product', product, '--hardware-id', 'hw-0');
    await ok('client', 'set-domain', '--state-dir', path('c0'), 'corp.test');
    const net_ = forbidNetwork();
    try {
      expect(() => connect({ host: '127.0.0.1', port: 9 })).toThrow(/network was touched/);
      // Without a marker, activation looks up DNS for a KMS host: caught.
      const r = await runCliInProcess(['client', 'activate', '--state-dir', path('c0'), '--json']);
      expect(r.code).not.toBe(0);
      expect(net_.attempts).toContain('dns resolveSrv _vlmcs._tcp.corp.test');
    } finally {
      net_.restore();
    }
  });

  it('the same marker on other hardware is rejected: OEM_HARDWARE_MISMATCH, nothing changes', async () => {
    await ok('client', 'init', '--state-dir', path('c2'), '--product', product, '--hardware-id', 'hw-2');
    const error = await refused('client', 'install-oem-marker', '--state-dir', path('c2'), path('marker-hw-1.json'));
    expect(error.code).toBe('OEM_HARDWARE_MISMATCH');
    expect(await json<Status>('client', 'status', '--state-dir', path('c2'))).toMatchObject({
      state: 'initial-grace',
      method: null,
      oem: null,
    });
  });

  it('a licensed store copied to other hardware: the marker no longer applies there, whatever the store says its hardware is', async () => {
    await ok('client', 'init', '--state-dir', path('c3'), '--product', product, '--hardware-id', 'hw-3');
    await mark(contoso, 'hw-3', path('marker-hw-3.json'));
    await ok('client', 'install-oem-marker', '--state-dir', path('c3'), path('marker-hw-3.json'));
    // The copy runs on a machine whose hardware id is hw-other (read at every start, not from the store).
    cpSync(path('c3'), path('c3-copy'), { recursive: true });
    machines.set(path('c3-copy'), 'hw-other');
    const moved = { state: 'initial-grace', method: null, oem: { code: 'OEM_HARDWARE_MISMATCH' } };
    expect(await json<Status>('client', 'status', '--state-dir', path('c3-copy'))).toMatchObject(moved);
    // Editing the store's hardware id to the new machine's changes nothing: the store is not asked.
    const file = path('c3-copy', 'licence.json');
    const record = JSON.parse(readFileSync(file, 'utf8')) as { hardwareId: string };
    writeFileSync(file, JSON.stringify({ ...record, hardwareId: 'hw-other' }));
    expect(await json<Status>('client', 'status', '--state-dir', path('c3-copy'))).toMatchObject(moved);
    expect(await json<Status>('client', 'status', '--state-dir', path('c3'))).toMatchObject({
      state: 'licensed',
      method: 'oem',
    });
  });

  it('a marker signed by a manufacturer this publisher never certified is rejected: OEM_MANUFACTURER_UNTRUSTED', async () => {
    // Certified, but by another publisher's authority (another root).
    await publisher('other-publisher');
    const rogue = await manufacturer('rogue', 'other-publisher');
    await mark(rogue, 'hw-4', path('marker-rogue.json'));
    await ok('client', 'init', '--state-dir', path('c4'), '--product', product, '--hardware-id', 'hw-4');
    const error = await refused('client', 'install-oem-marker', '--state-dir', path('c4'), path('marker-rogue.json'));
    expect(error.code).toBe('OEM_MANUFACTURER_UNTRUSTED');
    // A certified manufacturer's certificate with another (uncertified) key's marker: the marker does not verify.
    await ok('oem', 'keygen', '--out', path('stolen'));
    const marker = JSON.parse(readFileSync(path('marker-hw-1.json'), 'utf8')) as { machine: string };
    writeFileSync(path('marker-edited.json'), JSON.stringify({ ...marker, machine: 'SN-other' }));
    await ok('client', 'init', '--state-dir', path('c5'), '--product', product, '--hardware-id', 'hw-1');
    expect(
      (await refused('client', 'install-oem-marker', '--state-dir', path('c5'), path('marker-edited.json'))).code,
    ).toBe('OEM_MARKER_INVALID');
  });

  it('the factory refuses a key that is not the certified one, and a group the certificate does not cover', async () => {
    const wrongKey = await runCliInProcess([
      'oem',
      'mark',
      '--oem-key',
      path('stolen', 'oem-signing-key.pem'),
      '--certificate',
      contoso.cert,
      '--group',
      'office14',
      '--hardware-id',
      'hw-9',
      '--out',
      path('x.json'),
    ]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/OPTION_INVALID: --oem-key .* is not the key/);
    const wrongGroup = await runCliInProcess([
      'oem',
      'mark',
      '--oem-key',
      contoso.key,
      '--certificate',
      contoso.cert,
      '--group',
      'visio14',
      '--hardware-id',
      'hw-9',
      '--out',
      path('x.json'),
    ]);
    expect(wrongGroup.stderr).toMatch(/covers office14, not visio14/);
  });
});
