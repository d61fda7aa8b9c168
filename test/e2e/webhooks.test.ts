import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeyPair, makeInstallationId, parseKey } from '@volact/core';
import { verifyWebhookSignature } from '@volact/authority';
import { startTestPostgres, type TestPostgres } from '@volact/authority/testing';

/**
 * Signed webhooks as a publisher runs them: `volact authority serve` (the built binary) on
 * PostgreSQL, a receiver on loopback that checks every signature and deduplicates by event id.
 * The node is killed with SIGKILL while events wait for a receiver that answers 503; a fresh
 * node on the same data directory and database delivers every one of them.
 */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'volact-webhooks-e2e-'));
const children = new Set<ChildProcess>();
let postgres: TestPostgres | undefined;
const execFileAsync = promisify(execFile);

async function volact(...args: string[]): Promise<string> {
  try {
    return (await execFileAsync(process.execPath, [BIN, ...args], { timeout: 30_000 })).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`volact ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}
const volactJson = async <T>(...args: string[]): Promise<T> => JSON.parse(await volact(...args, '--json')) as T;

interface Node {
  readonly url: string;
  kill(): Promise<void>;
}

function serve(dataDir: string, db: string): Promise<Node> {
  const child = spawn(
    process.execPath,
    [BIN, 'authority', 'serve', '--data-dir', dataDir, '--db', db, '--listen', '127.0.0.1:0', '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => (children.delete(child), resolve())));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void kill();
      reject(new Error(`authority serve did not report listening in 20 s: ${err}`));
    }, 20_000);
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-20_000);
      const m = /authority listening on (http:\/\/[\d.]+:\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1] as string, kill });
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`authority serve exited (${code ?? signal}) before listening: ${err}`));
    });
  });
}

interface WebhookEvent {
  id: string;
  type: string;
  occurredAt: string;
  orgId: string | null;
  keyId: string | null;
  data: Record<string, unknown>;
}

/** The receiver: checks each signature (a bad one is recorded and refused), dedupes by event id. */
class Receiver {
  secret = '';
  status = 200;
  readonly attempts = new Map<string, number>();
  readonly events = new Map<string, WebhookEvent>();
  readonly badSignatures: string[] = [];
  requests = 0;
  #server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        const body = Buffer.concat(chunks);
        const signature = req.headers['volact-signature'];
        if (
          !verifyWebhookSignature(this.secret, typeof signature === 'string' ? signature : undefined, body, Date.now())
        ) {
          this.badSignatures.push(String(signature));
          res.writeHead(400).end();
          return;
        }
        const event = JSON.parse(body.toString('utf8')) as WebhookEvent;
        expect(req.headers['volact-event-id']).toBe(event.id);
        expect(req.headers['volact-event-type']).toBe(event.type);
        this.attempts.set(event.id, (this.attempts.get(event.id) ?? 0) + 1);
        if (this.status >= 200 && this.status < 300) this.events.set(event.id, event);
        res.writeHead(this.status).end();
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server?.address() as AddressInfo).port}/volact`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.#server?.close(() => resolve()));
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function post(url: string, body: unknown): Promise<{ status: number; body: { error?: { code: string } } }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { error?: { code: string } } };
}

beforeAll(async () => {
  postgres = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  postgres?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('signed webhooks across a node killed with SIGKILL', () => {
  it('every event arrives exactly once after dedupe by id, every signature valid', async () => {
    const db = await (postgres as TestPostgres).createDatabase();
    const dataDir = join(dir, 'authority');
    const store = ['--data-dir', dataDir, '--db', db];
    await volact('authority', 'init', ...store);
    const group = await volactJson<{ id: string }>('authority', 'group', 'add', ...store, '--name', 'office14');
    const mak = await volactJson<{ key: string; keyId: string }>(
      'authority', 'key', 'mint', ...store, '--type', 'mak', '--group', 'office14', '--limit', '10',
    ); // prettier-ignore
    const host = await volactJson<{ key: string; keyId: string }>(
      'authority', 'key', 'mint', ...store, '--type', 'kms-host', '--group', 'office14', '--hosts', '1',
    ); // prettier-ignore
    const makLast5 = mak.key.replace(/-/g, '').slice(-5);
    const iid = (hw: string) =>
      makeInstallationId({ kind: 'installation', key: parseKey(mak.key), hardwareId: hw, groupIds: [group.id] }).text;

    const receiver = new Receiver();
    await receiver.start();
    const events = [
      'key.usage',
      'key.limit_raised',
      'key.revoked',
      'host.activated',
      'activation.refused',
      'raise_request.created',
      'raise_request.decided',
    ];
    const added = await volactJson<{ endpoint: { id: string; secretLast5: string }; secret: string }>(
      'authority', 'webhook', 'add', receiver.url, ...store, ...events.flatMap((e) => ['--event', e]),
    ); // prettier-ignore
    receiver.secret = added.secret;
    expect(added.secret.slice(-5)).toBe(added.endpoint.secretLast5);
    // A plain-http endpoint off this machine is refused, naming why.
    await expect(
      volact('authority', 'webhook', 'add', 'http://hooks.example.com/x', ...store, '--event', 'key.usage'),
    ).rejects.toThrow(/WEBHOOK_INVALID.*only to this machine/);

    let node = await serve(dataDir, db);
    try {
      // Delivered while the receiver answers: 80 % and 90 % of the MAK.
      for (let i = 1; i <= 9; i++)
        expect(
          (await post(`${node.url}/v1/activations`, { key: mak.key, installationId: iid(`pc-${i}`) })).status,
        ).toBe(201);
      await until('80 and 90 % delivered', () => receiver.events.size === 2);

      // The receiver fails: everything from here waits in the outbox and the delivery log.
      receiver.status = 503;
      expect((await post(`${node.url}/v1/activations`, { key: mak.key, installationId: iid('pc-10') })).status).toBe(
        201,
      );
      for (const hw of ['pc-11', 'pc-12']) {
        const r = await post(`${node.url}/v1/activations`, { key: mak.key, installationId: iid(hw) });
        expect(r.body.error?.code).toBe('MAK_LIMIT_REACHED');
      }
      await volact('authority', 'key', 'raise', mak.key, ...store, '--limit', '20');
      const pair = () => Buffer.from(generateSigningKeyPair().publicKeyRaw).toString('base64');
      const h1 = await post(`${node.url}/v1/host-activations`, {
        hostKey: host.key,
        hostPublicKey: pair(),
        hardwareId: 'host-1',
      });
      expect(h1.status).toBe(201);
      const h2 = await post(`${node.url}/v1/host-activations`, {
        hostKey: host.key,
        hostPublicKey: pair(),
        hardwareId: 'host-2',
      });
      expect(h2.body.error?.code).toBe('HOST_LIMIT_REACHED');
      await volact('authority', 'key', 'revoke', mak.key, ...store);
      // Refused again within the hour: audited, but no second activation.refused for the key.
      const revoked = await post(`${node.url}/v1/activations`, { key: mak.key, installationId: iid('pc-13') });
      expect(revoked.body.error?.code).toBe('KEY_REVOKED');

      // Waiting: 100 %, refused (MAK), raised, host activated, refused (host), revoked: with the first two, 8.
      await until('every waiting event tried once', () => receiver.attempts.size === 8, 30_000);
      await node.kill(); // SIGKILL: between the change and its delivery
      receiver.status = 200;
      node = await serve(dataDir, db);
      await until('every event delivered by the new node', () => receiver.events.size === 8, 90_000);
      // The outbox agrees: every delivery recorded as delivered, so nothing else is due to come.
      const outbox = new pg.Client({ connectionString: db });
      await outbox.connect();
      try {
        await until('every delivery row delivered', async () => {
          const { rows } = await outbox.query<{ state: string; n: string }>(
            'SELECT state, count(*) AS n FROM webhook_deliveries GROUP BY state',
          );
          return rows.length === 1 && rows[0]?.state === 'delivered' && Number(rows[0].n) === 8;
        });
      } finally {
        await outbox.end();
      }
    } finally {
      await node.kill();
      await receiver.stop();
    }

    expect(receiver.badSignatures).toEqual([]);
    const got = [...receiver.events.values()].map((e) => {
      const { threshold, code } = e.data as { threshold?: number; code?: string };
      return `${e.type}${threshold !== undefined ? `:${threshold}` : ''}${code ? `:${code}` : ''}`;
    });
    expect(got.sort()).toEqual(
      [
        'key.usage:80',
        'key.usage:90',
        'key.usage:100',
        'activation.refused:MAK_LIMIT_REACHED',
        'activation.refused:HOST_LIMIT_REACHED',
        'host.activated',
        'key.revoked',
        'key.limit_raised',
      ].sort(),
    );
    for (const e of receiver.events.values()) {
      expect(e.orgId).toBe('org_default');
      expect(JSON.stringify(e)).not.toContain(mak.key);
      expect(JSON.stringify(e)).not.toContain(host.key);
    }
    const usage = [...receiver.events.values()].find((e) => e.type === 'key.usage' && e.data.threshold === 100);
    expect(usage?.data).toEqual({ threshold: 100, used: 10, limit: 10, keyLast5: makLast5 });
    expect(usage?.keyId).toBe(mak.keyId);

    // The delivery log: each of the 8 events delivered once (generation 0), some after 503s.
    const log = await volactJson<{ deliveries: { id: string; state: string; attempts: number; eventId: string }[] }>(
      'authority', 'webhook', 'deliveries', added.endpoint.id, ...store,
    ); // prettier-ignore
    expect(log.deliveries).toHaveLength(8);
    expect(log.deliveries.every((d) => d.state === 'delivered')).toBe(true);
    expect(log.deliveries.filter((d) => d.attempts >= 2)).toHaveLength(6);
    // Redeliver: the same event id again (the receiver dedupes it).
    const again = await volactJson<{ id: string; eventId: string; state: string }>(
      'authority', 'webhook', 'redeliver', log.deliveries[0]!.id, ...store,
    ); // prettier-ignore
    expect(again).toMatchObject({ eventId: log.deliveries[0]!.eventId, state: 'pending' });
    const listed = await volactJson<{ endpoints: { id: string; secretLast5: string }[] }>(
      'authority', 'webhook', 'list', ...store,
    ); // prettier-ignore
    expect(listed.endpoints).toEqual([
      expect.objectContaining({ id: added.endpoint.id, secretLast5: added.endpoint.secretLast5 }),
    ]);
    expect(JSON.stringify(listed)).not.toContain(added.secret);
    await volact('authority', 'webhook', 'remove', added.endpoint.id, ...store);
    expect((await volactJson<{ endpoints: unknown[] }>('authority', 'webhook', 'list', ...store)).endpoints).toEqual(
      [],
    );
  }, 240_000);
});
