import {
  CoreError,
  cidFileFor,
  encodeProxyFile,
  iidFileInstallationIds,
  parseIidFile,
  type CidFile,
  type ConfirmationAnswer,
} from '@volact/core';
import type { Confirmation } from './authority.js';
import { AuthorityError } from './errors.js';

/** The portal takes installation-ID files up to this size (larger: `volact authority confirm-file`). */
export const MAX_PORTAL_PROXY_FILE_CHARS = 24 * 1024 * 1024;

/**
 * A console's installation-ID file (isolated networks, docs/console.md) answered: the signature
 * is checked first (an edited file confirms nothing: PROXY_FILE_TAMPERED), then each distinct
 * IID goes through `confirm` (the phone confirmation, audited with its operator); a refused IID
 * is a result with its code. The confirmation file names the request it answers.
 */
export async function confirmInstallationIdFile(
  text: string,
  confirm: (installationId: string) => Promise<Confirmation>,
  authorityName: string,
  now: number,
  /** The portal's bound (MAX_PORTAL_PROXY_FILE_CHARS); the CLI takes what the format allows. */
  maxChars = MAX_PORTAL_PROXY_FILE_CHARS,
  /** The collecting console's key ID, when known: any other signer is PROXY_FILE_FOREIGN. */
  consoleKeyId?: string,
): Promise<CidFile> {
  if (text.length > maxChars) {
    throw new AuthorityError(
      'PROXY_FILE_INVALID',
      `the installation-ID file is larger than ${maxChars} characters: confirm it with \`volact authority confirm-file\``,
    );
  }
  let file;
  try {
    file = parseIidFile(text, consoleKeyId === undefined ? {} : { consoleKeyId });
  } catch (err) {
    if (
      err instanceof CoreError &&
      (err.code === 'PROXY_FILE_INVALID' || err.code === 'PROXY_FILE_TAMPERED' || err.code === 'PROXY_FILE_FOREIGN')
    ) {
      throw new AuthorityError(err.code, err.message);
    }
    throw err;
  }
  const answers: ConfirmationAnswer[] = [];
  for (const installationId of iidFileInstallationIds(file)) {
    try {
      answers.push({ installationId, ok: true, confirmationId: (await confirm(installationId)).confirmationId });
    } catch (err) {
      if (!(err instanceof AuthorityError) || err.code === 'STORE_UNAVAILABLE' || err.code === 'STORE_DAMAGED')
        throw err;
      answers.push({ installationId, ok: false, code: err.code, message: err.message });
    }
  }
  return cidFileFor(file, answers, authorityName, new Date(now).toISOString());
}

export { encodeProxyFile };
