import { Option, type Command } from 'commander';
import { addressesFromDirectory, expandRange, parseAddressList, printable } from '@volact/console';
import { CliError, printJson } from '../../output.js';
import { parseIntOption, readSecretFile, readTokenFile } from '../../options.js';
import type { Run } from '../../runtime.js';
import {
  consoleStoreOptions,
  machinesCommand,
  onMachines,
  printResults,
  progress,
  withConsole,
  type DataDirOptions,
} from './options.js';

/** The conventional agent port (`volact client agent --listen HOST:7390`), for directory discovery. */
const DEFAULT_AGENT_PORT = '7390';

/** `volact console machines`, `machine …`, `discover`, `refresh`, `rotate-token`: the machines and their agents. */
export function registerConsoleMachines(con: Command, run: Run): void {
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
      [
        'id',
        'name',
        'hostName',
        'os',
        'product',
        'state',
        'method',
        'cmid',
        'keyTail',
        'lastSeen',
        'lastError',
        'trust',
      ].join('\t'),
    );
    for (const m of machines) {
      console.log(
        [
          m.id,
          m.name,
          m.hostName ?? '-',
          m.os === null ? '-' : `${m.os} ${m.osVersion ?? ''}`.trim(),
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
      .description(
        'the machines: id, name, host name, OS, product, state, method, client machine id, key tail, last contact',
      ),
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

  machinesCommand(
    con,
    'refresh',
    "read every machine's status (or the selected ones); a history row per change; failures do not stop the others",
    'id, name or address (default: all)',
  ).action(onMachines(run, (c, selection) => c.refresh(selection, progress), true));

  machinesCommand(
    con,
    'rotate-token',
    'give machines a new per-machine agent token (after each proves it holds the current one); the old token opens nothing after',
  ).action(onMachines(run, (c, selection) => c.rotateTokens(selection, progress)));

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
}
