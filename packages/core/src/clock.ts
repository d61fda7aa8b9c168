/** Milliseconds since the Unix epoch. Every time-dependent rule takes a Clock. */
export interface Clock {
  now(): number;
}

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to: tests and simulations run years in milliseconds. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start: number | Date = Date.UTC(2026, 0, 1)) {
    this.#now = typeof start === 'number' ? start : start.getTime();
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot move a clock by ${ms} ms`);
    this.#now += ms;
  }
  set(ms: number): void {
    this.#now = ms;
  }
}

/** A clock with a fixed offset from another: lets a CLI simulate "30 days later" (--now). */
export function offsetClock(base: Clock, offsetMs: number): Clock {
  return { now: () => base.now() + offsetMs };
}
