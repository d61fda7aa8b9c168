export { Licence } from './licence.js';
export type { LicenceStatus, ActivationOutcome, InitOptions, OpenOptions, DirectoryMembership } from './licence.js';
export type { ActivationCode } from './licence.js';
export { ClientError, clientErrors } from './errors.js';
export type { ClientErrorCode } from './errors.js';
export { parseKmsAddress, formatKmsAddress } from './kms-address.js';
export type { KmsAddress } from './kms-address.js';
export { VerificationMemo, verifyKmsResponse, certificateSigner } from './verify-response.js';
export type { ResponseExtensions, Expectation, VerifiedResponse } from './verify-response.js';
export { ClientTrust, EMPTY_TRUST, confirmationSigner } from './trust.js';
export type { StoredTrust, ChosenKey, TrustRecords } from './trust.js';
export { deriveState } from './licence-state.js';
export { ACT_TYPES, type ActType } from './licence-store.js';
export {
  attemptMethods,
  clampInterval,
  hostIntervals,
  hostsBeforeDiscovery,
  hostsFromDiscovery,
  nextWakeAt,
  renewalAt,
  retryAt,
  DEFAULT_INTERVALS,
} from './attempt-policy.js';
export type { AttemptMethod, AttemptIntervals, HostSource, InstalledKeyType } from './attempt-policy.js';
export type { DoctorReport, DoctorStep } from './doctor.js';
export type { DiscoveryResult, DiscoveredHost } from './discovery.js';
export { orderSrv, DEFAULT_KMS_SERVICE } from './discovery.js';
// The agent (fastify) is exported from '@volact/client/agent' (agent-entry.ts): the SDK stays light.
