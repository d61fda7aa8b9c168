/** Digit groups as typed (no JSX: test/e2e/console-web-scale.test.ts imports it under node too). */
// Core's own digit-group rule (pure: no node import), bundled as it is: never a copy that drifts.
import { DATA_DIGITS_PER_GROUP, decodeDigitGroups, encodeDigitGroups } from '../../../../core/src/digit-groups';

/** Digits a group has: its data digits and one check digit. */
export const DIGITS_PER_GROUP = DATA_DIGITS_PER_GROUP + 1;
/**
 * Groups of a confirmation ID: core's CID_GROUPS (installation-id.ts, which is node code and
 * does not bundle); test/e2e/console-web-scale.test.ts asserts the two are equal.
 */
export const CONFIRMATION_ID_GROUPS = 24;

/**
 * What is wrong with the group typed at `position` (from 1), or null when it is right. The
 * check is core's decodeDigitGroups over that group behind `position - 1` right groups (each
 * group's check digit depends on its position only, so the ones before it do not change it).
 */
export function groupProblem(position: number, text: string): string | null {
  if (text === '') return `group ${position} is empty`;
  if (/\D/.test(text)) return `group ${position} has a character that is not a digit`;
  if (text.length !== DIGITS_PER_GROUP)
    return `group ${position} has ${text.length} digits; it needs ${DIGITS_PER_GROUP}`;
  const before = position > 1 ? `${encodeDigitGroups(0n, position - 1)}-` : '';
  try {
    decodeDigitGroups(before + text, [position], 'confirmation ID');
    return null;
  } catch {
    return `group ${position} is wrong; check its ${DIGITS_PER_GROUP} digits against what was read out`;
  }
}

/** The group a server message names ("… group 7 is wrong …"), from 1, or null. */
export function groupNamed(message: string): number | null {
  const m = /\bgroup (\d+)\b/i.exec(message);
  return m ? Number(m[1]) : null;
}
