import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliInProcess } from './cli-in-process.js';

/**
 * What a `volact` command loads before it does its work (packages/cli/src/launch.ts): only its
 * command group, and within the group what the command uses. The built bin runs in a fresh node
 * that records every module it loads: an ESM loader hook (ESM modules, and CommonJS ones reached
 * from ESM) and, at exit, what the CommonJS loader holds. Not timed: `npm run bench:cli` is.
 */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'volact-cli-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HOOKS = `
import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function load(url, context, next) {
  appendFileSync(file, url + '\\n');
  return next(url, context);
}
`;

let runs = 0;

/** Runs `volact ...args` (the built bin) and returns its exit code and the files it loaded. */
function loadedBy(...args: string[]): { code: number | null; stdout: string; stderr: string; files: string[] } {
  runs += 1;
  const record = join(dir, `loaded-${runs}.txt`);
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(hooks, HOOKS);
  writeFileSync(record, '');
  const preload =
    `import { register, createRequire } from 'node:module';` +
    `import { appendFileSync } from 'node:fs';` +
    `register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { file: ${JSON.stringify(record)} } });` +
    `const cache = createRequire(${JSON.stringify(BIN)}).cache;` +
    `process.on('exit', () => appendFileSync(${JSON.stringify(record)}, Object.keys(cache).join('\\n') + '\\n'));`;
  const r = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(preload)}`, BIN, ...args],
    { encoding: 'utf8', timeout: 30_000 },
  );
  const files = readFileSync(record, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (line.startsWith('file:') ? fileURLToPath(line) : line));
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, files: [...new Set(files)] };
}

/** The npm packages and workspace packages among `files`, by name. */
function packagesIn(files: string[]): Set<string> {
  const names = new Set<string>();
  for (const path of files) {
    const npm = /.*node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(path);
    if (npm?.[1]) names.add(npm[1].replace('\\', '/'));
    const workspace = /[\\/]packages[\\/]([^\\/]+)[\\/]dist[\\/]/.exec(path);
    if (workspace?.[1]) names.add(`@volact/${workspace[1]}`);
  }
  return names;
}

const SERVER_PACKAGES = ['fastify', 'pg', 'better-sqlite3', 'pino', '@volact/console', '@volact/authority'];
const present = (loaded: Set<string>, names: string[]) => names.filter((name) => loaded.has(name));

const A = join(dir, 'authority');
const H = join(dir, 'host');
const C = join(dir, 'client');

beforeAll(async () => {
  // The fixtures, made in-process (fast); only the commands under test are spawned.
  const ok = async (...args: string[]) => {
    const r = await runCliInProcess(args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };
  await ok('authority', 'init', '--data-dir', A);
  await ok('authority', 'group', 'add', '--data-dir', A, '--name', 'office14');
  const productFile = join(dir, 'product.json');
  writeFileSync(productFile, await ok('authority', 'product-config', '--data-dir', A, '--group', 'office14'));
  await ok('client', 'init', '--state-dir', C, '--product', productFile, '--hardware-id', 'startup-1');
  const minted = await ok(
    'authority',
    'key',
    'mint',
    '--data-dir',
    A,
    '--type',
    'kms-host',
    '--group',
    'office14',
    '--json',
  );
  await ok('host', 'install-key', '--data-dir', H, (JSON.parse(minted) as { key: string }).key);
}, 60_000);

describe('a command loads its group, not the whole CLI', () => {
  it('client status: the SDK and the CLI, none of the servers, databases or the console', () => {
    const r = loadedBy('client', 'status', '--state-dir', C, '--json', '--hardware-id', 'startup-1');
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ state: 'initial-grace', group: 'office14' });
    const loaded = packagesIn(r.files);
    expect(loaded.has('@volact/client')).toBe(true); // the recording saw the command's own code
    expect(loaded.has('commander')).toBe(true);
    expect(present(loaded, [...SERVER_PACKAGES, '@volact/kms-host', '@volact/simulator', 'ldapts'])).toEqual([]);
  });

  it('client status on no installation: the error path (printable) does not load the console either', () => {
    const r = loadedBy('client', 'status', '--state-dir', join(dir, 'none'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error CLIENT_NOT_INITIALISED: /);
    expect(present(packagesIn(r.files), SERVER_PACKAGES)).toEqual([]);
  });

  it('host status: the KMS host and its window database; no HTTP server, PostgreSQL, authority or console', () => {
    const r = loadedBy('host', 'status', '--data-dir', H, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ activated: false }); // installed, not activated
    const loaded = packagesIn(r.files);
    expect(loaded.has('@volact/kms-host')).toBe(true);
    expect(present(loaded, ['fastify', 'pg', '@volact/authority', '@volact/console', '@volact/client'])).toEqual([]);
  });

  it('authority key list: the authority, not the console, the KMS host, the client or pino', () => {
    const r = loadedBy('authority', 'key', 'list', '--data-dir', A, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const loaded = packagesIn(r.files);
    expect(loaded.has('@volact/authority')).toBe(true);
    expect(loaded.has('better-sqlite3')).toBe(true); // its SQLite store, which it reads
    expect(present(loaded, ['@volact/console', '@volact/kms-host', '@volact/client', 'pino'])).toEqual([]);
  });

  it('client agent --help: the agent (fastify) loads when the agent starts, not for its help', () => {
    const r = loadedBy('client', 'agent', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/at least\s+16\s+characters/);
    expect(packagesIn(r.files).has('fastify')).toBe(false);
  });

  it('volact --help is the full program: every group listed', () => {
    const r = loadedBy('--help');
    expect(r.code).toBe(0);
    for (const group of ['authority', 'host', 'client', 'console', 'demo']) expect(r.stdout).toContain(`  ${group}`);
    // What --help loads is not asserted: listing the groups need not load them.
  });
});
