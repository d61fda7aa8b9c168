import { VolactError } from '@volact/core';

/** The directory package's error catalogue (LDAP access for directory-based activation). */
export const directoryErrors = {
  DIRECTORY_URL_INVALID: 'the directory URL is not ldap://HOST[:PORT] or ldaps://HOST[:PORT]',
  DIRECTORY_UNREACHABLE:
    'the directory did not accept a connection or did not answer in time (address, port, firewall, TLS certificate)',
  DIRECTORY_BIND_FAILED: 'the directory refused the bind DN/password (LDAP code 49), or only one of the two was given',
  DIRECTORY_BASE_NOT_FOUND: 'the base DN (or container) does not exist, or this bind may not see it',
  DIRECTORY_ACCESS_DENIED: 'the bind DN lacks the access the operation needs (LDAP code 50)',
  DIRECTORY_ENTRY_EXISTS:
    'an activation object with that name is already published; publish with replace to overwrite it',
  DIRECTORY_ENTRY_NOT_FOUND: 'no activation object with that name is published in the container',
  DIRECTORY_NAME_INVALID: 'an activation object name is not 1-64 letters, digits or . _ - characters',
  DIRECTORY_CONTENT_INVALID: 'an activation object is empty or larger than the directory entry allows (8 KiB)',
  DIRECTORY_FILTER_INVALID: 'a search filter is not an LDAP filter like (objectClass=device)',
  DIRECTORY_ERROR: 'the directory answered with another LDAP result; the message names it and its code',
} as const;

export type DirectoryErrorCode = keyof typeof directoryErrors;

export class DirectoryError extends VolactError<DirectoryErrorCode> {
  override readonly name = 'DirectoryError';
  constructor(
    code: DirectoryErrorCode,
    message: string,
    /** The LDAP result code when the directory answered with one (49, 32, 50, …). */
    readonly ldapCode?: number,
  ) {
    super(code, message);
  }
}
