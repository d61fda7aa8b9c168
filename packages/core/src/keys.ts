import { createHash, randomBytes } from 'node:crypto';
import { CoreError } from './errors.js';

/**
 * Product keys: 25 symbols of Crockford base32 in five groups, e.g. `4Y1QG-…`.
 *
 *   symbol 0       key type (see KEY_TYPES; a MAK or retail key minted for one group has its
 *                  own code, GROUP_BOUND_CODES, and its payload starts with the group's tag)
 *   symbols 1..20  100-bit payload (random; derived from the group for a GVLK; for a
 *                  group-bound key the first 4 symbols are groupTagOf(group), 80 bits random)
 *   symbol 21      check symbol over symbols 0..20 (Damm's scheme over GF(32), below): every
 *                  single mistyped symbol, every swap of two different neighbours and every
 *                  swap across one symbol is caught, always (Luhn mod 32 misses 0 <-> Z)
 *   symbols 22..24 15 bits of SHA-256 over symbols 0..21: random typos pass with p = 2^-20
 *
 * A typo is reported as "key checksum failed", never read as another key. Symbols are numbered
 * from 0 here (and in docs/protocol.md); messages for people count characters from 1.
 */
export const KEY_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const N = KEY_ALPHABET.length;
const KEY_SYMBOLS = 25;

export const KEY_TYPES = {
  gvlk: 1,
  'kms-host': 2,
  mak: 3,
  retail: 4,
} as const;
export type KeyType = keyof typeof KEY_TYPES;
/**
 * A MAK or retail key activates one product group. Minted with these codes, its payload's first
 * 20 bits name the group (groupTagOf), so a client refuses another group's key when it is
 * installed, offline, instead of at activation. Keys minted before carry the classic code and
 * no tag (they are still accepted; the authority refuses them at activation).
 */
export const GROUP_BOUND_CODES = { mak: 5, retail: 6 } as const;
const TYPE_BY_CODE = new Map<number, KeyType>([
  ...Object.entries(KEY_TYPES).map(([name, code]) => [code, name as KeyType] as const),
  ...Object.entries(GROUP_BOUND_CODES).map(([name, code]) => [code, name as KeyType] as const),
]);
const GROUP_BOUND_BY_CODE = new Set<number>(Object.values(GROUP_BOUND_CODES));
const GROUP_TAG_BITS = 20;

export interface ProductKey {
  /** Canonical form, XXXXX-XXXXX-XXXXX-XXXXX-XXXXX. */
  readonly text: string;
  readonly type: KeyType;
  /** 100-bit payload, 13 bytes (the top 4 bits of the last byte are zero). */
  readonly payload: Buffer;
  /** The 20-bit tag of the one group a group-bound MAK or retail key activates; null when the key does not say. */
  readonly groupTag: number | null;
}

/** The 20-bit tag a group-bound key carries: SHA-256("volact-key-group/v1\0" ‖ group id bytes), top 20 bits. */
export function groupTagOf(groupId: Buffer): number {
  return createHash('sha256').update('volact-key-group/v1\0').update(groupId).digest().readUInt32BE(0) >>> 12;
}

/** Whether a key may activate the group: true or false for a group-bound key, null when the key does not say. */
export function keyFitsGroup(key: ProductKey, groupId: Buffer): boolean | null {
  return key.groupTag === null ? null : key.groupTag === groupTagOf(groupId);
}

function tagOfPayload(payload: Buffer): number {
  return payload.readUInt32BE(0) >>> (32 - GROUP_TAG_BITS);
}

const SYMBOL_VALUE = new Map<string, number>();
for (let i = 0; i < N; i++) SYMBOL_VALUE.set(KEY_ALPHABET[i] as string, i);
// Crockford's decoding: letters people confuse with digits read as those digits.
SYMBOL_VALUE.set('O', 0);
SYMBOL_VALUE.set('I', 1);
SYMBOL_VALUE.set('L', 1);

/** Multiplication in GF(2^5) modulo x^5 + x^2 + 1. */
function gf32Mul(a: number, b: number): number {
  let r = 0;
  while (b) {
    if (b & 1) r ^= a;
    b >>= 1;
    a <<= 1;
    if (a & 32) a ^= 0b100101;
  }
  return r;
}

/**
 * Damm's check over the quasigroup x∘y = 2x ⊕ y of GF(32). It is totally anti-symmetric
 * ((c∘x)∘y = (c∘y)∘x only when x = y, since 2 ≠ 1), so a swap of different neighbours always
 * changes the result; each step is a bijection, so a single changed symbol always does too.
 * The check symbol c makes the fold end at 0: 2·interim ⊕ c = 0.
 */
function checkSymbol(values: readonly number[]): number {
  let interim = 0;
  for (const v of values) interim = gf32Mul(2, interim) ^ v;
  return gf32Mul(2, interim);
}

function hashSymbols(values: readonly number[]): number[] {
  const digest = createHash('sha256').update('volact-key-v1\0').update(Buffer.from(values)).digest();
  const bits = digest.readUInt16BE(0) >>> 1; // 15 bits
  return [(bits >>> 10) & 31, (bits >>> 5) & 31, bits & 31];
}

function payloadToSymbols(payload: Buffer): number[] {
  const out: number[] = [];
  let acc = 0n;
  for (const b of payload) acc = (acc << 8n) | BigInt(b);
  acc >>= 4n; // 104 bits stored, 100 used
  for (let i = 19; i >= 0; i--) out[i] = Number((acc >> BigInt(5 * (19 - i))) & 31n);
  return out;
}

function symbolsToPayload(symbols: readonly number[]): Buffer {
  let acc = 0n;
  for (const s of symbols) acc = (acc << 5n) | BigInt(s);
  acc <<= 4n;
  const out = Buffer.alloc(13);
  for (let i = 12; i >= 0; i--) {
    out[i] = Number(acc & 0xffn);
    acc >>= 8n;
  }
  return out;
}

function render(values: readonly number[]): string {
  const chars = values.map((v) => KEY_ALPHABET[v]).join('');
  return chars.match(/.{5}/g)!.join('-');
}

/**
 * Builds a key of `type` around a payload (random if not given). With `groupId` (a MAK or a
 * retail key), the key is group-bound: its payload's first 20 bits are the group's tag.
 */
export function makeKey(type: KeyType, payload: Buffer = randomBytes(13), groupId?: Buffer): ProductKey {
  if (payload.length < 13) throw new RangeError('a key payload has 13 bytes');
  const p = Buffer.from(payload.subarray(0, 13));
  p[12] = (p[12] as number) & 0xf0;
  let code: number = KEY_TYPES[type];
  if (groupId) {
    if (type !== 'mak' && type !== 'retail') throw new RangeError(`a ${type} key is not bound to one group`);
    const tag = groupTagOf(groupId);
    p.writeUInt32BE(((tag << 12) | (p.readUInt32BE(0) & 0xfff)) >>> 0, 0);
    code = GROUP_BOUND_CODES[type];
  }
  const values = [code, ...payloadToSymbols(p)];
  values.push(checkSymbol(values));
  values.push(...hashSymbols(values));
  return { text: render(values), type, payload: p, groupTag: groupId ? tagOfPayload(p) : null };
}

/** Strict parser: length, alphabet, both checks, known type. */
export function parseKey(input: string): ProductKey {
  if (typeof input !== 'string' || input.length > 64) {
    throw new CoreError('KEY_MALFORMED', 'a product key has 25 characters in five groups of five');
  }
  const compact = input.trim().toUpperCase().replace(/[-\s]/g, '');
  if (compact.length !== KEY_SYMBOLS) {
    throw new CoreError(
      'KEY_MALFORMED',
      `a product key has 25 characters in five groups of five (XXXXX-XXXXX-XXXXX-XXXXX-XXXXX); got ${compact.length}`,
    );
  }
  const values: number[] = [];
  for (let i = 0; i < compact.length; i++) {
    const ch = compact[i] as string;
    const v = SYMBOL_VALUE.get(ch);
    if (v === undefined) {
      throw new CoreError(
        'KEY_MALFORMED',
        `character ${i + 1} ("${ch}") is not used in product keys; keys use 0-9 and A-Z except U (I and L read as 1, O as 0)`,
      );
    }
    values.push(v);
  }
  const body = values.slice(0, 21);
  const hash = hashSymbols(values.slice(0, 22));
  if (checkSymbol(body) !== values[21] || hash[0] !== values[22] || hash[1] !== values[23] || hash[2] !== values[24]) {
    throw new CoreError('KEY_CHECKSUM_FAILED', 'key checksum failed: check the key for a mistyped character');
  }
  const type = TYPE_BY_CODE.get(values[0] as number);
  if (!type) throw new CoreError('KEY_MALFORMED', `the key's type symbol ${values[0]} is not a known key type`);
  const payload = symbolsToPayload(values.slice(1, 21));
  const groupTag = GROUP_BOUND_BY_CODE.has(values[0] as number) ? tagOfPayload(payload) : null;
  return { text: render(values), type, payload, groupTag };
}

/** Parses a key and insists on its type, naming what was given instead. */
export function parseKeyOfType(input: string, ...expected: KeyType[]): ProductKey {
  const key = parseKey(input);
  if (!expected.includes(key.type)) {
    throw new CoreError(
      'KEY_WRONG_TYPE',
      `this is a ${key.type} key (${lastFiveOf(key)}); expected a ${expected.join(' or ')} key`,
    );
  }
  return key;
}

export function lastFiveOf(key: ProductKey | string): string {
  const text = typeof key === 'string' ? key : key.text;
  return `…${text.replace(/-/g, '').slice(-5)}`;
}

/**
 * A group's generic volume licence key (GVLK) is public and the same on every volume
 * installation of the group: derived from the authority's root key and the group id.
 */
export function gvlkFor(rootPublicKey: Buffer, groupId: Buffer): ProductKey {
  const payload = createHash('sha256').update('volact-gvlk-v1\0').update(rootPublicKey).update(groupId).digest();
  return makeKey('gvlk', payload);
}
