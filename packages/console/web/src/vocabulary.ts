import type { LicenceMethod, LicenceState } from './types';

/**
 * How the UI names core's vocabularies, in the order it shows them. Records over core's types:
 * a state or method added there is a compile error here until it has a label, instead of a
 * value the UI cannot show or filter by (the method filter once offered KMS, MAK and directory
 * only).
 */
export const STATE_LABELS: Readonly<Record<LicenceState | 'unknown', string>> = {
  licensed: 'licensed',
  'initial-grace': 'initial grace',
  'out-of-tolerance': 'out of tolerance',
  'non-genuine-grace': 'non-genuine grace',
  notification: 'notification',
  unlicensed: 'unlicensed',
  unknown: 'never read',
};

/** The licence states in the order of STATE_LABELS (`unknown`, never read, is not a state). */
export const LICENCE_STATES = (Object.keys(STATE_LABELS) as (LicenceState | 'unknown')[]).filter(
  (s): s is LicenceState => s !== 'unknown',
);

export const METHOD_LABELS: Readonly<Record<LicenceMethod, string>> = {
  kms: 'KMS',
  mak: 'MAK',
  retail: 'retail',
  oem: 'OEM',
  token: 'token',
  directory: 'directory',
};

export const LICENCE_METHODS = Object.keys(METHOD_LABELS) as LicenceMethod[];
