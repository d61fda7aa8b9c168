import {
  chmodSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { MINUTE, ManualClock, makeInstallationId, parseKey } from '@volact/core';
import { Authority } from './authority.js';
import { AuthorityError } from './errors.js';
import { createAuthorityServer } from './http.js';
import { startTestPostgres, type TestPostgres } from './postgres-test-server.js';

/** The authority under database faults and abuse: each test reproduces the fault for real. */
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'volact-faults-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const mode = (path: string) => statSync(path).mode & 0o777;
/** The root key file init made: roots/<keyId>.pem (relative to the data directory). */
const rootKeyFile = (dir: string) => join('roots', readdirSync(join(dir, 'roots'))[0] as string);
const thrown = (fn: () => unknown): AuthorityError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof AuthorityError) return err;
    throw new Error(`expected an AuthorityError, got ${String(err)}`);
  }
  throw new Error('expected an error');
};

describe('the data directory', () => {
  it('tightens a 0755 directory and 0644 files (authority.db, root key) to 0700 / 0600 at start', async () => {
    const dir = join(tempDir(), 'a');
    await Authority.init(dir).close();
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'roots'), 0o755);
    const files = ['authority.db', rootKeyFile(dir), 'key-hash.secret'];
    for (const f of files) chmodSync(join(dir, f), 0o644);
    const a = Authority.open(dir);
    await a.listGroups();
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'roots'))).toBe(0o700);
    for (const f of files) expect(mode(join(dir, f))).toBe(0o600);
    await a.close();
  });

  it('init into an existing 0755 directory leaves it 0700 and authority.db 0600', async () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    await Authority.init(dir).close();
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'authority.db'))).toBe(0o600);
  });
});

describe('damaged files name the file and the fix', () => {
  const initialised = async () => {
    const dir = join(tempDir(), 'a');
    await Authority.init(dir).close();
    return dir;
  };

  it('a truncated root key file (roots/<keyId>.pem)', async () => {
    const dir = await initialised();
    const path = join(dir, rootKeyFile(dir));
    truncateSync(path, 40);
    const err = thrown(() => Authority.open(dir));
    expect(err.code).toBe('AUTHORITY_FILE_DAMAGED');
    expect(err.message).toContain(path);
    expect(err.message).toContain('restore');
    expect(err.message).not.toContain('ERR_OSSL_UNSUPPORTED:');
  });

  it('a truncated key-hash.secret (any text decodes as base64: it must not hash keys differently)', async () => {
    const dir = await initialised();
    const path = join(dir, 'key-hash.secret');
    writeFileSync(path, readFileSync(path, 'utf8').slice(0, 20));
    const err = thrown(() => Authority.open(dir));
    expect(err.code).toBe('AUTHORITY_FILE_DAMAGED');
    expect(err.message).toContain(path);
    expect(err.message).toContain('restore');
  });

  it.each([
    ['garbage bytes', (p: string) => writeFileSync(p, Buffer.alloc(8192, 0x5a))],
    ['zero length', (p: string) => truncateSync(p, 0)],
  ])('authority.db with %s', async (_name, damage) => {
    const dir = await initialised();
    const path = join(dir, 'authority.db');
    rmSync(`${path}-wal`, { force: true });
    rmSync(`${path}-shm`, { force: true });
    damage(path);
    const err = thrown(() => Authority.open(dir));
    expect(err.code).toBe('STORE_DAMAGED');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/restore authority\.db from its backup/);
  });
});

describe('rate limits cannot be dodged', () => {
  let app: FastifyInstance;
  let authority: Authority;
  afterEach(async () => {
    await app.close();
    await authority.close();
  });

  const setUp = async (options: { activationsPerMinute?: number; bulkConfirmationsPerMinute?: number }) => {
    const clock = new ManualClock();
    authority = Authority.init(join(tempDir(), 'a'), { clock });
    const group = await authority.addGroup({ name: 'office14' });
    const { key } = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 1000 });
    app = createAuthorityServer(authority, { ...options, adminToken: 'the-right-admin-token-0123456789', clock });
    return { clock, key, group };
  };

  it('a re-spelled key (lower case, no dashes, O for 0) counts against the same per-key limit', async () => {
    const { key, group } = await setUp({ activationsPerMinute: 3 });
    const spellings = [key, key.toLowerCase(), key.replace(/-/g, ''), key.replace(/0/g, 'O').toLowerCase(), key];
    const statuses: number[] = [];
    for (const [i, spelling] of spellings.entries()) {
      const iid = makeInstallationId({
        kind: 'installation',
        key: parseKey(key),
        hardwareId: `hw-${i}`,
        groupIds: [group.id],
      }).text;
      const res = await app.inject({
        method: 'POST',
        url: '/v1/activations',
        remoteAddress: `10.0.0.${i + 1}`, // a new source each time: only the key limit applies
        payload: { key: spelling, installationId: iid },
      });
      statuses.push(res.statusCode);
    }
    expect(statuses).toEqual([201, 201, 201, 429, 429]);
  });

  it('bulk confirmations count each item against its key, across sources', async () => {
    const { key, group, clock } = await setUp({ bulkConfirmationsPerMinute: 5 });
    const iids = (from: number, n: number) =>
      Array.from(
        { length: n },
        (_, i) =>
          makeInstallationId({
            kind: 'installation',
            key: parseKey(key),
            hardwareId: `bulk-${from + i}`,
            groupIds: [group.id],
          }).text,
      );
    const bulk = (installationIds: string[], remoteAddress: string) =>
      app.inject({ method: 'POST', url: '/v1/confirmations/bulk', remoteAddress, payload: { installationIds } });
    const first = (await bulk(iids(0, 4), '10.1.0.1')).json<{ results: { ok: boolean }[] }>();
    expect(first.results.map((r) => r.ok)).toEqual([true, true, true, true]);
    // Another console, same key: one item left this minute, whatever the source's own budget.
    const second = (await bulk(iids(4, 3), '10.1.0.2')).json<{
      results: { ok: boolean; error?: { code: string } }[];
    }>();
    expect(second.results.map((r) => r.ok)).toEqual([true, false, false]);
    expect(second.results[1]?.error?.code).toBe('RATE_LIMITED');
    clock.advance(MINUTE);
    const later = (await bulk(iids(5, 2), '10.1.0.3')).json<{ results: { ok: boolean }[] }>();
    expect(later.results.map((r) => r.ok)).toEqual([true, true]);
  });

  it('throttles admin-token guessing per source, before the compare (429 says nothing of the token); guesses from many addresses cannot lock the admin out', async () => {
    const { clock, key } = await setUp({});
    const guess = (token: string, remoteAddress: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/admin/keys/show',
        remoteAddress,
        headers: { authorization: `Bearer ${token}` },
        payload: { key },
      });
    const statuses: number[] = [];
    for (let i = 0; i < 300; i++) statuses.push((await guess(`wrong-${i}`, '10.2.0.1')).statusCode);
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(10).every((s) => s === 429)).toBe(true);
    const limited = await guess('the-right-admin-token-0123456789', '10.2.0.1');
    expect(limited.statusCode).toBe(429); // the source is throttled, right token or not
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Spread over many addresses: each address has its own budget, and the total is only logged,
    // so the publisher's own address still gets in with the right token (no global lock-out).
    const spread: number[] = [];
    for (let i = 0; i < 300; i++) spread.push((await guess(`wrong-${i}`, `10.3.${i >> 8}.${i & 255}`)).statusCode);
    expect(spread.every((s) => s === 401)).toBe(true);
    expect((await guess('the-right-admin-token-0123456789', '10.4.0.1')).statusCode).toBe(200);
    clock.advance(MINUTE);
    expect((await guess('the-right-admin-token-0123456789', '10.2.0.1')).statusCode).toBe(200);
  });
});

describe('PostgreSQL down', () => {
  let postgres: TestPostgres;
  beforeAll(async () => {
    postgres = await startTestPostgres();
  }, 120_000);
  afterAll(() => postgres?.stop());

  it('a node started while PostgreSQL is down answers 503 STORE_UNAVAILABLE (health too) and recovers when it returns', async () => {
    const db = await postgres.createDatabase();
    const dir = join(tempDir(), 'a');
    const init = Authority.init(dir, { databaseUrl: db });
    await init.addGroup({ name: 'office14' });
    const { key } = await init.mintKey({ type: 'mak', groups: ['office14'], limit: 10 });
    const group = await init.group('office14');
    await init.close();

    postgres.halt();
    const authority = Authority.open(dir, { databaseUrl: db });
    const app = createAuthorityServer(authority);
    try {
      const health = await app.inject({ method: 'GET', url: '/v1/health' });
      expect(health.statusCode).toBe(503);
      expect(health.json()).toMatchObject({ status: 'unavailable', database: 'unreachable' });
      const iid = makeInstallationId({
        kind: 'installation',
        key: parseKey(key),
        hardwareId: 'hw-1',
        groupIds: [group.id],
      }).text;
      const activate = () =>
        app.inject({ method: 'POST', url: '/v1/activations', payload: { key, installationId: iid } });
      const refused = await activate();
      expect(refused.statusCode).toBe(503);
      expect(refused.json().error.code).toBe('STORE_UNAVAILABLE');
      expect(refused.headers['retry-after']).toBeDefined();
      expect(refused.body).not.toContain(key);
      // The database's host, port and name are the operator's business, not the caller's.
      const { hostname, port, pathname } = new URL(db);
      for (const body of [refused.body, health.body]) {
        expect(body).not.toContain(`${hostname}:${port}`);
        expect(body).not.toContain(pathname.slice(1));
      }

      postgres.resume();
      let answered = refused;
      for (let i = 0; i < 100 && answered.statusCode === 503; i++) {
        await new Promise((r) => setTimeout(r, 200));
        answered = await activate();
      }
      expect(answered.statusCode).toBe(201);
      expect((await app.inject({ method: 'GET', url: '/v1/health' })).json()).toMatchObject({
        status: 'ok',
        database: 'ok',
      });
    } finally {
      await app.close();
      await authority.close();
    }
  }, 60_000);
});
