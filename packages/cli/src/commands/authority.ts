import { Option, type Command } from 'commander';
import {
  Authority,
  AuthorityError,
  HOST_CERT_VALIDITY_DAYS,
  MAX_CERTIFIED_DAYS,
  createAuthorityServer,
  CLI_PRINCIPAL,
  DEFAULT_ORG_ID,
  type KeyReport,
  type MintKeyRequest,
} from '@volact/authority';
import { DAY, DEFAULT_OBJECT_VALIDITY_DAYS, GROUP_KINDS, MAX_OBJECT_VALIDITY_DAYS, type GroupKind } from '@volact/core';
import { CliError, printJson } from '../output.js';
import { parseIntOption, parseListen, readKeyInput, readTokenFile, SECRET_ARGUMENT_HELP } from '../options.js';
import { createLogger, waitForShutdown, type Run } from '../runtime.js';
import { registerAuthorityRevocation } from './authority-revocation.js';
import { registerAuthorityRoot } from './authority-root.js';
import { registerAuthorityRaise } from './authority-raise.js';
import { registerAuthorityWebhook } from './authority-webhook.js';
import { registerAuthorityAccess } from './authority-access.js';
import { registerAuthorityOrg } from './authority-org.js';
import { registerAuthorityConfirmFile } from './authority-confirm-file.js';
import {
  dataDirOption,
  dbOption,
  openAuthority,
  tokenFileOption,
  urlOption,
  type AuthorityTarget,
  type TargetOptions,
} from './authority-target.js';
import {
  ignoreSighup,
  isLoopbackHost,
  loadServeTlsAtStart,
  parseTrustProxy,
  reloadTlsOnSighup,
  type TlsServer,
} from './authority-serve-tls.js';
import { readPublicKeyFile, writeOut } from './signing-files.js';

/** init and serve work on a data directory (and, optionally, a PostgreSQL database); every other verb on it or a remote authority (authority-target.ts). */
const localDataDirOption = () =>
  new Option('--data-dir <dir>', 'data directory of the authority').makeOptionMandatory();

const storeOption = (o: { db?: string }) => (o.db ? { databaseUrl: o.db } : {});

/**
 * The authority names the request field a refusal is about in its own words; here, each is
 * the flag that gives it, so the message says what to change on this command line.
 */
const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  dataDir: '--data-dir',
  databaseUrl: '--db',
  type: '--type',
  groups: '--group',
  limit: '--limit',
  hosts: '--hosts',
  activationsPerHost: '--activations-per-host',
  url: '--url',
  domain: '--domain',
  name: '--name',
  validityDays: '--validity-days',
  manufacturer: '--manufacturer',
  organisation: '--organisation',
  publicKey: '--public-key',
  days: '--days',
  reason: '--reason',
  signer: '--signer',
  note: '--note',
};

function withFlag(err: unknown): unknown {
  const flag = err instanceof AuthorityError && err.field !== undefined ? FLAG_OF_FIELD[err.field] : undefined;
  if (flag === undefined) return err;
  // A remote authority's schema names the field as `body.<field>: …`: the flag says it here.
  const message = (err as AuthorityError).message.replace(/^(?:body|query)\.[A-Za-z]+: /, '');
  return new AuthorityError((err as AuthorityError).code, `${flag}: ${message}`);
}

export function registerAuthority(program: Command, runCommand: Run): void {
  const run: Run = <T extends object>(action: (options: T, ...rest: string[]) => Promise<void>) =>
    runCommand(async (options: T, ...rest: string[]) => {
      try {
        await action(options, ...rest);
      } catch (err) {
        throw withFlag(err);
      }
    });
  const authority = program
    .command('authority')
    .description("the publisher's authority: root key, groups, keys, host certificates");

  authority
    .command('init')
    .description('create the root signing key and the database in a data directory')
    .addOption(localDataDirOption())
    .addOption(dbOption())
    .option('--name <name>', 'name shown in product configs', 'volact authority')
    .option(
      '--signer <spec>',
      'where the root key is made and kept: file (roots/<keyId>.pem in the data directory) or pkcs11:token=…;object=…;pin-source=file:…',
      'file',
    )
    .option('--json', 'print JSON')
    .action(
      run(async (o: { dataDir: string; db?: string; name: string; signer: string; json?: boolean }) => {
        const a = Authority.init(o.dataDir, { name: o.name, signer: o.signer, ...storeOption(o) });
        const out = { dataDir: o.dataDir, rootPublicKey: a.rootPublicKeyRaw.toString('base64') };
        await a.close();
        if (o.json) printJson(out);
        else console.log(`authority created in ${o.dataDir}\nroot public key ${out.rootPublicKey}`);
      }),
    );

  const group = authority.command('group').description('product groups');
  group
    .command('add')
    .description('add a product group (threshold: 5 for app/server kinds, 25 for client-os)')
    .addOption(dataDirOption())
    .addOption(dbOption())
    .addOption(urlOption())
    .addOption(tokenFileOption())
    .requiredOption('--name <name>', 'group name, e.g. office14')
    .option('--kind <kind>', `one of ${GROUP_KINDS.join(', ')}`, 'app')
    .option('--threshold <n>', 'activation threshold (clients counted before any activates)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { name: string; kind: string; threshold?: string; json?: boolean }) => {
        if (!GROUP_KINDS.includes(o.kind as GroupKind)) {
          throw new CliError('OPTION_INVALID', `--kind must be one of ${GROUP_KINDS.join(', ')}, got "${o.kind}"`);
        }
        const a = openAuthority(o);
        try {
          const g = await a.addGroup({
            name: o.name,
            kind: o.kind as GroupKind,
            ...(o.threshold !== undefined
              ? { threshold: parseIntOption(o.threshold, '--threshold', 1, 1_000_000) }
              : {}),
          });
          if (o.json) printJson(g);
          else console.log(`group ${g.name} (${g.kind}, threshold ${g.threshold}) id ${g.id}`);
        } finally {
          await a.close();
        }
      }),
    );
  group
    .command('list')
    .addOption(dataDirOption())
    .addOption(dbOption())
    .addOption(urlOption())
    .addOption(tokenFileOption())
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { json?: boolean }) => {
        const a = openAuthority(o);
        try {
          const groups = await a.listGroups();
          if (o.json) printJson({ groups });
          else for (const g of groups) console.log(`${g.name}\t${g.kind}\tthreshold ${g.threshold}\t${g.id}`);
        } finally {
          await a.close();
        }
      }),
    );

  authority
    .command('product-config')
    .description("print the product configuration a publisher ships in the group's product")
    .addOption(dataDirOption())
    .addOption(dbOption())
    .addOption(tokenFileOption())
    .requiredOption('--group <name>', 'product group')
    .option(
      '--url <url>',
      'public URL of this authority (https://…): where installations activate a MAK online; with --token-file, the remote authority asked (and the public URL unless --public-url)',
    )
    .option('--public-url <url>', 'public URL in the config when it is not --url (behind a proxy, another name)')
    .action(
      run(async (o: TargetOptions & { group: string; publicUrl?: string }) => {
        // On the data directory --url is only the public URL; with --token-file it is also the authority asked.
        const a = openAuthority(o.tokenFile === undefined ? { ...o, url: undefined } : o);
        const url = o.publicUrl ?? o.url;
        try {
          const config = await a.productConfig(o.group, url === undefined ? {} : { url });
          process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
        } finally {
          await a.close();
        }
      }),
    );

  const key = authority.command('key').description('product keys');
  key
    .command('mint')
    .description('mint a key; secret keys are shown once and stored only as a keyed hash')
    .addOption(dataDirOption())
    .addOption(dbOption())
    .addOption(urlOption())
    .addOption(tokenFileOption())
    .requiredOption('--type <type>', 'key type: kms-host, mak or retail')
    .requiredOption('--group <names>', 'product group(s), comma-separated (one for a MAK or a retail key)')
    .option('--limit <n>', 'installations a MAK may activate (a retail key: 1, always)')
    .option('--hosts <n>', 'hosts a KMS host key may activate', '6')
    .option('--activations-per-host <n>', 'times each host may activate it', '10')
    .option('--org <id>', `the organisation that owns the key (default ${DEFAULT_ORG_ID})`)
    .option('--note <text>', 'a note kept with the key (a site, an order number; ≤ 500 characters)')
    .option('--json', 'print JSON')
    .action(
      run(
        async (o: {
          dataDir?: string;
          db?: string;
          url?: string;
          tokenFile?: string;
          org?: string;
          note?: string;
          type: string;
          group: string;
          hosts: string;
          limit?: string;
          activationsPerHost: string;
          json?: boolean;
        }) => {
          if (o.type !== 'kms-host' && o.type !== 'mak' && o.type !== 'retail')
            throw new CliError('OPTION_INVALID', `--type must be kms-host, mak or retail, got "${o.type}"`);
          if (o.type === 'mak' && o.limit === undefined)
            throw new CliError('OPTION_INVALID', 'a MAK needs --limit N (how many installations it may activate)');
          const groups = o.group
            .split(',')
            .map((g) => g.trim())
            .filter(Boolean);
          const a = openAuthority(o);
          // Minted for its organisation (docs/portal.md), audited as the CLI's principal.
          const mint = (request: MintKeyRequest) =>
            a.organisations.mintKey(
              o.org ?? DEFAULT_ORG_ID,
              { ...request, ...(o.note !== undefined ? { note: o.note } : {}) },
              CLI_PRINCIPAL,
            );
          try {
            const minted =
              o.type === 'mak' || o.type === 'retail'
                ? await mint({
                    type: o.type,
                    groups,
                    // A retail key's limit is 1: the authority refuses any other --limit by name.
                    ...(o.limit === undefined && o.type === 'retail'
                      ? {}
                      : { limit: parseIntOption(o.limit ?? '', '--limit', 1, 10_000_000) }),
                  })
                : await mint({
                    type: 'kms-host',
                    groups,
                    hosts: parseIntOption(o.hosts, '--hosts', 1, 100_000),
                    activationsPerHost: parseIntOption(o.activationsPerHost, '--activations-per-host', 1, 100_000),
                  });
            if (o.json) printJson(minted);
            else console.log(minted.key);
          } finally {
            await a.close();
          }
        },
      ),
    );

  const keyReport = (r: KeyReport) =>
    [
      `key ${r.key} (${r.type}) for ${r.groups.join(', ')}${r.revokedAt ? `, REVOKED ${r.revokedAt}` : ''}`,
      r.type === 'mak' || r.type === 'retail'
        ? `installations: limit ${r.limit}, used ${r.used}, remaining ${r.remaining}`
        : `hosts: limit ${r.limit}, used ${r.used}, remaining ${r.remaining} (each host may activate ${r.activationsPerHost} times)`,
      ...r.activations.map((a) =>
        'hardwareId' in a
          ? `  ${a.hardwareId}: ${a.activationCount} activation(s), last ${a.lastActivatedAt}, certificate until ${a.certificateExpiresAt}`
          : `  ${a.installationId} (${a.channel}): ${a.activationCount} activation(s), last ${a.lastActivatedAt}`,
      ),
    ].join('\n');
  const keyAction = (act: (a: AuthorityTarget, key: string, o: { limit?: string }) => Promise<KeyReport>) =>
    run(async (o: TargetOptions & { json?: boolean; limit?: string; keyFile?: string }, given?: string) => {
      const key = readKeyInput(given, o.keyFile);
      const a = openAuthority(o);
      try {
        const report = await act(a, key, o);
        if (o.json) printJson(report);
        else console.log(keyReport(report));
      } finally {
        await a.close();
      }
    });
  for (const [name, description] of [
    ['show', 'limit, used, remaining and every activation of a key'],
    ['revoke', "refuse the key's later activations (existing ones stay listed)"],
  ] as const) {
    key
      .command(name)
      .description(description)
      .argument('[key]', `the key, XXXXX-XXXXX-XXXXX-XXXXX-XXXXX (${SECRET_ARGUMENT_HELP})`)
      .option('--key-file <file>', 'file holding the key (- for standard input)')
      .addOption(dataDirOption())
      .addOption(dbOption())
      .addOption(urlOption())
      .addOption(tokenFileOption())
      .option('--json', 'print JSON')
      .action(keyAction((a, k) => (name === 'show' ? a.showKey(k) : a.revokeKey(k))));
  }
  key
    .command('raise')
    .description('set how many hosts (KMS host key) or installations (MAK) a key may activate, not below those made')
    .argument('[key]', `the key, XXXXX-XXXXX-XXXXX-XXXXX-XXXXX (${SECRET_ARGUMENT_HELP})`)
    .option('--key-file <file>', 'file holding the key (- for standard input)')
    .addOption(dataDirOption())
    .addOption(dbOption())
    .addOption(urlOption())
    .addOption(tokenFileOption())
    .requiredOption('--limit <n>', 'the new limit')
    .option('--json', 'print JSON')
    .action(keyAction((a, k, o) => a.setKeyLimit(k, parseIntOption(o.limit ?? '', '--limit', 1, 10_000_000))));

  authority
    .command('activation-object')
    .description('activation objects for directory-based activation')
    .command('create')
    .description('sign an activation object for a product group and a directory domain (prints its JSON)')
    .addOption(dataDirOption())
    .addOption(dbOption())
    .addOption(urlOption())
    .addOption(tokenFileOption())
    .requiredOption('--group <name>', 'product group')
    .requiredOption('--domain <domain>', 'the directory domain whose member installations it licenses, e.g. corp.test')
    .requiredOption('--name <name>', 'the object name in the directory')
    .option(
      '--validity-days <n>',
      'how long it licenses members, from its issue (re-issue and publish --replace before it ends)',
      String(DEFAULT_OBJECT_VALIDITY_DAYS),
    )
    .action(
      run(
        async (o: {
          dataDir?: string;
          db?: string;
          url?: string;
          tokenFile?: string;
          group: string;
          domain: string;
          name: string;
          validityDays: string;
        }) => {
          const validityDays = parseIntOption(o.validityDays, '--validity-days', 1, MAX_OBJECT_VALIDITY_DAYS);
          const a = openAuthority(o);
          try {
            const object = await a.createActivationObject({
              group: o.group,
              domain: o.domain,
              name: o.name,
              validityDays,
            });
            process.stdout.write(`${JSON.stringify(object, null, 2)}\n`);
          } finally {
            await a.close();
          }
        },
      ),
    );

  const days = (text: string) => parseIntOption(text, '--days', 1, MAX_CERTIFIED_DAYS);
  authority
    .command('oem-certificate')
    .description('OEM activation: certificates for manufacturers')
    .command('issue')
    .description("certify a manufacturer's public key (oem keygen) for product groups; writes the OEM certificate")
    .addOption(dataDirOption())
    .addOption(dbOption())
    .addOption(urlOption())
    .addOption(tokenFileOption())
    .requiredOption('--manufacturer <name>', 'the manufacturer, as its markers will name it')
    .requiredOption('--public-key <file>', 'oem-public-key.pem from the manufacturer')
    .requiredOption('--group <names...>', 'product groups it may preinstall (space- or comma-separated)')
    .option('--days <n>', 'validity of the certificate (markers made within it stay valid)', '1826')
    .requiredOption('--out <file>', 'certificate file to write')
    .option('--json', 'print JSON')
    .action(
      run(
        async (o: {
          dataDir?: string;
          db?: string;
          url?: string;
          tokenFile?: string;
          manufacturer: string;
          publicKey: string;
          group: string[];
          days: string;
          out: string;
          json?: boolean;
        }) => {
          const publicKeyRaw = readPublicKeyFile(o.publicKey, '--public-key');
          const a = openAuthority(o);
          try {
            const c = await a.issueOemCertificate({
              manufacturer: o.manufacturer,
              publicKeyRaw,
              groups: o.group.flatMap((g) => g.split(',')).filter(Boolean),
              days: days(o.days),
            });
            writeOut(
              o.out,
              c,
              o.json,
              {
                serial: c.serial,
                manufacturer: c.manufacturer,
                groups: c.groups.map((g) => g.name),
                notAfter: c.notAfter,
              },
              `OEM certificate ${c.serial} for ${c.manufacturer} (${c.groups.map((g) => g.name).join(', ')}, until ${c.notAfter}) written to ${o.out}`,
            );
          } finally {
            await a.close();
          }
        },
      ),
    );

  authority
    .command('token-ca')
    .description("token-based activation: certificates for organisations' issuing CAs")
    .command('issue')
    .description("certify an organisation's CA public key (token ca-keygen) for one product group")
    .addOption(dataDirOption())
    .addOption(dbOption())
    .addOption(urlOption())
    .addOption(tokenFileOption())
    .requiredOption('--group <name>', 'the product group its tokens activate')
    .requiredOption('--organisation <name>', 'the organisation running the CA')
    .requiredOption('--public-key <file>', 'ca-public-key.pem from the organisation')
    .option('--days <n>', 'validity of the certificate (tokens end with it at the latest)', '1826')
    .requiredOption('--out <file>', 'CA certificate file to write')
    .option('--json', 'print JSON')
    .action(
      run(
        async (o: {
          dataDir?: string;
          db?: string;
          url?: string;
          tokenFile?: string;
          group: string;
          organisation: string;
          publicKey: string;
          days: string;
          out: string;
          json?: boolean;
        }) => {
          const publicKeyRaw = readPublicKeyFile(o.publicKey, '--public-key');
          const a = openAuthority(o);
          try {
            const c = await a.issueTokenCa({
              organisation: o.organisation,
              group: o.group,
              publicKeyRaw,
              days: days(o.days),
            });
            writeOut(
              o.out,
              c,
              o.json,
              { serial: c.serial, organisation: c.organisation, group: c.group.name, notAfter: c.notAfter },
              `token CA certificate ${c.serial} for ${c.organisation} (${c.group.name}, until ${c.notAfter}) written to ${o.out}`,
            );
          } finally {
            await a.close();
          }
        },
      ),
    );

  authority
    .command('confirm')
    .description('turn an installation ID read out by phone into its confirmation ID (MAK, retail or KMS host key)')
    .argument('<installation-id...>', 'the digit groups, with or without dashes')
    .addOption(dataDirOption())
    .addOption(dbOption())
    .addOption(urlOption())
    .addOption(tokenFileOption())
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { json?: boolean }, ...iid: string[]) => {
        const a = openAuthority(o);
        try {
          const c = await a.confirm(iid.join(' '));
          if (o.json) printJson(c);
          else {
            console.log(c.confirmationId);
            process.stderr.write(
              c.kind === 'installation'
                ? `${c.group}: ${c.again ? 'installation activated before, nothing used' : 'one activation used'}; ${c.used} of ${c.limit}\n`
                : c.kind === 'kms-host'
                  ? `KMS host for ${c.groups.join(', ')}: host ${c.hostsUsed} of ${c.hostLimit}, certificate until ${c.expiresAt}\n`
                  : `activation object for ${c.group}: activation ${c.hostsUsed} of ${c.hostLimit} of the KMS host key\n`,
            );
          }
        } finally {
          await a.close();
        }
      }),
    );

  registerAuthorityRevocation(authority, run);
  registerAuthorityRoot(authority, run);
  registerAuthorityRaise(authority, run);
  registerAuthorityWebhook(authority, run);
  registerAuthorityAccess(authority, run);
  registerAuthorityOrg(authority, run);
  registerAuthorityConfirmFile(authority, run);

  authority
    .command('serve')
    .description('serve the HTTP JSON API (/v1)')
    .addOption(localDataDirOption())
    .addOption(dbOption())
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8080')
    .option('--log-level <level>', 'pino log level', 'info')
    .option('--admin-token-file <file>', 'turn the admin API (/v1/admin/…) on, with the bearer token in this file')
    .option(
      '--activations-per-minute <n>',
      'activation requests allowed per minute per source address and per key',
      '60',
    )
    .option(
      '--bulk-confirmations-per-minute <n>',
      'installation IDs a source (and a key) may send in bulk per minute',
      '10000',
    )
    .option(
      '--host-certificate-days <n>',
      'validity of host certificates issued online; hosts renew at half of it, a revoked host key stops within it',
      String(HOST_CERT_VALIDITY_DAYS),
    )
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM, its chain may follow); re-read on SIGHUP')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM, unencrypted); re-read on SIGHUP')
    .option(
      '--trust-proxy <list...>',
      'addresses or CIDRs of the reverse proxies in front (comma-separated): only from them X-Forwarded-For and X-Forwarded-Proto give the client address and protocol',
    )
    .action(
      run(
        async (o: {
          dataDir: string;
          db?: string;
          listen: string;
          logLevel: string;
          adminTokenFile?: string;
          activationsPerMinute: string;
          bulkConfirmationsPerMinute: string;
          hostCertificateDays: string;
          tlsCert?: string;
          tlsKey?: string;
          trustProxy?: string[];
        }) => {
          const listen = parseListen(o.listen, '--listen');
          const tls = loadServeTlsAtStart(o.tlsCert, o.tlsKey);
          const trustProxy = parseTrustProxy(o.trustProxy);
          const adminToken =
            o.adminTokenFile === undefined ? undefined : readTokenFile(o.adminTokenFile, '--admin-token-file');
          const activationsPerMinute = parseIntOption(o.activationsPerMinute, '--activations-per-minute', 1, 1_000_000);
          const logger = await createLogger(o.logLevel);
          const hostCertificateDays = parseIntOption(o.hostCertificateDays, '--host-certificate-days', 1, 365);
          const a = Authority.open(o.dataDir, {
            ...storeOption(o),
            hostCertificateValidity: hostCertificateDays * DAY,
          });
          const bulkConfirmationsPerMinute = parseIntOption(
            o.bulkConfirmationsPerMinute,
            '--bulk-confirmations-per-minute',
            1,
            10_000_000,
          );
          const app = createAuthorityServer(a, {
            logger,
            activationsPerMinute,
            bulkConfirmationsPerMinute,
            ...(adminToken ? { adminToken } : {}),
            ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
            ...(trustProxy ? { trustProxy } : {}),
          });
          await app.listen({ host: listen.host, port: listen.port });
          a.webhooks.start(); // this node's webhook dispatcher (docs/portal.md "Webhooks")
          const addr = app.server.address();
          const port = addr && typeof addr !== 'string' ? addr.port : listen.port;
          const shown = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
          // SIGHUP is handled before the start line: whoever waits for that line may send one at once.
          const stopReloading =
            tls && o.tlsCert !== undefined && o.tlsKey !== undefined
              ? reloadTlsOnSighup(app.server as unknown as TlsServer, o.tlsCert, o.tlsKey, logger)
              : ignoreSighup(logger);
          process.stderr.write(`authority listening on ${tls ? 'https' : 'http'}://${shown}:${port}\n`);
          if (!tls && trustProxy === undefined && !isLoopbackHost(listen.host)) {
            process.stderr.write(
              'warning: the authority speaks plain HTTP off loopback: clients refuse http:// authorities there; serve HTTPS (--tls-cert, --tls-key) or put a TLS reverse proxy in front (--trust-proxy its address)\n',
            );
          }
          if (tls) {
            logger.info(
              {
                subject: tls.subject,
                serialNumber: tls.serialNumber,
                fingerprint: tls.fingerprint,
                validTo: tls.validTo,
              },
              'tls certificate loaded',
            );
          }
          await waitForShutdown();
          stopReloading();
          await a.webhooks.stop();
          await app.close();
          await a.close();
        },
      ),
    );
}
