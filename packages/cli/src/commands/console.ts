import type { Command } from 'commander';
import type { Run } from '../runtime.js';
import { registerConsoleActivation } from './console/activation.js';
import { registerConsoleKeys } from './console/keys.js';
import { registerConsoleMachines } from './console/machines.js';
import { registerConsoleReports } from './console/reports.js';
import { registerConsoleSetup } from './console/setup.js';
import { registerConsoleTransfer } from './console/transfer.js';

export {
  authorityConnection,
  consoleStoreOptions,
  dataDirOption,
  proxyOptions,
  withConsole,
  type DataDirOptions,
} from './console/options.js';

/** Registers `volact console …` and returns it (serve and agent-tls are added from their own files). */
export function registerConsole(program: Command, run: Run): Command {
  const con = program
    .command('console')
    .description(
      "the volume-activation console (the reference's VAMT): machines and their agents, keys, status history, proxy activation, reports, web UI",
    );

  // One file per verb family (commands/console/); registered in the order `console --help` lists them.
  registerConsoleSetup(con, run);
  registerConsoleMachines(con, run);
  registerConsoleKeys(con, run);
  registerConsoleActivation(con, run);
  registerConsoleReports(con, run);
  registerConsoleTransfer(con, run);
  return con;
}
