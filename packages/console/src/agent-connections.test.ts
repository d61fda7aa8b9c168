import * as http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { makeTestPki, type TestPki } from '@volact/client/testing';
import { ManualClock, type ProductConfig } from '@volact/core';
import { AgentClient } from './agent-client.js';
import { AgentConnections } from './agent-connections.js';
import { ConsoleError } from './errors.js';
import { TransportError, requestJson } from './http.js';

const TOKEN = 'console-agent-token-0123456789';
const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
let root: string;
let product: ProductConfig;
let pki: TestPki;

beforeAll(async () => {
  pki = makeTestPki();
  root = mkdtempSync(join(tmpdir(), 'volact-console-connections-'));
  const authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  await authority.close();
});
afterAll(() => {
  pki.remove();
  rmSync(root, { recursive: true, force: true });
});

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** Counts the TCP connections a server accepted. */
function counted(server: { on(event: 'connection', f: (s: Socket) => void): unknown }): { count: number } {
  const seen = { count: 0 };
  server.on('connection', () => seen.count++);
  return seen;
}

let m = 0;
async function startAgent(
  options: { tls?: boolean; host?: string } = {},
): Promise<{ address: string; app: FastifyInstance; connections: { count: number } }> {
  const stateDir = join(root, `agent-${++m}`);
  Licence.init({ stateDir, product, hardwareId: `hw-connections-${m}`, clock });
  const app = createAgentServer({
    stateDir,
    adminToken: TOKEN,
    clock,
    ...(options.tls ? { tls: { cert: pki.server.cert, key: pki.server.key, clientCa: pki.ca.cert } } : {}),
  });
  const connections = counted(app.server);
  closers.push(() => app.close());
  await app.listen({ host: options.host ?? '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  return { address: options.tls ? `https://127.0.0.1:${port}` : `127.0.0.1:${port}`, app, connections };
}

function pool(options: ConstructorParameters<typeof AgentConnections>[0] = {}): AgentConnections {
  const connections = new AgentConnections(options);
  closers.push(() => connections.close());
  return connections;
}

describe('keep-alive connections to agents', () => {
  it('the probe and the calls after it share one connection; the proof is checked on the connection used', async () => {
    const agent = await startAgent();
    const connections = pool();
    const client = new AgentClient(agent.address, TOKEN, { connections });
    await client.probe();
    await client.status();
    await client.status();
    // A second client (the next operation) on the same console reuses it too.
    const next = new AgentClient(agent.address, TOKEN, { connections });
    await next.probe();
    expect((await next.status()).machine).toMatchObject({ os: expect.any(String) });
    expect(agent.connections.count).toBe(1);
    expect(connections.idle).toBe(1);

    // Without keep-alive: a connection per call, none kept.
    const without = pool({ keepAlive: false });
    const fresh = new AgentClient(agent.address, TOKEN, { connections: without });
    await fresh.probe();
    await fresh.status();
    expect(agent.connections.count).toBe(3);
    expect(without.idle).toBe(0);

    // A wrong token still fails the proof over a reused connection, and sends nothing after it.
    const wrong = new AgentClient(agent.address, 'another-token-0123456789abcdef', { connections });
    const failed = await wrong.probe().then(
      () => null,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(ConsoleError);
    expect((failed as ConsoleError).code).toBe('PROOF_FAILED');
    expect(agent.connections.count).toBe(3);
  });

  it('a connection kept to one IP address is never used for a call pinned to another', async () => {
    // One server on every loopback address: 127.0.0.1 and 127.0.0.2 are two ends of it.
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ local: req.socket.localAddress }));
    });
    const accepted = counted(server);
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    closers.push(() => new Promise((resolve) => server.close(resolve)));
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const connections = pool();
    const call = (connectTo?: string) =>
      requestJson({ url, method: 'GET', timeoutMs: 5_000, connections, ...(connectTo ? { connectTo } : {}) });
    expect((await call()).peer?.address).toBe('127.0.0.1');
    const pinned = await call('127.0.0.2');
    expect(pinned.peer?.address).toBe('127.0.0.2');
    expect(pinned.body).toEqual({ local: '127.0.0.2' });
    expect((await call('127.0.0.2')).peer?.address).toBe('127.0.0.2');
    expect((await call()).peer?.address).toBe('127.0.0.1');
    expect(accepted.count).toBe(2);
  });

  it('mutual TLS: a connection made with this console’s certificate serves only calls with it', async () => {
    const agent = await startAgent({ tls: true });
    const connections = pool();
    const tls = { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key };
    const client = new AgentClient(agent.address, TOKEN, { tls, connections });
    await client.probe();
    await client.status();
    expect(agent.connections.count).toBe(1);
    // The same console's pool, another client certificate (of another CA): a new handshake, refused.
    const rogue = new AgentClient(agent.address, TOKEN, {
      tls: { ...tls, cert: pki.rogue.cert, key: pki.rogue.key },
      connections,
    });
    const refused = await rogue.status().then(
      () => null,
      (err: unknown) => err,
    );
    expect((refused as ConsoleError).code).toBe('AGENT_UNREACHABLE');
    expect((refused as ConsoleError).message).toMatch(/refused this console's client certificate/);
    // No certificate at all: refused too, never the kept connection.
    const bare = new AgentClient(agent.address, TOKEN, {
      tls: { ...tls, cert: undefined, key: undefined } as never,
      connections,
    });
    expect(
      await bare.status().then(
        () => 'answered',
        (err: unknown) => (err as ConsoleError).code,
      ),
    ).toBe('AGENT_UNREACHABLE');
    expect(agent.connections.count).toBe(3);
    // The kept one still serves its own console.
    await client.status();
    expect(agent.connections.count).toBe(3);
  });

  it('a kept connection the agent dropped: GET and PUT go again on a new one, a POST is not sent twice', async () => {
    // Answers the first request of each connection, resets the connection on the second.
    const requests: string[] = [];
    const server: Server = createServer((socket) => {
      let seen = 0;
      let buffered = '';
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        while (buffered.includes('\r\n\r\n')) {
          const head = buffered.slice(0, buffered.indexOf('\r\n\r\n'));
          const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          const end = buffered.indexOf('\r\n\r\n') + 4 + length;
          if (buffered.length < end) return;
          buffered = buffered.slice(end);
          requests.push(head.split(' ')[0] ?? '');
          if (++seen > 1) {
            socket.resetAndDestroy();
            return;
          }
          const body = '{"ok":true}';
          socket.write(
            `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`,
          );
        }
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(resolve)));
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/x`);
    const connections = pool();
    const call = (method: 'GET' | 'PUT' | 'POST') =>
      requestJson({ url, method, timeoutMs: 5_000, connections, ...(method === 'GET' ? {} : { body: {} }) });

    expect((await call('GET')).body).toEqual({ ok: true });
    expect((await call('GET')).body).toEqual({ ok: true }); // reset on the kept one, sent again
    expect((await call('PUT')).body).toEqual({ ok: true });
    expect(requests).toEqual(['GET', 'GET', 'GET', 'PUT', 'PUT']);
    requests.length = 0;
    const post = await call('POST').then(
      () => null,
      (err: unknown) => err,
    );
    expect(post).toBeInstanceOf(TransportError);
    expect((post as TransportError).kind).toBe('unreachable');
    expect(requests).toEqual(['POST']);
  });

  it('bounded: past maxIdle idle connections, one is kept briefly (the call after a probe reuses it), then closed; close() closes all', async () => {
    const agents = [await startAgent(), await startAgent(), await startAgent(), await startAgent()];
    const connections = pool({ maxIdle: 2, maxBriefIdle: 1, briefIdleMs: 150 });
    // The probe and the call after it share one connection, past the bound too.
    for (const agent of agents.slice(0, 3)) {
      const client = new AgentClient(agent.address, TOKEN, { connections });
      await client.probe();
      await client.status();
    }
    expect(agents.map((a) => a.connections.count)).toEqual([1, 1, 1, 0]);
    expect(connections.idle).toBe(3);
    // Past both bounds: the fourth agent's connection takes the third's brief place.
    const fourth = agents[3] as (typeof agents)[number];
    const client = new AgentClient(fourth.address, TOKEN, { connections });
    await client.probe();
    await client.status();
    expect(agents.map((a) => a.connections.count)).toEqual([1, 1, 1, 1]);
    expect(connections.idle).toBe(3);
    await new AgentClient((agents[2] as (typeof agents)[number]).address, TOKEN, { connections }).probe();
    expect(agents.map((a) => a.connections.count)).toEqual([1, 1, 2, 1]);
    // The brief one closes after briefIdleMs: the third agent is then called on a new connection.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(connections.idle).toBe(2);
    for (const agent of agents) await new AgentClient(agent.address, TOKEN, { connections }).probe();
    expect(agents.map((a) => a.connections.count)).toEqual([1, 1, 3, 2]);
    connections.close();
    expect(connections.idle).toBe(0);
  });

  it('bounded, none kept briefly: at most maxIdle idle connections across agents, past it one closes after its call', async () => {
    const agents = [await startAgent(), await startAgent(), await startAgent()];
    const connections = pool({ maxIdle: 2, maxBriefIdle: 0 });
    for (const agent of agents) await new AgentClient(agent.address, TOKEN, { connections }).probe();
    expect(connections.idle).toBe(2);
    // The third agent's connection was closed after its call: calling it again opens a new
    // one; the first two are reused.
    for (const agent of agents) await new AgentClient(agent.address, TOKEN, { connections }).probe();
    expect(agents.map((a) => a.connections.count)).toEqual([1, 1, 2]);
    expect(connections.idle).toBe(2);
    connections.close();
    expect(connections.idle).toBe(0);
  });
});
