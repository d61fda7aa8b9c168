import type { Principal } from '../access/principal.js';
import type { Page, PageQuery } from '../organisations/types.js';

/**
 * An organisation asks for more activations on a key; a publisher user approves or declines
 * with a reason (docs/portal.md "Limit-raise requests"). Approval raises the limit exactly once
 * however many times and on however many nodes it is clicked: the request's state changes
 * from pending under its row lock, in the same transaction as the limit and the events.
 */
export type RaiseRequestState = 'pending' | 'approved' | 'declined';

export interface RaiseRequest {
  /** `rr_` + 24 hex. */
  readonly id: string;
  readonly orgId: string;
  readonly keyId: string;
  readonly keyLast5: string;
  /** Activations asked for on top of the limit at the time of the decision. */
  readonly additional: number;
  readonly reason: string;
  readonly state: RaiseRequestState;
  readonly requestedBy: string;
  readonly requestedAt: string;
  readonly decidedBy: string | null;
  readonly decidedAt: string | null;
  readonly decisionReason: string | null;
  /** The key's limit before and after an approval (null until approved). */
  readonly limitBefore: number | null;
  readonly limitAfter: number | null;
}

export interface RaiseRequestsApi {
  /** RAISE_REQUEST_INVALID (additional 1–1 000 000, reason 1–500 characters); writes `raise_request.created`. */
  create(
    orgId: string,
    input: { keyId: string; additional: number; reason: string },
    by: Principal,
  ): Promise<RaiseRequest>;
  list(query: PageQuery & { orgId?: string; state?: RaiseRequestState }): Promise<Page<RaiseRequest>>;
  get(id: string): Promise<RaiseRequest>;
  /**
   * RAISE_REQUEST_DECIDED when it is no longer pending (the message names who decided and how).
   * An approval raises the key's limit by `additional` and writes `key.limit_raised` and
   * `raise_request.decided`; a decline writes `raise_request.decided`.
   */
  decide(id: string, input: { decision: 'approve' | 'decline'; reason: string }, by: Principal): Promise<RaiseRequest>;
}
