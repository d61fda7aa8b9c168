import { readFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { CoreError, normaliseDomain, queryAddresses, querySrv, type SrvRecord } from '@volact/core';
import { formatKmsAddress, parseKmsAddress } from './kms-address.js';

/** The SRV service of KMS hosts (the reference's `_vlmcs._tcp`). */
export const DEFAULT_KMS_SERVICE = '_vlmcs._tcp';

export interface DiscoveredHost {
  /** TARGET:PORT as published, as `set-host` takes it. */
  readonly address: string;
  /** IP:PORT to connect to: the target resolved through the same DNS server (its name may exist only there). */
  readonly connect: string;
  readonly domain: string;
  readonly priority: number;
  readonly weight: number;
}

export interface DiscoveryResult {
  /** Every host found, in the order to try them (RFC 2782). */
  readonly hosts: DiscoveredHost[];
  /** Domains whose look-up failed, and why (a domain with no record is not a failure). */
  readonly errors: { domain: string; code: CoreError['code']; message: string }[];
  readonly domains: string[];
}

/**
 * RFC 2782 order: lower priority first; within a priority, a weighted random draw without
 * replacement, each record's chance its weight over the weights left. (The RFC's integer draw
 * from 0 to the sum inclusive favours the first record — weights 1 and 3 would share 2:3 — so
 * the draw here is proportional; weight-0 records come last, in random order.)
 */
export function orderSrv<T extends { priority: number; weight: number }>(
  records: readonly T[],
  random: () => number,
): T[] {
  const byPriority = new Map<number, T[]>();
  for (const r of records) byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r]);
  const out: T[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    const left = [...(byPriority.get(priority) as T[])];
    while (left.length > 0) {
      const total = left.reduce((sum, r) => sum + r.weight, 0);
      let chosen = Math.min(left.length - 1, Math.floor(random() * left.length));
      if (total > 0) {
        const draw = random() * total;
        let running = 0;
        for (let i = 0; i < left.length; i++) {
          running += (left[i] as T).weight;
          if (draw < running) {
            chosen = i;
            break;
          }
        }
      }
      out.push(...left.splice(chosen, 1));
    }
  }
  return out;
}

/** This machine's own DNS domain: resolv.conf's `domain`, else the first `search` entry. */
export function ownDnsDomain(resolvConf = '/etc/resolv.conf'): string | null {
  let text: string;
  try {
    text = readFileSync(resolvConf, 'utf8');
  } catch {
    return null;
  }
  const domain = /^\s*domain\s+(\S+)/m.exec(text)?.[1] ?? /^\s*search\s+(\S+)/m.exec(text)?.[1];
  return domain ? normaliseDomain(domain) : null;
}

async function lookup(
  name: string,
  dnsServer: { host: string; port: number } | null,
  timeoutMs: number,
): Promise<SrvRecord[]> {
  if (dnsServer) return querySrv(dnsServer, name, { timeoutMs });
  // No server configured: the system's resolver, as the reference client does.
  const resolver = new Resolver({ timeout: timeoutMs, tries: SYSTEM_RESOLVER_TRIES });
  try {
    return (await resolver.resolveSrv(name)).map((r) => ({ ...r, target: r.name, name, ttl: 0 }));
  } catch (err) {
    const failure = systemResolverFailure(name, err, timeoutMs);
    if (failure === null) return [];
    throw failure;
  }
}

const SYSTEM_RESOLVER_TRIES = 2;

/**
 * What a failed look-up through the system resolver (node:dns, c-ares) means, in the DNS
 * codes the stub client raises for the same faults: `null` when the name simply has no SRV
 * record (NXDOMAIN, or no data of that type), which is not a failure. Only a resolver that
 * heard nothing is a DNS_TIMEOUT; one that was refused, answered with an error or read a
 * reply it could not parse is named as such, so an operator looks at the right thing.
 */
export function systemResolverFailure(name: string, err: unknown, timeoutMs: number): CoreError | null {
  const code = (err as NodeJS.ErrnoException | null)?.code ?? '';
  const fault = `the system resolver could not look up ${name}`;
  switch (code) {
    case 'ENOTFOUND': // NXDOMAIN: the domain has no such name
    case 'ENODATA': // the name exists, with no SRV record
      return null;
    case 'ETIMEOUT':
      return new CoreError(
        'DNS_TIMEOUT',
        `${fault}: no answer in ${SYSTEM_RESOLVER_TRIES * timeoutMs} ms (${SYSTEM_RESOLVER_TRIES} tries of ${timeoutMs} ms) from the DNS servers in /etc/resolv.conf`,
      );
    case 'EREFUSED':
      return new CoreError(
        'DNS_REFUSED',
        `${fault}: the DNS server refused the query (it does not serve that zone or recurse for this machine)`,
      );
    case 'ESERVFAIL':
    case 'EFORMERR':
    case 'ENOTIMP':
      return new CoreError('DNS_SERVER_FAILURE', `${fault}: the DNS server answered ${code.slice(1)}`);
    case 'EBADRESP':
      return new CoreError('DNS_MALFORMED_REPLY', `${fault}: the DNS server's reply is malformed (${code})`);
    case 'EBADNAME':
    case 'EBADQUERY':
      return new CoreError('DNS_NAME_INVALID', `${fault}: not a valid DNS name (${code})`);
    default:
      // ECONNREFUSED (nothing listens at the configured server), EFILE (no resolv.conf to
      // read), ECANCELLED, EDESTRUCTION…: no DNS server could be asked at all.
      return new CoreError(
        'DNS_UNREACHABLE',
        `${fault}: no DNS server could be asked (${code || String(err)}); check the servers in /etc/resolv.conf`,
      );
  }
}

/** Looks up KMS hosts in each domain, in order, and returns them in the order to try. */
export async function discoverKmsHosts(options: {
  domains: readonly string[];
  dnsServer: { host: string; port: number } | null;
  service?: string;
  timeoutMs: number;
  random?: () => number;
}): Promise<DiscoveryResult> {
  const hosts: DiscoveredHost[] = [];
  const errors: DiscoveryResult['errors'] = [];
  for (const domain of options.domains) {
    const name = `${options.service ?? DEFAULT_KMS_SERVICE}.${domain}`;
    try {
      const all = await lookup(name, options.dnsServer, options.timeoutMs);
      // RFC 2782: a target of "." means the service is not offered there; port 0 is no port.
      const records = all.filter((r) => r.target !== '.' && r.target !== '' && r.port > 0);
      if (records.length < all.length) {
        errors.push({
          domain,
          code: 'DNS_RECORD_INVALID',
          message: `${all.length - records.length} SRV record(s) under ${name} name no host (target ".") or port 0: skipped`,
        });
      }
      const ordered = orderSrv(records, options.random ?? Math.random);
      for (const r of ordered) {
        const target = r.target.replace(/\.$/, '');
        let connectHost = target;
        if (options.dnsServer) {
          const addresses = await queryAddresses(options.dnsServer, target, { timeoutMs: options.timeoutMs }).catch(
            () => [] as string[],
          );
          connectHost = addresses.find((a) => !a.includes(':')) ?? addresses[0] ?? target;
        }
        hosts.push({
          address: formatKmsAddress({ host: target, port: r.port }),
          connect: formatKmsAddress({ host: connectHost, port: r.port }),
          domain,
          priority: r.priority,
          weight: r.weight,
        });
      }
    } catch (err) {
      if (!(err instanceof CoreError)) throw err;
      errors.push({ domain, code: err.code, message: err.message });
    }
  }
  return { hosts, errors, domains: [...options.domains] };
}

/**
 * Discovery as an installation's settings say: its domains (none set: this machine's own DNS
 * domain) through its DNS server (none: the system resolver).
 */
export function discoverFor(
  settings: { readonly domains: readonly string[]; readonly dnsServer: string | null },
  timeoutMs: number,
  random?: () => number,
): Promise<DiscoveryResult> {
  const own = settings.domains.length === 0 ? ownDnsDomain() : null;
  return discoverKmsHosts({
    domains: settings.domains.length > 0 ? [...settings.domains] : own ? [own] : [],
    dnsServer: settings.dnsServer === null ? null : parseKmsAddress(settings.dnsServer),
    timeoutMs,
    ...(random ? { random } : {}),
  });
}
