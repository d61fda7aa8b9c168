import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority, CLI_PRINCIPAL, createAuthorityServer } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { VolumeConsole } from '@volact/console';
import {
  ManualClock,
  encodeProxyFile,
  iidFileDigest,
  parseCidFile,
  parseIidFile,
  signIidFile,
  signingKeyPairFromSeed,
  type ProductConfig,
} from '@volact/core';
import { builtWebAssets } from './web-assets.js';

/**
 * The publisher's web UI and the organisations' portal (one app, two faces) in Debian's
 * Chromium (playwright-core, no bundled browser), against an in-process authority serving the
 * UI built by Vite for this test. The publisher creates an organisation, mints a MAK and makes
 * the organisation's admin; the org-admin sees the MAK unused, a real client activates, the
 * portal counts it, the org asks for 50 more, the publisher approves, the portal shows the new
 * limit. Another organisation's user sees none of it and gets 404 for the first one's ids.
 */
const CHROMIUM = '/usr/bin/chromium';
const PUBLISHER = { email: 'owner@publisher.test', password: 'publisher owner password 42' };
const ORG_ADMIN = { email: 'admin@contoso.test', password: 'contoso admin password 42' };
const OTHER = { email: 'viewer@fabrikam.test', password: 'fabrikam viewer password 42' };
const SUPPORT = { email: 'phone@publisher.test', password: 'phone operator password 42' };
const AGENT_TOKEN = 'portal-web-agent-token-0123456';

let work: string;
let clock: ManualClock;
let authority: Authority;
let server: FastifyInstance;
let url: string;
let product: ProductConfig;
let browser: Browser;
let publisher: Page;
let portal: Page;
const contexts: BrowserContext[] = [];

// Filled in as the story goes.
let orgId = '';
let mak = '';
let keyId = '';
let last5 = '';

async function newPage(viewport?: { width: number; height: number }): Promise<Page> {
  const context = await browser.newContext({ baseURL: url, ...(viewport ? { viewport } : {}) });
  contexts.push(context);
  context.setDefaultTimeout(15_000);
  return context.newPage();
}

async function signIn(page: Page, who: { email: string; password: string }): Promise<void> {
  await page.goto('/');
  await page.getByLabel('Email', { exact: true }).fill(who.email);
  await page.getByLabel('Password', { exact: true }).fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** A product installation with the MAK, activated online against the authority. */
async function activateMachine(name: string): Promise<Licence> {
  const licence = Licence.init({ stateDir: join(work, 'machines', name), product, hardwareId: `hw-${name}`, clock });
  licence.installKey(mak);
  const outcome = await licence.activate({ authority: url });
  expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
  return licence;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (Debian's Chromium)`);
  work = mkdtempSync(join(tmpdir(), 'volact-portal-e2e-'));
  const built = builtWebAssets('authority');
  // The session cookie's Expires is the authority's clock: near the browser's own.
  clock = new ManualClock(Date.now());
  authority = Authority.init(join(work, 'authority'), { clock, passwordCost: 10 });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  await authority.access.addUser({ ...PUBLISHER, name: 'Publisher owner', role: 'owner' }, CLI_PRINCIPAL);
  const assets = await built;
  server = createAuthorityServer(authority, { clock, webRoot: assets });
  await server.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(server.server.address() as { port: number }).port}`;
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
  publisher = await newPage();
  // The organisation's admin on a 360 px phone.
  portal = await newPage({ width: 360, height: 740 });
}, 120_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await server?.close();
  await authority?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the publisher UI and the organisation portal in Chromium', () => {
  it('the publisher signs in (a wrong password first), creates an organisation, mints a MAK and adds its admin', async () => {
    await publisher.goto('/');
    await publisher.getByLabel('Email', { exact: true }).fill(PUBLISHER.email);
    await publisher.getByLabel('Password', { exact: true }).fill('not the password at all');
    await publisher.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => publisher.getByRole('alert').textContent()).toContain('LOGIN_FAILED');
    await signIn(publisher, PUBLISHER);
    await publisher.getByRole('heading', { name: 'Organisations' }).waitFor();

    const create = publisher.getByRole('form', { name: 'create an organisation' });
    await create.getByLabel('Organisation name').fill('Contoso Ltd');
    await create.getByLabel('External reference').fill('EA-2026-0042');
    await create.getByLabel('Contact name').fill('Ada Buyer');
    await create.getByLabel('Contact email').fill('ada@contoso.test');
    await create.getByRole('button', { name: 'Create organisation' }).click();
    await publisher.waitForURL(/#\/orgs\/org_[a-z0-9]+$/);
    orgId = (await publisher.getByTestId('org-id').textContent()) ?? '';
    expect(orgId).toMatch(/^org_[a-z0-9]+$/);
    await publisher.getByRole('heading', { name: 'Contoso Ltd' }).waitFor();

    const mint = publisher.getByRole('form', { name: 'mint a key' });
    await mint.getByLabel('Key type').selectOption('mak');
    await expect.poll(() => mint.getByLabel('Product group').inputValue()).toBe('office14');
    await mint.getByLabel('Activation limit').fill('5');
    await mint.getByLabel('Note').fill('head office');
    await mint.getByRole('button', { name: 'Mint key' }).click();
    const dialog = publisher.getByRole('dialog', { name: 'New MAK' });
    await dialog.waitFor();
    mak = ((await dialog.getByTestId('secret').textContent()) ?? '').trim();
    expect(mak).toMatch(/^[0-9A-Z]{5}(-[0-9A-Z]{5}){4}$/);
    last5 = mak.replace(/-/g, '').slice(-5);
    await dialog.getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => dialog.isVisible()).toBe(false);
    // The key is listed by its last five only; the full key is nowhere on the page any more.
    await expect.poll(() => publisher.getByTestId(`limit-${last5}`).textContent()).toBe('5');
    expect(await publisher.content()).not.toContain(mak);

    const add = publisher.getByRole('form', { name: 'add a user' });
    await add.getByLabel('User email').fill(ORG_ADMIN.email);
    await add.getByLabel('User name').fill('Contoso admin');
    await add.getByLabel('Role').selectOption('org-admin');
    await add.getByLabel('Initial password').fill(ORG_ADMIN.password);
    await add.getByRole('button', { name: 'Add user' }).click();
    await expect.poll(() => add.getByRole('status').textContent()).toContain(`Added ${ORG_ADMIN.email}`);
  });

  it('the org-admin sees the MAK with 0 used; a client activates; the portal shows 1 used', async () => {
    await signIn(portal, ORG_ADMIN);
    await portal.getByRole('heading', { name: 'Your keys' }).waitFor();
    await expect.poll(() => portal.getByTestId(`used-${last5}`).textContent()).toBe('0');
    expect(await portal.getByTestId(`limit-${last5}`).textContent()).toBe('5');
    // Usable on a 360 px screen: nothing wider than the viewport but the scrolling tables.
    expect(await portal.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(360);

    await activateMachine('contoso-1');
    await portal.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(() => portal.getByTestId(`used-${last5}`).textContent()).toBe('1');

    await portal.getByRole('link', { name: `key ending ${last5}` }).click();
    await portal.waitForURL(/#\/orgs\/org_[a-z0-9]+\/keys\/.+$/);
    keyId = decodeURIComponent(portal.url().split('/keys/')[1] ?? '');
    await expect.poll(() => portal.getByTestId('key-used').textContent()).toBe('1');
    await expect.poll(() => portal.getByRole('table', { name: 'installations' }).locator('tbody tr').count()).toBe(1);
  });

  it('revealing the full key needs the password again (a wrong one is refused)', async () => {
    await portal.getByRole('button', { name: 'Reveal full key' }).click();
    const form = portal.getByRole('form', { name: 'reveal the key' });
    await form.getByLabel('Your password (again)').fill('not my password');
    await form.getByRole('button', { name: 'Reveal' }).click();
    await expect.poll(() => portal.getByRole('alert').first().textContent()).toContain('PASSWORD_WRONG');
    expect(await portal.content()).not.toContain(mak);

    await form.getByLabel('Your password (again)').fill(ORG_ADMIN.password);
    await form.getByRole('button', { name: 'Reveal' }).click();
    const dialog = portal.getByRole('dialog', { name: 'The full key' });
    await dialog.waitFor();
    expect(((await dialog.getByTestId('secret').textContent()) ?? '').trim()).toBe(mak);
    await dialog.getByRole('button', { name: 'Done' }).click();
    // Recorded with who revealed it, and the key only by its last five.
    const audit = await authority.organisations.audit({ orgId, action: 'key.reveal' });
    expect(audit.items.map((r) => r.actor)).toContain(ORG_ADMIN.email);
    expect(JSON.stringify(audit.items)).not.toContain(mak);
  });

  it('the org asks for 50 more, the publisher approves, the portal shows the new limit', async () => {
    const ask = portal.getByRole('form', { name: 'request more activations' });
    await ask.getByLabel('Additional activations').fill('50');
    await ask.getByLabel('Reason').fill('a new branch office');
    await ask.getByRole('button', { name: 'Request more activations' }).click();
    await expect.poll(() => ask.getByRole('status').textContent()).toContain('Asked for 50 more');

    await publisher.getByRole('link', { name: 'Requests', exact: true }).click();
    await publisher.getByRole('heading', { name: 'Requests for more activations' }).waitFor();
    const decide = publisher.getByRole('form', { name: `decide request 50 for …${last5}` });
    await decide.getByLabel('Decision reason').fill('agreed with the account manager');
    await decide.getByRole('button', { name: 'Approve' }).click();
    await expect
      .poll(() => publisher.getByRole('table', { name: 'requests' }).textContent())
      .toContain('No request waits for a decision.');

    await portal.reload();
    await expect.poll(() => portal.getByTestId('key-limit').textContent()).toBe('55');
    await expect.poll(() => portal.getByTestId('key-remaining').textContent()).toBe('54');
    await expect
      .poll(() => portal.getByRole('table', { name: 'requests of this key' }).textContent())
      .toContain('approved');
  });

  it("another organisation's user sees none of it and gets 404, not 403, for its ids", async () => {
    const other = await authority.organisations.create({ name: 'Fabrikam' }, CLI_PRINCIPAL);
    await authority.access.addUser(
      { ...OTHER, name: 'Fabrikam viewer', role: 'viewer', orgId: other.id },
      CLI_PRINCIPAL,
    );
    const page = await newPage();
    await signIn(page, OTHER);
    await page.getByRole('heading', { name: 'Your keys' }).waitFor();
    await expect.poll(() => page.getByRole('table', { name: 'keys' }).textContent()).toContain('No key yet.');
    expect(await page.content()).not.toContain(last5);

    const statuses = await page.evaluate(
      async ([org, key, mine]) => {
        const paths = [
          `/v1/orgs/${org}/keys/${key}`,
          `/v1/orgs/${org}/keys`,
          `/v1/orgs/${org}/usage`,
          `/v1/orgs/${org}`,
          `/v1/orgs/${mine}/keys/${key}`,
        ];
        const out: Record<string, [number, string]> = {};
        for (const p of paths) {
          const res = await fetch(p, { credentials: 'same-origin' });
          const body = (await res.json()) as { error?: { code?: string } };
          out[p] = [res.status, body.error?.code ?? ''];
        }
        return out;
      },
      [orgId, keyId, other.id] as const,
    );
    for (const [path, [status, code]] of Object.entries(statuses)) {
      expect(status, path).toBe(404);
      expect(code, path).toMatch(/_NOT_FOUND$/);
    }
  });

  it('the phone operator types an IID in 13 groups, a wrong group is marked, the CID comes back in groups', async () => {
    const machine = Licence.init({
      stateDir: join(work, 'machines', 'phone-1'),
      product,
      hardwareId: 'hw-phone-1',
      clock,
    });
    machine.installKey(mak);
    const groups = machine.installationId().split('-');
    expect(groups).toHaveLength(13);

    await publisher.getByRole('link', { name: 'Phone activation' }).click();
    const boxes = publisher.getByRole('group', { name: 'installation ID groups' }).getByRole('textbox');
    await expect.poll(() => boxes.count()).toBe(13);
    const wrong = groups.map((g, i) => (i === 2 ? `${g.slice(0, 5)}${(Number(g[5]) + 1) % 10}` : g));
    for (const [i, g] of wrong.entries()) await publisher.getByLabel(`Group ${i + 1}`, { exact: true }).fill(g);
    await publisher.getByRole('button', { name: 'Get confirmation ID' }).click();
    await expect.poll(() => publisher.getByLabel('Group 3', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    expect(await publisher.getByLabel('Group 2', { exact: true }).getAttribute('aria-invalid')).toBeNull();
    await expect.poll(() => publisher.getByRole('alert').first().textContent()).toContain('group 3 is wrong');

    await publisher.getByLabel('Group 3', { exact: true }).fill(groups[2] as string);
    await publisher.getByRole('button', { name: 'Get confirmation ID' }).click();
    const cid = publisher.getByTestId('confirmation-id');
    await cid.waitFor();
    const shown = (await cid.locator('code').allTextContents()).join('-');
    // The CID the operator reads out licenses the machine.
    machine.installConfirmation(shown);
    expect(machine.status()).toMatchObject({ state: 'licensed', method: 'mak' });

    // An IID pasted whole into the first box fills the 13 boxes.
    await publisher.getByRole('button', { name: 'Clear' }).click();
    // (The page's DOM, written as text: the tests compile without the DOM's types.)
    await publisher.evaluate(`(() => {
      const data = new DataTransfer();
      data.setData('text/plain', ${JSON.stringify(groups.join(' - '))});
      const box = document.querySelector('[aria-label="Group 1"]');
      box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    })()`);
    await expect.poll(() => publisher.getByLabel('Group 13', { exact: true }).inputValue()).toBe(groups[12]);
    expect(await Promise.all(groups.map((_, i) => boxes.nth(i).inputValue()))).toEqual(groups);
  });

  it("a support user uploads a console's installation-ID file and downloads the confirmation file; edited, re-signed or foreign files are refused", async () => {
    // The customer's side: a console on an isolated network with three real installations behind
    // real agents (no authority they could reach): two with the org's MAK, one with a MAK that
    // has since been revoked. The console collects their installation IDs into its signed file.
    const revoked = (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 5 })).key;
    await authority.revokeKey(revoked);
    const agents: FastifyInstance[] = [];
    const isolated = VolumeConsole.init(join(work, 'isolated-console'), { clock });
    try {
      const addresses: string[] = [];
      for (const [name, key] of [
        ['iso-1', mak],
        ['iso-2', mak],
        ['iso-3', revoked],
      ] as const) {
        const stateDir = join(work, 'machines', name);
        Licence.init({ stateDir, product, hardwareId: `hw-${name}`, clock }).installKey(key);
        const agent = createAgentServer({
          stateDir,
          adminToken: AGENT_TOKEN,
          authorities: ['http://127.0.0.1:1'],
          clock,
          timeoutMs: 1_000,
        });
        await agent.listen({ host: '127.0.0.1', port: 0 });
        agents.push(agent);
        addresses.push(`127.0.0.1:${(agent.server.address() as { port: number }).port}`);
      }
      await isolated.addMachines(addresses, AGENT_TOKEN, ['iso-1', 'iso-2', 'iso-3']);
      const collected = await isolated.collectInstallationIds('all');
      const iidFile = parseIidFile(collected.file);
      const iids = iidFile.entries.map((e) => e.installationId);
      expect(iidFile.entries.map((e) => e.machine)).toEqual(['iso-1', 'iso-2', 'iso-3']);

      // The phone operator: a support user (publisher:phone), on the phone activation page.
      await authority.access.addUser({ ...SUPPORT, name: 'Phone operator', role: 'support' }, CLI_PRINCIPAL);
      const operator = await newPage();
      await signIn(operator, SUPPORT);
      await operator.getByRole('link', { name: 'Phone activation' }).click();
      const section = operator.getByRole('region', { name: 'installation-ID file', exact: true });
      const input = section.getByLabel('Installation-ID file', { exact: true });
      const submit = section.getByRole('button', { name: 'Confirm and download' });
      const alert = () => section.getByRole('alert').textContent();
      const downloads: string[] = [];
      operator.on('download', (d) => downloads.push(d.suggestedFilename()));
      const usedBefore = (await authority.showKey(mak)).used;
      const confirmations = async () =>
        (await authority.organisations.audit({ action: 'operator.confirm', limit: 500 })).items.filter(
          (r) => r.actor === SUPPORT.email,
        );
      const upload = (name: string, text: string) =>
        input.setInputFiles({ name, mimeType: 'application/json', buffer: Buffer.from(text) });

      // One digit of an IID changed in the file: refused before anything is confirmed.
      const at = collected.file.indexOf('"installationId": "') + '"installationId": "'.length;
      const tampered = `${collected.file.slice(0, at)}${(Number(collected.file[at]) + 1) % 10}${collected.file.slice(at + 1)}`;
      expect(tampered).not.toBe(collected.file);
      await upload('iids-edited.json', tampered);
      await submit.click();
      await expect.poll(alert).toMatch(/^PROXY_FILE_TAMPERED: the signature of installation-ID file /);
      // Not a proxy file at all (a product config picked by mistake): the field it fails on is named.
      await upload('product.json', JSON.stringify(product));
      await submit.click();
      await expect.poll(alert).toMatch(/^PROXY_FILE_INVALID: format: expected "volact-iid-file\/1"/);
      await upload('empty.json', '');
      await expect.poll(alert).toMatch(/^empty\.json is empty: /);
      // Re-signed on the way with the carrier's own key: it verifies, but not as the console the
      // customer read the key ID of: refused once that key ID is given.
      const resigned = encodeProxyFile(
        signIidFile(
          { id: iidFile.id, createdAt: iidFile.createdAt, entries: iidFile.entries },
          signingKeyPairFromSeed(randomBytes(32)),
        ),
      );
      await section.getByLabel('Console key ID').fill(isolated.consoleKeyId());
      await upload('iids.json', resigned);
      await submit.click();
      await expect
        .poll(alert)
        .toMatch(
          new RegExp(`^PROXY_FILE_FOREIGN: .*signed by console key [0-9a-f]{16}, not by ${isolated.consoleKeyId()}`),
        );
      expect(downloads).toEqual([]);
      expect((await authority.showKey(mak)).used).toBe(usedBefore);
      expect(await confirmations()).toEqual([]);

      // The file as the console wrote it, its key ID given: the summary, the refused machine
      // named with why, and the confirmation file downloaded.
      await upload('iids.json', collected.file);
      // While the request runs the file cannot be changed (its answer would land under the other's name).
      let release = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      await operator.route('**/v1/operator/confirmation-files', async (route) => {
        await held;
        await route.continue();
      });
      const downloaded = operator.waitForEvent('download');
      await submit.click();
      await expect.poll(() => input.isDisabled()).toBe(true);
      release();
      const download = await downloaded;
      await operator.unroute('**/v1/operator/confirmation-files');
      expect(await input.isDisabled()).toBe(false);
      await expect
        .poll(() => section.getByRole('status').textContent())
        .toBe('2 confirmed, 1 refused: the confirmation file was downloaded');
      const refusedList = section.getByRole('list', { name: 'refused installation IDs' });
      expect(await refusedList.getByRole('listitem').allTextContents()).toEqual([
        expect.stringMatching(/^iso-3: KEY_REVOKED: /),
      ]);
      expect(download.suggestedFilename()).toBe(`volact-cids-${iidFile.id}.json`);
      const text = readFileSync(await download.path(), 'utf8');
      const cids = parseCidFile(text);
      expect(cids.request).toEqual({
        id: iidFile.id,
        consoleKeyId: isolated.consoleKeyId(),
        digest: iidFileDigest(iidFile),
      });
      expect(cids.results.map((r) => [r.installationId, r.ok])).toEqual([
        [iids[0], true],
        [iids[1], true],
        [iids[2], false],
      ]);
      // Audited with the operator's name; the MAK counts the two, as the org's portal shows.
      expect((await confirmations()).map((r) => r.result).sort()).toEqual(['KEY_REVOKED', 'OK', 'OK']);
      // (A hash route: going to the page it is already on loads nothing; the reload does.)
      await portal.goto(`/#/orgs/${orgId}/keys/${keyId}`);
      await portal.reload();
      await expect.poll(() => portal.getByTestId('key-used').textContent()).toBe(String(usedBefore + 2));

      // Back on the isolated network: applied through the agents, the two end licensed by MAK.
      const applied = await isolated.applyConfirmationFile(text);
      expect(applied.skipped).toEqual([]);
      expect(applied.results.map((r) => [r.machine, r.ok, r.state])).toEqual([
        ['iso-1', true, 'licensed'],
        ['iso-2', true, 'licensed'],
        ['iso-3', false, null],
      ]);
      expect(downloads).toHaveLength(1);
    } finally {
      await isolated.close();
      for (const a of agents) await a.close();
    }
  });

  it("the portal's usage, product configs and a read token for the organisation's console", async () => {
    await portal.getByRole('link', { name: 'Usage', exact: true }).click();
    await portal.getByRole('heading', { name: 'MAK usage' }).waitFor();
    await expect.poll(() => portal.getByRole('table', { name: 'usage' }).textContent()).toContain(`…${last5}`);
    await expect.poll(() => portal.getByRole('img', { name: /activations over/ }).count()).toBe(1);

    await portal.getByRole('link', { name: 'Product configs' }).click();
    const [download] = await Promise.all([
      portal.waitForEvent('download'),
      portal.getByRole('link', { name: 'Download office14' }).click(),
    ]);
    const config = JSON.parse(readFileSync(await download.path(), 'utf8')) as { groups?: unknown };
    expect(JSON.stringify(config)).toContain('office14');

    await portal.getByRole('link', { name: 'API tokens' }).click();
    const form = portal.getByRole('form', { name: 'create a token' });
    await form.getByLabel('Token name').fill('volact console');
    await form.getByRole('button', { name: 'Create token' }).click();
    const dialog = portal.getByRole('dialog', { name: 'New API token' });
    await dialog.waitFor();
    const token = ((await dialog.getByTestId('secret').textContent()) ?? '').trim();
    await dialog.getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => portal.getByRole('table', { name: 'tokens' }).textContent()).toContain(`org:${orgId}:read`);
    // The dialog's close event is queued, so the secret leaves the page a moment after Done.
    await expect.poll(() => portal.content()).not.toContain(token);
    // What the console does with it: read the organisation's usage; never change a limit.
    const usage = await fetch(`${url}/v1/orgs/${orgId}/usage`, { headers: { authorization: `Bearer ${token}` } });
    expect(usage.status).toBe(200);
    const raise = await fetch(`${url}/v1/orgs/${orgId}/keys/${keyId}/limit`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ limit: 5000 }),
    });
    expect(raise.status).toBe(403);
    expect(((await raise.json()) as { error: { code: string } }).error.code).toBe('SCOPE_MISSING');

    portal.once('dialog', (d) => void d.accept());
    await portal.getByRole('button', { name: 'Revoke volact console' }).click();
    await expect.poll(() => portal.getByRole('table', { name: 'tokens' }).textContent()).toContain('revoked');
    const after = await fetch(`${url}/v1/orgs/${orgId}/usage`, { headers: { authorization: `Bearer ${token}` } });
    expect(after.status).toBe(401);
  });

  it('the publisher sets a limit, a webhook hears it (delivery log, redeliver), the audit log exports as CSV', async () => {
    const heard: string[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        heard.push(body);
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
    const hook = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/volact`;
    try {
      await publisher.getByRole('link', { name: 'Webhooks' }).click();
      const add = publisher.getByRole('form', { name: 'add a webhook' });
      await add.getByLabel('Endpoint URL').fill(hook);
      await add.getByRole('button', { name: 'Add webhook' }).click();
      const dialog = publisher.getByRole('dialog', { name: 'Signing secret' });
      await dialog.waitFor();
      await dialog.getByRole('button', { name: 'Done' }).click();

      await publisher.goto(`/#/orgs/${orgId}/keys/${keyId}`);
      const limit = publisher.getByRole('form', { name: 'set the limit' });
      await limit.getByLabel('New limit').fill('60');
      await limit.getByRole('button', { name: 'Set limit' }).click();
      await expect.poll(() => publisher.getByTestId('key-limit').textContent()).toBe('60');
      await authority.webhooks.dispatchOnce();
      expect(heard.some((b) => b.includes('key.limit_raised'))).toBe(true);

      await publisher.getByRole('link', { name: 'Webhooks' }).click();
      await publisher.getByRole('link', { name: hook }).click();
      const deliveries = publisher.getByRole('table', { name: 'deliveries' });
      await expect.poll(() => deliveries.textContent()).toContain('delivered');
      await deliveries
        .getByRole('button', { name: /^Redeliver/ })
        .first()
        .click();
      await expect.poll(() => publisher.getByRole('status').first().textContent()).toContain('Queued');

      await publisher.getByRole('link', { name: 'Audit' }).click();
      const filters = publisher.getByRole('form', { name: 'audit filters' });
      await filters.getByLabel('Organisation ID').fill(orgId);
      await filters.getByLabel('Action prefix').fill('key.');
      await filters.getByRole('button', { name: 'Filter' }).click();
      await expect
        .poll(() => publisher.getByRole('table', { name: 'audit log' }).textContent())
        .toContain('key.reveal');
      const [csv] = await Promise.all([
        publisher.waitForEvent('download'),
        publisher.getByRole('button', { name: 'Export CSV' }).click(),
      ]);
      const text = readFileSync(await csv.path(), 'utf8');
      expect(text.split('\r\n')[0]).toBe('at,action,result,actor,orgId,keyId,keyLast5,detail');
      expect(text).toContain('key.reveal');
      expect(text).toContain(ORG_ADMIN.email);
      expect(text).not.toContain(mak);
    } finally {
      receiver.close();
    }
  });
});
