import { connect } from 'node:net';
import { FrameError, FrameReader, MAX_RESPONSE_SIZE, frame, CoreError } from '@volact/core';
import { ClientError } from './errors.js';
import { formatKmsAddress, type KmsAddress } from './kms-address.js';

/** The port KMS hosts listen on unless configured otherwise (named in the advice below). */
const DEFAULT_KMS_PORT = 1688;

/**
 * A length prefix no KMS host sends: "HTTP" (an HTTP server's status line), other printable
 * text (a banner: "SSH-", "220 "), or a length far beyond any response. The address is then
 * not a KMS host, which the user fixes by changing the port, not by retrying; a merely too
 * large length (a host of a later protocol version?) stays a malformed response.
 */
function notAKmsHost(err: FrameError, where: string): ClientError | null {
  if (err.prefix.length < 4) return null;
  const advice = `check the port (KMS hosts listen on ${DEFAULT_KMS_PORT} by default)`;
  const text = err.prefix.toString('latin1');
  if (text === 'HTTP')
    return new ClientError(
      'KMS_MALFORMED_RESPONSE',
      `${where} answered like an HTTP server, not a KMS host; ${advice}`,
    );
  if (/^[\x20-\x7e]{4}$/.test(text)) {
    return new ClientError(
      'KMS_MALFORMED_RESPONSE',
      `${where} answered with text ("${text}…"), not as a KMS host; ${advice}`,
    );
  }
  if (err.declaredLength > 0xffff) {
    return new ClientError(
      'KMS_MALFORMED_RESPONSE',
      `${where} sent a length prefix of ${err.declaredLength} bytes (a KMS host sends at most ${MAX_RESPONSE_SIZE}): it is not a KMS host; ${advice}`,
    );
  }
  return null;
}

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
        const foreign = err instanceof FrameError ? notAKmsHost(err, where) : null;
        finish(
          foreign ??
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
