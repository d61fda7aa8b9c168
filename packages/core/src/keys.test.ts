import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { CoreError, type CoreErrorCode } from './errors.js';
import {
  KEY_ALPHABET,
  GROUP_BOUND_CODES,
  KEY_TYPES,
  groupTagOf,
  gvlkFor,
  keyFitsGroup,
  lastFiveOf,
  makeKey,
  parseKey,
  parseKeyOfType,
  type KeyType,
  type ProductKey,
} from './keys.js';

/** Deterministic payloads: the same keys on every run (xorshift32, fixed seed). */
function payloads(count: number, seed = 0x1f2e3d4c): Buffer[] {
  let s = seed >>> 0;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  return Array.from({ length: count }, () => Buffer.from(Array.from({ length: 13 }, () => next() & 0xff)));
}

const TYPES = Object.keys(KEY_TYPES) as KeyType[];
const CANONICAL = new RegExp(`^[${KEY_ALPHABET}]{5}(-[${KEY_ALPHABET}]{5}){4}$`);

function errorOf(fn: () => unknown): CoreError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CoreError) return err;
    throw err;
  }
  throw new Error('expected a CoreError, but the call succeeded');
}

const codeOf = (fn: () => unknown): CoreErrorCode => errorOf(fn).code;
const compact = (k: ProductKey | string) => (typeof k === 'string' ? k : k.text).replace(/-/g, '');
const dashed = (c: string) => c.match(/.{5}/g)!.join('-');

/** The same key text parsed by parseKey, or the error code it gives. */
function outcome(text: string): string {
  try {
    return `parsed ${parseKey(text).text}`;
  } catch (err) {
    if (err instanceof CoreError) return err.code;
    throw err;
  }
}

describe('makeKey / parseKey', () => {
  it('round-trips every key type: text, type and payload', () => {
    for (const type of TYPES) {
      for (const payload of payloads(25, KEY_TYPES[type])) {
        const key = makeKey(type, payload);
        const parsed = parseKey(key.text);
        expect(parsed).toEqual(key);
        expect(parsed.type).toBe(type);
        // the 100 payload bits survive: the top 100 bits of the 13 bytes given
        expect(parsed.payload.subarray(0, 12)).toEqual(payload.subarray(0, 12));
        expect(parsed.payload[12]).toBe((payload[12] as number) & 0xf0);
      }
    }
  });

  it('round-trips random keys (no payload given)', () => {
    for (let i = 0; i < 200; i++) {
      const key = makeKey(TYPES[i % TYPES.length] as KeyType);
      expect(parseKey(key.text)).toEqual(key);
    }
  });

  it('writes keys in the canonical form XXXXX-XXXXX-XXXXX-XXXXX-XXXXX with the key alphabet', () => {
    for (const type of TYPES) {
      for (const payload of payloads(10, 7 * KEY_TYPES[type])) {
        const { text } = makeKey(type, payload);
        expect(text).toMatch(CANONICAL);
        expect(text).not.toMatch(/[ILOU]/);
      }
    }
  });

  it('the first symbol names the key type', () => {
    for (const type of TYPES) expect(makeKey(type).text[0]).toBe(KEY_ALPHABET[KEY_TYPES[type]]);
  });

  it('different payloads give different keys', () => {
    const texts = new Set(payloads(500).map((p) => makeKey('mak', p).text));
    expect(texts.size).toBe(500);
  });

  it('refuses a payload shorter than 13 bytes', () => {
    expect(() => makeKey('mak', Buffer.alloc(12))).toThrow(RangeError);
  });

  it('accepts the key without dashes, with spaces or surrounding blanks, and returns the canonical text', () => {
    const key = makeKey('kms-host', payloads(1)[0]);
    const c = compact(key);
    for (const variant of [
      c,
      ` ${key.text} `,
      c.match(/.{5}/g)!.join(' '),
      `\t${c}\n`,
      key.text.replace(/-/g, ' - '),
    ]) {
      expect(parseKey(variant).text).toBe(key.text);
    }
  });

  it('accepts lowercase', () => {
    for (const payload of payloads(20)) {
      const key = makeKey('retail', payload);
      expect(parseKey(key.text.toLowerCase())).toEqual(key);
    }
  });

  it('reads O as 0 and I, L as 1 (either case)', () => {
    // type gvlk = 1, payload all zero: the key is full of 0s and 1s
    const key = makeKey('gvlk', Buffer.alloc(13));
    expect(key.text).toMatch(/^1/);
    expect((key.text.match(/0/g) ?? []).length).toBeGreaterThan(15);
    let i = 0;
    const typed = key.text.replace(/[01]/g, (ch) => {
      i++;
      if (ch === '0') return i % 2 ? 'O' : 'o';
      return ['I', 'L', 'i', 'l'][i % 4] as string;
    });
    expect(typed).not.toBe(key.text);
    expect(parseKey(typed)).toEqual(key);
  });
});

describe('typing errors are caught, never read as another key', () => {
  const keys = TYPES.flatMap((type) => payloads(12, 100 + KEY_TYPES[type]).map((p) => makeKey(type, p)));

  it('rejects EVERY single-symbol substitution (25 positions × 31 other symbols) with KEY_CHECKSUM_FAILED', () => {
    let tried = 0;
    for (const key of keys) {
      const c = compact(key);
      for (let pos = 0; pos < 25; pos++) {
        for (const sym of KEY_ALPHABET) {
          if (sym === c[pos]) continue;
          const typo = dashed(c.slice(0, pos) + sym + c.slice(pos + 1));
          expect(outcome(typo), `${key.text} with ${sym} at ${pos + 1}: ${typo}`).toBe('KEY_CHECKSUM_FAILED');
          tried++;
        }
      }
    }
    expect(tried).toBe(keys.length * 25 * 31);
  });

  it('rejects a substitution by a look-alike letter too (O for a non-zero, I/L for a non-one)', () => {
    for (const key of keys) {
      const c = compact(key);
      for (let pos = 0; pos < 25; pos++) {
        for (const [alias, value] of [
          ['O', '0'],
          ['I', '1'],
          ['L', '1'],
        ] as const) {
          if (c[pos] === value) continue;
          expect(outcome(c.slice(0, pos) + alias + c.slice(pos + 1))).toBe('KEY_CHECKSUM_FAILED');
        }
      }
    }
  });

  it('rejects EVERY swap of two different neighbouring symbols with KEY_CHECKSUM_FAILED', () => {
    const many = payloads(3000, 0xabcdef).map((p, i) => makeKey(TYPES[i % TYPES.length] as KeyType, p));
    let tried = 0;
    for (const key of [...keys, ...many]) {
      const c = compact(key);
      for (let pos = 0; pos < 24; pos++) {
        const a = c[pos] as string;
        const b = c[pos + 1] as string;
        if (a === b) continue;
        const swapped = c.slice(0, pos) + b + a + c.slice(pos + 2);
        expect(outcome(swapped), `${key.text}: swap at ${pos + 1}`).toBe('KEY_CHECKSUM_FAILED');
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(3000 * 20);
  });

  it('rejects the swap of neighbouring 0 and Z (the blind spot of a Luhn mod 32 check)', () => {
    const withZeroZ: ProductKey[] = [];
    for (const p of payloads(20_000, 0x5eed)) {
      const key = makeKey('kms-host', p);
      if (/0Z|Z0/.test(compact(key).slice(0, 22))) withZeroZ.push(key);
      if (withZeroZ.length === 40) break;
    }
    expect(withZeroZ.length).toBe(40);
    for (const key of withZeroZ) {
      const c = compact(key);
      for (let pos = 0; pos < 21; pos++) {
        const pair = c.slice(pos, pos + 2);
        if (pair !== '0Z' && pair !== 'Z0') continue;
        const swapped = c.slice(0, pos) + pair[1] + pair[0] + c.slice(pos + 2);
        expect(outcome(swapped)).toBe('KEY_CHECKSUM_FAILED');
      }
    }
  });
});

describe('malformed keys', () => {
  const key = makeKey('kms-host', payloads(1, 99)[0]);
  const c = compact(key);

  it.each([
    ['empty', ''],
    ['24 symbols', c.slice(0, 24)],
    ['26 symbols', `${c}0`],
    ['five groups of four', dashed(c).replace(/.-/g, '-').slice(0, 24)],
  ])('a key of the wrong length (%s) is KEY_MALFORMED and says what is expected', (_, text) => {
    const err = errorOf(() => parseKey(text));
    expect(err.code).toBe('KEY_MALFORMED');
    expect(err.message).toContain('25 characters');
    expect(err.message).toContain('XXXXX-XXXXX-XXXXX-XXXXX-XXXXX');
    expect(err.message).toContain(`got ${text.replace(/-/g, '').length}`);
  });

  it('a very long text is KEY_MALFORMED (not scanned)', () => {
    const err = errorOf(() => parseKey('A'.repeat(10_000)));
    expect(err.code).toBe('KEY_MALFORMED');
    expect(err.message).toContain('25 characters');
  });

  it('a non-string is KEY_MALFORMED', () => {
    expect(codeOf(() => parseKey(undefined as unknown as string))).toBe('KEY_MALFORMED');
    expect(codeOf(() => parseKey(12345 as unknown as string))).toBe('KEY_MALFORMED');
  });

  it.each(['U', 'u', '*', '_', 'Ä', '.'])(
    'a key with "%s" in it is KEY_MALFORMED and names the character and the alphabet',
    (ch) => {
      const text = dashed(c.slice(0, 7) + ch + c.slice(8));
      const err = errorOf(() => parseKey(text));
      expect(err.code).toBe('KEY_MALFORMED');
      expect(err.message).toContain('character 8');
      expect(err.message).toContain(`"${ch.toUpperCase()}"`);
      expect(err.message).toContain('0-9 and A-Z except U');
    },
  );
});

describe('parseKeyOfType', () => {
  const gvlk = makeKey('gvlk', payloads(1, 3)[0]);
  const host = makeKey('kms-host', payloads(1, 4)[0]);

  it('returns the key when its type is expected', () => {
    expect(parseKeyOfType(host.text, 'kms-host')).toEqual(host);
    expect(parseKeyOfType(gvlk.text, 'mak', 'gvlk')).toEqual(gvlk);
  });

  it('refuses another type with KEY_WRONG_TYPE, naming the given type, the expected one and the last five', () => {
    const err = errorOf(() => parseKeyOfType(gvlk.text, 'kms-host'));
    expect(err.code).toBe('KEY_WRONG_TYPE');
    expect(err.message).toContain('gvlk key');
    expect(err.message).toContain('expected a kms-host key');
    expect(err.message).toContain(lastFiveOf(gvlk));
    expect(err.message).not.toContain(gvlk.text);
    expect(errorOf(() => parseKeyOfType(host.text, 'mak', 'retail')).message).toContain('expected a mak or retail key');
  });

  it('reports a typo as KEY_CHECKSUM_FAILED before looking at the type', () => {
    const c = compact(host);
    const typo = c.slice(0, 3) + (c[3] === 'A' ? 'B' : 'A') + c.slice(4);
    expect(codeOf(() => parseKeyOfType(typo, 'gvlk'))).toBe('KEY_CHECKSUM_FAILED');
  });
});

describe('lastFiveOf', () => {
  it('shows only the last five symbols', () => {
    const key = makeKey('mak', payloads(1, 5)[0]);
    expect(lastFiveOf(key)).toBe(`…${key.text.slice(-5)}`);
    expect(lastFiveOf(key.text)).toBe(lastFiveOf(key));
  });
});

describe('gvlkFor', () => {
  const rootA = Buffer.alloc(32, 1);
  const rootB = Buffer.alloc(32, 2);
  const group1 = Buffer.alloc(16, 0xa1);
  const group2 = Buffer.alloc(16, 0xa2);

  it('is a valid gvlk key, the same every time for the same root and group', () => {
    const k = gvlkFor(rootA, group1);
    expect(k.type).toBe('gvlk');
    expect(parseKeyOfType(k.text, 'gvlk')).toEqual(k);
    expect(gvlkFor(Buffer.from(rootA), Buffer.from(group1))).toEqual(k);
  });

  it('differs between groups and between authorities', () => {
    const texts = new Set(
      [gvlkFor(rootA, group1), gvlkFor(rootA, group2), gvlkFor(rootB, group1), gvlkFor(rootB, group2)].map(
        (k) => k.text,
      ),
    );
    expect(texts.size).toBe(4);
  });
});

describe('the check symbol on its own', () => {
  // Re-hash a tampered body so only symbol 21 can catch the change: the guarantee must not
  // rest on the 15 hash bits.
  const rehash = (symbols: string): string => {
    const values = [...symbols.slice(0, 22)].map((ch) => KEY_ALPHABET.indexOf(ch));
    const digest = createHash('sha256').update('volact-key-v1\0').update(Buffer.from(values)).digest();
    const bits = digest.readUInt16BE(0) >>> 1;
    const tail = [(bits >>> 10) & 31, (bits >>> 5) & 31, bits & 31].map((v) => KEY_ALPHABET[v]).join('');
    return symbols.slice(0, 22) + tail;
  };

  it('catches every single substitution and every neighbour swap even when the hash symbols match', () => {
    let tried = 0;
    for (const p of payloads(40, 0xc0ffee)) {
      const c = compact(makeKey('mak', p));
      expect(outcome(dashed(rehash(c)))).toBe(`parsed ${dashed(c)}`);
      for (let pos = 1; pos < 22; pos++) {
        for (const ch of KEY_ALPHABET) {
          if (ch === c[pos]) continue;
          const typo = rehash(c.slice(0, pos) + ch + c.slice(pos + 1));
          expect(outcome(dashed(typo))).toBe('KEY_CHECKSUM_FAILED');
          tried++;
        }
        if (pos < 21 && c[pos] !== c[pos + 1]) {
          const swapped = rehash(c.slice(0, pos) + c[pos + 1] + c[pos] + c.slice(pos + 2));
          expect(outcome(dashed(swapped))).toBe('KEY_CHECKSUM_FAILED');
        }
      }
    }
    expect(tried).toBe(40 * 21 * 31);
  });
});

describe('group-bound MAK and retail keys', () => {
  const office = Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex');
  const project = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

  it.each(['mak', 'retail'] as const)(
    'a %s key minted for a group names it, through its text, and no other group',
    (type) => {
      for (const p of payloads(50, 0x5eed + KEY_TYPES[type])) {
        const key = parseKey(makeKey(type, p, office).text);
        expect(key.type).toBe(type);
        expect(key.text[0]).toBe(KEY_ALPHABET[GROUP_BOUND_CODES[type]]);
        expect(key.groupTag).toBe(groupTagOf(office));
        expect(keyFitsGroup(key, office)).toBe(true);
        expect(keyFitsGroup(key, project)).toBe(false);
        // 80 of the 100 payload bits stay the random ones given
        expect(key.payload.subarray(3).equals(makeKey(type, p).payload.subarray(3))).toBe(true);
      }
    },
  );

  it('a key of the classic codes does not say its group', () => {
    const key = parseKey(makeKey('mak', payloads(1)[0]).text);
    expect(key.groupTag).toBeNull();
    expect(keyFitsGroup(key, office)).toBeNull();
  });

  it('only MAK and retail keys can be bound to a group', () => {
    expect(() => makeKey('kms-host', undefined, office)).toThrow(RangeError);
    expect(() => makeKey('gvlk', undefined, office)).toThrow(RangeError);
  });
});
