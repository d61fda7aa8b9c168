import { join } from 'node:path';
import { Authority, createAuthorityServer } from '@volact/authority';
import { guidToBytes } from '@volact/core';
import { HostState, activateHostOnline } from '@volact/kms-host';

export interface BenchHost {
  readonly hostDir: string;
  readonly groupId: Buffer;
  readonly certificate: Buffer;
  readonly authorityRootPublicKey: Buffer;
}

/**
 * Does what an operator does, in `dir`: creates an authority with one group (threshold 5),
 * mints a KMS host key, serves the authority's HTTP API on a free loopback port, installs the
 * key in a host data directory and activates it online. The authority is closed afterwards:
 * the host does not need it to serve.
 */
export async function prepareHost(dir: string): Promise<BenchHost> {
  const authority = Authority.init(join(dir, 'authority'), { name: 'volact bench authority' });
  try {
    const group = await authority.addGroup({ name: 'bench', threshold: 5 });
    const { key } = await authority.mintKey({ type: 'kms-host', groups: [group.name] });
    const server = createAuthorityServer(authority);
    const authorityUrl = await server.listen({ host: '127.0.0.1', port: 0 });
    try {
      const hostDir = join(dir, 'host');
      const state = HostState.installKey(hostDir, key, 'bench-hw', Date.now());
      await activateHostOnline(state, authorityUrl);
      const certificate = HostState.open(hostDir).certificate();
      if (!certificate) throw new Error('the host is not activated after activateHostOnline');
      return {
        hostDir,
        groupId: guidToBytes(group.id),
        certificate: certificate.encoded,
        authorityRootPublicKey: authority.rootPublicKeyRaw,
      };
    } finally {
      await server.close();
    }
  } finally {
    await authority.close();
  }
}
