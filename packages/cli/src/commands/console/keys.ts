import type { Command } from 'commander';
import { looksLikeProductKey } from '@volact/console';
import { CliError, printJson } from '../../output.js';
import { readKeyInput, readSecretFile, SECRET_ARGUMENT_HELP } from '../../options.js';
import type { Run } from '../../runtime.js';
import {
  type DataDirOptions,
  consoleStoreOptions,
  withConsole,
  type SelectionOptions,
  selectionOptions,
  machineSelection,
  progress,
  printResults,
} from './options.js';

/** `volact console key …` and `install-key`: the stored product keys and installing them. */
export function registerConsoleKeys(con: Command, run: Run): void {
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
        .argument('[machine...]', 'id, name or address (or --machine / --all)'),
    ),
  )
    .option(
      '--key <name|key>',
      'a stored key by name, or a key (then stored too; a key given here is visible to other local users in ps: prefer --key-file)',
    )
    .option('--key-file <file>', 'file holding the key (- for standard input)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & SelectionOptions & { key?: string; keyFile?: string }, ...args: string[]) => {
        const { keyRef, machines } = installKeyArguments(o, args);
        const selection = machineSelection(o, machines);
        printResults(await withConsole(o, (c) => c.installKey(keyRef, selection, progress)), o.json);
      }),
    );
}

/** A product key's text in a message: its last five characters, like everywhere else. */
const keyTail = (text: string) => `…${text.trim().slice(-5)}`;

/**
 * The key and the machines of `console install-key`. The key comes from --key or --key-file;
 * every argument and --machine value then names a machine, and one shaped like a product key is
 * refused (it is a key in the wrong place, and must not be looked up, or printed, as a machine).
 * The older form `install-key KEY MACHINE…` still works when KEY is shaped like a product key
 * (nothing else is, no machine or stored key may be named like one), with a deprecation note;
 * a stored key's name in first place is refused: it cannot be told from a machine's.
 */
export function installKeyArguments(
  o: SelectionOptions & { key?: string; keyFile?: string },
  args: readonly string[],
): { keyRef: string; machines: string[] } {
  if (o.key !== undefined && o.keyFile !== undefined) {
    throw new CliError('OPTION_INVALID', 'give the key once: --key or --key-file, not both');
  }
  let keyRef = o.keyFile === undefined ? o.key : readSecretFile(o.keyFile, '--key-file');
  let machines = [...args];
  if (keyRef === undefined) {
    const [first, ...rest] = args;
    if (first === undefined || !looksLikeProductKey(first)) {
      throw new CliError(
        'OPTION_INVALID',
        'give the key with --key NAME|KEY or --key-file FILE; the arguments (or --machine ID…, --all) name the machines',
      );
    }
    process.stderr.write(
      'deprecated: `console install-key KEY MACHINE…`; give the key with --key (or --key-file): `console install-key --key KEY MACHINE…`\n',
    );
    keyRef = first;
    machines = rest;
  }
  const misplaced = [...machines, ...(o.machine ?? [])].find(looksLikeProductKey);
  if (misplaced !== undefined) {
    throw new CliError(
      'OPTION_INVALID',
      `${keyTail(misplaced)} is a product key where a machine is expected: give one key, with --key or --key-file, and the machines by id, name or address`,
    );
  }
  return { keyRef, machines };
}
