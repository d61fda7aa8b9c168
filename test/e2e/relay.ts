import { connect } from 'node:net';
import { FrameReader, encodeActivationRequest, frame, type ActivationRequest } from '@volact/core';

/** Forwards one request to a real host and resolves with its response payload. */
export function exchange(request: ActivationRequest, address: string): Promise<Buffer> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const reader = new FrameReader(64 * 1024);
    const socket = connect(Number(port), host, () => socket.write(frame(encodeActivationRequest(request))));
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      const [payload] = reader.push(chunk);
      if (payload) {
        resolve(Buffer.from(payload));
        socket.destroy();
      }
    });
  });
}
