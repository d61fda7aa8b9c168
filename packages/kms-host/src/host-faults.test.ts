import { chmodSync, existsSync, openSync, readdirSync, statSync, truncateSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MINUTE } from '@volact/core';
import { hostStatus, startKmsHost, type KmsHostConfig, type RunningKmsHost } from './host.js';
import { KmsHostError } from './errors.js';
import { ask, createActivatedHost, requestPayload, type HostFixture } from './test-fixture.js';

/** A damaged, emptied or loosely-permitted data directory, and the request log's bound. */
describe('KMS host store faults', () => {
  let fx: HostFixture;
  let host: RunningKmsHost | undefined;
  let logLines: Record<string, unknown>[];
  const logger = () =>
    pino(
      new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const line of chunk.toString().split('\n').filter(Boolean))
            logLines.push(JSON.parse(line) as Record<string, unknown>);
          done();
        },
      }),
    );
  const start = async (extra: Partial<KmsHostConfig> = {}) => {
    host = await startKmsHost({
      dataDir: fx.hostDir,
      listen: { host: '127.0.0.1', port: 0 },
      clock: fx.clock,
      logger: logger(),
      ...extra,
    });
    return host;
  };
  const stop = async () => {
    await host?.close();
    host = undefined;
  };
  const count = () => host?.counts()[0]?.count;
  const serveClients = async (n: number) => {
    for (let i = 0; i < n; i++) await ask(host!.address, requestPayload(fx.group.id));
  };
  const dbPath = () => join(fx.hostDir, 'host.db');

  beforeEach(async () => {
    fx = await createActivatedHost();
    logLines = [];
  });
  afterEach(async () => {
    await stop();
    await fx.cleanup();
  });

  it('a host.db whose header is garbage is moved aside; the host starts empty and says so (log and status)', async () => {
    await start();
    await serveClients(3);
    await stop();
    const fd = openSync(dbPath(), 'r+');
    writeSync(fd, Buffer.alloc(100, 0x41), 0, 100, 0); // "SQLite format 3" and the header gone
    closeSync(fd);
    // Before the host starts again, `host status` names the file and the fix.
    const err = (() => {
      try {
        hostStatus(fx.hostDir, fx.clock);
      } catch (e) {
        return e;
      }
      throw new Error('host status read a damaged host.db');
    })();
    expect(err).toBeInstanceOf(KmsHostError);
    expect((err as KmsHostError).code).toBe('HOST_STORE_CORRUPT');
    expect((err as Error).message).toContain(`${dbPath()} is damaged`);
    expect((err as Error).message).toContain('restart it');

    await start();
    expect(count()).toBe(0);
    expect(host!.windowReset?.code).toBe('HOST_STORE_CORRUPT');
    const moved = readdirSync(fx.hostDir).filter((f) => f.startsWith('host.db.corrupt-'));
    expect(moved).toHaveLength(1);
    const logged = logLines.find((l) => l.code === 'HOST_STORE_CORRUPT');
    expect(logged?.msg).toContain(dbPath());
    expect(logged?.msg).toContain(`moved to ${join(fx.hostDir, moved[0]!)}`);
    await serveClients(1);
    expect(count()).toBe(1);
    await stop();
    const status = hostStatus(fx.hostDir, fx.clock);
    expect(status.windowReset).toMatchObject({ code: 'HOST_STORE_CORRUPT', movedTo: join(fx.hostDir, moved[0]!) });
    expect(status.groups[0]?.count).toBe(1);
  });

  it('a host.db with a damaged page (SQLITE_CORRUPT) is found at start, moved aside, and the host serves', async () => {
    await start();
    await serveClients(400); // several pages of client IDs
    await stop();
    const size = statSync(dbPath()).size;
    expect(size).toBeGreaterThan(3 * 4096);
    const fd = openSync(dbPath(), 'r+');
    writeSync(fd, Buffer.alloc(4096, 0xff), 0, 4096, size - 4096); // the last page: garbage
    closeSync(fd);

    await start();
    expect(count()).toBe(0);
    expect(readdirSync(fx.hostDir).some((f) => f.startsWith('host.db.corrupt-'))).toBe(true);
    expect(hostStatus(fx.hostDir, fx.clock).windowReset?.code).toBe('HOST_STORE_CORRUPT');
  });

  it('a zero-length host.db of a host that had a window is reported (HOST_STORE_LOST), not a silent reset', async () => {
    await start();
    await serveClients(5);
    await stop();
    expect(hostStatus(fx.hostDir, fx.clock).windowReset).toBeUndefined();
    truncateSync(dbPath(), 0);

    await start();
    expect(count()).toBe(0);
    expect(host!.windowReset?.code).toBe('HOST_STORE_LOST');
    const logged = logLines.find((l) => l.code === 'HOST_STORE_LOST');
    expect(logged?.msg).toContain(`${dbPath()} is empty (0 bytes)`);
    await stop();
    expect(hostStatus(fx.hostDir, fx.clock).windowReset).toMatchObject({ code: 'HOST_STORE_LOST', movedTo: null });
  });

  it('a normal restart reports no reset', async () => {
    await start();
    await serveClients(2);
    await stop();
    await start();
    expect(count()).toBe(2);
    expect(host!.windowReset).toBeUndefined();
    expect(hostStatus(fx.hostDir, fx.clock).windowReset).toBeUndefined();
  });

  it('makes the data directory 0700 and its files 0600 at start, even when they were looser', async () => {
    await start();
    await serveClients(1);
    await stop();
    chmodSync(fx.hostDir, 0o755);
    for (const f of readdirSync(fx.hostDir)) chmodSync(join(fx.hostDir, f), 0o644);

    await start();
    expect(statSync(fx.hostDir).mode & 0o777).toBe(0o700);
    const files = readdirSync(fx.hostDir);
    expect(files).toEqual(expect.arrayContaining(['host.json', 'host.db', 'host.db-wal', 'host-live.json']));
    for (const f of files) expect([f, statSync(join(fx.hostDir, f)).mode & 0o777]).toEqual([f, 0o600]);
  });

  it('logs refusals always and counted requests up to 20 a minute, the rest in one summary line a minute', async () => {
    await start();
    await serveClients(50);
    await ask(host!.address, requestPayload(fx.otherGroup.id)); // GROUP_NOT_SERVED
    const counted = () => logLines.filter((l) => l.decision === 'COUNTED').length;
    expect(counted()).toBe(20);
    expect(logLines.filter((l) => l.decision === 'GROUP_NOT_SERVED')).toHaveLength(1);
    fx.clock.advance(MINUTE);
    await serveClients(1); // the next minute: its first request is logged, after last minute's summary
    const summary = logLines.find((l) => l.msg === 'requests not logged one by one');
    expect(summary).toMatchObject({ counted: 50, notLogged: 30, byGroup: { office14: 30 } });
    expect(counted()).toBe(21);
    expect(logLines.indexOf(summary!)).toBeLessThan(logLines.length - 1);
  });

  it('keeps no unsaved backlog once flushed, and reports its flush interval (API, status, metrics)', async () => {
    await start({ flushIntervalMs: 20, metrics: { host: '127.0.0.1', port: 0 } });
    await serveClients(3);
    const deadline = Date.now() + 2_000;
    while (host!.persistence().unsaved > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(host!.persistence()).toMatchObject({ flushIntervalMs: 20, unsaved: 0, lastFlushError: null });
    expect(existsSync(join(fx.hostDir, 'host-live.json'))).toBe(true);
    expect(hostStatus(fx.hostDir, fx.clock).persistence).toMatchObject({ running: true, flushIntervalMs: 20 });
    const metrics = await fetch(`http://127.0.0.1:${host!.metricsAddress!.port}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/^volact_kms_unsaved_client_ids 0$/m);
  });
});
