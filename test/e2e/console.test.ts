import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createAuthorityServer } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { DAY, ManualClock } from '@volact/core';
import { VolumeConsole, type MachineResult } from '@volact/console';
import { runCliInProcess } from './cli-in-process.js';
import { startSlice, type Slice } from './harness.js';
import { startTestProxy, type TestProxy } from '@volact/console/testing';

/**
 * The console (the reference's VAMT) end to end: a real authority, real agents
 * (`createAgentServer`) over real Licence installations, a real KMS host, a real HTTP proxy
 * with credentials, the console's SQLite store; one shared manual clock.
 */
const TOKEN = 'console-e2e-agent-token-0123456789';
const OTHER_TOKEN = 'another-agent-token-abcdefghijkl';
const ADMIN_TOKEN = 'authority-admin-token-0123456789';
const T0 = Date.UTC(2026, 10, 25, 9);

let slice: Slice;
let clock: ManualClock;
let admin: FastifyInstance;
let authorityUrl: string;
let authorityCalls: string[];
let proxy: TestProxy;
let root: string;
let dataDir: string;
let tokenFile: string;
let console_: VolumeConsole;
let mak: string;
const agents = new Map<string, { stateDir: string; address: string; app: FastifyInstance }>();

async function startAgent(name: string, options: { token?: string; setup?: (stateDir: string) => void } = {}) {
  const stateDir = join(root, 'machines', name);
  if (options.setup) options.setup(stateDir);
  else Licence.init({ stateDir, product: slice.product, hardwareId: `hw-${name}`, clock });
  const app = createAgentServer({ stateDir, adminToken: options.token ?? TOKEN, clock, timeoutMs: 2_000 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = `127.0.0.1:${(app.server.address() as { port: number }).port}`;
  agents.set(name, { stateDir, address, app });
  return address;
}

/** Runs `volact …` in this process (the real command tree), capturing its output and exit code. */
const cli = (...args: string[]) => runCliInProcess(args);

const byMachine = (results: readonly MachineResult[]) => Object.fromEntries(results.map((r) => [r.machine, r]));

beforeAll(async () => {
  clock = new ManualClock(T0);
  slice = await startSlice(clock, { threshold: 1 });
  root = slice.root;
  // The authority with its admin API on, every call counted (reactivate must make none).
  authorityCalls = [];
  admin = createAuthorityServer(slice.authority, { adminToken: ADMIN_TOKEN, clock });
  admin.addHook('onRequest', async (request) => {
    authorityCalls.push(`${request.method} ${request.url}`);
  });
  await admin.listen({ host: '127.0.0.1', port: 0 });
  authorityUrl = `http://127.0.0.1:${(admin.server.address() as { port: number }).port}`;
  proxy = await startTestProxy('it-pro', 'p@ss:w0rd');
  mak = (await slice.authority.mintKey({ type: 'mak', groups: ['office14'], limit: 5 })).key;

  // pc-a, pc-b: MAK machines (proxy activation). pc-c: KMS with the slice's host.
  // pc-d: a clone of pc-a's image, not generalised (same client machine ID), never activated.
  // pc-wrong: an agent with another token. pc-down: nothing listens there.
  await startAgent('pc-a');
  await startAgent('pc-b');
  await startAgent('pc-c', {
    setup: (stateDir) =>
      Licence.init({ stateDir, product: slice.product, hardwareId: 'hw-pc-c', clock }).setKmsHost(slice.hostAddress()),
  });
  await startAgent('pc-d', {
    setup: (stateDir) => cpSync(agents.get('pc-a')!.stateDir, stateDir, { recursive: true }),
  });
  await startAgent('pc-wrong', { token: OTHER_TOKEN });
  const gone = createAgentServer({ stateDir: agents.get('pc-a')!.stateDir, adminToken: TOKEN });
  await gone.listen({ host: '127.0.0.1', port: 0 });
  const downAddress = `127.0.0.1:${(gone.server.address() as { port: number }).port}`;
  await gone.close();
  agents.set('pc-down', { stateDir: '', address: downAddress, app: gone });

  dataDir = join(mkdtempSync(join(tmpdir(), 'volact-console-')), 'console');
  tokenFile = join(root, 'agent.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await console_?.close();
  for (const [name, a] of agents) if (name !== 'pc-down') await a.app.close();
  await admin?.close();
  await proxy?.close();
  await slice?.close();
  rmSync(join(dataDir, '..'), { recursive: true, force: true });
});

describe('volact console, end to end', () => {
  it('init and machine add through the CLI; discover finds the agents that accept the token', async () => {
    expect((await cli('console', 'init', '--data-dir', dataDir)).code).toBe(0);
    const names = ['pc-a', 'pc-b', 'pc-c', 'pc-d', 'pc-wrong', 'pc-down'];
    for (const name of names) {
      const r = await cli(
        'console',
        'machine',
        'add',
        agents.get(name)!.address,
        '--name',
        name,
        '--data-dir',
        dataDir,
        '--token-file',
        tokenFile,
        '--json',
      );
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
    // The token is stored sealed: neither it nor the key file's secret is in the database.
    const db = readFileSync(join(dataDir, 'console.db')).toString('latin1');
    expect(db).not.toContain(TOKEN);

    console_ = VolumeConsole.open(dataDir, { clock });
    const found = await console_.discover(
      names.map((n) => agents.get(n)!.address),
      TOKEN,
      { timeoutMs: 1_000 },
    );
    expect(found.probed).toBe(6);
    expect(found.found.map((f) => f.machine).sort()).toEqual(['pc-a', 'pc-b', 'pc-c', 'pc-d']);
    expect(found.found.every((f) => !f.added)).toBe(true);
    expect(found.refused).toEqual([
      expect.objectContaining({ address: agents.get('pc-wrong')!.address, code: 'PROOF_FAILED' }),
    ]);
    expect(found.silent).toBe(1);

    // A sweep of a port range around one agent (the CLI's --range) finds it and adds nothing twice.
    const port = Number(agents.get('pc-a')!.address.split(':')[1]);
    const sweep = await cli(
      'console',
      'discover',
      '--data-dir',
      dataDir,
      '--range',
      `127.0.0.1:${port - 2}-${port + 2}`,
      '--token-file',
      tokenFile,
      '--timeout',
      '500',
      '--json',
    );
    expect(sweep.code, sweep.stderr).toBe(0);
    const swept = JSON.parse(sweep.stdout) as { probed: number; found: { machine: string; added: boolean }[] };
    expect(swept.probed).toBe(5);
    expect(swept.found).toContainEqual(expect.objectContaining({ machine: 'pc-a', added: false }));
    expect(sweep.stderr).toMatch(/^probed 5: \d+ agents/m);
    expect((await console_.listMachines()).length).toBeGreaterThanOrEqual(6);
    await console_.removeMachines(
      (await console_.listMachines()).filter((m) => !names.includes(m.name)).map((m) => m.name),
    );
  });

  it('refresh: every machine read at once; the one whose agent is down and the one with another token fail alone', async () => {
    const cliRun = await cli('console', 'refresh', '--data-dir', dataDir, '--json');
    expect(cliRun.code).toBe(1);
    const results = byMachine(JSON.parse(cliRun.stdout).results as MachineResult[]);
    expect(Object.keys(results).sort()).toEqual(['pc-a', 'pc-b', 'pc-c', 'pc-d', 'pc-down', 'pc-wrong']);
    expect(results['pc-a']).toMatchObject({ ok: true, state: 'initial-grace' });
    expect(results['pc-c']).toMatchObject({ ok: true, state: 'initial-grace' });
    expect(results['pc-down']).toMatchObject({ ok: false, code: 'AGENT_UNREACHABLE' });
    // Its proof failed at discovery: marked untrusted, it is not called again.
    expect(results['pc-wrong']).toMatchObject({ ok: false, code: 'MACHINE_UNTRUSTED' });
    expect(results['pc-wrong']!.message).not.toContain(TOKEN);
    // Progress, one line per machine, on stderr.
    expect(cliRun.stderr.match(/^\[\d\/6\] /gm)).toHaveLength(6);

    // A second refresh with nothing changed writes no history row.
    const again = byMachine(await console_.refresh(['pc-a', 'pc-b']));
    expect(again['pc-a']).toMatchObject({ ok: true, changed: false });
    expect(await console_.history('pc-a')).toHaveLength(1);
  });

  it('key add stores the MAK sealed (last five shown); install-key puts it on two machines', async () => {
    const stored = await console_.addKey(mak, 'office-mak');
    const last5 = `…${mak.replace(/-/g, '').slice(-5)}`;
    expect(stored).toMatchObject({ name: 'office-mak', type: 'mak', key: last5 });
    expect(JSON.stringify(await console_.listKeys())).not.toContain(mak);
    expect(readFileSync(join(dataDir, 'console.db')).toString('latin1')).not.toContain(mak);

    // --key-file keeps a key out of the process list; the same key again is named, not stored twice.
    const keyFile = join(root, 'mak.key');
    writeFileSync(keyFile, `${mak}\n`, { mode: 0o600 });
    const again = await cli('console', 'key', 'add', '--data-dir', dataDir, '--key-file', keyFile);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('KEY_EXISTS');
    expect(again.stderr).not.toContain(mak);
    const both = await cli('console', 'key', 'add', mak, '--data-dir', dataDir, '--key-file', keyFile);
    expect(both.stderr).toContain('give the key exactly once');

    const results = byMachine(await console_.installKey('office-mak', ['pc-a', 'pc-b']));
    expect(results['pc-a']).toMatchObject({ ok: true, state: 'initial-grace' });
    expect(results['pc-b']!.message).toContain(last5);
    expect(results['pc-b']!.message).not.toContain(mak);
  });

  it('proxy-activate: a wrong proxy password fails every machine with PROXY_AUTH_FAILED and uses nothing', async () => {
    const wrong = proxy.url.replace('p%40ss%3Aw0rd', 'nope');
    const { parseProxyUrl } = await import('@volact/console');
    const results = await console_.proxyActivate(['pc-a', 'pc-b'], {
      url: authorityUrl,
      proxy: parseProxyUrl(wrong),
    });
    expect(results.map((r) => r.code)).toEqual(['PROXY_AUTH_FAILED', 'PROXY_AUTH_FAILED']);
    expect(results[0]!.message).not.toContain('nope');
    expect((await slice.authority.showKey(mak)).used).toBe(0);
  });

  it('proxy-activate: 2 MAK machines in ONE bulk call through the authenticated proxy; a down machine does not stop them', async () => {
    proxy.seen.length = 0;
    const r = await cli(
      'console',
      'proxy-activate',
      'pc-a',
      'pc-b',
      'pc-down',
      '--data-dir',
      dataDir,
      '--authority',
      authorityUrl,
      '--proxy',
      proxy.url,
      '--json',
    );
    expect(r.code).toBe(1); // pc-down failed
    expect(r.stdout + r.stderr).not.toContain('p@ss:w0rd');
    expect(r.stdout + r.stderr).not.toContain('p%40ss');
    const results = byMachine(JSON.parse(r.stdout).results as MachineResult[]);
    expect(results['pc-a']).toMatchObject({ ok: true, state: 'licensed', method: 'mak' });
    expect(results['pc-b']).toMatchObject({ ok: true, state: 'licensed', method: 'mak' });
    expect(results['pc-a']!.confirmationId).toMatch(/^\d{6}(-\d{6})+$/);
    expect(results['pc-down']).toMatchObject({ ok: false, code: 'AGENT_UNREACHABLE' });
    // One request through the proxy, the bulk call, with the absolute URI; credentials checked.
    expect(proxy.seen).toEqual([{ method: 'POST', target: `${authorityUrl}/v1/confirmations/bulk`, allowed: true }]);
    expect((await slice.authority.showKey(mak)).used).toBe(2);
    // The agents really are licensed (their own licence stores say so).
    expect(Licence.open({ stateDir: agents.get('pc-b')!.stateDir, clock }).status()).toMatchObject({
      state: 'licensed',
      method: 'mak',
    });
  });

  it('activate: the KMS machine activates itself at its host', async () => {
    const results = byMachine(await console_.activate(['pc-c']));
    expect(results['pc-c']).toMatchObject({ ok: true, state: 'licensed', method: 'kms' });
  });

  it('reactivate: a re-imaged machine (same key and hardware) gets its stored CID back without the authority', async () => {
    const b = agents.get('pc-b')!;
    const iidBefore = Licence.open({ stateDir: b.stateDir, clock }).installationId();
    rmSync(b.stateDir, { recursive: true, force: true });
    Licence.init({ stateDir: b.stateDir, product: slice.product, hardwareId: 'hw-pc-b', clock });
    // The re-image wiped the agent's enrolment too: it proves the fleet token, not pc-b's own, so
    // the console refuses it (an impostor at the address could do the same) until re-enrolled.
    expect(byMachine(await console_.refresh(['pc-b']))['pc-b']).toMatchObject({ ok: false, code: 'PROOF_FAILED' });
    expect(byMachine(await console_.reenrol(['pc-b'], TOKEN))['pc-b']).toMatchObject({ ok: true });
    const installed = byMachine(await console_.installKey('office-mak', ['pc-b']));
    expect(installed['pc-b']).toMatchObject({ ok: true, state: 'initial-grace' });

    const usedBefore = (await slice.authority.showKey(mak)).used;
    const callsBefore = authorityCalls.length;
    const proxiedBefore = proxy.seen.length;
    const results = byMachine(await console_.reactivate(['pc-b', 'pc-c']));
    expect(results['pc-b']).toMatchObject({ ok: true, state: 'licensed', method: 'mak', installationId: iidBefore });
    // pc-c has a GVLK: the agent's own code comes back.
    expect(results['pc-c']).toMatchObject({ ok: false, code: 'NO_MAK_INSTALLED' });
    expect(authorityCalls.length).toBe(callsBefore);
    expect(proxy.seen.length).toBe(proxiedBefore);
    expect((await slice.authority.showKey(mak)).used).toBe(usedBefore);
    expect(Licence.open({ stateDir: b.stateDir, clock }).status()).toMatchObject({ state: 'licensed', method: 'mak' });
  });

  it('the five reports, 31 days on, in JSON and CSV with known contents', async () => {
    clock.advance(31 * DAY);
    const refreshed = byMachine(await console_.refresh());
    expect(refreshed['pc-d']).toMatchObject({ ok: true, state: 'notification' });
    const address = (name: string) => agents.get(name)!.address;
    const last5 = `…${mak.replace(/-/g, '').slice(-5)}`;
    const cExpires = new Date(T0 + 180 * DAY).toISOString();

    // at-risk: notification always; a licence ending within --days.
    const risk30 = await console_.report('at-risk', { days: 30 });
    expect(risk30.rows.map((r) => [r.machine, r.state])).toEqual([['pc-d', 'notification']]);
    const risk160 = await console_.report('at-risk', { days: 160 });
    expect(risk160.rows.map((r) => [r.machine, r.state, r.daysLeft])).toEqual([
      ['pc-c', 'licensed', 149],
      ['pc-d', 'notification', null],
    ]);
    expect(risk160.rows[0]).toMatchObject({ expiresAt: cExpires, reason: 'licence ends within 160 days: renew it' });

    const dup = await console_.report('duplicate-cmid');
    const cmid = Licence.open({ stateDir: agents.get('pc-a')!.stateDir, clock }).status().clientMachineId;
    expect(dup.rows).toEqual([
      {
        clientMachineId: cmid,
        machines: 2,
        machine: 'pc-a',
        address: address('pc-a'),
        group: 'office14',
        state: 'licensed',
      },
      {
        clientMachineId: cmid,
        machines: 2,
        machine: 'pc-d',
        address: address('pc-d'),
        group: 'office14',
        state: 'notification',
      },
    ]);

    const unlicensed = await console_.report('unlicensed');
    expect(unlicensed.rows.map((r) => [r.machine, r.state, r.installedKeyType])).toEqual([
      ['pc-d', 'notification', 'gvlk'],
    ]);

    const byAuthority = await console_.report('by-authority');
    expect(byAuthority.rows.map((r) => [r.machine, r.activatedBy, r.authority, r.keyName])).toEqual([
      ['pc-a', 'mak', last5, 'office-mak'],
      ['pc-b', 'mak', last5, 'office-mak'],
      ['pc-c', 'kms-host', slice.hostAddress(), null],
      ['pc-d', null, null, null],
    ]);

    // The same through the CLI as CSV (RFC 4180: CRLF, header first).
    const csv = await cli('console', 'report', 'by-authority', '--data-dir', dataDir, '--csv');
    expect(csv.code).toBe(0);
    expect(csv.stdout).toBe(
      [
        'machine,address,group,state,activatedBy,authority,keyName,expiresAt',
        `"pc-a","${address('pc-a')}","office14","licensed","mak","${last5}","office-mak",`,
        `"pc-b","${address('pc-b')}","office14","licensed","mak","${last5}","office-mak",`,
        `"pc-c","${address('pc-c')}","office14","licensed","kms-host","${slice.hostAddress()}",,"${cExpires}"`,
        `"pc-d","${address('pc-d')}","office14","notification",,,,`,
        '',
      ].join('\r\n'),
    );
    const dupCsv = await cli('console', 'report', 'duplicate-cmid', '--data-dir', dataDir, '--csv');
    expect(dupCsv.stdout.split('\r\n')).toEqual([
      'clientMachineId,machines,machine,address,group,state',
      `"${cmid}",2,"pc-a","${address('pc-a')}","office14","licensed"`,
      `"${cmid}",2,"pc-d","${address('pc-d')}","office14","notification"`,
      '',
    ]);
    const riskCsv = await cli('console', 'report', 'at-risk', '--days', '160', '--data-dir', dataDir, '--csv');
    expect(riskCsv.stdout.split('\r\n')[0]).toBe('machine,address,group,state,expiresAt,daysLeft,reason,lastSeenAt');
    expect(riskCsv.stdout).toContain(`"pc-d","${address('pc-d')}","office14","notification",`);
    const unlicensedJson = await cli('console', 'report', 'unlicensed', '--data-dir', dataDir, '--json');
    expect(JSON.parse(unlicensedJson.stdout)).toMatchObject({
      report: 'unlicensed',
      rows: [{ machine: 'pc-d', state: 'notification' }],
    });

    // mak-usage: the authority's counters over its admin API (through the proxy), and the machines.
    const adminTokenFile = join(root, 'admin.token');
    writeFileSync(adminTokenFile, ADMIN_TOKEN, { mode: 0o600 });
    const usage = await cli(
      'console',
      'report',
      'mak-usage',
      '--data-dir',
      dataDir,
      '--authority',
      authorityUrl,
      '--admin-token-file',
      adminTokenFile,
      '--proxy',
      proxy.url,
      '--json',
    );
    expect(usage.code, usage.stderr).toBe(0);
    expect(JSON.parse(usage.stdout).rows).toEqual([
      {
        name: 'office-mak',
        key: last5,
        limit: 5,
        used: 2,
        remaining: 3,
        countedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), // the CLI's own clock
        installedOn: 2,
        activatedOn: 2,
        machines: ['pc-a', 'pc-b'],
        authorityError: null,
      },
    ]);
    // Without the authority: the counters as last read (kept), with the time they were read.
    const usageCsv = await cli('console', 'report', 'mak-usage', '--data-dir', dataDir, '--csv');
    const countedAt = (JSON.parse(usage.stdout) as { rows: { countedAt: string }[] }).rows[0]?.countedAt;
    expect(usageCsv.stdout).toBe(
      `name,key,limit,used,remaining,countedAt,installedOn,activatedOn,machines,authorityError\r\n"office-mak","${last5}",5,2,3,"${countedAt}",2,2,"pc-a;pc-b",\r\n`,
    );
    // A wrong admin token is reported in the key's row, not as a failed report.
    writeFileSync(adminTokenFile, 'not-the-admin-token-at-all', { mode: 0o600 });
    const refused = await console_.report('mak-usage', {
      authority: { url: authorityUrl, adminToken: 'not-the-admin-token-at-all' },
    });
    // The last counters read stay, with their time; the refusal is in the row.
    expect(refused.rows[0]).toMatchObject({
      used: 2,
      authorityError: expect.stringMatching(/^AUTHORITY_REFUSED: .*UNAUTHORIZED/),
    });
  });

  it('the operations log names what was done, never a key, token or proxy password', async () => {
    const log = await cli('console', 'log', '--data-dir', dataDir, '--json');
    const text = log.stdout;
    const operations = (JSON.parse(text) as { operations: { operation: string }[] }).operations;
    expect(operations.map((o) => o.operation)).toEqual(
      expect.arrayContaining(['machine add', 'key add', 'install-key', 'proxy-activate', 'reactivate', 'activate']),
    );
    for (const secret of [mak, TOKEN, 'p@ss:w0rd', ADMIN_TOKEN]) expect(text).not.toContain(secret);
  });
});
