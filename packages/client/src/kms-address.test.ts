import { describe, expect, it } from 'vitest';
import { formatKmsAddress, parseKmsAddress } from './kms-address.js';
import { ClientError } from './errors.js';

describe('KMS host addresses', () => {
  it('defaults to port 1688 and keeps an explicit port', () => {
    expect(parseKmsAddress('kms.corp.example')).toEqual({ host: 'kms.corp.example', port: 1688 });
    expect(parseKmsAddress('10.0.0.5:1700')).toEqual({ host: '10.0.0.5', port: 1700 });
    expect(parseKmsAddress('[::1]:1688')).toEqual({ host: '::1', port: 1688 });
    expect(formatKmsAddress({ host: '::1', port: 1688 })).toBe('[::1]:1688');
  });

  it.each(['', 'a b', 'host:0', 'host:70000', 'host:port', 'http://host:1688'])(
    'rejects %j with HOST_ADDRESS_INVALID',
    (text) => {
      expect(() => parseKmsAddress(text)).toThrow(ClientError);
      try {
        parseKmsAddress(text);
      } catch (err) {
        expect((err as ClientError).code).toBe('HOST_ADDRESS_INVALID');
      }
    },
  );
});
