import { Attribute, Change, type Client } from 'ldapts';
import { firstValue, generalizedTimeToIso, leftmostRdn } from './attributes.js';
import { LdapResult, isNoSuchObject, ldapCode, withDirectory, type DirectoryConnection } from './connection.js';
import { DEFAULT_CONTAINER, checkEntryName, containerDn, entryDn, type DirectoryLocation } from './dn.js';
import { DirectoryError } from './errors.js';

/*
 * Entry layout. An activation object is one entry `cn=<name>,<container>,<base>` of the
 * structural class `applicationProcess` with its text in `description`:
 *
 *   dn: cn=office-2024,ou=volact-activation-objects,dc=corp,dc=test
 *   objectClass: applicationProcess
 *   cn: office-2024
 *   description: {"name":"office-2024","group":…}
 *
 * Why these: `applicationProcess` (RFC 4519) is in every stock schema (OpenLDAP core.schema,
 * Active Directory, 389 Directory Server), is structural, needs only `cn` and allows
 * `description`, so publishing needs no schema extension and no `extensibleObject` (which
 * Active Directory does not have). `description` is a UTF-8 DirectoryString; its `{1024}`
 * bound in core.schema is advisory and not enforced by OpenLDAP, but Active Directory enforces
 * 1024 characters on it (an object longer than that is refused there with LDAP code 19).
 */

/** Larger objects are refused before they reach the directory. */
export const MAX_CONTENT_BYTES = 8192;

const ENTRY_CLASS = 'applicationProcess';
const CONTENT_ATTRIBUTE = 'description';

/** One published activation object. */
export interface DirectoryEntry {
  readonly name: string;
  readonly dn: string;
  /** The object's text, as published (opaque to this package). */
  readonly content: string;
  /** The entry's modifyTimestamp as ISO 8601, when the directory returns it. */
  readonly modifiedAt?: string;
}

export interface PublishOptions {
  /** Overwrite an object already published under the name (otherwise DIRECTORY_ENTRY_EXISTS). */
  readonly replace?: boolean;
}

export interface PublishResult {
  readonly name: string;
  readonly dn: string;
  /** True when an existing object was overwritten. */
  readonly replaced: boolean;
  /** True when the container did not exist and was created (as an organizationalUnit). */
  readonly containerCreated: boolean;
}

function checkContent(content: string): string {
  const bytes = Buffer.byteLength(content, 'utf8');
  if (content.trim() === '' || bytes > MAX_CONTENT_BYTES) {
    throw new DirectoryError(
      'DIRECTORY_CONTENT_INVALID',
      content.trim() === ''
        ? 'the activation object is empty; publish its text (JSON)'
        : `the activation object is ${bytes} bytes; at most ${MAX_CONTENT_BYTES} fit in its directory entry`,
    );
  }
  return content;
}

/** Whether the entry exists (and this bind may see it). */
async function exists(client: Client, dn: string): Promise<boolean> {
  try {
    await client.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: ['1.1'] });
    return true;
  } catch (err) {
    if (isNoSuchObject(err)) return false;
    throw err;
  }
}

function baseNotFound(location: DirectoryLocation): DirectoryError {
  return new DirectoryError(
    'DIRECTORY_BASE_NOT_FOUND',
    `the base DN "${location.base}" does not exist in the directory (or this bind may not see it); check --base, e.g. dc=corp,dc=example`,
    LdapResult.noSuchObject,
  );
}

/** Creates the container as an organizationalUnit; only `ou=VALUE` containers are created. */
async function createContainer(client: Client, location: DirectoryLocation): Promise<void> {
  const container = location.container ?? DEFAULT_CONTAINER;
  const rdn = leftmostRdn(container);
  const dn = containerDn(location);
  if (!rdn || rdn.type.toLowerCase() !== 'ou') {
    throw new DirectoryError(
      'DIRECTORY_BASE_NOT_FOUND',
      `the container "${dn}" does not exist and only an ou=… container is created automatically; create it first`,
      LdapResult.noSuchObject,
    );
  }
  try {
    await client.add(dn, { objectClass: ['organizationalUnit'], ou: rdn.value });
  } catch (err) {
    const code = ldapCode(err);
    if (code === LdapResult.entryAlreadyExists) return; // created meanwhile by another publisher
    if (isNoSuchObject(err)) {
      throw (await exists(client, location.base.trim()))
        ? new DirectoryError(
            'DIRECTORY_BASE_NOT_FOUND',
            `the parent of the container "${dn}" does not exist; create it first or use a one-level container such as ${DEFAULT_CONTAINER}`,
            code,
          )
        : baseNotFound(location);
    }
    throw err;
  }
}

/**
 * Publishes an activation object as `cn=<name>,<container>,<base>`, creating the container
 * (an organizationalUnit) on first use. An existing object is overwritten only with
 * `replace`; otherwise DIRECTORY_ENTRY_EXISTS.
 */
export async function publishEntry(
  conn: DirectoryConnection,
  location: DirectoryLocation,
  name: string,
  content: string,
  options: PublishOptions = {},
): Promise<PublishResult> {
  const dn = entryDn(location, name);
  checkContent(content);
  return withDirectory(conn, async (client) => {
    const add = () => client.add(dn, { objectClass: [ENTRY_CLASS], cn: name, [CONTENT_ATTRIBUTE]: content });
    let containerCreated = false;
    try {
      await add();
      return { name, dn, replaced: false, containerCreated };
    } catch (err) {
      const code = ldapCode(err);
      if (isNoSuchObject(err)) {
        await createContainer(client, location);
        containerCreated = true;
        await add();
        return { name, dn, replaced: false, containerCreated };
      }
      if (code !== LdapResult.entryAlreadyExists) throw err;
      if (!options.replace) {
        throw new DirectoryError(
          'DIRECTORY_ENTRY_EXISTS',
          `an activation object named ${name} is already published (${dn}); publish with --replace to overwrite it`,
          code,
        );
      }
    }
    await client.modify(
      dn,
      new Change({ operation: 'replace', modification: new Attribute({ type: CONTENT_ATTRIBUTE, values: [content] }) }),
    );
    return { name, dn, replaced: true, containerCreated };
  });
}

/**
 * The activation objects published in the container, sorted by name; an empty list when the
 * container does not exist yet (nothing was published). A missing base DN is
 * DIRECTORY_BASE_NOT_FOUND.
 */
export async function listEntries(conn: DirectoryConnection, location: DirectoryLocation): Promise<DirectoryEntry[]> {
  const dn = containerDn(location);
  return withDirectory(conn, async (client) => {
    let found;
    try {
      found = await client.search(dn, {
        scope: 'one',
        filter: `(&(objectClass=${ENTRY_CLASS})(${CONTENT_ATTRIBUTE}=*))`,
        attributes: ['cn', CONTENT_ATTRIBUTE, 'modifyTimestamp'],
      });
    } catch (err) {
      if (!isNoSuchObject(err)) throw err;
      if (await exists(client, location.base.trim())) return [];
      throw baseNotFound(location);
    }
    const entries: DirectoryEntry[] = [];
    for (const e of found.searchEntries) {
      const name = firstValue(e, 'cn') ?? leftmostRdn(e.dn)?.value ?? e.dn;
      const content = firstValue(e, CONTENT_ATTRIBUTE) ?? '';
      const modifiedAt = generalizedTimeToIso(firstValue(e, 'modifyTimestamp'));
      entries.push({ name, dn: e.dn, content, ...(modifiedAt ? { modifiedAt } : {}) });
    }
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  });
}

/** What a client reads: the same list, usually with a member account or anonymously. */
export const readEntries: (conn: DirectoryConnection, location: DirectoryLocation) => Promise<DirectoryEntry[]> =
  listEntries;

/** Removes a published activation object; DIRECTORY_ENTRY_NOT_FOUND when there is none by that name. */
export async function removeEntry(conn: DirectoryConnection, location: DirectoryLocation, name: string): Promise<void> {
  const dn = entryDn(location, checkEntryName(name));
  await withDirectory(conn, async (client) => {
    try {
      await client.del(dn);
    } catch (err) {
      if (!isNoSuchObject(err)) throw err;
      if (!(await exists(client, location.base.trim()))) throw baseNotFound(location);
      throw new DirectoryError(
        'DIRECTORY_ENTRY_NOT_FOUND',
        `no activation object named ${name} is published in ${containerDn(location)}; list them with \`volact directory list\``,
        LdapResult.noSuchObject,
      );
    }
  });
}
