import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  HostErrorCode,
  HOUR,
  MINUTE,
  MessageType,
  decodeActivationResponse,
  decodeErrorResponse,
  messageTypeOf,
} from '@volact/core';
import { NewClientIdLimiter } from './new-client-id-limit.js';
import { startKmsHost, type RunningKmsHost } from './host.js';
import { defaultKmsPolicy } from './kms-service.js';
import { askAllFrom, createActivatedHost, requestPayload, type HostFixture } from './test-fixture.js';

describe('NewClientIdLimiter', () => {
  it('lets a source take perMinute at once, then refills at perMinute a minute', () => {
    const l = new NewClientIdLimiter(60);
    const t = 1_000_000;
    for (let i = 0; i < 60; i++) expect(l.take('a', t)).toBe(true);
    expect(l.take('a', t)).toBe(false);
    expect(l.take('b', t)).toBe(true); // per source
    expect(l.take('a', t + 999)).toBe(false);
    expect(l.take('a', t + 1_000)).toBe(true); // 60 a minute: one a second
    expect(l.take('a', t + 1_000)).toBe(false);
    for (let i = 0; i < 60; i++) expect(l.take('a', t + 2 * MINUTE)).toBe(true);
    expect(l.take('a', t + 2 * MINUTE)).toBe(false);
  });

  it('forgets sources idle for a minute (memory follows the active sources)', () => {
    const l = new NewClientIdLimiter(5);
    for (let i = 0; i < 1000; i++) l.take(`10.0.${i >> 8}.${i & 255}`, 0);
    expect(l.sources).toBe(1000);
    l.take('10.9.9.9', MINUTE);
    expect(l.sources).toBe(1);
  });

  it('a clock stepping back refills nothing', () => {
    const l = new NewClientIdLimiter(1);
    expect(l.take('a', 10 * MINUTE)).toBe(true);
    expect(l.take('a', 5 * MINUTE)).toBe(false);
    expect(l.take('a', 11 * MINUTE)).toBe(true);
  });
});

const counts = (answers: Buffer[]) =>
  answers
    .filter((p) => messageTypeOf(p) === MessageType.ActivationResponse)
    .map((p) => decodeActivationResponse(p).count)
    .sort((a, b) => a - b);
const refusals = (answers: Buffer[]) =>
  answers.filter((p) => messageTypeOf(p) === MessageType.ErrorResponse).map((p) => decodeErrorResponse(p).code);

describe('KMS host: new client IDs per source and minute', () => {
  let fx: HostFixture;
  let host: RunningKmsHost;
  const count = () => host.counts()[0]?.count;

  beforeEach(async () => {
    fx = await createActivatedHost();
    host = await startKmsHost({
      dataDir: fx.hostDir,
      listen: { host: '127.0.0.1', port: 0 },
      clock: fx.clock,
      policy: { ...defaultKmsPolicy, clientIdWindow: HOUR, newClientIdsPerMinute: 5 },
    });
  });
  afterEach(async () => {
    await host.close();
    await fx.cleanup();
  });

  it('refuses a source inflating the count with made-up IDs (TOO_MANY_NEW_CLIENT_IDS, count unchanged); renewals and other sources go on', async () => {
    const port = host.address.port;
    const known = Array.from({ length: 5 }, () => randomBytes(16));
    const first = await askAllFrom(
      '127.0.4.1',
      port,
      known.map((clientId) => requestPayload(fx.group.id, { clientId })),
    );
    expect(counts(first)).toEqual([1, 2, 3, 4, 5]);

    // 1 000 made-up IDs from the same source in the same minute: none counted.
    const flood = await askAllFrom(
      '127.0.4.1',
      port,
      Array.from({ length: 1000 }, () => requestPayload(fx.group.id)),
    );
    expect(flood.every((p) => messageTypeOf(p) === MessageType.ErrorResponse)).toBe(true);
    const e = decodeErrorResponse(flood[0]!);
    expect(e.code).toBe(HostErrorCode.TOO_MANY_NEW_CLIENT_IDS);
    expect(e.message).toContain('127.0.4.1');
    expect(e.message).toContain('5 new client IDs a minute');
    expect(count()).toBe(5);
    expect(host.statistics()).toMatchObject({ totalRequests: 1005, failedRequests: 1000 });

    // The clients already counted renew from that source as usual, however many times.
    const renewals = await askAllFrom('127.0.4.1', port, [
      ...known.map((clientId) => requestPayload(fx.group.id, { clientId })),
      ...known.map((clientId) => requestPayload(fx.group.id, { clientId })),
    ]);
    expect(counts(renewals)).toEqual(Array(10).fill(5));

    // Another source has its own allowance.
    const other = await askAllFrom('127.0.4.2', port, [requestPayload(fx.group.id)]);
    expect(decodeActivationResponse(other[0]!).count).toBe(6);

    // A minute later the first source may add five more (and no more).
    fx.clock.advance(MINUTE);
    const later = await askAllFrom(
      '127.0.4.1',
      port,
      Array.from({ length: 6 }, () => requestPayload(fx.group.id)),
    );
    // (A refusal is sent at once, signed answers after their batch: matched by kind, not order.)
    expect(counts(later)).toEqual([7, 8, 9, 10, 11]);
    expect(refusals(later)).toEqual([HostErrorCode.TOO_MANY_NEW_CLIENT_IDS]);
    expect(count()).toBe(11);
  });

  it('an ID that left the window is new again and takes from the allowance', async () => {
    const port = host.address.port;
    const clientId = randomBytes(16);
    await askAllFrom('127.0.4.3', port, [requestPayload(fx.group.id, { clientId })]);
    fx.clock.advance(HOUR + MINUTE); // out of the window, and the allowance is full again
    const fill = await askAllFrom(
      '127.0.4.3',
      port,
      Array.from({ length: 5 }, () => requestPayload(fx.group.id)),
    );
    expect(counts(fill)).toEqual([1, 2, 3, 4, 5]);
    const [again] = await askAllFrom('127.0.4.3', port, [requestPayload(fx.group.id, { clientId })]);
    expect(decodeErrorResponse(again!).code).toBe(HostErrorCode.TOO_MANY_NEW_CLIENT_IDS);
    expect(count()).toBe(5);
  });
});
