/**
 * Test support, reachable only as `@volact/directory/testing` (never from `@volact/directory`):
 * a real OpenLDAP slapd on loopback for directory-based activation tests.
 */
export { startTestSlapd, type TestSlapd, type TestSlapdOptions } from './slapd-test-server.js';
