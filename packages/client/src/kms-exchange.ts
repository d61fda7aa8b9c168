import { connect } from 'node:net';
import { FrameReader, MAX_RESPONSE_SIZE, frame, CoreError } from '@volact/core';
import { ClientError } from './errors.js';
import { formatKmsAddress, type KmsAddress } from './kms-address.js';

/** One request frame out, one response frame back, then the connection is closed. */
export function exchangeWithKmsHost(address: KmsAddress, request: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const where = formatKmsAddress(address);
    const reader = new FrameReader(MAX_RESPONSE_SIZE);
    let settled = false;
    let connected = false;
    const socket = connect({ host: address.host, port: address.port, noDelay: true });
    const finish = (err: Error | null, payload?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(payload as Buffer);
    };
    const timer = setTimeout(
      () => finish(new ClientError('KMS_TIMEOUT', `KMS host ${where} did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('connect', () => {
      connected = true;
      socket.write(frame(request));
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        const [payload] = reader.push(chunk);
        if (payload) finish(null, Buffer.from(payload));
      } catch (err) {
        finish(
          new ClientError(
            'KMS_MALFORMED_RESPONSE',
            `KMS host ${where}: ${err instanceof CoreError ? err.message : 'bad frame'}`,
          ),
        );
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) =>
      finish(
        connected
          ? new ClientError(
              'KMS_MALFORMED_RESPONSE',
              `KMS host ${where} broke the connection: ${err.code ?? err.message}`,
            )
          : new ClientError(
              'KMS_UNREACHABLE',
              `cannot connect to KMS host ${where}: ${err.code ?? err.message}; is \`volact host serve\` running there and the port open?`,
            ),
      ),
    );
    socket.on('end', () =>
      finish(new ClientError('KMS_MALFORMED_RESPONSE', `KMS host ${where} closed the connection without a response`)),
    );
  });
}
