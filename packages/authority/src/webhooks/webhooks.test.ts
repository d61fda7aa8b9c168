import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HOUR, MINUTE, ManualClock, generateSigningKeyPair, makeInstallationId, parseKey } from '@volact/core';
import { CLI_PRINCIPAL } from '../access/principal.js';
import { Authority } from '../authority.js';
import { AuthorityError } from '../errors.js';
import { startTestPostgres, type TestPostgres } from '../postgres-test-server.js';
import { PostgresAuthorityStore } from '../postgres-store.js';
import { SqliteAuthorityStore } from '../sqlite-store.js';
import { DB_FILE } from '../data-dir.js';
import type { AuthorityStore } from '../store.js';
import { newDeliveryId } from './dispatcher.js';
import { DELIVERY_GIVE_UP_MS, RETRY_BACKOFF_MS, nextAttemptAfter } from './dispatcher.js';
import { signWebhook, verifyWebhookSignature } from './signature.js';
import { webhookUrlProblem } from './webhooks.js';

interface ReceivedEvent {
  id: string;
  type: string;
  orgId: string | null;
  keyId: string | null;
  data: Record<string, string | number>;
}

/** A loopback receiver: records every request; answers `status` (503 to make deliveries wait). */
interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}
class Receiver {
  readonly requests: Received[] = [];
  status = 200;
  #server: Server | undefined;
  url = '';
  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(this.status).end();
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
    return this;
  }
  events(): ReceivedEvent[] {
    return this.requests.map((r) => JSON.parse(r.body) as ReceivedEvent);
  }
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AuthorityError) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'no error';
}

describe('webhook signatures', () => {
  const secret = 'whsec_0123456789abcdefghijklmnopqrstuv';
  const body = '{"id":"evt_1","type":"key.usage"}';
  const at = Date.UTC(2026, 11, 3, 12);

  it('a signature verifies for its body, secret and time', () => {
    const header = signWebhook(secret, body, at);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(secret, header, body, at)).toBe(true);
    expect(verifyWebhookSignature(secret, header, Buffer.from(body), at + 299_000)).toBe(true);
  });

  it('a tampered body, another secret, a malformed header fail', () => {
    const header = signWebhook(secret, body, at);
    expect(verifyWebhookSignature(secret, header, body.replace('usage', 'revoked'), at)).toBe(false);
    expect(verifyWebhookSignature(`${secret}x`, header, body, at)).toBe(false);
    expect(verifyWebhookSignature(secret, header.replace(/v1=./, 'v1=0'), body, at)).toBe(false);
    expect(verifyWebhookSignature(secret, 'v1=' + header.split('v1=')[1], body, at)).toBe(false);
    expect(verifyWebhookSignature(secret, undefined, body, at)).toBe(false);
    expect(verifyWebhookSignature(secret, '', body, at)).toBe(false);
  });

  it('a replay outside the window fails; moving the timestamp breaks the signature', () => {
    const header = signWebhook(secret, body, at);
    expect(verifyWebhookSignature(secret, header, body, at + 301_000)).toBe(false);
    expect(verifyWebhookSignature(secret, header, body, at - 301_000)).toBe(false);
    expect(verifyWebhookSignature(secret, header, body, at + 3_600_000, 7200)).toBe(true);
    const t = Math.floor(at / 1000);
    const fresh = header.replace(`t=${t}`, `t=${t + 3600}`);
    expect(verifyWebhookSignature(secret, fresh, body, at + 3_600_000)).toBe(false);
  });
});

describe('webhook URLs', () => {
  it('https anywhere, http only to loopback, no credentials', () => {
    for (const ok of [
      'https://hooks.example.com/volact',
      'http://127.0.0.1:8080/x',
      'http://127.9.9.9/x',
      'http://[::1]:9000/',
      'http://localhost:3000/h',
    ]) {
      expect(webhookUrlProblem(ok), ok).toBeNull();
    }
    expect(webhookUrlProblem('http://hooks.example.com/x')).toMatch(/use https for hooks.example.com/);
    expect(webhookUrlProblem('http://10.0.0.1/x')).toMatch(/only to this machine/);
    expect(webhookUrlProblem('http://127.0.0.1.example.com/x')).toMatch(/only to this machine/);
    expect(webhookUrlProblem('ftp://example.com/x')).toMatch(/must be https, not ftp/);
    expect(webhookUrlProblem('https://user:pw@example.com/x')).toMatch(/user name or password/);
    expect(webhookUrlProblem('not a url')).toMatch(/not a URL/);
  });
});

describe('delivery back-off', () => {
  it('10 s, 1 min, 5 min, 30 min, 2 h, then every 6 h, given up after 3 days', () => {
    const created = 0;
    expect(RETRY_BACKOFF_MS).toEqual([10_000, MINUTE, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 6 * HOUR]);
    expect(nextAttemptAfter(1, created, 0)).toBe(10_000);
    expect(nextAttemptAfter(2, created, 10_000)).toBe(10_000 + MINUTE);
    expect(nextAttemptAfter(6, created, DAY)).toBe(DAY + 6 * HOUR);
    expect(nextAttemptAfter(9, created, 2 * DAY)).toBe(2 * DAY + 6 * HOUR);
    expect(nextAttemptAfter(12, created, DELIVERY_GIVE_UP_MS - 5 * HOUR)).toBeNull();
  });
});

let postgres: TestPostgres | undefined;
const dirs: string[] = [];
beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);
afterAll(() => {
  postgres?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const engines: [string, () => Promise<string | undefined>][] = [
  ['sqlite', async () => undefined],
  ['postgres', async () => (postgres as TestPostgres).createDatabase()],
];

describe.each(engines)('webhooks on %s', (_engine, database) => {
  let clock: ManualClock;
  let authority: Authority;
  let receiver: Receiver;
  let dataDir: string;
  let groupId: string;

  let databaseUrl: string | undefined;
  /** `privateTargets`: organisations' endpoints may be this machine's receivers (targets.ts guards them otherwise). */
  const open = async (privateTargets = false) => {
    databaseUrl = await database();
    dataDir = join(mkdtempSync(join(tmpdir(), 'volact-webhooks-')), 'a');
    dirs.push(dataDir);
    clock = new ManualClock(Date.UTC(2026, 11, 3, 12));
    authority = Authority.init(dataDir, {
      clock,
      ...(databaseUrl ? { databaseUrl } : {}),
      ...(privateTargets ? { webhookPrivateTargets: true } : {}),
    });
    groupId = (await authority.addGroup({ name: 'office14' })).id;
    receiver = await new Receiver().start();
  };
  afterEach(async () => {
    await authority?.close();
    await receiver?.stop();
  });

  const iid = (key: string, hw: string) =>
    makeInstallationId({ kind: 'installation', key: parseKey(key), hardwareId: hw, groupIds: [groupId] }).text;

  it('refuses bad endpoints with WEBHOOK_INVALID naming why; the secret is shown once, sealed in the store', async () => {
    await open();
    expect(
      await codeOf(authority.webhooks.create({ url: 'http://example.com/h', events: ['key.usage'] }, CLI_PRINCIPAL)),
    ).toMatch(/^WEBHOOK_INVALID: http is allowed only to this machine/);
    expect(
      await codeOf(authority.webhooks.create({ url: receiver.url, events: ['key.used' as never] }, CLI_PRINCIPAL)),
    ).toMatch(/^WEBHOOK_INVALID: unknown event "key.used"/);
    expect(await codeOf(authority.webhooks.create({ url: receiver.url, events: [] }, CLI_PRINCIPAL))).toMatch(
      /^WEBHOOK_INVALID: name at least one event/,
    );
    expect(
      await codeOf(
        authority.webhooks.create({ orgId: 'nope', url: receiver.url, events: ['key.usage'] }, CLI_PRINCIPAL),
      ),
    ).toMatch(/^WEBHOOK_INVALID: "nope" is not an organisation id/);
    const { endpoint, secret } = await authority.webhooks.create(
      { url: receiver.url, events: ['key.usage'] },
      CLI_PRINCIPAL,
    );
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{32}$/);
    expect(endpoint.secretLast5).toBe(secret.slice(-5));
    expect(JSON.stringify(await authority.webhooks.list({}))).not.toContain(secret);
    expect(JSON.stringify(await authority.recentAudit(10))).not.toContain(secret);
    expect(await codeOf(authority.webhooks.get('whe_000000000000000000000000'))).toMatch(/^WEBHOOK_NOT_FOUND/);

    // An organisation's endpoint: https to a public address only (no SSRF into the publisher's network).
    const org = await authority.organisations.create({ name: 'Contoso' }, CLI_PRINCIPAL);
    for (const [url, why] of [
      [receiver.url, /must use https/],
      ['https://127.0.0.1:8443/h', /127\.0\.0\.1 is private, loopback or reserved/],
      ['https://169.254.169.254/latest/meta-data', /169\.254\.169\.254 is private/],
      ['https://[::ffff:10.0.0.1]/h', /is private/],
      ['https://localhost/h', /public DNS name or address, not "localhost"/],
      ['https://intranet/h', /public DNS name or address, not "intranet"/],
    ] as const) {
      expect(
        await codeOf(authority.webhooks.create({ orgId: org.id, url, events: ['key.usage'] }, CLI_PRINCIPAL)),
        url,
      ).toMatch(new RegExp(`^WEBHOOK_INVALID: .*${why.source}`));
    }
    await authority.webhooks.create(
      { orgId: org.id, url: 'https://hooks.contoso.example/volact', events: ['key.usage'] },
      CLI_PRINCIPAL,
    );
  });

  it('MAK usage at 80/90/100 %, refusals once per hour; signed, fanned out by type', async () => {
    await open();
    const { secret } = await authority.webhooks.create(
      { url: receiver.url, events: ['key.usage', 'activation.refused'] },
      CLI_PRINCIPAL,
    );
    const other = await new Receiver().start();
    try {
      await authority.webhooks.create({ url: other.url, events: ['host.activated'] }, CLI_PRINCIPAL);
      const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 10 });
      for (let i = 1; i <= 10; i++) await authority.activateInstallation({ key, installationId: iid(key, `pc-${i}`) });
      await authority.activateInstallation({ key, installationId: iid(key, 'pc-1') }); // again, free: no event
      for (const hw of ['pc-11', 'pc-12'])
        expect(await codeOf(authority.activateInstallation({ key, installationId: iid(key, hw) }))).toMatch(
          /^MAK_LIMIT_REACHED/,
        );
      clock.advance(HOUR);
      expect(await codeOf(authority.activateInstallation({ key, installationId: iid(key, 'pc-13') }))).toMatch(
        /^MAK_LIMIT_REACHED/,
      );
      const pass = await authority.webhooks.dispatchOnce();
      expect(pass).toMatchObject({ attempted: 5, delivered: 5 });
      // Sent at once, so in any order (a receiver orders by occurredAt, dedupes by id).
      const got = receiver
        .events()
        .sort((a, b) => `${a.type}${a.data.threshold}`.localeCompare(`${b.type}${b.data.threshold}`));
      expect(got.map((e) => [e.type, e.data.threshold ?? e.data.code])).toEqual([
        ['activation.refused', 'MAK_LIMIT_REACHED'],
        ['activation.refused', 'MAK_LIMIT_REACHED'],
        ['key.usage', 100],
        ['key.usage', 80],
        ['key.usage', 90],
      ]);
      expect(got[3]?.data).toEqual({ threshold: 80, used: 8, limit: 10, keyLast5: key.slice(-5) });
      expect(got[3]?.orgId).toBe('org_default');
      for (const r of receiver.requests) {
        expect(verifyWebhookSignature(secret, r.headers['volact-signature'] as string, r.body, clock.now())).toBe(true);
        expect(r.headers['volact-event-id']).toBe(JSON.parse(r.body).id);
        expect(r.headers['content-type']).toBe('application/json');
        expect(r.body).not.toContain(key);
      }
      expect(other.requests).toHaveLength(0); // it asked for host.activated only
      expect(await authority.webhooks.dispatchOnce()).toMatchObject({ fannedOut: 0, attempted: 0 });
    } finally {
      await other.stop();
    }
  });

  it('a new KMS host raises host.activated, a renewal none; the host limit raises activation.refused', async () => {
    await open();
    await authority.webhooks.create(
      { url: receiver.url, events: ['host.activated', 'activation.refused'] },
      CLI_PRINCIPAL,
    );
    const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'], hosts: 1 });
    const pair = generateSigningKeyPair();
    const host = (hardwareId: string) => ({ hostKey: key, hostPublicKey: pair.publicKeyRaw, hardwareId });
    await authority.activateHost(host('hw-1'));
    await authority.activateHost(host('hw-1')); // the same host renewing
    expect(await codeOf(authority.activateHost(host('hw-2')))).toMatch(/^HOST_LIMIT_REACHED/);
    expect(await codeOf(authority.activateHost(host('hw-3')))).toMatch(/^HOST_LIMIT_REACHED/);
    await authority.webhooks.dispatchOnce();
    const got = receiver.events().sort((a, b) => b.type.localeCompare(a.type));
    expect(got.map((e) => e.type)).toEqual(['host.activated', 'activation.refused']);
    expect(got[0]?.data).toMatchObject({ hostsUsed: 1, hostLimit: 1, keyLast5: key.slice(-5) });
    expect(got[1]?.data).toEqual({ code: 'HOST_LIMIT_REACHED', keyLast5: key.slice(-5) });
  });

  it("fans out by organisation: an organisation's endpoint hears only its keys' events, the publisher's all", async () => {
    await open(true);
    const contoso = await authority.organisations.create({ name: 'Contoso' }, CLI_PRINCIPAL);
    const fabrikam = await authority.organisations.create({ name: 'Fabrikam' }, CLI_PRINCIPAL);
    const publisher = receiver;
    const ofContoso = await new Receiver().start();
    const ofFabrikam = await new Receiver().start();
    try {
      await authority.webhooks.create({ url: publisher.url, events: ['key.usage'] }, CLI_PRINCIPAL);
      await authority.webhooks.create({ orgId: contoso.id, url: ofContoso.url, events: ['key.usage'] }, CLI_PRINCIPAL);
      const fabrikamHook = await authority.webhooks.create(
        { orgId: fabrikam.id, url: ofFabrikam.url, events: ['activation.refused'] },
        CLI_PRINCIPAL,
      );
      expect((await authority.webhooks.list({ orgId: fabrikam.id })).map((e) => e.id)).toEqual([
        fabrikamHook.endpoint.id,
      ]);
      expect(await authority.webhooks.list({ orgId: null })).toHaveLength(1);
      expect(
        await codeOf(
          authority.webhooks.create({ orgId: 'org_nosuch', url: publisher.url, events: ['key.usage'] }, CLI_PRINCIPAL),
        ),
      ).toMatch(/^ORG_NOT_FOUND/);
      const c = await authority.organisations.mintKey(
        contoso.id,
        { type: 'mak', groups: ['office14'], limit: 1 },
        CLI_PRINCIPAL,
      );
      const f = await authority.organisations.mintKey(
        fabrikam.id,
        { type: 'mak', groups: ['office14'], limit: 1 },
        CLI_PRINCIPAL,
      );
      await authority.activateInstallation({ key: c.key, installationId: iid(c.key, 'pc-1') });
      await authority.activateInstallation({ key: f.key, installationId: iid(f.key, 'pc-1') });
      await codeOf(authority.activateInstallation({ key: f.key, installationId: iid(f.key, 'pc-2') }));
      await authority.webhooks.dispatchOnce();
      const seen = (r: Receiver) =>
        r
          .events()
          .map((e) => `${e.orgId}:${e.type}`)
          .sort();
      expect(seen(publisher)).toEqual(
        [...Array(3).fill(`${contoso.id}:key.usage`), ...Array(3).fill(`${fabrikam.id}:key.usage`)].sort(),
      );
      expect(seen(ofContoso)).toEqual(Array(3).fill(`${contoso.id}:key.usage`));
      expect(seen(ofFabrikam)).toEqual([`${fabrikam.id}:activation.refused`]);
    } finally {
      await ofContoso.stop();
      await ofFabrikam.stop();
    }
  });

  it('a revoked key refused (online, by phone, a KMS host) raises activation.refused KEY_REVOKED once an hour', async () => {
    await open();
    await authority.webhooks.create({ url: receiver.url, events: ['activation.refused'] }, CLI_PRINCIPAL);
    const mak = (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 5 })).key;
    const host = (await authority.mintKey({ type: 'kms-host', groups: ['office14'] })).key;
    await authority.revokeKey(mak);
    await authority.revokeKey(host);
    const hostRequest = { hostKey: host, hostPublicKey: generateSigningKeyPair().publicKeyRaw, hardwareId: 'hw-1' };
    for (let i = 0; i < 3; i++) {
      expect(await codeOf(authority.activateInstallation({ key: mak, installationId: iid(mak, `pc-${i}`) }))).toMatch(
        /^KEY_REVOKED/,
      );
      expect(await codeOf(authority.confirm(iid(mak, `pc-${i}`)))).toMatch(/^KEY_REVOKED/);
      expect(await codeOf(authority.activateHost(hostRequest))).toMatch(/^KEY_REVOKED/);
    }
    clock.advance(HOUR);
    expect(await codeOf(authority.activateHost(hostRequest))).toMatch(/^KEY_REVOKED/);
    await authority.webhooks.dispatchOnce();
    const got = receiver.events().map((e) => `${e.data.keyLast5}:${e.data.code}`);
    expect(got.sort()).toEqual(
      [`${mak.slice(-5)}:KEY_REVOKED`, `${host.slice(-5)}:KEY_REVOKED`, `${host.slice(-5)}:KEY_REVOKED`].sort(),
    );
  });

  it('retries with back-off on the injected clock until a 2xx; the log and a redelivery', async () => {
    await open();
    const { endpoint } = await authority.webhooks.create({ url: receiver.url, events: ['key.usage'] }, CLI_PRINCIPAL);
    const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 1 });
    await authority.activateInstallation({ key, installationId: iid(key, 'pc-1') }); // 80, 90, 100 % at once
    receiver.status = 503;
    expect(await authority.webhooks.dispatchOnce()).toMatchObject({ fannedOut: 3, attempted: 3, delivered: 0 });
    let log = await authority.webhooks.deliveries(endpoint.id, {});
    expect(log.items.map((d) => [d.state, d.attempts, d.lastStatus, d.lastError])).toEqual(
      Array(3).fill(['pending', 1, 503, 'HTTP 503']),
    );
    expect(log.items[0]?.nextAttemptAt).toBe(new Date(clock.now() + 10_000).toISOString());
    clock.advance(9_000);
    expect(await authority.webhooks.dispatchOnce()).toMatchObject({ attempted: 0 });
    clock.advance(1_000);
    expect(await authority.webhooks.dispatchOnce()).toMatchObject({ attempted: 3, delivered: 0 });
    clock.advance(MINUTE - 1);
    expect(await authority.webhooks.dispatchOnce()).toMatchObject({ attempted: 0 });
    clock.advance(1);
    receiver.status = 204;
    expect(await authority.webhooks.dispatchOnce()).toMatchObject({ attempted: 3, delivered: 3 });
    log = await authority.webhooks.deliveries(endpoint.id, { state: 'delivered', limit: 2 });
    expect(log.items).toHaveLength(2);
    expect(log.nextCursor).not.toBeNull();
    const rest = await authority.webhooks.deliveries(endpoint.id, {
      state: 'delivered',
      cursor: log.nextCursor as string,
    });
    expect(rest.items).toHaveLength(1);
    expect(rest.nextCursor).toBeNull();
    const first = log.items[0] as { id: string; eventId: string; attempts: number };
    expect(first.attempts).toBe(3);
    expect(receiver.requests).toHaveLength(9);

    expect(await authority.webhooks.getDelivery?.(first.id)).toMatchObject({ id: first.id, endpointId: endpoint.id });
    expect(await codeOf(authority.webhooks.getDelivery?.('whd_nope') ?? Promise.resolve())).toMatch(
      /^WEBHOOK_NOT_FOUND/,
    );
    const again = await authority.webhooks.redeliver(first.id, CLI_PRINCIPAL);
    expect(again).toMatchObject({ eventId: first.eventId, state: 'pending', attempts: 0 });
    expect(again.id).not.toBe(first.id);
    expect(await authority.webhooks.dispatchOnce()).toMatchObject({ attempted: 1, delivered: 1 });
    expect(receiver.events().at(-1)?.id).toBe(first.eventId); // the same event id: the receiver dedupes
    expect(await codeOf(authority.webhooks.redeliver('whd_000000000000000000000000', CLI_PRINCIPAL))).toMatch(
      /^WEBHOOK_NOT_FOUND/,
    );

    // A receiver down for good: given up after 3 days.
    receiver.status = 500;
    await authority.webhooks.redeliver(first.id, CLI_PRINCIPAL);
    for (let i = 0; i < 40; i++) {
      await authority.webhooks.dispatchOnce();
      clock.advance(2 * HOUR);
    }
    const failed = await authority.webhooks.deliveries(endpoint.id, { state: 'failed' });
    expect(failed.items).toHaveLength(1);
    expect(failed.items[0]?.attempts).toBe(16); // 10 s, 1, 5, 30 min, 2 h, then 6 h until 3 days
  });

  it('a removed endpoint gets nothing more; its pending deliveries fail', async () => {
    await open();
    const { endpoint } = await authority.webhooks.create({ url: receiver.url, events: ['key.usage'] }, CLI_PRINCIPAL);
    const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 1 });
    await authority.activateInstallation({ key, installationId: iid(key, 'pc-1') });
    receiver.status = 503;
    await authority.webhooks.dispatchOnce();
    await authority.webhooks.remove(endpoint.id, CLI_PRINCIPAL);
    expect(await authority.webhooks.list({})).toEqual([]);
    clock.advance(MINUTE);
    receiver.status = 200;
    expect(await authority.webhooks.dispatchOnce()).toMatchObject({ delivered: 0 });
    const log = await authority.webhooks.deliveries(endpoint.id, {});
    expect(log.items.map((d) => [d.state, d.lastError])).toEqual(Array(3).fill(['failed', 'endpoint removed']));
    expect(receiver.requests).toHaveLength(3); // the first, refused, attempts only
    expect(await codeOf(authority.webhooks.remove(endpoint.id, CLI_PRINCIPAL))).toMatch(/^WEBHOOK_NOT_FOUND/);
  });

  it('two nodes dispatching at once send each delivery once; a dead node’s lease lapses and another sends', async () => {
    await open();
    await authority.webhooks.create({ url: receiver.url, events: ['key.usage'] }, CLI_PRINCIPAL);
    const second = Authority.open(dataDir, { clock, ...(databaseUrl ? { databaseUrl } : {}) });
    const crashed: AuthorityStore = databaseUrl
      ? new PostgresAuthorityStore(databaseUrl)
      : new SqliteAuthorityStore(join(dataDir, DB_FILE));
    try {
      for (let k = 0; k < 6; k++) {
        const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 1 });
        await authority.activateInstallation({ key, installationId: iid(key, 'pc-1') });
      }
      const [a, b] = await Promise.all([authority.webhooks.dispatchOnce(), second.webhooks.dispatchOnce()]);
      expect(a.delivered + b.delivered).toBe(18);
      expect(receiver.requests).toHaveLength(18);
      expect(new Set(receiver.events().map((e) => e.id)).size).toBe(18);

      // A node claims the next event's delivery, then dies before sending it.
      const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 1 });
      await authority.activateInstallation({ key, installationId: iid(key, 'pc-1') });
      expect(await crashed.webhooks.fanOut(clock.now(), 100, newDeliveryId)).toBe(3);
      const taken = await crashed.webhooks.claimDue(clock.now(), clock.now() + MINUTE, 1);
      expect(taken).toHaveLength(1);
      expect(await authority.webhooks.dispatchOnce()).toMatchObject({ attempted: 2 }); // not the leased one
      clock.advance(MINUTE);
      expect(await second.webhooks.dispatchOnce()).toMatchObject({ attempted: 1, delivered: 1 });
      expect(receiver.events().at(-1)?.id).toBe(taken[0]?.event.id);
      // The dead node's late answer changes nothing: its lease is gone.
      expect(
        await crashed.webhooks.finishAttempt(taken[0]?.id as string, taken[0]?.leaseUntil as number, {
          state: 'failed',
          nextAttemptAt: null,
          lastStatus: 500,
          lastError: 'late',
          deliveredAt: null,
        }),
      ).toBe(false);
    } finally {
      await second.close();
      await crashed.close();
    }
  });
});
