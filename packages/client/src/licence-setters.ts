import { DOMAIN_NAME_RE, normaliseDomain } from '@volact/core';
import { ClientError } from './errors.js';
import { formatKmsAddress, parseKmsAddress } from './kms-address.js';
import { ACT_TYPES, type ActType, type LicenceRecord } from './licence-store.js';

/**
 * How an installation finds what activates it, as the setters change it (the reference's
 * /skms, /skms-domain, host caching, domain membership, /act-type): each checks its input,
 * throws a typed error for a bad one, and returns the new record. A change makes the next
 * attempt due now. Licence stores the record and tells its subscribers.
 */

export interface DirectoryMembership {
  /** ldap:// or ldaps:// URL of the directory. */
  readonly url: string;
  readonly domain: string;
  /** Base DN under which the activation objects' container is, e.g. dc=corp,dc=test. */
  readonly base: string;
  readonly container?: string;
  readonly bindDn?: string;
  readonly password?: string;
}

/** The licence store keeps at most this many discovery domains (the reference's suffix list is short too). */
const MAX_DISCOVERY_DOMAINS = 16;
const DNS_PORT = 53;

/** A member domain as given (an option, the machine's own); null or blank: a member of none. */
export function memberDomainOrNull(domain: string | null): string | null {
  if (domain === null || domain.trim() === '') return null;
  const d = normaliseDomain(domain);
  if (!DOMAIN_NAME_RE.test(d)) {
    throw new ClientError('DOMAIN_INVALID', `"${domain.slice(0, 80)}" is not a domain name (e.g. corp.test)`);
  }
  return d;
}

/** The KMS host to use instead of discovery; null clears it. */
export function withKmsHost(record: LicenceRecord, address: string | null, now: number): LicenceRecord {
  const value = address === null ? null : formatKmsAddress(parseKmsAddress(address));
  return { ...record, kmsHost: value, nextAttemptAt: now };
}

/**
 * The DNS domains to discover hosts in (none: this machine's own domain) and the DNS server to
 * ask (undefined: unchanged; null: the system's). The cached host is forgotten.
 */
export function withDiscoveryDomains(
  record: LicenceRecord,
  domains: readonly string[],
  dnsServer: string | null | undefined,
  now: number,
): LicenceRecord {
  const normalised = [...new Set(domains.map(normaliseDomain))];
  const bad = normalised.find((d) => !DOMAIN_NAME_RE.test(d));
  if (bad !== undefined) throw new ClientError('DOMAIN_INVALID', `"${bad.slice(0, 80)}" is not a DNS domain name`);
  if (normalised.length > MAX_DISCOVERY_DOMAINS) {
    throw new ClientError(
      'DOMAIN_INVALID',
      `at most ${MAX_DISCOVERY_DOMAINS} discovery domains; got ${normalised.length}`,
    );
  }
  const server =
    dnsServer === undefined
      ? record.discovery.dnsServer
      : dnsServer === null
        ? null
        : formatKmsAddress(parseKmsAddress(dnsServer, DNS_PORT));
  return {
    ...record,
    discovery: { ...record.discovery, domains: normalised, dnsServer: server, cached: null },
    nextAttemptAt: now,
  };
}

/** Host caching: on, the host found in DNS is used for renewals until it stops answering. */
export function withHostCaching(record: LicenceRecord, on: boolean): LicenceRecord {
  return {
    ...record,
    discovery: { ...record.discovery, caching: on, cached: on ? record.discovery.cached : null },
  };
}

/** Membership of a directory domain (directory-based activation); the domain is returned normalised. */
export function withDirectory(
  record: LicenceRecord,
  membership: DirectoryMembership,
  now: number,
): { record: LicenceRecord; domain: string } {
  const domain = normaliseDomain(membership.domain);
  if (!DOMAIN_NAME_RE.test(domain)) {
    throw new ClientError(
      'DOMAIN_INVALID',
      `"${membership.domain.slice(0, 80)}" is not a domain name (e.g. corp.test)`,
    );
  }
  if (!/^ldaps?:\/\//.test(membership.url)) {
    throw new ClientError(
      'DOMAIN_INVALID',
      `the directory URL must be ldap:// or ldaps://, got "${membership.url.slice(0, 80)}"`,
    );
  }
  return {
    domain,
    record: {
      ...record,
      directory: {
        url: membership.url,
        domain,
        base: membership.base,
        container: membership.container ?? null,
        bindDn: membership.bindDn ?? null,
        password: membership.password ?? null,
      },
      nextAttemptAt: now,
    },
  };
}

/** Leaves the directory domain: a directory activation no longer applies. */
export function withoutDirectory(record: LicenceRecord, now: number): LicenceRecord {
  return { ...record, directory: null, nextAttemptAt: now };
}

/** The activation type (the reference's /act-type); an unknown one is refused. */
export function withActType(record: LicenceRecord, type: ActType, now: number): LicenceRecord {
  if (!(ACT_TYPES as readonly string[]).includes(type)) {
    throw new ClientError(
      'ACT_TYPE_INVALID',
      `"${String(type).slice(0, 40)}" is not an activation type: ${ACT_TYPES.join(', ')}`,
    );
  }
  return { ...record, actType: type, nextAttemptAt: now };
}
