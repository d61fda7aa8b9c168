export * from './clock.js';
export * from './errors.js';
export * from './ids.js';
export * from './keys.js';
export * from './crypto.js';
export * from './licence-state.js';
export * from './products.js';
export * from './certificate.js';
export * from './hardware.js';
export * from './wire/index.js';
export * from './migrations.js';
export * from './digit-groups.js';
export * from './short-signature.js';
export * from './installation-id.js';
export * from './authority-url.js';
export * from './activation-object.js';
export * from './signed-file.js';
export * from './oem.js';
export * from './activation-token.js';
export * from './dns/index.js';
export * from './ports.js';
export * from './tls-material.js';
export {
  AGENT_API_VERSION,
  INSTALLED_KEY_TYPES,
  LICENCE_METHODS,
  agentStatusSchema,
  type AgentStatus,
  type AgentStatusReply,
  type LicenceMethod,
} from './agent-api.js';
export {
  MAX_BULK_CONFIRMATIONS,
  MAX_KEY_LIMIT,
  adminKeyLimitRequestSchema,
  adminKeyRequestSchema,
  bulkConfirmationReplySchema,
  bulkConfirmationRequestSchema,
  bulkConfirmationResultSchema,
  confirmationReplySchema,
  confirmationRequestSchema,
  errorReplySchema,
  healthReplySchema,
  hostActivationReplySchema,
  hostActivationRequestSchema,
  installationActivationReplySchema,
  installationActivationRequestSchema,
  keyReportSchema,
  readAuthorityReply,
  type BulkConfirmationReply,
  type BulkConfirmationResult,
  type ConfirmationReply,
  type ErrorReply,
  type HealthReply,
  type HostActivationReply,
  type HostActivationRequestBody,
  type InstallationActivationReply,
  type InstallationActivationRequestBody,
  type KeyReportReply,
} from './authority-api.js';
