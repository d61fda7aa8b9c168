import { describe, expect, it } from 'vitest';
import { DAY, HOUR, ManualClock } from '@volact/core';
import { ClientIdWindow, fromWindowSeconds, toWindowSeconds } from './client-id-window.js';

const WINDOW = 30 * DAY;
const id = (n: number) => Buffer.alloc(16, n);
const manyId = (n: number) => {
  const b = Buffer.alloc(16, 0xa5);
  b.writeUInt32LE(n, 3); // unaligned on purpose
  return b;
};

describe('ClientIdWindow', () => {
  it('counts distinct client ids; the same id again does not grow the count', () => {
    const clock = new ManualClock();
    const w = new ClientIdWindow(WINDOW);
    expect(w.count(clock.now())).toBe(0);
    expect(w.record(id(1), clock.now())).toBe(1);
    expect(w.record(id(2), clock.now())).toBe(2);
    clock.advance(HOUR);
    expect(w.record(id(1), clock.now())).toBe(2);
    expect(w.record(id(3), clock.now())).toBe(3);
    expect(w.record(id(3), clock.now())).toBe(3);
    expect(w.count(clock.now())).toBe(3);
  });

  it('an entry counts until exactly 30 days after its request, and not from then on', () => {
    const clock = new ManualClock();
    const w = new ClientIdWindow(WINDOW);
    const t0 = clock.now();
    w.record(id(1), t0);
    expect(w.expiryOf(id(1))).toBe(t0 + WINDOW);
    expect(w.count(t0 + WINDOW - 1)).toBe(1);
    expect(w.count(t0 + WINDOW)).toBe(0);
    expect(w.expiryOf(id(1))).toBeUndefined();
  });

  it('an entry recorded off a whole second still lives the full window', () => {
    const t0 = new ManualClock().now() + 400;
    const w = new ClientIdWindow(WINDOW);
    w.record(id(1), t0);
    expect(w.count(t0 + WINDOW - 1)).toBe(1);
    expect(w.count(t0 + WINDOW + 1000)).toBe(0);
  });

  it('the next request after an expiry counts the client again from 1', () => {
    const clock = new ManualClock();
    const w = new ClientIdWindow(WINDOW);
    w.record(id(1), clock.now());
    clock.advance(WINDOW);
    expect(w.record(id(2), clock.now())).toBe(1);
    expect(w.record(id(1), clock.now())).toBe(2);
  });

  it('a refresh before expiry keeps the entry alive past its original expiry', () => {
    const clock = new ManualClock();
    const w = new ClientIdWindow(WINDOW);
    const t0 = clock.now();
    w.record(id(1), t0);
    w.record(id(2), t0);
    clock.advance(20 * DAY);
    expect(w.record(id(1), clock.now())).toBe(2); // refresh
    expect(w.expiryOf(id(1))).toBe(t0 + 20 * DAY + WINDOW);
    expect(w.count(t0 + WINDOW)).toBe(1); // id 2 expired, id 1 lives on
    expect(w.expiryOf(id(2))).toBeUndefined();
    expect(w.count(t0 + 20 * DAY + WINDOW - 1)).toBe(1);
    expect(w.count(t0 + 20 * DAY + WINDOW)).toBe(0);
  });

  it('the count falls one by one as entries expire', () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const w = new ClientIdWindow(WINDOW);
    for (let i = 0; i < 10; i++) {
      w.record(id(i), clock.now());
      clock.advance(DAY);
    }
    expect(w.count(clock.now())).toBe(10);
    for (let i = 0; i < 10; i++) {
      expect(w.count(t0 + i * DAY + WINDOW - 1)).toBe(10 - i);
      expect(w.count(t0 + i * DAY + WINDOW)).toBe(9 - i);
    }
  });

  it('keeps counting right while entries are refreshed in between (many clients, many days)', () => {
    const clock = new ManualClock();
    const w = new ClientIdWindow(WINDOW);
    const last = new Map<number, number>();
    // expiries are whole seconds, rounded up: alive while now < the expiry second
    const alive = (t: number, at: number) => at < Math.ceil((t + WINDOW) / 1000) * 1000;
    let s = 12345;
    const rand = (n: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % n;
    for (let step = 0; step < 3000; step++) {
      clock.advance(rand(6 * HOUR));
      const client = rand(200);
      last.set(client, clock.now());
      const expected = [...last.values()].filter((t) => alive(t, clock.now())).length;
      expect(w.record(manyId(client), clock.now())).toBe(expected);
    }
    for (let d = 0; d <= 31; d++) {
      const at = clock.now() + d * DAY;
      expect(w.count(at)).toBe([...last.values()].filter((t) => alive(t, at)).length);
      expect(w.count(at)).toBeLessThanOrEqual([...last.values()].filter((t) => t + WINDOW + 1000 > at).length);
      expect(w.count(at)).toBeGreaterThanOrEqual([...last.values()].filter((t) => t + WINDOW > at).length);
    }
  });

  it('restore() rebuilds a window from stored entries in expiry order, which then expire in that order', () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const w = new ClientIdWindow(WINDOW);
    const expiries = [1, 2, 3, 5, 8].map((d) => toWindowSeconds(t0 + d * DAY));
    expiries.forEach((e, i) => w.restore(id(i), e));
    expect(w.count(t0)).toBe(5);
    expect(w.expiryOf(id(3))).toBe(fromWindowSeconds(expiries[3]!));
    expect(w.count(t0 + DAY - 1)).toBe(5);
    expect(w.count(t0 + DAY)).toBe(4);
    expect(w.count(t0 + 3 * DAY)).toBe(2);
    expect(w.expiryOf(id(2))).toBeUndefined();
    expect(w.expiryOf(id(3))).toBeDefined();
    // a request after restoring goes behind the restored entries
    expect(w.record(id(9), t0 + 3 * DAY)).toBe(3);
    expect(w.count(t0 + 8 * DAY)).toBe(1);
    expect(w.count(t0 + 3 * DAY + WINDOW)).toBe(0);
  });

  it('restore() of an id already present replaces its expiry', () => {
    const t0 = new ManualClock().now();
    const w = new ClientIdWindow(WINDOW);
    w.restore(id(1), toWindowSeconds(t0 + DAY));
    w.restore(id(2), toWindowSeconds(t0 + 2 * DAY));
    w.restore(id(1), toWindowSeconds(t0 + 3 * DAY));
    expect(w.count(t0)).toBe(2);
    expect(w.count(t0 + DAY)).toBe(2);
    expect(w.count(t0 + 2 * DAY)).toBe(1);
    expect(w.count(t0 + 3 * DAY)).toBe(0);
  });

  it('a shorter window works the same way', () => {
    const w = new ClientIdWindow(HOUR);
    const t0 = new ManualClock().now();
    w.record(id(1), t0);
    expect(w.count(t0 + HOUR - 1)).toBe(1);
    expect(w.count(t0 + HOUR)).toBe(0);
  });

  it('grows past its first table and reuses freed slots: 50 000 ids, half expire, the rest still found', () => {
    const clock = new ManualClock();
    const w = new ClientIdWindow(WINDOW);
    for (let i = 0; i < 25_000; i++) w.record(manyId(i), clock.now());
    clock.advance(15 * DAY);
    for (let i = 25_000; i < 50_000; i++) w.record(manyId(i), clock.now());
    expect(w.count(clock.now())).toBe(50_000);
    clock.advance(15 * DAY + 1000); // the first half expires
    expect(w.count(clock.now())).toBe(25_000);
    expect(w.expiryOf(manyId(0))).toBeUndefined();
    expect(w.expiryOf(manyId(49_999))).toBe(clock.now() - 15 * DAY - 1000 + WINDOW);
    for (let i = 50_000; i < 75_000; i++) w.record(manyId(i), clock.now());
    expect(w.count(clock.now())).toBe(50_000);
    for (let i = 25_000; i < 75_000; i += 997) expect(w.expiryOf(manyId(i))).toBeDefined();
    // a subarray of a larger buffer (as requests arrive) is read at its offset
    const frame = Buffer.concat([Buffer.alloc(7), manyId(60_000), Buffer.alloc(5)]);
    expect(w.record(frame.subarray(7, 23), clock.now())).toBe(50_000);
  });

  it('refuses a window of no length or no room (a policy passed through the library API)', () => {
    expect(() => new ClientIdWindow(0)).toThrow(RangeError);
    expect(() => new ClientIdWindow(WINDOW, 0)).toThrow(RangeError);
    expect(() => new ClientIdWindow(WINDOW, 2.5)).toThrow(RangeError);
    expect(new ClientIdWindow(WINDOW, 1).record(id(1), 0)).toBe(1);
  });
});
