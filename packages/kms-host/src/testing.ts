/**
 * Test support, reachable only as `@volact/kms-host/testing` (never from `@volact/kms-host`): an
 * activated host over a real authority on loopback, and a small KMS TCP client.
 */
export { ask, askAllFrom, createActivatedHost, exchange, requestPayload, type HostFixture } from './test-fixture.js';
export { stapleTestHostStatus, type TestHostStatusOptions } from './test-trust.js';
