import type { Argument, Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { MIN_AGENT_TOKEN_LENGTH } from '@volact/client/agent';
import { AGENT_TOKEN_MIN_LENGTH } from './commands/client-agent.js';
import { COMMAND_GROUPS, groupProgram } from './launch.js';
import { buildProgram } from './main.js';

/**
 * `volact <group> …` runs a program holding only that group (launch.ts), loaded on its own. It
 * must be the same command line as the full program's: every command, argument and option, each
 * with its description, default and help text, and the same answers to a mistyped command.
 */

const describeArgument = (a: Argument) => ({
  name: a.name(),
  description: a.description,
  required: a.required,
  variadic: a.variadic,
  defaultValue: a.defaultValue as unknown,
  choices: a.argChoices,
});

const describeOption = (o: Option) => ({
  flags: o.flags,
  description: o.description,
  defaultValue: o.defaultValue as unknown,
  mandatory: o.mandatory,
  hidden: o.hidden,
  negate: o.negate,
  choices: o.argChoices,
  // Not in commander's typings, kept on the option: `.conflicts(…)`, `.implies(…)`.
  conflictsWith: (o as unknown as { conflictsWith: string[] }).conflictsWith,
  implied: (o as unknown as { implied?: object }).implied,
  envVar: o.envVar,
  presetArg: o.presetArg,
});

interface CommandShape {
  name: string;
  aliases: string[];
  description: string;
  usage: string;
  help: string;
  hasAction: boolean;
  arguments: ReturnType<typeof describeArgument>[];
  options: ReturnType<typeof describeOption>[];
  commands: CommandShape[];
}

function shape(command: Command): CommandShape {
  return {
    name: command.name(),
    aliases: command.aliases(),
    description: command.description(),
    usage: command.usage(),
    help: command.helpInformation(),
    // commander keeps the action handler private; a command without one only shows its help.
    hasAction: (command as unknown as { _actionHandler: unknown })._actionHandler != null,
    arguments: command.registeredArguments.map(describeArgument),
    options: command.options.map(describeOption),
    commands: command.commands.map(shape),
  };
}

/** Runs a command line on `program` and returns what it wrote and how it ended (no exit). */
async function answer(program: Command, args: string[]): Promise<{ out: string; err: string; exit?: number }> {
  let out = '';
  let err = '';
  const walk = (c: Command) => {
    c.exitOverride().configureOutput({
      writeOut: (text) => (out += text),
      writeErr: (text) => (err += text),
      outputError: (text, write) => write(text),
    });
    c.commands.forEach(walk);
  };
  walk(program);
  try {
    await program.parseAsync(['node', 'volact', ...args]);
    return { out, err };
  } catch (e) {
    return { out, err, exit: (e as { exitCode?: number }).exitCode ?? -1 };
  }
}

describe('volact <group>: the group alone, as in the full program', () => {
  it('every group of the full program is launched on its own, and nothing else is', () => {
    expect([...COMMAND_GROUPS].sort()).toEqual(
      buildProgram()
        .commands.map((c) => c.name())
        .sort(),
    );
  });

  it.each(COMMAND_GROUPS)('%s: the same commands, arguments, options and help text', async (group) => {
    const full = buildProgram();
    const alone = await groupProgram(group);
    expect(alone).toBeDefined();
    if (!alone) return;
    // The program around the group: name, version, description and top-level options alike.
    expect(alone.commands.map((c) => c.name())).toEqual([group]);
    expect({ ...shape(alone), commands: [], help: '' }).toEqual({ ...shape(full), commands: [], help: '' });
    const fromFull = full.commands.find((c) => c.name() === group);
    expect(fromFull).toBeDefined();
    expect(shape(alone.commands[0] as Command)).toEqual(shape(fromFull as Command));
  });

  it('a mistyped command or option inside a group gets the same error and suggestion', async () => {
    for (const args of [
      ['client', 'statsu'],
      ['client', 'status', '--jsno'],
      ['authority', 'key', 'lst'],
      ['host', 'status'],
      ['console', 'machnes'],
      ['client', '--help'],
    ]) {
      const alone = await groupProgram(args[0]);
      if (!alone) throw new Error(`no group ${args[0]}`);
      expect(await answer(alone, args), args.join(' ')).toEqual(await answer(buildProgram(), args));
    }
  });

  it('anything but a group name takes the full program', async () => {
    for (const word of [undefined, '--help', '-h', '--version', '-V', 'help', 'clint', '', 'constructor', 'toString']) {
      expect(await groupProgram(word), String(word)).toBeUndefined();
    }
  });

  it("the agent's minimum token length in `client agent --help` is the agent's own", () => {
    expect(AGENT_TOKEN_MIN_LENGTH).toBe(MIN_AGENT_TOKEN_LENGTH);
  });
});
