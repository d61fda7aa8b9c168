import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

/**
 * A port the system says is free on 127.0.0.1 (TCP; with `udp`, also free for UDP), for a
 * server started on loopback by tests, benchmarks and the demo — never a well-known port.
 */
export async function freeLoopbackPort(options: { udp?: boolean } = {}): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    if (!options.udp) return port;
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = createSocket('udp4');
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    });
    if (udpFree || attempt >= 20) return port;
  }
}

/** A server could not start because its port was taken meanwhile (another process got it first). */
export class PortTakenError extends Error {
  constructor(
    readonly port: number,
    detail: string,
  ) {
    super(`port ${port} on 127.0.0.1 was taken before the server bound it: ${detail}`);
    this.name = 'PortTakenError';
  }
}

/** What servers log when their port is taken: PostgreSQL, slapd (errno 98), named. */
export const PORT_TAKEN_LOG = /could not bind|address already in use|address in use|errno=98\b/i;

/**
 * Starts a loopback server on a port from `pick` (default freeLoopbackPort): between picking a
 * free port and the server binding it another process may take it (tests run in parallel). When
 * `start` throws PortTakenError, it is tried again on a new port, up to `attempts` times.
 */
export async function onFreeLoopbackPort<T>(
  start: (port: number) => Promise<T>,
  options: { pick?: () => Promise<number>; udp?: boolean; attempts?: number } = {},
): Promise<T> {
  const pick = options.pick ?? (() => freeLoopbackPort({ udp: options.udp === true }));
  const attempts = options.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await pick());
    } catch (err) {
      if (!(err instanceof PortTakenError) || attempt >= attempts) throw err;
    }
  }
}

/**
 * Whether process `pid` itself listens on TCP `port` (Linux /proc: a LISTEN socket of that port
 * among the process's open files); undefined where /proc cannot tell. A port answering is not
 * enough: another process may hold it.
 */
export function listensOn(pid: number, port: number): boolean | undefined {
  let inodes: Set<string>;
  try {
    inodes = new Set<string>();
    let tables = 0;
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text: string;
      try {
        text = readFileSync(table, 'utf8');
        tables++;
      } catch {
        continue;
      }
      for (const line of text.split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        if (fields[1]?.endsWith(`:${hex}`) && fields[3] === '0A' && fields[9] !== undefined) inodes.add(fields[9]);
      }
    }
    if (tables === 0) return undefined;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && existsSync('/proc/self/fd')) return false; // gone
      throw err;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) return true;
    }
    return false;
  } catch {
    return undefined;
  }
}
