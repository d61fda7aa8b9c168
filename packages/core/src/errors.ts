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
  URL_INVALID: 'an authority URL is not a URL',
  URL_INSECURE: 'an authority URL is plain http:// to another machine than this one (https:// is required)',
  CID_INVALID: 'the digits are well formed but do not make a volact confirmation ID',
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
