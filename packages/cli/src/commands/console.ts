import { Option, type Command } from 'commander';
import {
  addressesFromDirectory,
  REPORT_NAMES,
  VolumeConsole,
  expandRange,
  parseAddressList,
  parseProxyUrl,
  toCsv,
  type AuthorityConnection,
  type MachineResult,
  type Progress,
  type Report,
} from '@volact/console';
import { CliError, printJson } from '../output.js';
import { parseIntOption, readSecretFile, readTokenFile } from '../options.js';
import type { Run } from '../runtime.js';

interface DataDirOptions {
  dataDir: string;
  json?: boolean;
}

const dataDirOption = () => new Option('--data-dir <dir>', 'data directory of the console').makeOptionMandatory();

/** Opens the console for one command and closes it whatever happens. */
async function withConsole<T>(dataDir: string, use: (c: VolumeConsole) => Promise<T>): Promise<T> {
  const c = VolumeConsole.open(dataDir);
  try {
    return await use(c);
  } finally {
    await c.close();
  }
}

/** Progress of a many-machine command: one line per machine on stderr, as each finishes. */
const progress: Progress = (r, done, total) => {
  process.stderr.write(
    `[${done}/${total}] ${r.machine}: ${r.ok ? `ok${r.state ? ` (${r.state})` : ''}` : `${r.code}: ${r.message}`}\n`,
  );
};

/** The results on stdout (a table, or `{results}` with --json); exit 1 when one machine failed. */
function printResults(results: readonly MachineResult[], json: boolean | undefined): void {
  if (json) printJson({ results });
  else {
    for (const r of results) {
      const status = r.ok ? 'ok' : `error ${r.code}`;
      const state = r.state ? `${r.state}${r.method ? ` (${r.method})` : ''}` : '-';
      console.log(`${r.machine}\t${status}\t${state}\t${r.message}`);
    }
  }
  if (results.some((r) => !r.ok)) process.exitCode = 1;
}

/** --authority with an optional --proxy (credentials in the URL, or the password in a file). */
function authorityConnection(o: {
  authority: string;
  proxy?: string;
  proxyPasswordFile?: string;
  timeout?: string;
}): AuthorityConnection {
  if (o.proxyPasswordFile !== undefined && o.proxy === undefined) {
    throw new CliError('OPTION_INVALID', '--proxy-password-file goes with --proxy http://USER@HOST:PORT');
  }
  const password =
    o.proxyPasswordFile === undefined ? undefined : readSecretFile(o.proxyPasswordFile, '--proxy-password-file');
  return {
    url: o.authority,
    ...(o.proxy === undefined ? {} : { proxy: parseProxyUrl(o.proxy, password) }),
    ...(o.timeout === undefined ? {} : { timeoutMs: parseIntOption(o.timeout, '--timeout', 100, 600_000) }),
  };
}

const proxyOptions = (command: Command) =>
  command
    .option('--proxy <url>', 'reach the authority through this HTTP proxy: http://[user:password@]HOST:PORT')
    .option('--proxy-password-file <file>', "the proxy user's password, kept out of the command line");

function printReport(report: Report, o: { json?: boolean; csv?: boolean }): void {
  if (o.json) {
    printJson({ report: report.report, generatedAt: report.generatedAt, rows: report.rows });
    return;
  }
  if (o.csv) {
    process.stdout.write(toCsv(report.columns, report.rows));
    return;
  }
  if (report.rows.length === 0) {
    console.log(`${report.report}: nothing to report`);
    return;
  }
  const cell = (v: Report['rows'][number][string] | undefined) =>
    v === null || v === undefined ? '-' : Array.isArray(v) ? v.join(';') : String(v);
  const widths = report.columns.map((c) => Math.max(c.length, ...report.rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  console.log(line([...report.columns]));
  for (const r of report.rows) console.log(line(report.columns.map((c) => cell(r[c]))));
}

export function registerConsole(program: Command, run: Run): void {
  const con = program
    .command('console')
    .description(
      "the volume-activation console (the reference's VAMT): machines and their agents, keys, status history, proxy activation, reports",
    );

  con
    .command('init')
    .description('create the console: its key file (0600, seals stored keys and tokens) and its database')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions) => {
        await VolumeConsole.init(o.dataDir).close();
        if (o.json) printJson({ dataDir: o.dataDir });
        else
          console.log(
            `console created in ${o.dataDir} (back up console.key with console.db: one is useless without the other)`,
          );
      }),
    );

  const machine = con.command('machine').description('machines managed through their agent (`volact client agent`)');
  machine
    .command('add')
    .description('add machines by agent address; they share the token of --token-file (stored sealed)')
    .argument('<address...>', 'HOST:PORT of each agent ([IPv6]:PORT, or https://HOST:PORT behind TLS)')
    .addOption(dataDirOption())
    .requiredOption('--token-file <file>', "file holding the agents' bearer token (their --admin-token-file)")
    .option('--name <name>', 'a name for the machine (one address only; default: the address)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { tokenFile: string; name?: string }, ...addresses: string[]) => {
        if (o.name !== undefined && addresses.length !== 1) {
          throw new CliError('OPTION_INVALID', '--name names one machine: give one address with it');
        }
        const token = readTokenFile(o.tokenFile, '--token-file');
        const added = await withConsole(o.dataDir, (c) =>
          c.addMachines(addresses, token, o.name === undefined ? undefined : [o.name]),
        );
        if (o.json) printJson({ machines: added });
        else for (const m of added) console.log(`added ${m.name}${m.name === m.address ? '' : ` (${m.address})`}`);
      }),
    );

  machine
    .command('list')
    .description('the machines, with their latest status and last contact')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions) => {
        const machines = await withConsole(o.dataDir, (c) => c.listMachines());
        if (o.json) {
          printJson({ machines });
          return;
        }
        if (machines.length === 0) console.log('no machines: `volact console machine add` or `console discover`');
        for (const m of machines) {
          console.log(
            [
              m.name,
              m.address,
              m.state ?? '(never read)',
              m.method ?? '-',
              `seen ${m.lastSeenAt ?? 'never'}`,
              m.lastError ? `last error ${m.lastError.code}` : '',
            ]
              .filter(Boolean)
              .join('\t'),
          );
        }
      }),
    );

  machine
    .command('remove')
    .description('remove machines with their status history and stored confirmation IDs')
    .argument('<machine...>', 'name or address')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions, ...refs: string[]) => {
        const removed = await withConsole(o.dataDir, (c) => c.removeMachines(refs));
        if (o.json) printJson({ removed });
        else for (const name of removed) console.log(`removed ${name}`);
      }),
    );

  machine
    .command('history')
    .description("a machine's status history: one entry per change seen by refresh or an operation")
    .argument('<machine>', 'name or address')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions, ref: string) => {
        const history = await withConsole(o.dataDir, (c) => c.history(ref));
        if (o.json) printJson({ history });
        else
          for (const h of history) {
            console.log(
              `${h.takenAt}\t${h.status.state}\t${h.status.method ?? '-'}\t${h.status.installedKey ?? '-'}\t${h.status.expiresAt ?? '-'}`,
            );
          }
      }),
    );

  con
    .command('discover')
    .description(
      'probe addresses for agents that accept the token and add them (at most 1 024 probes, several at once, each with a timeout)',
    )
    .addOption(dataDirOption())
    .option('--range <range>', 'HOST:FIRST-LAST (ports) or A.B.C.D-A.B.C.E:PORT (IPv4 addresses)')
    .option('--addresses <list>', 'comma-separated HOST:PORT list')
    .option('--ldap-url <url>', 'find the computers in this directory (ldap:// or ldaps://) …')
    .option('--ldap-base <dn>', '… under this base DN')
    .option('--ldap-filter <filter>', '… matching this filter (default: computer or device entries)')
    .option('--ldap-bind-dn <dn>', 'bind as this DN (anonymous without)')
    .option('--ldap-password-file <file>', "the bind DN's password, in a file")
    .option('--agent-port <port>', 'the port the agents listen on (with --ldap-url)')
    .requiredOption('--token-file <file>', "file holding the agents' bearer token")
    .option('--timeout <ms>', 'per probe', '1000')
    .option('--concurrency <n>', 'probes at once', '64')
    .option('--json', 'print JSON')
    .action(
      run(
        async (
          o: DataDirOptions & {
            range?: string;
            addresses?: string;
            ldapUrl?: string;
            ldapBase?: string;
            ldapFilter?: string;
            ldapBindDn?: string;
            ldapPasswordFile?: string;
            agentPort?: string;
            tokenFile: string;
            timeout: string;
            concurrency: string;
          },
        ) => {
          const sources = [o.range, o.addresses, o.ldapUrl].filter((x) => x !== undefined).length;
          if (sources !== 1) throw new CliError('OPTION_INVALID', 'give one of --range, --addresses or --ldap-url');
          let addresses: string[];
          if (o.ldapUrl !== undefined) {
            if (!o.ldapBase || !o.agentPort) {
              throw new CliError('OPTION_INVALID', '--ldap-url needs --ldap-base and --agent-port');
            }
            if ((o.ldapBindDn === undefined) !== (o.ldapPasswordFile === undefined)) {
              throw new CliError('OPTION_INVALID', '--ldap-bind-dn and --ldap-password-file go together');
            }
            const found = await addressesFromDirectory(
              {
                url: o.ldapUrl,
                ...(o.ldapBindDn && o.ldapPasswordFile
                  ? { bindDn: o.ldapBindDn, password: readSecretFile(o.ldapPasswordFile, '--ldap-password-file') }
                  : {}),
              },
              { base: o.ldapBase, ...(o.ldapFilter ? { filter: o.ldapFilter } : {}) },
              parseIntOption(o.agentPort, '--agent-port', 1, 65535),
            );
            process.stderr.write(`the directory lists ${found.computers} computer(s)\n`);
            addresses = found.addresses;
          } else {
            addresses = o.range !== undefined ? expandRange(o.range) : parseAddressList(o.addresses as string);
          }
          const token = readTokenFile(o.tokenFile, '--token-file');
          const timeoutMs = parseIntOption(o.timeout, '--timeout', 50, 60_000);
          const concurrency = parseIntOption(o.concurrency, '--concurrency', 1, 256);
          let probed = 0;
          const result = await withConsole(o.dataDir, (c) =>
            c.discover(addresses, token, {
              timeoutMs,
              concurrency,
              onProbe: (address, found) => {
                probed++;
                if (found) process.stderr.write(`[${probed}/${addresses.length}] agent at ${address}\n`);
              },
            }),
          );
          process.stderr.write(
            `probed ${result.probed}: ${result.found.length} agents, ${result.refused.length} refused, ${result.silent} silent\n`,
          );
          if (o.json) printJson(result);
          else {
            for (const f of result.found) {
              console.log(`${f.machine}\t${f.added ? 'added' : 'known'}\t${f.state}`);
            }
            for (const r of result.refused) console.log(`${r.address}\trefused\t${r.code}: ${r.message}`);
          }
        },
      ),
    );

  con
    .command('refresh')
    .description(
      "read every machine's status (or the named ones); a history row per change; failures do not stop the others",
    )
    .argument('[machine...]', 'name or address (default: all)')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions, ...refs: string[]) => {
        printResults(await withConsole(o.dataDir, (c) => c.refresh(refs, progress)), o.json);
      }),
    );

  const key = con.command('key').description('product keys kept by the console (sealed; only the last five shown)');
  key
    .command('add')
    .description('store a MAK, GVLK or KMS host key')
    .argument('<key>', 'the product key')
    .addOption(dataDirOption())
    .option('--name <name>', 'a name to refer to it (default: TYPE-LAST5)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { name?: string }, text: string) => {
        const stored = await withConsole(o.dataDir, (c) => c.addKey(text, o.name));
        if (o.json) printJson(stored);
        else console.log(`stored ${stored.type} ${stored.key} as "${stored.name}"`);
      }),
    );
  key
    .command('list')
    .description('the stored keys')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions) => {
        const keys = await withConsole(o.dataDir, (c) => c.listKeys());
        if (o.json) printJson({ keys });
        else for (const k of keys) console.log(`${k.name}\t${k.type}\t${k.key}\t${k.addedAt}`);
      }),
    );

  con
    .command('install-key')
    .description('install a product key on machines through their agents')
    .argument('<machine...>', 'name or address')
    .addOption(dataDirOption())
    .requiredOption('--key <name|key>', 'a stored key by name, or a key (then stored too)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { key: string }, ...refs: string[]) => {
        printResults(await withConsole(o.dataDir, (c) => c.installKey(o.key, refs, progress)), o.json);
      }),
    );

  con
    .command('activate')
    .description('have machines activate themselves (KMS host, directory, or their MAK online)')
    .argument('<machine...>', 'name or address')
    .addOption(dataDirOption())
    .option('--authority <url>', "for MAK machines: the authority they call (else their product config's)")
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { authority?: string }, ...refs: string[]) => {
        const options = o.authority === undefined ? {} : { authority: o.authority };
        printResults(await withConsole(o.dataDir, (c) => c.activate(refs, options, progress)), o.json);
      }),
    );

  proxyOptions(
    con
      .command('proxy-activate')
      .description(
        'MAK proxy activation: collect the installation IDs, ONE bulk call to the authority, install each confirmation ID (stored for reactivate)',
      )
      .argument('<machine...>', 'name or address')
      .addOption(dataDirOption())
      .requiredOption('--authority <url>', 'the authority (https://, or http:// on this machine)')
      .option('--timeout <ms>', 'for the authority call', '30000'),
  )
    .option('--json', 'print JSON')
    .action(
      run(
        async (
          o: DataDirOptions & { authority: string; proxy?: string; proxyPasswordFile?: string; timeout: string },
          ...refs: string[]
        ) => {
          const authority = authorityConnection(o);
          printResults(await withConsole(o.dataDir, (c) => c.proxyActivate(refs, authority, progress)), o.json);
        },
      ),
    );

  con
    .command('reactivate')
    .description(
      "install the stored confirmation ID for each machine's current installation ID (a re-imaged machine), without the authority",
    )
    .argument('<machine...>', 'name or address')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions, ...refs: string[]) => {
        printResults(await withConsole(o.dataDir, (c) => c.reactivate(refs, progress)), o.json);
      }),
    );

  proxyOptions(
    con
      .command('report')
      .description(`a licensing report from the latest status of each machine: ${REPORT_NAMES.join(', ')}`)
      .argument('<name>', REPORT_NAMES.join(' | '))
      .addOption(dataDirOption())
      .option('--days <n>', 'at-risk: licences ending within this many days', '30')
      .option('--authority <url>', "mak-usage: the authority's admin API for each MAK's limit/used/remaining")
      .option('--admin-token-file <file>', "mak-usage: the authority's admin token (with --authority)"),
  )
    .option('--json', 'print JSON')
    .option('--csv', 'print CSV (RFC 4180)')
    .action(
      run(
        async (
          o: DataDirOptions & {
            days: string;
            authority?: string;
            adminTokenFile?: string;
            proxy?: string;
            proxyPasswordFile?: string;
            csv?: boolean;
          },
          name: string,
        ) => {
          if (o.json && o.csv) throw new CliError('OPTION_INVALID', '--json and --csv: choose one');
          if ((o.authority === undefined) !== (o.adminTokenFile === undefined)) {
            throw new CliError('OPTION_INVALID', '--authority and --admin-token-file go together (mak-usage counters)');
          }
          if (o.proxy !== undefined && o.authority === undefined) {
            throw new CliError('OPTION_INVALID', '--proxy is for the authority: give --authority too');
          }
          const days = parseIntOption(o.days, '--days', 0, 3650);
          const authority =
            o.authority === undefined
              ? undefined
              : {
                  ...authorityConnection({ ...o, authority: o.authority }),
                  adminToken: readTokenFile(o.adminTokenFile as string, '--admin-token-file'),
                };
          const report = await withConsole(o.dataDir, (c) =>
            c.report(name, { days, ...(authority ? { authority } : {}) }),
          );
          printReport(report, o);
        },
      ),
    );

  con
    .command('log')
    .description("the console's operations log, newest first")
    .addOption(dataDirOption())
    .option('--limit <n>', 'entries', '100')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { limit: string }) => {
        const limit = parseIntOption(o.limit, '--limit', 1, 100_000);
        const entries = await withConsole(o.dataDir, (c) => c.operations(limit));
        if (o.json) printJson({ operations: entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) });
        else
          for (const e of entries) {
            console.log(
              `${new Date(e.at).toISOString()}\t${e.operation}\t${e.machine ?? '-'}\t${e.ok ? 'ok' : (e.code ?? 'failed')}\t${e.detail ?? ''}`,
            );
          }
      }),
    );

  con
    .command('export')
    .description(
      'write the whole console (machines, status history, keys, confirmation IDs, log) to one JSON file; secrets only with --with-secrets',
    )
    .addOption(dataDirOption())
    .requiredOption('--out <file>', 'the export file (written atomically, mode 0600)')
    .option('--with-secrets', 'include the product keys and agent tokens, sealed under --passphrase-file')
    .option('--passphrase-file <file>', 'file holding the passphrase (at least 12 characters) sealing the secrets')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { out: string; withSecrets?: boolean; passphraseFile?: string }) => {
        if (Boolean(o.withSecrets) !== (o.passphraseFile !== undefined)) {
          throw new CliError(
            'OPTION_INVALID',
            o.withSecrets
              ? '--with-secrets needs --passphrase-file: the secrets are sealed under that passphrase'
              : '--passphrase-file goes with --with-secrets (without it no secret is exported)',
          );
        }
        const passphrase =
          o.passphraseFile === undefined ? undefined : readSecretFile(o.passphraseFile, '--passphrase-file');
        const summary = await withConsole(o.dataDir, (c) =>
          c.exportTo(o.out, passphrase === undefined ? {} : { passphrase }),
        );
        if (o.json) {
          printJson(summary);
          return;
        }
        const n = summary.counts;
        console.log(
          `exported to ${summary.path}: ${n.machines} machines, ${n.statusHistory} history rows, ${n.keys} keys, ${n.confirmationIds} confirmation IDs, ${n.operations} log entries`,
        );
        console.log(
          summary.secrets
            ? `secrets: ${n.keys - summary.secretsMissing.keys} keys and ${n.agentTokens} agent tokens, sealed under the passphrase`
            : 'secrets: none (keys by name, type and last five only; machines without their agent token)',
        );
        if (summary.secretsMissing.keys + summary.secretsMissing.agentTokens > 0) {
          console.log(
            `not exported (this console lacks them): ${summary.secretsMissing.keys} keys, ${summary.secretsMissing.agentTokens} agent tokens`,
          );
        }
      }),
    );

  con
    .command('import')
    .description(
      'merge an export file into the console in one transaction (machines by address, keys by fingerprint, …); the same file twice changes nothing',
    )
    .argument('<file>', 'a file written by `volact console export`')
    .addOption(dataDirOption())
    .option('--passphrase-file <file>', 'the passphrase the file was exported with (when it holds secrets)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { passphraseFile?: string }, file: string) => {
        const passphrase =
          o.passphraseFile === undefined ? undefined : readSecretFile(o.passphraseFile, '--passphrase-file');
        const summary = await withConsole(o.dataDir, (c) =>
          c.importFrom(file, passphrase === undefined ? {} : { passphrase }),
        );
        if (o.json) {
          printJson(summary);
          return;
        }
        const kinds = [
          ['machines', summary.machines],
          ['status history', summary.statusHistory],
          ['keys', summary.keys],
          ['confirmation IDs', summary.confirmationIds],
          ['log entries', summary.operations],
        ] as const;
        for (const [kind, n] of kinds) {
          console.log(`${kind}: ${n.added} added, ${n.updated} updated, ${n.unchanged} unchanged`);
        }
        const missing = summary.secretsMissing;
        if (missing.keys + missing.machines > 0) {
          console.log(
            `secret missing: ${missing.keys} keys (cannot be installed until \`volact console key add KEY\` adds each again) and ${missing.machines} machines (no agent token: import an export made --with-secrets)`,
          );
        }
      }),
    );
}
