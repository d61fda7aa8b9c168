/**
 * The CLI's own error catalogue: what `volact` finds wrong on the command line before any
 * component runs. Errors of the components pass through with their own codes (docs/errors.md).
 */
export const cliErrors = {
  OPTION_INVALID:
    'an option or argument has an invalid value, is missing, or conflicts with another (a key given twice, a file that cannot be read); the message says what is expected',
  PRODUCT_CONFIG_INVALID: 'the product file named on the command line cannot be read (the message names it and why)',
  INTERNAL: 'an unexpected error that carries no code of its own; the message is its text (please report it)',
} as const;

export type CliErrorCode = keyof typeof cliErrors;
