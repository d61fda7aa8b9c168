import { CoreError } from './errors.js';

/**
 * Numbers read over the phone (installation and confirmation IDs): groups of six digits, five
 * of data and one check digit. The check digit is Verhoeff's (dihedral group D5) over the five
 * digits, started from the group's position counted from 1 (mod 10): every single wrong digit and every swap
 * of two neighbouring digits is caught, and so is a group typed less than ten places from
 * where it belongs (two groups swapped) — and named: "group 7 is wrong". (One decimal digit
 * cannot tell 24 positions apart; the signature or proof behind the digits catches the rest.)
 */
export const DATA_DIGITS_PER_GROUP = 5;

// D5 multiplication: 0..4 are rotations, 5..9 reflections.
function d5(j: number, k: number): number {
  if (j < 5 && k < 5) return (j + k) % 5;
  if (j < 5) return 5 + ((j + k) % 5);
  if (k < 5) return 5 + ((j - k + 5) % 5);
  return (j - k + 5) % 5;
}
const D = Array.from({ length: 10 }, (_, j) => Array.from({ length: 10 }, (_, k) => d5(j, k)));
const INV = Array.from({ length: 10 }, (_, j) => D[j]!.indexOf(0));
// Verhoeff's position permutation and its powers.
const P1 = [1, 5, 7, 6, 2, 8, 3, 0, 9, 4];
const P: number[][] = [Array.from({ length: 10 }, (_, i) => i)];
for (let i = 1; i < 8; i++) P.push(P[i - 1]!.map((v) => P1[v]!));

// Starting from state c0 instead of 0 multiplies the result by c0 in D5 (a bijection): the
// error-detecting properties hold, and different starts give different checks for the same digits.
// Read from the text's character codes, without an array per group: IDs are encoded and checked
// on every activation.
const ZERO = 48;

/** Verhoeff's check of the DATA_DIGITS_PER_GROUP digits of `text` from `at`, started from `start`. */
function verhoeffCheckAt(text: string, at: number, start: number): number {
  let c = start;
  for (let i = 0; i < DATA_DIGITS_PER_GROUP; i++) {
    c = D[c]![P[(i + 1) % 8]![text.charCodeAt(at + DATA_DIGITS_PER_GROUP - 1 - i) - ZERO]!]!;
  }
  return INV[c]!;
}

/** The check digit of the group at `position` (from 1) whose data digits start at `at` in `text`. */
function groupCheckAt(position: number, text: string, at: number): number {
  return verhoeffCheckAt(text, at, position % 10);
}

/** Renders `value` as `groups` groups of 5 data digits + 1 check digit, joined by "-". */
export function encodeDigitGroups(value: bigint, groups: number): string {
  const digits = value.toString().padStart(groups * DATA_DIGITS_PER_GROUP, '0');
  if (digits.length > groups * DATA_DIGITS_PER_GROUP) throw new RangeError(`value needs more than ${groups} groups`);
  let out = '';
  for (let g = 0; g < groups; g++) {
    const at = g * DATA_DIGITS_PER_GROUP;
    out += `${g === 0 ? '' : '-'}${digits.slice(at, at + DATA_DIGITS_PER_GROUP)}${groupCheckAt(g + 1, digits, at)}`;
  }
  return out;
}

/** Strict parser: digits in whole groups, the group count one of `allowedGroups`, every check digit right. */
export function decodeDigitGroups(
  input: string,
  allowedGroups: readonly number[],
  what: string,
): { value: bigint; groups: number; /** The canonical text: the groups joined by "-". */ text: string } {
  const size = DATA_DIGITS_PER_GROUP + 1;
  const shape = allowedGroups.map((n) => `${n} groups of ${size} digits`).join(' or ');
  if (typeof input !== 'string' || input.length > 400) {
    throw new CoreError('DIGITS_MALFORMED', `${what} too long; expected ${shape}`);
  }
  const compact = input.replace(/[\s-]/g, '');
  const stray = /[^0-9]/.exec(compact);
  if (stray) {
    throw new CoreError('DIGITS_MALFORMED', `${what}: "${stray[0]}" is not a digit; expected ${shape}`);
  }
  const groups = compact.length / size;
  if (!Number.isInteger(groups) || !allowedGroups.includes(groups)) {
    throw new CoreError('DIGITS_MALFORMED', `${what} has ${compact.length} digits; expected ${shape}`);
  }
  let data = '';
  for (let g = 0; g < groups; g++) {
    const group = compact.slice(g * size, (g + 1) * size);
    if (groupCheckAt(g + 1, compact, g * size) !== compact.charCodeAt(g * size + DATA_DIGITS_PER_GROUP) - ZERO) {
      throw new CoreError(
        'DIGIT_GROUP_WRONG',
        `${what}: group ${g + 1} is wrong (${group}); check its ${size} digits against what was read out`,
      );
    }
    data += group.slice(0, DATA_DIGITS_PER_GROUP);
  }
  return { value: BigInt(data), groups, text: compact.replace(/(\d{6})(?=\d)/g, '$1-') };
}

/** How many groups a number of `bits` bits needs. */
export function groupsForBits(bits: number): number {
  return Math.ceil(Math.ceil(bits * Math.log10(2)) / DATA_DIGITS_PER_GROUP);
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

export function bigIntToBytes(value: bigint, length: number): Buffer {
  const out = Buffer.alloc(length);
  let v = value;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  if (v !== 0n) throw new RangeError(`value does not fit in ${length} bytes`);
  return out;
}
