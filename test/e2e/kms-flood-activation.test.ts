import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, frame } from '@volact/core';
import { startKmsHost } from '@volact/kms-host';
import { startSlice, type Slice } from './harness.js';

/**
 * The slowloris attack of issue 11 against a whole slice (authority, KMS host, real clients):
 * while slow connections from six other loopback addresses hold the host at its caps, a
 * client activates with `Licence.activate()` as it does in production.
 */
let slice: Slice | undefined;
let flood: SlowFlood | undefined;
afterEach(async () => {
  flood?.stop();
  flood = undefined;
  await slice?.close();
  slice = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `perSource` connections from each of `sources` addresses 127.0.7.1…, each writing `stream`
 * one byte every `byteEveryMs` and reconnecting 20 ms after the host closes it.
 */
class SlowFlood {
  readonly #sockets = new Set<Socket>();
  #stopped = false;

  constructor(
    private readonly o: { port: number; sources: number; perSource: number; byteEveryMs: number; stream: Buffer },
  ) {}

  start(): void {
    for (let s = 1; s <= this.o.sources; s++) for (let i = 0; i < this.o.perSource; i++) this.#slot(`127.0.7.${s}`);
  }

  stop(): void {
    this.#stopped = true;
    for (const s of this.#sockets) s.destroy();
  }

  #slot(source: string): void {
    if (this.#stopped) return;
    const socket = connect({ host: '127.0.0.1', port: this.o.port, localAddress: source });
    this.#sockets.add(socket);
    let sent = 0;
    let drip: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      drip = setInterval(() => {
        if (sent < this.o.stream.length) socket.write(this.o.stream.subarray(sent, ++sent));
      }, this.o.byteEveryMs);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(drip);
      this.#sockets.delete(socket);
      if (!this.#stopped) setTimeout(() => this.#slot(source), 20);
    });
  }
}

describe('KMS activation during a slow-connection flood', () => {
  it('a client activates (licensed, by KMS) while 6 addresses × 10 slow connections press on caps of 6 per address and 24 in all', async () => {
    const clock = new ManualClock();
    slice = await startSlice(clock, { threshold: 1 });
    await slice.host.close();
    slice.host = await startKmsHost({
      dataDir: slice.hostDir,
      listen: { host: '127.0.0.1', port: 0 },
      clock,
      flushIntervalMs: 50,
      connectionLimits: { maxConnections: 24, maxConnectionsPerSource: 6, headerDeadlineMs: 400, frameDeadlineMs: 400 },
    });
    const host = slice.host;
    flood = new SlowFlood({
      port: host.address.port,
      sources: 6,
      perSource: 10,
      byteEveryMs: 100, // a 72-byte request would take 7.2 s; no idle timeout ever fires
      stream: frame(Buffer.alloc(68)),
    });
    flood.start();
    for (let i = 0; i < 150 && host.connections().open < 24; i++) await sleep(20);
    expect(host.connections().open).toBe(24);

    const outcomes = [];
    for (const name of ['a', 'b', 'c']) {
      outcomes.push(await slice.newClient(name).activate());
      await sleep(300);
    }
    expect(outcomes.map((o) => (o.ok ? 'ok' : `${o.code}: ${o.message}`))).toEqual(['ok', 'ok', 'ok']);
    for (const o of outcomes) expect(o.status).toMatchObject({ state: 'licensed', method: 'kms' });
    expect(host.counts()[0]?.count).toBe(3);
    const c = host.connections();
    expect(c.refusedPerSource).toBeGreaterThan(0);
    expect(c.closedByDeadline).toBeGreaterThan(0);
    expect(c.largestSource).toBeLessThanOrEqual(6);
  });
});
