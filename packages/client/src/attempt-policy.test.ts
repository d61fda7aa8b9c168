import { describe, expect, it } from 'vitest';
import { DAY, INTERVAL_BOUNDS, MINUTE } from '@volact/core';
import {
  DEFAULT_INTERVALS,
  attemptMethods,
  hostIntervals,
  hostsBeforeDiscovery,
  hostsFromDiscovery,
  nextWakeAt,
  retryAt,
} from './attempt-policy.js';

describe('the attempt policy', () => {
  it('orders the methods by act-type and installed key (an OEM marker holds under every type)', () => {
    expect(attemptMethods('any', 'gvlk')).toEqual(['oem', 'token', 'directory', 'kms']);
    expect(attemptMethods('any', 'mak')).toEqual(['oem', 'token', 'authority']);
    expect(attemptMethods('directory', 'gvlk')).toEqual(['oem', 'directory']);
    expect(attemptMethods('directory', 'retail')).toEqual(['oem', 'authority']);
    expect(attemptMethods('kms', 'gvlk')).toEqual(['oem', 'kms']);
    expect(attemptMethods('token', 'gvlk')).toEqual(['oem', 'token']);
    expect(attemptMethods('token', 'mak')).toEqual(['oem', 'token']);
  });

  it('clamps the intervals a host gives, and retries sooner unless licensed', () => {
    expect(hostIntervals({ activationIntervalMin: 1, renewalIntervalMin: 90 * 24 * 60 })).toEqual({
      activationMs: INTERVAL_BOUNDS.activationInterval.min,
      renewalMs: INTERVAL_BOUNDS.renewalInterval.max,
    });
    expect(hostIntervals({ activationIntervalMin: 120, renewalIntervalMin: 10_080 })).toEqual(DEFAULT_INTERVALS);
    expect(retryAt(0, 'initial-grace', DEFAULT_INTERVALS)).toBe(120 * MINUTE);
    expect(retryAt(0, 'licensed', DEFAULT_INTERVALS)).toBe(7 * DAY);
    expect(nextWakeAt(5, null)).toBe(5);
    expect(nextWakeAt(5, 3)).toBe(3);
  });

  it('asks a host set by hand alone; else the cached host first, then DNS without it', () => {
    expect(hostsBeforeDiscovery({ manual: 'm', cached: 'c', caching: true })).toEqual({
      first: [{ host: 'm', via: 'manual' }],
      lookUp: false,
    });
    expect(hostsBeforeDiscovery({ manual: null, cached: 'c', caching: true })).toEqual({
      first: [{ host: 'c', via: 'cache' }],
      lookUp: true,
    });
    expect(hostsBeforeDiscovery({ manual: null, cached: 'c', caching: false }).first).toEqual([]);
    const same = (a: string, b: string) => a === b;
    expect(hostsFromDiscovery(['a', 'c', 'b'], { cached: 'c', caching: true }, same)).toEqual(['a', 'b']);
    expect(hostsFromDiscovery(['a', 'c', 'b'], { cached: 'c', caching: false }, same)).toEqual(['a', 'c', 'b']);
  });
});
