import { join } from 'node:path';
import { Option, type Command } from 'commander';
import {
  DB_FILE,
  sqliteDatabaseError,
  VolumeConsole,
  parseProxyUrl,
  printable,
  type AuthorityConnection,
  type MachineResult,
  type MachineSelection,
  type Progress,
} from '@volact/console';
import { CliError, printJson } from '../../output.js';
import { parseIntOption, readSecretFile } from '../../options.js';
import type { Run } from '../../runtime.js';

/** What the `volact console …` commands share: opening the console, naming machines, printing results. */

export interface DataDirOptions {
  dataDir: string;
  db?: string;
  json?: boolean;
}

export const dataDirOption = () =>
  new Option('--data-dir <dir>', 'data directory of the console (its key file; its SQLite database unless --db)')
    .makeOptionMandatory()
    .env('VOLACT_CONSOLE_DATA_DIR');

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

export interface SelectionOptions {
  all?: boolean;
  machine?: string[];
}

/** Adds --all / --machine ID… to a many-machine command. */
export const selectionOptions = (command: Command) =>
  command
    .option('--all', 'every machine in the console')
    .option('--machine <id...>', 'machines by id (see `console machines`), name or address; repeatable');

/** The machines a command works on: --all, --machine ID…, or the names given as arguments. */
export function machineSelection(
  o: SelectionOptions,
  positional: readonly string[],
  allByDefault = false,
): MachineSelection {
  const named = [...(o.machine ?? []), ...positional];
  if (o.all && named.length) throw new CliError('OPTION_INVALID', '--all and named machines: choose one');
  if (o.all) return 'all';
  if (named.length) return named;
  if (allByDefault) return 'all';
  throw new CliError('OPTION_INVALID', 'name the machines: --machine ID… (ids from `console machines`) or --all');
}

/** Progress of a many-machine command: one line per machine on stderr, as each finishes. */
export const progress: Progress = (r, done, total) => {
  process.stderr.write(
    `[${done}/${total}] ${printable(r.machine)}: ${r.ok ? `ok${r.state ? ` (${r.state})` : ''}` : `${printable(r.code ?? '')}: ${printable(r.message)}`}\n`,
  );
};

/** The results on stdout (a table, or `{results}` with --json); exit 1 when one machine failed. */
export function printResults(results: readonly MachineResult[], json: boolean | undefined): void {
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

/**
 * `volact console VERB [machine…]`: a command over many machines (or --all, --machine ID…) that
 * prints one result per machine; add its own options, then its action (onMachines).
 */
export function machinesCommand(con: Command, verb: string, description: string, argument = 'id, name or address') {
  return consoleStoreOptions(
    selectionOptions(con.command(verb).description(description).argument('[machine...]', argument)),
  ).option('--json', 'print JSON');
}

/** The action of a machinesCommand: `operate` on the selected machines, each one's result printed. */
export function onMachines<O extends object>(
  run: Run,
  operate: (c: VolumeConsole, selection: MachineSelection, o: O) => Promise<MachineResult[]>,
  allByDefault = false,
) {
  return run(async (o: O & DataDirOptions & SelectionOptions, ...refs: string[]) => {
    const selection = machineSelection(o, refs, allByDefault);
    printResults(await withConsole(o, (c) => operate(c, selection, o)), o.json);
  });
}
