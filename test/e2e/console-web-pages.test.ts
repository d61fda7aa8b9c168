import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '@volact/core';
import { VolumeConsole, startConsoleServer, type ConsoleServer } from '@volact/console';
import { builtWebAssets } from './web-assets.js';

/**
 * The console web UI's pages other than Machines, in Debian's Chromium (playwright-core): the
 * empty chart state, a viewer added on the Users page who sees every change control disabled
 * with the reason (and whose POST the server refuses), the export / import round trip through
 * the passphrase dialog, the reports' human headers against the CSV's machine names, and every
 * page at 360 px wide without a page-level horizontal scroll.
 */
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'console-web-pages-agent-token-0123456789';
const USER = 'admin';
const PASSWORD = 'a long web ui password 42';
const VIEWER = 'viewer-1';
const VIEWER_PASSWORD = 'a viewer password 4242';
const PASSPHRASE = 'the export passphrase 77';
/** A job id as the server makes them (hex). */
const INTERRUPTED = '0e2e000000000037';
const VIEWER_REASON = 'viewers cannot change anything: ask a console admin';

let clock: ManualClock;
let console_: VolumeConsole;
let server: ConsoleServer;
let browser: Browser;
let admin: BrowserContext;
let page: Page;
let work: string;

/** expect.poll with room for a loaded machine (a password hash, a scrypt passphrase, two cores shared). */
const eventually = <T>(fn: () => T | Promise<T>, options: { timeout?: number } = {}) =>
  expect.poll(fn, { timeout: 15_000, ...options });

async function login(p: Page, user: string, password: string): Promise<void> {
  await p.goto('/');
  await p.getByLabel('User').fill(user);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.getByRole('heading', { name: 'Machines' }).waitFor();
}

async function open(p: Page, route: string, heading: string | RegExp): Promise<void> {
  await p.goto(`/#${route}`);
  await p.getByRole('heading', { name: heading, level: 1 }).first().waitFor();
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (Debian's Chromium)`);
  work = mkdtempSync(join(tmpdir(), 'volact-web-pages-'));
  const built = builtWebAssets('console');
  clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
  console_ = await VolumeConsole.create(join(work, 'console'), { admin: { user: USER, password: PASSWORD }, clock });
  const assets = await built;
  server = await startConsoleServer(console_, { listen: { host: '127.0.0.1', port: 0 }, assetsDir: assets, clock });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  });
  admin = await browser.newContext({ acceptDownloads: true, baseURL: server.url });
  page = await admin.newPage();
  await login(page, USER, PASSWORD);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await console_?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the console web UI pages in Chromium', () => {
  it('says what to do instead of blank charts: no machines, then machines never read', async () => {
    await open(page, '/reports', 'Reports');
    const empty = page.getByTestId('charts-empty');
    await eventually(() => empty.textContent()).toContain('No machines yet');
    expect(await empty.textContent()).toContain('Add machines on Machines');
    expect(await page.locator('canvas').count()).toBe(0);

    // Three machines whose agents never answered (closed loopback ports): listed, never read.
    await console_.addMachines(['127.0.0.1:9', '127.0.0.1:13', '127.0.0.1:17'], TOKEN, ['pc-a', 'pc-b', 'pc-c']);
    await page.reload();
    await eventually(() => empty.textContent()).toContain('No machine has been read yet');
    expect(await empty.textContent()).toContain('3 machines are listed but never read');
  });

  it('shows the reports’ human column names while the CSV keeps the machine names', async () => {
    await open(page, '/reports/by-authority', 'Reports');
    const table = page.locator('table[aria-label="report by-authority"]');
    await eventually(() => table.locator('thead th').count()).toBe(8);
    const headers = (await table.locator('thead th').allTextContents()).map((h) => h.trim());
    expect(headers).toContain('Machine');
    expect(headers).toContain('Agent address');
    expect(headers).not.toContain('address');
    const csv = await page.request.get('/api/reports/by-authority.csv');
    expect(csv.status()).toBe(200);
    const header = (await csv.text()).split(/\r?\n/)[0]!.split(',');
    expect(header).toContain('machine');
    expect(header).toContain('address');
    expect(header).not.toContain('Agent address');
    // The machines were never read: the server's total, and the table says so.
    await eventually(() => page.getByText(/^0 rows · generated/).count()).toBe(1);
    expect(await table.locator('td.empty').textContent()).toBe('Nothing to report.');
    // MAK counters without an authority admin token: the button says why it cannot be used.
    await open(page, '/reports/mak-usage', 'Reports');
    const counters = page.getByRole('button', { name: 'Read counters from the authority' });
    expect(await counters.isDisabled()).toBe(true);
    const why = await counters.getAttribute('aria-describedby');
    expect(await page.locator(`[id="${why}"]`).textContent()).toContain('--admin-token-file');
  });

  it('adds a viewer on the Users page; a name already taken is shown at the user name field', async () => {
    await open(page, '/users', 'Users');
    await page.getByLabel('User name').fill(VIEWER);
    await page.getByLabel('Password', { exact: true }).fill('short');
    // Too short: the button says why before anything is sent.
    const add = page.getByRole('button', { name: 'Add user' });
    expect(await add.isDisabled()).toBe(true);
    expect(await page.locator(`[id="${await add.getAttribute('aria-describedby')}"]`).textContent()).toContain(
      '12 characters',
    );
    await page.getByLabel('Password', { exact: true }).fill(VIEWER_PASSWORD);
    await page.getByLabel('Role', { exact: true }).selectOption('viewer');
    await add.click();
    await eventually(() => page.getByRole('status').textContent()).toContain(`Added ${VIEWER} (viewer)`);
    const rows = page.locator('table[aria-label="users"] tbody tr');
    await eventually(() => rows.count()).toBe(2);
    expect(await page.getByLabel(`role of ${VIEWER}`).inputValue()).toBe('viewer');
    expect((await console_.listUsers()).map((u) => [u.name, u.role])).toContainEqual([VIEWER, 'viewer']);

    // The same name again: the error sits under the user name field.
    await page.getByLabel('User name').fill(VIEWER);
    await page.getByLabel('Password', { exact: true }).fill(VIEWER_PASSWORD);
    await add.click();
    const nameField = page.getByLabel('User name');
    await eventually(() => nameField.getAttribute('aria-describedby')).toBeTruthy();
    expect(await page.locator(`[id="${await nameField.getAttribute('aria-describedby')}"]`).textContent()).toContain(
      `user: a console user named "${VIEWER}" already exists`,
    );
    // The last admin cannot be removed: the button says why.
    const removeAdmin = page.getByRole('button', { name: `remove ${USER}` });
    expect(await removeAdmin.isDisabled()).toBe(true);
  });

  it('a viewer sees every change control disabled with the reason, and the server refuses its POST', async () => {
    const context = await browser.newContext({ baseURL: server.url });
    const viewer = await context.newPage();
    try {
      await login(viewer, VIEWER, VIEWER_PASSWORD);
      // Users is not in a viewer's menu.
      expect(await viewer.getByRole('navigation', { name: 'main' }).getByRole('link', { name: 'Users' }).count()).toBe(
        0,
      );
      for (const [route, heading, button] of [
        ['/jobs', 'Jobs', 'Refresh every machine'],
        ['/keys', 'Product keys', 'Add key'],
        ['/transfer', 'Export / import', 'Export'],
      ] as const) {
        await open(viewer, route, heading);
        const b = viewer.getByRole('button', { name: button, exact: true });
        await b.waitFor();
        expect(await b.isDisabled(), `${route} ${button}`).toBe(true);
        const described = await b.getAttribute('aria-describedby');
        expect(described, `${route} ${button}`).toBeTruthy();
        const reason = viewer.locator(`[id="${described}"]`);
        expect(await reason.isVisible()).toBe(true);
        expect(await reason.textContent()).toBe(VIEWER_REASON);
      }
      // No key yet: the Keys page says what to do instead of an empty table.
      await open(viewer, '/keys', 'Product keys');
      expect(await viewer.getByTestId('keys-empty').textContent()).toContain('No key stored yet');
      // The UI is not the guard: the server answers 403 ROLE_FORBIDDEN to the viewer's POST.
      const answer = await viewer.evaluate(async () => {
        const res = await fetch('/api/jobs', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-volact-request': '1' },
          body: JSON.stringify({ operation: 'refresh', machines: 'all' }),
        });
        return { status: res.status, body: (await res.json()) as { error?: { code?: string } } };
      });
      expect(answer.status).toBe(403);
      expect(answer.body.error?.code).toBe('ROLE_FORBIDDEN');
    } finally {
      await context.close();
    }
  });

  it('runs a job from the Jobs page; its rows show the machines as of the job', async () => {
    await open(page, '/jobs', 'Jobs');
    await page.getByRole('button', { name: 'Refresh every machine' }).click();
    await page.waitForURL(/#\/jobs\/[^/]+$/);
    const status = page.getByTestId('job-status');
    await eventually(() => status.getAttribute('data-finished'), { timeout: 30_000 }).toBe('true');
    const rows = page.locator('table[aria-label="job results"] tbody tr');
    expect(await rows.count()).toBe(3);
    // Each row names the machine as people know it; the agents never answered: no answer, not "never read".
    expect(await rows.allTextContents()).toEqual(
      expect.arrayContaining([expect.stringContaining('pc-a'), expect.stringContaining('pc-b')]),
    );
    expect(await page.locator('table[aria-label="job results"]').textContent()).not.toContain('never read');
    await open(page, '/jobs', 'Jobs');
    await eventually(() => page.locator('table[aria-label="jobs"] [data-job-state]').count()).toBe(1);

    // A discover job: the silent addresses are counted in its outcome line (no row for them).
    const started = await page.evaluate(async (token) => {
      const res = await fetch('/api/jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-volact-request': '1' },
        body: JSON.stringify({ operation: 'discover', discover: { addresses: ['127.0.0.1:19'], token } }),
      });
      return ((await res.json()) as { job: { id: string } }).job.id;
    }, TOKEN);
    await open(page, `/jobs/${started}`, /Job: discover/);
    await eventually(() => status.getAttribute('data-finished'), { timeout: 30_000 }).toBe('true');
    expect(await page.getByTestId('job-outcome').textContent()).toBe('probed 1: 0 agents, 0 refused, 1 silent');

    // The operations log, filtered by the server: the failed refresh, the machines added, one by text.
    await open(page, '/log', 'Operations log');
    const log = page.locator('table[aria-label="operations"] tbody tr');
    const range = page.getByTestId('operations-range');
    await page.getByLabel('operation filter').fill('refresh');
    await page.getByLabel('outcome filter').selectOption('failed');
    await eventually(() => range.textContent()).toBe('1–1 of 1');
    expect(await log.first().textContent()).toContain('0 read, 3 failed');
    await page.getByLabel('outcome filter').selectOption('ok');
    await eventually(() => range.textContent()).toBe('0–0 of 0');
    expect(await log.first().textContent()).toBe('Nothing logged matches these filters.');
    await page.getByLabel('outcome filter').selectOption('');
    await page.getByLabel('operation filter').fill('machine add');
    await eventually(() => range.textContent()).toBe('1–3 of 3');
    await page.getByLabel('search the log').fill('pc-b');
    await eventually(() => range.textContent()).toBe('1–1 of 1');
    expect(await log.first().textContent()).toContain('pc-b');
  });

  it('exports with secrets under a passphrase and imports the file back (a wrong passphrase at its field)', async () => {
    await open(page, '/transfer', 'Export / import');
    await page.getByLabel(/With secrets/).check();
    await page.getByRole('button', { name: 'Export with secrets…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Passphrase for the export’s secrets' });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain('whoever has the file and the passphrase has the keys');
    await dialog.getByLabel('Passphrase', { exact: true }).fill('too short');
    expect(await dialog.getByRole('button', { name: 'Export' }).isDisabled()).toBe(true);
    await dialog.getByLabel('Passphrase', { exact: true }).fill(PASSPHRASE);
    await dialog.getByLabel('Passphrase again').fill(PASSPHRASE);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      dialog.getByRole('button', { name: 'Export' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('volact-console-export.json');
    const file = await download.path();
    const exported = JSON.parse(readFileSync(file, 'utf8')) as { secrets: unknown; machines: unknown[] };
    expect(exported.secrets).not.toBeNull();
    expect(exported.machines).toHaveLength(3);
    expect(readFileSync(file, 'utf8')).not.toContain(TOKEN);

    await page.locator('input[type="file"]').setInputFiles(file);
    await eventually(() => page.getByText('holds secrets').count()).toBe(1);
    await page.getByRole('button', { name: 'Import…' }).click();
    const ask = page.getByRole('dialog', { name: 'Passphrase of the export' });
    await ask.getByLabel('Passphrase', { exact: true }).fill('not the passphrase at all');
    await ask.getByRole('button', { name: 'Import' }).click();
    const field = ask.getByLabel('Passphrase', { exact: true });
    await eventually(() => field.getAttribute('aria-invalid')).toBe('true');
    expect(await ask.getByRole('alert').textContent()).toContain('PASSPHRASE_WRONG');
    await field.fill(PASSPHRASE);
    await ask.getByRole('button', { name: 'Import' }).click();
    const summary = page.locator('table[aria-label="import summary"]');
    await summary.waitFor();
    const machines = await summary.locator('tbody tr', { hasText: 'Machines' }).first().locator('td').allTextContents();
    // The same console's own export: every machine already here.
    expect(machines).toEqual(['Machines', '0', expect.any(String), expect.any(String)]);
    expect(Number(machines[2]) + Number(machines[3])).toBe(3);
  }, 120_000);

  it('has no page-level horizontal scroll at 360 px on any page', async () => {
    const context = await browser.newContext({ baseURL: server.url, viewport: { width: 360, height: 740 } });
    const narrow = await context.newPage();
    try {
      await login(narrow, USER, PASSWORD);
      const job = ((await (await narrow.request.get('/api/jobs')).json()) as { jobs: { id: string }[] }).jobs[0]!.id;
      const machine = (await console_.listMachines())[0]!.id;
      const pages: [string, string | RegExp][] = [
        ['/machines', 'Machines'],
        [`/machines/${machine}`, /pc-a|127\.0\.0\.1/],
        ['/jobs', 'Jobs'],
        [`/jobs/${job}`, /Job/],
        ['/keys', 'Product keys'],
        ['/log', 'Operations log'],
        ['/users', 'Users'],
        ['/transfer', 'Export / import'],
        ...(['at-risk', 'duplicate-cmid', 'mak-usage', 'unlicensed', 'by-authority'] as const).map(
          (r): [string, string] => [`/reports/${r}`, 'Reports'],
        ),
      ];
      const wide: string[] = [];
      for (const [route, heading] of pages) {
        await open(narrow, route, heading);
        await narrow.waitForTimeout(150);
        const width = await narrow.evaluate(
          () =>
            (globalThis as unknown as { document: { scrollingElement: { scrollWidth: number } } }).document
              .scrollingElement.scrollWidth,
        );
        if (width > 360) wide.push(`${route}: ${width}px`);
      }
      // A dialog fits too.
      await open(narrow, '/users', 'Users');
      await narrow.getByRole('button', { name: 'Reset password' }).first().click();
      const box = await narrow.getByRole('dialog').boundingBox();
      expect(box!.x).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width).toBeLessThanOrEqual(360);
      expect(wide).toEqual([]);
    } finally {
      await context.close();
    }
  });
  it('a job left running by a stopped server is interrupted; its rows keep the machine as the job saw it', async () => {
    // A job the previous server was running: 37 of 100 done, one result stored, pc-a licensed then.
    const then = Date.UTC(2026, 10, 20, 8, 30);
    await console_.webState.insertJob({
      id: INTERRUPTED,
      operation: 'activate',
      user: USER,
      detail: null,
      startedAt: then,
      finishedAt: null,
      total: 100,
      done: 0,
      failed: 0,
      state: 'running',
      errorCode: null,
      errorMessage: null,
      outcome: null,
      proxyFileId: null,
      paramsJson: null,
    });
    const result = {
      machine: 'pc-a',
      address: '127.0.0.1:9',
      ok: true,
      code: null,
      message: 'activated',
      state: 'licensed',
      method: 'mak',
      displayName: 'pc-a',
      lastSeenAt: new Date(then).toISOString(),
    };
    await console_.webState.appendJobResults(INTERRUPTED, [{ seq: 0, ok: true, json: JSON.stringify(result) }], {
      done: 37,
      total: 100,
    });
    // The server restarts on the same address (the session is in the database).
    const port = Number(new URL(server.url).port);
    await server.close();
    server = await startConsoleServer(console_, {
      listen: { host: '127.0.0.1', port },
      assetsDir: join(work, 'web-dist'),
      clock,
    });

    await open(page, '/jobs', 'Jobs');
    const row = page.locator('table[aria-label="jobs"] tbody tr', {
      has: page.locator('[data-job-state="interrupted"]'),
    });
    await eventually(() => row.count()).toBe(1);
    expect(await row.textContent()).toContain('interrupted by a restart after 37 of 100 machines');
    await open(page, `/jobs/${INTERRUPTED}`, /Job/);
    const status = page.getByTestId('job-status');
    await eventually(() => status.getAttribute('data-state')).toBe('interrupted');
    expect(await status.textContent()).toContain('Interrupted by a restart after 37 of 100 machines');
    expect(await status.getAttribute('data-finished')).toBe('true');
    // pc-a was never read since (its state now: never read); the row shows it as the job saw it.
    expect((await console_.listMachines()).find((m) => m.name === 'pc-a')?.state).toBeNull();
    const cells = page.locator('table[aria-label="job results"] tbody tr').first();
    expect(await cells.locator('.badge[data-state]').getAttribute('data-state')).toBe('licensed');
    expect(await cells.textContent()).not.toContain('never read');
    expect(await cells.textContent()).toContain(new Date(then).getFullYear().toString());
  });
  it('changes a user’s role and removes a user after a confirmation', async () => {
    await open(page, '/users', 'Users');
    await page.getByLabel(`role of ${VIEWER}`).selectOption('admin');
    await eventually(() => page.getByRole('status').textContent()).toContain(`${VIEWER} is now an admin`);
    // Two admins: the first one may now be removed (the button no longer says why not).
    await eventually(() => page.getByRole('button', { name: `remove ${USER}` }).isDisabled()).toBe(false);
    await page.getByLabel(`role of ${VIEWER}`).selectOption('viewer');
    await eventually(() => page.getByRole('status').textContent()).toContain(`${VIEWER} is now a viewer`);

    await page.getByRole('button', { name: `remove ${VIEWER}` }).click();
    const confirm = page.getByRole('dialog', { name: `Remove ${VIEWER}?` });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    expect((await console_.listUsers()).map((u) => u.name)).toContain(VIEWER);
    await page.getByRole('button', { name: `remove ${VIEWER}` }).click();
    await confirm.getByRole('button', { name: `Remove ${VIEWER}` }).click();
    await eventually(() => page.getByRole('status').textContent()).toContain(`Removed ${VIEWER}.`);
    await eventually(() => page.locator('table[aria-label="users"] tbody tr').count()).toBe(1);
    expect((await console_.listUsers()).map((u) => u.name)).toEqual([USER]);
  });
});
