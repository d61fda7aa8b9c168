import { Command } from 'commander';

/**
 * The `volact` program before any command group is added: its name, description, version and
 * the way it reports a mistyped command line. Shared by the full program (main.ts) and the one
 * group a command line names (launch.ts), so both read and answer alike.
 */
export function baseProgram(): Command {
  return new Command('volact')
    .description('volact: open volume activation — authority, KMS host, client, console')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (text, write) => write(text) });
}
