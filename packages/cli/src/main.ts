import type { Command } from 'commander';
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
import { baseProgram } from './program.js';

/** The full program: every command group (`volact --help`, the docs' check, in-process tests). */
export function buildProgram(): Command {
  const program = baseProgram();
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
