import { useId, type ButtonHTMLAttributes, type ReactNode } from 'react';
import type { SessionInfo } from '../types';

/** What a viewer is told on every control that changes something (the server answers ROLE_FORBIDDEN). */
export const VIEWER_REASON = 'viewers cannot change anything: ask a console admin';

/** The reason a session may not change anything, or null (an admin). */
export const viewerReason = (session: Pick<SessionInfo, 'role'> | null | undefined): string | null =>
  session && session.role !== 'admin' ? VIEWER_REASON : null;

type Props = Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'disabled'> & {
  /**
   * Why the button cannot be used now, or null/undefined when it can. A disabled button always
   * says why: the reason is shown next to it (visible text) and is its accessible description.
   */
  reason?: string | null | false;
  /** Disabled without a reason to show (e.g. while its own request runs: the label says so). */
  busy?: boolean;
  children: ReactNode;
};

/**
 * A button that, when it cannot be used, shows why: `reason` is rendered as a small text next to
 * it and referenced by aria-describedby (a disabled button's title tooltip is never shown on touch
 * screens nor read by every screen reader).
 */
export function ReasonButton({ reason, busy = false, children, className, type = 'button', ...rest }: Props) {
  const id = useId();
  const why = reason || null;
  return (
    <span className="reason-button">
      <button
        {...rest}
        type={type}
        className={className}
        disabled={why !== null || busy}
        aria-describedby={why ? id : undefined}
        aria-busy={busy || undefined}
      >
        {children}
      </button>
      {why && (
        <span id={id} className="reason">
          {why}
        </span>
      )}
    </span>
  );
}
