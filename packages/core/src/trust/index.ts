export { KEY_ID_BYTES, keyIdHex, keyIdOf } from './key-id.js';
export { fileSigner, type Signer } from './signer.js';
export {
  ROOT_TRANSITION_BYTES,
  decodeRootTransition,
  makeRootTransition,
  verifyRootTransition,
  type RootTransition,
} from './root-transition.js';
export {
  DELEGATION_BYTES,
  DELEGATION_PURPOSE,
  MAX_DELEGATION_VALIDITY_MS,
  confirmationKeyIndex,
  decodeDelegation,
  makeDelegation,
  verifyDelegation,
  type Delegation,
} from './delegation.js';
export {
  HOST_STATUS_BYTES,
  MAX_HOST_STATUS_VALIDITY_MS,
  MAX_REVOCATION_ENTRIES,
  REVOCATION_KIND,
  REVOCATION_LIST_LIFETIME,
  assertNotOlder,
  decodeHostStatus,
  decodeRevocationList,
  isRevoked,
  makeHostStatus,
  makeRevocationList,
  revocationSubjectOfKeyId,
  verifyHostStatus,
  verifyRevocationList,
  type HostStatus,
  type RevocationEntry,
  type RevocationKind,
  type RevocationList,
} from './revocation.js';
export {
  MAX_LEARNED_DELEGATIONS,
  MAX_LEARNED_TRANSITIONS,
  MAX_TRANSITION_CHAIN,
  TrustStore,
  type TrustRoot,
  type TrustedDelegate,
} from './trust-store.js';
