import { Socket as UdpSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { Socket } from 'node:net';
import { vi } from 'vitest';

/**
 * Makes every outgoing connection fail loudly while a test runs: TCP connects (KMS, HTTP and
 * fetch, LDAP), UDP sends (volact's DNS client) and the system resolver's SRV look-ups.
 * `attempts` lists what was tried, so a test can assert that an activation path touched no
 * network at all.
 */
export function forbidNetwork(): { readonly attempts: string[]; restore(): void } {
  const attempts: string[] = [];
  const tcp = vi.spyOn(Socket.prototype, 'connect').mockImplementation((...args: unknown[]) => {
    attempts.push(`tcp connect ${JSON.stringify(args[0])}`);
    throw new Error('the network was touched (TCP connect) where no network may be used');
  });
  const udp = vi.spyOn(UdpSocket.prototype, 'send').mockImplementation((...args: unknown[]) => {
    attempts.push(`udp send ${JSON.stringify(args.filter((a) => typeof a !== 'function').slice(1))}`);
    throw new Error('the network was touched (UDP send) where no network may be used');
  });
  const srv = vi.spyOn(Resolver.prototype, 'resolveSrv').mockImplementation((name: string) => {
    attempts.push(`dns resolveSrv ${name}`);
    return Promise.reject(new Error('the network was touched (DNS look-up) where no network may be used'));
  });
  return {
    attempts,
    restore() {
      tcp.mockRestore();
      udp.mockRestore();
      srv.mockRestore();
    },
  };
}
