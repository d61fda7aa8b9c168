import { spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FrameReader,
  MAX_RESPONSE_SIZE,
  ManualClock,
  MessageType,
  decodeActivationResponse,
  frame,
  messageTypeOf,
} from '@volact/core';
import { createActivatedHost, requestPayload, type HostFixture } from '@volact/kms-host/testing';
import { BIN, serveHost } from './host-serve.js';

/**
 * Faults of the KMS host run as users run it (`volact host serve`, the built binary): its
 * launcher killed with SIGKILL, a stop under load, a full disk. Real processes, real files.
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

/** A fresh copy of the activated host's data directory (each test its own host). */
function hostCopy(name: string, under = fx.tempDir): string {
  const dir = join(under, name);
  cpSync(fx.hostDir, dir, { recursive: true });
  return dir;
}

/** These hosts take thousands of new client IDs from one address: the new-ID limit is off. */
const serve = (dataDir: string, ...extra: string[]) =>
  serveHost(children, dataDir, '--new-client-ids-per-minute', '0', ...extra);

function volact(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * Clients on `connections` connections, each asking again as soon as it is answered, until
 * the host closes: returns the client IDs (hex) the host answered with a signed count.
 */
function load(port: number, connections: number, onAnswer?: (n: number) => void): Promise<Set<string>> {
  const answered = new Set<string>();
  const one = () =>
    new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      const reader = new FrameReader(MAX_RESPONSE_SIZE);
      const ask = () => socket.write(frame(requestPayload(fx.group.id)));
      socket.on('connect', ask);
      socket.on('data', (chunk: Buffer) => {
        for (const payload of reader.push(chunk)) {
          if (messageTypeOf(payload) === MessageType.ActivationResponse) {
            answered.add(decodeActivationResponse(payload).clientId.toString('hex'));
            onAnswer?.(answered.size);
          }
          if (!socket.destroyed && socket.writable) ask();
        }
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
    });
  return Promise.all(Array.from({ length: connections }, one)).then(() => answered);
}

function savedClientIds(dataDir: string): Set<string> {
  const db = new Database(join(dataDir, 'host.db'), { readonly: true });
  try {
    const rows = db.prepare('SELECT client_id FROM client_ids').all() as { client_id: Buffer }[];
    return new Set(rows.map((r) => r.client_id.toString('hex')));
  } finally {
    db.close();
  }
}

describe('volact host serve under faults', () => {
  it('a SIGKILL of the `volact host serve` launcher stops the daemon it started: the port is free within seconds', async () => {
    const served = await serve(hostCopy('launcher-killed'));
    expect(await portIsFree(served.port)).toBe(false);
    served.child.kill('SIGKILL');
    await served.exited;
    const end = Date.now() + 5_000;
    while (!(await portIsFree(served.port))) {
      if (Date.now() > end) throw new Error(`port ${served.port} still held 5 s after the launcher was killed`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 30_000);

  it('a SIGTERM under load loses nothing: every client ID answered is in host.db, and it exits 0', async () => {
    const dir = hostCopy('sigterm-under-load');
    const served = await serve(dir);
    let stopped = false;
    const answered = load(served.port, 8, (n) => {
      if (n >= 3_000 && !stopped) {
        stopped = true;
        served.child.kill('SIGTERM');
      }
    });
    const ids = await answered;
    expect(await served.exited).toBe(0);
    expect(ids.size).toBeGreaterThanOrEqual(3_000);
    const saved = savedClientIds(dir);
    const lost = [...ids].filter((id) => !saved.has(id));
    expect(lost).toEqual([]);
    const status = JSON.parse(volact('host', 'status', '--data-dir', dir, '--json').stdout);
    expect(status.persistence).toMatchObject({ running: false, stoppedCleanly: true, unsaved: 0 });
  }, 60_000);

  it('host status says plainly what a crash can lose (the flush interval), and that the last run crashed', async () => {
    const dir = hostCopy('crash-window');
    const served = await serve(dir, '--flush-interval', '100ms');
    const live = JSON.parse(volact('host', 'status', '--data-dir', dir, '--json').stdout);
    expect(live.persistence).toMatchObject({ running: true, flushIntervalMs: 100, unsaved: 0 });
    // kill -9 of the daemon itself (not its launcher): no clean stop.
    const { pid } = JSON.parse(readFileSync(join(dir, 'host-live.json'), 'utf8')) as { pid: number };
    expect(pid).not.toBe(served.child.pid);
    process.kill(pid, 'SIGKILL');
    await served.exited;
    const status = JSON.parse(volact('host', 'status', '--data-dir', dir, '--json').stdout);
    expect(status.persistence).toMatchObject({ running: false, stoppedCleanly: false, flushIntervalMs: 100 });
    const text = volact('host', 'status', '--data-dir', dir).stdout;
    expect(text).toContain('window written every 100 ms');
    expect(text).toContain('a crash or kill -9 loses at most the client IDs of the last 100 ms');
    expect(text).toContain('WARNING: the last run did not stop cleanly');
  }, 30_000);
});

describe('volact host serve over a damaged host.db', () => {
  it('moves the damaged file aside, serves with an empty window and says so on stderr and in host status', async () => {
    const dir = hostCopy('damaged-store');
    writeFileSync(join(dir, 'host.db'), Buffer.alloc(8192, 0x41)); // not an SQLite file
    const status = volact('host', 'status', '--data-dir', dir);
    expect(status.code).not.toBe(0);
    expect(status.stderr).toContain(`error HOST_STORE_CORRUPT: ${join(dir, 'host.db')} is damaged`);

    const served = await serve(dir);
    expect(served.stderr()).toContain('WARNING HOST_STORE_CORRUPT');
    expect(served.stderr()).toContain(`moved to ${join(dir, 'host.db.corrupt-')}`);
    const text = volact('host', 'status', '--data-dir', dir).stdout;
    expect(text).toContain('Group office14: current count 0');
    expect(text).toMatch(/WARNING HOST_STORE_CORRUPT at \S+: .*host\.db was damaged/);
    served.child.kill('SIGTERM');
    expect(await served.exited).toBe(0);
  }, 30_000);
});

/** A 2 MiB tmpfs (needs root, as in CI; where mounting is not allowed the tests are skipped). */
function mountSmallDisk(): string | undefined {
  const mnt = mkdtempSync(join(tmpdir(), 'volact-small-disk-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', mnt], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(mnt, { recursive: true, force: true });
    return undefined;
  }
  return mnt;
}

/** Runs `test` with a fresh small disk, unmounted afterwards whatever happened. */
async function withSmallDisk(test: (disk: string) => Promise<void>): Promise<void> {
  const disk = mountSmallDisk()!;
  try {
    await test(disk);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    // The daemon stops on its own after its launcher: unmount once nothing holds the disk
    // (bounded), lazily if something still does then.
    const end = Date.now() + 5_000;
    let unmounted = spawnSync('umount', [disk]).status === 0;
    while (!unmounted && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      unmounted = spawnSync('umount', [disk]).status === 0;
    }
    if (!unmounted) spawnSync('umount', ['-l', disk]);
    rmSync(disk, { recursive: true, force: true });
  }
}

/** Fills the file system holding `dir` (one file, written until ENOSPC). */
function fillDisk(dir: string): string {
  const filler = join(dir, 'filler');
  spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k'], { encoding: 'utf8' });
  return filler;
}

const canMount = (() => {
  const probe = mountSmallDisk();
  if (probe) {
    spawnSync('umount', [probe]);
    rmSync(probe, { recursive: true, force: true });
  }
  return Boolean(probe);
})();

describe.skipIf(!canMount)('volact host serve on a full disk (2 MiB tmpfs)', () => {
  it(
    'keeps the answered IDs while the disk is full, shows the backlog in host status, and writes it all once space returns',
    () =>
      withSmallDisk(async (disk) => {
        const dir = hostCopy('host', disk);
        const served = await serve(dir);
        const filler = fillDisk(disk);
        const ids = new Set<string>();
        // Load for a while on the full disk, then stop the clients (the host keeps running).
        const connections = Array.from({ length: 4 }, () => connect(served.port, '127.0.0.1'));
        const reader = connections.map(() => new FrameReader(MAX_RESPONSE_SIZE));
        await new Promise<void>((resolve) => {
          let pending = connections.length * 500;
          connections.forEach((socket, i) => {
            socket.on('data', (chunk: Buffer) => {
              for (const payload of reader[i]!.push(chunk)) {
                ids.add(decodeActivationResponse(payload).clientId.toString('hex'));
                if (--pending === 0) resolve();
              }
            });
            for (let n = 0; n < 500; n++) socket.write(frame(requestPayload(fx.group.id)));
          });
        });
        for (const s of connections) s.destroy();
        expect(ids.size).toBe(2_000);

        await until(() => {
          const s = JSON.parse(volact('host', 'status', '--data-dir', dir, '--json').stdout);
          return s.persistence.unsaved === 2_000 && s.persistence.lastFlushError?.code === 'HOST_STORE_FULL';
        }, 20_000); // each `host status` is a node start: seconds on a loaded machine
        const text = volact('host', 'status', '--data-dir', dir).stdout;
        expect(text).toContain('WARNING: 2000 client IDs answered but not saved in host.db');
        expect(text).toContain('HOST_STORE_FULL');
        expect(text).toContain(join(dir, 'host.db'));

        rmSync(filler); // space returns: the backlog is written without a restart
        await until(
          () => JSON.parse(volact('host', 'status', '--data-dir', dir, '--json').stdout).persistence.unsaved === 0,
          20_000,
        );
        const status = JSON.parse(volact('host', 'status', '--data-dir', dir, '--json').stdout);
        expect(status.persistence.lastFlushError).toBeNull();
        expect(status.groups[0].count).toBe(2_000);
        served.child.kill('SIGTERM');
        expect(await served.exited).toBe(0);
        const saved = savedClientIds(dir);
        expect([...ids].filter((id) => !saved.has(id))).toEqual([]);
      }),
    60_000,
  );

  it(
    'a SIGTERM on a full disk exits non-zero and says how many answered client IDs were not saved',
    () =>
      withSmallDisk(async (disk) => {
        const dir = hostCopy('host', disk);
        const served = await serve(dir);
        const filler = fillDisk(disk);
        const socket = connect(served.port, '127.0.0.1');
        const reader = new FrameReader(MAX_RESPONSE_SIZE);
        let answered = 0;
        await new Promise<void>((resolve) => {
          socket.on('data', (chunk: Buffer) => {
            answered += reader.push(chunk).length;
            if (answered === 1_000) resolve();
          });
          for (let n = 0; n < 1_000; n++) socket.write(frame(requestPayload(fx.group.id)));
        });
        socket.destroy();
        served.child.kill('SIGTERM');
        expect(await served.exited).not.toBe(0);
        expect(served.stderr()).toMatch(/HOST_WINDOW_UNSAVED: 1000 client IDs were answered but not saved at shutdown/);
        expect(served.stderr()).toContain(join(dir, 'host.db'));
        rmSync(filler);
      }),
    60_000,
  );
});
