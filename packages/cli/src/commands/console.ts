import { join } from 'node:path';
import { Option, type Command } from 'commander';
import {
  addressesFromDirectory,
  DB_FILE,
  REPORT_NAMES,
  sqliteDatabaseError,
  VolumeConsole,
  expandRange,
  parseAddressList,
  parseProxyUrl,
  printable,
  toCsv,
  type AuthorityConnection,
  type MachineResult,
  type MachineSelection,
  type Progress,
  type Report,
} from '@volact/console';
import { CliError, printJson } from '../output.js';
import { parseIntOption, readKeyInput, readSecretFile, readTokenFile, SECRET_ARGUMENT_HELP } from '../options.js';
import type { Run } from '../runtime.js';

export interface DataDirOptions {
  dataDir: string;
  db?: string;
  json?: boolean;
}

export const dataDirOption = () =>
  new Option('--data-dir <dir>', 'data directory of the console (its key file; its SQLite database unless --db)')
    .makeOptionMandatory()
    .env('VOLACT_CONSOLE_DATA_DIR');

/** The conventional agent port (`volact client agent --listen HOST:7390`), for directory discovery. */
const DEFAULT_AGENT_PORT = '7390';
const KEY_SHAPE = /^[0-9A-Za-z]{5}(-[0-9A-Za-z]{5}){4}$/;

/** Adds --data-dir and --db to a console command. */
export const consoleStoreOptions = (command: Command) =>
  command
    .addOption(dataDirOption())
    .addOption(
      new Option(
        '--db <url>',
        'keep the records in PostgreSQL (postgres://USER[:PASSWORD]@HOST[:PORT]/DB) instead of SQLite in the data directory',
      ).env('VOLACT_CONSOLE_DB'),
    );

/**
 * Opens the console for one command and closes it whatever happens. `readOnly`: the command
 * only reads, and writes nothing to the store (not even a schema upgrade).
 */
export async function withConsole<T>(
  o: { dataDir: string; db?: string },
  use: (c: VolumeConsole) => Promise<T>,
  readOnly = false,
): Promise<T> {
  const c = await VolumeConsole.connect(o.dataDir, {
    ...(o.db === undefined ? {} : { databaseUrl: o.db }),
    ...(readOnly ? { readOnly: true } : {}),
  });
  try {
    return await use(c);
  } catch (err) {
    // Damage found past the header: SQLite's own code, as an error naming the file and the fix.
    throw o.db === undefined ? sqliteDatabaseError(join(o.dataDir, DB_FILE), err) : err;
  } finally {
    await c.close();
  }
}

interface SelectionOptions {
  all?: boolean;
  machine?: string[];
}

/** Adds --all / --machine ID… to a many-machine command. */
const selectionOptions = (command: Command) =>
  command
    .option('--all', 'every machine in the console')
    .option('--machine <id...>', 'machines by id (see `console machines`), name or address; repeatable');

/** The machines a command works on: --all, --machine ID…, or the names given as arguments. */
function machineSelection(o: SelectionOptions, positional: readonly string[], allByDefault = false): MachineSelection {
  const named = [...(o.machine ?? []), ...positional];
  if (o.all && named.length) throw new CliError('OPTION_INVALID', '--all and named machines: choose one');
  if (o.all) return 'all';
  if (named.length) return named;
  if (allByDefault) return 'all';
  throw new CliError('OPTION_INVALID', 'name the machines: --machine ID… (ids from `console machines`) or --all');
}

/** Progress of a many-machine command: one line per machine on stderr, as each finishes. */
const progress: Progress = (r, done, total) => {
  process.stderr.write(
    `[${done}/${total}] ${printable(r.machine)}: ${r.ok ? `ok${r.state ? ` (${r.state})` : ''}` : `${printable(r.code ?? '')}: ${printable(r.message)}`}\n`,
  );
};

/** The results on stdout (a table, or `{results}` with --json); exit 1 when one machine failed. */
function printResults(results: readonly MachineResult[], json: boolean | undefined): void {
  if (json) printJson({ results });
  else {
    for (const r of results) {
      const status = r.ok ? 'ok' : `error ${r.code}`;
      const state = r.state ? `${r.state}${r.method ? ` (${r.method})` : ''}` : '-';
      console.log([r.machine, status, state, r.message].map((v) => printable(v)).join('\t'));
    }
  }
  if (results.some((r) => !r.ok)) process.exitCode = 1;
}

/** --authority with an optional --proxy (credentials in the URL, or the password in a file). */
export function authorityConnection(o: {
  authority: string;
  proxy?: string;
  proxyUser?: string;
  proxyPasswordFile?: string;
  timeout?: string;
}): AuthorityConnection {
  if ((o.proxyPasswordFile !== undefined || o.proxyUser !== undefined) && o.proxy === undefined) {
    throw new CliError('OPTION_INVALID', '--proxy-user and --proxy-password-file go with --proxy http://HOST:PORT');
  }
  const password =
    o.proxyPasswordFile === undefined ? undefined : readSecretFile(o.proxyPasswordFile, '--proxy-password-file');
  let proxyUrl = o.proxy;
  if (proxyUrl !== undefined && o.proxyUser !== undefined) {
    const url = parseProxyUrl(proxyUrl) && new URL(proxyUrl);
    if (url.username) throw new CliError('OPTION_INVALID', '--proxy-user and a user in the --proxy URL: give one');
    url.username = encodeURIComponent(o.proxyUser);
    proxyUrl = url.toString();
  }
  return {
    url: o.authority,
    ...(proxyUrl === undefined ? {} : { proxy: parseProxyUrl(proxyUrl, password) }),
    ...(o.timeout === undefined ? {} : { timeoutMs: parseIntOption(o.timeout, '--timeout', 100, 600_000) }),
  };
}

export const proxyOptions = (command: Command) =>
  command
    .option('--proxy <url>', 'reach the authority through this HTTP proxy: http://[user:password@]HOST:PORT')
    .option('--proxy-user <user>', "the proxy's user name (or in the --proxy URL)")
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
  // Agent text never reaches the terminal raw: escape sequences and control characters dropped.
  const cell = (v: Report['rows'][number][string] | undefined) =>
    v === null || v === undefined ? '-' : printable(Array.isArray(v) ? v.join(';') : String(v));
  const widths = report.columns.map((c) => Math.max(c.length, ...report.rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  console.log(line([...report.columns]));
  for (const r of report.rows) console.log(line(report.columns.map((c) => cell(r[c]))));
}

/** Registers `volact console …` and returns it (serve and agent-tls are added from their own files). */
export function registerConsole(program: Command, run: Run): Command {
  const con = program
    .command('console')
    .description(
      "the volume-activation console (the reference's VAMT): machines and their agents, keys, status history, proxy activation, reports, web UI",
    );

  consoleStoreOptions(
    con
      .command('init')
      .description(
        'create the console: its key file (0600, seals stored keys and tokens), its database and the first web UI admin',
      ),
  )
    .option('--admin-password-file <file>', 'the first admin’s password (12+ characters), for `console serve`')
    .option('--admin-user <name>', 'the first admin’s user name', 'admin')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { adminPasswordFile?: string; adminUser: string }) => {
        const admin =
          o.adminPasswordFile === undefined
            ? undefined
            : { user: o.adminUser, password: readSecretFile(o.adminPasswordFile, '--admin-password-file') };
        const created = await VolumeConsole.create(o.dataDir, {
          ...(o.db === undefined ? {} : { databaseUrl: o.db }),
          ...(admin ? { admin } : {}),
        });
        await created.close();
        if (o.json) printJson({ dataDir: o.dataDir, admin: admin?.user ?? null });
        else {
          console.log(
            `console created in ${o.dataDir} (back up console.key with the database: one is useless without the other)`,
          );
          console.log(
            admin
              ? `web UI admin: ${admin.user} (\`volact console serve --data-dir ${o.dataDir} --listen 127.0.0.1:8390\`)`
              : 'no web UI admin yet: `volact console admin add --user NAME --password-file F`',
          );
        }
      }),
    );

  const admin = con.command('admin').description('console users who may log in to the web UI');
  for (const [verb, description] of [
    ['add', 'add a console user (scrypt-hashed password)'],
    ['set-password', "replace a console user's password"],
  ] as const) {
    consoleStoreOptions(admin.command(verb).description(description))
      .requiredOption('--user <name>', 'the user name')
      .requiredOption('--password-file <file>', 'file holding the password (12+ characters)')
      .option('--json', 'print JSON')
      .action(
        run(async (o: DataDirOptions & { user: string; passwordFile: string }) => {
          const password = readSecretFile(o.passwordFile, '--password-file');
          await withConsole(o, (c) =>
            verb === 'add' ? c.addAdmin(o.user, password) : c.setAdminPassword(o.user, password),
          );
          if (o.json) printJson({ user: o.user, [verb === 'add' ? 'added' : 'passwordSet']: true });
          else console.log(verb === 'add' ? `added ${o.user}` : `password of ${o.user} replaced`);
        }),
      );
  }

  const listMachines = async (o: DataDirOptions) => {
    const machines = await withConsole(o, (c) => c.listMachines(), true);
    if (o.json) {
      printJson({
        machines: machines.map((m) => ({
          ...m,
          product: m.group,
          cmid: m.clientMachineId,
          keyTail: m.installedKey,
        })),
      });
      return;
    }
    if (machines.length === 0) {
      console.log('no machines: `volact console discover` or `console machine add`');
      return;
    }
    console.log(
      ['id', 'name', 'product', 'state', 'method', 'cmid', 'keyTail', 'lastSeen', 'lastError', 'trust'].join('\t'),
    );
    for (const m of machines) {
      console.log(
        [
          m.id,
          m.name,
          m.group ?? '-',
          m.state ?? '(never read)',
          m.method ?? '-',
          m.clientMachineId ?? '-',
          m.installedKey ?? '-',
          m.lastSeenAt ?? 'never',
          m.lastError ? m.lastError.code : '-',
          m.untrusted ? `UNTRUSTED since ${m.untrusted.at}` : 'ok',
        ]
          .map((v) => printable(String(v)))
          .join('\t'),
      );
    }
    const untrusted = machines.filter((m) => m.untrusted);
    if (untrusted.length > 0) {
      process.stderr.write(
        `${untrusted.length} machine(s) failed their proof and are not called: check each, then \`volact console machine enrol MACHINE\`\n`,
      );
    }
  };
  consoleStoreOptions(
    con
      .command('machines')
      .description('the machines: id, name, product, state, method, client machine id, key tail, last contact'),
  )
    .option('--json', 'print JSON')
    .action(run(listMachines));

  const machine = con.command('machine').description('machines managed through their agent (`volact client agent`)');
  consoleStoreOptions(
    machine
      .command('add')
      .description(
        'add machines by agent address with the enrolment token of --token-file (stored sealed); each gets its own token at first contact',
      )
      .argument('<address...>', 'HOST:PORT of each agent ([IPv6]:PORT, or https://HOST:PORT behind TLS)'),
  )
    .requiredOption('--token-file <file>', "file holding the agents' bearer token (their --admin-token-file)")
    .option('--name <name>', 'a name for the machine (one address only; default: the address)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { tokenFile: string; name?: string }, ...addresses: string[]) => {
        if (o.name !== undefined && addresses.length !== 1) {
          throw new CliError('OPTION_INVALID', '--name names one machine: give one address with it');
        }
        const token = readTokenFile(o.tokenFile, '--token-file');
        const added = await withConsole(o, (c) =>
          c.addMachines(addresses, token, o.name === undefined ? undefined : [o.name]),
        );
        if (o.json) printJson({ machines: added });
        else
          for (const m of added) console.log(`added ${m.id} ${m.name}${m.name === m.address ? '' : ` (${m.address})`}`);
      }),
    );

  consoleStoreOptions(machine.command('list').description('the machines (the same as `console machines`)'))
    .option('--json', 'print JSON')
    .action(run(listMachines));

  consoleStoreOptions(
    machine
      .command('remove')
      .description('remove machines with their status history and stored confirmation IDs')
      .argument('<machine...>', 'id, name or address'),
  )
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions, ...refs: string[]) => {
        const removed = await withConsole(o, (c) => c.removeMachines(refs));
        if (o.json) printJson({ removed });
        else for (const name of removed) console.log(`removed ${name}`);
      }),
    );

  consoleStoreOptions(
    machine
      .command('history')
      .description("a machine's status history: one entry per change seen by refresh or an operation")
      .argument('<machine>', 'id, name or address'),
  )
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions, ref: string) => {
        const history = await withConsole(o, (c) => c.history(ref), true);
        if (o.json) printJson({ history });
        else
          for (const h of history) {
            console.log(
              [
                h.takenAt,
                h.status.state,
                h.status.method ?? '-',
                h.status.installedKey ?? '-',
                h.status.expiresAt ?? '-',
              ]
                .map((v) => printable(String(v)))
                .join('\t'),
            );
          }
      }),
    );

  consoleStoreOptions(
    con
      .command('discover')
      .description(
        'find agents that accept the token and add them: a list, a bounded range (at most 1 024 probes, several at once, each with a timeout) or an LDAP query',
      ),
  )
    .option('--agents <list>', 'comma-separated HOST:PORT list of agents')
    .option('--addresses <list>', 'the same as --agents')
    .option('--range <range>', 'HOST:FIRST-LAST (ports) or A.B.C.D-A.B.C.E:PORT (IPv4 addresses)')
    .option('--ldap-url <url>', 'find the computers in this directory (ldap:// or ldaps://) …')
    .option('--base <dn>', '… under this base DN (also --ldap-base)')
    .addOption(new Option('--ldap-base <dn>').hideHelp())
    .option(
      '--filter <filter>',
      '… matching this LDAP filter (default: computer or device entries; also --ldap-filter)',
    )
    .addOption(new Option('--ldap-filter <filter>').hideHelp())
    .option('--ldap-bind-dn <dn>', 'bind as this DN (anonymous without)')
    .option('--ldap-password-file <file>', "the bind DN's password, in a file")
    .option('--agent-port <port>', 'the port the agents listen on (with --ldap-url)', DEFAULT_AGENT_PORT)
    .requiredOption('--token-file <file>', "file holding the agents' bearer token")
    .option('--https', 'the agents serve TLS (`client agent --tls-cert`; mutual TLS after `console agent-tls`)')
    .option('--timeout <ms>', 'per probe', '1000')
    .option('--concurrency <n>', 'probes at once', '64')
    .option('--json', 'print JSON')
    .action(
      run(
        async (
          o: DataDirOptions & {
            agents?: string;
            range?: string;
            addresses?: string;
            ldapUrl?: string;
            base?: string;
            ldapBase?: string;
            filter?: string;
            ldapFilter?: string;
            ldapBindDn?: string;
            ldapPasswordFile?: string;
            agentPort: string;
            tokenFile: string;
            https?: boolean;
            timeout: string;
            concurrency: string;
          },
        ) => {
          const list = o.agents ?? o.addresses;
          if (o.agents !== undefined && o.addresses !== undefined) {
            throw new CliError('OPTION_INVALID', '--agents and --addresses are the same option: give one');
          }
          const sources = [o.range, list, o.ldapUrl].filter((x) => x !== undefined).length;
          if (sources !== 1) throw new CliError('OPTION_INVALID', 'give one of --agents, --range or --ldap-url');
          const base = o.base ?? o.ldapBase;
          const filter = o.filter ?? o.ldapFilter;
          let addresses: string[];
          if (o.ldapUrl !== undefined) {
            if (!base) throw new CliError('OPTION_INVALID', '--ldap-url needs --base DN (where the computers are)');
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
              { base, ...(filter ? { filter } : {}) },
              parseIntOption(o.agentPort, '--agent-port', 1, 65535),
            );
            process.stderr.write(`the directory lists ${found.computers} computer(s)\n`);
            addresses = found.addresses;
          } else {
            addresses = o.range !== undefined ? expandRange(o.range) : parseAddressList(list as string);
          }
          if (o.https) addresses = addresses.map((a) => (a.startsWith('https://') ? a : `https://${a}`));
          const token = readTokenFile(o.tokenFile, '--token-file');
          const timeoutMs = parseIntOption(o.timeout, '--timeout', 50, 60_000);
          const concurrency = parseIntOption(o.concurrency, '--concurrency', 1, 256);
          let probed = 0;
          const result = await withConsole(o, (c) =>
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
              console.log(`${printable(f.machine)}\t${f.added ? 'added' : 'known'}\t${printable(f.state)}`);
            }
            for (const r of result.refused) {
              console.log(`${printable(r.address)}\trefused\t${printable(`${r.code}: ${r.message}`)}`);
            }
          }
          // Agents answered but none took the token: almost always the wrong --token-file.
          if (result.found.length === 0 && result.refused.length > 0) process.exitCode = 1;
        },
      ),
    );

  consoleStoreOptions(
    selectionOptions(
      con
        .command('refresh')
        .description(
          "read every machine's status (or the selected ones); a history row per change; failures do not stop the others",
        )
        .argument('[machine...]', 'id, name or address (default: all)'),
    ),
  )
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & SelectionOptions, ...refs: string[]) => {
        const selection = machineSelection(o, refs, true);
        printResults(await withConsole(o, (c) => c.refresh(selection, progress)), o.json);
      }),
    );

  consoleStoreOptions(
    selectionOptions(
      con
        .command('rotate-token')
        .description(
          'give machines a new per-machine agent token (after each proves it holds the current one); the old token opens nothing after',
        )
        .argument('[machine...]', 'id, name or address'),
    ),
  )
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & SelectionOptions, ...refs: string[]) => {
        const selection = machineSelection(o, refs);
        printResults(await withConsole(o, (c) => c.rotateTokens(selection, progress)), o.json);
      }),
    );

  consoleStoreOptions(
    machine
      .command('enrol')
      .description(
        'enrol machines again: clear the mark of a failed proof, prove the agent again and give it a new token (--token-file: the enrolment token its agent runs with now)',
      )
      .argument('<machine...>', 'id, name or address'),
  )
    .option(
      '--token-file <file>',
      "the agent's current --admin-token-file (after its enrolment was reset on the machine)",
    )
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { tokenFile?: string }, ...refs: string[]) => {
        const token = o.tokenFile === undefined ? undefined : readTokenFile(o.tokenFile, '--token-file');
        printResults(await withConsole(o, (c) => c.reenrol(refs, token, progress)), o.json);
      }),
    );

  const key = con.command('key').description('product keys kept by the console (sealed; only the last five shown)');
  consoleStoreOptions(
    key
      .command('add')
      .description('store a MAK, GVLK or KMS host key')
      .argument('[key]', `the product key (${SECRET_ARGUMENT_HELP})`),
  )
    .option('--key-file <file>', 'file holding the product key (- for standard input)')
    .option('--name <name>', 'a name to refer to it (default: TYPE-LAST5)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { name?: string; keyFile?: string }, given?: string) => {
        const text = readKeyInput(given, o.keyFile);
        const stored = await withConsole(o, (c) => c.addKey(text, o.name));
        if (o.json) printJson(stored);
        else console.log(`stored ${stored.type} ${stored.key} as "${stored.name}"`);
      }),
    );
  consoleStoreOptions(key.command('list').description('the stored keys'))
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions) => {
        const keys = await withConsole(o, (c) => c.listKeys(), true);
        if (o.json) printJson({ keys });
        else for (const k of keys) console.log(`${k.name}\t${k.type}\t${k.key}\t${k.addedAt}`);
      }),
    );

  consoleStoreOptions(
    selectionOptions(
      con
        .command('install-key')
        .description(
          'install a product key on machines through their agents: a MAK, or the GVLK to move them back to KMS',
        )
        .argument('[args...]', 'KEY (a key, or a stored key’s name), then machines, unless --key / --machine'),
    ),
  )
    .option(
      '--key <name|key>',
      'a stored key by name, or a key (then stored too; a key given here is visible to other local users in ps: prefer --key-file); then arguments name machines',
    )
    .option('--key-file <file>', 'file holding the key (- for standard input); then arguments name machines')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & SelectionOptions & { key?: string; keyFile?: string }, ...args: string[]) => {
        if (o.key !== undefined && o.keyFile !== undefined) {
          throw new CliError('OPTION_INVALID', 'give the key once: --key or --key-file, not both');
        }
        let keyRef = o.keyFile === undefined ? o.key : readSecretFile(o.keyFile, '--key-file');
        let refs = args;
        if (keyRef === undefined) {
          const last = o.machine?.at(-1);
          const shaped = args.filter((a) => KEY_SHAPE.test(a));
          if (args.length === 0 && o.machine && o.machine.length > 1 && last !== undefined && KEY_SHAPE.test(last)) {
            // `--machine 1 2 KEY`: the variadic option took the key too.
            keyRef = last;
            o.machine = o.machine.slice(0, -1);
          } else if (shaped.length === 1) {
            keyRef = shaped[0];
            refs = args.filter((a) => a !== keyRef);
          } else if (shaped.length === 0 && args[0] !== undefined) {
            // A stored key's name comes first: `install-key office-mak pc-01 pc-02`.
            keyRef = args[0];
            refs = args.slice(1);
          } else {
            throw new CliError(
              'OPTION_INVALID',
              'give one KEY (or --key NAME) and the machines: --machine ID… or --all',
            );
          }
        }
        if (keyRef === undefined) throw new CliError('OPTION_INVALID', 'give the KEY to install (or --key NAME)');
        const selection = machineSelection(o, refs);
        const chosen: string = keyRef;
        printResults(await withConsole(o, (c) => c.installKey(chosen, selection, progress)), o.json);
      }),
    );

  consoleStoreOptions(
    selectionOptions(
      con
        .command('activate')
        .description('have machines activate themselves (KMS host, directory, or their MAK online)')
        .argument('[machine...]', 'id, name or address'),
    ),
  )
    .option('--authority <url>', "for MAK machines: the authority they call (else their product config's)")
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & SelectionOptions & { authority?: string }, ...refs: string[]) => {
        const selection = machineSelection(o, refs);
        const options = o.authority === undefined ? {} : { authority: o.authority };
        printResults(await withConsole(o, (c) => c.activate(selection, options, progress)), o.json);
      }),
    );

  consoleStoreOptions(
    selectionOptions(
      con
        .command('set-kms-host')
        .description(
          "set the machines' KMS host (they use it at their next activation), or --clear it for DNS discovery",
        )
        .argument('[args...]', 'machines (or --machine / --all), then HOST[:PORT] of the KMS host'),
    ),
  )
    .option('--clear', 'clear it: the machines find a KMS host by DNS again')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & SelectionOptions & { clear?: boolean }, ...args: string[]) => {
        let refs = args;
        let address: string | undefined;
        if (!o.clear) {
          const last = o.machine?.at(-1);
          if (args.length > 0) {
            address = args.at(-1);
            refs = args.slice(0, -1);
          } else if (o.machine && o.machine.length > 1 && last !== undefined && /[.:]/.test(last)) {
            // `--machine 1 2 kms.example:1688`: the variadic option took the host too.
            address = last;
            o.machine = o.machine.slice(0, -1);
          }
          if (address === undefined) throw new CliError('OPTION_INVALID', 'give the KMS host HOST[:PORT], or --clear');
        }
        const selection = machineSelection(o, refs);
        printResults(await withConsole(o, (c) => c.setKmsHost(selection, address ?? null, progress)), o.json);
      }),
    );

  consoleStoreOptions(
    proxyOptions(
      selectionOptions(
        con
          .command('proxy-activate')
          .description(
            'MAK proxy activation: collect the installation IDs, ONE bulk call to the authority (per 1 000), install each confirmation ID (stored for reactivate)',
          )
          .argument('[machine...]', 'id, name or address'),
      )
        .requiredOption('--authority <url>', 'the authority (https://, or http:// on this machine)')
        .option('--timeout <ms>', 'for the authority call', '30000'),
    ),
  )
    .option('--json', 'print JSON')
    .action(
      run(
        async (
          o: DataDirOptions &
            SelectionOptions & {
              authority: string;
              proxy?: string;
              proxyUser?: string;
              proxyPasswordFile?: string;
              timeout: string;
            },
          ...refs: string[]
        ) => {
          const selection = machineSelection(o, refs);
          const authority = authorityConnection(o);
          printResults(await withConsole(o, (c) => c.proxyActivate(selection, authority, progress)), o.json);
        },
      ),
    );

  consoleStoreOptions(
    selectionOptions(
      con
        .command('reactivate')
        .description(
          "install the stored confirmation ID for each machine's current installation ID (a re-imaged machine), without the authority",
        )
        .argument('[machine...]', 'id, name or address'),
    ),
  )
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & SelectionOptions, ...refs: string[]) => {
        const selection = machineSelection(o, refs);
        printResults(await withConsole(o, (c) => c.reactivate(selection, progress)), o.json);
      }),
    );

  consoleStoreOptions(
    proxyOptions(
      con
        .command('refresh-mak')
        .description("read each stored MAK's limit, used and remaining from the authority's admin API and keep them")
        .requiredOption('--authority <url>', 'the authority (https://, or http:// on this machine)')
        .requiredOption('--admin-token-file <file>', "the authority's admin token"),
    ),
  )
    .option('--json', 'print JSON')
    .action(
      run(
        async (
          o: DataDirOptions & {
            authority: string;
            adminTokenFile: string;
            proxy?: string;
            proxyUser?: string;
            proxyPasswordFile?: string;
          },
        ) => {
          const authority = {
            ...authorityConnection(o),
            adminToken: readTokenFile(o.adminTokenFile, '--admin-token-file'),
          };
          const results = await withConsole(o, (c) => c.refreshMakCounts(authority));
          if (o.json) printJson({ results });
          else
            for (const r of results) {
              console.log(`${r.name}\t${r.key}\t${printable(r.ok ? r.message : `error ${r.code}: ${r.message}`)}`);
            }
          if (results.some((r) => !r.ok)) process.exitCode = 1;
        },
      ),
    );

  consoleStoreOptions(
    proxyOptions(
      con
        .command('report')
        .description(`a licensing report from the latest status of each machine: ${REPORT_NAMES.join(', ')}`)
        .argument('<name>', REPORT_NAMES.join(' | '))
        .option('--days <n>', 'at-risk: licences ending within this many days', '30')
        .option('--authority <url>', "mak-usage: read each MAK's counters from the authority's admin API first")
        .option('--admin-token-file <file>', "mak-usage: the authority's admin token (with --authority)"),
    ),
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
            proxyUser?: string;
            proxyPasswordFile?: string;
            csv?: boolean;
          },
          name: string,
        ) => {
          if (o.json && o.csv) throw new CliError('OPTION_INVALID', '--json and --csv: choose one');
          if ((o.authority === undefined) !== (o.adminTokenFile === undefined)) {
            throw new CliError('OPTION_INVALID', '--authority and --admin-token-file go together (mak-usage counters)');
          }
          if ([o.proxy, o.proxyUser, o.proxyPasswordFile].some((x) => x !== undefined) && o.authority === undefined) {
            throw new CliError('OPTION_INVALID', '--proxy… is for the authority: give --authority too');
          }
          const days = parseIntOption(o.days, '--days', 0, 3650);
          const authority =
            o.authority === undefined
              ? undefined
              : {
                  ...authorityConnection({ ...o, authority: o.authority }),
                  adminToken: readTokenFile(o.adminTokenFile as string, '--admin-token-file'),
                };
          // mak-usage with --authority keeps the counters it reads: that one writes.
          const report = await withConsole(
            o,
            (c) => c.report(name, { days, ...(authority ? { authority } : {}) }),
            authority === undefined,
          );
          printReport(report, o);
        },
      ),
    );

  consoleStoreOptions(con.command('log').description("the console's operations log, newest first"))
    .option('--limit <n>', 'entries', '100')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { limit: string }) => {
        const limit = parseIntOption(o.limit, '--limit', 1, 100_000);
        const entries = await withConsole(o, (c) => c.operations(limit), true);
        if (o.json) printJson({ operations: entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) });
        else
          for (const e of entries) {
            console.log(
              [
                new Date(e.at).toISOString(),
                e.operation,
                e.machine ?? '-',
                e.ok ? 'ok' : (e.code ?? 'failed'),
                e.detail ?? '',
              ]
                .map((v) => printable(v))
                .join('\t'),
            );
          }
      }),
    );

  consoleStoreOptions(
    con
      .command('export')
      .description(
        'write the whole console (machines, status history, keys, confirmation IDs, MAK counters, log) to one JSON file; secrets only with --with-secrets',
      )
      .argument('[file]', 'the export file (written atomically, mode 0600)'),
  )
    .option('--out <file>', 'the export file (instead of the argument)')
    .option('--with-secrets', 'include the product keys and agent tokens, sealed under --passphrase-file')
    .option('--passphrase-file <file>', 'file holding the passphrase (at least 12 characters) sealing the secrets')
    .option('--json', 'print JSON')
    .action(
      run(
        async (o: DataDirOptions & { out?: string; withSecrets?: boolean; passphraseFile?: string }, file?: string) => {
          if ((o.out === undefined) === (file === undefined)) {
            throw new CliError('OPTION_INVALID', 'give the export file once: `console export --data-dir K FILE`');
          }
          const out = (o.out ?? file) as string;
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
          const summary = await withConsole(o, (c) => c.exportTo(out, passphrase === undefined ? {} : { passphrase }));
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
        },
      ),
    );

  consoleStoreOptions(
    con
      .command('import')
      .description(
        'merge an export file into the console in one transaction (machines by address, keys by fingerprint, …); the same file twice changes nothing',
      )
      .argument('<file>', 'a file written by `volact console export`'),
  )
    .option('--passphrase-file <file>', 'the passphrase the file was exported with (when it holds secrets)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { passphraseFile?: string }, file: string) => {
        const passphrase =
          o.passphraseFile === undefined ? undefined : readSecretFile(o.passphraseFile, '--passphrase-file');
        const summary = await withConsole(o, (c) => c.importFrom(file, passphrase === undefined ? {} : { passphrase }));
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
  return con;
}
