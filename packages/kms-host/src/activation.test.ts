import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority, createAuthorityServer } from '@volact/authority';
import { startReplyTamperingProxy, type ReplyTamperingProxy } from '@volact/authority/testing';
import { ManualClock, hostActivationReplySchema } from '@volact/core';
import { activateHostOnline } from './activation.js';
import { KmsHostError } from './errors.js';
import { HostState } from './host-state.js';

/**
 * A host activation whose reply is not the authority's (a broken proxy, a hostile server in
 * its place) is refused by the shared schema, with the wrong field named, and nothing is
 * recorded: the host is no more activated than before. A field the schema does not know is
 * dropped, not refused: the authority may add one within /v1, and what the host keeps (its
 * certificate) is checked against the root key anyway.
 */
describe('host activation online: the reply is checked against the authority API', () => {
  const clock = new ManualClock();
  const dir = mkdtempSync(join(tmpdir(), 'volact-host-activation-'));
  let authority: Authority;
  let app: FastifyInstance;
  let tamperer: ReplyTamperingProxy;
  let tamperedUrl: string;
  let hostKey: string;

  beforeAll(async () => {
    authority = Authority.init(join(dir, 'authority'), { clock });
    await authority.addGroup({ name: 'office14' });
    hostKey = (await authority.mintKey({ type: 'kms-host', groups: ['office14'] })).key;
    app = createAuthorityServer(authority);
    const authorityUrl = await app.listen({ host: '127.0.0.1', port: 0 });
    tamperer = await startReplyTamperingProxy(authorityUrl);
    tamperedUrl = tamperer.url;
  });

  afterAll(async () => {
    await tamperer.close();
    await app.close();
    await authority.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const refusalOf = async (name: string, change: (reply: Record<string, unknown>) => unknown) => {
    tamperer.tamper = change;
    const state = HostState.installKey(join(dir, name), hostKey, 'hw-1', clock.now());
    const err = await activateHostOnline(state, tamperedUrl, { clock }).catch((e: unknown) => e);
    expect(HostState.open(join(dir, name)).activation).toBeUndefined();
    expect(err).toBeInstanceOf(KmsHostError);
    return err as KmsHostError;
  };

  it('takes the genuine reply (the same schema accepts it)', async () => {
    tamperer.tamper = (reply) => {
      expect(hostActivationReplySchema.safeParse(reply).success).toBe(true);
      return reply;
    };
    const state = HostState.installKey(join(dir, 'genuine'), hostKey, 'hw-1', clock.now());
    const outcome = await activateHostOnline(state, tamperedUrl, { clock });
    expect(outcome).toMatchObject({ hostsUsed: 1, hostLimit: 6, groups: [{ name: 'office14' }] });
  });

  it('refuses a field of the wrong type, naming it', async () => {
    const err = await refusalOf('wrong-type', (reply) => ({ ...reply, hostsUsed: '1' }));
    expect(err.code).toBe('HOST_ACTIVATION_REFUSED');
    expect(err.message).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+ answered HTTP 201 with a reply that is not a volact authority's host activation \(hostsUsed: /,
    );
    expect(err.message).toContain('nothing was recorded');
  });

  it('refuses an oversize string, naming it (bounded)', async () => {
    const huge = await refusalOf('oversize', (reply) => ({
      ...reply,
      groups: [{ ...(reply.groups as object[])[0], name: 'x'.repeat(100_000) }],
    }));
    expect(huge.message).toContain('(groups.0.name: ');
    expect(huge.message.length).toBeLessThan(600);
  });

  it('ignores a field it does not know: a later /v1 authority may add one to its reply', async () => {
    tamperer.tamper = (reply) => ({
      ...reply,
      licenceForever: true,
      groups: (reply.groups as object[]).map((g) => ({ ...g, licenceForever: true })),
    });
    const dataDir = join(dir, 'unknown-field');
    const state = HostState.installKey(dataDir, hostKey, 'hw-1', clock.now());
    const outcome = await activateHostOnline(state, tamperedUrl, { clock });
    expect(outcome).toMatchObject({ hostLimit: 6, groups: [{ name: 'office14' }] });
    expect(outcome.groups[0]).not.toHaveProperty('licenceForever');
    expect(HostState.open(dataDir).activation?.groups).toEqual(outcome.groups);
    // Nothing of the unknown field reached the host's files.
    for (const entry of readdirSync(dataDir, { withFileTypes: true }).filter((e) => e.isFile())) {
      expect(readFileSync(join(dataDir, entry.name)).includes('licenceForever'), entry.name).toBe(false);
    }
  });
});
