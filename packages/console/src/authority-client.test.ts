import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bulkConfirm, showKey } from './authority-client.js';
import { ConsoleError } from './errors.js';

describe('authority client', () => {
  it('refuses a plain-http authority through a proxy on another machine (keys would cross the network)', async () => {
    const proxy = { host: '10.0.0.1', port: 3128, authorization: null, display: 'http://10.0.0.1:3128' };
    const err = await bulkConfirm({ url: 'http://127.0.0.1:9', proxy }, ['1']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConsoleError);
    expect((err as ConsoleError).code).toBe('AUTHORITY_URL_INVALID');
    expect((err as ConsoleError).message).toContain('must be https://');
  });
});

/**
 * The authority's replies are read with core's schemas: a known field of the wrong type or out
 * of bounds is refused by name (AUTHORITY_BAD_RESPONSE); a field the schema does not know (a
 * later /v1 authority's addition) is dropped, and the console keeps nothing of it.
 */
describe('authority client: replies of a later /v1 authority', () => {
  const installationResult = {
    installationId: '111111-111111',
    ok: true,
    kind: 'installation',
    confirmationId: '222222-222222',
    method: 'mak',
    group: 'office14',
    used: 1,
    limit: 5,
    again: false,
  };
  const keyReport = {
    key: '…7QX2M',
    keyId: '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
    type: 'mak',
    group: 'office14',
    groups: ['office14'],
    limit: 5,
    used: 1,
    remaining: 4,
    activationsPerHost: null,
    revokedAt: null,
    activations: [
      {
        installationId: '111111-111111',
        channel: 'online',
        activationCount: 1,
        firstActivatedAt: '2026-11-25T09:00:00.000Z',
        lastActivatedAt: '2026-11-25T09:00:00.000Z',
      },
    ],
  };
  /** The body the stand-in authority answers with, by route. */
  let replies: Record<string, unknown> = {};
  let server: Server;
  let url: string;

  beforeAll(async () => {
    server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify(replies[request.url ?? ''] ?? {}));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('drops fields it does not know, at the top and within results and activations', async () => {
    replies = {
      '/v1/confirmations/bulk': { results: [{ ...installationResult, licenceForever: true }], licenceForever: true },
      '/v1/admin/keys/show': {
        ...keyReport,
        licenceForever: true,
        activations: keyReport.activations.map((a) => ({ ...a, licenceForever: true })),
      },
    };
    expect(await bulkConfirm({ url }, [installationResult.installationId])).toStrictEqual([installationResult]);
    expect(await showKey({ url }, 'admin-token', 'ABCDE')).toStrictEqual(keyReport);
  });

  it('refuses a known field of the wrong type or oversize, naming it', async () => {
    replies = {
      '/v1/confirmations/bulk': { results: [{ ...installationResult, used: '1' }] },
      '/v1/admin/keys/show': { ...keyReport, group: 'x'.repeat(100_000) },
    };
    const [bulk] = await bulkConfirm({ url }, [installationResult.installationId]);
    expect(bulk).toMatchObject({ ok: false, callFailed: true, error: { code: 'AUTHORITY_BAD_RESPONSE' } });
    expect(bulk?.ok === false && bulk.error.message).toMatch(/did not answer like a volact authority \(results\.0/);
    const err = await showKey({ url }, 'admin-token', 'ABCDE').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConsoleError);
    expect((err as ConsoleError).code).toBe('AUTHORITY_BAD_RESPONSE');
    expect((err as ConsoleError).message).toContain('(group: ');
    expect((err as ConsoleError).message.length).toBeLessThan(600);
  });
});
