import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '@volact/cli';

/** The docs that describe the code's shape, held to it: a change to either fails here first. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** The text of a `## title` section of a markdown file (up to the next `## `); empty if none. */
function section(doc: string, title: string): string {
  const start = doc.indexOf(`\n## ${title}\n`);
  if (start === -1) return '';
  const end = doc.indexOf('\n## ', start + 4);
  return doc.slice(start, end === -1 ? undefined : end);
}

const packageDirs = readdirSync(join(ROOT, 'packages')).filter((name) => {
  try {
    return statSync(join(ROOT, 'packages', name, 'package.json')).isFile();
  } catch {
    return false;
  }
});

describe('docs/architecture.md', () => {
  const doc = read('docs/architecture.md');

  /** "- cli → authority, client, …" lines; "- core → nothing". */
  const arrows = new Map(
    [...section(doc, 'Packages and their dependencies').matchAll(/^- `([a-z-]+)` → (.+)$/gm)].map((m) => [
      m[1] as string,
      m[2] === 'nothing' ? [] : [...(m[2] as string).matchAll(/`([a-z-]+)`/g)].map((d) => d[1] as string).sort(),
    ]),
  );

  it('lists every package, and only those', () => {
    expect([...arrows.keys()].sort()).toEqual([...packageDirs].sort());
  });

  it.each(packageDirs)('gives %s the @volact dependencies of its package.json', (dir) => {
    const pkg = JSON.parse(read(`packages/${dir}/package.json`)) as { dependencies?: Record<string, string> };
    const deps = Object.keys(pkg.dependencies ?? {})
      .filter((name) => name.startsWith('@volact/'))
      .map((name) => name.slice('@volact/'.length))
      .sort();
    expect(arrows.get(dir), `docs/architecture.md: "- \`${dir}\` → …"`).toEqual(deps);
  });

  it('shows every package in the tree', () => {
    const tree = /```\npackages\/\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
    const shown = [...tree.matchAll(/^ {2}([a-z-]+)\/ /gm)].map((m) => m[1] as string);
    expect(shown.sort()).toEqual([...packageDirs].sort());
  });
});

describe('docs/cli.md', () => {
  /** Every leaf command of the program, as typed: "client status", "console machine add". */
  function leaves(command: Command, path: string[] = []): string[] {
    if (command.commands.length === 0) return [path.join(' ')];
    return command.commands.flatMap((sub) => leaves(sub, [...path, sub.name()]));
  }
  const registered = leaves(buildProgram()).sort();
  const summary = [...section(read('docs/cli.md'), 'Command summary').matchAll(/^\| `volact ([a-z][a-z -]*?)`/gm)]
    .map((m) => m[1] as string)
    .sort();

  it('summarises every registered command', () => {
    expect(registered.filter((c) => !summary.includes(c))).toEqual([]);
  });

  it('summarises no command the program lacks, each once', () => {
    expect(summary.filter((c) => !registered.includes(c))).toEqual([]);
    expect(summary.filter((c, i) => summary.indexOf(c) !== i)).toEqual([]);
  });
});

/**
 * Configuration and time come from the edge: only the CLI reads the environment, and the
 * rules of time take a Clock (core's systemClock in production, a ManualClock in tests). The
 * wall clock read directly is allowed only where it is not a licensing rule, each with why.
 */
describe('process.env and the wall clock', () => {
  const sourceFiles = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'dist' ? [] : sourceFiles(path);
      return /\.tsx?$/.test(entry.name) && !/\.d\.ts$/.test(entry.name) ? [path] : [];
    });
  /** Tests, test launchers and fixtures (slapd-test-server.ts, tls-test-pki.ts, testing.ts …). */
  const isTestSupport = (path: string) => /(^|[/.-])test(s|ing)?([/.-]|$)/.test(path.replace(/\.tsx?$/, ''));
  const files = packageDirs
    .flatMap((dir) => sourceFiles(join(ROOT, 'packages', dir, 'src')))
    .map((path) => relative(join(ROOT, 'packages'), path))
    .filter((path) => !isTestSupport(path));

  const WALL_CLOCK_ALLOWED: Record<string, string> = {
    'core/src/clock.ts': 'systemClock itself: the one Clock that reads the wall clock',
    'core/src/dns/client.ts': "TSIG's default time: the DNS server checks it against its own wall clock",
    'kms-host/src/kms-server.ts': 'times of write-behind flushes (host-live.json) and the shutdown flush deadline',
    'kms-host/src/host.ts': "host-live.json's startedAt and updatedAt: when this process wrote, for `host status`",
    'kms-host/src/host-runtime.ts': '`host status` tells a running host by how recent host-live.json is',
    'simulator/src/progress.ts':
      'redraws the progress bar at most every 100 ms of real time (the fleet runs on a virtual clock)',
    'cli/src/commands/console-serve.ts': "time stamps of the web server's log lines",
    'cli/src/commands/directory.ts': 'warns when a published or listed activation object is expired or near its end',
    'cli/src/commands/oem.ts': 'the time an OEM marker is made (the factory machine has no other clock)',
    'cli/src/commands/token.ts': 'the issue time of a token or CRL (the CA machine has no other clock)',
    'cli/src/commands/client-agent.ts': "warns at `client agent` start that --tls-cert's certificate has expired",
  };

  const matching = (pattern: RegExp) => files.filter((path) => pattern.test(read(`packages/${path}`)));
  /** process.env, process['env'], `const { env } = process`, `import { env } from 'node:process'`. */
  const READS_ENV =
    /\bprocess\.env\b|\bprocess\[['"]env['"]\]|\{[^}]*\benv\b[^}]*\}\s*=\s*process\b|import\s*\{[^}]*\benv\b[^}]*\}\s*from\s*['"](node:)?process['"]/;
  /** Date.now (called or passed), new Date() and new Date without arguments. */
  const READS_WALL_CLOCK = /\bDate\.now\b|\bnew Date\s*(\(\s*\)|(?!\s*\())/;

  it('only the CLI reads process.env', () => {
    expect(matching(READS_ENV).filter((path) => !path.startsWith('cli/'))).toEqual([]);
  });

  it('reads the wall clock (Date.now, new Date()) only where the allow-list says why', () => {
    const readers = matching(READS_WALL_CLOCK);
    expect(readers.filter((path) => !(path in WALL_CLOCK_ALLOWED))).toEqual([]);
  });

  it('keeps the allow-list honest: every entry still reads the wall clock', () => {
    const readers = matching(READS_WALL_CLOCK);
    expect(Object.keys(WALL_CLOCK_ALLOWED).filter((path) => !readers.includes(path))).toEqual([]);
  });
});
