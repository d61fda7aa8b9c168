import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  HostErrorCode,
  MessageType,
  decodeActivationResponse,
  decodeErrorResponse,
  frame,
  messageTypeOf,
} from '@volact/core';
import { startKmsHost, type RunningKmsHost } from './host.js';
import { MAX_REQUEST_FRAME } from './kms-server.js';
import { ask, createActivatedHost, exchange, requestPayload, type HostFixture } from './test-fixture.js';

function header(length: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(length);
  return b;
}

describe('KMS server framing over TCP', () => {
  let fx: HostFixture;
  let host: RunningKmsHost;
  const count = () => host.counts()[0]?.count;

  beforeEach(async () => {
    fx = await createActivatedHost();
    host = await startKmsHost({
      dataDir: fx.hostDir,
      listen: { host: '127.0.0.1', port: 0 },
      clock: fx.clock,
      connectionLimits: { maxConnections: 4 },
    });
  });
  afterEach(async () => {
    await host.close();
    await fx.cleanup();
  });

  it.each([
    ['a declared length above the limit', header(MAX_REQUEST_FRAME + 1), 'exceeds'],
    ['a huge declared length', header(0xffffffff), 'exceeds'],
    ['a zero length', header(0), 'empty frame'],
  ])(
    'answers %s with one MALFORMED_REQUEST and closes; a request behind it in the same write is not counted',
    async (_, bad, text) => {
      const responses = await exchange(host.address, Buffer.concat([bad, frame(requestPayload(fx.group.id))]), 2);
      expect(responses.length).toBe(1);
      const e = decodeErrorResponse(responses[0]!);
      expect(e.code).toBe(HostErrorCode.MALFORMED_REQUEST);
      expect(e.message).toContain(text);
      expect(count()).toBe(0);
      expect(host.statistics()).toMatchObject({ totalRequests: 1, failedRequests: 1 });
      // the host goes on serving other connections
      expect(decodeActivationResponse(await ask(host.address, requestPayload(fx.group.id))).count).toBe(1);
    },
  );

  it('answers the requests in front of a bad length prefix (same write), then the framing error, then closes', async () => {
    const stream = Buffer.concat([
      frame(requestPayload(fx.group.id)),
      frame(requestPayload(fx.otherGroup.id)),
      frame(requestPayload(fx.group.id)),
      header(0xffffffff),
      frame(requestPayload(fx.group.id)), // behind the bad prefix: never read
    ]);
    const responses = await exchange(host.address, stream, 5);
    const types = responses.map((p) => messageTypeOf(p));
    expect(types.filter((t) => t === MessageType.ActivationResponse).length).toBe(2);
    expect(responses.length).toBe(4);
    const last = decodeErrorResponse(responses[3]!);
    expect(last.code).toBe(HostErrorCode.MALFORMED_REQUEST);
    expect(last.message).toContain('exceeds');
    expect(
      responses
        .slice(0, 3)
        .map((p) => (messageTypeOf(p) === MessageType.ErrorResponse ? decodeErrorResponse(p).code : 'ok')),
    ).toContain(HostErrorCode.GROUP_NOT_SERVED);
    expect(count()).toBe(2);
    expect(host.statistics()).toMatchObject({ totalRequests: 4, failedRequests: 2 });
  });

  it('delivers every answer and the framing error even when the client keeps sending behind the bad prefix', async () => {
    // Closing at once, with the client's bytes still arriving, resets the connection, and the
    // kernel drops the answers it had not sent yet. Many answers make that loss likely.
    const answered = 3000;
    const head = Buffer.concat([
      ...Array.from({ length: answered }, () => frame(requestPayload(fx.otherGroup.id))),
      header(0xffffffff),
    ]);
    const trailing = Buffer.alloc(64 * 1024, 0x41); // "AAAA" would read as another huge length
    for (let connection = 0; connection < 4; connection++) {
      const responses = await exchange(
        host.address,
        [head, ...Array.from({ length: 16 }, () => trailing)],
        answered + 2,
      );
      expect(responses.length).toBe(answered + 1);
      expect(
        responses.slice(0, answered).every((p) => decodeErrorResponse(p).code === HostErrorCode.GROUP_NOT_SERVED),
      ).toBe(true);
      expect(decodeErrorResponse(responses[answered]!).message).toContain('exceeds');
    }
    // nothing behind a bad prefix is read: one failed request per frame in front, one for the prefix
    expect(host.statistics()).toMatchObject({ totalRequests: 4 * (answered + 1), failedRequests: 4 * (answered + 1) });
  });

  it('answers a frame of the maximum length (garbage) with MALFORMED_REQUEST and keeps the connection', async () => {
    const [e, r] = await exchange(
      host.address,
      Buffer.concat([frame(Buffer.alloc(MAX_REQUEST_FRAME, 1)), frame(requestPayload(fx.group.id))]),
      2,
    );
    expect(decodeErrorResponse(e!).code).toBe(HostErrorCode.MALFORMED_REQUEST);
    expect(decodeActivationResponse(r!).count).toBe(1);
  });

  it('answers a garbage payload that starts with another version with UNSUPPORTED_VERSION', async () => {
    const payload = requestPayload(fx.group.id);
    payload[0] = 3;
    expect(decodeErrorResponse(await ask(host.address, payload)).code).toBe(HostErrorCode.UNSUPPORTED_VERSION);
    expect(count()).toBe(0);
  });

  it('reassembles requests written byte by byte and answers each', async () => {
    const stream = Buffer.concat([frame(requestPayload(fx.group.id)), frame(requestPayload(fx.group.id))]);
    const chunks = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
    const responses = await exchange(host.address, chunks, 2);
    expect(responses.map((p) => messageTypeOf(p))).toEqual([
      MessageType.ActivationResponse,
      MessageType.ActivationResponse,
    ]);
    expect(responses.map((p) => decodeActivationResponse(p).count)).toEqual([1, 2]);
  });

  it('a connection closed in the middle of a request counts nothing', async () => {
    const framed = frame(requestPayload(fx.group.id));
    for (const cut of [1, 4, 5, 40, framed.length - 1]) {
      await new Promise<void>((resolve, reject) => {
        const socket = connect(host.address.port, host.address.host, () => socket.end(framed.subarray(0, cut)));
        socket.on('data', () => reject(new Error('the host answered a partial request')));
        socket.on('error', reject);
        socket.on('close', () => resolve());
      });
    }
    // a complete request on a new connection is the first one counted
    expect(decodeActivationResponse(await ask(host.address, requestPayload(fx.group.id))).count).toBe(1);
    expect(host.statistics().totalRequests).toBe(1);
  });

  it('refuses connections beyond maxConnections without reading them', async () => {
    const open = Array.from({ length: 4 }, () => connect(host.address.port, host.address.host));
    try {
      // every one of the four is accepted and served
      await Promise.all(
        open.map(
          (socket) =>
            new Promise<void>((resolve, reject) => {
              socket.once('data', () => resolve());
              socket.once('error', reject);
              socket.write(frame(requestPayload(fx.group.id)));
            }),
        ),
      );
      expect(count()).toBe(4);
      const extra = await exchange(host.address, frame(requestPayload(fx.group.id)), 1);
      expect(extra).toEqual([]);
      expect(count()).toBe(4);
    } finally {
      for (const s of open) s.destroy();
    }
  });
});
