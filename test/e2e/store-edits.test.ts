import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import {
  DAY,
  fileSigner,
  generateSigningKeyPair,
  parseProductConfig,
  sha256,
  signActivationToken,
  signTokenCaCertificate,
} from '@volact/core';
import { productFingerprint } from '../../packages/client/src/licence-store.js';
import { cliExpectations, runCliInProcess } from './cli-in-process.js';

/**
 * Volact issue 11: no edit of a client's licence.json alone yields `licensed`. Each test makes a
 * real store with the CLI (the real command tree, in this process, on a manual clock), edits the
 * file as a local administrator would, and reads the state back through the CLI.
 */
let dir: string;
let now = Date.UTC(2026, 10, 2, 9);
const path = (...p: string[]) => join(dir, ...p);
const machines = new Map<string, string>();
const { ok, json, refused } = cliExpectations({ now: () => now, anyFailureExit: true, machines });

interface Status {
  state: string;
  method: string | null;
  expiresAt: string | null;
  threshold: number;
  clientMachineId: string;
  hardware: { id: string; recorded: string; changed: boolean };
  directoryObject: { name: string; domain: string } | null;
}

type Stored = Record<string, unknown> & { activation: Record<string, unknown> | null };
const readStore = (stateDir: string) => JSON.parse(readFileSync(join(stateDir, 'licence.json'), 'utf8')) as Stored;
const writeStore = (stateDir: string, record: unknown) =>
  writeFileSync(join(stateDir, 'licence.json'), JSON.stringify(record));
const status = (stateDir: string, ...extra: string[]) =>
  json<Status>('client', 'status', '--state-dir', stateDir, ...extra);

let product: string;

async function installation(name: string, hardwareId = `hw-${name}`): Promise<string> {
  await ok('client', 'init', '--state-dir', path(name), '--product', product, '--hardware-id', hardwareId);
  return path(name);
}

/** A MAK installation activated by phone (no network): installation-id → authority confirm → install-confirmation. */
async function makLicensed(name: string): Promise<string> {
  const c = await installation(name);
  const { key } = await json<{ key: string }>(
    ...['authority', 'key', 'mint', '--data-dir', path('a'), '--type', 'mak', '--group', 'office14'],
    ...['--limit', '5'],
  );
  await ok('client', 'install-key', '--state-dir', c, key);
  const { installationId } = await json<{ installationId: string }>('client', 'installation-id', '--state-dir', c);
  const { confirmationId } = await json<{ confirmationId: string }>(
    ...['authority', 'confirm', installationId, '--data-dir', path('a')],
  );
  await ok('client', 'install-confirmation', '--state-dir', c, confirmationId);
  expect(await status(c)).toMatchObject({ state: 'licensed', method: 'mak' });
  return c;
}

async function activationObject(name: string, validityDays: number): Promise<string> {
  const r = await runCliInProcess(
    [
      ...['authority', 'activation-object', 'create', '--data-dir', path('a'), '--group', 'office14'],
      ...['--domain', 'corp.test', '--name', name, '--validity-days', String(validityDays)],
    ],
    { now: () => now },
  );
  expect(r.code, r.stderr).toBe(0);
  return JSON.stringify(JSON.parse(r.stdout));
}

const join_ = (c: string) =>
  ok(
    ...['client', 'join-domain', '--state-dir', c, '--url', 'ldap://127.0.0.1:1', '--domain', 'corp.test'],
    ...['--base', 'dc=corp,dc=test'],
  );

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volact-store-edits-'));
  await ok('authority', 'init', '--data-dir', path('a'));
  await ok('authority', 'group', 'add', '--data-dir', path('a'), '--name', 'office14');
  product = path('product.json');
  writeFileSync(product, await ok('authority', 'product-config', '--data-dir', path('a'), '--group', 'office14'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('licence.json edits never yield licensed (issue 11)', () => {
  it('product: the store keeps no copy (a pasted one is ignored); a swapped product file is reported by name', async () => {
    const c = await installation('prod');
    const stored = readStore(c);
    expect(stored.product).toBeUndefined();
    expect(stored.productRef).toMatchObject({ path: product, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    // The attack of the issue: another root key, threshold 1, validity 3650 days, pasted into the store.
    const real = JSON.parse(readFileSync(product, 'utf8')) as {
      authority: { rootPublicKey: string };
      group: { threshold: number };
      policy: Record<string, number>;
    };
    const evil = {
      ...real,
      authority: { rootPublicKey: Buffer.alloc(32, 7).toString('base64') },
      group: { ...real.group, threshold: 1 },
      policy: { ...real.policy, activationValidityDays: 3650 },
    };
    writeStore(c, { ...stored, product: evil });
    expect(await status(c)).toMatchObject({ state: 'initial-grace', threshold: real.group.threshold });
    // The same config written over the product's installed file: refused, named, not used.
    const original = readFileSync(product, 'utf8');
    try {
      writeFileSync(product, JSON.stringify(evil));
      const error = await refused('client', 'status', '--state-dir', c);
      expect(error.code).toBe('PRODUCT_FILE_CHANGED');
      expect(error.message).toContain(product);
      expect(error.message).toContain('set-product');
    } finally {
      writeFileSync(product, original);
    }
    expect((await status(c)).state).toBe('initial-grace');
    // A product file inside the state directory is refused at init.
    const inside = path('inside');
    const r = await runCliInProcess(
      ['client', 'init', '--state-dir', inside, '--product', join(inside, 'p.json'), '--json'],
      { now: () => now },
    );
    expect(r.code).toBe(1);
  });

  it("the store never chooses the trust anchor: a product file with an attacker's root is refused inside the state directory, and set-product keeps the root", async () => {
    const c = await installation('anchor');
    const stored = readStore(c) as Stored & { productRef: Record<string, unknown> };
    const real = JSON.parse(readFileSync(product, 'utf8')) as {
      authority: Record<string, unknown>;
      group: { id: string; name: string };
    };
    // The attacker's root, a product naming it, and a token CA and token it certified for this machine.
    const root = generateSigningKeyPair();
    // (A consistent forgery: the attacker's root alone, none of the real bundle's roots or delegations.)
    const evil = {
      ...real,
      authority: {
        ...real.authority,
        rootPublicKey: root.publicKeyRaw.toString('base64'),
        roots: undefined,
        delegations: undefined,
      },
    };
    const ca = generateSigningKeyPair();
    const caCertificate = signTokenCaCertificate(
      {
        serial: randomUUID(),
        organisation: 'mallory',
        group: { id: real.group.id, name: real.group.name },
        publicKeyRaw: ca.publicKeyRaw,
        notBefore: now - DAY,
        notAfter: now + 365 * DAY,
      },
      fileSigner(root),
    );
    const token = path('anchor-evil-token.json');
    writeFileSync(
      token,
      JSON.stringify(
        signActivationToken(
          { serial: randomUUID(), hardwareId: 'hw-anchor', notBefore: now - DAY, notAfter: now + 365 * DAY },
          ca.privateKey,
          caCertificate,
        ),
      ),
    );
    const evilRef = (file: string) => ({
      ...stored,
      productRef: {
        ...stored.productRef,
        path: file,
        sha256: productFingerprint(parseProductConfig(evil)),
        rootKey: sha256(root.publicKeyRaw).toString('hex'),
      },
    });
    // Pointed at a product file beside the store (inside the state directory): refused at every open.
    const inside = join(c, 'product.json');
    writeFileSync(inside, JSON.stringify(evil));
    writeStore(c, evilRef(inside));
    for (const args of [['status'], ['install-token', token]]) {
      const error = await refused('client', args[0]!, '--state-dir', c, ...args.slice(1));
      expect(error.code).toBe('PRODUCT_CONFIG_INVALID');
      expect(error.message).toContain(`${inside} is inside the state directory`);
    }
    // ... also through a symbolic link outside it that points back in.
    const link = path('anchor-link.json');
    symlinkSync(inside, link);
    writeStore(c, evilRef(link));
    expect((await refused('client', 'install-token', '--state-dir', c, token)).code).toBe('PRODUCT_CONFIG_INVALID');

    // set-product with the attacker's product (outside the state directory): another root, refused.
    const realRoot = sha256(Buffer.from(real.authority.rootPublicKey as string, 'base64')).toString('hex');
    expect(stored.productRef.rootKey).toBe(realRoot);
    writeStore(c, stored);
    const outside = path('anchor-evil-product.json');
    writeFileSync(outside, JSON.stringify(evil));
    const error = await refused('client', 'set-product', '--state-dir', c, outside);
    expect(error.code).toBe('PRODUCT_CONFIG_INVALID');
    expect(error.message).toMatch(/another root key.*client init/);
    expect(readStore(c)).toEqual(stored);
    expect((await refused('client', 'install-token', '--state-dir', c, token)).code).toBe('TOKEN_CA_UNTRUSTED');
    // A store made before the root was recorded: the root of the product file it names is kept.
    writeStore(c, { ...stored, productRef: { ...stored.productRef, rootKey: undefined } });
    expect((await refused('client', 'set-product', '--state-dir', c, outside)).code).toBe('PRODUCT_CONFIG_INVALID');
    // An update under the same root is accepted (and records its root).
    const update = path('anchor-product-update.json');
    writeFileSync(update, readFileSync(product, 'utf8'));
    await ok('client', 'set-product', '--state-dir', c, update);
    expect(readStore(c)).toMatchObject({ productRef: { path: update, rootKey: stored.productRef.rootKey } });
    expect((await status(c)).state).toBe('initial-grace');
  });

  it('a MAK-licensed store copied to another machine is not licensed there, whatever hardwareId the store says', async () => {
    const c = await makLicensed('mak');
    cpSync(c, path('mak-copy'), { recursive: true });
    machines.set(path('mak-copy'), 'hw-another-machine');
    const copied = await status(path('mak-copy'));
    expect(copied).toMatchObject({
      state: 'initial-grace',
      method: null,
      hardware: { id: 'hw-another-machine', recorded: 'hw-mak', changed: true },
    });
    // Writing the new machine's id into the store changes nothing: the store is not asked.
    writeStore(path('mak-copy'), { ...readStore(path('mak-copy')), hardwareId: 'hw-another-machine' });
    expect(await status(path('mak-copy'))).toMatchObject({ state: 'initial-grace', method: null });
    // The original machine stays licensed.
    expect(await status(c)).toMatchObject({ state: 'licensed', method: 'mak', hardware: { changed: false } });
  });

  it("an activation object pasted into a non-member's store does not license it", async () => {
    const object = await activationObject('office14-corp', 180);
    const pasted = { method: 'directory', object, checkedAt: now };
    // Never joined: the object and a fresh check time pasted in.
    const outsider = await installation('outsider');
    writeStore(outsider, { ...readStore(outsider), activation: pasted });
    expect(await status(outsider, '--member-domain', 'other.test')).toMatchObject({
      state: 'initial-grace',
      method: null,
    });
    // The membership pasted too (the store's join): the machine is not configured as a member.
    const joined = await installation('joined');
    await join_(joined);
    const membership = readStore(joined).directory;
    writeStore(outsider, { ...readStore(outsider), activation: pasted, directory: membership });
    expect(await status(outsider, '--member-domain', 'other.test')).toMatchObject({
      state: 'initial-grace',
      method: null,
    });
    // A configured member of corp.test: what a directory check gives it.
    writeStore(joined, { ...readStore(joined), activation: pasted });
    expect(await status(joined, '--member-domain', 'corp.test')).toMatchObject({
      state: 'licensed',
      method: 'directory',
      directoryObject: { name: 'office14-corp', domain: 'corp.test' },
    });
  });

  it("checkedAt moved forward: the directory licence runs from the object's signed issue date, never past its validity", async () => {
    const start = now;
    try {
      const object = await activationObject('office14-long', 365);
      const shortObject = await activationObject('office14-short', 150);
      const c = await installation('member');
      await join_(c);
      writeStore(c, { ...readStore(c), activation: { method: 'directory', object, checkedAt: now } });
      const member = ['--member-domain', 'corp.test'];
      const first = await status(c, ...member);
      expect(first).toMatchObject({ state: 'licensed', expiresAt: new Date(start + 180 * DAY).toISOString() });
      // 200 days on, the store says the directory confirmed it just now: still not licensed.
      now = start + 200 * DAY;
      writeStore(c, { ...readStore(c), activation: { method: 'directory', object, checkedAt: now } });
      expect((await status(c, ...member)).state).toBe('out-of-tolerance');
      // An object whose own end comes first: past it, the licence runs down as a lapsed one does.
      now = start + 160 * DAY;
      writeStore(c, { ...readStore(c), activation: { method: 'directory', object: shortObject, checkedAt: now } });
      expect((await status(c, ...member)).state).toBe('out-of-tolerance');
      // Past the object's own end (365 days) nothing brings it back either.
      now = start + 400 * DAY;
      writeStore(c, { ...readStore(c), activation: { method: 'directory', object, checkedAt: now } });
      expect((await status(c, ...member)).state).toBe('notification');
      // A stored time can only move the licence earlier.
      now = start + 10 * DAY;
      writeStore(c, { ...readStore(c), activation: { method: 'directory', object, checkedAt: start - 100 * DAY } });
      expect(await status(c, ...member)).toMatchObject({ expiresAt: new Date(start + 80 * DAY).toISOString() });
    } finally {
      now = start;
    }
  });

  it('installedAt edited: the initial grace is stretched, but the state is never licensed', async () => {
    const start = now;
    try {
      const c = await installation('grace');
      now = start + 40 * DAY;
      expect((await status(c)).state).toBe('notification');
      writeStore(c, { ...readStore(c), installedAt: now });
      const stretched = await status(c);
      expect(stretched.state).toBe('initial-grace');
      expect(stretched.method).toBeNull();
      writeStore(c, { ...readStore(c), installedAt: now + 10_000 * DAY });
      expect((await status(c)).state).not.toBe('licensed');
    } finally {
      now = start;
    }
  });

  it('a damaged licence.json names the file and the fix; client reset makes a new store and activation works again', async () => {
    const c = await makLicensed('damaged');
    const before = readStore(c);
    writeFileSync(join(c, 'licence.json'), '{"format":"volact-client/2", "clientMachi');
    const error = await refused('client', 'status', '--state-dir', c);
    expect(error.code).toBe('LICENCE_STORE_DAMAGED');
    expect(error.message).toContain(join(c, 'licence.json'));
    expect(error.message).toContain(`volact client reset --state-dir ${c}`);
    expect((await refused('client', 'init', '--state-dir', c, '--product', product)).message).toMatch(/client reset/);
    await ok('client', 'reset', '--state-dir', c, '--product', product);
    expect(await status(c)).toMatchObject({ state: 'initial-grace', method: null });
    // Parseable but broken: the client ID and the install date are kept.
    writeStore(c, { ...before, installedKey: 42 });
    expect((await refused('client', 'status', '--state-dir', c)).code).toBe('LICENCE_STORE_DAMAGED');
    await ok('client', 'reset', '--state-dir', c, '--product', product);
    expect(readStore(c)).toMatchObject({ clientMachineId: before.clientMachineId, installedAt: before.installedAt });
    // Re-activation: the same MAK, the same machine, the same installation ID.
    await ok('client', 'install-key', '--state-dir', c, readStoreKey(before));
    const { installationId } = await json<{ installationId: string }>('client', 'installation-id', '--state-dir', c);
    const { confirmationId } = await json<{ confirmationId: string }>(
      ...['authority', 'confirm', installationId, '--data-dir', path('a')],
    );
    await ok('client', 'install-confirmation', '--state-dir', c, confirmationId);
    expect(await status(c)).toMatchObject({ state: 'licensed', method: 'mak' });
  });

  it('the state directory is 0700 and licence.json 0600, even when they were made looser', async () => {
    const c = await installation('modes');
    const mode = (p: string) => statSync(p).mode & 0o777;
    expect(mode(c)).toBe(0o700);
    expect(mode(join(c, 'licence.json'))).toBe(0o600);
    chmodSync(c, 0o755);
    chmodSync(join(c, 'licence.json'), 0o644);
    await status(c);
    expect(mode(c)).toBe(0o700);
    expect(mode(join(c, 'licence.json'))).toBe(0o600);
  });
});

function readStoreKey(record: Stored): string {
  return (record.installedKey as { text: string }).text;
}
