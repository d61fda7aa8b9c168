/**
 * Test support, reachable only as `@volact/client/testing` (never from `@volact/client`): a
 * throwaway PKI made by openssl for the agent's and the console's TLS tests.
 */
export { makeTestPki, type TestCertificate, type TestPki } from './tls-test-pki.js';
