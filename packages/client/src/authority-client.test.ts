import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority, authorityErrors, createAuthorityServer } from '@volact/authority';
import { startReplyTamperingProxy, type ReplyTamperingProxy } from '@volact/authority/testing';
import { ManualClock, type ProductConfig } from '@volact/core';
import { AUTHORITY_CODES } from './authority-client.js';
import { Licence } from './index.js';

describe('the authority client', () => {
  it("passes on the authority's own codes: its list is the authority's catalogue", () => {
    expect([...AUTHORITY_CODES].sort()).toEqual(Object.keys(authorityErrors).sort());
  });
});

/**
 * The online activation's reply is read with core's schema: a field of the wrong type or out
 * of bounds is refused by name (ACTIVATION_UNTRUSTED), a field the schema does not know is
 * dropped. An authority may add a field to a /v1 reply; a product already shipped keeps
 * activating, and what licenses it (the confirmation ID) is verified against the root key.
 */
describe('online activation: the authority reply, as a later /v1 authority may send it', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
  const root = mkdtempSync(join(tmpdir(), 'volact-client-authority-reply-'));
  let authority: Authority;
  let app: FastifyInstance;
  let tamperer: ReplyTamperingProxy;
  let tamperedUrl: string;
  let product: ProductConfig;
  let mak: string;

  beforeAll(async () => {
    authority = Authority.init(join(root, 'authority'), { clock });
    await authority.addGroup({ name: 'office14' });
    product = await authority.productConfig('office14');
    mak = (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 10 })).key;
    app = createAuthorityServer(authority);
    const authorityUrl = await app.listen({ host: '127.0.0.1', port: 0 });
    tamperer = await startReplyTamperingProxy(authorityUrl);
    tamperedUrl = tamperer.url;
  });

  afterAll(async () => {
    await tamperer.close();
    await app.close();
    await authority.close();
    rmSync(root, { recursive: true, force: true });
  });

  const attempt = async (name: string, change: (reply: Record<string, unknown>) => unknown) => {
    tamperer.tamper = change;
    const stateDir = join(root, name);
    const licence = Licence.init({ stateDir, product, hardwareId: `hw-${name}`, clock });
    licence.installKey(mak);
    return { licence, stateDir, outcome: await licence.activate({ authority: tamperedUrl }) };
  };

  it('activates with a reply that carries a field it does not know, and keeps nothing of it', async () => {
    const { licence, stateDir, outcome } = await attempt('unknown-field', (reply) => ({
      ...reply,
      licenceForever: 'licenceForever',
    }));
    expect(outcome).toMatchObject({ ok: true, status: { state: 'licensed', method: 'mak' } });
    expect(licence.status()).toMatchObject({ state: 'licensed', method: 'mak' });
    for (const entry of readdirSync(stateDir, { withFileTypes: true }).filter((e) => e.isFile())) {
      expect(readFileSync(join(stateDir, entry.name)).includes('licenceForever'), entry.name).toBe(false);
    }
  });

  it('refuses a known field of the wrong type, naming it, and stays unactivated', async () => {
    const { licence, outcome } = await attempt('wrong-type', (reply) => ({ ...reply, used: '1' }));
    expect(outcome).toMatchObject({ ok: false, code: 'ACTIVATION_UNTRUSTED' });
    expect(outcome.message).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+ answered HTTP 201 with a reply that is not a volact authority's activation \(used: /,
    );
    expect(licence.status()).toMatchObject({ state: 'initial-grace', method: null });
  });

  it('refuses an oversize string, naming it', async () => {
    const { licence, outcome } = await attempt('oversize', (reply) => ({
      ...reply,
      confirmationId: '1'.repeat(100_000),
    }));
    expect(outcome).toMatchObject({ ok: false, code: 'ACTIVATION_UNTRUSTED' });
    expect(outcome.message).toContain('(confirmationId: ');
    expect(outcome.message.length).toBeLessThan(600);
    expect(licence.status()).toMatchObject({ state: 'initial-grace', method: null });
  });
});
