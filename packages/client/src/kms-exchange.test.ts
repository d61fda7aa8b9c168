import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { frame } from '@volact/core';
import { exchangeWithKmsHost } from './kms-exchange.js';
import { ClientError } from './errors.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

/** A TCP server on loopback that answers the first bytes it receives with `answer`. */
async function tcpServer(answer: (socket: Socket) => void): Promise<number> {
  const server: Server = createServer((socket) => {
    socket.once('data', () => answer(socket));
    socket.on('error', () => socket.destroy());
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

async function failure(port: number): Promise<ClientError> {
  const err = await exchangeWithKmsHost({ host: '127.0.0.1', port }, Buffer.alloc(68, 1), 5_000).then(
    () => {
      throw new Error('the exchange succeeded');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ClientError);
  return err as ClientError;
}

describe('exchangeWithKmsHost against something that is not a KMS host', () => {
  it('says an HTTP server answered, with the address and the port to check', async () => {
    const port = await tcpServer((s) =>
      s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'),
    );
    const err = await failure(port);
    expect(err.code).toBe('KMS_MALFORMED_RESPONSE');
    expect(err.message).toBe(
      `127.0.0.1:${port} answered like an HTTP server, not a KMS host; check the port (KMS hosts listen on 1688 by default)`,
    );
    expect(err.message).not.toContain('1213486160');
  });

  it('says so for a real HTTP server too (it refuses the binary request with 400)', async () => {
    const server = createHttpServer((_req, res) => res.end('hello'));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const err = await failure(port);
    expect(err.code).toBe('KMS_MALFORMED_RESPONSE');
    expect(err.message).toContain('answered like an HTTP server, not a KMS host');
  });

  it('names a text banner (SSH, SMTP) as not a KMS host', async () => {
    const port = await tcpServer((s) => s.end('SSH-2.0-OpenSSH_9.6\r\n'));
    const err = await failure(port);
    expect(err.message).toBe(
      `127.0.0.1:${port} answered with text ("SSH-…"), not as a KMS host; check the port (KMS hosts listen on 1688 by default)`,
    );
  });

  it('names an absurd binary length as not a KMS host, and keeps a merely too large one a malformed frame', async () => {
    const absurd = Buffer.from([0x81, 0x00, 0x00, 0x01, 0, 0, 0, 0]);
    const port = await tcpServer((s) => s.end(absurd));
    expect((await failure(port)).message).toContain('sent a length prefix of 2164260865 bytes');

    const large = Buffer.alloc(8);
    large.writeUInt32BE(4000, 0);
    const port2 = await tcpServer((s) => s.end(large));
    const err = await failure(port2);
    expect(err.code).toBe('KMS_MALFORMED_RESPONSE');
    expect(err.message).toBe(`KMS host 127.0.0.1:${port2}: frame of 4000 bytes exceeds the limit of 3895`);
  });

  it('returns the payload of a well-framed answer', async () => {
    const port = await tcpServer((s) => s.end(frame(Buffer.from([1, 3, 0, 1]))));
    const payload = await exchangeWithKmsHost({ host: '127.0.0.1', port }, Buffer.alloc(68), 5_000);
    expect([...payload]).toEqual([1, 3, 0, 1]);
  });
});
