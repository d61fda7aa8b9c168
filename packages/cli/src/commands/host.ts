import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import {
  DNS_PUBLISH_DEFAULTS,
  type DnsPublishConfig,
  HostState,
  activateHostOnline,
  hostInstallationId,
  hostStatus,
  installHostConfirmation,
  startKmsHost,
  type HostStatus,
} from '@volact/kms-host';
import {
  CoreError,
  DAY,
  DOMAIN_NAME_RE,
  normaliseDomain,
  parseTsigKeyFile,
  INTERVAL_BOUNDS,
  MINUTE,
  parseProductConfig,
  readHardwareFingerprint,
  systemClock,
} from '@volact/core';
import { CliError, printJson } from '../output.js';
import {
  parseDuration,
  parseHardwareId,
  parseIntOption,
  parseListen,
  readKeyInput,
  readProductConfigFile,
  SECRET_ARGUMENT_HELP,
} from '../options.js';
import { createLogger, waitForShutdown, type Run } from '../runtime.js';

/** The DNS publication flags, validated once here. */
function parseDnsPublish(
  o: {
    dnsServer?: string;
    publish?: string[];
    tsigKeyFile?: string;
    dnsService: string;
    dnsName?: string;
    dnsAddress?: string;
    dnsTtl: string;
    dnsRefresh: string;
    dnsCheck: string;
  },
  listen: { host: string; port: number },
): DnsPublishConfig {
  if (!o.dnsServer)
    throw new CliError('OPTION_INVALID', '--publish needs --dns-server HOST:PORT (the DNS server taking updates)');
  if (!o.tsigKeyFile) throw new CliError('OPTION_INVALID', '--publish needs --tsig-key-file (a key tsig-keygen wrote)');
  let key;
  try {
    key = parseTsigKeyFile(readFileSync(o.tsigKeyFile, 'utf8'));
  } catch (err) {
    if (err instanceof CoreError) throw new CoreError(err.code, `${o.tsigKeyFile}: ${err.message}`);
    throw new CliError(
      'OPTION_INVALID',
      `--tsig-key-file ${o.tsigKeyFile}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`,
    );
  }
  const domains = (o.publish ?? []).map((spec) => {
    const [domain = '', priority = '0', weight = '0', ...rest] = spec.split(',').map((p) => p.trim());
    const d = normaliseDomain(domain);
    if (!DOMAIN_NAME_RE.test(d) || rest.length > 0) {
      throw new CliError('OPTION_INVALID', `--publish "${spec}" is not DOMAIN[,PRIORITY,WEIGHT] (e.g. corp.test,10,1)`);
    }
    return {
      domain: d,
      priority: parseIntOption(priority, `--publish ${spec}: priority`, 0, 65535),
      weight: parseIntOption(weight, `--publish ${spec}: weight`, 0, 65535),
    };
  });
  const duplicate = domains.find((d, i) => domains.findIndex((e) => e.domain === d.domain) !== i);
  if (duplicate) throw new CliError('OPTION_INVALID', `--publish names ${duplicate.domain} twice`);
  if (!/^_[a-z0-9-]+\._(tcp|udp)$/i.test(o.dnsService)) {
    throw new CliError('OPTION_INVALID', `--dns-service "${o.dnsService}" is not like _vlmcs._tcp`);
  }
  const hostName = o.dnsName ?? hostname().split('.')[0] ?? 'kms';
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(hostName)) {
    throw new CliError('OPTION_INVALID', `--dns-name "${hostName}" is not a DNS label (letters, digits, -)`);
  }
  const address = o.dnsAddress ?? advertisedAddress(listen.host);
  if (!isIP(address)) throw new CliError('OPTION_INVALID', `--dns-address "${address}" is not an IP address`);
  return {
    server: parseListen(o.dnsServer, '--dns-server'),
    key,
    domains,
    service: o.dnsService,
    hostName: hostName.toLowerCase(),
    address,
    port: listen.port,
    ttl: parseIntOption(o.dnsTtl, '--dns-ttl', 1, 7 * 86_400),
    refreshMs: parseDuration(o.dnsRefresh, '--dns-refresh', { min: MINUTE, max: 30 * DAY }),
    checkMs: o.dnsCheck === 'off' ? 0 : parseDuration(o.dnsCheck, '--dns-check', { min: 1_000, max: DAY }),
  };
}

/** The listen address, unless it is a wildcard: then the first external IPv4 address. */
function advertisedAddress(listenHost: string): string {
  if (listenHost !== '0.0.0.0' && listenHost !== '::') return listenHost;
  for (const addresses of Object.values(networkInterfaces())) {
    const external = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (external) return external.address;
  }
  return '127.0.0.1';
}

/**
 * `host serve` limits how fast one address adds new client IDs: enough for an imaging run
 * behind one NAT address (36 000 an hour), far below what a script sends in a second.
 */
const DEFAULT_NEW_CLIENT_IDS_PER_MINUTE = 600;

/**
 * Exit codes of `host status` (plain output), for scripts and monitoring: 0 activated (its
 * certificate valid now), 10 key installed but not activated, 11 certificate expired (clients
 * refuse its answers until it is activated again). The codes sit where `client status` puts
 * states that are not an error: 1 stays "could not read the host" (no host in the directory, a
 * damaged host.json). With --json the output carries `activated` and `certificate.expiresAt`,
 * and the command exits 0 once it has read the host.
 */
export const HOST_STATUS_EXIT = { activated: 0, notActivated: 10, certificateExpired: 11 } as const;

function hostStatusExit(s: HostStatus, now: number): number {
  if (!s.activated || !s.certificate) return HOST_STATUS_EXIT.notActivated;
  return Date.parse(s.certificate.expiresAt) <= now ? HOST_STATUS_EXIT.certificateExpired : HOST_STATUS_EXIT.activated;
}

export function registerHost(program: Command, run: Run): void {
  const host = program.command('host').description("an organisation's KMS host");

  host
    .command('install-key')
    .description('install a KMS host key (it must then be activated)')
    .argument('[key]', `KMS host key, XXXXX-XXXXX-XXXXX-XXXXX-XXXXX (${SECRET_ARGUMENT_HELP})`)
    .requiredOption('--data-dir <dir>', 'data directory of the host')
    .option('--key-file <file>', 'file holding the KMS host key (- for standard input)')
    .option('--hardware-id <id>', "override the machine's hardware fingerprint")
    .option('--json', 'print JSON')
    .action(
      run(async (o: { dataDir: string; keyFile?: string; hardwareId?: string; json?: boolean }, given?: string) => {
        const key = readKeyInput(given, o.keyFile);
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
    .option(
      '--new-key-pair',
      'make and certify a new host key pair (after the authority revoked this host: HOST_REVOKED); keeps the window and its counts',
    )
    .option('--json', 'print JSON')
    .action(
      run(async (o: { dataDir: string; authority: string; newKeyPair?: boolean; json?: boolean }) => {
        const state = HostState.open(o.dataDir);
        const result = await activateHostOnline(state, o.authority, { newKeyPair: o.newKeyPair ?? false });
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
            if (err instanceof CoreError) throw new CoreError(err.code, `${file}: ${err.message}`);
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
    .option('--dns-server <host:port>', 'DNS server that takes the dynamic updates (RFC 2136)')
    .option(
      '--publish <domain[,priority,weight]>',
      'publish the host in this DNS domain (repeatable; priority 0 and weight 0 by default)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--tsig-key-file <file>', 'TSIG key (HMAC-SHA256) in the format tsig-keygen writes')
    .option('--no-dns-publish', 'do not publish in DNS (even with --publish)')
    .option('--dns-service <label>', 'SRV service label', DNS_PUBLISH_DEFAULTS.service)
    .option('--dns-name <label>', "this host's name in the domains (default: the machine's short host name)")
    .option(
      '--dns-address <ip>',
      'address for the A/AAAA record (default: the listen address, else the first external one)',
    )
    .option('--dns-ttl <seconds>', 'TTL of the published records', String(DNS_PUBLISH_DEFAULTS.ttl))
    .option('--dns-refresh <duration>', 'how often the records are published again', '24h')
    .option(
      '--dns-check <duration>',
      'how often the SRV record is looked up and published again if missing (off: never)',
      '5m',
    )
    .option(
      '--flush-interval <duration>',
      'how often the window is written to host.db: the most a crash (kill -9) can lose',
      '250ms',
    )
    .option(
      '--log-requests <n>',
      'counted requests logged one by one per minute (the rest in one summary line; refusals always)',
      '20',
    )
    .option('--max-connections <n>', 'open KMS connections at most, all sources together', '10000')
    .option(
      '--max-connections-per-source <n>',
      'open KMS connections at most from one IPv4 address (or IPv6 /64)',
      '64',
    )
    .option('--header-deadline <duration>', "a new connection's first length prefix must arrive within this", '5s')
    .option('--frame-deadline <duration>', 'a request must be complete this long after its first byte', '5s')
    .option('--idle-timeout <duration>', 'a connection with no request in progress is closed after this', '30s')
    .option(
      '--new-client-ids-per-minute <n>',
      'client IDs new to the window one address may add per minute (0: no limit; renewals never limited)',
      String(DEFAULT_NEW_CLIENT_IDS_PER_MINUTE),
    )
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
          dnsServer?: string;
          publish?: string[];
          tsigKeyFile?: string;
          dnsPublish: boolean;
          dnsService: string;
          dnsName?: string;
          dnsAddress?: string;
          dnsTtl: string;
          dnsRefresh: string;
          dnsCheck: string;
          flushInterval: string;
          logRequests: string;
          maxConnections: string;
          maxConnectionsPerSource: string;
          headerDeadline: string;
          frameDeadline: string;
          idleTimeout: string;
          newClientIdsPerMinute: string;
        }) => {
          const listen = parseListen(o.listen, '--listen');
          const config = {
            dataDir: o.dataDir,
            listen,
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
              newClientIdsPerMinute: parseIntOption(
                o.newClientIdsPerMinute,
                '--new-client-ids-per-minute',
                0,
                1_000_000,
              ),
            },
            connectionLimits: {
              maxConnections: parseIntOption(o.maxConnections, '--max-connections', 1, 1_000_000),
              maxConnectionsPerSource: parseIntOption(
                o.maxConnectionsPerSource,
                '--max-connections-per-source',
                1,
                65_535,
              ),
              headerDeadlineMs: parseDuration(o.headerDeadline, '--header-deadline', { min: 10, max: 10 * MINUTE }),
              frameDeadlineMs: parseDuration(o.frameDeadline, '--frame-deadline', { min: 10, max: 10 * MINUTE }),
              idleTimeoutMs: parseDuration(o.idleTimeout, '--idle-timeout', { min: 10, max: DAY }),
            },
            logger: await createLogger(o.logLevel),
            flushIntervalMs: parseDuration(o.flushInterval, '--flush-interval', { min: 10, max: MINUTE }),
            requestLog: { countedPerMinute: parseIntOption(o.logRequests, '--log-requests', 0, 1_000_000) },
          };
          if (!o.publish?.length && (o.dnsServer || o.tsigKeyFile)) {
            throw new CliError(
              'OPTION_INVALID',
              '--dns-server and --tsig-key-file need --publish DOMAIN[,PRIORITY,WEIGHT]',
            );
          }
          const dnsPublish = o.dnsPublish && o.publish?.length ? parseDnsPublish(o, listen) : undefined;
          config.logger.info({ nodeFlags: process.execArgv }, 'node runtime');
          // The SRV record announces the port actually listened on (port 0 picks one): the
          // publisher gets it once the host listens.
          const running = await startKmsHost({ ...config, ...(dnsPublish ? { dnsPublish } : {}) });
          // Before the listening line: whoever waits for that line has the warning already.
          if (running.windowReset)
            process.stderr.write(`WARNING ${running.windowReset.code}: ${running.windowReset.message}\n`);
          process.stderr.write(
            `KMS host listening on ${running.address.host}:${running.address.port}` +
              (running.metricsAddress
                ? `; metrics on http://${running.metricsAddress.host}:${running.metricsAddress.port}/metrics`
                : '') +
              '\n',
          );
          for (const d of running.dnsPublication()?.domains ?? []) {
            process.stderr.write(
              d.lastError
                ? `DNS: not published in ${d.domain}: ${d.lastError.code}: ${d.lastError.message} (serving anyway; retrying)\n`
                : `DNS: published ${d.srv} -> ${d.target}:${d.port} (priority ${d.priority}, weight ${d.weight})\n`,
            );
          }
          await waitForShutdown();
          try {
            await running.close();
          } finally {
            config.logger.flush();
          }
        },
      ),
    );

  host
    .command('status')
    .description(
      'counts per group, requests, certificate (like the reference /dlv); exits 0 activated, 10 not activated, 11 certificate expired (0 with --json)',
    )
    .requiredOption('--data-dir <dir>', 'data directory of the host')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { dataDir: string; json?: boolean }) => {
        const s = hostStatus(o.dataDir);
        if (o.json) {
          printJson(s);
          return;
        }
        process.exitCode = hostStatusExit(s, systemClock.now());
        console.log(`KMS host key: ${s.keyInstalled} (${s.activated ? 'activated' : 'NOT activated'})`);
        if (s.certificate) console.log(`Certificate: ${s.certificate.serial}, valid until ${s.certificate.expiresAt}`);
        for (const g of s.groups) console.log(`Group ${g.name}: current count ${g.count} (threshold ${g.threshold})`);
        console.log(`Total requests received: ${s.requests.total}`);
        console.log(`Failed requests received: ${s.requests.failed}`);
        for (const [state, n] of Object.entries(s.requests.byClientState))
          console.log(`Requests with licence state ${state}: ${n}`);
        for (const d of s.dns?.domains ?? []) {
          console.log(
            `DNS ${d.domain}: ${d.srv} -> ${d.target}:${d.port} (priority ${d.priority}, weight ${d.weight}); ` +
              (d.removedAt
                ? `removed ${d.removedAt}`
                : d.publishedAt
                  ? `published ${d.publishedAt}`
                  : 'not published') +
              (d.lastCheck
                ? `; checked ${d.lastCheck.at}: ${d.lastCheck.result === 'missing' ? 'missing, published again' : d.lastCheck.result}${d.lastCheck.detail ? ` (${d.lastCheck.detail})` : ''}`
                : '') +
              (d.lastError ? `; last error ${d.lastError.code}: ${d.lastError.message}` : ''),
          );
        }
        const p = s.persistence;
        console.log(
          `Persistence: ${p.running ? 'host running' : 'host not running'}; window written every ${p.flushIntervalMs} ms ` +
            `(a crash or kill -9 loses at most the client IDs of the last ${p.flushIntervalMs} ms; a clean stop loses none)` +
            (p.lastSavedAt ? `; last written ${p.lastSavedAt}` : ''),
        );
        if (p.stoppedCleanly === false)
          console.log('WARNING: the last run did not stop cleanly (crash or kill -9): its last interval may be lost');
        if (p.unsaved > 0 || p.lastFlushError)
          console.log(
            `WARNING: ${p.unsaved} client IDs answered but not saved in host.db` +
              (p.lastFlushError
                ? `; writing fails since ${p.lastFlushError.at}: ${p.lastFlushError.code}: ${p.lastFlushError.message}`
                : ''),
          );
        if (s.windowReset)
          console.log(`WARNING ${s.windowReset.code} at ${s.windowReset.at}: ${s.windowReset.message}`);
        const t = s.trust;
        for (const r of t.roots)
          console.log(
            `Root ${r.keyId}: ${r.state}${r.validFrom ? `, valid from ${r.validFrom}` : ''}${r.validUntil ? ` until ${r.validUntil}` : ''} (${r.source})` +
              (r.keyId === t.certificateIssuer ? '; certified this host' : ''),
          );
        console.log(
          `Revocation list: ${t.revocationList ? `version ${t.revocationList.version}, next update ${t.revocationList.nextUpdate}` : 'none'}`,
        );
        console.log(
          `Host status: ${t.hostStatus.state}${t.hostStatus.nextUpdate ? `, next update ${t.hostStatus.nextUpdate}` : ''}` +
            (t.checkedAt ? `; last checked ${t.checkedAt}` : ''),
        );
        for (const w of t.warnings) console.log(`WARNING: ${w}`);
      }),
    );
}
