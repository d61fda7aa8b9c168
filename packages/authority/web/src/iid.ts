/**
 * Installation IDs as people type them (packages/core/src/digit-groups.ts, the same rules):
 * groups of six digits, five of data and one check digit, Verhoeff's (dihedral group D5) over
 * the five, started from the group's position counted from 1 (mod 10). A product
 * installation's IID has 13 groups, a KMS host's or an activation object's 20.
 */
export const IID_GROUPS = { installation: 13, 'kms-host': 20 } as const;
export const DIGITS_PER_GROUP = 6;
const DATA_DIGITS = 5;

function d5(j: number, k: number): number {
  if (j < 5 && k < 5) return (j + k) % 5;
  if (j < 5) return 5 + ((j + k) % 5);
  if (k < 5) return 5 + ((j - k + 5) % 5);
  return (j - k + 5) % 5;
}
const D = Array.from({ length: 10 }, (_, j) => Array.from({ length: 10 }, (_, k) => d5(j, k)));
const INV = Array.from({ length: 10 }, (_, j) => (D[j] as number[]).indexOf(0));
const P1 = [1, 5, 7, 6, 2, 8, 3, 0, 9, 4];
const P: number[][] = [Array.from({ length: 10 }, (_, i) => i)];
for (let i = 1; i < 8; i++) P.push((P[i - 1] as number[]).map((v) => P1[v] as number));

/** The check digit of five data digits in the group at `position` (from 1). */
export function checkDigit(position: number, data: string): number {
  let c = position % 10;
  for (let i = 0; i < DATA_DIGITS; i++) {
    const digit = data.charCodeAt(DATA_DIGITS - 1 - i) - 48;
    c = (D[c] as number[])[(P[(i + 1) % 8] as number[])[digit] as number] as number;
  }
  return INV[c] as number;
}

/** What is wrong with one typed group (null: it is right), for its error message. */
export function groupProblem(position: number, text: string): string | null {
  const digits = text.replace(/[\s-]/g, '');
  if (digits === '') return `group ${position} is empty`;
  if (/\D/.test(digits)) return `group ${position} has a character that is not a digit`;
  if (digits.length !== DIGITS_PER_GROUP) {
    return `group ${position} has ${digits.length} digits; it needs ${DIGITS_PER_GROUP}`;
  }
  if (checkDigit(position, digits.slice(0, DATA_DIGITS)) !== Number(digits[DATA_DIGITS])) {
    return `group ${position} is wrong; check its ${DIGITS_PER_GROUP} digits against what was read out`;
  }
  return null;
}

/** Splits a pasted IID (any separators) into groups of six digits. */
export function splitGroups(text: string): string[] {
  const digits = text.replace(/\D/g, '');
  const out: string[] = [];
  for (let i = 0; i < digits.length; i += DIGITS_PER_GROUP) out.push(digits.slice(i, i + DIGITS_PER_GROUP));
  return out;
}
