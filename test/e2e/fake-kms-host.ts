import { createServer, type Server } from 'node:net';
import { FrameReader, decodeActivationRequest, frame, type ActivationRequest } from '@volact/core';

/** A TCP server speaking the KMS framing whose answers a test crafts: an emulator, a replayer. */
export async function startFakeKmsHost(
  answer: (request: ActivationRequest) => Buffer | Promise<Buffer>,
): Promise<{ address: string; server: Server }> {
  const server = createServer((socket) => {
    const reader = new FrameReader(1024);
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk) => {
      for (const payload of reader.push(chunk)) {
        void Promise.resolve(answer(decodeActivationRequest(Buffer.from(payload)))).then((p) => socket.write(frame(p)));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${(server.address() as { port: number }).port}`, server };
}
