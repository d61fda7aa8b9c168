/**
 * Test support, reachable only as `@volact/authority/testing` (never from `@volact/authority`):
 * a real PostgreSQL on loopback for the scaled store's tests.
 */
export { startTestPostgres, type TestPostgres } from './postgres-test-server.js';
