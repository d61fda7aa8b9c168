import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority } from '@volact/authority';
import { Licence } from '@volact/client';
import { AGENT_API_VERSION, ManualClock, agentProbeProofAt, sha256 } from '@volact/core';
import { DB_FILE, VolumeConsole } from './console.js';

/**
 * What an agent answers is its machine user's to choose (they control the agent): the console
 * stores a status only within its bounds, and only the fields it declares. The agent here is a
 * fake that proves the token like a real one, then answers GET /v1/status with what a test says.
 */
const TOKEN = 'console-agent-status-token-0123456';

let root: string;
let clock: ManualClock;
/** A real installation's status, as a real agent answers GET /v1/status. */
let genuine: Record<string, unknown>;
const servers: http.Server[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-console-agent-status-'));
  clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
  const authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  const product = await authority.productConfig('office14');
  await authority.close();
  const licence = Licence.init({ stateDir: join(root, 'machine'), product, hardwareId: 'hw-1', clock });
  genuine = {
    ...JSON.parse(JSON.stringify(licence.status())),
    userOperations: false,
    agent: { version: AGENT_API_VERSION },
  } as Record<string, unknown>;
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  rmSync(root, { recursive: true, force: true });
});

/** An agent that proves its token (and takes the console's enrolment), answering `status` as given. */
async function fakeAgent(status: () => unknown): Promise<string> {
  let token = TOKEN;
  let enrolled = false;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://agent');
      const send = (code: number, body: unknown) =>
        res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (url.pathname === '/v1/probe') {
        const nonce = url.searchParams.get('nonce') ?? '';
        const socket = req.socket;
        return send(200, {
          agent: { version: AGENT_API_VERSION },
          enrolled,
          proof: agentProbeProofAt(sha256(Buffer.from(token)), nonce, socket.localAddress ?? '', socket.localPort ?? 0),
        });
      }
      if (req.headers.authorization !== `Bearer ${token}`) {
        return send(401, { error: { code: 'UNAUTHORIZED', message: 'no' } });
      }
      if (url.pathname === '/v1/enrol' && req.method === 'POST') {
        token = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { token: string }).token;
        enrolled = true;
        return send(200, { enrolled: true });
      }
      if (url.pathname === '/v1/status') return send(200, status());
      return send(404, { error: { code: 'NOT_FOUND', message: 'no route' } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let n = 0;
/** A console with one machine (the fake agent answering `status`); refreshed once. */
async function refreshed(status: () => unknown) {
  const dir = join(root, `console-${++n}`);
  const c = VolumeConsole.init(dir, { clock });
  await c.addMachines([await fakeAgent(status)], TOKEN, ['pc']);
  const [result] = await c.refresh();
  return { c, dir, result };
}

describe("the console reads an agent's status within bounds", () => {
  it('stores a genuine status as it came', async () => {
    const { c, result } = await refreshed(() => genuine);
    expect(result).toMatchObject({ ok: true, state: genuine.state });
    const [row] = await c.history('pc');
    expect(row?.status).toMatchObject({ state: genuine.state, clientMachineId: genuine.clientMachineId });
    await c.close();
  });

  it('refuses an oversize lastAttempt message, naming the field; nothing is stored', async () => {
    const { c, result } = await refreshed(() => ({
      ...genuine,
      lastAttempt: { at: '2026-11-25T09:00:00.000Z', ok: false, code: 'KMS_TIMEOUT', message: 'x'.repeat(100_000) },
    }));
    expect(result).toMatchObject({ ok: false, code: 'AGENT_BAD_RESPONSE' });
    expect(result?.message).toMatch(/lastAttempt\.message: .*65536/);
    expect(await c.history('pc')).toEqual([]);
    await c.close();
  });

  it('keeps the first 2 000 characters of a long but plausible message', async () => {
    const long = `${'d'.repeat(1_990)}0123456789${'e'.repeat(3_000)}`;
    const { c, result } = await refreshed(() => ({
      ...genuine,
      lastAttempt: { at: '2026-11-25T09:00:00.000Z', ok: false, code: 'DNS_TIMEOUT', message: long },
    }));
    expect(result).toMatchObject({ ok: true });
    const [row] = await c.history('pc');
    expect(row?.status).toMatchObject({ lastAttempt: { message: long.slice(0, 2_000) } });
    await c.close();
  });

  it.each([
    ['negative', -1],
    ['fractional', 2.5],
  ])('refuses a %s count, naming the field', async (_, count) => {
    const { c, result } = await refreshed(() => ({ ...genuine, count }));
    expect(result).toMatchObject({ ok: false, code: 'AGENT_BAD_RESPONSE' });
    expect(result?.message).toMatch(/\(count: /);
    expect(await c.history('pc')).toEqual([]);
    await c.close();
  });

  it('stores no field it does not know (a newer agent is still read): not in the history, not in the database', async () => {
    const unknown = 'u'.repeat(100 * 1024);
    const { c, dir, result } = await refreshed(() => ({
      ...genuine,
      unknownField: unknown,
      lastAttempt: { at: '2026-11-25T09:00:00.000Z', ok: true, message: 'activated', extra: unknown },
      agent: { version: AGENT_API_VERSION, build: unknown },
    }));
    expect(result).toMatchObject({ ok: true });
    const [row] = await c.history('pc');
    expect(row?.status).toMatchObject({ state: genuine.state, lastAttempt: { ok: true, message: 'activated' } });
    expect(row?.status).not.toHaveProperty('unknownField');
    expect(row?.status.lastAttempt).not.toHaveProperty('extra');
    await c.close();
    // Not anywhere in the database either (the status is stored as JSON in it).
    expect(readFileSync(join(dir, DB_FILE)).includes('uuuuuuuuuuuuuuuu')).toBe(false);
  });
});
