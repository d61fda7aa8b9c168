export { Authority, HOST_CERT_VALIDITY_DAYS, MAX_CERTIFIED_DAYS, PHONE_CERT_VALIDITY_DAYS } from './authority.js';
export type {
  AuthorityOptions,
  HostActivationRequest,
  HostActivationResult,
  KeyReport,
  MintKeyRequest,
  MintedKey,
  HostStatusAnswer,
  RevocationListReport,
  RevocationResult,
  RevokeHostOptions,
  RevokeOptions,
  KmsHostKeySubject,
  CrashPoint,
  KeyRingStatus,
  OnlineKeyRotation,
  RotationResult,
  RotationStep,
  TrustRecords,
} from './authority.js';
export { AuthorityError, authorityErrors } from './errors.js';
/** For webhook receivers: checks a delivery's Volact-Signature header (docs/portal.md "Webhooks"). */
export { signWebhook, verifyWebhookSignature } from './webhooks/signature.js';
export type { WebhookDelivery, WebhookEndpoint, WebhooksApi } from './webhooks/types.js';
export { WEBHOOK_EVENT_TYPES, type WebhookEventType } from './webhooks/events.js';
export type { AuthorityErrorCode } from './errors.js';
export { createAuthorityServer } from './http.js';
export { MAX_PORTAL_PROXY_FILE_CHARS, confirmInstallationIdFile } from './confirmation-file.js';
export type { AuthorityServerOptions } from './http.js';
export type { AuthorityStore } from './store.js';
export { CLI_PRINCIPAL } from './access/principal.js';
export { DEFAULT_ORG_ID } from './organisations/types.js';
export { parseContact } from './organisations/organisations.js';
export type {
  Artefact,
  ArtefactKind,
  AuditQuery,
  AuditRow,
  Contact,
  KeyListQuery,
  KeySummary,
  MakUsage,
  Organisation,
  OrganisationInput,
  OrganisationsApi,
  Page,
  PageQuery,
  UsagePoint,
} from './organisations/types.js';
export type { Principal, Role, Scope } from './access/principal.js';
export type { AccessApi, ApiTokenInfo, SignIn, User, UserInput } from './access/types.js';
/** Roles, rights and the scopes of each role (docs/portal.md "Roles and scopes"). */
export { ORG_RIGHTS, ORG_ROLES, PUBLISHER_RIGHTS, PUBLISHER_ROLES, scopesOfRole } from './access/principal.js';
export type { RaiseRequest, RaiseRequestState, RaiseRequestsApi } from './raise-requests/types.js';
export {
  createRootKey,
  describeSigner,
  destroyRootKey,
  FILE_ROOTS_DIR,
  listRootKeys,
  openRootSigner,
  openRootSignerByKeyId,
  parseSignerSpec,
  resolveSignerSpec,
} from './root-signer.js';
export type { Pkcs11SignerSpec, RootSigner, RootSignerSpec } from './root-signer.js';
