import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authority, createAuthorityServer } from '@volact/authority';
import { HostState, activateHostOnline, startKmsHost, type RunningKmsHost } from '@volact/kms-host';
import { Licence } from '@volact/client';
import type { ManualClock, ProductConfig } from '@volact/core';

/**
 * One authority (served on loopback), one group, one activated KMS host and a factory of
 * clients, all on one injected clock.
 */
export interface Slice {
  readonly root: string;
  readonly clock: ManualClock;
  readonly authority: Authority;
  readonly authorityUrl: string;
  readonly product: ProductConfig;
  readonly hostDir: string;
  host: RunningKmsHost;
  hostAddress(): string;
  newClient(name: string): Licence;
  restartHost(): Promise<void>;
  close(): Promise<void>;
}

export async function startSlice(
  clock: ManualClock,
  options: { threshold?: number; groups?: string[] } = {},
): Promise<Slice> {
  const root = mkdtempSync(join(tmpdir(), 'volact-e2e-'));
  const authority = Authority.init(join(root, 'authority'), { clock });
  const groups = options.groups ?? ['office14'];
  for (const name of groups) await authority.addGroup({ name, threshold: options.threshold ?? 5 });
  const { key } = await authority.mintKey({ type: 'kms-host', groups });
  const api = createAuthorityServer(authority);
  await api.listen({ host: '127.0.0.1', port: 0 });
  const authorityUrl = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
  const hostDir = join(root, 'host');
  await activateHostOnline(HostState.installKey(hostDir, key, 'host-hw-1', clock.now()), authorityUrl, { clock });
  const start = () =>
    startKmsHost({ dataDir: hostDir, listen: { host: '127.0.0.1', port: 0 }, clock, flushIntervalMs: 50 });
  const product = await authority.productConfig(groups[0] as string);
  const slice: Slice = {
    root,
    clock,
    authority,
    authorityUrl,
    product,
    hostDir,
    host: await start(),
    hostAddress: () => `127.0.0.1:${slice.host.address.port}`,
    newClient(name) {
      const licence = Licence.init({ stateDir: join(root, 'clients', name), product, hardwareId: `hw-${name}`, clock });
      licence.setKmsHost(slice.hostAddress());
      return licence;
    },
    async restartHost() {
      await slice.host.close();
      slice.host = await start();
    },
    async close() {
      await slice.host.close();
      await api.close();
      await authority.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return slice;
}
