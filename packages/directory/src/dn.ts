import { DirectoryError } from './errors.js';

/** Activation object names: the `cn` of their entry. */
export const ENTRY_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** Where activation objects live under the base DN unless told otherwise. */
export const DEFAULT_CONTAINER = 'ou=volact-activation-objects';

/** Where activation objects are published: `<container>,<base>`. */
export interface DirectoryLocation {
  /** The base DN, e.g. `dc=corp,dc=test`. */
  readonly base: string;
  /** The container's DN relative to the base, e.g. `ou=volact-activation-objects` (the default). */
  readonly container?: string;
}

export function checkEntryName(name: string): string {
  if (!ENTRY_NAME_RE.test(name)) {
    throw new DirectoryError(
      'DIRECTORY_NAME_INVALID',
      `activation object name ${JSON.stringify(name.slice(0, 80))} is not 1-64 letters, digits or . _ - characters`,
    );
  }
  return name;
}

/**
 * Escapes an attribute value for a DN string (RFC 4514 section 2.4): the special characters
 * get a backslash, a leading space or '#' and a trailing space are escaped, control
 * characters are written as hex pairs. Names are validated before they get here; this keeps a
 * DN well formed whatever a later caller passes.
 */
export function escapeDnValue(value: string): string {
  const chars = [...value];
  let out = '';
  for (const [i, ch] of chars.entries()) {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || code === 0x7f) out += `\\${code.toString(16).padStart(2, '0')}`;
    else if ('"+,;<>\\='.includes(ch)) out += `\\${ch}`;
    else if (i === 0 && (ch === ' ' || ch === '#')) out += `\\${ch}`;
    else if (i === chars.length - 1 && ch === ' ') out += '\\ ';
    else out += ch;
  }
  return out;
}

/** Escapes a value for an LDAP search filter (RFC 4515 section 3): * ( ) \ and NUL. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (ch) => `\\${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function checkDnText(text: string, what: string): string {
  const trimmed = text.trim();
  if (trimmed === '' || !trimmed.includes('=')) {
    throw new DirectoryError(
      'DIRECTORY_BASE_NOT_FOUND',
      `the ${what} ${JSON.stringify(text)} is not a DN; give it as attribute=value pairs, e.g. dc=corp,dc=test`,
    );
  }
  return trimmed;
}

/** The container's DN: `<container>,<base>`. */
export function containerDn(location: DirectoryLocation): string {
  const base = checkDnText(location.base, 'base');
  const container = checkDnText(location.container ?? DEFAULT_CONTAINER, 'container');
  return `${container},${base}`;
}

/** The DN of the entry of an activation object: `cn=<name>,<container>,<base>`. */
export function entryDn(location: DirectoryLocation, name: string): string {
  return `cn=${escapeDnValue(checkEntryName(name))},${containerDn(location)}`;
}
