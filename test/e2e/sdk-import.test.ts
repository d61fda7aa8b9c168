import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * What an app pays for `import { Licence } from '@volact/client'`: the modules it loads. Run on
 * the built dist (as an app runs it) in a fresh node, which records every module the import
 * graph resolves (an ESM loader hook, for ESM and for CJS entries reached from ESM) and what the
 * CommonJS loader holds afterwards. Not timed: `npm run bench:sdk` measures time and memory.
 */
const dir = mkdtempSync(join(tmpdir(), 'volact-sdk-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const dist = (path: string) => pathToFileURL(fileURLToPath(new URL(`../../packages/${path}`, import.meta.url))).href;

/**
 * The server-side dependencies an app embedding the SDK must not carry: the agent's HTTP server,
 * the directory client (loaded when a directory is read, for directory-based activation) and
 * the authority's and console's databases.
 */
const SERVER_PACKAGES = ['fastify', 'ldapts', 'pg', 'better-sqlite3'];

const HOOKS = `
import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(file, resolved.url + '\\n');
  return resolved;
}
`;

let runs = 0;

/** The npm packages (by name) that importing `entry` in a fresh node loads. */
function packagesLoadedBy(entry: string): Set<string> {
  runs += 1;
  const record = join(dir, `resolved-${runs}.txt`);
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(hooks, HOOKS);
  writeFileSync(record, '');
  const register =
    `import { register } from 'node:module';` +
    `register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { file: ${JSON.stringify(record)} } });`;
  const main =
    `import { createRequire } from 'node:module';` +
    `await import(${JSON.stringify(entry)});` +
    `console.log(JSON.stringify(Object.keys(createRequire(process.cwd() + '/').cache)));`;
  const run = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', main],
    { encoding: 'utf8', cwd: dir, timeout: 30_000 },
  );
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  const loaded = [...readFileSync(record, 'utf8').split('\n'), ...(JSON.parse(run.stdout) as string[])];
  const names = new Set<string>();
  for (const path of loaded) {
    // The last node_modules segment names the package (scoped or not); workspace packages
    // resolve through their symlinks to packages/*, which are not npm dependencies.
    const match = /.*node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(path);
    if (match?.[1]) names.add(match[1].replace('\\', '/'));
  }
  return names;
}

describe('the SDK entry an app embeds', () => {
  it('loads no server dependency: fastify, ldapts, pg, better-sqlite3', () => {
    const loaded = packagesLoadedBy(dist('client/dist/index.js'));
    expect(loaded.has('zod')).toBe(true); // the recording saw the SDK's own dependencies
    expect(SERVER_PACKAGES.filter((name) => loaded.has(name))).toEqual([]);
  });

  it('the agent is a subpath of its own, which does load fastify', () => {
    expect(packagesLoadedBy(dist('client/dist/agent-entry.js')).has('fastify')).toBe(true);
  });
});
