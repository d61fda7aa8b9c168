import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** What a web UI's bundle is made from: its own folder and the console's API contract it imports. */
const SOURCES: Readonly<Record<'console' | 'authority', readonly string[]>> = {
  console: ['packages/console/web', 'packages/console/src/web/contract.ts', 'packages/core/src'],
  authority: ['packages/authority/web', 'packages/authority/src/api'],
};

function* files(path: string): Generator<string> {
  const info = statSync(path);
  if (info.isFile()) {
    yield path;
    return;
  }
  for (const name of readdirSync(path).sort()) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    yield* files(join(path, name));
  }
}

function sourceDigest(ui: 'console' | 'authority'): string {
  const hash = createHash('sha256');
  for (const root of SOURCES[ui]) {
    for (const file of files(join(REPO, root))) {
      hash.update(relative(REPO, file)).update('\0').update(readFileSync(file)).update('\0');
    }
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The web UI built by Vite as `npm run build:web` does, once per source state: every browser
 * test of a run shares one build (keyed by a digest of its sources, so an edited page is built
 * again). Concurrent test files race safely: each builds into its own folder and renames it
 * into place; the loser uses the winner's.
 */
export async function builtWebAssets(ui: 'console' | 'authority'): Promise<string> {
  const target = join(tmpdir(), `volact-${ui}-web-${sourceDigest(ui)}`);
  if (existsSync(join(target, 'index.html'))) return target;
  const scratch = mkdtempSync(join(tmpdir(), `volact-${ui}-web-build-`));
  await promisify(execFile)(
    process.execPath,
    [join(REPO, 'node_modules/vite/bin/vite.js'), 'build', join(REPO, `packages/${ui}/web`), '--outDir', scratch],
    { env: { ...process.env, NODE_ENV: 'production' }, cwd: REPO },
  );
  try {
    renameSync(scratch, target);
  } catch {
    rmSync(scratch, { recursive: true, force: true }); // another test file built it first
  }
  return target;
}
