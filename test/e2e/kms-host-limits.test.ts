import { spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HostErrorCode,
  ManualClock,
  MessageType,
  decodeActivationResponse,
  decodeErrorResponse,
  frame,
  messageTypeOf,
} from '@volact/core';
import { askAllFrom, createActivatedHost, requestPayload, type HostFixture } from '@volact/kms-host/testing';
import { BIN, serveHost } from './host-serve.js';

/**
 * The connection limits as users set them: `volact host serve` (the built binary) with the
 * limit flags, driven over real sockets from several 127.0.x.y source addresses.
 */

let fx: HostFixture;
const children: ChildProcess[] = [];

beforeAll(async () => {
  fx = await createActivatedHost(new ManualClock(Date.now()));
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await fx?.cleanup();
});

const serve = (dataDir: string, ...flags: string[]) => serveHost(children, dataDir, ...flags);

/** Opens a connection from `localAddress`; resolves with how long the host kept it (ms). */
function heldFor(port: number, localAddress: string, drip?: Buffer): { closed: Promise<number>; socket: Socket } {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  let t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let sent = 0;
  socket.on('connect', () => {
    t0 = performance.now();
    if (drip) timer = setInterval(() => socket.write(drip.subarray(sent, ++sent)), 50);
  });
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) =>
    socket.on('close', () => {
      clearInterval(timer);
      resolve(performance.now() - t0);
    }),
  );
  return { closed, socket };
}

describe('volact host serve: connection limits and the new-client-ID limit from its flags', () => {
  it('caps connections per source, closes a slow request at --frame-deadline, refuses new IDs over --new-client-ids-per-minute', async () => {
    const dir = join(fx.tempDir, 'limits');
    cpSync(fx.hostDir, dir, { recursive: true });
    const { child, port } = await serve(
      dir,
      '--max-connections-per-source',
      '2',
      '--header-deadline',
      '2s',
      '--frame-deadline',
      '300ms',
      '--new-client-ids-per-minute',
      '3',
    );
    try {
      // Two silent connections from one address are held; the third is closed at once.
      const a = heldFor(port, '127.0.5.1');
      const b = heldFor(port, '127.0.5.1');
      await new Promise((resolve) => setTimeout(resolve, 200));
      const third = heldFor(port, '127.0.5.1');
      expect(await third.closed).toBeLessThan(150);
      // A request trickled a byte every 50 ms (it would take 3.6 s) is cut at the frame deadline.
      const slow = heldFor(port, '127.0.5.2', frame(requestPayload(fx.group.id)));
      const slowMs = await slow.closed;
      expect(slowMs).toBeGreaterThanOrEqual(250);
      expect(slowMs).toBeLessThan(1_500);
      // The silent ones go at the header deadline (2 s), not the 30 s idle timeout.
      const [aMs, bMs] = await Promise.all([a.closed, b.closed]);
      expect(Math.min(aMs, bMs)).toBeGreaterThanOrEqual(1_800);
      expect(Math.max(aMs, bMs)).toBeLessThan(4_000);

      const answers = await askAllFrom(
        '127.0.5.3',
        port,
        Array.from({ length: 4 }, () => requestPayload(fx.group.id)),
      );
      const counted = answers.filter((p) => messageTypeOf(p) === MessageType.ActivationResponse);
      expect(counted.map((p) => decodeActivationResponse(p).count).sort()).toEqual([1, 2, 3]);
      const refused = answers.filter((p) => messageTypeOf(p) === MessageType.ErrorResponse);
      expect(refused.map((p) => decodeErrorResponse(p).code)).toEqual([HostErrorCode.TOO_MANY_NEW_CLIENT_IDS]);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('a host served with no limit flags takes at most 600 new client IDs a minute from one address', async () => {
    const dir = join(fx.tempDir, 'defaults');
    cpSync(fx.hostDir, dir, { recursive: true });
    const { child, port } = await serve(dir);
    try {
      const answers = await askAllFrom(
        '127.0.6.1',
        port,
        Array.from({ length: 601 }, () => requestPayload(fx.group.id)),
      );
      const counted = answers.filter((p) => messageTypeOf(p) === MessageType.ActivationResponse);
      expect(Math.max(...counted.map((p) => decodeActivationResponse(p).count))).toBe(600);
      const refused = answers.filter((p) => messageTypeOf(p) === MessageType.ErrorResponse);
      expect(refused.map((p) => decodeErrorResponse(p).code)).toEqual([HostErrorCode.TOO_MANY_NEW_CLIENT_IDS]);
      // Another address is not held back by the first one's use.
      const other = await askAllFrom('127.0.6.2', port, [requestPayload(fx.group.id)]);
      expect(decodeActivationResponse(other[0] as Buffer).count).toBe(601);
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('refuses a limit out of range with OPTION_INVALID, naming the flag', () => {
    const r = spawnSync(
      process.execPath,
      [BIN, 'host', 'serve', '--data-dir', fx.hostDir, '--listen', '127.0.0.1:0', '--max-connections-per-source', '0'],
      { encoding: 'utf8' },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('OPTION_INVALID');
    expect(r.stderr).toContain('--max-connections-per-source must be a whole number from 1');
  });
});
