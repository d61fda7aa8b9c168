import type { Command } from 'commander';
import { Licence, type ActivationOutcome, type LicenceStatus } from '@volact/client';
import { CliError, printJson } from '../output.js';
import {
  parseIntOption,
  readProductConfigFile,
  readKeyInput,
  readSecretFile,
  SECRET_ARGUMENT_HELP,
} from '../options.js';
import { waitForShutdown, type Run } from '../runtime.js';
import { registerClientOffline } from './client-offline.js';
import { registerClientAgent } from './client-agent.js';
import { atStart } from './client-machine.js';

/** Exit codes of `client activate`, for scripts. */
export const ACTIVATE_EXIT = { licensed: 0, other: 1, thresholdNotMet: 2, unreachable: 3, untrusted: 4 } as const;

type ActivationCode = NonNullable<ActivationOutcome['code']>;

/** Outcomes that say "retry later": nothing answered, or nothing to ask. */
const UNREACHABLE_CODES: ReadonlySet<ActivationCode> = new Set<ActivationCode>([
  'KMS_UNREACHABLE',
  'KMS_TIMEOUT',
  'NO_KMS_HOST',
  'NO_AUTHORITY',
  'AUTHORITY_UNREACHABLE',
  'DIRECTORY_UNREACHABLE',
]);

/** Outcomes where an answer came but was not trusted. */
const UNTRUSTED_CODES: ReadonlySet<ActivationCode> = new Set<ActivationCode>([
  'ACTIVATION_UNTRUSTED',
  'KMS_CERT_UNTRUSTED',
  'KMS_CERT_EXPIRED',
  'KMS_CERT_GROUP_MISMATCH',
  'KMS_BAD_SIGNATURE',
  'KMS_NONCE_MISMATCH',
  'KMS_GROUP_MISMATCH',
  'KMS_CLIENT_MISMATCH',
  'KMS_CLOCK_SKEW',
  'KMS_MALFORMED_RESPONSE',
  'KMS_HOST_REVOKED',
  'KMS_HOST_STATUS_MISSING',
  'CID_SIGNER_UNKNOWN',
]);

// Sets rather than a switch: every other code of the (large) union is "other", by design.
function exitCodeFor(outcome: ActivationOutcome): number {
  if (outcome.ok) return ACTIVATE_EXIT.licensed;
  if (outcome.code === 'KMS_THRESHOLD_NOT_MET') return ACTIVATE_EXIT.thresholdNotMet;
  if (outcome.code !== null && UNREACHABLE_CODES.has(outcome.code)) return ACTIVATE_EXIT.unreachable;
  if (outcome.code !== null && UNTRUSTED_CODES.has(outcome.code)) return ACTIVATE_EXIT.untrusted;
  return ACTIVATE_EXIT.other;
}

/**
 * Exit codes of `client status` (plain output), one per licence state, for scripts: 0 licensed;
 * 10-12 a grace period (the product works, an activation is due); 13 notification and 14
 * unlicensed (it does not work). Apart from 1 (the store could not be read) and from
 * `activate`'s 2-4, so that no state reads as an error or as "retry later" (3). With --json the
 * state is in the output and the command exits 0 once it has read the store: a script parsing
 * it under `set -o pipefail` is not stopped by a state.
 */
export const STATUS_EXIT: Readonly<Record<LicenceStatus['state'], number>> = {
  licensed: 0,
  'initial-grace': 10,
  'out-of-tolerance': 11,
  'non-genuine-grace': 12,
  notification: 13,
  unlicensed: 14,
};

function printStatus(s: LicenceStatus): void {
  console.log(`State:        ${s.state}`);
  console.log(`Group:        ${s.group} (threshold ${s.threshold})`);
  console.log(`Method:       ${s.method ?? '-'}`);
  if (s.actType !== 'any') console.log(`Act type:     ${s.actType}`);
  if (s.oem)
    console.log(
      `OEM marker:   ${s.oem.machine ?? '?'} by ${s.oem.manufacturer ?? '?'}${s.oem.code ? ` (${s.oem.code})` : ''}`,
    );
  if (s.token)
    console.log(
      `Token:        ${s.token.serial ?? '?'} of ${s.token.organisation ?? '?'} until ${s.token.notAfter ?? '?'}${s.token.code ? ` (${s.token.code})` : ''}`,
    );
  if (s.crl)
    console.log(
      `CRL:          ${s.crl.revoked} serial(s), issued ${s.crl.issuedAt}${s.crl.stale ? `, STALE since ${s.crl.nextUpdate}` : ''}`,
    );
  console.log(`Key:          ${s.installedKey ? `${s.installedKey} (${s.installedKeyType})` : '(none)'}`);
  if (s.installationId) console.log(`Install. ID:  ${s.installationId}`);
  console.log(`Expires:      ${s.expiresAt ?? '-'}`);
  console.log(
    `KMS host:     ${s.host ?? '(not set)'}${s.hostSource ? ` (${{ manual: 'set by hand', cache: 'cached from DNS', dns: 'found in DNS' }[s.hostSource]})` : ''}`,
  );
  if (s.directoryObject) console.log(`Directory:    object ${s.directoryObject.name} of ${s.directoryObject.domain}`);
  else if (s.directory) console.log(`Directory:    member of ${s.directory.domain} (${s.directory.url})`);
  console.log(
    `Discovery:    ${s.discovery.domains.length ? s.discovery.domains.join(', ') : "this machine's domain"}${s.discovery.dnsServer ? ` via ${s.discovery.dnsServer}` : ''}; caching ${s.discovery.caching ? 'on' : 'off'}${s.discovery.cachedHost ? ` (cached ${s.discovery.cachedHost})` : ''}`,
  );
  console.log(`Count:        ${s.count ?? '-'}`);
  console.log(`Client ID:    ${s.clientMachineId}`);
  if (s.lastAttempt)
    console.log(
      `Last attempt: ${s.lastAttempt.at} ${s.lastAttempt.ok ? 'ok' : s.lastAttempt.code}: ${s.lastAttempt.message}`,
    );
  console.log(`Next attempt: ${s.nextAttemptAt}`);
  console.log(
    `Trust:        root(s) ${s.trust.roots.map((r) => `${r.keyId} (${r.source}, from ${r.validFrom}${r.validUntil ? ` until ${r.validUntil}` : ''})`).join(', ')}; revocation list ${s.trust.revocationListVersion === null ? 'none held' : `version ${s.trust.revocationListVersion}`}`,
  );
  if (s.evidence)
    console.log(
      `Evidence:     ${s.evidence.method} signed by ${s.evidence.signedBy}, anchored in root ${s.evidence.root}`,
    );
}

/** Every `client` command that opens an installation reads the machine at start (atStart). */
function addMachineOptions(client: Command): void {
  for (const command of client.commands) {
    const long = command.options.map((opt) => opt.long);
    if (!long.includes('--state-dir')) continue;
    if (!long.includes('--hardware-id')) {
      command.option(
        '--hardware-id <id>',
        "this machine's hardware id, when not its fingerprint (give the one of `client init --hardware-id` at every start; or VOLACT_HARDWARE_ID)",
      );
    }
    if (!long.includes('--member-domain')) {
      command.option(
        '--member-domain <domain>',
        'the directory domain this machine is a member of, when not its DNS domain (or VOLACT_MEMBER_DOMAIN)',
      );
    }
  }
}

export function registerClient(program: Command, run: Run): void {
  const client = program.command('client').description("an installation of the publisher's product (SDK agent)");

  client
    .command('init')
    .description('create an installation from a product config: pins the root key, installs the GVLK')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .requiredOption(
      '--product <file>',
      "product.json exported by `volact authority product-config`, at the product's installed location (outside the state directory): read there at every start",
    )
    .option(
      '--hardware-id <id>',
      "override the machine's hardware fingerprint (then give it to every later command too: the store is not trusted with it)",
    )
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; product: string; hardwareId?: string; json?: boolean }) => {
        const product = readProductConfigFile(o.product);
        const { hardwareId } = atStart(o);
        const licence = Licence.init({ stateDir: o.stateDir, product, productPath: o.product, hardwareId });
        const s = licence.status();
        if (o.json) printJson(s);
        else
          console.log(
            `installation created: group ${s.group}, client ID ${s.clientMachineId}, state ${s.state} until ${s.expiresAt}`,
          );
      }),
    );

  client
    .command('reset')
    .description(
      'replace a damaged (or old-format) licence store with a new installation: keeps the client ID and install date when readable; activate again',
    )
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .requiredOption(
      '--product <file>',
      "product.json at the product's installed location (outside the state directory)",
    )
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; product: string; json?: boolean }) => {
        const product = readProductConfigFile(o.product);
        const licence = Licence.reset({ ...atStart(o), stateDir: o.stateDir, product, productPath: o.product });
        const s = licence.status();
        if (o.json) printJson(s);
        else
          console.log(
            `new licence store in ${o.stateDir}: client ID ${s.clientMachineId}, state ${s.state}${s.expiresAt ? ` until ${s.expiresAt}` : ''}; activate again`,
          );
      }),
    );

  client
    .command('set-product')
    .description("accept this product file (an update from the publisher, same group) as the installation's")
    .argument('<file>', "product.json at the product's installed location (outside the state directory)")
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }, file: string) => {
        Licence.setProduct({ stateDir: o.stateDir, product: readProductConfigFile(file), productPath: file });
        const s = Licence.open({ ...atStart(o), stateDir: o.stateDir }).status();
        if (o.json) printJson(s);
        else console.log(`product ${file} accepted (group ${s.group}); state ${s.state}`);
      }),
    );

  client
    .command('set-host')
    .description('use this KMS host (HOST[:PORT], port 1688 by default)')
    .argument('<address>', 'HOST[:PORT]')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }, address: string) => {
        const licence = Licence.open({ ...atStart(o), stateDir: o.stateDir });
        licence.setKmsHost(address);
        if (o.json) printJson({ host: licence.status().host });
        else console.log(`KMS host set to ${licence.status().host}`);
      }),
    );

  client
    .command('clear-host')
    .description('forget the manually set KMS host')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }) => {
        const licence = Licence.open({ ...atStart(o), stateDir: o.stateDir });
        licence.setKmsHost(null);
        if (o.json) printJson({ host: null });
        else console.log('KMS host cleared');
      }),
    );

  client
    .command('install-key')
    .description(
      "install a product key: the group's GVLK (KMS activation), a MAK or a retail key (replaces the installed key)",
    )
    .argument('[key]', `product key (${SECRET_ARGUMENT_HELP})`)
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--key-file <file>', 'file holding the product key (- for standard input)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; keyFile?: string; json?: boolean }, given?: string) => {
        const key = readKeyInput(given, o.keyFile);
        const licence = Licence.open({ ...atStart(o), stateDir: o.stateDir });
        licence.installKey(key);
        if (o.json) printJson({ installedKey: licence.status().installedKey });
        else console.log(`key ${licence.status().installedKey} installed`);
      }),
    );

  client
    .command('uninstall-key')
    .description(
      'remove the installed product key and its activation: the installation is unlicensed until a key is installed again (the initial grace does not restart)',
    )
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }) => {
        const licence = Licence.open({ ...atStart(o), stateDir: o.stateDir });
        const method = licence.status().method;
        const removed = licence.uninstallKey();
        const { state } = licence.status();
        if (o.json) printJson({ uninstalledKey: removed, state });
        else if (removed === null) console.log(`no product key is installed (nothing changed); state: ${state}`);
        else
          console.log(
            `key ${removed} uninstalled${method ? ` with its ${method} activation` : ''}; state: ${state} ` +
              '(install a key with `volact client install-key`)',
          );
      }),
    );

  client
    .command('activate')
    .description(
      'activate now (KMS with a GVLK, online at the authority with a MAK or retail key); exits 0 only when licensed (2: count below threshold, 3: host or authority unreachable, 4: answer not trusted)',
    )
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option(
      '--authority <url>',
      "MAK or retail key: the publisher's authority (https://…), instead of the product config's",
    )
    .option('--timeout <ms>', 'how long to wait for the host or authority', '5000')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; timeout: string; authority?: string; json?: boolean }) => {
        const timeoutMs = parseIntOption(o.timeout, '--timeout', 100, 600_000);
        const licence = Licence.open({ ...atStart(o), stateDir: o.stateDir, timeoutMs });
        const outcome = await licence.activate(o.authority === undefined ? {} : { authority: o.authority });
        if (o.json) printJson({ ok: outcome.ok, code: outcome.code, message: outcome.message, ...outcome.status });
        else if (outcome.ok) console.log(`licensed: ${outcome.message}`);
        else
          process.stderr.write(`not activated: ${outcome.code}: ${outcome.message}\nstate: ${outcome.status.state}\n`);
        process.exitCode = exitCodeFor(outcome);
      }),
    );

  client
    .command('doctor')
    .description('walk every step of an activation and say which fails, with the fix')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--timeout <ms>', 'how long to wait for each directory, DNS server or host', '3000')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; timeout: string; json?: boolean }) => {
        const timeoutMs = parseIntOption(o.timeout, '--timeout', 100, 60_000);
        const report = await Licence.open({ ...atStart(o), stateDir: o.stateDir, timeoutMs }).doctor();
        if (o.json) printJson(report);
        else {
          for (const s of report.steps) {
            console.log(
              `${{ ok: 'ok  ', fail: 'FAIL', skip: 'skip', warn: 'warn' }[s.status]}  ${s.step}: ${s.detail}`,
            );
            if (s.fix && s.status !== 'ok') console.log(`      fix: ${s.fix}`);
          }
          console.log(
            report.ok
              ? 'activation would succeed'
              : `activation would fail at: ${report.failedAt ?? '(no way to activate)'}`,
          );
        }
        process.exitCode = report.ok ? 0 : 1;
      }),
    );

  client
    .command('discover')
    .description('look up KMS hosts in DNS (SRV) and list them in the order they would be tried')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }) => {
        const found = await Licence.open({ ...atStart(o), stateDir: o.stateDir }).discover();
        if (o.json) {
          printJson(found);
          if (found.hosts.length === 0) process.exitCode = 1;
          return;
        }
        if (found.domains.length === 0) console.log('no DNS domain to search: set one with `volact client set-domain`');
        for (const h of found.hosts)
          console.log(`${h.address}\t${h.domain}\tpriority ${h.priority}\tweight ${h.weight}`);
        for (const e of found.errors) process.stderr.write(`${e.domain}: ${e.code}: ${e.message}\n`);
        if (found.hosts.length === 0) process.exitCode = 1;
        for (const d of found.domains) {
          if (!found.hosts.some((h) => h.domain === d) && !found.errors.some((e) => e.domain === d)) {
            process.stderr.write(
              `${d}: no SRV record for _vlmcs._tcp.${d}: is the host publishing? see \`volact host status\`\n`,
            );
          }
        }
      }),
    );

  client
    .command('set-domain')
    .description("search these DNS domains for KMS hosts (default: this machine's own domain)")
    .argument('<domains...>', 'one or more domains, e.g. corp.test')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--dns-server <host:port>', 'ask this DNS server instead of the system resolver')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; dnsServer?: string; json?: boolean }, ...domains: string[]) => {
        const licence = Licence.open({ ...atStart(o), stateDir: o.stateDir });
        licence.setDiscoveryDomains(
          domains.flatMap((d) => d.split(',')).filter(Boolean),
          o.dnsServer === undefined ? undefined : o.dnsServer,
        );
        const s = licence.status();
        if (o.json) printJson(s.discovery);
        else
          console.log(
            `discovery: ${s.discovery.domains.join(', ')}${s.discovery.dnsServer ? ` via ${s.discovery.dnsServer}` : ''}`,
          );
      }),
    );

  client
    .command('clear-domain')
    .description(
      "forget the DNS domains and DNS server set by hand: discover hosts in this machine's own domain, with the system resolver",
    )
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }) => {
        const licence = Licence.open({ ...atStart(o), stateDir: o.stateDir });
        licence.setDiscoveryDomains([], null);
        const s = licence.status();
        if (o.json) printJson(s.discovery);
        else
          console.log(
            "discovery domains cleared: hosts are looked up in this machine's own domain, with the system resolver",
          );
      }),
    );

  client
    .command('set-caching')
    .description('on: renew with the host found in DNS until it stops answering; off: look up DNS every time')
    .argument('<on|off>', 'on or off')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }, value: string) => {
        if (value !== 'on' && value !== 'off')
          throw new CliError('OPTION_INVALID', `expected on or off, got "${value}"`);
        const licence = Licence.open({ ...atStart(o), stateDir: o.stateDir });
        licence.setHostCaching(value === 'on');
        if (o.json) printJson({ caching: value === 'on' });
        else console.log(`host caching ${value}`);
      }),
    );

  client
    .command('join-domain')
    .description('make this installation a member of a directory domain (directory-based activation)')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .requiredOption('--url <url>', 'the directory, ldap://HOST:PORT or ldaps://…')
    .requiredOption('--domain <domain>', 'the directory domain, e.g. corp.test')
    .requiredOption('--base <dn>', 'base DN of the activation objects, e.g. dc=corp,dc=test')
    .option('--container <rdn>', 'the container of activation objects under the base')
    .option('--bind-dn <dn>', 'bind as this DN (anonymous without)')
    .option('--password-file <file>', 'the bind password, in a file')
    .option('--json', 'print JSON')
    .action(
      run(
        async (o: {
          stateDir: string;
          url: string;
          domain: string;
          base: string;
          container?: string;
          bindDn?: string;
          passwordFile?: string;
          json?: boolean;
        }) => {
          if ((o.bindDn === undefined) !== (o.passwordFile === undefined)) {
            throw new CliError(
              'OPTION_INVALID',
              '--bind-dn and --password-file go together (neither: an anonymous bind)',
            );
          }
          const licence = Licence.open({ ...atStart(o), stateDir: o.stateDir });
          licence.joinDomain({
            url: o.url,
            domain: o.domain,
            base: o.base,
            ...(o.container ? { container: o.container } : {}),
            ...(o.bindDn ? { bindDn: o.bindDn } : {}),
            ...(o.passwordFile ? { password: readSecretFile(o.passwordFile, '--password-file') } : {}),
          });
          const s = licence.status();
          if (o.json) printJson(s.directory);
          else console.log(`member of ${s.directory?.domain} (${s.directory?.url})`);
        },
      ),
    );

  client
    .command('leave-domain')
    .description('leave the directory domain: a directory activation ends')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }) => {
        const licence = Licence.open({ ...atStart(o), stateDir: o.stateDir });
        licence.leaveDomain();
        if (o.json) printJson({ directory: null, state: licence.status().state });
        else console.log(`left the domain; state ${licence.status().state}`);
      }),
    );

  client
    .command('installation-id')
    .description('print the installation ID to read out for phone activation (MAK or retail key installed)')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }) => {
        const iid = Licence.open({ ...atStart(o), stateDir: o.stateDir }).installationId();
        if (o.json) printJson({ installationId: iid });
        else console.log(iid);
      }),
    );

  client
    .command('install-confirmation')
    .description('activate with the confirmation ID the publisher gave for this installation ID')
    .argument('<confirmation-id...>', 'the digit groups, with or without dashes')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }, ...cid: string[]) => {
        const s = Licence.open({ ...atStart(o), stateDir: o.stateDir }).installConfirmation(cid.join(' '));
        if (o.json) printJson(s);
        else console.log(`licensed (${s.method}, permanent)`);
      }),
    );

  registerClientOffline(client, run);

  client
    .command('status')
    .description(
      'licence state, method, expiry, host and count; exits 0 licensed, 10 initial-grace, 11 out-of-tolerance, 12 non-genuine-grace, 13 notification, 14 unlicensed (0 with --json: the state is in the output)',
    )
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }) => {
        const s = Licence.open({ ...atStart(o), stateDir: o.stateDir }).status();
        if (o.json) {
          printJson(s);
          return;
        }
        printStatus(s);
        process.exitCode = STATUS_EXIT[s.state];
      }),
    );

  registerClientAgent(client, run);

  client
    .command('run')
    .description('run the activation schedule in the foreground (activate, renew every 7 days, retry every 2 hours)')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .action(
      run(async (o: { stateDir: string }) => {
        const licence = Licence.open({ ...atStart(o), stateDir: o.stateDir });
        licence.onChange((s) =>
          console.log(JSON.stringify({ event: 'state', state: s.state, expiresAt: s.expiresAt })),
        );
        licence.startSchedule();
        const keepAlive = setInterval(() => undefined, 1 << 30);
        await waitForShutdown();
        clearInterval(keepAlive);
        licence.stopSchedule();
      }),
    );

  addMachineOptions(client);
}
