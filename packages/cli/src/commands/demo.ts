import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Authority, createAuthorityServer } from '@volact/authority';
import { DNS_PUBLISH_DEFAULTS, HostState, activateHostOnline, startKmsHost } from '@volact/kms-host';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { VolumeConsole, startConsoleServer } from '@volact/console';
import { systemClock } from '@volact/core';
// The demo's DNS is the tests' loopback BIND sandbox (never reachable from `@volact/core` itself).
import { parseIntOption } from '../options.js';
import { waitForShutdown, type Run } from '../runtime.js';

const DEMO_DOMAIN = 'demo.test';

/**
 * Brings up the whole system in one process on embedded defaults (SQLite, loopback): an
 * authority, one KMS host certified by it, a small fleet of clients whose count climbs to the
 * threshold — so a newcomer sees activation happen — and the console over the fleet's agents,
 * its web UI URL printed.
 */
export function registerDemo(program: Command, run: Run): void {
  program
    .command('demo')
    .description('start an authority, a KMS host and a simulated fleet on SQLite; watch clients activate')
    .option('--data-dir <dir>', 'where to keep the demo data (default: a new temporary directory)')
    .option('--clients <n>', 'clients in the fleet', '8')
    .option('--threshold <n>', 'activation threshold of the demo group', '5')
    .option('--exit', 'stop after the fleet has activated instead of serving until Ctrl-C')
    .option('--dns', 'the whole picture on loopback: a BIND 9 server, the host published in it, clients discovering it')
    .action(
      run(async (o: { dataDir?: string; clients: string; threshold: string; exit?: boolean; dns?: boolean }) => {
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
        // The BIND launcher loads only for --dns: it is test tooling, not part of every volact run.
        const bind = o.dns
          ? await (await import('@volact/core/testing')).startTestBind({ zones: [DEMO_DOMAIN] })
          : undefined;
        const dnsServer = bind ? `127.0.0.1:${bind.port}` : undefined;
        const host = await startKmsHost({
          dataDir: hostDir,
          listen: { host: '127.0.0.1', port: 0 },
          ...(bind
            ? {
                dnsPublish: {
                  server: { host: '127.0.0.1', port: bind.port },
                  key: bind.key,
                  domains: [{ domain: DEMO_DOMAIN, priority: 0, weight: 0 }],
                  service: DNS_PUBLISH_DEFAULTS.service,
                  hostName: 'kms1',
                  address: '127.0.0.1',
                  port: 0,
                  ttl: DNS_PUBLISH_DEFAULTS.ttl,
                  refreshMs: DNS_PUBLISH_DEFAULTS.refreshMs,
                },
              }
            : {}),
        });
        const hostAddress = `127.0.0.1:${host.address.port}`;
        say(
          `2. KMS host key activated (host ${activation.hostsUsed} of ${activation.hostLimit}), certificate signed by the authority; listening on ${hostAddress}`,
        );
        if (bind) {
          const published = host.dnsPublication()?.domains[0];
          say(
            published?.publishedAt
              ? `   published in DNS (${dnsServer}): ${published.srv} -> ${published.target}:${published.port}; clients find it there`
              : `   NOT published in DNS: ${published?.lastError?.message ?? 'unknown error'}`,
          );
        }

        const product = await authority.productConfig('office14');
        // The product's installed location: the clients' stores keep no copy of it.
        const productPath = join(root, 'product.json');
        writeFileSync(productPath, `${JSON.stringify(product, null, 2)}\n`);
        const fleet: Licence[] = [];
        say(`3. ${clients} clients activate one after another:`);
        for (let i = 1; i <= clients; i++) {
          const licence = Licence.init({
            stateDir: join(root, 'clients', `client-${i}`),
            product,
            productPath,
            hardwareId: `demo-client-${i}`,
          });
          if (dnsServer) licence.setDiscoveryDomains([DEMO_DOMAIN], dnsServer);
          else licence.setKmsHost(hostAddress);
          fleet.push(licence);
          const outcome = await licence.activate();
          say(
            `   client ${String(i).padStart(2)}: count ${outcome.status.count} of ${threshold} → ${outcome.status.state}${outcome.ok ? '' : ' (will retry)'}${outcome.status.hostSource === 'dns' ? ` [found ${outcome.status.host} in DNS]` : ''}`,
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

        // The console over the fleet: an agent per client, discovered and read like real machines.
        const agentToken = randomBytes(24).toString('base64url');
        const agents = [];
        for (let i = 1; i <= clients; i++) {
          const agent = createAgentServer({ stateDir: join(root, 'clients', `client-${i}`), adminToken: agentToken });
          await agent.listen({ host: '127.0.0.1', port: 0 });
          agents.push(agent);
        }
        const addresses = agents.map((a) => `127.0.0.1:${(a.server.address() as { port: number }).port}`);
        const adminPassword = randomBytes(18).toString('base64url');
        const passwordFile = join(root, 'console-admin.password');
        writeFileSync(passwordFile, `${adminPassword}\n`, { mode: 0o600 });
        const consoleDir = join(root, 'console');
        const managed = await VolumeConsole.create(consoleDir, { admin: { user: 'admin', password: adminPassword } });
        const found = await managed.discover(addresses, agentToken);
        const web = await startConsoleServer(managed, { listen: { host: '127.0.0.1', port: 0 } });
        say(
          `5. console: ${found.found.length} agents discovered and read; web UI at ${web.url} (user admin, password in ${passwordFile})`,
        );
        say('');
        say(`authority:  ${authorityUrl}/v1/health`);
        say(`KMS host:   ${hostAddress}`);
        if (dnsServer) say(`DNS:        dig @127.0.0.1 -p ${bind?.port} _vlmcs._tcp.${DEMO_DOMAIN} SRV`);
        say(`console:    ${web.url}`);
        say(`try:        npx volact host status --data-dir ${hostDir}`);
        say(`            npx volact console machines --data-dir ${consoleDir}`);
        say(`            npx volact client status --state-dir ${join(root, 'clients', 'client-1')}`);
        if (!o.exit) {
          say('serving until Ctrl-C');
          await waitForShutdown();
        }
        await web.close();
        await managed.close();
        await Promise.all(agents.map((a) => a.close()));
        await host.close();
        await bind?.stop();
        await api.close();
        await authority.close();
      }),
    );
}
