import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority, createAuthorityServer } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { encodeProxyFile, parseCidFile, parseIidFile, type ProductConfig } from '@volact/core';
import { runCliInProcess } from './cli-in-process.js';

/**
 * Proxy activation of an isolated network through files (docs/console.md "Isolated networks").
 * Process A (this one) runs the agents and the console CLI and reaches no authority: none runs
 * here, and the agents' own authority URL answers nothing. Process B is the built CLI's
 * `volact authority confirm-file --data-dir` on a copy of the authority's data directory, run
 * in a network namespace of its own when the system allows it (`unshare -n`): no network path
 * between the two, only files.
 */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
const TOKEN = 'isolated-network-agent-token-0123';
const execFileAsync = promisify(execFile);

let root: string;
let product: ProductConfig;
let mak: string;
let authorityCopy: string;
let tokenFile: string;
const servers: FastifyInstance[] = [];

const cli = (...args: string[]) => runCliInProcess(args);

/** Whether this system lets an unprivileged child have a network namespace with no interface up. */
async function canUnshare(): Promise<boolean> {
  try {
    await execFileAsync('unshare', ['-n', 'true'], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}
let isolate = false;

/** Process B: the built CLI, in its own empty network namespace when possible. */
async function processB(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const [file, argv] = isolate
    ? ['unshare', ['-n', process.execPath, BIN, ...args]]
    : [process.execPath, [BIN, ...args]];
  try {
    const { stdout, stderr } = await execFileAsync(file, argv, { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

let n = 0;
async function agent(key: string): Promise<string> {
  const stateDir = join(root, 'machines', `pc-${++n}`);
  Licence.init({ stateDir, product, hardwareId: `hw-isolated-${n}` }).installKey(key);
  // Its authority answers nothing: the isolated network's machines cannot activate by themselves.
  const app = createAgentServer({ stateDir, adminToken: TOKEN, authorities: ['http://127.0.0.1:1'], timeoutMs: 2_000 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  servers.push(app);
  return `127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-isolated-'));
  isolate = await canUnshare();
  // The authority is made here, then its data directory is copied to where process B runs it;
  // the original is closed: nothing in process A can confirm anything.
  const authorityDir = join(root, 'authority');
  const authority = Authority.init(authorityDir);
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  mak = (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 20 })).key;
  await authority.close();
  authorityCopy = join(root, 'connected-machine', 'authority');
  cpSync(authorityDir, authorityCopy, { recursive: true });
  rmSync(authorityDir, { recursive: true, force: true });
  mkdirSync(join(root, 'usb'));
  tokenFile = join(root, 'agent-token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
}, 60_000);

afterAll(async () => {
  for (const s of servers) await s.close();
  rmSync(root, { recursive: true, force: true });
});

async function newConsole(name: string, machines: number): Promise<string> {
  const dataDir = join(root, name);
  expect((await cli('console', 'init', '--data-dir', dataDir)).code).toBe(0);
  const addresses: string[] = [];
  for (let i = 0; i < machines; i++) addresses.push(await agent(mak));
  const r = await cli(
    'console',
    'machine',
    'add',
    ...addresses,
    '--data-dir',
    dataDir,
    '--token-file',
    tokenFile,
    '--json',
  );
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return dataDir;
}

describe('isolated network: installation IDs out, confirmation IDs in, by file only', () => {
  it('10 machines end licensed; an edited file, another console’s answers and a stray confirmation are refused or skipped', async () => {
    const consoleDir = await newConsole('console', 10);
    const iids = join(root, 'usb', 'iids.json');
    const cids = join(root, 'usb', 'cids.json');

    // Step 1 (process A): the console collects; the file is 0600 and holds no secret.
    const collected = await cli(
      'console',
      'proxy-activate',
      '--collect',
      iids,
      '--all',
      '--data-dir',
      consoleDir,
      '--json',
    );
    expect(collected.code, collected.stdout + collected.stderr).toBe(0);
    expect(statSync(iids).mode & 0o777).toBe(0o600);
    const text = readFileSync(iids, 'utf8');
    const file = parseIidFile(text);
    expect(file.entries).toHaveLength(10);
    expect(text).not.toContain(mak);
    expect(text).not.toContain(TOKEN);

    // An edited file (one machine's IID replaced by another's) is refused by process B.
    const edited = JSON.parse(text) as { entries: { installationId: string }[] };
    (edited.entries[0] as { installationId: string }).installationId = (
      edited.entries[1] as { installationId: string }
    ).installationId;
    const editedPath = join(root, 'usb', 'edited.json');
    writeFileSync(editedPath, JSON.stringify(edited));
    const refused = await processB(
      'authority',
      'confirm-file',
      editedPath,
      '--out',
      join(root, 'usb', 'no.json'),
      '--data-dir',
      authorityCopy,
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/^error PROXY_FILE_TAMPERED: /m);

    // Step 2 (process B, no network): the authority's data directory confirms the file.
    const confirmed = await processB(
      'authority',
      'confirm-file',
      iids,
      '--out',
      cids,
      '--data-dir',
      authorityCopy,
      '--json',
    );
    expect(confirmed.code, confirmed.stderr).toBe(0);
    expect(JSON.parse(confirmed.stdout)).toMatchObject({ confirmed: 10, refused: [] });
    expect(statSync(cids).mode & 0o777).toBe(0o600);

    // Another console's collection, confirmed by B too: its file does not apply here.
    const otherDir = await newConsole('other-console', 1);
    const otherIids = join(root, 'usb', 'other-iids.json');
    const otherCids = join(root, 'usb', 'other-cids.json');
    expect((await cli('console', 'proxy-activate', '--collect', otherIids, '--all', '--data-dir', otherDir)).code).toBe(
      0,
    );
    expect(
      (await processB('authority', 'confirm-file', otherIids, '--out', otherCids, '--data-dir', authorityCopy)).code,
    ).toBe(0);
    const foreign = await cli('console', 'proxy-activate', '--apply', otherCids, '--data-dir', consoleDir);
    expect(foreign.code).not.toBe(0);
    expect(foreign.stderr).toMatch(/^error PROXY_FILE_FOREIGN: /m);

    // A confirmation for a machine not in the file (the other console's) slipped into ours.
    const ours = parseCidFile(readFileSync(cids, 'utf8'));
    const stray = parseCidFile(readFileSync(otherCids, 'utf8')).results[0];
    if (!stray) throw new Error('the other console confirmed nothing');
    const withStray = join(root, 'usb', 'cids-with-stray.json');
    writeFileSync(withStray, encodeProxyFile({ ...ours, results: [...ours.results, stray] }));

    // Step 3 (process A): installed through the agents; the stray one skipped and reported.
    const applied = await cli('console', 'proxy-activate', '--apply', withStray, '--data-dir', consoleDir, '--json');
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    const outcome = JSON.parse(applied.stdout) as {
      results: { ok: boolean; state: string }[];
      skipped: { installationId: string; reason: string }[];
    };
    expect(outcome.results).toHaveLength(10);
    expect(outcome.results.every((r) => r.ok && r.state === 'licensed')).toBe(true);
    expect(outcome.skipped).toEqual([
      { installationId: stray.installationId, reason: `not in the collected file ${file.id}` },
    ]);
    const text2 = await cli('console', 'proxy-activate', '--apply', withStray, '--data-dir', consoleDir);
    expect(text2.stdout).toMatch(/^skipped\t/m);

    // What the console now reads from its agents: all 10 licensed by MAK.
    const refreshed = await cli('console', 'refresh', '--data-dir', consoleDir, '--json');
    const states = (JSON.parse(refreshed.stdout) as { results: { state: string; method: string }[] }).results;
    expect(states.map((s) => `${s.state} ${s.method}`)).toEqual(Array(10).fill('licensed mak'));

    // The activations were counted by the authority in B's data directory: 10 + the other console's 1.
    const b = Authority.open(authorityCopy);
    try {
      expect((await b.showKey(mak)).used).toBe(11);
    } finally {
      await b.close();
    }
  }, 180_000);
});

describe('step 2 on a second console that reaches the authority; a confirmation ID read out over the phone', () => {
  it('console proxy-activate --confirm --authority, then --apply on the first console; install-cid names a wrong group', async () => {
    // This scenario has a connected side: an authority server, reached only by the second console.
    const authority = Authority.open(authorityCopy);
    const api = createAuthorityServer(authority);
    await api.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
    try {
      const first = await newConsole('first', 2);
      const second = join(root, 'second');
      expect((await cli('console', 'init', '--data-dir', second)).code).toBe(0);
      const iids = join(root, 'usb', 'first-iids.json');
      const cids = join(root, 'usb', 'first-cids.json');

      // The options of the three steps do not mix.
      const mixed = await cli(
        'console',
        'proxy-activate',
        '--collect',
        iids,
        '--all',
        '--authority',
        url,
        '--data-dir',
        first,
      );
      expect(mixed.stderr).toMatch(/^error OPTION_INVALID: --collect works without the authority/m);
      const noOut = await cli('console', 'proxy-activate', '--confirm', iids, '--authority', url, '--data-dir', second);
      expect(noOut.stderr).toMatch(/^error OPTION_INVALID: --confirm FILE needs --out CIDS/m);

      expect((await cli('console', 'proxy-activate', '--collect', iids, '--all', '--data-dir', first)).code).toBe(0);
      const confirmed = await cli(
        'console',
        'proxy-activate',
        '--confirm',
        iids,
        '--out',
        cids,
        '--authority',
        url,
        '--data-dir',
        second,
        '--json',
      );
      expect(confirmed.code, confirmed.stdout + confirmed.stderr).toBe(0);
      expect(JSON.parse(confirmed.stdout)).toMatchObject({ confirmed: 2, refused: [] });
      expect(statSync(cids).mode & 0o777).toBe(0o600);
      // The second console cannot apply what the first collected.
      expect((await cli('console', 'proxy-activate', '--apply', cids, '--data-dir', second)).stderr).toMatch(
        /^error PROXY_FILE_FOREIGN: /m,
      );
      const applied = await cli('console', 'proxy-activate', '--apply', cids, '--data-dir', first, '--json');
      expect(applied.code, applied.stdout + applied.stderr).toBe(0);
      expect((JSON.parse(applied.stdout) as { results: { state: string }[] }).results.map((r) => r.state)).toEqual([
        'licensed',
        'licensed',
      ]);

      // Step 2 by `authority confirm-file --url`: a remote authority's public bulk route.
      const remote = await newConsole('remote', 1);
      const remoteIids = join(root, 'usb', 'remote-iids.json');
      const remoteCids = join(root, 'usb', 'remote-cids.json');
      expect(
        (await cli('console', 'proxy-activate', '--collect', remoteIids, '--all', '--data-dir', remote)).code,
      ).toBe(0);
      const byUrl = await cli('authority', 'confirm-file', remoteIids, '--out', remoteCids, '--url', url, '--json');
      expect(byUrl.code, byUrl.stdout + byUrl.stderr).toBe(0);
      expect(JSON.parse(byUrl.stdout)).toMatchObject({ confirmed: 1, authority: url });
      const remoteApplied = await cli(
        'console',
        'proxy-activate',
        '--apply',
        remoteCids,
        '--data-dir',
        remote,
        '--json',
      );
      expect(JSON.parse(remoteApplied.stdout)).toMatchObject({ results: [{ ok: true, state: 'licensed' }] });

      // The phone: a third machine, its IID read out, the CID typed back in groups.
      const phoned = await newConsole('phoned', 1);
      const phoneIids = join(root, 'usb', 'phone-iids.json');
      expect((await cli('console', 'proxy-activate', '--collect', phoneIids, '--all', '--data-dir', phoned)).code).toBe(
        0,
      );
      const iid = parseIidFile(readFileSync(phoneIids, 'utf8')).entries[0]?.installationId as string;
      const cid = (await authority.confirm(iid)).confirmationId;
      const groups = cid.split('-');
      const wrong = groups.map((g, i) => (i === 6 ? `${(Number(g[0]) + 1) % 10}${g.slice(1)}` : g));
      const refused = await cli('console', 'install-cid', '1', ...wrong, '--data-dir', phoned);
      expect(refused.stderr).toMatch(/^error CONFIRMATION_ID_INVALID: group 7 is wrong/m);
      const installed = await cli('console', 'install-cid', '1', ...groups, '--data-dir', phoned, '--json');
      expect(installed.code, installed.stdout + installed.stderr).toBe(0);
      expect(JSON.parse(installed.stdout)).toMatchObject({ results: [{ ok: true, state: 'licensed' }] });
    } finally {
      await api.close();
      await authority.close();
    }
  }, 120_000);
});
