import type { Command } from 'commander';
import { baseProgram } from './program.js';
import { run, type Run } from './runtime.js';

type Register = (program: Command, run: Run) => void;

/**
 * Each command group and how to load it: only the group's own modules (and what they import).
 * The full program (main.ts) registers the same functions on the same base program.
 */
const GROUPS: Readonly<Record<string, () => Promise<Register>>> = {
  authority: async () => (await import('./commands/authority.js')).registerAuthority,
  host: async () => (await import('./commands/host.js')).registerHost,
  client: async () => (await import('./commands/client.js')).registerClient,
  directory: async () => (await import('./commands/directory.js')).registerDirectory,
  oem: async () => (await import('./commands/oem.js')).registerOem,
  token: async () => (await import('./commands/token.js')).registerToken,
  plan: async () => (await import('./commands/plan.js')).registerPlan,
  simulate: async () => (await import('./commands/simulate.js')).registerSimulate,
  console: async () => {
    const [{ registerConsole }, { registerConsoleServe }, { registerConsoleAgentTls }] = await Promise.all([
      import('./commands/console.js'),
      import('./commands/console-serve.js'),
      import('./commands/console-tls.js'),
    ]);
    return (program, runCommand) => {
      const consoleCommand = registerConsole(program, runCommand);
      registerConsoleServe(consoleCommand, runCommand);
      registerConsoleAgentTls(consoleCommand, runCommand);
    };
  },
  demo: async () => (await import('./commands/demo.js')).registerDemo,
};

/** The names of the command groups (`volact <group> …`). */
export const COMMAND_GROUPS: readonly string[] = Object.keys(GROUPS);

/**
 * The program holding only `group` (the same base configuration and the same group as the full
 * program), or undefined when `group` names no command group.
 */
export async function groupProgram(group: string | undefined): Promise<Command | undefined> {
  const load = group !== undefined && Object.hasOwn(GROUPS, group) ? GROUPS[group] : undefined;
  if (load === undefined) return undefined;
  const program = baseProgram();
  (await load())(program, run);
  return program;
}

/**
 * The `volact` command line (bin/volact.js): a command loads only its group's modules, so that
 * `volact client status` does not load the console, the authority and their databases. Anything
 * else (no arguments, `--help`, `--version`, `help`, an unknown group) takes the full program,
 * which lists every group and suggests the nearest to a mistyped one.
 */
export async function launch(argv: string[]): Promise<void> {
  const program = await groupProgram(argv[2]);
  if (program) {
    await program.parseAsync(argv);
    return;
  }
  const { main } = await import('./main.js');
  await main(argv);
}
