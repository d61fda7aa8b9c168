import { searchComputers, type ComputerSearch, type DirectoryConnection } from '@volact/directory';
import { MAX_DISCOVERY_PROBES as MAX_PROBES, parseMachineAddress } from './addresses.js';
import { ConsoleError } from './errors.js';

/**
 * The reference's "AD DS … or a generic LDAP query" discovery: computer entries of the
 * directory, turned into the addresses their agents listen on (the DNS host name when the
 * entry has one, else its name), all on one agent port. Bounded like every discovery.
 */
export async function addressesFromDirectory(
  conn: DirectoryConnection,
  search: ComputerSearch,
  agentPort: number,
): Promise<{ addresses: string[]; computers: number }> {
  const computers = await searchComputers(conn, { ...search, sizeLimit: MAX_PROBES + 1 });
  if (computers.length > MAX_PROBES) {
    throw new ConsoleError(
      'RANGE_INVALID',
      `the directory query finds more than ${MAX_PROBES} computers: narrow --ldap-base or --ldap-filter`,
    );
  }
  const addresses = computers.map((c) => parseMachineAddress(`${c.dnsHostName ?? c.name}:${agentPort}`));
  return { addresses: [...new Set(addresses)], computers: computers.length };
}
