import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serveParent } from './child.js';

/**
 * A slow-connection flood (slowloris) for the `under flood` scenario: `perSource` connections
 * from each of `sources` loopback addresses (127.0.9.1, 127.0.9.2, …: Linux routes all of
 * 127/8 to lo, so binding the local address gives each its own source), each writing a valid
 * request one byte every `byteEveryMs`, and reconnecting `reconnectMs` after the host closes
 * it, as flood tools do. Nothing it sends ever completes a request.
 */
export interface FloodOptions {
  readonly port: number;
  readonly sources: number;
  readonly perSource: number;
  readonly byteEveryMs: number;
  /** How long a closed connection waits before it reconnects. */
  readonly reconnectMs: number;
  /** The bytes trickled (a framed request). */
  readonly stream: Buffer;
}

export interface FloodStats {
  /** Connections attempted (including reconnections). */
  readonly attempts: number;
  /** Connections of the flood open right now (from its side). */
  readonly open: number;
}

export class SlowFlood {
  readonly #sockets = new Set<Socket>();
  #attempts = 0;
  #stopped = false;

  constructor(private readonly o: FloodOptions) {}

  start(): void {
    for (let s = 0; s < this.o.sources; s++) {
      const source = `127.0.9.${s + 1}`;
      for (let i = 0; i < this.o.perSource; i++) this.#slot(source);
    }
  }

  stats(): FloodStats {
    return { attempts: this.#attempts, open: this.#sockets.size };
  }

  stop(): void {
    this.#stopped = true;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  #slot(source: string): void {
    if (this.#stopped) return;
    this.#attempts++;
    const socket = connect({ host: '127.0.0.1', port: this.o.port, localAddress: source });
    this.#sockets.add(socket);
    let sent = 0;
    let drip: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      const one = () => {
        if (sent < this.o.stream.length && !socket.destroyed) socket.write(this.o.stream.subarray(sent, ++sent));
      };
      one();
      drip = setInterval(one, this.o.byteEveryMs);
      drip.unref();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(drip);
      this.#sockets.delete(socket);
      if (!this.#stopped) setTimeout(() => this.#slot(source), this.o.reconnectMs).unref();
    });
  }
}

/**
 * `node flood.js PORT SOURCES PER_SOURCE BYTE_EVERY_MS RECONNECT_MS STREAM_HEX`: the flood in a
 * child process of its own, so that its thousands of sockets and timers take nothing from the
 * load generator's event loop (command `stats`; it stops when its stdin closes).
 */
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [port, sources, perSource, byteEveryMs, reconnectMs, hex] = process.argv.slice(2);
  const flood = new SlowFlood({
    port: Number(port),
    sources: Number(sources),
    perSource: Number(perSource),
    byteEveryMs: Number(byteEveryMs),
    reconnectMs: Number(reconnectMs),
    stream: Buffer.from(hex ?? '', 'hex'),
  });
  flood.start();
  serveParent({}, { stats: () => ({ ...flood.stats() }) }, () => {
    flood.stop();
    return Promise.resolve();
  });
}
