/** Stable codes for errors raised by core (keys, ids, wire codec, certificates). */
export const coreErrorCodes = {
  KEY_MALFORMED: 'the text is not a product key in the XXXXX-XXXXX-XXXXX-XXXXX-XXXXX form',
  KEY_CHECKSUM_FAILED: 'key checksum failed: a character was mistyped',
  KEY_WRONG_TYPE: 'the key is of another type than the operation needs',
  ID_MALFORMED: 'an identifier is not a GUID (8-4-4-4-12 hex digits)',
  FRAME_MALFORMED: 'a wire frame does not follow the protocol declaration',
  FRAME_TOO_LARGE: 'a wire frame is larger than the protocol allows',
  CERT_MALFORMED: 'a host certificate does not follow its declaration',
  PRODUCT_CONFIG_INVALID: 'a product configuration file is invalid',
  DIGITS_MALFORMED: 'an installation or confirmation ID is not digit groups of the expected count',
  DIGIT_GROUP_WRONG: 'one group of an installation or confirmation ID fails its check digit (the message names it)',
  IID_INVALID: 'the digits are well formed but do not make a volact installation ID',
  ACTIVATION_OBJECT_INVALID: 'an activation object is not one: not JSON, or a field is missing or malformed',
  URL_INVALID: 'an authority URL is not a URL',
  URL_INSECURE: 'an authority URL is plain http:// to another machine than this one (https:// is required)',
  CID_INVALID: 'the digits are well formed but do not make a volact confirmation ID',
  DNS_MALFORMED_REPLY: 'a DNS message (a server reply) does not follow RFC 1035; the message names the first fault',
  DNS_NAME_INVALID: 'a DNS name is not valid (empty label, label over 63 or name over 255 bytes, not ASCII)',
  DNS_RECORD_INVALID: 'a DNS record or update to send is invalid (bad address, number out of range, empty update)',
  DNS_REFUSED: 'the DNS server refused the query or update (for an update: allow-update for this key on the zone?)',
  DNS_NOTAUTH: 'the server did not accept the TSIG key (or is not authoritative for the zone); check --tsig-key-file',
  DNS_NOTZONE: 'a name in the update is not inside the zone being updated (checked before sending, and by the server)',
  DNS_SERVER_FAILURE: 'the DNS server answered with an error (SERVFAIL, FORMERR, NOTIMP...; named in the message)',
  DNS_TIMEOUT: 'no answer from the DNS server in the time allowed (the message names server and time)',
  DNS_UNREACHABLE: 'nothing listens on the DNS server address (connection refused / ICMP port unreachable)',
  DNS_TSIG_INVALID: "the server's reply is unsigned or its TSIG signature does not verify",
  TSIG_KEY_INVALID: 'a TSIG key file is malformed or not hmac-sha256 (make one with tsig-keygen -a hmac-sha256)',
  OEM_FILE_INVALID: 'an OEM certificate or marker is not one: too large, not JSON, or a field is missing or malformed',
  TOKEN_FILE_INVALID:
    'a token CA certificate, activation token or CRL is not one: too large, not JSON, or a field is missing or malformed',
  PUBLIC_KEY_INVALID: 'a public key file is not an Ed25519 public key in PEM (-----BEGIN PUBLIC KEY-----)',
  TRUST_RECORD_INVALID:
    'a root-transition record or delegation certificate is malformed, or does not verify under a root this client trusts',
  REVOCATION_LIST_INVALID: 'a revocation list or host status is malformed (length, version, order of entries)',
  REVOCATION_LIST_STALE: 'a revocation list is older than the one already held (the message names both versions)',
  PROXY_FILE_INVALID:
    'an installation-ID or confirmation file is not of a known version, too large, or a field is wrong (the message names it)',
  PROXY_FILE_TAMPERED:
    'an installation-ID file was edited after the console wrote it (its signature does not verify): collect it again',
  PROXY_FILE_FOREIGN:
    'an installation-ID file is signed by another console key than the one expected (--console-key-id): it is not the file that console collected',
  FILE_WRITE_FAILED:
    'a file could not be written whole (disk full, read-only, no permission): the message names the path; any previous file there is unchanged',
} as const;

export type CoreErrorCode = keyof typeof coreErrorCodes;

/**
 * The base of every package's error class: a stable `code` scripts match on, a message for
 * people that never carries a secret.
 */
export abstract class VolactError<Code extends string = string> extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}

export class CoreError extends VolactError<CoreErrorCode> {
  override readonly name = 'CoreError';
}
