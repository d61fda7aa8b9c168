import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConnectionTable, DEFAULT_CONNECTION_LIMITS, connectionLimits, sourceKey } from './connection-limits.js';
import { KmsHostError } from './errors.js';

const from = (remoteAddress: string) => ({ remoteAddress }) as Socket;

describe('sourceKey', () => {
  it('counts IPv4 by address (also written IPv4-mapped) and IPv6 by its /64', () => {
    expect(sourceKey('127.0.0.2')).toBe('127.0.0.2');
    expect(sourceKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });
});

describe('connectionLimits', () => {
  it('fills in the defaults and refuses values out of range with HOST_CONFIG_INVALID', () => {
    expect(connectionLimits()).toEqual(DEFAULT_CONNECTION_LIMITS);
    expect(connectionLimits({ maxConnectionsPerSource: 8 }).maxConnectionsPerSource).toBe(8);
    expect(() => connectionLimits({ maxConnectionsPerSource: 0 })).toThrow(KmsHostError);
    expect(() => connectionLimits({ frameDeadlineMs: 1.5 })).toThrow(/frameDeadlineMs must be a whole number/);
  });
});

describe('ConnectionTable', () => {
  const table = (maxConnections: number, maxConnectionsPerSource: number) =>
    new ConnectionTable(connectionLimits({ maxConnections, maxConnectionsPerSource }));

  it('holds at most maxConnectionsPerSource from one source', () => {
    const t = table(100, 3);
    const admitted = Array.from({ length: 5 }, () => t.admit(from('10.0.0.1')).admitted);
    expect(admitted).toEqual([true, true, true, false, false]);
    expect(t.counters).toMatchObject({ open: 3, sources: 1, refusedPerSource: 2 });
    expect(t.admit(from('10.0.0.2')).admitted).toBe(true);
  });

  it('keeps the last tenth for sources holding few: a busy source is refused there, a new one is not', () => {
    // 100 in all, 64 a source: from 90 open a source holding 8 (64 / 8) or more gets no more.
    const t = table(100, 64);
    for (let i = 0; i < 64; i++) t.admit(from('10.0.0.1'));
    for (let i = 0; i < 26; i++) expect(t.admit(from('10.0.0.2')).admitted).toBe(true);
    expect(t.admit(from('10.0.0.2'))).toEqual({ admitted: false, reason: 'reserve' });
    for (let i = 0; i < 8; i++) expect(t.admit(from('10.0.0.3')).admitted).toBe(true);
    expect(t.admit(from('10.0.0.3'))).toEqual({ admitted: false, reason: 'reserve' });
    expect(t.admit(from('10.0.0.4')).admitted).toBe(true);
    expect(t.admit(from('10.0.0.5')).admitted).toBe(true);
    expect(t.open).toBe(100);
  });

  it('at the cap a newcomer evicts the oldest connection of the largest source, never one of its own size', () => {
    const t = table(10, 10);
    const first = t.admit(from('10.0.0.1'));
    for (let i = 0; i < 8; i++) t.admit(from('10.0.0.1'));
    t.admit(from('10.0.0.2'));
    expect(t.open).toBe(10);
    const newcomer = t.admit(from('10.0.0.9'));
    expect(newcomer.admitted).toBe(true);
    expect(newcomer.admitted && newcomer.evicted).toBe(first.admitted && first.connection);
    expect(t.counters).toMatchObject({ open: 10, evicted: 1 });
    expect(t.largestSource()).toBe(8);

    // Ten sources holding one each: a newcomer would only displace its equal, so it is refused.
    const even = table(10, 10);
    for (let i = 0; i < 10; i++) even.admit(from(`10.0.1.${i}`));
    expect(even.admit(from('10.0.2.1'))).toEqual({ admitted: false, reason: 'full' });
  });

  it('forgets a source when its last connection goes, and releasing twice changes nothing', () => {
    const t = table(10, 10);
    const a = t.admit(from('10.0.0.1'));
    if (!a.admitted) throw new Error('not admitted');
    t.release(a.connection);
    t.release(a.connection);
    expect(t.counters).toMatchObject({ open: 0, sources: 0 });
    expect(t.connections()).toEqual([]);
  });
});
