import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority, createAuthorityServer } from '@volact/authority';
import { ManualClock, makeKey, type ProductConfig } from '@volact/core';
import { Licence } from './index.js';

/**
 * An activation attempt while the machine's settings (or its key) change: the authority is
 * reached through a proxy that holds each request until the test lets it through, so a change
 * is made, for certain, while the client waits for the answer.
 */

/** A request held at the proxy: what the client sent, and the way to let it through. */
interface HeldRequest {
  readonly body: { installationId?: string };
  release(): void;
}

/** A node:http proxy to the authority that forwards a request only once it is released. */
class HoldingProxy {
  readonly #server: Server;
  readonly #arrived: HeldRequest[] = [];
  readonly #waiting: ((held: HeldRequest) => void)[] = [];

  constructor(target: string) {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const forward = async () => {
          const answer = await fetch(`${target}${req.url ?? '/'}`, {
            method: req.method ?? 'GET',
            headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
            ...(body.length > 0 ? { body } : {}),
          });
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
          res.end(Buffer.from(await answer.arrayBuffer()));
        };
        const held: HeldRequest = {
          body: body.length > 0 ? (JSON.parse(body.toString('utf8')) as HeldRequest['body']) : {},
          release: () => void forward().catch(() => res.destroy()),
        };
        const waiter = this.#waiting.shift();
        if (waiter) waiter(held);
        else this.#arrived.push(held);
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as { port: number }).port}`;
  }

  /** The next request to reach the proxy (held until released). */
  next(): Promise<HeldRequest> {
    const held = this.#arrived.shift();
    if (held) return Promise.resolve(held);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Forgets what a failed test left: requests not taken are let through, no one waits any more. */
  reset(): void {
    for (const held of this.#arrived.splice(0)) held.release();
    this.#waiting.splice(0);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

let root: string;
let clock: ManualClock;
let authority: Authority;
let api: FastifyInstance;
let proxy: HoldingProxy;
let slowAuthorityUrl: string;
let product: ProductConfig;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-client-authority-activation-'));
  clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
  authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  api = createAuthorityServer(authority);
  await api.listen({ host: '127.0.0.1', port: 0 });
  proxy = new HoldingProxy(`http://127.0.0.1:${(api.server.address() as { port: number }).port}`);
  slowAuthorityUrl = await proxy.listen();
});
afterEach(() => proxy.reset());
afterAll(async () => {
  await proxy.close();
  await api.close();
  await authority.close();
  rmSync(root, { recursive: true, force: true });
});

const mintMak = async () => (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 10 })).key;
const install = (name: string, key: string) => {
  const licence = Licence.init({ stateDir: join(root, name), product, hardwareId: `hw-${name}`, clock });
  licence.installKey(key);
  return licence;
};
const stored = (name: string) =>
  JSON.parse(readFileSync(join(root, name, 'licence.json'), 'utf8')) as {
    actType: string;
    kmsHost: string | null;
    installedKey: { text: string } | null;
    activation: { method: string; installationId?: string } | null;
  };

describe('online activation at a slow authority', () => {
  it('keeps the settings changed while the authority was asked', async () => {
    const licence = install('settings', await mintMak());
    const activating = licence.activate({ authority: slowAuthorityUrl });
    const held = await proxy.next();
    licence.setKmsHost('127.0.0.1:1688');
    licence.setActType('kms');
    licence.setDiscoveryDomains(['corp.test']);
    held.release();

    expect(await activating).toMatchObject({
      ok: true,
      status: { state: 'licensed', method: 'mak', host: '127.0.0.1:1688', actType: 'kms' },
    });
    expect(licence.status().discovery.domains).toEqual(['corp.test']);
    expect(stored('settings')).toMatchObject({
      actType: 'kms',
      kmsHost: '127.0.0.1:1688',
      activation: { method: 'mak', installationId: held.body.installationId },
    });
    // What was stored is what a later start reads.
    expect(Licence.open({ stateDir: join(root, 'settings'), clock }).status()).toMatchObject({
      state: 'licensed',
      method: 'mak',
      host: '127.0.0.1:1688',
      actType: 'kms',
    });
  });

  it("does not apply the old key's confirmation to another MAK installed meanwhile: the new key is activated", async () => {
    const licence = install('replaced', await mintMak());
    const oldInstallationId = licence.status().installationId;
    const activating = licence.activate({ authority: slowAuthorityUrl });
    const first = await proxy.next();
    expect(first.body.installationId).toBe(oldInstallationId);
    licence.installKey(await mintMak());
    const newInstallationId = licence.status().installationId;
    expect(newInstallationId).not.toBe(oldInstallationId);
    first.release();

    // The confirmation of the old installation ID is dropped; the attempt asks again for the new one.
    const second = await Promise.race([
      proxy.next(),
      activating.then((outcome): never => {
        throw new Error(`the attempt ended without asking for the new key's installation ID: ${outcome.message}`);
      }),
    ]);
    expect(second.body.installationId).toBe(newInstallationId);
    second.release();
    expect(await activating).toMatchObject({ ok: true, status: { state: 'licensed', method: 'mak' } });
    expect(stored('replaced').activation).toMatchObject({ method: 'mak', installationId: newInstallationId });
  });

  it('gives up, recording nothing, when the key is replaced during every wait (at most two restarts)', async () => {
    const licence = install('churn', await mintMak());
    const activating = licence.activate({ authority: slowAuthorityUrl });
    let last = '';
    for (let round = 0; round < 3; round++) {
      const held = await proxy.next();
      last = await mintMak();
      licence.installKey(last);
      held.release();
    }
    expect(await activating).toMatchObject({
      ok: false,
      code: 'KEY_INVALID',
      message: expect.stringMatching(/replaced during the attempt/) as unknown,
    });
    expect(stored('churn')).toMatchObject({ installedKey: { text: last }, activation: null });
    // install-key made the next attempt due: still due.
    expect(Date.parse(licence.status().nextAttemptAt)).toBeLessThanOrEqual(clock.now());
  });

  it('a refused attempt keeps the next attempt due when a setting changed during the wait asked for it', async () => {
    const licence = install('refused', makeKey('mak').text); // a MAK the authority never minted
    const activating = licence.activate({ authority: slowAuthorityUrl });
    const held = await proxy.next();
    clock.advance(60_000);
    licence.setKmsHost('127.0.0.1:1688');
    held.release();
    expect(await activating).toMatchObject({ ok: false });
    expect(Date.parse(licence.status().nextAttemptAt)).toBeLessThanOrEqual(clock.now());
  });

  it('does not activate an installation whose key was uninstalled meanwhile', async () => {
    const licence = install('uninstalled', await mintMak());
    const activating = licence.activate({ authority: slowAuthorityUrl });
    const held = await proxy.next();
    licence.uninstallKey();
    held.release();

    expect(await activating).toMatchObject({
      ok: false,
      code: 'KEY_INVALID',
      status: { method: null, installedKey: null, state: 'unlicensed' },
    });
    expect(stored('uninstalled')).toMatchObject({ installedKey: null, activation: null });
  });
});

describe('a KMS attempt whose key is uninstalled while the host is asked', () => {
  it('records no failure of the old key: the attempt starts again, with no key', async () => {
    // A "host" that accepts and holds the connection until the test drops it.
    const connected: Socket[] = [];
    let onConnection: (() => void) | undefined;
    const host = createTcpServer((socket) => {
      connected.push(socket);
      onConnection?.();
    });
    await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
    try {
      const licence = Licence.init({ stateDir: join(root, 'kms'), product, hardwareId: 'hw-kms', clock });
      licence.setKmsHost(`127.0.0.1:${(host.address() as { port: number }).port}`);
      const reached = new Promise<void>((resolve) => (onConnection = resolve));
      const activating = licence.activate();
      await reached;
      licence.uninstallKey();
      for (const socket of connected) socket.destroy();

      // Without the key check, the dropped connection was recorded as the GVLK's KMS failure.
      expect(await activating).toMatchObject({ ok: false, code: 'KEY_INVALID', status: { installedKey: null } });
      expect(licence.status().host).toBe(`127.0.0.1:${(host.address() as { port: number }).port}`);
    } finally {
      await new Promise<void>((resolve) => host.close(() => resolve()));
    }
  });
});
