import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WindowStore, emptyStatistics } from './window-store.js';
import { KmsHostError } from './errors.js';

describe('WindowStore', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'volact-window-store-'));
    path = join(dir, 'host.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const G1 = '11111111-1111-4111-8111-111111111111';
  const G2 = '22222222-2222-4222-8222-222222222222';
  const cid = (n: number) => Buffer.alloc(16, n).toString('latin1');

  it('gives each group a stable number, across reopening', () => {
    const store = new WindowStore(path);
    const n1 = store.groupNumber(G1);
    const n2 = store.groupNumber(G2);
    expect(n1).not.toBe(n2);
    expect(store.groupNumber(G1)).toBe(n1);
    store.close();
    const again = new WindowStore(path);
    expect(again.groupNumber(G2)).toBe(n2);
    expect(again.groupNumber(G1)).toBe(n1);
    again.close();
  });

  it('persists entries and statistics; live entries come back in expiry order, per group', () => {
    const store = new WindowStore(path);
    const g1 = store.groupNumber(G1);
    const g2 = store.groupNumber(G2);
    const stats = { totalRequests: 10, failedRequests: 3, byLicenceState: [1, 2, 0, 0, 4, 0] };
    store.flush(
      [
        [g1, cid(1), 300],
        [g1, cid(2), 100],
        [g1, cid(3), 200],
        [g2, cid(1), 150],
      ],
      stats,
      0,
    );
    store.close();

    const reopened = new WindowStore(path);
    expect(reopened.loadStatistics()).toEqual(stats);
    const live = [...reopened.liveEntries(G1, 0)];
    expect(live.map((e) => [e.clientId.toString('latin1'), e.expiresSeconds])).toEqual([
      [cid(2), 100],
      [cid(3), 200],
      [cid(1), 300],
    ]);
    expect(reopened.liveCount(G1, 0)).toBe(3);
    expect(reopened.liveCount(G2, 0)).toBe(1);
    // at second 200, the entries expiring at 100 and 200 are gone
    expect([...reopened.liveEntries(G1, 200)].map((e) => e.expiresSeconds)).toEqual([300]);
    expect(reopened.liveCount(G1, 200)).toBe(1);
    reopened.close();
  });

  it('a later flush of the same client updates its expiry instead of adding a row', () => {
    const store = new WindowStore(path);
    const g = store.groupNumber(G1);
    store.flush([[g, cid(1), 100]], emptyStatistics(), 0);
    store.flush([[g, cid(1), 500]], emptyStatistics(), 0);
    expect(store.liveCount(G1, 0)).toBe(1);
    expect(store.liveCount(G1, 400)).toBe(1);
    store.close();
  });

  it('a flush purges rows that expired by its time', () => {
    const store = new WindowStore(path);
    const g = store.groupNumber(G1);
    store.flush(
      [
        [g, cid(1), 100],
        [g, cid(2), 200],
      ],
      emptyStatistics(),
      0,
    );
    store.flush([], emptyStatistics(), 150);
    // counted with an earlier "now", the purged row is still missing: it was deleted
    expect(store.liveCount(G1, 0)).toBe(1);
    store.close();
  });

  it('a new store has empty statistics and no entries', () => {
    const store = new WindowStore(path);
    expect(store.loadStatistics()).toEqual(emptyStatistics());
    expect(store.liveCount(G1, 0)).toBe(0);
    store.close();
  });

  it('names the file and the fix when it cannot open it (HOST_STORE_FAILED), never a bare SQLite error', () => {
    const notAFile = join(dir, 'a-directory');
    mkdirSync(notAFile);
    let err: unknown;
    try {
      new WindowStore(notAFile).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KmsHostError);
    expect((err as KmsHostError).code).toBe('HOST_STORE_FAILED');
    expect((err as Error).message).toContain(`${notAFile}: SQLITE_CANTOPEN`);
    expect((err as Error).message).toContain("check the file's owner and mode");
  });
});
