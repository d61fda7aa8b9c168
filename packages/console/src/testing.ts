/**
 * Test support, reachable only as `@volact/console/testing` (never from `@volact/console`): a
 * small real HTTP proxy on loopback for the console's outbound-proxy tests.
 */
export { startTestProxy, type ProxiedRequest, type TestProxy } from './proxy-test-server.js';
export { generateFleet, type GenerateFleetOptions, type GeneratedFleet } from './generate-fleet.js';
