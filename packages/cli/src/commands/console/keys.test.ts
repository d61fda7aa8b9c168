import { afterEach, describe, expect, it, vi } from 'vitest';
import { installKeyArguments } from './keys.js';

const KEY = 'ABCDE-FGHJK-MNPQR-STVWX-YZ234';

function refusal(action: () => unknown): string {
  try {
    action();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('no refusal');
}

describe('console install-key: the key and the machines', () => {
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  afterEach(() => stderr.mockClear());

  it('takes the key from --key; every argument is a machine', () => {
    expect(installKeyArguments({ key: 'office-mak' }, ['pc-01', '7'])).toEqual({
      keyRef: 'office-mak',
      machines: ['pc-01', '7'],
    });
    expect(installKeyArguments({ key: KEY, all: true }, [])).toEqual({ keyRef: KEY, machines: [] });
    expect(stderr).not.toHaveBeenCalled();
  });

  it('still takes a product key in first place, with a deprecation note', () => {
    expect(installKeyArguments({}, [KEY, 'pc-01'])).toEqual({ keyRef: KEY, machines: ['pc-01'] });
    expect(String(stderr.mock.calls[0]?.[0])).toContain('deprecated');
  });

  it('refuses a first argument that could be a stored key or a machine', () => {
    expect(refusal(() => installKeyArguments({}, ['office-mak', 'pc-01']))).toContain('--key');
    expect(refusal(() => installKeyArguments({ machine: ['1'] }, []))).toContain('--key');
  });

  it('refuses a key where a machine is expected, naming its last five characters only', () => {
    for (const given of [
      () => installKeyArguments({ key: 'office-mak' }, ['pc-01', KEY]),
      () => installKeyArguments({ key: 'office-mak', machine: ['1', KEY] }, []),
      () => installKeyArguments({}, [KEY, KEY.toLowerCase()]),
      // typed without its dashes, or with spaces: still a key, never echoed as a machine name
      () => installKeyArguments({ key: 'office-mak' }, ['pc-01', KEY.replace(/-/g, '')]),
      () => installKeyArguments({ key: 'office-mak', machine: [KEY.replace(/-/g, ' ')] }, []),
    ]) {
      const message = refusal(given);
      expect(message).toContain('is a product key where a machine is expected');
      expect(message).toMatch(/…YZ234/i);
      expect(message.toUpperCase()).not.toContain(KEY);
      expect(message.toUpperCase()).not.toContain(KEY.replace(/-/g, '').slice(0, 20));
    }
  });

  it('takes a long machine name whose letters and digits happen to add up to 25 as a machine', () => {
    expect(installKeyArguments({ key: 'office-mak' }, ['workstation-engineering-107'])).toEqual({
      keyRef: 'office-mak',
      machines: ['workstation-engineering-107'],
    });
  });

  it('refuses --key with --key-file', () => {
    expect(refusal(() => installKeyArguments({ key: 'a', keyFile: 'f' }, ['pc-01']))).toContain('not both');
  });
});
