/**
 * The baseline: a bare TCP server with the same transport shape as the KMS host (Node `net`,
 * noDelay, length-prefixed frames, one write per answer) but no work per request — each request
 * frame is answered with one fixed, pre-built frame as large as a real signed response. The
 * host's throughput divided by this one shows what the KMS logic, signing and logging cost on
 * top of Node's TCP handling and the load generator.
 *
 * `node baseline-process.js`; command `response` {size} sets the answer's payload size.
 */
import { createServer, type Socket } from 'node:net';
import { MessageType, PROTOCOL_VERSION, frame } from '@volact/core';
import { serveParent } from './child.js';
import { FrameScanner } from './frames.js';

/** Same limit as the host's MAX_REQUEST_FRAME. */
const MAX_REQUEST = 1024;

function responseOfSize(size: number): Buffer {
  const payload = Buffer.alloc(size);
  payload[0] = PROTOCOL_VERSION;
  payload[1] = MessageType.ActivationResponse;
  return frame(payload);
}

let response = responseOfSize(600);

const sockets = new Set<Socket>();
const server = createServer({ noDelay: true }, (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
  const scanner = new FrameScanner(() => {
    if (!socket.destroyed) socket.write(response);
  }, MAX_REQUEST);
  socket.on('data', (chunk: Buffer) => {
    try {
      scanner.push(chunk);
    } catch {
      socket.destroy();
    }
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const address = server.address();
if (!address || typeof address === 'string') throw new Error('no TCP address');

serveParent(
  { port: address.port },
  {
    response: (msg) => {
      const size = Number(msg.size);
      if (!Number.isInteger(size) || size < 2 || size > 65_535) throw new Error(`bad size ${String(msg.size)}`);
      response = responseOfSize(size);
      return { size };
    },
  },
  () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
);
