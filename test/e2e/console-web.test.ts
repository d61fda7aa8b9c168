import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createAuthorityServer } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { ManualClock } from '@volact/core';
import { VolumeConsole, startConsoleServer, type ConsoleServer } from '@volact/console';
import { startSlice, type Slice } from './harness.js';
import { builtWebAssets } from './web-assets.js';

/**
 * The console's web UI in Debian's Chromium (playwright-core, no bundled browser): a real
 * authority, four real agents over real licence stores, the console's server on loopback with
 * the UI built by Vite for this test. Log in, store a MAK, refresh, install the key, proxy
 * activate with the progress view, read each report, download a CSV, log out.
 */
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'console-web-e2e-agent-token-0123456789';
const ADMIN_TOKEN = 'authority-admin-token-web-0123456789';
const USER = 'admin';
const PASSWORD = 'a long web ui password 42';
const MACHINES = ['pc-1', 'pc-2', 'pc-3', 'pc-4'];
/** An agent the console does not know yet: added from the UI, activated by a confirmation ID read over the phone. */
const PHONED = 'pc-5';

let slice: Slice;
let clock: ManualClock;
let admin: FastifyInstance;
let authorityUrl: string;
let mak: string;
let console_: VolumeConsole;
let server: ConsoleServer;
let browser: Browser;
let page: Page;
let work: string;
const agents = new Map<string, { address: string; app: FastifyInstance }>();
const serverLog: string[] = [];

const last5 = () => `…${mak.replace(/-/g, '').slice(-5)}`;

async function startJobFromMachines(button: string, fill?: (p: Page) => Promise<void>) {
  await page.getByRole('link', { name: 'Machines', exact: true }).click();
  await expect.poll(() => page.locator('table[aria-label="machines"] tbody tr').count()).toBe(4);
  await page.getByRole('checkbox', { name: 'select all' }).check();
  await expect.poll(() => page.getByTestId('selected-count').textContent()).toBe('4 of 4 selected');
  if (fill) await fill(page);
  await page.getByRole('button', { name: button, exact: true }).click();
  await page.waitForURL(/#\/jobs\/[0-9a-f]+$/);
}

/** Waits on the job page until it says finished; returns what the progress bar showed on the way. */
async function watchJob(): Promise<{ seen: string[]; status: string }> {
  const seen: string[] = [];
  const bar = page.getByRole('progressbar', { name: 'job progress' });
  const status = page.getByTestId('job-status');
  await bar.waitFor();
  const until = Date.now() + 30_000;
  while ((await status.getAttribute('data-finished')) !== 'true' && Date.now() < until) {
    seen.push(`${await bar.getAttribute('aria-valuenow')}/${await bar.getAttribute('aria-valuemax')}`);
    await page.waitForTimeout(50);
  }
  seen.push(`${await bar.getAttribute('aria-valuenow')}/${await bar.getAttribute('aria-valuemax')}`);
  return { seen, status: (await status.textContent()) ?? '' };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (Debian's Chromium)`);
  work = mkdtempSync(join(tmpdir(), 'volact-web-e2e-'));
  const built = builtWebAssets('console');

  clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
  slice = await startSlice(clock, { threshold: 1 });
  admin = createAuthorityServer(slice.authority, { adminToken: ADMIN_TOKEN, clock });
  await admin.listen({ host: '127.0.0.1', port: 0 });
  authorityUrl = `http://127.0.0.1:${(admin.server.address() as { port: number }).port}`;
  mak = (await slice.authority.mintKey({ type: 'mak', groups: ['office14'], limit: 10 })).key;

  for (const name of [...MACHINES, PHONED]) {
    const stateDir = join(work, 'machines', name);
    Licence.init({ stateDir, product: slice.product, hardwareId: `hw-${name}`, clock });
    const app = createAgentServer({ stateDir, adminToken: TOKEN, clock, timeoutMs: 5_000 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    agents.set(name, { address: `127.0.0.1:${(app.server.address() as { port: number }).port}`, app });
  }
  console_ = await VolumeConsole.create(join(work, 'console'), { admin: { user: USER, password: PASSWORD }, clock });
  await console_.addMachines(
    MACHINES.map((n) => agents.get(n)!.address),
    TOKEN,
    MACHINES,
  );
  const assets = await built;
  server = await startConsoleServer(console_, {
    listen: { host: '127.0.0.1', port: 0 },
    assetsDir: assets,
    clock,
    authority: { url: authorityUrl, adminToken: ADMIN_TOKEN },
    log: (line) => serverLog.push(line),
  });
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
  const context = await browser.newContext({ acceptDownloads: true, baseURL: server.url });
  page = await context.newPage();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await console_?.close();
  for (const a of agents.values()) await a.app.close();
  await admin?.close();
  await slice?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('the console web UI in Chromium', () => {
  it('logs in (a wrong password first), stores a MAK, refreshes, installs it and proxy-activates four machines', async () => {
    await page.goto('/');
    await page.getByLabel('User').fill(USER);
    await page.getByLabel('Password').fill('not the password at all');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('LOGIN_FAILED');

    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Machines' }).waitFor();
    const cookie = (await page.context().cookies()).find((c) => c.name === 'volact_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });

    // Listed with their badges: never read yet.
    const rows = page.locator('table[aria-label="machines"] tbody tr');
    await expect.poll(() => rows.count()).toBe(4);
    expect(await page.locator('table[aria-label="machines"] .badge[data-state="unknown"]').count()).toBe(4);

    // Key management: the MAK is stored; only its last five are ever shown.
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByLabel('Key', { exact: true }).fill(mak);
    await page.getByLabel('Name (optional)').fill('office-mak');
    await page.getByRole('button', { name: 'Add key' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain(`Stored mak ${last5()} as "office-mak"`);
    await expect.poll(() => page.locator('table[aria-label="keys"] tbody').textContent()).toContain(last5());
    expect(await page.content()).not.toContain(mak);

    // Refresh all four.
    await startJobFromMachines('Refresh');
    const refreshed = await watchJob();
    expect(refreshed.status).toContain('Finished: 4 ok, 0 failed');
    await startJobFromMachines('Install key', async (p) => {
      expect(await p.locator('.badge[data-state="initial-grace"]').count()).toBe(4);
      await p.getByLabel('key to install').selectOption('office-mak');
    });
    expect((await watchJob()).status).toContain('Finished: 4 ok, 0 failed');

    // Proxy activation against the real authority; the progress view runs to 4/4, every row ok.
    await startJobFromMachines('Proxy activate', async (p) => {
      await p.getByLabel('authority URL').fill(authorityUrl);
    });
    const proxy = await watchJob();
    expect(proxy.status).toContain('Finished: 4 ok, 0 failed');
    expect(proxy.seen.at(-1)).toBe('4/4');
    const results = page.locator('table[aria-label="job results"] tbody tr');
    expect(await results.count()).toBe(4);
    expect(await page.locator('table[aria-label="job results"] .result-ok').count()).toBe(4);
    expect(await page.locator('table[aria-label="job results"] .badge[data-state="licensed"]').count()).toBe(4);
    expect((await slice.authority.showKey(mak)).used).toBe(4);

    await page.getByRole('link', { name: 'Machines', exact: true }).click();
    await expect.poll(() => page.locator('table[aria-label="machines"] .badge[data-state="licensed"]').count()).toBe(4);
    // Filters: by state and by text.
    await page.getByLabel('state filter').selectOption('initial-grace');
    await expect.poll(() => rows.locator('td.empty').count()).toBe(1);
    await page.getByLabel('state filter').selectOption('licensed');
    await page.getByRole('searchbox').fill('pc-3');
    await expect.poll(() => rows.count()).toBe(1);

    // The machine's page: its history, newest first.
    await page.getByRole('link', { name: 'pc-3' }).click();
    await page.getByRole('heading', { name: /pc-3/ }).waitFor();
    const history = page.locator('table[aria-label="history"] tbody tr');
    await expect.poll(() => history.count()).toBeGreaterThanOrEqual(2);
    expect(await history.first().locator('.badge').getAttribute('data-state')).toBe('licensed');
    expect(await history.last().locator('.badge').getAttribute('data-state')).toBe('initial-grace');
  });

  it('opens each of the five reports with the charts, and downloads a CSV', async () => {
    await page.getByRole('link', { name: 'Reports' }).click();
    await page.getByRole('heading', { name: 'Reports' }).waitFor();
    await expect.poll(() => page.locator('figure[aria-label="state distribution"] canvas').count()).toBe(1);
    await expect.poll(() => page.locator('figure[aria-label="count over time"] canvas').count()).toBe(1);

    const tabs: [string, string][] = [
      ['At risk', 'at-risk'],
      ['Duplicate client machine IDs', 'duplicate-cmid'],
      ['MAK usage', 'mak-usage'],
      ['Unlicensed', 'unlicensed'],
      ['By authority', 'by-authority'],
    ];
    for (const [title, name] of tabs) {
      await page.getByRole('navigation', { name: 'reports' }).getByRole('link', { name: title }).click();
      await page.waitForURL(new RegExp(`#/reports/${name}$`));
      const table = page.locator(`table[aria-label="report ${name}"]`);
      await table.waitFor();
      await expect.poll(() => table.locator('tbody td').first().textContent()).not.toBe('Loading…');
      expect(await page.locator('figure canvas').count()).toBe(2);
    }
    // MAK usage: the authority's counters, read on request (the server has its admin token).
    await page.getByRole('link', { name: 'MAK usage' }).click();
    const usage = page.locator('table[aria-label="report mak-usage"] tbody tr');
    await expect.poll(() => usage.first().textContent()).toContain('office-mak');
    await page.getByRole('button', { name: 'Read counters from the authority' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Read the counters of 1 MAK');
    const cells = async () => (await usage.first().locator('td').allTextContents()).slice(0, 5);
    await expect.poll(cells).toEqual(['office-mak', last5(), '10', '4', '6']);

    await page.getByRole('link', { name: 'By authority' }).click();
    await expect.poll(() => page.locator('table[aria-label="report by-authority"] tbody tr').count()).toBe(4);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download CSV' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('volact-by-authority.csv');
    const csv = readFileSync(await download.path(), 'utf8');
    expect(csv.split('\r\n')).toEqual([
      'machine,address,group,state,activatedBy,authority,keyName,expiresAt',
      ...MACHINES.map(
        (n) => `"${n}","${agents.get(n)!.address}","office14","licensed","mak","${last5()}","office-mak",`,
      ),
      '',
    ]);
  });

  it('adds a machine from the UI, and activates it by a confirmation ID typed from a phone call, a wrong group marked', async () => {
    const address = agents.get(PHONED)!.address;
    await page.getByRole('link', { name: 'Machines', exact: true }).click();
    await page.getByRole('button', { name: 'Add machines', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Agent addresses').fill(address);
    await dialog.getByLabel('Enrolment token').fill(TOKEN);
    await dialog.getByLabel(/^Name/).fill(PHONED);
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain(`Added 1 machine: ${PHONED}`);
    await page.getByRole('searchbox').fill(PHONED);
    await page.getByRole('link', { name: PHONED, exact: true }).click();
    await page.getByRole('heading', { name: new RegExp(PHONED) }).waitFor();

    // Its own actions, followed on its page: read it, install the MAK.
    const actions = page.getByRole('group', { name: 'actions' });
    const line = page.getByTestId('job-line');
    await actions.getByRole('button', { name: 'Refresh', exact: true }).click();
    await expect.poll(() => line.textContent()).toBe('refresh finished: 1 ok, 0 failed.');
    await actions.getByLabel('key to install').selectOption('office-mak');
    await actions.getByRole('button', { name: 'Install key', exact: true }).click();
    await expect.poll(() => line.textContent()).toBe('install-key finished: 1 ok, 0 failed.');

    // Its installation ID read out to the authority's phone line; the confirmation ID read back.
    const machine = async () =>
      (await (await page.request.get(`/api/machines/${PHONED}`)).json()) as {
        history: { status: { installationId: string | null } }[];
      };
    await expect.poll(async () => (await machine()).history[0]?.status.installationId ?? null).not.toBeNull();
    const iid = (await machine()).history[0]!.status.installationId!;
    const groups = (await slice.authority.confirm(iid)).confirmationId.split('-');
    const form = page.getByRole('form', { name: 'confirmation ID by phone' });
    const box = (n: number) => form.getByRole('textbox', { name: `Group ${n}`, exact: true });
    const misheard = `${(Number(groups[6]![0]) + 1) % 10}${groups[6]!.slice(1)}`;
    for (let i = 0; i < groups.length; i++) await box(i + 1).fill(i === 6 ? misheard : groups[i]!);
    await expect.poll(() => box(7).getAttribute('aria-invalid')).toBe('true');
    expect(await form.getByRole('alert').textContent()).toContain('group 7 is wrong');
    const install = form.getByRole('button', { name: 'Install confirmation ID' });
    expect(await install.isDisabled()).toBe(true);
    await box(7).fill(groups[6]!);
    await install.click();
    await expect.poll(() => page.getByTestId('confirmation-result').textContent()).toContain('Installed');
    expect(await page.getByTestId('confirmation-result').locator('.badge').last().getAttribute('data-state')).toBe(
      'licensed',
    );
    await expect.poll(() => page.locator('h1 .badge').getAttribute('data-state')).toBe('licensed');
  });

  it("on a machine's page: KMS host caching off then on, Reactivate, Proxy activate and Collect installation ID", async () => {
    // Still on the phoned machine's page.
    const actions = page.getByRole('group', { name: 'actions' });
    const line = page.getByTestId('job-line');
    const caching = page.getByTestId('kms-host-caching');
    const stateDir = join(work, 'machines', PHONED);
    const agentCaching = () => Licence.open({ stateDir, clock }).status().discovery.caching;
    await expect.poll(() => caching.textContent()).toBe('on');
    const on = actions.getByRole('button', { name: 'KMS host caching on', exact: true });
    const off = actions.getByRole('button', { name: 'KMS host caching off', exact: true });
    // Already on: the button says so next to itself.
    expect(await on.isDisabled()).toBe(true);
    expect(await page.locator(`[id="${await on.getAttribute('aria-describedby')}"]`).textContent()).toBe(
      'KMS host caching is on already',
    );
    await off.click();
    await expect.poll(() => line.textContent()).toBe('set-kms-host-caching finished: 1 ok, 0 failed.');
    await expect.poll(() => caching.textContent()).toMatch(/^off/);
    expect(agentCaching()).toBe(false);
    expect(await off.isDisabled()).toBe(true);
    await on.click();
    await expect.poll(() => line.textContent()).toBe('set-kms-host-caching finished: 1 ok, 0 failed.');
    await expect.poll(() => caching.textContent()).toBe('on');
    expect(agentCaching()).toBe(true);

    // Reactivate: the confirmation ID typed from the phone call was stored; installed again without the authority.
    await actions.getByRole('button', { name: 'Reactivate', exact: true }).click();
    await expect.poll(() => line.textContent()).toMatch(/^reactivate finished/);
    const reactivated = (await line.textContent()) ?? '';
    // Proxy activate at the server's authority (the field holds it): the machine's IID confirmed again.
    expect(await actions.getByLabel('authority URL').inputValue()).toBe(authorityUrl);
    await actions.getByRole('button', { name: 'Proxy activate', exact: true }).click();
    await expect.poll(() => line.textContent()).toBe('proxy-activate finished: 1 ok, 0 failed.');
    expect(reactivated).toBe('reactivate finished: 1 ok, 0 failed.');
    // Emptied, the authority field says why Proxy activate cannot run.
    await actions.getByLabel('authority URL').fill('');
    const proxy = actions.getByRole('button', { name: 'Proxy activate', exact: true });
    expect(await proxy.isDisabled()).toBe(true);
    expect(await page.locator(`[id="${await proxy.getAttribute('aria-describedby')}"]`).textContent()).toContain(
      '--authority',
    );

    // Collect installation ID: the signed file, downloadable from here.
    await actions.getByRole('button', { name: 'Collect installation ID', exact: true }).click();
    await expect.poll(() => line.textContent()).toBe('collect-iids finished: 1 ok, 0 failed.');
    const link = page.getByTestId('iid-file').getByRole('link');
    const href = (await link.getAttribute('href')) ?? '';
    expect(href).toMatch(/^\/api\/proxy-files\/[\w-]+$/);
    const file = await page.request.get(href);
    expect(file.status()).toBe(200);
    expect(await file.text()).toContain((await console_.history(PHONED)).at(-1)!.status.installationId!);

    // The Machines page's bulk bar: caching off on every ticked machine, as one job.
    await page.getByRole('link', { name: 'Machines', exact: true }).click();
    await page.getByRole('searchbox').fill('');
    await expect.poll(() => page.locator('table[aria-label="machines"] tbody tr').count()).toBe(5);
    await page.getByRole('checkbox', { name: 'select all' }).check();
    await page.getByRole('button', { name: 'KMS host caching off', exact: true }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f]+$/);
    expect((await watchJob()).status).toContain('Finished: 5 ok, 0 failed');
    for (const name of [...MACHINES, PHONED]) {
      expect(Licence.open({ stateDir: join(work, 'machines', name), clock }).status().discovery.caching, name).toBe(
        false,
      );
    }
  });

  it('shows the operations log, and logging out ends the session', async () => {
    await page.getByRole('link', { name: 'Operations log' }).click();
    await expect
      .poll(() => page.locator('table[aria-label="operations"] tbody').textContent())
      .toContain('proxy-activate');

    const before = (await page.context().cookies()).find((c) => c.name === 'volact_session')!;
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Log in' }).waitFor();
    expect((await page.request.get('/api/machines')).status()).toBe(401);
    // The old cookie is dead on the server too, not only forgotten by the browser.
    const replay = await fetch(`${server.url}api/machines`, { headers: { cookie: `volact_session=${before.value}` } });
    expect(replay.status).toBe(401);
    // No secret in anything the server logged.
    const log = serverLog.join('\n');
    for (const secret of [PASSWORD, mak, TOKEN, ADMIN_TOKEN, before.value]) expect(log).not.toContain(secret);
  });
});
