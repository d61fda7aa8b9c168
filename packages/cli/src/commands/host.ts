import type { Command } from 'commander';
import {
  HostState,
  activateHostOnline,
  hostInstallationId,
  hostStatus,
  installHostConfirmation,
  startKmsHost,
} from '@volact/kms-host';
import {
  CoreError,
  DAY,
  INTERVAL_BOUNDS,
  MINUTE,
  parseProductConfig,
  readHardwareFingerprint,
  systemClock,
} from '@volact/core';
import { CliError, printJson } from '../output.js';
import { parseDuration, parseHardwareId, parseIntOption, parseListen, readProductConfigFile } from '../options.js';
import { createLogger, waitForShutdown, type Run } from '../runtime.js';

export function registerHost(program: Command, run: Run): void {
  const host = program.command('host').description("an organisation's KMS host");

  host
    .command('install-key')
    .description('install a KMS host key (it must then be activated)')
    .argument('<key>', 'KMS host key, XXXXX-XXXXX-XXXXX-XXXXX-XXXXX')
    .requiredOption('--data-dir <dir>', 'data directory of the host')
    .option('--hardware-id <id>', "override the machine's hardware fingerprint")
    .option('--json', 'print JSON')
    .action(
      run(async (o: { dataDir: string; hardwareId?: string; json?: boolean }, key: string) => {
        const hardwareId = o.hardwareId ? parseHardwareId(o.hardwareId) : readHardwareFingerprint();
        const state = HostState.installKey(o.dataDir, key, hardwareId, systemClock.now());
        if (o.json) printJson({ installed: state.hostKeyLast5, hardwareId });
        else
          console.log(
            `host key ${state.hostKeyLast5} installed; activate it with \`volact host activate --data-dir ${o.dataDir} --authority URL\``,
          );
      }),
    );

  host
    .command('activate')
    .description('activate the installed host key online; the authority returns a host certificate')
    .requiredOption('--data-dir <dir>', 'data directory of the host')
    .requiredOption('--authority <url>', 'authority URL, e.g. http://127.0.0.1:8080')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { dataDir: string; authority: string; json?: boolean }) => {
        const state = HostState.open(o.dataDir);
        const result = await activateHostOnline(state, o.authority);
        const out = {
          activated: true,
          key: state.hostKeyLast5,
          certificateExpiresAt: new Date(result.expiresAt).toISOString(),
          groups: result.groups,
          hostsUsed: result.hostsUsed,
          hostLimit: result.hostLimit,
        };
        if (o.json) printJson(out);
        else
          console.log(
            `host key ${out.key} activated (host ${out.hostsUsed} of ${out.hostLimit}); serves ${out.groups.map((g) => g.name).join(', ')}; certificate valid until ${out.certificateExpiresAt}`,
          );
      }),
    );

  host
    .command('installation-id')
    .description('phone activation, step 1: print the installation ID to read out to the publisher')
    .requiredOption('--data-dir <dir>', 'data directory of the host')
    .requiredOption(
      '--product <file...>',
      "the product.json of each group this host serves (exactly the host key's groups)",
    )
    .option('--json', 'print JSON')
    .action(
      run(async (o: { dataDir: string; product: string[]; json?: boolean }) => {
        const products = o.product.map((file) => {
          try {
            return parseProductConfig(readProductConfigFile(file));
          } catch (err) {
            if (err instanceof CoreError) throw new CliError(err.code, `${file}: ${err.message}`);
            throw err;
          }
        });
        const iid = hostInstallationId(HostState.open(o.dataDir), products);
        if (o.json) printJson({ installationId: iid, groups: products.map((p) => p.group.name) });
        else console.log(iid);
      }),
    );

  host
    .command('install-confirmation')
    .description('phone activation, step 2: install the confirmation ID the publisher read back')
    .argument('<confirmation-id...>', 'the digit groups, with or without dashes')
    .requiredOption('--data-dir <dir>', 'data directory of the host')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { dataDir: string; json?: boolean }, ...cid: string[]) => {
        const state = HostState.open(o.dataDir);
        const result = installHostConfirmation(state, cid.join(' '));
        const out = {
          activated: true,
          key: state.hostKeyLast5,
          certificateExpiresAt: new Date(result.expiresAt).toISOString(),
          groups: result.groups,
        };
        if (o.json) printJson(out);
        else
          console.log(
            `host key ${out.key} activated by phone; serves ${out.groups.map((g) => g.name).join(', ')}; certificate valid until ${out.certificateExpiresAt}`,
          );
      }),
    );

  host
    .command('serve')
    .description('answer KMS requests on TCP')
    .requiredOption('--data-dir <dir>', 'data directory of the host')
    .option('--listen <host:port>', 'address to listen on', '0.0.0.0:1688')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
    .option('--client-id-window <duration>', 'how long a client ID counts after its last request', '30d')
    .option('--max-client-ids <n>', 'live client IDs kept per group (bounds memory)', '2000000')
    .option('--activation-interval <duration>', 'retry interval told to unactivated clients', '2h')
    .option('--renewal-interval <duration>', 'renewal interval told to activated clients', '7d')
    .option('--log-level <level>', 'pino log level (info logs one line per request)', 'info')
    .action(
      run(
        async (o: {
          dataDir: string;
          listen: string;
          metrics?: string;
          clientIdWindow: string;
          maxClientIds: string;
          activationInterval: string;
          renewalInterval: string;
          logLevel: string;
        }) => {
          const config = {
            dataDir: o.dataDir,
            listen: parseListen(o.listen, '--listen'),
            ...(o.metrics ? { metrics: parseListen(o.metrics, '--metrics') } : {}),
            policy: {
              clientIdWindow: parseDuration(o.clientIdWindow, '--client-id-window', { min: MINUTE, max: 365 * DAY }),
              maxClientIdsPerGroup: parseIntOption(o.maxClientIds, '--max-client-ids', 1, 100_000_000),
              activationInterval: parseDuration(
                o.activationInterval,
                '--activation-interval',
                INTERVAL_BOUNDS.activationInterval,
              ),
              renewalInterval: parseDuration(o.renewalInterval, '--renewal-interval', INTERVAL_BOUNDS.renewalInterval),
            },
            logger: createLogger(o.logLevel),
          };
          config.logger.info({ nodeFlags: process.execArgv }, 'node runtime');
          const running = await startKmsHost(config);
          process.stderr.write(
            `KMS host listening on ${running.address.host}:${running.address.port}` +
              (running.metricsAddress
                ? `; metrics on http://${running.metricsAddress.host}:${running.metricsAddress.port}/metrics`
                : '') +
              '\n',
          );
          await waitForShutdown();
          await running.close();
          config.logger.flush();
        },
      ),
    );

  host
    .command('status')
    .description('counts per group, requests, certificate (like the reference /dlv)')
    .requiredOption('--data-dir <dir>', 'data directory of the host')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { dataDir: string; json?: boolean }) => {
        const s = hostStatus(o.dataDir);
        if (o.json) {
          printJson(s);
          return;
        }
        console.log(`KMS host key: ${s.keyInstalled} (${s.activated ? 'activated' : 'NOT activated'})`);
        if (s.certificate) console.log(`Certificate: ${s.certificate.serial}, valid until ${s.certificate.expiresAt}`);
        for (const g of s.groups) console.log(`Group ${g.name}: current count ${g.count} (threshold ${g.threshold})`);
        console.log(`Total requests received: ${s.requests.total}`);
        console.log(`Failed requests received: ${s.requests.failed}`);
        for (const [state, n] of Object.entries(s.requests.byClientState))
          console.log(`Requests with licence state ${state}: ${n}`);
      }),
    );
}
