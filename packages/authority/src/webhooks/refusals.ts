import type { AuthorityStore } from '../store.js';
import { REFUSED_EVENT_INTERVAL_MS, outboxEvent } from './events.js';

/**
 * `activation.refused` for a refusal decided before any activation transaction (a key found
 * revoked when read): under the key's row lock, so nodes refusing the key at once raise one
 * event per hour between them (product_keys.refused_event_at), as the transactions do.
 */
export async function raiseRefusedEvent(
  store: AuthorityStore,
  keyId: string,
  last5: string,
  code: 'KEY_REVOKED',
  now: number,
): Promise<void> {
  await store.withHostActivation(keyId, async (tx) => {
    const { orgId, refusedEventAt } = await tx.keyState();
    if (refusedEventAt !== null && now - refusedEventAt < REFUSED_EVENT_INTERVAL_MS) return;
    await tx.emit([outboxEvent('activation.refused', now, { orgId, keyId }, { code, keyLast5: last5.slice(-5) })], now);
  });
}
