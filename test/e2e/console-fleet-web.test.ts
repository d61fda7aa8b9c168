import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '@volact/core';
import {
  runVolact,
  serveConsole,
  startAgentFleet,
  startFleetAuthority,
  writeNoNetworkPreload,
  type AgentFleet,
  type FleetAuthority,
  type ServedConsole,
} from './console-fleet-env.js';
import { builtWebAssets } from './web-assets.js';

/**
 * Issue 15's acceptance, in Debian's Chromium against `volact console serve` (the built CLI, a
 * child process: restarted for real in the last flow): discover 20 agents by range; install a
 * MAK on 10, collect their installation IDs to a file, confirm that file with `volact authority
 * confirm-file` in another process that has no network at all (the authority serves none
 * either: only files cross), apply the confirmations: 10 licensed; move 5 to KMS against a real
 * KMS host; a viewer who cannot run jobs; the console killed mid-job and started again: the job
 * is interrupted with what it had done, the session survives.
 */
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'console-fleet-e2e-agent-token-0123456789';
const PASSWORD = 'a long fleet console password 42';
const VIEWER = 'viewer-vera';
const VIEWER_PASSWORD = 'the viewer password is long 7';
const AGENTS = 20;
/** KMS activation threshold of the group: the 5 machines moved to KMS are exactly enough. */
const THRESHOLD = 5;

let work: string;
let clock: ManualClock;
let authority: FleetAuthority;
let fleet: AgentFleet;
let consoleDir: string;
let served: ServedConsole;
let listen: string;
let browser: Browser;
let admin: BrowserContext;
let page: Page;
let mak: string;
let gvlk: string;
let assetsFlags: string[] = [];
const children: ChildProcess[] = [];

const names = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `fleet-${String(from + i).padStart(2, '0')}`);
const MAK_MACHINES = names(1, 10);
const KMS_MACHINES = names(1, 5);
/** expect.poll with room for 2 shared cores (its default gives up after 1 s). */
const poll = <T>(fn: () => T | Promise<T>, timeout = 10_000) => expect.poll(fn, { timeout, interval: 50 });
const last5 = (key: string) => `…${key.replace(/-/g, '').slice(-5)}`;

interface ApiMachine {
  name: string;
  displayName: string;
  address: string;
  hostName: string | null;
  state: string | null;
  method: string | null;
  installedKeyType: string | null;
  kmsHost: string | null;
}
interface ApiJob {
  id: string;
  operation: string;
  state: string;
  total: number;
  done: number;
  finished: boolean;
  outcome: string | null;
  proxyFileId: string | null;
  results: { machine: string; displayName?: string; ok: boolean; code: string | null; state: string | null }[];
  resultsTotal: number;
}

/** A GET of the JSON API with the browser context's session cookie. */
async function api<T>(context: BrowserContext, path: string): Promise<T> {
  const res = await context.request.get(new URL(path, served.url).toString());
  expect(res.status(), `${path}: ${await res.text()}`).toBe(200);
  return (await res.json()) as T;
}
const machinesNow = async () =>
  (await api<{ machines: ApiMachine[] }>(admin, '/api/machines?limit=500&sort=name')).machines;
const byName = (machines: ApiMachine[]) => new Map(machines.map((m) => [m.displayName, m]));

async function logIn(p: Page, user: string, password: string): Promise<void> {
  await p.goto(served.url);
  await p.getByLabel('User').fill(user);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.getByRole('heading', { name: 'Machines' }).waitFor();
}

const machineRows = () => page.locator('table[aria-label="machines"] tbody tr');

async function openMachines(): Promise<void> {
  await page.getByRole('navigation', { name: 'main' }).getByRole('link', { name: 'Machines', exact: true }).click();
  await page.getByRole('heading', { name: 'Machines' }).waitFor();
  await poll(() => machineRows().count()).toBeGreaterThanOrEqual(AGENTS);
}

/** Ticks exactly these machines (by the name the table shows) on the machines page. */
async function selectMachines(list: readonly string[]): Promise<void> {
  await openMachines();
  const clear = page.getByRole('button', { name: 'Clear selection' });
  if (await clear.isVisible()) await clear.click();
  for (const name of list) await page.getByRole('checkbox', { name: `select ${name}`, exact: true }).check();
  await poll(() => page.getByTestId('selected-count').textContent()).toMatch(new RegExp(`^${list.length} `));
}

/** Follows the job the last click started until it ends; returns it as the API has it, and the progress seen. */
async function followJob(): Promise<{ job: ApiJob; seen: string[] }> {
  await page.waitForURL(/#\/jobs\/[0-9a-f-]+$/);
  const id = /#\/jobs\/([0-9a-f-]+)$/.exec(page.url())![1]!;
  const bar = page.getByRole('progressbar', { name: 'job progress' });
  const status = page.getByTestId('job-status');
  await bar.waitFor();
  const seen: string[] = [];
  const until = Date.now() + 30_000;
  while ((await status.getAttribute('data-finished')) !== 'true' && Date.now() < until) {
    seen.push(`${await bar.getAttribute('aria-valuenow')}/${await bar.getAttribute('aria-valuemax')}`);
    await page.waitForTimeout(50);
  }
  seen.push(`${await bar.getAttribute('aria-valuenow')}/${await bar.getAttribute('aria-valuemax')}`);
  const job = await api<ApiJob>(admin, `/api/jobs/${id}?limit=500`);
  return { job, seen };
}

/** Starts a bulk action on the selected machines from the bulk bar and follows its job. */
async function runOnSelected(button: string, fill?: () => Promise<unknown>) {
  if (fill) await fill();
  await page.getByRole('button', { name: button, exact: true }).click();
  return followJob();
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (Debian's Chromium)`);
  work = mkdtempSync(join(tmpdir(), 'volact-fleet-e2e-'));
  // In parallel: the UI's build, the console's data directory (made by the CLI as an operator
  // would, with its first admin), and the authority and agents here.
  const built = builtWebAssets('console');
  consoleDir = join(work, 'console');
  const passwordFile = join(work, 'admin.password');
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  const init = runVolact(['console', 'init', '--data-dir', consoleDir, '--admin-password-file', passwordFile]);

  clock = new ManualClock(Date.now());
  authority = await startFleetAuthority(work, clock, THRESHOLD);
  mak = (await authority.authority.mintKey({ type: 'mak', groups: ['office14'], limit: 20 })).key;
  gvlk = authority.product.gvlk;
  fleet = await startAgentFleet(work, authority.product, clock, TOKEN, AGENTS);
  const initialised = await init;
  expect(initialised.code, initialised.stderr).toBe(0);

  assetsFlags = ['--assets-dir', await built];
  served = await serveConsole(children, consoleDir, '127.0.0.1:0', ...assetsFlags);
  listen = new URL(served.url).host;

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  admin = await browser.newContext({ acceptDownloads: true, baseURL: served.url });
  admin.setDefaultTimeout(10_000);
  page = await admin.newPage();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  await Promise.all(
    children
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map((c) => new Promise<void>((resolve) => c.once('exit', () => resolve()))),
  );
  await fleet?.close();
  await authority?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('the console runs a fleet from Chromium (issue 15)', () => {
  it('discovers 20 agents by a port range from the UI: progress, the 20 found, listed by host name', async () => {
    await logIn(page, 'admin', PASSWORD);
    await poll(() => machineRows().locator('td.empty').count()).toBe(1);

    await page.getByRole('button', { name: 'Discover', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Range').fill(fleet.range);
    await dialog.getByLabel('Enrolment token').fill(TOKEN);
    // The address after the agents never answers: the sweep waits for it, and shows how far it got.
    await dialog.getByRole('button', { name: 'Discover', exact: true }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]+$/);
    const bar = page.getByRole('progressbar', { name: 'job progress' });
    const status = page.getByTestId('job-status');
    let partWay = '';
    for (const until = Date.now() + 10_000; Date.now() < until; await page.waitForTimeout(50)) {
      const [now, max] = [await bar.getAttribute('aria-valuenow'), await bar.getAttribute('aria-valuemax')];
      if (Number(now) > 0 && Number(now) < Number(max)) partWay = `${now}/${max}`;
      if (partWay || (await status.getAttribute('data-finished')) === 'true') break;
    }
    expect
      .soft(partWay, 'the discover job shows how far it got while it probes')
      .toMatch(new RegExp(`^\\d+/${fleet.probed}$`));
    const { job, seen } = await followJob();
    expect(job).toMatchObject({ operation: 'discover', state: 'finished' });
    expect(job.outcome).toMatch(/\b20\b/);
    // It ends where it went: every address probed (not the count of its result rows).
    expect.soft(job).toMatchObject({ total: fleet.probed, done: fleet.probed });
    expect.soft(seen.at(-1)).toBe(`${fleet.probed}/${fleet.probed}`);
    const jobPage = page.url();
    // The machines table names them as people know them, not by address.
    await openMachines();
    await poll(() => machineRows().count()).toBe(AGENTS);
    const shown = await page.locator('table[aria-label="machines"] tbody tr a.machine-name').allTextContents();
    expect(shown.sort()).toEqual(names(1, AGENTS));
    const listed = await machinesNow();
    expect(listed.map((m) => m.hostName).sort()).toEqual(names(1, AGENTS));
    expect(listed.every((m) => m.state === 'initial-grace')).toBe(true);

    // The job's result list: every agent found, by its host name too.
    await page.goto(jobPage);
    await page.locator('table[aria-label="job results"] tbody tr').first().waitFor();
    const found = job.results.filter((r) => r.ok).map((r) => r.displayName ?? r.machine);
    expect.soft(found.sort()).toEqual(names(1, AGENTS));
    const resultsText = await page.locator('table[aria-label="job results"]').textContent();
    expect.soft(names(1, AGENTS).filter((name) => !resultsText?.includes(name))).toEqual([]);
  });

  it('installs a MAK on 10, collects their installation IDs to a file, confirms it in a process with no network, applies it: 10 licensed', async () => {
    // The keys, stored from the Keys page (the GVLK for the KMS move later).
    await page.getByRole('link', { name: 'Keys' }).click();
    for (const [key, name] of [
      [mak, 'office-mak'],
      [gvlk, 'office-gvlk'],
    ] as const) {
      await page.getByLabel('Key', { exact: true }).fill(key);
      await page.getByLabel('Name (optional)').fill(name);
      await page.getByRole('button', { name: 'Add key' }).click();
      await poll(() => page.getByRole('status').textContent()).toContain(`as "${name}"`);
    }

    await selectMachines(MAK_MACHINES);
    const installed = await runOnSelected('Install key', () =>
      page.getByLabel('key to install').selectOption('office-mak'),
    );
    expect(installed.job).toMatchObject({ operation: 'install-key', state: 'finished', done: 10 });
    expect(installed.job.results.filter((r) => r.ok)).toHaveLength(10);
    // Job rows name the machines as people know them too.
    expect(installed.job.results.map((r) => r.displayName).sort()).toEqual(MAK_MACHINES);
    expect(await page.locator('table[aria-label="job results"] tbody').textContent()).toContain('fleet-07');

    // Step 1, on the isolated side: the installation IDs of the 10, as a file downloaded from the UI.
    await selectMachines(MAK_MACHINES);
    const collected = await runOnSelected('Collect installation IDs');
    expect(collected.job).toMatchObject({ operation: 'collect-iids', state: 'finished', done: 10 });
    expect(collected.job.proxyFileId).toEqual(expect.any(String));
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: /^Download volact-iids-/ }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`volact-iids-${collected.job.proxyFileId}.json`);
    const iidFile = join(work, 'carried', 'iids.json');
    await download.saveAs(iidFile);
    const iids = JSON.parse(readFileSync(iidFile, 'utf8')) as {
      format: string;
      entries: { machine: string; installationId: string; installedKey: string }[];
      signature: string;
    };
    expect(iids.format).toBe('volact-iid-file/1');
    expect(iids.entries.map((e) => e.machine).sort()).toEqual(MAK_MACHINES);
    expect(iids.entries.every((e) => e.installedKey === last5(mak))).toBe(true);
    // No secret leaves on the disk: not the key, not the agents' token.
    const iidText = readFileSync(iidFile, 'utf8');
    for (const secret of [mak, mak.replace(/-/g, ''), TOKEN]) expect(iidText).not.toContain(secret);
    expect((await authority.authority.showKey(mak)).used).toBe(0);

    // Step 2, on the connected side: another process, whose every network call fails (and says
    // so), reads the authority's data directory; the authority itself listens nowhere.
    const cidFile = join(work, 'carried', 'cids.json');
    const noNetwork = writeNoNetworkPreload(work);
    // The same file edited on the way (one installation ID changed) is refused, naming why.
    const edited = join(work, 'carried', 'iids-edited.json');
    const first = iids.entries[0]!.installationId;
    const swapped = `${first.slice(0, -1)}${first.endsWith('1') ? '2' : '1'}`;
    writeFileSync(edited, iidText.replace(first, swapped));
    const [confirmed, tampered, control] = await Promise.all([
      runVolact(['authority', 'confirm-file', iidFile, '--out', cidFile, '--data-dir', authority.dataDir], {
        preload: noNetwork,
      }),
      runVolact(
        ['authority', 'confirm-file', edited, '--out', join(work, 'edited-cids.json'), '--data-dir', authority.dataDir],
        { preload: noNetwork },
      ),
      // (The preload does cut the network: the same command told to use an authority URL fails so.)
      runVolact(
        ['authority', 'confirm-file', iidFile, '--out', join(work, 'control.json'), '--url', 'http://127.0.0.1:9'],
        { preload: noNetwork, until: /NETWORK-ATTEMPT/ },
      ),
    ]);
    expect(confirmed.code, confirmed.stdout + confirmed.stderr).toBe(0);
    expect(confirmed.stderr).not.toContain('NETWORK-ATTEMPT');
    expect(tampered.code).not.toBe(0);
    expect(tampered.stderr).toContain('PROXY_FILE_TAMPERED');
    expect(existsSync(join(work, 'edited-cids.json'))).toBe(false);
    expect(control.code).not.toBe(0);
    expect(control.stderr).toContain('NETWORK-ATTEMPT');
    const cids = JSON.parse(readFileSync(cidFile, 'utf8')) as {
      format: string;
      results: { installationId: string; ok: boolean; confirmationId?: string }[];
    };
    expect(cids.format).toBe('volact-cid-file/1');
    expect(cids.results).toHaveLength(10);
    expect(cids.results.every((r) => r.ok && typeof r.confirmationId === 'string')).toBe(true);
    expect((await authority.authority.showKey(mak)).used).toBe(10);
    // Still nothing licensed on the isolated side: the confirmations have not come back yet.
    expect([...byName(await machinesNow()).values()].filter((m) => m.state === 'licensed')).toHaveLength(0);

    // Step 3, back on the isolated side: the confirmation file uploaded in the UI.
    await openMachines();
    await page.getByLabel('confirmation file').setInputFiles(cidFile);
    await page.getByRole('button', { name: 'Apply confirmations', exact: true }).click();
    const applied = await followJob();
    expect(applied.job).toMatchObject({ operation: 'apply-confirmations', state: 'finished', done: 10 });
    expect(applied.job.results.filter((r) => r.ok)).toHaveLength(10);

    await openMachines();
    await page.getByLabel('state filter').selectOption('licensed');
    await poll(() => machineRows().count()).toBe(10);
    expect(await page.locator('table[aria-label="machines"] .badge[data-state="licensed"]').count()).toBe(10);
    const machines = byName(await machinesNow());
    for (const name of MAK_MACHINES) expect(machines.get(name)).toMatchObject({ state: 'licensed', method: 'mak' });
    for (const name of names(11, AGENTS)) expect(machines.get(name)?.state).toBe('initial-grace');
    await page.getByLabel('state filter').selectOption('');
  });

  it('moves 5 of them to KMS from the UI: the GVLK, the KMS host, activation against a real host', async () => {
    await selectMachines(KMS_MACHINES);
    const gvlkJob = await runOnSelected('Install key', () =>
      page.getByLabel('key to install').selectOption('office-gvlk'),
    );
    expect(gvlkJob.job).toMatchObject({ operation: 'install-key', state: 'finished', done: 5 });
    expect(gvlkJob.job.results.every((r) => r.ok)).toBe(true);

    await selectMachines(KMS_MACHINES);
    const hostJob = await runOnSelected('Set KMS host', () =>
      page.getByLabel('KMS host', { exact: true }).fill(authority.hostAddress()),
    );
    expect(hostJob.job).toMatchObject({ operation: 'set-kms-host', state: 'finished', done: 5 });
    expect(hostJob.job.results.every((r) => r.ok)).toBe(true);

    // The group's threshold is 5: in the first round the host counts the 5 clients, and only the
    // request that brings the count to 5 is licensed (the reference's "count N of 5" below it).
    await selectMachines(KMS_MACHINES);
    const first = await runOnSelected('Activate');
    expect(first.job).toMatchObject({ operation: 'activate', state: 'finished', done: 5 });
    expect(first.job.results.filter((r) => r.ok)).toHaveLength(1);
    expect(first.job.results.filter((r) => !r.ok).map((r) => r.code)).toEqual(Array(4).fill('KMS_THRESHOLD_NOT_MET'));
    // The next round: the count is met, all five are licensed by the host.
    await selectMachines(KMS_MACHINES);
    const second = await runOnSelected('Activate');
    expect(second.job.results.filter((r) => r.ok)).toHaveLength(5);
    expect(authority.host.counts()).toEqual([expect.objectContaining({ name: 'office14', count: 5, threshold: 5 })]);

    await openMachines();
    await page.getByLabel('method filter').selectOption('kms');
    await poll(() => machineRows().count()).toBe(5);
    const machines = byName(await machinesNow());
    for (const name of KMS_MACHINES) {
      expect(machines.get(name)).toMatchObject({
        state: 'licensed',
        method: 'kms',
        installedKeyType: 'gvlk',
        kmsHost: authority.hostAddress(),
      });
    }
    for (const name of names(6, 10)) expect(machines.get(name)).toMatchObject({ state: 'licensed', method: 'mak' });
    await page.getByLabel('method filter').selectOption('');
  });

  it('adds a viewer on the Users page: the viewer sees the machines, every job button disabled saying why, and POST /api/jobs is ROLE_FORBIDDEN', async () => {
    await page.getByRole('navigation', { name: 'main' }).getByRole('link', { name: 'Users' }).click();
    await page.getByRole('heading', { name: /Users/ }).waitFor();
    const form = page.getByRole('form', { name: 'add a user' });
    await form.getByLabel('User name').fill(VIEWER);
    await form.getByLabel('Password', { exact: true }).fill(VIEWER_PASSWORD);
    await form.getByRole('combobox').selectOption('viewer');
    await form.getByRole('button', { name: 'Add user' }).click();
    await poll(() => page.getByRole('status').textContent()).toContain(`Added ${VIEWER}`);
    await poll(() => page.getByLabel(`role of ${VIEWER}`).inputValue()).toBe('viewer');

    const viewer = await browser.newContext({ baseURL: served.url });
    viewer.setDefaultTimeout(10_000);
    try {
      const vp = await viewer.newPage();
      await logIn(vp, VIEWER, VIEWER_PASSWORD);
      await poll(() => vp.locator('table[aria-label="machines"] tbody tr').count()).toBe(AGENTS);
      await vp.getByRole('checkbox', { name: 'select all on this page' }).check();
      for (const name of ['Discover', 'Refresh', 'Install key', 'Activate', 'Collect installation IDs']) {
        const button = vp.getByRole('button', { name, exact: true });
        expect(await button.isDisabled(), name).toBe(true);
        // The reason is shown, and is the button's accessible description.
        const describedBy = await button.getAttribute('aria-describedby');
        expect(describedBy, name).toBeTruthy();
        const reason = vp.locator(`[id="${describedBy}"]`);
        expect(await reason.isVisible()).toBe(true);
        expect(await reason.textContent()).toMatch(/viewers cannot/i);
      }
      // The server says the same to a forged request with the viewer's session.
      const post = (path: string, data: unknown) =>
        viewer.request.post(new URL(path, served.url).toString(), {
          headers: { 'x-volact-request': '1', 'content-type': 'application/json' },
          data: data as Record<string, unknown>,
        });
      const job = await post('/api/jobs', { operation: 'refresh', machines: 'all' });
      expect(job.status()).toBe(403);
      expect(((await job.json()) as { error: { code: string } }).error.code).toBe('ROLE_FORBIDDEN');
      // Nor can the viewer make itself an admin, or add a user.
      const promote = await post(`/api/users/${VIEWER}/role`, { role: 'admin' });
      expect(promote.status()).toBe(403);
      const add = await post('/api/users', { user: 'sneaky', password: 'another long password', role: 'admin' });
      expect(add.status()).toBe(403);
      const list = await api<{ users: { name: string; role: string }[] }>(admin, '/api/users');
      expect(list.users.map((u) => [u.name, u.role]).sort()).toEqual([
        ['admin', 'admin'],
        [VIEWER, 'viewer'],
      ]);
    } finally {
      await viewer.close();
    }
  });

  it('the console killed mid-job and started again: the job is interrupted with what it had done; the session survives', async () => {
    // Five agents stop answering (their calls are held): a refresh of the 20 stops at 15 of 20.
    const slow = fleet.agents.slice(AGENTS - 5);
    for (const a of slow) a.hold();
    const callsBefore = slow.map((a) => a.calls);
    await openMachines();
    await page.getByRole('checkbox', { name: 'select all on this page' }).check();
    await poll(() => page.getByTestId('selected-count').textContent()).toMatch(/^20 /);
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]+$/);
    const jobId = /#\/jobs\/([0-9a-f-]+)$/.exec(page.url())![1]!;
    const bar = page.getByRole('progressbar', { name: 'job progress' });
    await poll(() => bar.getAttribute('aria-valuenow'), 15_000).toBe('15');
    expect(await page.getByTestId('job-status').getAttribute('data-finished')).toBe('false');
    // The job waits on the held agents (it called them)…
    expect(slow.some((a, i) => a.calls > callsBefore[i]!)).toBe(true);
    // …and the 15 results are on disk: results are written in batches at most 200 ms apart.
    await page.waitForTimeout(600);

    // SIGKILL: no chance to write anything on the way out.
    const cookie = (await admin.cookies()).find((c) => c.name === 'volact_session')!;
    served.child.kill('SIGKILL');
    await served.exited;
    for (const a of slow) a.release();

    served = await serveConsole(children, consoleDir, listen, ...assetsFlags);
    // The same session cookie is still good: sessions are kept in the store.
    const session = await fetch(new URL('/api/session', served.url), {
      headers: { cookie: `volact_session=${cookie.value}` },
    });
    expect(session.status).toBe(200);
    expect(await session.json()).toMatchObject({ user: 'admin', role: 'admin' });

    // The Jobs page, without logging in again: the refresh is interrupted, 15 of 20 done.
    await page.goto(new URL('/#/jobs', served.url).toString());
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    const row = page.locator('table[aria-label="jobs"] tbody tr', { hasText: 'refresh' }).first();
    await poll(() => row.textContent()).toContain('interrupted');
    expect(await row.textContent()).toContain('15 / 20');
    const job = await api<ApiJob>(admin, `/api/jobs/${jobId}?limit=500`);
    expect(job).toMatchObject({ operation: 'refresh', state: 'interrupted', finished: true, total: 20, done: 15 });
    expect(job.outcome).toMatch(/15/);
    expect(
      job.results
        .filter((r) => r.ok)
        .map((r) => r.displayName ?? r.machine)
        .sort(),
    ).toEqual(names(1, 15));
    // Its page says so too.
    await row.getByRole('link').first().click();
    await poll(() => page.getByTestId('job-status').textContent()).toMatch(/interrupted/i);
    expect(await page.locator('table[aria-label="job results"] tbody tr').count()).toBe(15);

    // The jobs before the restart are still listed (jobs persist), newest first.
    const jobs = await api<{ jobs: ApiJob[] }>(admin, '/api/jobs');
    expect(jobs.jobs.map((j) => j.operation)).toEqual([
      'refresh',
      'activate',
      'activate',
      'set-kms-host',
      'install-key',
      'apply-confirmations',
      'collect-iids',
      'install-key',
      'discover',
    ]);
  });
});
