import { VolactError } from '@volact/core';

/**
 * The client's error catalogue. KMS_* codes are the ordered checks a KMS response must pass;
 * each says what failed and what to do.
 */
export const clientErrors = {
  CLIENT_NOT_INITIALISED: 'the state directory holds no installation; run `volact client init`',
  CLIENT_EXISTS: 'the state directory already holds an installation',
  PRODUCT_CONFIG_INVALID: 'the product configuration file is unreadable or invalid',
  KEY_INVALID: 'the product key is malformed, mistyped or of the wrong type',
  NO_MAK_INSTALLED: 'installation IDs and confirmation IDs are for MAK activation: install a MAK first',
  HOST_ADDRESS_INVALID: 'a KMS host address is not HOST[:PORT]',
  NO_KMS_HOST: 'no KMS host is set and DNS discovery found none; `volact client set-host` or `set-domain`',
  KMS_UNREACHABLE: 'the KMS host did not accept a connection',
  KMS_TIMEOUT: 'the KMS host did not answer in time',
  KMS_MALFORMED_RESPONSE: 'the KMS host sent something that is not a valid response',
  KMS_HOST_ERROR: 'the KMS host refused the request (its reason is in the message)',
  KMS_CERT_UNTRUSTED: "the host's certificate is not signed by this product's authority",
  KMS_CERT_EXPIRED: "the host's certificate is expired or not yet valid",
  KMS_CERT_GROUP_MISMATCH: "the host's certificate does not cover this product group",
  KMS_BAD_SIGNATURE: "the response's signature does not verify",
  KMS_NONCE_MISMATCH: 'the response answers another request (replayed or stale)',
  KMS_GROUP_MISMATCH: 'the response is for another product group',
  KMS_CLIENT_MISMATCH: 'the response is for another client machine ID',
  KMS_CLOCK_SKEW: "the host's time and this machine's differ by more than allowed",
  KMS_THRESHOLD_NOT_MET: 'the host has not yet counted enough clients of this group',
  NO_AUTHORITY: "a MAK activates online at the publisher's authority: give --authority URL, or activate by phone",
  AUTHORITY_UNREACHABLE: 'the authority did not answer (network, DNS, TLS or timeout)',
  AUTHORITY_URL_INSECURE: 'the authority URL is plain http:// to another machine; use https://',
  CONFIRMATION_INVALID:
    'the confirmation ID is mistyped (the group is named), or was not issued for this installation ID and product',
  ACTIVATION_UNTRUSTED: "the authority's answer does not verify against the product's pinned root key",
  DOMAIN_INVALID: 'a DNS or directory domain name is not valid',
  NO_DIRECTORY_OBJECT: "the directory holds no activation object for this product's group",
  DIRECTORY_OBJECT_INVALID: 'an activation object in the directory is malformed',
  DIRECTORY_OBJECT_UNTRUSTED: "an activation object is not signed by this product's authority",
  DIRECTORY_OBJECT_DOMAIN_MISMATCH: 'an activation object is bound to another directory domain than this member',
  DIRECTORY_OBJECT_GROUP_MISMATCH: "an activation object is for another product group than this installation's",
  LICENCE_TAMPERED: 'the stored activation does not verify; the licence store was altered',
  AGENT_TLS_INVALID:
    'agent endpoint: the TLS certificate, key or client CA is not PEM, or the key does not match the certificate (named in the message); raised at start',
  UNAUTHORIZED: 'agent endpoint: the call has no bearer token or a wrong one (HTTP 401)',
  REQUEST_INVALID: 'agent endpoint: the body is not JSON, too large, or does not match the route (HTTP 400)',
  NOT_FOUND: 'agent endpoint: no such route (HTTP 404)',
  INTERNAL: 'agent endpoint: an unexpected error; see the agent log (HTTP 500)',
} as const;

export type ClientErrorCode = keyof typeof clientErrors;

export class ClientError extends VolactError<ClientErrorCode> {
  override readonly name = 'ClientError';
}
