import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { Clock } from '@volact/core';
import type { Principal } from '../access/principal.js';
import { isOrgId } from '../access/principal.js';
import { AuthorityError, invalidField } from '../errors.js';
import type { Page, PageQuery } from '../organisations/types.js';
import { seal, unseal } from '../sealing.js';
import { WebhookDispatcher, newDeliveryId, type DispatchResult } from './dispatcher.js';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from './events.js';
import type { DeliveryRecord, EndpointRecord, WebhookStore } from './store.js';
import type { DeliveryState, WebhookDelivery, WebhookEndpoint, WebhooksApi } from './types.js';
import { organisationTargetProblem } from './targets.js';

export interface WebhooksOptions {
  readonly store: WebhookStore;
  readonly clock: Clock;
  /** The authority's secret: seals each endpoint's signing secret in the database. */
  readonly secret: Uint8Array;
  /** Whether an organisation exists (ORG_NOT_FOUND otherwise); absent: any well-formed id. */
  readonly orgExists?: (orgId: string) => Promise<boolean>;
  /** The dispatch loop's interval (default 1 s). */
  readonly dispatchIntervalMs?: number;
  /** Organisations' endpoints may be private addresses too (targets.ts; default: public only). */
  readonly privateTargets?: boolean;
}

const DELIVERY_STATES: readonly DeliveryState[] = ['pending', 'delivered', 'failed'];
const invalid = (message: string, field: string) => invalidField(field, message, 'WEBHOOK_INVALID');
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * Why a URL may not receive webhooks (null: it may). https anywhere; plain http only to this
 * machine (127.0.0.0/8, ::1, localhost), where nothing crosses a network to be read or altered.
 */
export function webhookUrlProblem(text: string): string | null {
  if (typeof text !== 'string' || text.length === 0) return 'the url is missing';
  if (text.length > 2048) return 'the url is longer than 2048 characters';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `"${text.slice(0, 100)}" is not a URL (write it as https://host/path)`;
  }
  if (url.username !== '' || url.password !== '') {
    return 'the url must not carry a user name or password (the signature authenticates the sender)';
  }
  if (url.protocol === 'https:') return null;
  if (url.protocol !== 'http:') return `the url's scheme must be https, not ${url.protocol.replace(':', '')}`;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const loopback = host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
  return loopback
    ? null
    : `http is allowed only to this machine (127.0.0.0/8, ::1, localhost): use https for ${url.hostname}`;
}

const toEndpoint = (e: EndpointRecord): WebhookEndpoint => ({
  id: e.id,
  orgId: e.orgId,
  url: e.url,
  events: e.events,
  secretLast5: e.secretLast5,
  createdAt: iso(e.createdAt) as string,
  disabledAt: iso(e.disabledAt),
});
const toDelivery = (d: DeliveryRecord): WebhookDelivery => ({
  id: d.id,
  endpointId: d.endpointId,
  eventId: d.eventId,
  eventType: d.eventType,
  state: d.state,
  attempts: d.attempts,
  lastStatus: d.lastStatus,
  lastError: d.lastError,
  nextAttemptAt: d.state === 'pending' ? iso(d.nextAttemptAt) : null,
  deliveredAt: iso(d.deliveredAt),
  createdAt: iso(d.createdAt) as string,
});
/** Where an endpoint sends, for the audit log: no query string (it may carry a receiver's token). */
const shownUrl = (text: string) => {
  const u = new URL(text);
  return `${u.origin}${u.pathname}`;
};

const encodeCursor = (d: DeliveryRecord) => Buffer.from(`${d.createdAt}.${d.id}`).toString('base64url');
function decodeCursor(cursor: string): { createdAt: number; id: string } {
  const m = /^(\d{1,15})\.(whd_[0-9a-f]{24})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw invalidField('cursor', 'the cursor is not one this list returned: start again without it');
  return { createdAt: Number(m[1]), id: m[2] as string };
}

/** Signed webhooks (docs/portal.md "Webhooks"): endpoints, the delivery log, the dispatcher. */
export class Webhooks implements WebhooksApi {
  readonly #o: WebhooksOptions;
  readonly #dispatcher: WebhookDispatcher;

  constructor(options: WebhooksOptions) {
    this.#o = options;
    this.#dispatcher = new WebhookDispatcher({
      store: options.store,
      clock: options.clock,
      unseal: (sealed) => unseal(options.secret, sealed)?.toString('utf8') ?? null,
      ...(options.privateTargets ? { privateTargets: true } : {}),
      ...(options.dispatchIntervalMs !== undefined ? { intervalMs: options.dispatchIntervalMs } : {}),
    });
  }

  async create(
    input: { orgId?: string | null; url: string; events: readonly WebhookEventType[] },
    by: Principal,
  ): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const problem = webhookUrlProblem(input.url);
    if (problem) throw invalid(problem, 'url');
    if (!Array.isArray(input.events) || input.events.length === 0) {
      throw invalid(`name at least one event: ${WEBHOOK_EVENT_TYPES.join(', ')}`, 'events');
    }
    const unknown = (input.events as readonly unknown[]).filter(
      (e) => !(WEBHOOK_EVENT_TYPES as readonly unknown[]).includes(e),
    );
    if (unknown.length > 0) {
      throw invalid(
        `unknown event ${unknown.map((e) => `"${String(e).slice(0, 40)}"`).join(', ')}: the events are ${WEBHOOK_EVENT_TYPES.join(', ')}`,
        'events',
      );
    }
    const orgId = input.orgId ?? null;
    if (orgId !== null) {
      if (!isOrgId(orgId)) throw invalid(`"${String(orgId).slice(0, 60)}" is not an organisation id (org_…)`, 'orgId');
      if (this.#o.orgExists && !(await this.#o.orgExists(orgId))) {
        throw new AuthorityError('ORG_NOT_FOUND', `there is no organisation ${orgId}`);
      }
      const targetProblem = this.#o.privateTargets ? null : organisationTargetProblem(new URL(input.url));
      if (targetProblem) throw invalid(targetProblem, 'url');
    }
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    const now = this.#o.clock.now();
    const record: EndpointRecord = {
      id: `whe_${randomBytes(12).toString('hex')}`,
      orgId,
      url: input.url,
      events: [...new Set(input.events)],
      secretSealed: seal(this.#o.secret, Buffer.from(secret, 'utf8')),
      secretLast5: secret.slice(-5),
      createdAt: now,
      disabledAt: null,
      createdBy: by.name,
    };
    await this.#o.store.addEndpoint(record, {
      at: now,
      action: 'webhook.add',
      result: 'OK',
      detail: `endpoint ${record.id} (${orgId ?? 'publisher'}) to ${shownUrl(record.url)} for ${record.events.join(', ')}, secret …${record.secretLast5}, by ${by.name}`,
    });
    return { endpoint: toEndpoint(record), secret };
  }

  async list(filter: { orgId?: string | null }): Promise<WebhookEndpoint[]> {
    return (await this.#o.store.listEndpoints(filter.orgId)).map(toEndpoint);
  }

  async get(id: string): Promise<WebhookEndpoint> {
    return toEndpoint(await this.#endpoint(id));
  }

  async #endpoint(id: string): Promise<EndpointRecord> {
    const e = typeof id === 'string' ? await this.#o.store.getEndpoint(id) : undefined;
    if (!e) throw new AuthorityError('WEBHOOK_NOT_FOUND', `there is no webhook endpoint ${String(id).slice(0, 60)}`);
    return e;
  }

  async remove(id: string, by: Principal): Promise<void> {
    const e = await this.#endpoint(id);
    const removed = await this.#o.store.disableEndpoint(e.id, this.#o.clock.now(), {
      at: this.#o.clock.now(),
      action: 'webhook.remove',
      result: 'OK',
      detail: `endpoint ${e.id} to ${shownUrl(e.url)}, by ${by.name}`,
    });
    if (!removed) throw new AuthorityError('WEBHOOK_NOT_FOUND', `webhook endpoint ${e.id} was removed already`);
  }

  async deliveries(endpointId: string, query: PageQuery & { state?: DeliveryState }): Promise<Page<WebhookDelivery>> {
    const e = await this.#endpoint(endpointId);
    const limit = query.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw invalidField('limit', 'limit must be 1-500');
    if (query.state !== undefined && !DELIVERY_STATES.includes(query.state)) {
      throw invalidField('state', `state must be one of ${DELIVERY_STATES.join(', ')}`);
    }
    const rows = await this.#o.store.listDeliveries(e.id, {
      ...(query.state ? { state: query.state } : {}),
      ...(query.cursor ? { before: decodeCursor(query.cursor) } : {}),
      limit: limit + 1,
    });
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items: items.map(toDelivery), nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
  }

  async getDelivery(id: string): Promise<WebhookDelivery> {
    const d = typeof id === 'string' ? await this.#o.store.getDelivery(id) : undefined;
    if (!d) throw new AuthorityError('WEBHOOK_NOT_FOUND', `there is no webhook delivery ${String(id).slice(0, 60)}`);
    return toDelivery(d);
  }

  async redeliver(deliveryId: string, by: Principal): Promise<WebhookDelivery> {
    const d = typeof deliveryId === 'string' ? await this.#o.store.getDelivery(deliveryId) : undefined;
    if (!d)
      throw new AuthorityError('WEBHOOK_NOT_FOUND', `there is no webhook delivery ${String(deliveryId).slice(0, 60)}`);
    const e = await this.#endpoint(d.endpointId);
    if (e.disabledAt !== null)
      throw invalid(`endpoint ${e.id} was removed: add it again to receive events`, 'deliveryId');
    const now = this.#o.clock.now();
    const fresh = await this.#o.store.redeliver(d.id, newDeliveryId(), now, {
      at: now,
      action: 'webhook.redeliver',
      result: 'OK',
      detail: `event ${d.eventId} (${d.eventType}) to endpoint ${e.id} again (delivery ${d.id}), by ${by.name}`,
    });
    if (!fresh) throw new AuthorityError('WEBHOOK_NOT_FOUND', `there is no webhook delivery ${deliveryId}`);
    return toDelivery(fresh);
  }

  start(): void {
    this.#dispatcher.start();
  }

  stop(): Promise<void> {
    return this.#dispatcher.stop();
  }

  dispatchOnce(): Promise<DispatchResult> {
    return this.#dispatcher.dispatchOnce();
  }
}
