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
