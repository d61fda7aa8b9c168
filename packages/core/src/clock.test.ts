import { describe, expect, it } from 'vitest';
import { DAY, HOUR, ManualClock, MINUTE, offsetClock } from './clock.js';

describe('ManualClock', () => {
  it('starts at 2026-01-01 UTC unless told otherwise and only moves when told', () => {
    expect(new ManualClock().now()).toBe(Date.UTC(2026, 0, 1));
    const clock = new ManualClock(new Date('2030-06-01T00:00:00Z'));
    expect(clock.now()).toBe(Date.UTC(2030, 5, 1));
    clock.advance(30 * DAY);
    expect(clock.now()).toBe(Date.UTC(2030, 6, 1));
    clock.set(5);
    expect(clock.now()).toBe(5);
  });

  it('refuses to move backwards or by a non-finite amount', () => {
    const clock = new ManualClock(1000);
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(() => clock.advance(Number.NaN)).toThrow(RangeError);
    expect(() => clock.advance(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(clock.now()).toBe(1000);
  });

  it('offsetClock follows its base at a fixed distance', () => {
    const base = new ManualClock(0);
    const later = offsetClock(base, 30 * DAY);
    expect(later.now()).toBe(30 * DAY);
    base.advance(HOUR + MINUTE);
    expect(later.now()).toBe(30 * DAY + HOUR + MINUTE);
  });
});
