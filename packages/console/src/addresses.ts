import { isIPv4, isIPv6 } from 'node:net';
import { ConsoleError } from './errors.js';

/** A discovery sweep probes at most this many addresses. */
export const MAX_DISCOVERY_PROBES = 1024;

const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function parsePort(text: string): number | null {
  if (!/^\d{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

/**
 * A machine address, canonical: `HOST:PORT` (the agent's plain HTTP), `[IPv6]:PORT`, or
 * `https://HOST:PORT` for an agent behind a TLS reverse proxy. `http://HOST:PORT` is read as
 * `HOST:PORT`.
 */
export function parseMachineAddress(text: string): string {
  const input = text.trim();
  const fail = () =>
    new ConsoleError(
      'ADDRESS_INVALID',
      `"${input.slice(0, 200)}" is not a machine address: give HOST:PORT (e.g. 10.0.0.5:7390), [IPv6]:PORT or https://HOST:PORT`,
    );
  const m = /^(?:(https?):\/\/)?(\[[0-9A-Fa-f:.]+\]|[^:/[\]]+):(\d+)\/?$/.exec(input);
  if (!m) throw fail();
  const scheme = m[1]?.toLowerCase() ?? 'http';
  const rawHost = m[2] as string;
  const port = parsePort(m[3] as string);
  const bracketed = rawHost.startsWith('[');
  const host = bracketed ? rawHost.slice(1, -1) : rawHost;
  if (port === null || (bracketed ? !isIPv6(host) : !isIPv4(host) && !HOSTNAME_RE.test(host))) throw fail();
  const hostPart = bracketed ? `[${host.toLowerCase()}]` : host.toLowerCase();
  return scheme === 'https' ? `https://${hostPart}:${port}` : `${hostPart}:${port}`;
}

/** The base URL the console calls for a machine address. */
export function agentBaseUrl(address: string): string {
  return address.startsWith('https://') ? address : `http://${address}`;
}

const ipv4ToNumber = (ip: string) => ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
const numberToIpv4 = (n: number) => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');

/**
 * The addresses of a discovery range: `HOST:FIRST-LAST` (ports on one host) or
 * `A.B.C.D-A.B.C.E:PORT` (IPv4 addresses on one port). At most MAX_DISCOVERY_PROBES.
 */
export function expandRange(text: string): string[] {
  const input = text.trim();
  const tooMany = (n: number) =>
    new ConsoleError(
      'RANGE_INVALID',
      `--range ${input.slice(0, 200)} holds ${n} addresses; a sweep probes at most ${MAX_DISCOVERY_PROBES}: split it`,
    );
  const ports = /^(\[[0-9A-Fa-f:.]+\]|[^:/[\]]+):(\d+)-(\d+)$/.exec(input);
  if (ports) {
    const first = parsePort(ports[2] as string);
    const last = parsePort(ports[3] as string);
    if (first !== null && last !== null && first <= last) {
      if (last - first + 1 > MAX_DISCOVERY_PROBES) throw tooMany(last - first + 1);
      const host = parseMachineAddress(`${ports[1] as string}:${first}`).replace(/:\d+$/, '');
      return Array.from({ length: last - first + 1 }, (_, i) => `${host}:${first + i}`);
    }
  }
  const hosts = /^(\d+\.\d+\.\d+\.\d+)-(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(input);
  if (hosts && isIPv4(hosts[1] as string) && isIPv4(hosts[2] as string) && parsePort(hosts[3] as string) !== null) {
    const first = ipv4ToNumber(hosts[1] as string);
    const last = ipv4ToNumber(hosts[2] as string);
    if (first <= last) {
      if (last - first + 1 > MAX_DISCOVERY_PROBES) throw tooMany(last - first + 1);
      return Array.from({ length: last - first + 1 }, (_, i) => `${numberToIpv4(first + i)}:${Number(hosts[3])}`);
    }
  }
  throw new ConsoleError(
    'RANGE_INVALID',
    `--range "${input.slice(0, 200)}" is not HOST:FIRST-LAST (ports, e.g. 10.0.0.5:7390-7399) or A.B.C.D-A.B.C.E:PORT (e.g. 10.0.0.1-10.0.0.254:7390), first ≤ last`,
  );
}

/** A comma-separated list of machine addresses (deduplicated, at most MAX_DISCOVERY_PROBES). */
export function parseAddressList(text: string): string[] {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new ConsoleError('RANGE_INVALID', '--addresses is empty: give HOST:PORT,HOST:PORT');
  const addresses = [...new Set(items.map(parseMachineAddress))];
  if (addresses.length > MAX_DISCOVERY_PROBES) {
    throw new ConsoleError(
      'RANGE_INVALID',
      `--addresses holds ${addresses.length} addresses; a sweep probes at most ${MAX_DISCOVERY_PROBES}: split it`,
    );
  }
  return addresses;
}
