import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { ManualClock, agentProbeProofAt, sha256, type ProductConfig } from '@volact/core';
import { DB_FILE, KEY_FILE, SecretBox, SqliteConsoleStore } from '@volact/console';
import { runCliInProcess } from './cli-in-process.js';

/**
 * Issue 11: the console ⇄ agent enrolment against real agents on real sockets, driven through
 * the CLI: a rogue relay swept by discovery gets no token, per-machine tokens, rotation, the
 * agent's own authority list, agent text stripped on the operator's terminal, and a console.db
 * that is empty or garbage.
 */
const FLEET = 'fleet-enrolment-token-e2e-0123456789';
const T0 = Date.UTC(2026, 10, 25, 9);

let root: string;
let product: ProductConfig;
let tokenFile: string;
const clock = new ManualClock(T0);
const closers: (() => Promise<unknown>)[] = [];

const cli = (...args: string[]) => runCliInProcess(args);

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-console-enrol-'));
  const authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  await authority.close();
  tokenFile = join(root, 'fleet.token');
  writeFileSync(tokenFile, `${FLEET}\n`, { mode: 0o600 });
});
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
/** A real installation behind a real agent on `host`:`port` (0: any free port). */
async function startAgent(
  host = '127.0.0.1',
  port = 0,
): Promise<{ app: FastifyInstance; stateDir: string; port: number }> {
  const stateDir = join(root, `machine-${++n}`);
  Licence.init({ stateDir, product, hardwareId: `hw-${n}`, clock });
  const app = createAgentServer({ stateDir, adminToken: FLEET, clock, timeoutMs: 2_000 });
  await app.listen({ host, port });
  closers.push(() => app.close());
  return { app, stateDir, port: (app.server.address() as { port: number }).port };
}

/** Each machine's token as the console keeps it, unsealed with its key file, by machine name. */
async function machineTokens(dataDir: string): Promise<Record<string, string>> {
  const box = new SecretBox(Buffer.from(readFileSync(join(dataDir, KEY_FILE), 'utf8').trim(), 'base64'));
  const store = new SqliteConsoleStore(join(dataDir, DB_FILE), { readOnly: true });
  try {
    const out: Record<string, string> = {};
    for (const m of await store.listMachines()) {
      const t = await store.getToken(m.tokenId);
      if (t) out[m.name] = box.unseal(t.sealed, `token:${t.fingerprint}`, 'test');
    }
    return out;
  } finally {
    await store.close();
  }
}

async function httpStatus(address: string, method: string, path: string, token: string, body?: object) {
  const res = await fetch(`http://${address}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  await res.arrayBuffer();
  return res.status;
}

/**
 * The attacker of issue 11: a TCP relay at another loopback address that forwards every
 * connection to a real agent and keeps what the console sent. Whatever bearer token it sees,
 * it uses at once against the real agent: re-points it at its own KMS host and asks it to
 * activate at a fake authority.
 */
async function startRogueRelay(host: string, port: number, target: { host: string; port: number }) {
  const seen: Buffer[] = [];
  const stolen: string[] = [];
  const sockets = new Set<Socket>();
  const server: TcpServer = createTcpServer((inbound) => {
    const outbound = connect(target.port, target.host);
    sockets.add(inbound).add(outbound);
    inbound.on('data', (chunk: Buffer) => {
      seen.push(chunk);
      const token = /authorization: *bearer +(\S+)/i.exec(chunk.toString('latin1'))?.[1];
      if (token) stolen.push(token);
      outbound.write(chunk);
    });
    outbound.on('data', (chunk: Buffer) => inbound.write(chunk));
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    seen: () => Buffer.concat(seen).toString('latin1'),
    stolen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('issue 11: a rogue relay swept by discovery', () => {
  it('discover --range over a real agent and a relay to it at another address: the relay gets no token, the agent is not reconfigured', async () => {
    const real = await startAgent('127.0.0.1');
    // The relay at 127.0.0.2, the same port: `--range 127.0.0.1-127.0.0.2:PORT` sweeps both.
    const relay = await startRogueRelay('127.0.0.2', real.port, { host: '127.0.0.1', port: real.port });
    closers.push(relay.close);
    const dataDir = join(root, 'console-relay');
    expect((await cli('console', 'init', '--data-dir', dataDir)).code).toBe(0);
    const r = await cli(
      'console',
      'discover',
      '--range',
      `127.0.0.1-127.0.0.2:${real.port}`,
      '--token-file',
      tokenFile,
      '--data-dir',
      dataDir,
      '--json',
    );
    const result = JSON.parse(r.stdout) as {
      found: { address: string }[];
      refused: { address: string; code: string }[];
    };
    expect(result.found.map((f) => f.address)).toEqual([`127.0.0.1:${real.port}`]);
    expect(result.refused).toEqual([
      expect.objectContaining({ address: `127.0.0.2:${real.port}`, code: 'PROOF_FAILED' }),
    ]);
    // The relay saw the probe go by, and no token: no Authorization header at all.
    expect(relay.seen()).toContain('GET /v1/probe?nonce=');
    expect(relay.seen()).not.toMatch(/authorization/i);
    expect(relay.seen()).not.toContain(FLEET);
    expect(relay.stolen).toEqual([]);
    // The console never added the relay, and the real agent kept its configuration.
    expect((await machineTokens(dataDir))[`127.0.0.2:${real.port}`]).toBeUndefined();
    const status = Licence.open({ stateDir: real.stateDir, clock }).status();
    expect(status.host).toBeNull();
    expect(status.lastAttempt).toBeNull();
    // And the fleet token the console started with opens the real agent no more.
    expect(await httpStatus(`127.0.0.1:${real.port}`, 'PUT', '/v1/kms-host', FLEET, { address: 'rogue:1688' })).toBe(
      401,
    );
  });

  it('a known machine whose address now answers through a relay is marked untrusted and never called again', async () => {
    const real = await startAgent('127.0.0.1');
    const dataDir = join(root, 'console-moved');
    await cli('console', 'init', '--data-dir', dataDir);
    // Added at 127.0.0.3:PORT, where a relay to the real agent answers (the address was taken over).
    const relay = await startRogueRelay('127.0.0.3', real.port, { host: '127.0.0.1', port: real.port });
    closers.push(relay.close);
    const address = `127.0.0.3:${real.port}`;
    expect(
      (
        await cli(
          'console',
          'machine',
          'add',
          address,
          '--name',
          'pc-1',
          '--token-file',
          tokenFile,
          '--data-dir',
          dataDir,
        )
      ).code,
    ).toBe(0);
    const first = await cli('console', 'refresh', '--data-dir', dataDir, '--json');
    expect(first.code).toBe(1);
    expect(JSON.parse(first.stdout).results[0]).toMatchObject({ machine: 'pc-1', ok: false, code: 'PROOF_FAILED' });
    const second = await cli(
      'console',
      'set-kms-host',
      '--machine',
      'pc-1',
      'kms.evil.example:1688',
      '--data-dir',
      dataDir,
      '--json',
    );
    expect(JSON.parse(second.stdout).results[0]).toMatchObject({ ok: false, code: 'MACHINE_UNTRUSTED' });
    const listed = await cli('console', 'machines', '--data-dir', dataDir);
    expect(listed.stdout).toMatch(/pc-1\t.*\tUNTRUSTED since \d{4}-\d\d-\d\dT/);
    expect(listed.stderr).toMatch(/failed their proof.*console machine enrol/);
    const json = JSON.parse((await cli('console', 'machines', '--data-dir', dataDir, '--json')).stdout);
    expect(json.machines[0].untrusted).toMatchObject({ reason: expect.stringMatching(/did not prove/) });
    // One probe went through the relay; nothing after it, and never a token.
    expect(relay.seen().match(/GET \/v1\/probe/g)).toHaveLength(1);
    // Re-enrolment clears the mark and probes again: still the relay, so marked again, no token sent.
    const reenrol = await cli('console', 'machine', 'enrol', 'pc-1', '--data-dir', dataDir, '--json');
    expect(reenrol.code).toBe(1);
    expect(JSON.parse(reenrol.stdout).results[0]).toMatchObject({ ok: false, code: 'PROOF_FAILED' });
    expect(relay.seen().match(/GET \/v1\/probe/g)).toHaveLength(2);
    expect(relay.seen()).not.toMatch(/authorization/i);
    expect(Licence.open({ stateDir: real.stateDir, clock }).status().host).toBeNull();
  });
});

describe('issue 11: one token per machine', () => {
  it('discovery enrols each agent with its own token; a leaked one opens only its machine; rotate-token replaces them', async () => {
    const a = await startAgent();
    const b = await startAgent();
    const [addrA, addrB] = [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`];
    const dataDir = join(root, 'console-tokens');
    await cli('console', 'init', '--data-dir', dataDir);
    const found = await cli(
      'console',
      'discover',
      '--agents',
      `${addrA},${addrB}`,
      '--token-file',
      tokenFile,
      '--data-dir',
      dataDir,
      '--json',
    );
    expect(found.code, found.stderr).toBe(0);
    expect(JSON.parse(found.stdout).found).toHaveLength(2);
    const tokens = await machineTokens(dataDir);
    const [tokenA, tokenB] = [tokens[addrA] as string, tokens[addrB] as string];
    expect(new Set([tokenA, tokenB, FLEET]).size).toBe(3);
    // The fleet token opens neither; a's token opens a and not b (and cannot re-point b).
    expect(await httpStatus(addrA, 'GET', '/v1/status', FLEET)).toBe(401);
    expect(await httpStatus(addrB, 'GET', '/v1/status', FLEET)).toBe(401);
    expect(await httpStatus(addrA, 'GET', '/v1/status', tokenA)).toBe(200);
    expect(await httpStatus(addrB, 'PUT', '/v1/kms-host', tokenA, { address: 'rogue:1688' })).toBe(401);
    expect(Licence.open({ stateDir: b.stateDir, clock }).status().host).toBeNull();

    const rotated = await cli('console', 'rotate-token', '--all', '--data-dir', dataDir, '--json');
    expect(rotated.code, rotated.stderr).toBe(0);
    const rotation = JSON.parse(rotated.stdout) as { results: { message: string }[] };
    expect(rotation.results.map((r) => r.message)).toEqual(['token rotated', 'token rotated']);
    const after = await machineTokens(dataDir);
    expect(after[addrA]).not.toBe(tokenA);
    expect(await httpStatus(addrA, 'GET', '/v1/status', tokenA)).toBe(401);
    expect(await httpStatus(addrA, 'GET', '/v1/status', after[addrA] as string)).toBe(200);
    expect((await cli('console', 'refresh', '--data-dir', dataDir)).code).toBe(0);
    // The token never shows in the console's output or log.
    const log = await cli('console', 'log', '--data-dir', dataDir, '--json');
    for (const t of [FLEET, tokenA, after[addrA] as string]) expect(rotated.stdout + log.stdout).not.toContain(t);
  });

  it('activate naming an authority the agent was not given is refused by the agent (AUTHORITY_NOT_ALLOWED)', async () => {
    const a = await startAgent();
    const dataDir = join(root, 'console-authority');
    await cli('console', 'init', '--data-dir', dataDir);
    await cli(
      'console',
      'machine',
      'add',
      `127.0.0.1:${a.port}`,
      '--name',
      'pc',
      '--token-file',
      tokenFile,
      '--data-dir',
      dataDir,
    );
    const r = await cli(
      'console',
      'activate',
      '--machine',
      'pc',
      '--authority',
      'https://fake-authority.example',
      '--data-dir',
      dataDir,
      '--json',
    );
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).results[0]).toMatchObject({ ok: false, code: 'AUTHORITY_NOT_ALLOWED' });
    expect(Licence.open({ stateDir: a.stateDir, clock }).status().lastAttempt).toBeNull();
  });
});

/**
 * An agent that speaks the protocol correctly (address-bound proof, enrolment) and reports
 * terminal escape sequences in every string it can.
 */
async function startHostileAgent(): Promise<string> {
  let machineToken: string | null = null;
  const status = {
    state: 'unlicensed',
    method: null,
    expiresAt: null,
    host: '\x1b[2Jkms.example:1688',
    group: '\x1b]0;pwned\x07office14',
    threshold: 5,
    clientMachineId: '\x1b[31mcmid\x1b[0m',
    installedKey: null,
    installedKeyType: null,
    installationId: null,
    count: null,
    directoryObject: null,
    lastAttempt: {
      at: new Date(T0).toISOString(),
      ok: false,
      code: 'KMS_UNREACHABLE',
      message: 'boom\x1b]0;pwned\x07',
    },
    nextAttemptAt: new Date(T0).toISOString(),
    agent: { version: 1 },
  };
  const server: HttpServer = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      const url = new URL(req.url ?? '/', 'http://x');
      const accepted = machineToken ?? FLEET;
      if (url.pathname === '/v1/probe') {
        const proof = agentProbeProofAt(
          sha256(Buffer.from(accepted)),
          url.searchParams.get('nonce') ?? '',
          req.socket.localAddress ?? '',
          req.socket.localPort ?? 0,
        );
        res.end(JSON.stringify({ agent: { version: 1 }, enrolled: machineToken !== null, proof }));
        return;
      }
      if (req.headers.authorization !== `Bearer ${accepted}`) {
        res.statusCode = 401;
        res.end(JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'no' } }));
        return;
      }
      if (url.pathname === '/v1/enrol') {
        machineToken = (JSON.parse(body) as { token: string }).token;
        res.end(JSON.stringify({ enrolled: true }));
        return;
      }
      res.end(JSON.stringify(status));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(resolve)));
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

describe("issue 11: agent text on the operator's terminal", () => {
  it('console machines, reports (table and CSV) carry no escape sequence or control character; JSON keeps them escaped', async () => {
    const address = await startHostileAgent();
    const dataDir = join(root, 'console-escapes');
    await cli('console', 'init', '--data-dir', dataDir);
    const found = await cli(
      'console',
      'discover',
      '--agents',
      address,
      '--token-file',
      tokenFile,
      '--data-dir',
      dataDir,
    );
    expect(found.code, found.stderr).toBe(0);
    const outputs = [
      await cli('console', 'machines', '--data-dir', dataDir),
      await cli('console', 'report', 'unlicensed', '--data-dir', dataDir),
      await cli('console', 'report', 'unlicensed', '--csv', '--data-dir', dataDir),
      await cli('console', 'machine', 'history', address, '--data-dir', dataDir),
      await cli('console', 'refresh', '--data-dir', dataDir),
    ];
    for (const out of outputs) {
      // eslint-disable-next-line no-control-regex
      expect(out.stdout + out.stderr).not.toMatch(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/);
    }
    expect(outputs[0]?.stdout).toContain('office14');
    expect(outputs[2]?.stdout).toMatch(/office14/);
    const json = await cli('console', 'machines', '--data-dir', dataDir, '--json');
    expect(json.stdout).toContain('\\u001b]0;pwned\\u0007office14');
    expect(JSON.parse(json.stdout).machines[0].group).toBe('\x1b]0;pwned\x07office14');
  });
});

describe('issue 11: console.db', () => {
  it('empty, or garbage: every command (a read-only one too) is refused naming the file and the fix; the file is left as it is', async () => {
    const dataDir = join(root, 'console-db');
    await cli('console', 'init', '--data-dir', dataDir, '--json');
    const db = join(dataDir, DB_FILE);
    truncateSync(db, 0);
    for (const args of [['machines'], ['machine', 'list', '--json'], ['refresh']]) {
      const r = await cli('console', ...args, '--data-dir', dataDir);
      const said = r.stdout + r.stderr; // --json: the error on stdout
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(said).toMatch(/CONSOLE_DB_INVALID/);
      expect(said).toContain(`${db} is empty`);
      expect(said).toMatch(/restore it from the backup of the data directory.*console init/);
      expect(statSync(db).size).toBe(0);
    }
    writeFileSync(db, Buffer.alloc(4096, 0x41));
    const garbage = await cli('console', 'machines', '--data-dir', dataDir);
    expect(garbage.code).not.toBe(0);
    expect(garbage.stderr).toContain(`${db} is not an SQLite database`);
    expect(garbage.stderr).not.toMatch(/SQLITE_NOTADB|SQLITE_CORRUPT/);
    expect(readFileSync(db)).toEqual(Buffer.alloc(4096, 0x41));
  });

  it('a data dir and console.db with loose modes are made 0700 and 0600 when the console opens them', async () => {
    const dataDir = join(root, 'console-modes');
    await cli('console', 'init', '--data-dir', dataDir);
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, DB_FILE), 0o644);
    expect((await cli('console', 'machines', '--data-dir', dataDir)).code).toBe(0);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dataDir, DB_FILE)).mode & 0o777).toBe(0o600);
  });
});
