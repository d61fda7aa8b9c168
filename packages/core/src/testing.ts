/**
 * Test support, reachable only as `@volact/core/testing` (never from `@volact/core`): a real
 * BIND 9 on loopback for the DNS tests, and for `volact demo --dns`, which runs the same sandbox;
 * a free loopback port for the other launchers (PostgreSQL, slapd).
 */
export { dig, startTestBind, type TestBind } from './dns/bind-test-server.js';
export { freeLoopbackPort, listensOn, onFreeLoopbackPort, PORT_TAKEN_LOG, PortTakenError } from './ports.js';
