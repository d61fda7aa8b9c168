// The package's public names, listed: what the other packages, the tests and the benches use.
// Everything else in core is internal (core's own tests import it by relative path), so a name
// is added here when another package needs it, never exported wholesale with `export *`.
export { DAY, HOUR, MINUTE, ManualClock, systemClock, type Clock } from './clock.js';
export { CoreError, VolactError, coreErrorCodes } from './errors.js';
export { bytesToGuid, guidToBytes, isGuid, newClientMachineId, randomGuid } from './ids.js';
export { gvlkFor, lastFiveOf, makeKey, parseKey, parseKeyOfType, type KeyType, type ProductKey } from './keys.js';
export {
  aeadOpen,
  aeadSeal,
  agentProbeProofAt,
  generateSigningKeyPair,
  keyFingerprint,
  keyedHash,
  privateKeyToPem,
  publicKeyFromRaw,
  secretsEqual,
  sha256,
  signMessage,
  signingKeyPairFromPem,
  verifyMessage,
  type SigningKeyPair,
} from './crypto.js';
export { LICENCE_STATES, licenceStateCode, licenceStateFromCode, type LicenceState } from './licence-state.js';
export {
  DEFAULT_THRESHOLD,
  GROUP_KINDS,
  GROUP_NAME_RE,
  INTERVAL_BOUNDS,
  KMS_DEFAULTS,
  defaultPolicy,
  parseProductConfig,
  type GroupKind,
  type ProductConfig,
  type ProductGroup,
} from './products.js';
export {
  buildPhoneCertificate,
  decodeHostCertificate,
  hostPublicKeyOf,
  issueHostCertificate,
  signPhoneCertificate,
  verifyHostCertificate,
  type HostCertificate,
} from './certificate.js';
export { readHardwareFingerprint } from './hardware.js';
export {
  ACTIVATION_REQUEST_SIZE,
  BATCH_CONTEXT,
  FRAME_HEADER,
  FrameError,
  FrameReader,
  HostErrorCode,
  MAX_RESPONSE_SIZE,
  MessageType,
  PROTOCOL_VERSION,
  decodeActivationRequest,
  decodeActivationResponse,
  decodeErrorResponse,
  encodeActivationRequest,
  encodeActivationResponse,
  encodeErrorResponse,
  encodeResponseBody,
  frame,
  hostErrorName,
  leafHash,
  merkleTree,
  messageTypeOf,
  rootFromProof,
  type ActivationRequest,
  type ActivationResponse,
  type ProofStep,
} from './wire/index.js';
export { applyMigrations, prepareStoreDatabase } from './migrations.js';
export { shortSigningKey, type ShortSigningKey } from './short-signature.js';
export {
  confirmInstallation,
  dayOf,
  encodeConfirmationId,
  groupsRefOf,
  hardwareRefOf,
  hostKeyRefOf,
  installationProofValid,
  keyRefOf,
  makeInstallationId,
  parseConfirmationId,
  parseInstallationId,
  proofKeyOf,
  verifyInstallationConfirmation,
  type InstallationId,
} from './installation-id.js';
export { authorityEndpoint } from './authority-url.js';
export {
  DEFAULT_OBJECT_VALIDITY_DAYS,
  DOMAIN_NAME_RE,
  MAX_OBJECT_VALIDITY_DAYS,
  OBJECT_EXPIRY_WARNING_DAYS,
  OBJECT_NAME_RE,
  activationObjectFromConfirmation,
  activationObjectInstallationId,
  activationObjectSignatureValid,
  activationObjectValidity,
  normaliseDomain,
  parseActivationObject,
  signActivationObject,
  signPhoneActivationObject,
  type ActivationObject,
} from './activation-object.js';
export { publicKeyRawFromPem, publicKeyToPem } from './signed-file.js';
export {
  MAX_OEM_GROUPS,
  MAX_OEM_MARKER_CHARS,
  checkOemMarker,
  oemCertificateSignatureValid,
  parseOemCertificate,
  parseOemMarker,
  signOemCertificate,
  signOemMarker,
  type OemCertificate,
  type OemCheck,
} from './oem.js';
export {
  MAX_CRL_CHARS,
  MAX_CRL_SERIALS,
  MAX_TOKEN_CHARS,
  checkActivationToken,
  checkTokenCrl,
  parseActivationToken,
  parseTokenCaCertificate,
  parseTokenCrl,
  signActivationToken,
  signTokenCaCertificate,
  signTokenCrl,
  tokenCaFingerprint,
  tokenCaSignatureValid,
  type TokenCaCertificate,
  type TokenCheck,
  type TokenCrl,
} from './activation-token.js';
export {
  parseTsigKeyFile,
  queryAddresses,
  querySrv,
  sendUpdate,
  type DnsRecord,
  type SrvRecord,
  type TsigKey,
} from './dns/index.js';
export { freeLoopbackPort } from './ports.js';
export { TlsMaterialError, checkCertificateAndKey, checkCertificateAuthorities } from './tls-material.js';
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
export { SUPPORTED_PROTOCOL_VERSIONS, isSupportedProtocolVersion } from './wire/messages.js';
