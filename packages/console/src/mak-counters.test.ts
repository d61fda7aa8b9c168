import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AuthorityRefusal, makCounters } from './authority-client.js';

/**
 * The MAK counters with an organisation's read token (docs/console.md "refresh-mak"): each MAK
 * is looked up with the key in the body; the authority answers only the token's organisation's
 * (another's is KEY_NOT_FOUND, as if absent); the admin token reads every MAK; an authority from
 * before organisations (no lookup route) is read through the admin route. The stand-in answers
 * as the authority's REST API does.
 */
const ORG_TOKEN = 'vat_orgreadtoken0000000000000001';
const ADMIN_TOKEN = 'authority-admin-token-000000001';
const OWN_MAK = 'AAAAA-BBBBB-CCCCC-DDDDD-OWN11';
const OTHER_MAK = 'AAAAA-BBBBB-CCCCC-DDDDD-OTH22';

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
}

describe('MAK counters with an organisation read token or the admin token', () => {
  let server: Server;
  let url: string;
  let seen: Seen[] = [];
  /** What the stand-in authority offers (an older one lacks the newer routes). */
  let routes = { lookup: true };

  const reply = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const refused = (code: string, message: string) => ({ error: { code, message } });
  const summary = { keyId: 'k-own', orgId: 'org_contoso', last5: 'OWN11', limit: 50, used: 7, remaining: 43 };

  beforeAll(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (c: Buffer) => (body += c.toString()));
      request.on('end', () => {
        const auth = request.headers.authorization;
        seen.push({ method: request.method ?? '', url: request.url ?? '', authorization: auth, body });
        const noRoute = () => reply(response, 404, refused('NOT_FOUND', `no route ${request.method} ${request.url}`));
        const who = auth === `Bearer ${ORG_TOKEN}` ? 'org' : auth === `Bearer ${ADMIN_TOKEN}` ? 'admin' : undefined;
        if (request.url === '/v1/keys/lookup' && request.method === 'POST') {
          if (!routes.lookup) return noRoute();
          if (!who) return reply(response, 401, refused('UNAUTHORIZED', 'no or unknown token'));
          const { key } = JSON.parse(body) as { key: string };
          // The organisation's token sees its own keys only; the admin token every key.
          if (key === OWN_MAK) return reply(response, 200, summary);
          if (key === OTHER_MAK && who === 'admin') return reply(response, 200, { ...summary, orgId: 'org_other' });
          return reply(response, 404, refused('KEY_NOT_FOUND', 'no such key'));
        }
        if (request.url === '/v1/admin/keys/show' && request.method === 'POST') {
          if (who !== 'admin') {
            return reply(response, 403, refused('SCOPE_MISSING', 'needs the scope publisher:read'));
          }
          return reply(response, 200, {
            key: '…OWN11',
            keyId: '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
            type: 'mak',
            group: 'office14',
            groups: ['office14'],
            limit: 50,
            used: 7,
            remaining: 43,
            activationsPerHost: null,
            revokedAt: null,
            activations: [],
          });
        }
        return noRoute();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => {
    seen = [];
    routes = { lookup: true };
  });

  it("reads its own MAK, the key in the body and never in a URL; another organisation's MAK is KEY_NOT_FOUND", async () => {
    expect(await makCounters({ url }, ORG_TOKEN, OWN_MAK)).toStrictEqual({ limit: 50, used: 7, remaining: 43 });
    const err = await makCounters({ url }, ORG_TOKEN, OTHER_MAK).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthorityRefusal);
    expect(err).toMatchObject({ code: 'AUTHORITY_REFUSED', authorityCode: 'KEY_NOT_FOUND', status: 404 });
    // Never the admin route (a KEY_NOT_FOUND is not a missing route), never a key in a URL.
    expect(seen.map((x) => `${x.method} ${x.url}`)).toEqual(['POST /v1/keys/lookup', 'POST /v1/keys/lookup']);
    expect(seen.every((x) => x.authorization === `Bearer ${ORG_TOKEN}`)).toBe(true);
    expect(JSON.parse(seen[0]?.body ?? '{}')).toEqual({ key: OWN_MAK });
  });

  it('the admin token reads every MAK; an authority from before organisations (no lookup route) through the admin route', async () => {
    expect(await makCounters({ url }, ADMIN_TOKEN, OTHER_MAK)).toMatchObject({ limit: 50, used: 7 });
    routes.lookup = false;
    expect(await makCounters({ url }, ADMIN_TOKEN, OWN_MAK)).toMatchObject({ limit: 50, used: 7, remaining: 43 });
    expect(seen.map((x) => `${x.method} ${x.url}`)).toEqual([
      'POST /v1/keys/lookup',
      'POST /v1/keys/lookup',
      'POST /v1/admin/keys/show',
    ]);
    expect(JSON.parse(seen.at(-1)?.body ?? '{}')).toEqual({ key: OWN_MAK });
    // The org token on such an authority: the admin route refuses it with its own code.
    const err = await makCounters({ url }, ORG_TOKEN, OWN_MAK).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AUTHORITY_REFUSED', authorityCode: 'SCOPE_MISSING' });
  });

  it('a wrong token is refused with the authority code (UNAUTHORIZED), not retried elsewhere', async () => {
    const err = await makCounters({ url }, 'vat_unknown000000000000000000000', OWN_MAK).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AUTHORITY_REFUSED', authorityCode: 'UNAUTHORIZED' });
    expect(seen).toHaveLength(1);
  });
});
