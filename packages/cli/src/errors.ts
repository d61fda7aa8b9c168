/**
 * The CLI's own error catalogue: what `volact` finds wrong on the command line before any
 * component runs. Errors of the components pass through with their own codes (docs/errors.md).
 */
export const cliErrors = {
  OPTION_INVALID:
    'an option or argument has an invalid value, is missing, or conflicts with another (a key given twice, a file that cannot be read); the message says what is expected',
  PRODUCT_CONFIG_INVALID: 'the product file named on the command line cannot be read (the message names it and why)',
  AUTHORITY_UNREACHABLE:
    'a remote authority (`authority … --url`) did not answer: network, DNS, TLS or timeout (exit 3: retry later)',
  AUTHORITY_URL_INVALID:
    'the --url of a remote authority is not a URL, or is plain http:// to another machine (https:// is needed; http:// only to loopback)',
  AUTHORITY_BAD_RESPONSE: 'the --url answered, but not like a volact authority (no JSON, or no volact error body)',
  INTERNAL: 'an unexpected error that carries no code of its own; the message is its text (please report it)',
} as const;

export type CliErrorCode = keyof typeof cliErrors;
