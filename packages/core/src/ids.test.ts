import { describe, expect, it } from 'vitest';
import { CoreError } from './errors.js';
import { bytesToGuid, guidToBytes, isGuid, newClientMachineId, randomGuid } from './ids.js';

describe('GUIDs', () => {
  it('round-trips bytes and text, any bit pattern', () => {
    for (const bytes of [
      Buffer.alloc(16),
      Buffer.alloc(16, 0xff),
      Buffer.from('00112233445566778899aabbccddeeff', 'hex'),
    ]) {
      const guid = bytesToGuid(bytes);
      expect(guid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(guidToBytes(guid)).toEqual(bytes);
    }
    expect(bytesToGuid(Buffer.from('00112233445566778899aabbccddeeff', 'hex'))).toBe(
      '00112233-4455-6677-8899-aabbccddeeff',
    );
  });

  it('reads upper case', () => {
    expect(guidToBytes('00112233-4455-6677-8899-AABBCCDDEEFF')).toEqual(
      guidToBytes('00112233-4455-6677-8899-aabbccddeeff'),
    );
    expect(isGuid('00112233-4455-6677-8899-AABBCCDDEEFF')).toBe(true);
  });

  it.each([
    '',
    'not a guid',
    '00112233445566778899aabbccddeeff',
    '00112233-4455-6677-8899-aabbccddeef',
    '00112233-4455-6677-8899-aabbccddeeffa',
    'g0112233-4455-6677-8899-aabbccddeeff',
  ])('refuses "%s" with ID_MALFORMED', (text) => {
    expect(isGuid(text)).toBe(false);
    let code = '';
    try {
      guidToBytes(text);
    } catch (err) {
      code = (err as CoreError).code;
    }
    expect(code).toBe('ID_MALFORMED');
  });

  it('refuses bytes that are not 16 long', () => {
    expect(() => bytesToGuid(Buffer.alloc(15))).toThrow(CoreError);
    expect(() => bytesToGuid(Buffer.alloc(17))).toThrow(CoreError);
  });

  it('makes distinct random ids (client machine ids)', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newClientMachineId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(isGuid(id)).toBe(true);
    expect(randomGuid()).not.toBe(randomGuid());
  });
});
