/**
 * Licence states of an installation, from the reference's licence-state table. The number is
 * the code a client reports in its activation request (the host's statistics count them).
 */
export const LICENCE_STATES = [
  'unlicensed',
  'licensed',
  'initial-grace',
  'out-of-tolerance',
  'non-genuine-grace',
  'notification',
] as const;
export type LicenceState = (typeof LICENCE_STATES)[number];

export function licenceStateCode(state: LicenceState): number {
  return LICENCE_STATES.indexOf(state);
}

export function licenceStateFromCode(code: number): LicenceState | undefined {
  return LICENCE_STATES[code];
}
