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
  NO_MAK_INSTALLED:
    'installation and confirmation IDs are for MAK or retail activation: install a MAK or retail key first',
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
  KMS_HOST_REVOKED:
    "the host's key is on the publisher's revocation list this installation holds: use another KMS host",
  KMS_HOST_STATUS_MISSING:
    'a host certified online answered without a current revocation status for its key (signed by a trusted root, not past its next update): the host must reach the authority to renew it',
  TRUST_FILE_INVALID:
    "the trust file is not the JSON of the authority's GET /v1/trust, or lists only roots this installation does not trust (another authority's)",
  CID_SIGNER_UNKNOWN:
    "the confirmation ID's key index and issue day name no key this installation trusts: install the current product config (`volact client set-product`) or the authority's trust bundle (`volact client install-trust FILE`)",
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
  OEM_MARKER_INVALID:
    "an OEM marker is malformed, or not signed by its certificate's manufacturer key (altered, or made with another key)",
  OEM_MANUFACTURER_UNTRUSTED: "the marker's OEM certificate is not signed by this product's authority",
  OEM_MANUFACTURER_REVOKED:
    "the marker's manufacturer key is on the publisher's revocation list this installation holds: the marker no longer licenses",
  OEM_CERT_EXPIRED: "the marker was made outside its OEM certificate's validity",
  OEM_GROUP_MISMATCH:
    "the marker is for another product group, or its manufacturer is not certified for the marker's group",
  OEM_HARDWARE_MISMATCH: "the marker was made for other hardware than this machine's",
  TOKEN_INVALID: 'an activation token is malformed, or not signed by the CA certificate it carries',
  TOKEN_CA_UNTRUSTED: "the token's (or CRL's) issuing CA is not certified by this product's authority for this group",
  TOKEN_CA_REVOKED:
    "the token's issuing CA is on the publisher's revocation list this installation holds: its tokens no longer license",
  TOKEN_GROUP_MISMATCH: "the token (or its CA) is for another product group than this installation's",
  TOKEN_HARDWARE_MISMATCH: "the token was issued for other hardware than this machine's",
  TOKEN_EXPIRED: "the token is past its notAfter (or its CA certificate's), or not yet valid",
  TOKEN_REVOKED: "the token's serial is on the installed CRL of its CA",
  NO_TOKEN: 'act-type token: no activation token is installed; `volact client install-token`',
  CRL_INVALID: 'a CRL is malformed or not signed by its CA',
  CRL_OUTDATED: 'the CRL is older than the one installed for the same CA (a rollback would un-revoke tokens)',
  ACT_TYPE_FORBIDS: "the installation's activation type does not allow this method (set-act-type)",
  ACT_TYPE_INVALID: 'an activation type is not one of any, directory, kms, token',
  LICENCE_TAMPERED: 'the stored activation does not verify; the licence store was altered',
  LICENCE_STORE_DAMAGED:
    'licence.json does not parse (or has an old format): `volact client reset --state-dir DIR --product FILE` makes a new one, then activate again',
  PRODUCT_FILE_CHANGED:
    'the product file at the installed location is not the one the installation was made with (swapped): restore it, or accept it with `volact client set-product`',
  DIRECTORY_OBJECT_EXPIRED:
    'the activation object is past its signed validity (or not yet valid): the publisher re-issues it and it is published again',
  TOKEN_CRL_REQUIRED: "the token requires its CA's CRL and none is installed: `volact client install-crl FILE`",
  AGENT_TLS_INVALID:
    'agent endpoint: the TLS certificate, key or client CA is not PEM, or the key does not match the certificate (named in the message); raised at start',
  UNAUTHORIZED: 'agent endpoint: the call has no bearer token or a wrong one (HTTP 401)',
  AGENT_SETTINGS_INVALID:
    "agent endpoint: agent.json (the agent's settings and enrolment) exists but does not parse; token calls are refused until it is restored or deleted (HTTP 500)",
  ALREADY_ENROLLED:
    'agent endpoint: a console enrolled this agent already; rotate its token (`volact console rotate-token`) instead (HTTP 409)',
  NOT_ENROLLED:
    'agent endpoint: no console enrolled this agent (or it takes no token: mutual TLS only), so there is no machine token to rotate (HTTP 409)',
  AUTHORITY_NOT_ALLOWED:
    "agent endpoint: the authority URL of the request is neither the product config's nor one given with `client agent --authority` (HTTP 403)",
  REQUEST_INVALID: 'agent endpoint: the body is not JSON, too large, or does not match the route (HTTP 400)',
  NOT_FOUND: 'agent endpoint: no such route (HTTP 404)',
  INTERNAL: 'agent endpoint: an unexpected error; see the agent log (HTTP 500)',
} as const;

export type ClientErrorCode = keyof typeof clientErrors;

export class ClientError extends VolactError<ClientErrorCode> {
  override readonly name = 'ClientError';
}
