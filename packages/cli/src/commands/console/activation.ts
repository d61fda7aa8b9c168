import type { Command } from 'commander';
import { CliError } from '../../output.js';
import type { Run } from '../../runtime.js';
import {
  authorityConnection,
  consoleStoreOptions,
  machinesCommand,
  machineSelection,
  onMachines,
  printResults,
  progress,
  proxyOptions,
  selectionOptions,
  withConsole,
  type DataDirOptions,
  type SelectionOptions,
} from './options.js';

/** `volact console activate`, `set-kms-host`, `proxy-activate`, `reactivate`: activating machines. */
export function registerConsoleActivation(con: Command, run: Run): void {
  machinesCommand(con, 'activate', 'have machines activate themselves (KMS host, directory, or their MAK online)')
    .option('--authority <url>', "for MAK machines: the authority they call (else their product config's)")
    .action(
      onMachines(run, (c, selection, o: { authority?: string }) =>
        c.activate(selection, o.authority === undefined ? {} : { authority: o.authority }, progress),
      ),
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

  machinesCommand(
    con,
    'reactivate',
    "install the stored confirmation ID for each machine's current installation ID (a re-imaged machine), without the authority",
  ).action(onMachines(run, (c, selection) => c.reactivate(selection, progress)));
}
