/**
 * Test support, reachable only as `@volact/authority/testing` (never from `@volact/authority`):
 * a real PostgreSQL on loopback for the scaled store's tests; a proxy that alters the
 * authority's replies, for the clients' tests; a SoftHSM2 token in a temporary folder for the
 * root key in a PKCS#11 token.
 */
export { startTestPostgres, type TestPostgres } from './postgres-test-server.js';
export { startReplyTamperingProxy, type ReplyTamperingProxy } from './reply-tampering-proxy.js';
export { startTestSoftHsm, type TestSoftHsm } from './softhsm-test-server.js';
/** The engines themselves, for the benchmark's bulk loads (bench/authority-orgs.ts). */
export { SqliteAuthorityStore } from './sqlite-store.js';
export { PostgresAuthorityStore } from './postgres-store.js';
