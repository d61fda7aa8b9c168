import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CID_GROUPS, ManualClock } from '@volact/core';
import { VolumeConsole, openConsoleStore, startConsoleServer, type ConsoleServer } from '@volact/console';
import { generateFleet } from '@volact/console/testing';
import { builtWebAssets } from './web-assets.js';

interface DigitCheck {
  readonly CONFIRMATION_ID_GROUPS: number;
  readonly DIGITS_PER_GROUP: number;
  readonly groupProblem: (position: number, text: string) => string | null;
}
// The web app's module and core's digit groups, outside the test project's files: loaded by path.
const load = async <T>(path: string) => (await import(new URL(path, import.meta.url).href)) as T;

/**
 * The machines page over 100 000 machines (generateFleet) in Debian's Chromium: the page, its
 * sort, its filters and its last page are the server's (GET /api/machines), and what the table
 * shows is what the API answers for the same query. Then a machine's page: a confirmation ID
 * typed from a phone call, its wrong group marked as it is typed. And the page at 360 px wide.
 */
const CHROMIUM = '/usr/bin/chromium';
const USER = 'admin';
const PASSWORD = 'a long scale test password 42';
const FLEET = 100_000;
const NOW = Date.parse('2026-12-01T00:00:00.000Z');

interface ApiMachine {
  id: number;
  displayName: string;
  hostName: string | null;
  state: string | null;
}
interface ApiPage {
  machines: ApiMachine[];
  total: number;
  offset: number;
}

let work: string;
let console_: VolumeConsole;
let server: ConsoleServer;
let browser: Browser;
let page: Page;
let detailPath = '#/machines';

/** The API's answer to a machines query, with the browser's session. */
async function api(query: Record<string, string | number>): Promise<ApiPage> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
  const res = await page.request.get(`/api/machines?${qs.toString()}`);
  expect(res.status(), await res.text()).toBe(200);
  return (await res.json()) as ApiPage;
}

const table = () => page.locator('table[aria-label="machines"]');
/** The names the table shows, top to bottom. */
const shownNames = () => table().locator('tbody tr a.machine-name').allTextContents();
const range = () => page.getByTestId('page-range').textContent();

/** Waits until the table shows `names` (the API's page for what the controls say). */
async function expectShown(names: string[]): Promise<void> {
  await expect.poll(shownNames, { timeout: 15_000 }).toEqual(names);
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (Debian's Chromium)`);
  work = mkdtempSync(join(tmpdir(), 'volact-web-scale-'));
  const built = builtWebAssets('console');
  const clock = new ManualClock(NOW);
  const dataDir = join(work, 'console');
  await (await VolumeConsole.create(dataDir, { admin: { user: USER, password: PASSWORD }, clock })).close();
  const store = await openConsoleStore(dataDir);
  try {
    await generateFleet(store, FLEET, { now: NOW });
  } finally {
    await store.close();
  }
  console_ = VolumeConsole.open(dataDir, { clock });
  const assets = await built;
  server = await startConsoleServer(console_, {
    listen: { host: '127.0.0.1', port: 0 },
    assetsDir: assets,
    clock,
    log: () => undefined,
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  });
  const context = await browser.newContext({ baseURL: server.url });
  context.setDefaultTimeout(15_000);
  page = await context.newPage();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await console_?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the machines page over 100 000 machines, in Chromium', () => {
  it('pages, sorts and filters on the server: what the table shows is the API page for the same query', async () => {
    await page.goto('/');
    await page.getByLabel('User').fill(USER);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Machines' }).waitFor();

    // The first page: 50 of 100 000, sorted by name.
    const first = await api({ offset: 0, limit: 50, sort: 'name', dir: 'asc' });
    expect(first.total).toBe(FLEET);
    await expectShown(first.machines.map((m) => m.displayName));
    expect(await range()).toBe(`1–50 of ${FLEET}`);
    expect(await table().locator('th[aria-sort="ascending"]').textContent()).toContain('Machine');

    // Sorted by host name (its header), then the other way (a second click).
    await table().locator('th', { hasText: 'Host name' }).click();
    const byHost = await api({ offset: 0, limit: 50, sort: 'hostName', dir: 'asc' });
    await expectShown(byHost.machines.map((m) => m.displayName));
    expect(await table().locator('th[aria-sort="ascending"]').textContent()).toContain('Host name');
    await table().locator('th', { hasText: 'Host name' }).click();
    const byHostDesc = await api({ offset: 0, limit: 50, sort: 'hostName', dir: 'desc' });
    await expectShown(byHostDesc.machines.map((m) => m.displayName));
    // Named as people know them: a machine whose agent said its host name is never shown by its address.
    const named = byHostDesc.machines.filter((m) => m.hostName !== null).map((m) => m.displayName);
    expect(named.length).toBeGreaterThan(0);
    expect(named.some((n) => /:\d+$/.test(n))).toBe(false);
    const hosts = byHostDesc.machines.map((m) => m.hostName).filter((h): h is string => h !== null);
    expect(hosts).toEqual([...hosts].sort().reverse());
    expect(byHostDesc.machines[0]?.displayName).not.toBe(byHost.machines[0]?.displayName);
    expect(await table().locator('th[aria-sort="descending"]').textContent()).toContain('Host name');

    // Every sort the server has is offered, and each is what the table then shows.
    for (const sort of ['lastBootAt', 'state', 'productVersion'] as const) {
      await page.getByLabel('sort by').selectOption(sort);
      const sorted = await api({ offset: 0, limit: 50, sort, dir: 'desc' });
      await expectShown(sorted.machines.map((m) => m.displayName));
    }
    await page.getByLabel('sort by').selectOption('name');
    await page.getByRole('button', { name: /^descending/ }).click();
    await expectShown(first.machines.map((m) => m.displayName));

    // Filtered by state: every row unlicensed, the total the server's.
    await page.getByLabel('state filter').selectOption('unlicensed');
    const unlicensed = await api({ offset: 0, limit: 50, sort: 'name', dir: 'asc', state: 'unlicensed' });
    expect(unlicensed.total).toBeGreaterThan(1000);
    expect(unlicensed.total).toBeLessThan(FLEET);
    await expectShown(unlicensed.machines.map((m) => m.displayName));
    expect(await range()).toBe(`1–50 of ${unlicensed.total}`);
    const badges = await table().locator('tbody .badge').all();
    const states = await Promise.all(badges.map((b) => b.getAttribute('data-state')));
    expect(states).toEqual(Array(50).fill('unlicensed'));

    // Filtered by text too: one host name (machine 12 346), then the state filter lifted.
    await page.getByRole('searchbox').fill('host-012346');
    await expect.poll(range).toMatch(/of [01]$/);
    const both = await api({ offset: 0, limit: 50, sort: 'name', dir: 'asc', state: 'unlicensed', q: 'host-012346' });
    await expectShown(both.machines.map((m) => m.displayName));
    await page.getByLabel('state filter').selectOption('');
    await expectShown(['pc-012346']);
    expect(await range()).toBe('1–1 of 1');
    expect(await table().locator('tbody tr').first().textContent()).toContain('host-012346.corp.example');

    // "Select all matching" chooses the filter, not the page.
    await page.getByRole('checkbox', { name: 'select all on this page' }).check();
    await expect.poll(() => page.getByTestId('selected-count').textContent()).toBe('1 of 1 selected');

    // The last page of everything.
    await page.getByRole('searchbox').fill('');
    await expectShown(first.machines.map((m) => m.displayName));
    await page.getByLabel('rows per page').selectOption('100');
    await page.getByRole('button', { name: 'last page' }).click();
    const last = await api({ offset: FLEET - 100, limit: 100, sort: 'name', dir: 'asc' });
    expect(last.machines).toHaveLength(100);
    await expectShown(last.machines.map((m) => m.displayName));
    expect(await range()).toBe(`${FLEET - 99}–${FLEET} of ${FLEET}`);
    expect(await page.getByRole('button', { name: 'next page' }).isDisabled()).toBe(true);

    // All 100 000 chosen by the filter (none): the bulk bar says so, and a job would get "all".
    await page.getByRole('checkbox', { name: 'select all on this page' }).check();
    await page.getByRole('button', { name: `Select all ${FLEET} matching` }).click();
    await expect.poll(() => page.getByTestId('selected-count').textContent()).toBe(`${FLEET} of ${FLEET} selected`);
    expect(await page.getByRole('button', { name: 'Refresh', exact: true }).isDisabled()).toBe(false);
    await page.getByRole('button', { name: 'Clear selection' }).click();
    expect(await page.getByTestId('bulk-reason').textContent()).toBe('select machines first');
    const refresh = page.getByRole('button', { name: 'Refresh', exact: true });
    expect(await refresh.isDisabled()).toBe(true);
    expect(await refresh.getAttribute('aria-describedby')).toBe(
      await page.getByTestId('bulk-reason').getAttribute('id'),
    );
  });

  it("types a phone confirmation ID into a machine's page: a wrong group is marked as it is typed", async () => {
    // The browser's check is core's (digit-groups.ts, bundled): same group count, same verdicts.
    const { CONFIRMATION_ID_GROUPS, DIGITS_PER_GROUP, groupProblem } = await load<DigitCheck>(
      '../../packages/console/web/src/components/digit-check.ts',
    );
    const { encodeDigitGroups } = await load<{ readonly encodeDigitGroups: (value: bigint, groups: number) => string }>(
      '../../packages/core/src/digit-groups.ts',
    );
    expect(CONFIRMATION_ID_GROUPS).toBe(CID_GROUPS);
    const cid = encodeDigitGroups(123456789012345678901234567890n, CID_GROUPS).split('-');
    expect(cid.every((g, i) => groupProblem(i + 1, g) === null)).toBe(true);
    const wrong = `${cid[6]!.slice(0, 5)}${(Number(cid[6]![5]) + 1) % 10}`;
    expect(groupProblem(7, wrong)).toMatch(/group 7 is wrong/);
    expect(groupProblem(8, cid[6]!)).toMatch(/group 8 is wrong/); // a group typed one place late
    expect(DIGITS_PER_GROUP).toBe(6);

    await page.getByRole('searchbox').fill('pc-000002');
    await page.getByRole('link', { name: 'pc-000002', exact: true }).click();
    await page.getByRole('heading', { name: /pc-000002/ }).waitFor();
    detailPath = new URL(page.url()).hash;
    const form = page.getByRole('form', { name: 'confirmation ID by phone' });
    const box = (n: number) => form.getByRole('textbox', { name: `Group ${n}`, exact: true });
    const submit = form.getByRole('button', { name: 'Install confirmation ID' });
    for (let i = 0; i < 6; i++) await box(i + 1).fill(cid[i]!);
    await box(7).fill(wrong);
    await expect.poll(() => box(7).getAttribute('aria-invalid')).toBe('true');
    expect(await form.getByRole('alert').textContent()).toContain('group 7 is wrong');
    for (let i = 1; i <= 6; i++) expect(await box(i).getAttribute('aria-invalid')).toBeNull();
    expect(await submit.isDisabled()).toBe(true);
    // Corrected, and the rest typed: nothing marked, the button may be used.
    await box(7).fill(cid[6]!);
    for (let i = 7; i < CID_GROUPS; i++) await box(i + 1).fill(cid[i]!);
    await expect.poll(() => form.locator('[aria-invalid="true"]').count()).toBe(0);
    expect(await submit.isDisabled()).toBe(false);
    // Pasted whole into the first box, it fills all 24.
    await form.getByRole('button', { name: 'Clear' }).click();
    // (The page's DOM, written as text: the tests compile without the DOM's types.)
    await page.evaluate(`(() => {
      const data = new DataTransfer();
      data.setData('text/plain', ${JSON.stringify(cid.join(' '))});
      const box = document.querySelector('form[aria-label="confirmation ID by phone"] [aria-label="Group 1"]');
      box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    })()`);
    await expect.poll(() => box(CID_GROUPS).inputValue()).toBe(cid[CID_GROUPS - 1]);
    expect(await submit.isDisabled()).toBe(false);
  });

  it("names the wrong field in the add and discover dialogs with the server's message, next to it", async () => {
    await page.goto('/#/machines');
    await page.getByRole('button', { name: 'Add machines', exact: true }).click();
    let dialog = page.getByRole('dialog');
    const add = dialog.getByRole('button', { name: 'Add', exact: true });
    // Nothing typed: the button says why it waits.
    expect(await add.isDisabled()).toBe(true);
    expect(await dialog.textContent()).toContain('give at least one address');
    await dialog.getByLabel('Agent addresses').fill('127.0.0.1:9');
    await dialog.getByLabel('Enrolment token').fill('too-short');
    await add.click();
    const token = dialog.getByLabel('Enrolment token');
    await expect.poll(() => token.getAttribute('aria-invalid')).toBe('true');
    const why = dialog.locator('.field-error');
    expect(await why.count()).toBe(1);
    expect(await why.textContent()).toMatch(/^token: /);
    // The message sits with the token's field, not with the addresses'.
    expect(await dialog.getByLabel('Agent addresses').getAttribute('aria-invalid')).toBeNull();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(await page.getByRole('dialog').count()).toBe(0);

    await page.getByRole('button', { name: 'Discover', exact: true }).click();
    dialog = page.getByRole('dialog');
    await dialog.getByLabel('Range').fill('127.0.0.1:9-10');
    await dialog.getByLabel('Enrolment token').fill('too-short');
    await dialog.getByRole('button', { name: 'Discover', exact: true }).click();
    await expect.poll(() => dialog.getByLabel('Enrolment token').getAttribute('aria-invalid')).toBe('true');
    expect(await dialog.locator('.field-error').textContent()).toMatch(/^discover\.token: /);
    await dialog.getByRole('button', { name: 'close' }).click();
  });

  it('a viewer sees the machines, and every control that would change one is disabled saying why', async () => {
    await console_.addUser('viewer-1', 'a long viewer password 42', 'viewer');
    const context = await browser.newContext({ baseURL: server.url });
    context.setDefaultTimeout(15_000);
    try {
      const vp = await context.newPage();
      await vp.goto('/');
      await vp.getByLabel('User').fill('viewer-1');
      await vp.getByLabel('Password').fill('a long viewer password 42');
      await vp.getByRole('button', { name: 'Log in' }).click();
      await vp.getByRole('heading', { name: 'Machines' }).waitFor();
      await expect
        .poll(() => vp.locator('table[aria-label="machines"] tbody tr a').count(), { timeout: 15_000 })
        .toBe(50);
      await vp.getByRole('checkbox', { name: 'select all on this page' }).check();
      /** The button is disabled, and its description is a visible text saying a viewer cannot. */
      const saysViewer = async (name: string, scope = vp.locator('main')) => {
        const button = scope.getByRole('button', { name, exact: true });
        expect(await button.isDisabled(), name).toBe(true);
        const id = await button.getAttribute('aria-describedby');
        expect(id, name).toBeTruthy();
        const reason = vp.locator(`[id="${id}"]`);
        expect(await reason.isVisible(), name).toBe(true);
        expect(await reason.textContent(), name).toMatch(/viewers cannot/);
      };
      for (const name of ['Add machines', 'Discover', 'Refresh', 'Install key', 'Set KMS host', 'Remove…']) {
        await saysViewer(name);
      }
      expect(await vp.getByLabel('confirmation file').isDisabled()).toBe(true);
      await saysViewer('Apply confirmations');

      await vp.getByRole('searchbox').fill('pc-000002');
      await vp.getByRole('link', { name: 'pc-000002', exact: true }).click();
      await vp.getByRole('heading', { name: /pc-000002/ }).waitFor();
      for (const name of ['Refresh', 'Re-enrol', 'Remove…', 'Install confirmation ID']) await saysViewer(name);
      expect(await vp.getByRole('textbox', { name: 'Group 1', exact: true }).isDisabled()).toBe(true);
    } finally {
      await context.close();
    }
  });

  it('fits a 360 px wide screen: nothing but the table scrolls sideways', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    for (const path of ['/#/machines', `/${detailPath}`]) {
      await page.goto(path);
      await page.locator('main h1').waitFor();
      await page.waitForTimeout(300);
      const overflow = await page.evaluate<number>('document.documentElement.scrollWidth');
      expect(overflow, path).toBeLessThanOrEqual(360);
    }
  });
});
