import type { Principal } from '../access/principal.js';
import type { Page, PageQuery } from '../organisations/types.js';
import type { WebhookEventType } from './events.js';

/**
 * Signed webhooks (docs/portal.md "Webhooks"). A POST per event and endpoint, body the event
 * JSON `{id, type, occurredAt, orgId, data}`, headers `Volact-Event-Id`, `Volact-Event-Type`,
 * and `Volact-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`;
 * a receiver refuses a signature more than 5 minutes off its clock (signature.ts verifies).
 * Delivery is at least once: retried with back-off until a 2xx, for 3 days.
 */

export interface WebhookEndpoint {
  /** `whe_` + 24 hex. */
  readonly id: string;
  /** null: a publisher-level endpoint (hears every organisation's events). */
  readonly orgId: string | null;
  /** https, or http to a loopback address only. */
  readonly url: string;
  readonly events: readonly WebhookEventType[];
  readonly secretLast5: string;
  readonly createdAt: string;
  readonly disabledAt: string | null;
}

export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface WebhookDelivery {
  /** `whd_` + 24 hex. */
  readonly id: string;
  readonly endpointId: string;
  readonly eventId: string;
  readonly eventType: WebhookEventType;
  readonly state: DeliveryState;
  readonly attempts: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly nextAttemptAt: string | null;
  readonly deliveredAt: string | null;
  readonly createdAt: string;
}

export interface WebhooksApi {
  /** WEBHOOK_INVALID; the signing secret is in the answer once. */
  create(
    input: { orgId?: string | null; url: string; events: readonly WebhookEventType[] },
    by: Principal,
  ): Promise<{ endpoint: WebhookEndpoint; secret: string }>;
  list(filter: { orgId?: string | null }): Promise<WebhookEndpoint[]>;
  get(id: string): Promise<WebhookEndpoint>;
  remove(id: string, by: Principal): Promise<void>;
  deliveries(endpointId: string, query: PageQuery & { state?: DeliveryState }): Promise<Page<WebhookDelivery>>;
  /**
   * One delivery by id (WEBHOOK_NOT_FOUND): the REST API checks its endpoint's organisation
   * before a redelivery. Optional until implemented; the API then searches the caller's endpoints.
   */
  getDelivery?(id: string): Promise<WebhookDelivery>;
  /** Queues the delivery's event again for its endpoint (a new delivery, the same event id). */
  redeliver(deliveryId: string, by: Principal): Promise<WebhookDelivery>;
  /** Starts the dispatcher loop of this node (authority serve); idempotent. */
  start(): void;
  /** Stops it, waiting for deliveries in flight. */
  stop(): Promise<void>;
  /** One pass (fan out new events, send what is due): what tests and the loop call. */
  dispatchOnce(): Promise<{ fannedOut: number; attempted: number; delivered: number }>;
}
