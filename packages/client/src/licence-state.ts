import { DAY, type LicenceState } from '@volact/core';
import type { LicenceRecord } from './licence-store.js';

export interface DerivedState {
  readonly state: LicenceState;
  /** When the current state ends by itself (validity end, grace end); null when it does not. */
  readonly stateEndsAt: number | null;
  /** End of the licence validity (licensed) — null when never activated. */
  readonly validUntil: number | null;
}

/**
 * The licence-state table of the reference, as a pure function of the record and the time:
 *   no key installed                         → unlicensed
 *   stored activation does not verify        → non-genuine grace (30 d), then notification
 *   MAK-activated (confirmed, permanent)     → licensed
 *   activated, within validity (180 d)       → licensed
 *   validity lapsed, within 30 d             → out-of-tolerance grace
 *   after that                               → notification
 *   never activated, within initial grace    → initial grace (30 d), then notification
 */
export function deriveState(
  record: LicenceRecord,
  now: number,
  activationHostTime: number | null,
  evidenceValid: boolean,
  permanent = false,
): DerivedState {
  const p = record.product.policy;
  if (!record.installedKey) return { state: 'unlicensed', stateEndsAt: null, validUntil: null };
  if (record.activation && !evidenceValid) {
    const since = record.nonGenuineSince ?? now;
    const end = since + p.nonGenuineGraceDays * DAY;
    return now < end
      ? { state: 'non-genuine-grace', stateEndsAt: end, validUntil: null }
      : { state: 'notification', stateEndsAt: null, validUntil: null };
  }
  if (permanent) return { state: 'licensed', stateEndsAt: null, validUntil: null };
  if (activationHostTime !== null) {
    const validUntil = activationHostTime + p.activationValidityDays * DAY;
    if (now < validUntil) return { state: 'licensed', stateEndsAt: validUntil, validUntil };
    const graceEnd = validUntil + p.outOfToleranceGraceDays * DAY;
    if (now < graceEnd) return { state: 'out-of-tolerance', stateEndsAt: graceEnd, validUntil };
    return { state: 'notification', stateEndsAt: null, validUntil };
  }
  const graceEnd = record.installedAt + p.initialGraceDays * DAY;
  if (now < graceEnd) return { state: 'initial-grace', stateEndsAt: graceEnd, validUntil: null };
  return { state: 'notification', stateEndsAt: null, validUntil: null };
}
