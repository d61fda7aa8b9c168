export { Licence } from './licence.js';
export type { LicenceStatus, ActivationOutcome, InitOptions, OpenOptions, DirectoryMembership } from './licence.js';
export { ClientError, clientErrors } from './errors.js';
export type { ClientErrorCode } from './errors.js';
export { parseKmsAddress, formatKmsAddress } from './kms-address.js';
export type { KmsAddress } from './kms-address.js';
export { VerificationMemo, verifyKmsResponse } from './verify-response.js';
export { deriveState } from './licence-state.js';
export { ACT_TYPES, type ActType } from './licence-store.js';
export type { DoctorReport, DoctorStep } from './doctor.js';
export type { DiscoveryResult, DiscoveredHost } from './discovery.js';
export { orderSrv, DEFAULT_KMS_SERVICE } from './discovery.js';
export {
  createAgentServer,
  checkAgentTls,
  agentHttpStatus,
  AGENT_API_VERSION,
  MIN_AGENT_TOKEN_LENGTH,
} from './agent.js';
export type { AgentServerOptions, AgentTlsOptions, AgentTlsSummary, AgentClientIdentity } from './agent.js';
export {
  readAgentSettings,
  recordAgentSettings,
  readAgentEnrolment,
  recordAgentEnrolment,
  AGENT_SETTINGS_FILE,
} from './agent-settings.js';
export type { AgentSettings, AgentEnrolment } from './agent-settings.js';
