import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority, createAuthorityServer } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import {
  ManualClock,
  encodeProxyFile,
  parseCidFile,
  parseConfirmationId,
  parseIidFile,
  signIidFile,
  signingKeyPairFromSeed,
  type CidFile,
  type ProductConfig,
} from '@volact/core';
import { VolumeConsole } from '../console.js';
import { ConsoleError } from '../errors.js';

/** Isolated networks through files, and the phone CID, against real agents and a real authority. */
const TOKEN = 'proxy-files-agent-token-0123456';

let root: string;
let clock: ManualClock;
let authority: Authority;
let api: FastifyInstance;
let authorityUrl: string;
let product: ProductConfig;
const servers: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-proxy-files-'));
  clock = new ManualClock(Date.UTC(2026, 11, 3, 9));
  authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  api = createAuthorityServer(authority, { clock });
  await api.listen({ host: '127.0.0.1', port: 0 });
  authorityUrl = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await api.close();
  await authority.close();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
/** A real installation behind a real agent (no authority it could reach by itself). */
async function agent(mak?: string, hardwareId = `hw-${n + 1}`): Promise<string> {
  const stateDir = join(root, `machine-${++n}`);
  const licence = Licence.init({ stateDir, product, hardwareId, clock });
  if (mak) licence.installKey(mak);
  const app = createAgentServer({
    stateDir,
    adminToken: TOKEN,
    authorities: ['http://127.0.0.1:1'],
    clock,
    timeoutMs: 1_000,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  servers.push(app);
  return `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

const newConsole = () => VolumeConsole.init(join(root, `console-${++n}`), { clock });
const mintMak = async (limit: number) => (await authority.mintKey({ type: 'mak', groups: ['office14'], limit })).key;

const failure = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ConsoleError) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'no error';
};

describe('isolated networks: proxy activation through files', () => {
  it('collect → confirm → apply: the machines end licensed, CIDs stored; a machine without a MAK fails alone', async () => {
    const mak = await mintMak(10);
    const c = newConsole();
    const addresses = [await agent(mak), await agent(mak), await agent()];
    await c.addMachines(addresses, TOKEN, ['a', 'b', 'gvlk']);

    const collected = await c.collectInstallationIds('all', { user: 'alice' });
    expect(collected.results.map((r) => [r.machine, r.ok, r.code])).toEqual([
      ['a', true, null],
      ['b', true, null],
      ['gvlk', false, 'NO_MAK_INSTALLED'],
    ]);
    const file = parseIidFile(collected.file);
    expect(file.id).toBe(collected.fileId);
    expect(file.entries.map((e) => e.machine)).toEqual(['a', 'b']);
    expect(collected.file).not.toContain(mak);
    expect(collected.file).not.toContain(mak.replace(/-/g, ''));
    expect(await c.proxyFile(collected.fileId)).toBe(collected.file);
    expect(await c.listProxyFiles()).toEqual([
      {
        id: collected.fileId,
        createdAt: new Date(clock.now()).toISOString(),
        createdBy: 'alice',
        machines: 2,
        appliedAt: null,
      },
    ]);
    // Nothing reached the authority yet.
    expect((await authority.showKey(mak)).used).toBe(0);

    // Step 2 on another console that reaches the authority.
    const connected = newConsole();
    const cids = await connected.confirmProxyFile(collected.file, { url: authorityUrl });
    expect(parseCidFile(cids).results.every((r) => r.ok)).toBe(true);
    await connected.close();

    const applied = await c.applyConfirmationFile(cids);
    expect(applied.skipped).toEqual([]);
    expect(applied.results.map((r) => [r.machine, r.ok, r.state])).toEqual([
      ['a', true, 'licensed'],
      ['b', true, 'licensed'],
    ]);
    expect((await c.listProxyFiles())[0]?.appliedAt).toBe(new Date(clock.now()).toISOString());
    // Stored: reactivate finds them (no authority).
    expect((await c.reactivate(['a', 'b'])).map((r) => r.ok)).toEqual([true, true]);
    await c.close();
  });

  it('a re-imaged machine (same hardware, same MAK, a new agent) is reactivated from the CID the file brought', async () => {
    const mak = await mintMak(1);
    const c = newConsole();
    await c.addMachines([await agent(mak, 'hw-reimage')], TOKEN, ['pc']);
    const { file } = await c.collectInstallationIds(['pc']);
    const cids = await c.confirmProxyFile(file, { url: authorityUrl });
    expect((await c.applyConfirmationFile(cids)).results[0]).toMatchObject({ ok: true, state: 'licensed' });

    // Re-imaged: the old installation is gone; a new one on the same hardware with the same MAK,
    // its agent added again (the old record is kept: removing a machine drops its CIDs).
    await (servers.at(-1) as { close(): Promise<unknown> }).close();
    await c.addMachines([await agent(mak, 'hw-reimage')], TOKEN, ['pc-again']);
    expect((await c.reactivate(['pc-again']))[0]).toMatchObject({ ok: true, state: 'licensed' });
    expect((await authority.showKey(mak)).used).toBe(1);
    await c.close();
  });

  it('refusals: an edited file (TAMPERED), another console (FOREIGN), unknown here (UNKNOWN), a digest of another file', async () => {
    const mak = await mintMak(5);
    const c = newConsole();
    await c.addMachines([await agent(mak), await agent(mak)], TOKEN, ['a', 'b']);
    const { file } = await c.collectInstallationIds('all');

    // An edited installation-ID file is refused before anything is sent.
    const edited = JSON.parse(file) as { entries: { machine: string }[] };
    (edited.entries[0] as { machine: string }).machine = 'ceo-laptop';
    expect(await failure(c.confirmProxyFile(JSON.stringify(edited), { url: authorityUrl }))).toMatch(
      /^PROXY_FILE_TAMPERED: /,
    );
    expect((await authority.showKey(mak)).used).toBe(0);
    expect(await failure(c.confirmProxyFile('{"format":"volact-iid-file/9"}', { url: authorityUrl }))).toMatch(
      /^PROXY_FILE_INVALID: format: /,
    );

    // The signature binds a file to the key it names only: re-signed with a key of the carrier's
    // own, it verifies. The confirming side that pins the collecting console's key refuses it
    // before anything is confirmed; the console's own key ID pins its own files.
    const original = parseIidFile(file);
    const resigned = encodeProxyFile(
      signIidFile(
        { id: original.id, createdAt: original.createdAt, entries: original.entries },
        signingKeyPairFromSeed(randomBytes(32)),
      ),
    );
    expect(parseIidFile(resigned).console.keyId).not.toBe(c.consoleKeyId());
    expect(original.console.keyId).toBe(c.consoleKeyId());
    expect(await failure(c.confirmProxyFile(resigned, { url: authorityUrl }, c.consoleKeyId()))).toMatch(
      /^PROXY_FILE_FOREIGN: .*signed by console key [0-9a-f]{16}, not by [0-9a-f]{16}/,
    );
    expect((await authority.showKey(mak)).used).toBe(0);

    const cids = await c.confirmProxyFile(file, { url: authorityUrl }, c.consoleKeyId());

    // Another console's collection: FOREIGN (and its own answers do not apply here either).
    const other = newConsole();
    await other.addMachines([await agent(mak)], TOKEN, ['x']);
    const otherCids = await other.confirmProxyFile((await other.collectInstallationIds('all')).file, {
      url: authorityUrl,
    });
    expect(await failure(c.applyConfirmationFile(otherCids))).toMatch(/^PROXY_FILE_FOREIGN: /);
    expect(await failure(other.applyConfirmationFile(cids))).toMatch(/^PROXY_FILE_FOREIGN: /);
    await other.close();

    // Same console key (a copy of console.key) but another database: UNKNOWN.
    const parsed = parseCidFile(cids);
    const unknown = encodeProxyFile({ ...parsed, request: { ...parsed.request, id: 'not-collected-here' } });
    expect(await failure(c.applyConfirmationFile(unknown))).toMatch(/^PROXY_FILE_UNKNOWN: /);
    // The right id but the digest of another file.
    const wrongDigest = encodeProxyFile({ ...parsed, request: { ...parsed.request, digest: 'ab'.repeat(32) } });
    expect(await failure(c.applyConfirmationFile(wrongDigest))).toMatch(/^PROXY_FILE_TAMPERED: /);
    expect(await failure(c.applyConfirmationFile('{"format":"volact-cid-file/1","extra":1}'))).toMatch(
      /^PROXY_FILE_INVALID: /,
    );
    // None of the refusals installed anything.
    expect((await c.listMachines()).map((m) => m.state)).not.toContain('licensed');
    await c.close();
  });

  it('a result for an IID not in the collected file is skipped and reported; a refused one is reported per machine', async () => {
    const c = newConsole();
    const mak = await mintMak(5);
    const used = await mintMak(1);
    const elsewhere = await agent(used);
    await c.addMachines([await agent(mak), await agent(used)], TOKEN, ['ok', 'over-limit']);
    // The one activation `used` allows goes to a machine outside the console.
    const outside = newConsole();
    await outside.addMachines([elsewhere], TOKEN, ['outside']);
    expect((await outside.proxyActivate('all', { url: authorityUrl }))[0]).toMatchObject({ ok: true });
    const outsideIid = parseIidFile((await outside.collectInstallationIds('all')).file).entries[0]?.installationId;
    await outside.close();

    const { file } = await c.collectInstallationIds('all');
    const cids = parseCidFile(await c.confirmProxyFile(file, { url: authorityUrl }));
    // A confirmation slipped in for a machine that is not in the file.
    const foreignCid = (await authority.confirm(outsideIid as string)).confirmationId;
    const withExtra = encodeProxyFile({
      ...cids,
      results: [...cids.results, { installationId: outsideIid as string, ok: true, confirmationId: foreignCid }],
    });
    const applied = await c.applyConfirmationFile(withExtra);
    expect(applied.skipped).toEqual([
      { installationId: outsideIid, reason: `not in the collected file ${cids.request.id}` },
    ]);
    expect(applied.results.map((r) => [r.machine, r.ok, r.code])).toEqual([
      ['ok', true, null],
      ['over-limit', false, 'MAK_LIMIT_REACHED'],
    ]);
    await c.close();
  });

  it('one machine down at apply fails alone', async () => {
    const mak = await mintMak(5);
    const c = newConsole();
    const a = await agent(mak);
    const b = await agent(mak);
    await c.addMachines([a, b], TOKEN, ['a', 'b']);
    const { file } = await c.collectInstallationIds('all');
    const cids = await c.confirmProxyFile(file, { url: authorityUrl });
    // b's agent goes away (its server closed).
    const bServer = servers.at(-1) as { close(): Promise<unknown> };
    await bServer.close();
    const { results } = await c.applyConfirmationFile(cids);
    expect(results.map((r) => [r.machine, r.ok, r.code])).toEqual([
      ['a', true, null],
      ['b', false, 'AGENT_UNREACHABLE'],
    ]);
    await c.close();
  });

  it('an edited confirmation file (CIDs swapped) is refused by the agents and replaces no stored CID', async () => {
    const mak = await mintMak(5);
    const c = newConsole();
    await c.addMachines([await agent(mak), await agent(mak)], TOKEN, ['a', 'b']);
    const { file } = await c.collectInstallationIds('all');
    const cids = await c.confirmProxyFile(file, { url: authorityUrl });
    expect((await c.applyConfirmationFile(cids)).results.every((r) => r.ok)).toBe(true);
    // The confirmation file is not signed: whoever carries it can swap its CIDs.
    const answer = parseCidFile(cids);
    const [ra, rb] = answer.results as [CidFile['results'][number], CidFile['results'][number]];
    const swap = (r: typeof ra, other: typeof rb) =>
      r.ok && other.ok ? { ...r, confirmationId: other.confirmationId } : r;
    const edited = encodeProxyFile({ ...answer, results: [swap(ra, rb), swap(rb, ra)] });
    const refused = await c.applyConfirmationFile(edited);
    expect(refused.results.map((r) => [r.machine, r.ok, r.code])).toEqual([
      ['a', false, 'CONFIRMATION_INVALID'],
      ['b', false, 'CONFIRMATION_INVALID'],
    ]);
    // The good CIDs stay: a re-imaged machine is still reactivated from them.
    expect((await c.reactivate(['a', 'b'])).map((r) => [r.machine, r.ok])).toEqual([
      ['a', true],
      ['b', true],
    ]);
    await c.close();
  });
});

describe('a confirmation ID read out over the phone', () => {
  it('typed with any separators installs and is stored; a wrong group is named', async () => {
    const mak = await mintMak(5);
    const c = newConsole();
    await c.addMachines([await agent(mak)], TOKEN, ['pc']);
    const { file } = await c.collectInstallationIds(['pc']);
    const iid = parseIidFile(file).entries[0]?.installationId as string;
    const cid = (await authority.confirm(iid)).confirmationId;
    const groups = cid.split('-');

    // Group 7 mistyped (one digit changed).
    const wrong = [...groups];
    const g7 = wrong[6] as string;
    wrong[6] = `${(Number(g7[0]) + 1) % 10}${g7.slice(1)}`;
    expect(await failure(c.installConfirmationId('pc', wrong.join(' ')))).toMatch(
      /^CONFIRMATION_ID_INVALID: group 7 is wrong/,
    );
    expect(await failure(c.installConfirmationId('pc', 'not a cid'))).toMatch(/^CONFIRMATION_ID_INVALID: /);

    const typed = groups.map((g, i) => (i % 3 === 0 ? ` ${g}.` : `${g}/`)).join('');
    const result = await c.installConfirmationId('pc', typed);
    expect(result).toMatchObject({ ok: true, state: 'licensed', installationId: iid });
    expect(parseConfirmationId(result.confirmationId as string).text).toBe(cid);
    // Stored: reactivate needs no authority.
    expect((await c.reactivate(['pc']))[0]).toMatchObject({ ok: true });
    expect(await failure(c.installConfirmationId('nobody', cid))).toMatch(/^MACHINE_NOT_FOUND: /);

    // pc's CID typed for another machine: its agent refuses it, and nothing is stored for it.
    await c.addMachines([await agent(mak)], TOKEN, ['other']);
    const refused = await c.installConfirmationId('other', cid);
    expect(refused).toMatchObject({ ok: false, machine: 'other' });
    expect(refused.code).not.toBeNull();
    expect((await c.reactivate(['other']))[0]).toMatchObject({ ok: false, code: 'NO_CONFIRMATION_STORED' });
    await c.close();
  });
});
