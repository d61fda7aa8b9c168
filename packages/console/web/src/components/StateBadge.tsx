import type { LicenceState } from '../types';
import { STATE_LABELS as LABELS } from '../vocabulary';

export const stateLabel = (state: LicenceState | 'unknown' | null): string => LABELS[state ?? 'unknown'];

/** A licence state as a coloured badge (colours in styles.css, one per state). */
export function StateBadge({ state }: { state: LicenceState | null }) {
  const key = state ?? 'unknown';
  return (
    <span className={`badge state-${key}`} data-state={key}>
      {LABELS[key]}
    </span>
  );
}

export function OkBadge({ ok }: { ok: boolean }) {
  return <span className={`badge ${ok ? 'result-ok' : 'result-failed'}`}>{ok ? 'ok' : 'failed'}</span>;
}
