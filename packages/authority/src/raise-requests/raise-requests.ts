import { randomBytes } from 'node:crypto';
import type { Clock } from '@volact/core';
import { holds, isOrgId, seesOrg, type Principal } from '../access/principal.js';
import { AuthorityError, invalidField } from '../errors.js';
import type { Page, PageQuery } from '../organisations/types.js';
import type { RaiseRequestRecord, RaiseRequestStore } from './store.js';
import type { RaiseRequest, RaiseRequestState, RaiseRequestsApi } from './types.js';

/** Activations one request may ask for. */
export const MAX_ADDITIONAL = 1_000_000;
/** Characters of a request's or decision's reason (trimmed). */
export const MAX_REASON = 500;
const STATES: readonly RaiseRequestState[] = ['pending', 'approved', 'declined'];
const ID_RE = /^rr_[0-9a-f]{24}$/;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const toRaiseRequest = (r: RaiseRequestRecord): RaiseRequest => ({
  ...r,
  requestedAt: iso(r.requestedAt) as string,
  decidedAt: iso(r.decidedAt),
});

const invalid = (field: string, message: string) => invalidField(field, message, 'RAISE_REQUEST_INVALID');

function reasonOf(field: string, text: unknown): string {
  const reason = typeof text === 'string' ? text.trim() : '';
  if (reason.length < 1 || reason.length > MAX_REASON) {
    throw invalid(field, `the reason must be 1 to ${MAX_REASON} characters (trimmed), got ${reason.length}`);
  }
  return reason;
}

function scopeMissing(scope: string): AuthorityError {
  const err = new AuthorityError('SCOPE_MISSING', `this needs the scope ${scope}`);
  (err as AuthorityError & { scope?: string }).scope = scope;
  return err;
}

function cursorOf(r: RaiseRequestRecord): string {
  return Buffer.from(`${r.requestedAt}:${r.id}`).toString('base64url');
}

function parseCursor(cursor: string): { at: number; id: string } {
  const m = /^(\d{1,16}):(rr_[0-9a-f]{24})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw invalidField('cursor', 'the cursor is not one this authority gave; start from the first page');
  return { at: Number(m[1]), id: m[2] as string };
}

function pageSize(limit: number | undefined): number {
  if (limit === undefined) return 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
    throw invalidField('limit', `a page holds 1 to 500 items, got ${limit}`);
  }
  return limit;
}

/**
 * Limit-raise requests (docs/portal.md "Limit-raise requests"): an organisation asks for more
 * activations on one of its keys; a publisher user approves (the limit rises by `additional`,
 * once, whatever the number of clicks and nodes) or declines, with a reason. The principal is
 * checked here too (the HTTP routes check it first): a principal that cannot see the
 * organisation gets the same answer as for an absent key or request.
 */
export class RaiseRequests implements RaiseRequestsApi {
  readonly #store: RaiseRequestStore;
  readonly #clock: Clock;

  constructor(options: { store: RaiseRequestStore; clock: Clock }) {
    this.#store = options.store;
    this.#clock = options.clock;
  }

  async create(
    orgId: string,
    input: { keyId: string; additional: number; reason: string },
    by: Principal,
  ): Promise<RaiseRequest> {
    if (typeof orgId !== 'string' || !isOrgId(orgId) || !seesOrg(by, orgId)) {
      throw new AuthorityError('ORG_NOT_FOUND', `no organisation has the id ${String(orgId)}`);
    }
    if (!holds(by, `org:${orgId}:requests`)) throw scopeMissing(`org:${orgId}:requests`);
    if (typeof input.keyId !== 'string' || input.keyId.length < 1 || input.keyId.length > 100) {
      throw invalid('keyId', 'the key ID is missing; list the organisation’s keys to find it');
    }
    const additional = input.additional;
    if (
      typeof additional !== 'number' ||
      !Number.isInteger(additional) ||
      additional < 1 ||
      additional > MAX_ADDITIONAL
    ) {
      throw invalid(
        'additional',
        `additional activations must be a whole number from 1 to ${MAX_ADDITIONAL.toLocaleString('en')}, got ${String(additional)}`,
      );
    }
    const reason = reasonOf('reason', input.reason);
    const record = await this.#store.create({
      id: `rr_${randomBytes(12).toString('hex')}`,
      orgId,
      keyId: input.keyId,
      additional,
      reason,
      requestedBy: by.name,
      requestedAt: this.#clock.now(),
    });
    return toRaiseRequest(record);
  }

  async list(query: PageQuery & { orgId?: string; state?: RaiseRequestState }): Promise<Page<RaiseRequest>> {
    if (query.orgId !== undefined && !isOrgId(query.orgId)) {
      throw invalidField('orgId', `"${query.orgId}" is not an organisation id (org_ and letters or digits)`);
    }
    if (query.state !== undefined && !STATES.includes(query.state)) {
      throw invalid('state', `state must be one of ${STATES.join(', ')}, got ${String(query.state)}`);
    }
    const limit = pageSize(query.limit);
    const rows = await this.#store.list({
      orgId: query.orgId,
      state: query.state,
      after: query.cursor ? parseCursor(query.cursor) : undefined,
      limit: limit + 1,
    });
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items: items.map(toRaiseRequest), nextCursor: rows.length > limit && last ? cursorOf(last) : null };
  }

  async get(id: string): Promise<RaiseRequest> {
    return toRaiseRequest(await this.#find(id));
  }

  async decide(
    id: string,
    input: { decision: 'approve' | 'decline'; reason: string },
    by: Principal,
  ): Promise<RaiseRequest> {
    if (!holds(by, 'publisher:requests')) {
      // An organisation's principal that cannot see the request's organisation learns nothing of it.
      const seen = ID_RE.test(id) ? await this.#store.get(id) : undefined;
      if (!seen || !seesOrg(by, seen.orgId)) throw notFound(id);
      throw scopeMissing('publisher:requests');
    }
    if (input.decision !== 'approve' && input.decision !== 'decline') {
      throw invalid('decision', `the decision must be approve or decline, got ${String(input.decision)}`);
    }
    const reason = reasonOf('reason', input.reason);
    if (!ID_RE.test(id)) throw notFound(id);
    const record = await this.#store.decide({
      id,
      decision: input.decision,
      reason,
      decidedBy: by.name,
      decidedAt: this.#clock.now(),
    });
    return toRaiseRequest(record);
  }

  async #find(id: string): Promise<RaiseRequestRecord> {
    const record = ID_RE.test(id) ? await this.#store.get(id) : undefined;
    if (!record) throw notFound(id);
    return record;
  }
}

const notFound = (id: string) =>
  new AuthorityError(
    'RAISE_REQUEST_NOT_FOUND',
    `no limit-raise request has the id ${id.slice(0, 40)}; list the requests to find it`,
  );
