import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Where an organisation's webhooks may go. An organisation's admin chooses its endpoint's URL,
 * and the authority then sends requests to it from inside the publisher's network: without a
 * guard that is a server-side request forgery into the publisher's own services (metadata
 * endpoints, databases, admin ports). So an organisation's endpoint must be https to a public
 * address — checked when it is added (a literal address or a local name) and again at every
 * delivery, on the addresses DNS gives at that moment (a name that later resolves inside,
 * DNS rebinding, is refused then). The publisher's own endpoints may go anywhere it chooses.
 */

const NOT_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 3], // multicast and reserved, up to 255.255.255.255
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 96], // unspecified, loopback, IPv4-compatible
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated, still routed inside some networks)
  ['::ffff:0:0:0', 96], // IPv4-translated
  ['64:ff9b:1::', 48], // local-use NAT64: reaches whatever IPv4 the site's translator reaches
  ['2001::', 32], // Teredo: tunnels to an IPv4 address
  ['2002::', 16], // 6to4: embeds an IPv4 address
  ['100::', 64], // discard-only
  ['ff00::', 8], // multicast
  ['2001:db8::', 32], // documentation
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv6');
}

/** An IPv4 address an IPv6 one carries (v4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96), or null. */
function embeddedIpv4(address: string): string | null {
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (!m) return null;
  if (m[1]) return m[1];
  const hi = parseInt(m[2] as string, 16);
  const lo = parseInt(m[3] as string, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Whether an IP address is one of the public internet's (not private, loopback, link-local, …). */
export function isPublicAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 0) return false;
  if (family === 6) {
    const v4 = embeddedIpv4(bare.toLowerCase());
    if (v4 !== null) return isPublicAddress(v4);
    return !NOT_PUBLIC.check(bare, 'ipv6');
  }
  return !NOT_PUBLIC.check(bare, 'ipv4');
}

/** Why an organisation's endpoint URL may not be used (null: it may, pending DNS at delivery). */
export function organisationTargetProblem(url: URL): string | null {
  if (url.protocol !== 'https:') {
    return `an organisation's webhook must use https (the publisher's own endpoints may use http on this machine)`;
  }
  // A trailing dot names the same host (`localhost.`).
  const host = url.hostname
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost') || (!host.includes('.') && isIP(host) === 0)) {
    return `an organisation's webhook must go to a public DNS name or address, not "${host.slice(0, 100)}"`;
  }
  if (isIP(host) !== 0 && !isPublicAddress(host)) {
    return `an organisation's webhook must go to a public address: ${host} is private, loopback or reserved`;
  }
  return null;
}

/** A DNS lookup that fails when any address of the name is not public (see the module comment). */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const list = addresses;
    const inside = list.find((a) => !isPublicAddress(a.address));
    if (inside || list.length === 0) {
      const refused = Object.assign(
        new Error(`${hostname} resolves to ${inside?.address ?? 'nothing'}: not a public address`),
        { code: 'WEBHOOK_TARGET_NOT_PUBLIC' },
      );
      return callback(refused, '', 0);
    }
    if ((options as { all?: boolean }).all)
      return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
    const first = list[0] as LookupAddress;
    return callback(null, first.address, first.family);
  });
};

/**
 * POSTs one delivery; resolves with the HTTP status (redirects are not followed: a 3xx is a
 * failure). With `publicOnly` the connection goes only to public addresses, whatever DNS says.
 */
export function postWebhook(
  target: string,
  headers: Readonly<Record<string, string>>,
  body: string,
  options: { timeoutMs: number; publicOnly: boolean },
): Promise<number> {
  const url = new URL(target);
  if (options.publicOnly && isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0 && !isPublicAddress(url.hostname)) {
    return Promise.reject(Object.assign(new Error('not a public address'), { code: 'WEBHOOK_TARGET_NOT_PUBLIC' }));
  }
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        timeout: options.timeoutMs,
        ...(options.publicOnly ? { lookup: publicOnlyLookup } : {}),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}
