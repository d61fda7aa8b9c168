import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Client } from 'ldapts';
import { createAuthorityServer } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { DAY, ManualClock, lastFiveOf } from '@volact/core';
import { runCliInProcess } from './cli-in-process.js';
import { startSlice, type Slice } from './harness.js';
import { startTestProxy, type TestProxy } from '@volact/console/testing';
import { startTestSlapd, type TestSlapd } from '@volact/directory/testing';

/**
 * Acceptance of issue 5, the volume-activation console (the reference's VAMT), through the
 * CLI contract users script against: the real `volact` command tree run in this process
 * (`buildProgram`), over a fleet of 20 real agents (`createAgentServer` over `Licence.init`
 * state directories), a real authority (admin API on, every request counted), the slice's real
 * KMS host, a real authenticating HTTP proxy and a real OpenLDAP; one shared ManualClock.
 *
 * The console commands have no clock option: during each CLI call `Date.now` (what the
 * console's system clock reads) returns the shared ManualClock's time, so the console, the
 * agents, the KMS host and the authority all live on the same simulated time. Nothing sleeps.
 *
 * The fleet (index → what the test makes of it):
 *   0-9    MAK: installed with ONE install-key call, proxy-activated in ONE authority request
 *   0, 1   … then re-imaged (same hardware, same MAK) and reactivated from the stored CIDs
 *   5-9    … then switched to KMS at T0 + 20 d (GVLK, set-kms-host, activate)
 *   10-14  KMS at T0: the five that bring the KMS host's count to the group's threshold (5)
 *   15, 16 GVLK, never activated: notification once the 30-day initial grace is over
 *   17     no product key installed: unlicensed
 *   18, 19 a cloned image not generalised (19's state dir is a copy of 18's): one CMID, never activated
 */
const TOKEN = 'acceptance-agent-token-0123456789';
const WRONG_TOKEN = 'not-the-agents-token-abcdefghijk';
const ROTATED_TOKEN = 'rotated-agent-token-zyxwvutsrqpo';
/**
 * The enrolment token of the agents the directory lists: each console enrols the machines it
 * manages (a per-machine token each), and an enrolled agent takes its enrolment token no more,
 * so the second console's agents (the same installations) run with an enrolment token of
 * their own.
 */
const DIRECTORY_TOKEN = 'directory-console-enrolment-token-0123';
const ADMIN_TOKEN = 'acceptance-authority-admin-token-01';
const PROXY_USER = 'it-pro';
const PROXY_PASSWORD = 'pr0xy p@ss:word';
const T0 = Date.UTC(2026, 10, 25, 9);
const FLEET = 20;
const MAK = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const REIMAGED = [0, 1];
const SWITCHED = [5, 6, 7, 8, 9];
const KMS_FIRST = [10, 11, 12, 13, 14];
const NEVER_ACTIVATED = [15, 16];
const NO_KEY = 17;
const CLONES = [18, 19];

interface FleetMachine {
  readonly label: string;
  readonly hardwareId: string;
  readonly stateDir: string;
  /** 127.0.0.1:P+i: the console found by --range knows it by this address (its name). */
  address: string;
  /** 127.0.0.(2+i):Q: what the directory lists for it (the second console's address). */
  directoryAddress: string;
  /** Its id in the first console (`console machines`). */
  id: number;
}

interface MachineRow {
  id: number;
  name: string;
  address: string;
  product: string | null;
  state: string | null;
  method: string | null;
  cmid: string | null;
  keyTail: string | null;
  kmsHost: string | null;
  lastSeenAt: string | null;
  lastError: { code: string; message: string; at: string } | null;
}

interface Result {
  machine: string;
  address: string;
  ok: boolean;
  code: string | null;
  message: string;
  state: string | null;
  method: string | null;
  changed?: boolean;
  installationId?: string;
  confirmationId?: string;
}

interface ReportJson {
  report: string;
  generatedAt: string;
  rows: Record<string, unknown>[];
}

let clock: ManualClock;
let slice: Slice;
let admin: FastifyInstance;
let authorityUrl: string;
let authorityCalls: string[];
let proxy: TestProxy;
let slapd: TestSlapd;
let work: string;
let dataDir: string;
let directoryDataDir: string;
let mak: string;
let gvlk: string;
let rangeFirst: number;
let directoryPort: number;
const fleet: FleetMachine[] = [];
let rangeAgents: FastifyInstance[] = [];
let directoryAgents: FastifyInstance[] = [];
const files = {
  token: '',
  directoryToken: '',
  wrongToken: '',
  adminToken: '',
  adminPassword: '',
  proxyPassword: '',
  wrongProxyPassword: '',
  ldapPassword: '',
  passphrase: '',
};

/** The host name the i-th agent reports: what the console shows for the machine (its display name). */
const hostName = (i: number) => `pc-${String(i).padStart(2, '0')}`;

const newAgent = (i: number, token = TOKEN) =>
  createAgentServer({
    stateDir: fleet[i]!.stateDir,
    adminToken: token,
    clock,
    timeoutMs: 2_000,
    facts: { hostName: hostName(i) },
  });

/**
 * Starts one agent per machine, the i-th at `at(base, i)`, for a random base where every one
 * binds: a port in 20 000-32 000 (below Linux's ephemeral range, where port-0 listeners of the
 * tests running alongside land), retried on EADDRINUSE with fresh agents.
 */
async function startAgentRun(
  at: (base: number, i: number) => { host: string; port: number },
  token = TOKEN,
): Promise<{ base: number; apps: FastifyInstance[] }> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const apps: FastifyInstance[] = [];
    try {
      for (let i = 0; i < FLEET; i++) {
        const app = newAgent(i, token);
        apps.push(app);
        await app.listen(at(base, i));
      }
      return { base, apps };
    } catch (err) {
      await Promise.all(apps.map((a) => a.close()));
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error('no base port where all 20 agents could listen');
}

/** Runs `volact …` in this process (the real command tree), on the shared clock. */
const cli = (...args: string[]) => runCliInProcess(args, { now: () => clock.now() });

/** A `--json` command: exit code checked, stdout parsed. */
async function cliJson<T>(expectedCode: number, ...args: string[]): Promise<T> {
  const r = await cli(...args, '--json');
  expect(r.code, `volact ${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(expectedCode);
  return JSON.parse(r.stdout) as T;
}

const machines = async (dir = dataDir) =>
  (await cliJson<{ machines: MachineRow[] }>(0, 'console', 'machines', '--data-dir', dir)).machines;

const report = (name: string, ...extra: string[]) =>
  cliJson<ReportJson>(0, 'console', 'report', name, '--data-dir', dataDir, ...extra);

/** `--machine ID…` for fleet indices (ids from `console machines`). */
const select = (indices: readonly number[]) => ['--machine', ...indices.map((i) => String(fleet[i]!.id))];

/** The first console's names (its machines are named by address) of fleet indices, sorted. */
/** The machines as reports name them: by display name (the host name their agent reported), sorted. */
const names = (indices: readonly number[]) => indices.map((i) => hostName(i)).sort((a, b) => a.localeCompare(b));

/** Fleet index of a result or row, by the first console's address. */
const indexOf = (address: string) => fleet.findIndex((m) => m.address === address);

/** Results of a many-machine command, by fleet index. */
const byIndex = (results: readonly Result[]) => new Map(results.map((r) => [indexOf(r.address), r]));

const agentStatus = (i: number) => Licence.open({ stateDir: fleet[i]!.stateDir, clock }).status();

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => from + k);

beforeAll(async () => {
  clock = new ManualClock(T0);
  // The slice's group office14 keeps the default threshold 5 (the reference's threshold for
  // server and application products): the KMS part raises the count honestly (see below).
  slice = await startSlice(clock);
  // The authority the console calls: its admin API on, every request counted.
  authorityCalls = [];
  admin = createAuthorityServer(slice.authority, { adminToken: ADMIN_TOKEN, clock });
  admin.addHook('onRequest', async (request) => {
    authorityCalls.push(`${request.method} ${request.url}`);
  });
  await admin.listen({ host: '127.0.0.1', port: 0 });
  authorityUrl = `http://127.0.0.1:${(admin.server.address() as { port: number }).port}`;
  proxy = await startTestProxy(PROXY_USER, PROXY_PASSWORD);
  mak = (await slice.authority.mintKey({ type: 'mak', groups: ['office14'], limit: 12 })).key;
  gvlk = slice.product.gvlk;

  work = mkdtempSync(join(tmpdir(), 'volact-console-acceptance-'));
  dataDir = join(work, 'console');
  directoryDataDir = join(work, 'console-directory');
  const secret = (name: keyof typeof files, text: string) => {
    files[name] = join(work, `${name}.txt`);
    writeFileSync(files[name], `${text}\n`, { mode: 0o600 });
  };
  secret('token', TOKEN);
  secret('directoryToken', DIRECTORY_TOKEN);
  secret('wrongToken', WRONG_TOKEN);
  secret('adminToken', ADMIN_TOKEN);
  secret('adminPassword', 'console admin password 42');
  secret('proxyPassword', PROXY_PASSWORD);
  secret('wrongProxyPassword', 'not the proxy password');
  secret('passphrase', 'export passphrase, long enough');

  // The installations. 17: a product installed without a key (the licence store allows no key:
  // its state is "unlicensed"). 19: a copy of 18's image, not generalised: the same client
  // machine ID and hardware id.
  for (let i = 0; i < FLEET; i++) {
    const label = `pc-${String(i).padStart(2, '0')}`;
    const stateDir = join(work, 'machines', label);
    fleet.push({ label, hardwareId: `hw-${label}`, stateDir, address: '', directoryAddress: '', id: 0 });
    if (i === CLONES[1]) {
      cpSync(fleet[CLONES[0]!]!.stateDir, stateDir, { recursive: true });
      continue;
    }
    Licence.init({ stateDir, product: slice.product, hardwareId: `hw-${label}`, clock });
    if (i === NO_KEY) {
      const file = join(stateDir, 'licence.json');
      const record = JSON.parse(readFileSync(file, 'utf8')) as { installedKey: unknown };
      record.installedKey = null;
      writeFileSync(file, JSON.stringify(record), { mode: 0o600 });
    }
  }

  // Each machine's agent on 127.0.0.1, on 20 consecutive ports P..P+19 (for --range 127.0.0.1:P-P+19).
  const run = await startAgentRun((base, i) => ({ host: '127.0.0.1', port: base + i }));
  rangeAgents = run.apps;
  rangeFirst = run.base;
  for (const [i, m] of fleet.entries()) m.address = `127.0.0.1:${rangeFirst + i}`;

  // Directory discovery turns each computer entry into dNSHostName:--agent-port, ONE port for
  // all, as on a real network where every machine has its own address. So each machine's agent
  // also listens on its own loopback address 127.0.0.(2+i) (Linux routes all of 127/8 to lo) on
  // one common port Q; the directory holds those addresses. A second agent over the same state
  // directory is the same machine (the agent reopens the licence store on every request),
  // reached at a second address: the two consoles see the same 20 machines.
  const onDirectory = await startAgentRun((base, i) => ({ host: `127.0.0.${2 + i}`, port: base }), DIRECTORY_TOKEN);
  directoryAgents = onDirectory.apps;
  directoryPort = onDirectory.base;
  for (const [i, m] of fleet.entries()) m.directoryAddress = `127.0.0.${2 + i}:${directoryPort}`;

  // A real OpenLDAP with the 20 computer entries (and a printer, which --filter leaves out).
  slapd = await startTestSlapd();
  secret('ldapPassword', slapd.userPassword);
  const ldap = new Client({ url: slapd.url });
  try {
    await ldap.bind(slapd.adminDn, slapd.adminPassword);
    await ldap.add(`ou=computers,${slapd.base}`, { objectClass: ['organizationalUnit'], ou: 'computers' });
    for (const m of fleet) {
      await ldap.add(`cn=${m.label},ou=computers,${slapd.base}`, {
        objectClass: ['computer'],
        cn: m.label,
        dNSHostName: m.directoryAddress.split(':')[0]!,
      });
    }
    await ldap.add(`cn=printer-01,ou=computers,${slapd.base}`, { objectClass: ['device'], cn: 'printer-01' });
  } finally {
    await ldap.unbind();
  }
});

afterAll(async () => {
  await Promise.all([...rangeAgents, ...directoryAgents].map((a) => a.close()));
  await admin?.close();
  await proxy?.close();
  await slapd?.stop();
  await slice?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('volact console acceptance (issue 5): a fleet of 20 machines', () => {
  it('discover --range finds all 20 agents on consecutive ports; `machines --json` shows every status', async () => {
    const init = await cli('console', 'init', '--data-dir', dataDir, '--admin-password-file', files.adminPassword);
    expect(init.code, init.stderr).toBe(0);

    const found = await cliJson<{
      probed: number;
      found: { address: string; machine: string; added: boolean; state: string }[];
      refused: unknown[];
      silent: number;
    }>(
      0,
      'console',
      'discover',
      '--data-dir',
      dataDir,
      '--range',
      `127.0.0.1:${rangeFirst}-${rangeFirst + FLEET - 1}`,
      '--token-file',
      files.token,
    );
    expect(found.probed).toBe(20);
    expect(found.found.map((f) => f.address)).toEqual(fleet.map((m) => m.address));
    expect(found.found.every((f) => f.added && f.machine === f.address)).toBe(true);
    expect(found.refused).toEqual([]);
    expect(found.silent).toBe(0);

    const rows = await machines();
    expect(rows).toHaveLength(20);
    for (const row of rows) {
      const i = indexOf(row.address);
      expect(i, row.address).toBeGreaterThanOrEqual(0);
      fleet[i]!.id = row.id;
      // The console's view is the agent's own.
      const own = agentStatus(i);
      expect(row).toMatchObject({
        name: fleet[i]!.address,
        product: 'office14',
        state: i === NO_KEY ? 'unlicensed' : 'initial-grace',
        method: null,
        cmid: own.clientMachineId,
        keyTail: i === NO_KEY ? null : lastFiveOf(gvlk),
      });
    }
    expect(new Set(rows.map((r) => r.id)).size).toBe(20);
    // 20 installations, 19 client machine IDs: 18 and 19 are one cloned image.
    expect(new Set(rows.map((r) => r.cmid)).size).toBe(19);
    expect(rows.find((r) => r.address === fleet[18]!.address)!.cmid).toBe(
      rows.find((r) => r.address === fleet[19]!.address)!.cmid,
    );
  });

  it('a second console discovers the same 20 machines by an LDAP query against OpenLDAP', async () => {
    expect((await cli('console', 'init', '--data-dir', directoryDataDir)).code).toBe(0);
    const r = await cli(
      'console',
      'discover',
      '--data-dir',
      directoryDataDir,
      '--ldap-url',
      slapd.url,
      '--base',
      `ou=computers,${slapd.base}`,
      '--filter',
      '(objectClass=computer)',
      '--ldap-bind-dn',
      slapd.userDn,
      '--ldap-password-file',
      files.ldapPassword,
      '--agent-port',
      String(directoryPort),
      '--token-file',
      files.directoryToken,
      '--json',
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toContain('the directory lists 20 computer(s)');
    const found = JSON.parse(r.stdout) as { probed: number; found: { address: string; added: boolean }[] };
    expect(found.probed).toBe(20);
    expect(found.found.map((f) => f.address).sort()).toEqual(fleet.map((m) => m.directoryAddress).sort());
    expect(found.found.every((f) => f.added)).toBe(true);

    // The same machines as the first console sees (by client machine ID, state and key).
    const first = new Map((await machines()).map((m) => [indexOf(m.address), m]));
    const rows = await machines(directoryDataDir);
    expect(rows).toHaveLength(20);
    for (const row of rows) {
      const i = fleet.findIndex((m) => m.directoryAddress === row.address);
      expect(i, row.address).toBeGreaterThanOrEqual(0);
      const same = first.get(i)!;
      expect({ state: row.state, product: row.product, cmid: row.cmid, keyTail: row.keyTail }).toEqual({
        state: same.state,
        product: same.product,
        cmid: same.cmid,
        keyTail: same.keyTail,
      });
    }
  });

  it('a wrong agent token is refused: discover and refresh change nothing', async () => {
    // discover with a wrong --token-file, by a console that does not know the machines (a
    // console that knows them probes each with its own token): every agent is refused (the
    // token is never sent: the agent's probe answer does not prove it); nothing is added, and
    // the first console's records do not change.
    const before = await machines();
    const strangerDir = join(work, 'console-stranger');
    expect((await cli('console', 'init', '--data-dir', strangerDir)).code).toBe(0);
    const r = await cli(
      'console',
      'discover',
      '--data-dir',
      strangerDir,
      '--range',
      `127.0.0.1:${rangeFirst}-${rangeFirst + FLEET - 1}`,
      '--token-file',
      files.wrongToken,
      '--json',
    );
    expect(r.code, r.stderr).toBe(1); // agents answered but none took the token: a failure to script on
    const refused = JSON.parse(r.stdout) as { found: unknown[]; refused: { address: string; code: string }[] };
    expect(refused.found).toEqual([]);
    expect(refused.refused.map((x) => x.address)).toEqual(fleet.map((m) => m.address));
    expect(refused.refused.every((x) => x.code === 'PROOF_FAILED')).toBe(true);
    expect(r.stdout + r.stderr).not.toContain(WRONG_TOKEN);
    expect(await machines(strangerDir)).toEqual([]);
    expect(await machines()).toEqual(before);

    // refresh when a machine's agent no longer proves the console's token (restarted with
    // another token): that machine alone is refused and marked untrusted, its status unchanged.
    const status = (rows: MachineRow[]) =>
      rows.map((m) => ({ id: m.id, state: m.state, method: m.method, cmid: m.cmid, keyTail: m.keyTail }));
    const read = await cliJson<{ results: Result[] }>(0, 'console', 'refresh', '--data-dir', directoryDataDir);
    expect(read.results.every((x) => x.ok)).toBe(true);
    const beforeRefresh = await machines(directoryDataDir);
    const k = 3;
    await directoryAgents[k]!.close();
    const rotated = newAgent(k, ROTATED_TOKEN);
    directoryAgents[k] = rotated;
    await rotated.listen({ host: `127.0.0.${2 + k}`, port: directoryPort });
    const refreshed = await cliJson<{ results: Result[] }>(
      1,
      'console',
      'refresh',
      '--data-dir',
      directoryDataDir,
      '--all',
    );
    const failed = refreshed.results.filter((x) => !x.ok);
    expect(failed).toEqual([
      expect.objectContaining({ address: fleet[k]!.directoryAddress, ok: false, code: 'PROOF_FAILED' }),
    ]);
    expect(refreshed.results.filter((x) => x.ok && x.changed === false)).toHaveLength(19);
    const afterRefresh = await machines(directoryDataDir);
    expect(status(afterRefresh)).toEqual(status(beforeRefresh));
    const marked = afterRefresh.find((m) => m.address === fleet[k]!.directoryAddress)!;
    expect(marked.lastError).toMatchObject({ code: 'PROOF_FAILED' });
    expect((marked as MachineRow & { untrusted: unknown }).untrusted).not.toBeNull();
  });

  it('bulk MAK: ONE install-key on 10 machines; a wrong proxy password fails each, uses nothing', async () => {
    const installed = await cliJson<{ results: Result[] }>(
      0,
      'console',
      'install-key',
      '--data-dir',
      dataDir,
      mak,
      ...select(MAK),
    );
    expect(installed.results).toHaveLength(10);
    expect([...byIndex(installed.results).keys()].sort((a, b) => a - b)).toEqual(MAK);
    expect(installed.results.every((x) => x.ok && x.state === 'initial-grace')).toBe(true);
    expect(JSON.stringify(installed)).not.toContain(mak);
    for (const i of MAK)
      expect(agentStatus(i)).toMatchObject({ installedKeyType: 'mak', installedKey: lastFiveOf(mak) });

    const calls = authorityCalls.length;
    const seen = proxy.seen.length;
    const r = await cli(
      'console',
      'proxy-activate',
      '--data-dir',
      dataDir,
      '--all',
      '--authority',
      authorityUrl,
      '--proxy',
      `http://127.0.0.1:${proxy.port}`,
      '--proxy-user',
      PROXY_USER,
      '--proxy-password-file',
      files.wrongProxyPassword,
      '--json',
    );
    // Exit 1 with a result per machine (not one error for the whole command).
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(JSON.parse(r.stdout), r.stdout).toHaveProperty('results');
    const results = (JSON.parse(r.stdout) as { results: Result[] }).results;
    // The 10 MAK machines: the proxy refused the one bulk call. The other 10 have no MAK.
    const byI = byIndex(results);
    for (const i of MAK) expect(byI.get(i), fleet[i]!.label).toMatchObject({ ok: false, code: 'PROXY_AUTH_FAILED' });
    for (const i of range(10, 19)) {
      expect(byI.get(i), fleet[i]!.label).toMatchObject({ ok: false, code: 'NO_MAK_INSTALLED' });
    }
    expect(r.stdout + r.stderr).not.toContain('not the proxy password');
    expect(proxy.seen.slice(seen)).toEqual([
      { method: 'POST', target: `${authorityUrl}/v1/confirmations/bulk`, allowed: false },
    ]);
    expect(authorityCalls.length).toBe(calls);
    expect((await slice.authority.showKey(mak)).used).toBe(0);
    for (const i of MAK) expect(agentStatus(i).state).toBe('initial-grace');
  });

  it('bulk MAK: proxy-activate the 10 in ONE authority request through the proxy (user + password file); used 10', async () => {
    const calls = authorityCalls.length;
    const seen = proxy.seen.length;
    const r = await cli(
      'console',
      'proxy-activate',
      '--data-dir',
      dataDir,
      ...select(MAK),
      '--authority',
      authorityUrl,
      '--proxy',
      `http://127.0.0.1:${proxy.port}`,
      '--proxy-user',
      PROXY_USER,
      '--proxy-password-file',
      files.proxyPassword,
      '--json',
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(PROXY_PASSWORD);
    const results = (JSON.parse(r.stdout) as { results: Result[] }).results;
    expect(results).toHaveLength(10);
    for (const x of results) {
      expect(x).toMatchObject({ ok: true, state: 'licensed', method: 'mak' });
      expect(x.confirmationId).toMatch(/^\d{6}(-\d{6})+$/);
    }
    // ONE request through the proxy, ONE at the authority: the bulk call.
    expect(proxy.seen.slice(seen)).toEqual([
      { method: 'POST', target: `${authorityUrl}/v1/confirmations/bulk`, allowed: true },
    ]);
    expect(authorityCalls.slice(calls)).toEqual(['POST /v1/confirmations/bulk']);
    for (const i of MAK) expect(agentStatus(i)).toMatchObject({ state: 'licensed', method: 'mak' });
    expect(await slice.authority.showKey(mak)).toMatchObject({ used: 10, limit: 12 });

    // refresh-mak reads the counters over the admin API and keeps them; the report shows them.
    const counted = await cliJson<{
      results: { name: string; ok: boolean; limit: number; used: number; remaining: number }[];
    }>(
      0,
      'console',
      'refresh-mak',
      '--data-dir',
      dataDir,
      '--authority',
      authorityUrl,
      '--admin-token-file',
      files.adminToken,
    );
    const name = `mak-${lastFiveOf(mak).slice(1)}`;
    expect(counted.results).toEqual([expect.objectContaining({ name, ok: true, limit: 12, used: 10, remaining: 2 })]);
    const usage = await report('mak-usage');
    expect(usage.rows).toEqual([
      {
        name,
        key: lastFiveOf(mak),
        limit: 12,
        used: 10,
        remaining: 2,
        countedAt: new Date(T0).toISOString(),
        installedOn: 10,
        activatedOn: 10,
        machines: names(MAK),
        authorityError: null,
      },
    ]);
  });

  it('re-image 2 machines (same hardware, same MAK): reactivate from the stored CID, nothing reaches the authority', async () => {
    const iids = new Map<number, string>();
    for (const i of REIMAGED) {
      const m = fleet[i]!;
      iids.set(i, Licence.open({ stateDir: m.stateDir, clock }).installationId());
      rmSync(m.stateDir, { recursive: true, force: true });
      Licence.init({ stateDir: m.stateDir, product: slice.product, hardwareId: m.hardwareId, clock });
    }
    // The re-image wiped each agent's enrolment too: the console re-enrols the two with the
    // enrolment token their agents run with (it would refuse them otherwise: PROOF_FAILED).
    const reenrolled = await cliJson<{ results: Result[] }>(
      0,
      'console',
      'machine',
      'enrol',
      String(fleet[0]!.id),
      String(fleet[1]!.id),
      '--data-dir',
      dataDir,
      '--token-file',
      files.token,
    );
    expect(reenrolled.results.map((x) => x.ok)).toEqual([true, true]);
    const installed = await cliJson<{ results: Result[] }>(
      0,
      'console',
      'install-key',
      '--data-dir',
      dataDir,
      mak,
      '--machine',
      String(fleet[0]!.id),
      '--machine',
      String(fleet[1]!.id),
    );
    expect(installed.results.map((x) => [indexOf(x.address), x.state])).toEqual(
      expect.arrayContaining([
        [0, 'initial-grace'],
        [1, 'initial-grace'],
      ]),
    );

    const calls = authorityCalls.length;
    const seen = proxy.seen.length;
    for (const i of REIMAGED) {
      const r = await cliJson<{ results: Result[] }>(
        0,
        'console',
        'reactivate',
        '--data-dir',
        dataDir,
        '--machine',
        String(fleet[i]!.id),
      );
      expect(r.results).toEqual([
        expect.objectContaining({
          address: fleet[i]!.address,
          ok: true,
          state: 'licensed',
          method: 'mak',
          installationId: iids.get(i),
        }),
      ]);
      expect(agentStatus(i)).toMatchObject({ state: 'licensed', method: 'mak' });
    }
    expect(authorityCalls.length).toBe(calls);
    expect(proxy.seen.length).toBe(seen);
    expect((await slice.authority.showKey(mak)).used).toBe(10);
  });

  it('switch 5 from MAK to KMS: GVLK, set-kms-host, activate: licensed by the KMS host', async () => {
    const host = slice.hostAddress();
    // The group's threshold is 5, as the reference's for server and application products. A
    // KMS host grants nothing before it has counted 5 distinct clients: machines 10-14 are the
    // first five at this host. Their first attempt counts them (each request counts, in
    // turn): four are told "count 1..4 of 5", the fifth is activated; their retry succeeds.
    const set = await cliJson<{ results: Result[] }>(
      0,
      'console',
      'set-kms-host',
      '--data-dir',
      dataDir,
      host,
      ...select(KMS_FIRST),
    );
    expect(set.results.every((x) => x.ok)).toBe(true);
    for (const i of KMS_FIRST) expect(agentStatus(i).host).toBe(host);
    const first = await cliJson<{ results: Result[] }>(
      1,
      'console',
      'activate',
      '--data-dir',
      dataDir,
      ...select(KMS_FIRST),
    );
    expect(first.results.filter((x) => x.ok)).toEqual([expect.objectContaining({ state: 'licensed', method: 'kms' })]);
    const waiting = first.results.filter((x) => !x.ok);
    expect(waiting).toHaveLength(4);
    for (const x of waiting) {
      expect(x).toMatchObject({ code: 'KMS_THRESHOLD_NOT_MET', state: 'initial-grace' });
      expect(x.message).toMatch(/^count [1-4] of 5/);
    }
    const retry = await cliJson<{ results: Result[] }>(
      0,
      'console',
      'activate',
      '--data-dir',
      dataDir,
      ...select(KMS_FIRST),
    );
    expect(retry.results.every((x) => x.ok && x.state === 'licensed' && x.method === 'kms')).toBe(true);

    // 20 days on, 5 of the MAK machines move to KMS (the host has counted 5 in its 30-day window).
    clock.advance(20 * DAY);
    await slice.host.checkNow(); // its 6-hourly check on the shared clock: a current host status
    const gvlkInstalled = await cliJson<{ results: Result[] }>(
      0,
      'console',
      'install-key',
      '--data-dir',
      dataDir,
      gvlk,
      ...select(SWITCHED),
    );
    expect(gvlkInstalled.results).toHaveLength(5);
    // The MAK activation does not hold for the GVLK: back in the initial grace (installed at T0).
    expect(gvlkInstalled.results.every((x) => x.ok && x.state === 'initial-grace' && x.method === null)).toBe(true);
    const pointed = await cliJson<{ results: Result[] }>(
      0,
      'console',
      'set-kms-host',
      '--data-dir',
      dataDir,
      host,
      ...select(SWITCHED),
    );
    expect(pointed.results.every((x) => x.ok)).toBe(true);
    const activated = await cliJson<{ results: Result[] }>(
      0,
      'console',
      'activate',
      '--data-dir',
      dataDir,
      ...select(SWITCHED),
    );
    expect([...byIndex(activated.results).keys()].sort((a, b) => a - b)).toEqual(SWITCHED);
    expect(activated.results.every((x) => x.ok && x.state === 'licensed' && x.method === 'kms')).toBe(true);

    const rows = new Map((await machines()).map((m) => [indexOf(m.address), m]));
    for (const i of SWITCHED) {
      expect(rows.get(i), fleet[i]!.label).toMatchObject({
        state: 'licensed',
        method: 'kms',
        kmsHost: host,
        keyTail: lastFiveOf(gvlk),
      });
      expect(agentStatus(i)).toMatchObject({ state: 'licensed', method: 'kms', host, installedKeyType: 'gvlk' });
    }
    expect((await slice.authority.showKey(mak)).used).toBe(10);
  });

  it('the reports at T0 + 172 d: duplicate CMIDs, at-risk and unlicensed list exactly the machines made so', async () => {
    // Machines 10-14 (KMS at T0) have 8 days left, 5-9 (KMS at T0 + 20 d) 28; the never
    // activated are past their 30-day initial grace (notification); 17 has no key.
    clock.advance(152 * DAY);
    const refreshed = await cliJson<{ results: Result[] }>(0, 'console', 'refresh', '--data-dir', dataDir, '--all');
    expect(refreshed.results).toHaveLength(20);

    const duplicates = await report('duplicate-cmid');
    const cmid = agentStatus(18).clientMachineId;
    expect(duplicates.rows).toEqual(
      CLONES.map((i) => ({
        clientMachineId: cmid,
        machines: 2,
        machine: hostName(i),
        address: fleet[i]!.address,
        group: 'office14',
        state: 'notification',
      })),
    );

    const soon = await report('at-risk', '--days', '10');
    expect(soon.rows.map((r) => r.machine)).toEqual(names([...KMS_FIRST, ...NEVER_ACTIVATED, ...CLONES]));
    for (const row of soon.rows) {
      const i = indexOf(row.address as string);
      expect(row, fleet[i]!.label).toMatchObject(
        KMS_FIRST.includes(i)
          ? {
              state: 'licensed',
              daysLeft: 8,
              expiresAt: new Date(T0 + 180 * DAY).toISOString(),
              reason: 'licence ends within 10 days: renew it',
            }
          : { state: 'notification', daysLeft: null },
      );
    }
    const month = await report('at-risk', '--days', '30');
    expect(month.rows.map((r) => r.machine)).toEqual(names([...SWITCHED, ...KMS_FIRST, ...NEVER_ACTIVATED, ...CLONES]));
    expect(month.rows.filter((r) => r.daysLeft === 28).map((r) => r.machine)).toEqual(names(SWITCHED));

    const unlicensed = await report('unlicensed');
    expect(unlicensed.rows.map((r) => r.machine)).toEqual(names([...NEVER_ACTIVATED, NO_KEY, ...CLONES]));
    for (const row of unlicensed.rows) {
      expect(row).toMatchObject(
        indexOf(row.address as string) === NO_KEY
          ? { state: 'unlicensed', installedKey: null, installedKeyType: null }
          : { state: 'notification', installedKey: lastFiveOf(gvlk), installedKeyType: 'gvlk' },
      );
    }

    const byAuthority = await report('by-authority');
    const activatedBy = Object.fromEntries(byAuthority.rows.map((r) => [indexOf(r.address as string), r]));
    for (let i = 0; i < FLEET; i++) {
      const expected = [0, 1, 2, 3, 4].includes(i)
        ? { activatedBy: 'mak', authority: lastFiveOf(mak), keyName: `mak-${lastFiveOf(mak).slice(1)}` }
        : [...SWITCHED, ...KMS_FIRST].includes(i)
          ? { activatedBy: 'kms-host', authority: slice.hostAddress(), keyName: null }
          : { activatedBy: null, authority: null, keyName: null };
      expect(activatedBy[i], fleet[i]!.label).toMatchObject(expected);
    }

    const usage = await report('mak-usage');
    expect(usage.rows).toEqual([
      expect.objectContaining({
        used: 10,
        limit: 12,
        installedOn: 5,
        activatedOn: 5,
        machines: names([0, 1, 2, 3, 4]),
      }),
    ]);
  });

  it('export (with secrets) → wipe the data dir → init → import: the five reports are identical', async () => {
    const reports = async () => {
      const out: Record<string, unknown> = {};
      for (const [name, extra] of [
        ['at-risk', ['--days', '30']],
        ['duplicate-cmid', []],
        ['mak-usage', []],
        ['unlicensed', []],
        ['by-authority', []],
      ] as const) {
        const r = await report(name, ...extra);
        out[name] = { report: r.report, rows: r.rows }; // all but generatedAt
      }
      return out;
    };
    const before = await reports();
    // The machine ids may be given anew by the import: compare all but them.
    const withoutIds = (rows: MachineRow[]) => rows.map((m) => ({ ...m, id: undefined }));
    const machinesBefore = withoutIds(await machines());

    // With the secrets, sealed under a passphrase: console.key goes with the data directory,
    // and without the agent tokens and product keys the restored console could reach no agent
    // (SECRET_MISSING) nor install its MAK. The export file lives outside the data directory.
    const exportFile = join(work, 'console-export.json');
    const exported = await cliJson<{ secrets: unknown; counts: { machines: number } }>(
      0,
      'console',
      'export',
      '--data-dir',
      dataDir,
      exportFile,
      '--with-secrets',
      '--passphrase-file',
      files.passphrase,
    );
    expect(exported.counts.machines).toBe(20);
    expect(readFileSync(exportFile, 'utf8')).not.toContain(mak);
    expect(readFileSync(exportFile, 'utf8')).not.toContain(TOKEN);

    rmSync(dataDir, { recursive: true, force: true });
    const init = await cli('console', 'init', '--data-dir', dataDir, '--admin-password-file', files.adminPassword);
    expect(init.code, init.stderr).toBe(0);
    const imported = await cliJson<{ machines: { added: number }; secretsMissing: { keys: number; machines: number } }>(
      0,
      'console',
      'import',
      '--data-dir',
      dataDir,
      exportFile,
      '--passphrase-file',
      files.passphrase,
    );
    expect(imported.machines.added).toBe(20);
    expect(imported.secretsMissing).toEqual({ keys: 0, machines: 0 });

    expect(await reports()).toEqual(before);
    expect(withoutIds(await machines())).toEqual(machinesBefore);

    // The restored console works: the agent tokens came back (every agent answers).
    const refreshed = await cliJson<{ results: Result[] }>(0, 'console', 'refresh', '--data-dir', dataDir, '--all');
    expect(refreshed.results.every((x) => x.ok && x.changed === false)).toBe(true);
  });
});
