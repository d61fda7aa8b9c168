import { describe, expect, it } from 'vitest';
import { MAX_DISCOVERY_PROBES, agentBaseUrl, expandRange, parseAddressList, parseMachineAddress } from './addresses.js';
import { ConsoleError } from './errors.js';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConsoleError) return err.code;
    throw err;
  }
  return 'no error';
};

describe('machine addresses', () => {
  it('canonical HOST:PORT, [IPv6]:PORT and https://HOST:PORT', () => {
    expect(parseMachineAddress(' PC-01.Corp.Example:7390 ')).toBe('pc-01.corp.example:7390');
    expect(parseMachineAddress('http://10.0.0.5:7390/')).toBe('10.0.0.5:7390');
    expect(parseMachineAddress('[::1]:7390')).toBe('[::1]:7390');
    expect(parseMachineAddress('https://agent.corp.example:443')).toBe('https://agent.corp.example:443');
    expect(agentBaseUrl('10.0.0.5:7390')).toBe('http://10.0.0.5:7390');
    expect(agentBaseUrl('https://agent.corp.example:443')).toBe('https://agent.corp.example:443');
  });

  it('refuses what is not one', () => {
    for (const bad of ['10.0.0.5', '10.0.0.5:0', '10.0.0.5:65536', '[zz]:1', 'ftp://h:1', 'a_b:1', 'h:1/path', ':80']) {
      expect(
        codeOf(() => parseMachineAddress(bad)),
        bad,
      ).toBe('ADDRESS_INVALID');
    }
  });
});

describe('discovery ranges', () => {
  it('ports on one host, or IPv4 addresses on one port', () => {
    expect(expandRange('127.0.0.1:7390-7392')).toEqual(['127.0.0.1:7390', '127.0.0.1:7391', '127.0.0.1:7392']);
    expect(expandRange('10.0.0.254-10.0.1.1:7390')).toEqual([
      '10.0.0.254:7390',
      '10.0.0.255:7390',
      '10.0.1.0:7390',
      '10.0.1.1:7390',
    ]);
    expect(expandRange(`127.0.0.1:1-${MAX_DISCOVERY_PROBES}`)).toHaveLength(MAX_DISCOVERY_PROBES);
  });

  it('at most 1 024 probes; malformed or reversed ranges refused', () => {
    expect(codeOf(() => expandRange(`127.0.0.1:1-${MAX_DISCOVERY_PROBES + 1}`))).toBe('RANGE_INVALID');
    expect(codeOf(() => expandRange('10.0.0.0-10.0.255.255:7390'))).toBe('RANGE_INVALID');
    for (const bad of ['127.0.0.1:9-1', '127.0.0.1', '10.0.0.9-10.0.0.1:80', '127.0.0.1:1-70000', '']) {
      expect(
        codeOf(() => expandRange(bad)),
        bad,
      ).toBe('RANGE_INVALID');
    }
    expect(parseAddressList('a.corp:1, b.corp:2,a.corp:1')).toEqual(['a.corp:1', 'b.corp:2']);
    expect(codeOf(() => parseAddressList(' , '))).toBe('RANGE_INVALID');
    expect(codeOf(() => parseAddressList(Array.from({ length: 1025 }, (_, i) => `127.0.0.1:${i + 1}`).join(',')))).toBe(
      'RANGE_INVALID',
    );
  });
});
