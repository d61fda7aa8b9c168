/**
 * Test support, reachable only as `@volact/authority/testing` (never from `@volact/authority`):
 * a real PostgreSQL on loopback for the scaled store's tests; a proxy that alters the
 * authority's replies, for the clients' tests.
 */
export { startTestPostgres, type TestPostgres } from './postgres-test-server.js';
export { startReplyTamperingProxy, type ReplyTamperingProxy } from './reply-tampering-proxy.js';
