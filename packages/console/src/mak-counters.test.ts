import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AuthorityRefusal, makCounters, tokenOrganisation } from './authority-client.js';

/**
 * The MAK counters with an organisation's read token (docs/console.md "refresh-mak"): the
 * console learns the token's organisation from GET /v1/session and reads each MAK under it,
 * the key in the body; the admin token keeps the admin route; an older authority (no session
 * route, no lookup route) is still read. The stand-in answers as the REST contract says.
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
  let routes = { session: true, lookup: true };

  const reply = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
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
        if (request.url === '/v1/session' && request.method === 'GET') {
          if (!routes.session) return noRoute();
          if (!who) return reply(response, 401, refused('UNAUTHORIZED', 'no or unknown token'));
          return reply(response, 200, {
            user: null,
            principal: {
              kind: who === 'org' ? 'token' : 'admin-token',
              name: who,
              orgId: who === 'org' ? 'org_contoso' : null,
              role: null,
              scopes: who === 'org' ? ['org:org_contoso:read'] : ['publisher:*'],
            },
          });
        }
        if (request.url === '/v1/orgs/org_contoso/keys/lookup' && request.method === 'POST') {
          if (!routes.lookup) return noRoute();
          if (who !== 'org') return reply(response, 401, refused('UNAUTHORIZED', 'no or unknown token'));
          const { key } = JSON.parse(body) as { key: string };
          if (key === OWN_MAK) return reply(response, 200, summary);
          return reply(response, 404, refused('KEY_NOT_FOUND', 'no such key in this organisation'));
        }
        if (request.url === '/v1/orgs/org_contoso/keys/OWN11' && request.method === 'GET') {
          return reply(response, 200, summary);
        }
        if (request.url?.startsWith('/v1/orgs/org_contoso/keys/') && request.method === 'GET') {
          return reply(response, 404, refused('KEY_NOT_FOUND', 'no such key in this organisation'));
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
    routes = { session: true, lookup: true };
  });

  it("reads its own MAK under its organisation, the key in the body and never in a URL; another organisation's MAK is KEY_NOT_FOUND", async () => {
    const org = await tokenOrganisation({ url }, ORG_TOKEN);
    expect(org).toBe('org_contoso');
    expect(await makCounters({ url }, ORG_TOKEN, org, OWN_MAK)).toStrictEqual({ limit: 50, used: 7, remaining: 43 });
    const err = await makCounters({ url }, ORG_TOKEN, org, OTHER_MAK).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthorityRefusal);
    expect(err).toMatchObject({ code: 'AUTHORITY_REFUSED', authorityCode: 'KEY_NOT_FOUND', status: 404 });
    // Never the admin route, never a key in a URL, always the org token.
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET /v1/session',
      'POST /v1/orgs/org_contoso/keys/lookup',
      'POST /v1/orgs/org_contoso/keys/lookup',
    ]);
    expect(seen.every((s) => s.authorization === `Bearer ${ORG_TOKEN}`)).toBe(true);
    expect(seen.some((s) => s.url.includes('OWN11') || s.url.includes('OTH22'))).toBe(false);
  });

  it('an authority without the lookup route is asked by the last five characters within the organisation', async () => {
    routes.lookup = false;
    expect(await makCounters({ url }, ORG_TOKEN, 'org_contoso', OWN_MAK)).toMatchObject({ used: 7, limit: 50 });
    const err = await makCounters({ url }, ORG_TOKEN, 'org_contoso', OTHER_MAK).catch((e: unknown) => e);
    expect(err).toMatchObject({ authorityCode: 'KEY_NOT_FOUND' });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toContain('GET /v1/orgs/org_contoso/keys/OWN11');
  });

  it('the admin token keeps the admin route; an authority from before organisations (no /v1/session) too', async () => {
    expect(await tokenOrganisation({ url }, ADMIN_TOKEN)).toBeNull();
    expect(await makCounters({ url }, ADMIN_TOKEN, null, OWN_MAK)).toMatchObject({ limit: 50, used: 7, remaining: 43 });
    expect(seen.at(-1)).toMatchObject({ method: 'POST', url: '/v1/admin/keys/show' });
    expect(JSON.parse(seen.at(-1)?.body ?? '{}')).toEqual({ key: OWN_MAK });
    routes.session = false;
    expect(await tokenOrganisation({ url }, ADMIN_TOKEN)).toBeNull();
  });

  it('a wrong token is refused with the authority code (UNAUTHORIZED), not taken for an admin token', async () => {
    const err = await tokenOrganisation({ url }, 'vat_unknown000000000000000000000').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AUTHORITY_REFUSED', authorityCode: 'UNAUTHORIZED' });
  });
});
