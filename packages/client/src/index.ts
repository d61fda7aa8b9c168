export { Licence } from './licence.js';
export type { LicenceStatus, ActivationOutcome, InitOptions, OpenOptions } from './licence.js';
export { ClientError, clientErrors } from './errors.js';
export type { ClientErrorCode } from './errors.js';
export { parseKmsAddress, formatKmsAddress } from './kms-address.js';
export type { KmsAddress } from './kms-address.js';
export { verifyKmsResponse } from './verify-response.js';
export { deriveState } from './licence-state.js';
