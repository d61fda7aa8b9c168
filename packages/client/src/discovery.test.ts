import { describe, expect, it } from 'vitest';
import { orderSrv } from './discovery.js';

/** A seeded generator: the statistical bounds below hold for any seed; a fixed one keeps runs equal. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('RFC 2782 ordering', () => {
  const records = [
    { id: 'a', priority: 0, weight: 1 },
    { id: 'b', priority: 0, weight: 3 },
    { id: 'c', priority: 10, weight: 1 },
  ];

  it('never picks the priority-10 host first while priority-0 hosts exist; weights 1:3 share the first pick close to 1:3', () => {
    const random = seeded(42);
    const first = { a: 0, b: 0, c: 0 };
    for (let round = 0; round < 2000; round++) {
      const order = orderSrv(records, random);
      expect(order.map((r) => r.id).sort()).toEqual(['a', 'b', 'c']);
      expect(order[2]?.id).toBe('c');
      first[order[0]!.id as 'a' | 'b' | 'c']++;
    }
    expect(first.c).toBe(0);
    // Binomial(2000, 1/4): mean 500, sd 19.4; |x - 500| ≥ 100 has probability < 3e-7.
    expect(Math.abs(first.a - 500)).toBeLessThan(100);
    expect(first.a + first.b).toBe(2000);
  });

  it('orders by priority, and gives weight-0 records a turn only after the weighted ones', () => {
    const random = seeded(7);
    for (let i = 0; i < 200; i++) {
      const order = orderSrv(
        [
          { id: 'z', priority: 5, weight: 0 },
          { id: 'w', priority: 5, weight: 10 },
          { id: 'p', priority: 1, weight: 0 },
        ],
        random,
      );
      expect(order.map((r) => r.id)).toEqual(['p', 'w', 'z']);
    }
  });
});
