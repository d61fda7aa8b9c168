import { VolactError } from '@volact/core';

/** The KMS host's error catalogue. */
export const kmsHostErrors = {
  HOST_NOT_INITIALISED: 'the data directory holds no host; run `volact host install-key` first',
  HOST_KEY_INVALID: 'the KMS host key is malformed, mistyped or not a host key',
  HOST_NOT_ACTIVATED: 'the host key is installed but not activated; run `volact host activate`',
  HOST_CERTIFICATE_EXPIRED:
    'the host certificate has expired; renew it with `volact host activate` (online) or `volact host installation-id` (phone)',
  HOST_ACTIVATION_REFUSED: 'the authority refused to activate the host key',
  AUTHORITY_UNREACHABLE: 'the authority could not be reached',
  AUTHORITY_URL_INSECURE: 'the authority URL is plain http:// to another machine; use https://',
  HOST_CONFIG_INVALID: 'a host setting is invalid',
  CONFIRMATION_INVALID:
    "the confirmation ID is mistyped (the group is named), or was not issued for this host's installation ID",
  HOST_LISTEN_FAILED: 'the host could not listen on the address',
  HOST_STORE_CORRUPT:
    'host.db is damaged; the host moved it aside (host.db.corrupt-TIME) and started an empty window that refills as clients renew',
  HOST_STORE_LOST:
    'host.db is missing or empty although the host had a window; the count restarted from zero and refills as clients renew',
  HOST_STORE_FULL: 'the disk holding host.db is full; free space there (the host keeps the unsaved IDs and retries)',
  HOST_STORE_FAILED: 'host.db could not be read or written (permissions, I/O error); the message names the file',
  HOST_WINDOW_UNSAVED:
    'the host stopped with client IDs it could not write to host.db (the number is given); they count again at their next renewal',
} as const;

export type KmsHostErrorCode = keyof typeof kmsHostErrors;

export class KmsHostError extends VolactError<KmsHostErrorCode> {
  override readonly name = 'KmsHostError';
  constructor(
    code: KmsHostErrorCode,
    message: string,
    /** The authority's code when the authority refused. */
    readonly authorityCode?: string,
  ) {
    super(code, message);
  }
}
