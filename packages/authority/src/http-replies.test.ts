import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ManualClock,
  bulkConfirmationReplySchema,
  confirmationReplySchema,
  errorReplySchema,
  generateSigningKeyPair,
  healthReplySchema,
  hostActivationReplySchema,
  installationActivationReplySchema,
  keyReportSchema,
  makeInstallationId,
  parseKey,
  trustReplySchema,
  type ProductGroup,
  type TrustReply,
} from '@volact/core';
import type { z } from 'zod';
import { Authority } from './authority.js';
import { createAuthorityServer } from './http.js';

const TOKEN = 'admin-token-0123456789abcdef';

/**
 * What the authority sends is what its clients accept: every route's reply, on each of its
 * paths, parses with core's authority-api schema (typed and bounded) that the clients use.
 * Clients drop a reply field they do not know (a later /v1 may add some), so nothing would
 * refuse a field the authority sends undeclared: here, parsing must drop nothing, and a
 * field added to a reply without its schema fails.
 */
describe('authority HTTP API: replies match the shared schemas', () => {
  const dir = mkdtempSync(join(tmpdir(), 'volact-http-replies-'));
  const clock = new ManualClock();
  let authority: Authority;
  let app: FastifyInstance;
  let group: ProductGroup;
  let hostKey: string;
  let mak: string;

  beforeAll(async () => {
    authority = Authority.init(join(dir, 'a'), { clock });
    group = await authority.addGroup({ name: 'office14' });
    hostKey = (await authority.mintKey({ type: 'kms-host', groups: ['office14'] })).key;
    mak = (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 5 })).key;
    app = createAuthorityServer(authority, { adminToken: TOKEN, clock });
  });
  afterAll(async () => {
    await app.close();
    await authority.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = async (url: string, payload: object, headers: Record<string, string> = {}) => {
    const reply = await app.inject({ method: 'POST', url, payload, headers });
    return { status: reply.statusCode, body: reply.json<unknown>() };
  };
  const conforms = (schema: z.ZodType, body: unknown) => {
    const parsed = schema.safeParse(body);
    expect(parsed.success ? 'conforms' : parsed.error.issues).toBe('conforms');
    // What a client reads is all that was sent: no field undeclared in core's schema.
    expect(parsed.data).toStrictEqual(body);
  };
  const iid = (kind: 'installation' | 'kms-host' | 'activation-object', key: string, where: string) =>
    makeInstallationId(
      kind === 'activation-object'
        ? { kind, key: parseKey(key), domain: where, groupIds: [group.id] }
        : kind === 'kms-host'
          ? {
              kind,
              key: parseKey(key),
              hardwareId: where,
              groupIds: [group.id],
              hostPublicKey: generateSigningKeyPair().publicKeyRaw,
            }
          : { kind, key: parseKey(key), hardwareId: where, groupIds: [group.id] },
    ).text;

  it('health, host activation and online installation activation', async () => {
    conforms(healthReplySchema, (await app.inject({ method: 'GET', url: '/v1/health' })).json());
    const host = await post('/v1/host-activations', {
      hostKey,
      hostPublicKey: generateSigningKeyPair().publicKeyRaw.toString('base64'),
      hardwareId: 'hw-host-1',
    });
    expect(host.status).toBe(201);
    conforms(hostActivationReplySchema, host.body);
    // The check itself: a field sent undeclared, at the top or nested, does not survive parsing.
    const genuine = host.body as { groups: object[] };
    const undeclared = { ...genuine, groups: genuine.groups.map((g) => ({ ...g, seats: 5 })) };
    for (const sent of [{ ...genuine, seats: 5 }, undeclared]) {
      expect(hostActivationReplySchema.parse(sent)).not.toStrictEqual(sent);
    }
    const online = await post('/v1/activations', {
      key: mak,
      installationId: iid('installation', mak, 'pc-1'),
      groupId: group.id,
    });
    expect(online.status).toBe(201);
    conforms(installationActivationReplySchema, online.body);
  });

  it('the three kinds of phone confirmation, alone and in bulk with a refusal', async () => {
    const ids = [
      iid('installation', mak, 'pc-2'),
      iid('kms-host', hostKey, 'hw-host-2'),
      iid('activation-object', hostKey, 'corp.example'),
    ];
    for (const installationId of ids) {
      const single = await post('/v1/confirmations', { installationId });
      expect(single.status).toBe(201);
      conforms(confirmationReplySchema, single.body);
    }
    const bulk = await post('/v1/confirmations/bulk', { installationIds: [...ids, '123456-123456'] });
    expect(bulk.status).toBe(200);
    conforms(bulkConfirmationReplySchema, bulk.body);
    expect((bulk.body as { results: { ok: boolean }[] }).results.map((r) => r.ok)).toEqual([true, true, true, false]);
  });

  it('the trust bundle at GET /v1/trust, and the trust records each online answer carries', async () => {
    const reply = await app.inject({ method: 'GET', url: '/v1/trust' });
    expect(reply.statusCode).toBe(200);
    conforms(trustReplySchema, reply.json());
    const trust = reply.json<TrustReply>();
    expect(trust.roots.map((r) => r.state)).toEqual(['current']);
    expect(trust.roots[0]?.publicKey).toBe(authority.rootPublicKeyRaw.toString('base64'));
    expect(trust.delegations).toHaveLength(2); // online keys #0 (current) and #1 (next), certified by root #1
    const online = await post('/v1/activations', {
      key: mak,
      installationId: iid('installation', mak, 'pc-trust'),
      groupId: group.id,
    });
    expect((online.body as { trust: unknown }).trust).toEqual({
      transitions: trust.transitions,
      delegations: trust.delegations,
    });
  });

  it('key reports of both kinds of key, and refusals', async () => {
    for (const key of [mak, hostKey]) {
      const shown = await post('/v1/admin/keys/show', { key }, { authorization: `Bearer ${TOKEN}` });
      expect(shown.status).toBe(200);
      conforms(keyReportSchema, shown.body);
    }
    conforms(errorReplySchema, (await post('/v1/admin/keys/show', { key: mak })).body);
    conforms(errorReplySchema, (await post('/v1/activations', { key: 'x' })).body);
    conforms(errorReplySchema, (await app.inject({ method: 'GET', url: '/v1/nothing' })).json());
  });
});
