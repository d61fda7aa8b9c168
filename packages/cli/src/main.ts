import { Command } from 'commander';
import { registerAuthority } from './commands/authority.js';
import { registerHost } from './commands/host.js';
import { registerClient } from './commands/client.js';
import { registerDemo } from './commands/demo.js';
import { registerDirectory } from './commands/directory.js';
import { registerOem } from './commands/oem.js';
import { registerToken } from './commands/token.js';
import { registerPlan } from './commands/plan.js';
import { registerSimulate } from './commands/simulate.js';
import { registerConsole } from './commands/console.js';
import { registerConsoleServe } from './commands/console-serve.js';
import { registerConsoleAgentTls } from './commands/console-tls.js';
import { run } from './runtime.js';

export function buildProgram(): Command {
  const program = new Command('volact')
    .description('volact: open volume activation — authority, KMS host, client, console')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (text, write) => write(text) });
  registerAuthority(program, run);
  registerHost(program, run);
  registerClient(program, run);
  registerDirectory(program, run);
  registerOem(program, run);
  registerToken(program, run);
  registerPlan(program, run);
  registerSimulate(program, run);
  const consoleCommand = registerConsole(program, run);
  registerConsoleServe(consoleCommand, run);
  registerConsoleAgentTls(consoleCommand, run);
  registerDemo(program, run);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
