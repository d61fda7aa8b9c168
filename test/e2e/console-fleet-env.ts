import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { Authority, createAuthorityServer } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import type { ManualClock, ProductConfig } from '@volact/core';
import { HostState, activateHostOnline, startKmsHost, type RunningKmsHost } from '@volact/kms-host';

/**
 * The parts of the console's fleet acceptance test (console-fleet-web.test.ts): an authority
 * that serves no network at all once its KMS host is activated, a real KMS host, agents on
 * consecutive loopback ports (each with its own host name, each able to hold its answers), the
 * built CLI as child processes (`console serve`, `authority confirm-file`) and the UI built by
 * Vite.
 */

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** The built `volact` binary, as users run it. */
export const BIN = join(REPO, 'bin/volact.js');

export interface FleetAuthority {
  readonly dataDir: string;
  readonly authority: Authority;
  readonly product: ProductConfig;
  readonly host: RunningKmsHost;
  hostAddress(): string;
  close(): Promise<void>;
}

/**
 * An authority in `dataDir` with group office14 (KMS threshold `threshold`) and a KMS host
 * activated online against it; the authority's HTTP server is closed right after: from then on
 * nothing can reach the authority but its data directory (a process on the "connected" side).
 */
export async function startFleetAuthority(
  root: string,
  clock: ManualClock,
  threshold: number,
): Promise<FleetAuthority> {
  const dataDir = join(root, 'authority');
  const authority = Authority.init(dataDir, { clock });
  await authority.addGroup({ name: 'office14', threshold });
  const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
  const api = createAuthorityServer(authority);
  await api.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
  const hostDir = join(root, 'kms-host');
  await activateHostOnline(HostState.installKey(hostDir, key, 'fleet-host-hw', clock.now()), url, { clock });
  await api.close();
  const host = await startKmsHost({
    dataDir: hostDir,
    listen: { host: '127.0.0.1', port: 0 },
    clock,
    flushIntervalMs: 50,
  });
  const product = await authority.productConfig('office14');
  return {
    dataDir,
    authority,
    product,
    host,
    hostAddress: () => `127.0.0.1:${host.address.port}`,
    async close() {
      await host.close();
      await authority.close();
    },
  };
}

export interface FleetAgent {
  readonly hostName: string;
  readonly port: number;
  readonly address: string;
  readonly stateDir: string;
  readonly app: FastifyInstance;
  /** While set, every call to this agent waits (its answer is held) until `release()`. */
  hold(): void;
  release(): void;
  /** Calls that came in since the start. */
  calls: number;
}

export interface AgentFleet {
  readonly agents: FleetAgent[];
  /**
   * `127.0.0.1:P1-P2`: the agents' ports, with a service that is no agent (404) before them and
   * one that never answers after them.
   */
  readonly range: string;
  readonly probed: number;
  close(): Promise<void>;
}

/**
 * A loopback HTTP service that is not an agent, as a range sweep also meets them: one that
 * answers 404 to everything (`refuse`), or one that never answers (`silent`: the probe times out).
 */
async function listenNotAnAgent(port: number, mode: 'refuse' | 'silent'): Promise<Server> {
  const server = createServer((_req, res) => {
    if (mode === 'silent') return;
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not an agent\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * `count` real agents (each over its own licence store, host name `fleet-NN`) on consecutive
 * loopback ports, with a service that refuses (404) on the port before and one that never
 * answers on the port after: a range sweep of `range` probes count + 2 ports, finds exactly
 * these agents, one refusal and one silent address (the sweep waits for it: its progress shows).
 */
export async function startAgentFleet(
  root: string,
  product: ProductConfig,
  clock: ManualClock,
  token: string,
  count: number,
): Promise<AgentFleet> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    const opened: { close(): Promise<void> }[] = [];
    const agents: FleetAgent[] = [];
    try {
      const before = await listenNotAnAgent(base - 1, 'refuse');
      opened.push({ close: () => closeServer(before) });
      for (let i = 0; i < count; i++) {
        const hostName = `fleet-${String(i + 1).padStart(2, '0')}`;
        const stateDir = join(root, 'machines', `${hostName}-${base}`);
        if (!existsSync(stateDir)) {
          mkdirSync(join(stateDir, '..'), { recursive: true });
          Licence.init({ stateDir, product, hardwareId: `hw-${hostName}`, clock });
        }
        const app = createAgentServer({ stateDir, adminToken: token, clock, timeoutMs: 5_000, facts: { hostName } });
        let gate: { promise: Promise<void>; open: () => void } | null = null;
        const agent: FleetAgent = {
          hostName,
          port: base + i,
          address: `127.0.0.1:${base + i}`,
          stateDir,
          app,
          calls: 0,
          hold() {
            if (gate) return;
            let open = () => undefined as void;
            const promise = new Promise<void>((resolve) => (open = resolve));
            gate = { promise, open };
          },
          release() {
            gate?.open();
            gate = null;
          },
        };
        app.addHook('onRequest', async () => {
          agent.calls++;
          if (gate) await gate.promise;
        });
        await app.listen({ host: '127.0.0.1', port: base + i });
        opened.push({ close: () => app.close() });
        agents.push(agent);
      }
      const after = await listenNotAnAgent(base + count, 'silent');
      opened.push({ close: () => closeServer(after) });
      return {
        agents,
        range: `127.0.0.1:${base - 1}-${base + count}`,
        probed: count + 2,
        async close() {
          for (const a of agents) a.release();
          for (const o of opened.reverse()) await o.close();
        },
      };
    } catch (err) {
      for (const a of agents) a.release();
      for (const o of opened.reverse()) await o.close().catch(() => undefined);
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error(`no ${count + 2} free consecutive loopback ports found`);
}

export interface ServedConsole {
  readonly child: ChildProcess;
  /** http://127.0.0.1:PORT/ */
  readonly url: string;
  stderr(): string;
  readonly exited: Promise<number | null>;
}

/**
 * `volact console serve --data-dir D --listen 127.0.0.1:PORT …` (the built CLI) as a child
 * process; resolves once it says where it listens.
 */
export async function serveConsole(
  children: ChildProcess[],
  dataDir: string,
  listen: string,
  ...flags: string[]
): Promise<ServedConsole> {
  const child = spawn(
    process.execPath,
    [BIN, 'console', 'serve', '--data-dir', dataDir, '--listen', listen, ...flags],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /console at (http\S+)/.exec(out);
      if (m) resolve(m[1]!.endsWith('/') ? m[1]! : `${m[1]!}/`);
    });
    void exited.then((code) => reject(new Error(`console serve exited ${code}: ${out}${err}`)));
  });
  return { child, url, stderr: () => err, exited };
}

/**
 * A node preload that makes this process's every outgoing connection fail loudly (TCP connect,
 * UDP send, DNS look-ups) and says so on stderr: a child started with it has no network path.
 */
export function writeNoNetworkPreload(dir: string): string {
  const path = join(dir, 'no-network.mjs');
  writeFileSync(
    path,
    `import net from 'node:net';
import dgram from 'node:dgram';
import dns from 'node:dns';
const refuse = (what) => {
  process.stderr.write('NETWORK-ATTEMPT ' + what + '\\n');
  throw new Error('no network here: ' + what);
};
net.Socket.prototype.connect = function () { refuse('tcp connect'); };
dgram.Socket.prototype.send = function () { refuse('udp send'); };
dns.lookup = function () { refuse('dns lookup'); };
dns.promises.lookup = async function () { refuse('dns lookup'); };
dns.promises.Resolver.prototype.resolveSrv = async function () { refuse('dns srv'); };
globalThis.fetch = async function () { refuse('fetch'); };
`,
  );
  return path;
}

/**
 * Runs the built CLI (`node bin/volact.js …`) as a child process; `preload`: a node --import
 * module; `until`: stop it (SIGKILL) as soon as its stderr matches.
 */
export async function runVolact(
  args: readonly string[],
  options: { preload?: string; until?: RegExp } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const nodeArgs = [...(options.preload ? ['--import', options.preload] : []), BIN, ...args];
  return new Promise((resolve) => {
    const child = execFile(process.execPath, nodeArgs, { cwd: REPO, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end();
    if (options.until) {
      let err = '';
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        if (options.until!.test(err)) child.kill('SIGKILL');
      });
    }
  });
}
