import { FilterParser } from 'ldapts';
import { firstValue, leftmostRdn } from './attributes.js';
import { withDirectory, type DirectoryConnection } from './connection.js';
import { DirectoryError } from './errors.js';

/**
 * Computer accounts: Active Directory's `computer` class, or the standard `device` class
 * (RFC 4519) other directories use. A directory without one of the two classes simply
 * matches nothing for it.
 */
export const DEFAULT_COMPUTER_FILTER = '(|(objectClass=computer)(objectClass=device))';

export interface ComputerSearch {
  /** Where to search (the whole subtree below it). */
  readonly base: string;
  /** An LDAP filter (RFC 4515); DEFAULT_COMPUTER_FILTER when absent. */
  readonly filter?: string;
  /** At most this many computers (0, the default: no limit of ours; the server's applies). */
  readonly sizeLimit?: number;
}

export interface DirectoryComputer {
  readonly dn: string;
  /** The `cn` (the computer name), else the value of the entry's first RDN. */
  readonly name: string;
  /** Active Directory's `dNSHostName`, when the entry has one. */
  readonly dnsHostName?: string;
}

/** Asks for results in pages so Active Directory's 1000-entry limit does not cut the list. */
const PAGE_SIZE = 500;

/** Computer entries under the base (subtree), sorted by name. */
export async function searchComputers(conn: DirectoryConnection, search: ComputerSearch): Promise<DirectoryComputer[]> {
  const filter = search.filter?.trim() || DEFAULT_COMPUTER_FILTER;
  try {
    FilterParser.parseString(filter);
  } catch (err) {
    throw new DirectoryError(
      'DIRECTORY_FILTER_INVALID',
      `${JSON.stringify(filter)} is not an LDAP filter (${(err as Error).message}); write it like (&(objectClass=device)(cn=pc-*))`,
    );
  }
  const base = search.base.trim();
  if (!base.includes('=')) {
    throw new DirectoryError(
      'DIRECTORY_BASE_NOT_FOUND',
      `the base ${JSON.stringify(search.base)} is not a DN; give it as attribute=value pairs, e.g. dc=corp,dc=test`,
    );
  }
  return withDirectory(conn, async (client) => {
    const found = await client.search(base, {
      scope: 'sub',
      filter,
      attributes: ['cn', 'dNSHostName'],
      paged: { pageSize: PAGE_SIZE },
      ...(search.sizeLimit ? { sizeLimit: search.sizeLimit } : {}),
    });
    return found.searchEntries
      .map((e): DirectoryComputer => {
        const dnsHostName = firstValue(e, 'dNSHostName');
        const name = firstValue(e, 'cn') ?? leftmostRdn(e.dn)?.value ?? e.dn;
        return { dn: e.dn, name, ...(dnsHostName ? { dnsHostName } : {}) };
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  });
}
