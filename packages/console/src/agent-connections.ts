import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';

/** How a console keeps its connections to agents open between calls. */
export interface AgentConnectionOptions {
  /** Keep connections open between calls (default true); false: a new connection per call. */
  readonly keepAlive?: boolean;
  /** Connections open at once to one agent (default 4). */
  readonly maxSocketsPerAgent?: number;
  /** Idle connections kept across all agents (default 4 096); past it, a connection closes after its call. */
  readonly maxIdle?: number;
  /** How long an idle connection is kept (default 60 s; less when the agent announces less). */
  readonly idleTimeoutMs?: number;
  /**
   * Past `maxIdle`: connections kept briefly after their call (default 256 at most; past it,
   * the longest kept of them closes), so the call that follows a probe still reuses its
   * connection; 0: none (past maxIdle, a connection closes after its call).
   */
  readonly maxBriefIdle?: number;
  /** How long a briefly kept connection waits for its next call (default 2 s). */
  readonly briefIdleMs?: number;
}

export const AGENT_CONNECTION_DEFAULTS = {
  maxSocketsPerAgent: 4,
  maxIdle: 4_096,
  idleTimeoutMs: 60_000,
  maxBriefIdle: 256,
  briefIdleMs: 2_000,
} as const;

/**
 * The idle sockets of both agents: at `max`, a socket whose call ended is not kept for long
 * (Node's own total bound, maxTotalSockets, stalls calls to a new host while idle sockets fill
 * it). The ones kept stay until their idle timeout: an operation over more machines than the
 * bound (every machine, in turn) then still finds that many connections open the next time,
 * where closing the longest idle would close each one just before it is called again. Past the
 * bound, up to `briefMax` more are kept `briefMs` (then closed; the longest kept of them closes
 * first when another comes): every operation probes a machine and then calls it, and that call
 * reuses the probe's connection rather than open one.
 */
class IdleSockets {
  readonly #idle = new Set<Socket>();
  readonly #brief = new Map<Socket, NodeJS.Timeout>();
  constructor(
    readonly max: number,
    readonly briefMax: number,
    readonly briefMs: number,
  ) {}

  /** Whether the socket may stay open, idle. */
  keep(socket: Socket): boolean {
    if (!socketsWatched.has(socket)) {
      socketsWatched.add(socket);
      socket.once('close', () => {
        this.#idle.delete(socket);
        this.#forgetBrief(socket);
      });
    }
    this.#forgetBrief(socket);
    if (this.#idle.has(socket) || this.#idle.size < this.max) {
      this.#idle.add(socket);
      return true;
    }
    if (this.briefMax === 0) return false;
    if (this.#brief.size >= this.briefMax) {
      // The longest kept of them goes: its machine's call after the probe is most likely made.
      const [oldest] = this.#brief.keys();
      if (oldest) {
        this.#forgetBrief(oldest);
        oldest.destroy();
      }
    }
    // A timer of its own, not the socket's timeout (Node's handler of that searches every host's free list).
    const timer = setTimeout(() => socket.destroy(), this.briefMs);
    timer.unref();
    this.#brief.set(socket, timer);
    return true;
  }

  #forgetBrief(socket: Socket): void {
    const timer = this.#brief.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#brief.delete(socket);
  }

  clear(): void {
    this.#idle.clear();
    for (const timer of this.#brief.values()) clearTimeout(timer);
    this.#brief.clear();
  }

  reused(socket: Socket): void {
    this.#idle.delete(socket);
    this.#forgetBrief(socket);
  }

  get size(): number {
    return this.#idle.size + this.#brief.size;
  }
}
const socketsWatched = new WeakSet<Socket>();

function bounded<A extends typeof http.Agent>(Base: A, idle: IdleSockets): A {
  // Both classes share these two methods (https.Agent extends http.Agent).
  return class extends (Base as typeof http.Agent) {
    override keepSocketAlive(socket: Socket): boolean {
      // Node answers whether the socket may stay (false: the agent announced a too short timeout).
      if (!(super.keepSocketAlive(socket) as unknown as boolean)) return false;
      return idle.keep(socket);
    }
    override reuseSocket(socket: Socket, request: http.ClientRequest): void {
      idle.reused(socket);
      super.reuseSocket(socket, request);
    }
  } as unknown as A;
}

/**
 * The connections one console holds to its agents: a keep-alive http.Agent and https.Agent of
 * its own (never Node's global ones), closed with the console. A call reuses an idle
 * connection only to the same host, port and, for https://, the same CA, client certificate
 * and server name (Node's pool key), so a connection opened to one IP address is never used
 * for a call pinned to another, and a reused TLS connection is one whose handshake verified
 * the agent's certificate and showed this console's. TLS sessions are not resumed: every new
 * connection makes a full handshake (the agent checks the client certificate on each).
 */
export class AgentConnections {
  readonly http: http.Agent | undefined;
  readonly https: https.Agent | undefined;
  readonly #idle: IdleSockets | undefined;

  constructor(options: AgentConnectionOptions = {}) {
    if (options.keepAlive === false) return;
    const perAgent = options.maxSocketsPerAgent ?? AGENT_CONNECTION_DEFAULTS.maxSocketsPerAgent;
    const settings = {
      keepAlive: true,
      maxSockets: perAgent,
      maxFreeSockets: perAgent,
      timeout: options.idleTimeoutMs ?? AGENT_CONNECTION_DEFAULTS.idleTimeoutMs,
      scheduling: 'lifo' as const,
    };
    this.#idle = new IdleSockets(
      options.maxIdle ?? AGENT_CONNECTION_DEFAULTS.maxIdle,
      options.maxBriefIdle ?? AGENT_CONNECTION_DEFAULTS.maxBriefIdle,
      options.briefIdleMs ?? AGENT_CONNECTION_DEFAULTS.briefIdleMs,
    );
    this.http = new (bounded(http.Agent, this.#idle))(settings);
    this.https = new (bounded(https.Agent, this.#idle))({ ...settings, maxCachedSessions: 0 });
  }

  /** The agent for a URL's scheme; undefined without keep-alive (a new connection per call). */
  for(isHttps: boolean): http.Agent | undefined {
    return isHttps ? this.https : this.http;
  }

  /** Idle connections held now (those kept briefly past maxIdle included). */
  get idle(): number {
    return this.#idle?.size ?? 0;
  }

  /** Closes every connection, idle or not (with the console). */
  close(): void {
    this.http?.destroy();
    this.https?.destroy();
    this.#idle?.clear();
  }
}
