import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Authority, createAuthorityServer } from '@volact/authority';
import { HostState, activateHostOnline, startKmsHost } from '@volact/kms-host';
import { Licence } from '@volact/client';
import { systemClock } from '@volact/core';
import { parseIntOption } from '../options.js';
import { waitForShutdown, type Run } from '../runtime.js';

/**
 * Brings up the whole slice in one process on embedded defaults (SQLite, loopback): an
 * authority, one KMS host certified by it, and a small fleet of clients whose count climbs
 * to the threshold — so a newcomer sees activation happen.
 */
export function registerDemo(program: Command, run: Run): void {
  program
    .command('demo')
    .description('start an authority, a KMS host and a simulated fleet on SQLite; watch clients activate')
    .option('--data-dir <dir>', 'where to keep the demo data (default: a new temporary directory)')
    .option('--clients <n>', 'clients in the fleet', '8')
    .option('--threshold <n>', 'activation threshold of the demo group', '5')
    .option('--exit', 'stop after the fleet has activated instead of serving until Ctrl-C')
    .action(
      run(async (o: { dataDir?: string; clients: string; threshold: string; exit?: boolean }) => {
        const clients = parseIntOption(o.clients, '--clients', 1, 1000);
        const threshold = parseIntOption(o.threshold, '--threshold', 1, 1000);
        const root = o.dataDir ?? mkdtempSync(join(tmpdir(), 'volact-demo-'));
        const say = (line: string) => process.stdout.write(`${line}\n`);
        say(`volact demo — data in ${root}`);

        const authority = Authority.init(join(root, 'authority'), { name: 'demo publisher' });
        await authority.addGroup({ name: 'office14', kind: 'app', threshold });
        const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
        const api = createAuthorityServer(authority);
        await api.listen({ host: '127.0.0.1', port: 0 });
        const apiPort = (api.server.address() as { port: number }).port;
        const authorityUrl = `http://127.0.0.1:${apiPort}`;
        say(`1. authority serving ${authorityUrl}; group office14 (threshold ${threshold}); KMS host key minted`);

        const hostDir = join(root, 'kms-host');
        const state = HostState.installKey(hostDir, key, 'demo-host-1', systemClock.now());
        const activation = await activateHostOnline(state, authorityUrl);
        const host = await startKmsHost({ dataDir: hostDir, listen: { host: '127.0.0.1', port: 0 } });
        const hostAddress = `127.0.0.1:${host.address.port}`;
        say(
          `2. KMS host key activated (host ${activation.hostsUsed} of ${activation.hostLimit}), certificate signed by the authority; listening on ${hostAddress}`,
        );

        const product = await authority.productConfig('office14');
        const fleet: Licence[] = [];
        say(`3. ${clients} clients activate one after another:`);
        for (let i = 1; i <= clients; i++) {
          const licence = Licence.init({
            stateDir: join(root, 'clients', `client-${i}`),
            product,
            hardwareId: `demo-client-${i}`,
          });
          licence.setKmsHost(hostAddress);
          fleet.push(licence);
          const outcome = await licence.activate();
          say(
            `   client ${String(i).padStart(2)}: count ${outcome.status.count} of ${threshold} → ${outcome.status.state}${outcome.ok ? '' : ' (will retry)'}`,
          );
        }
        const waiting = fleet.filter((l) => l.status().state !== 'licensed');
        if (waiting.length > 0) {
          say(`4. the ${waiting.length} early clients retry (as their 2-hour retry would) and turn licensed:`);
          for (const licence of waiting) {
            const i = fleet.indexOf(licence) + 1;
            const outcome = await licence.activate();
            say(
              `   client ${String(i).padStart(2)}: count ${outcome.status.count} of ${threshold} → ${outcome.status.state}`,
            );
          }
        }
        const licensed = fleet.filter((l) => l.status().state === 'licensed').length;
        say(`${licensed} of ${clients} clients licensed until ${fleet[0]?.status().expiresAt ?? '-'}`);
        say('');
        say(`authority:  ${authorityUrl}/v1/health`);
        say(`KMS host:   ${hostAddress}`);
        say(`try:        npx volact host status --data-dir ${hostDir}`);
        say(`            npx volact client status --state-dir ${join(root, 'clients', 'client-1')}`);
        if (!o.exit) {
          say('serving until Ctrl-C');
          await waitForShutdown();
        }
        await host.close();
        await api.close();
        await authority.close();
      }),
    );
}
