import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, lastFiveOf, makeKey, sha256 } from '@volact/core';
import type { AgentStatus } from '@volact/core';
import { DB_FILE, VolumeConsole } from './console.js';
import { ConsoleError } from './errors.js';
import { EXPORT_FORMAT, MAX_EXPORT_BYTES, type ImportSummary } from './export.js';
import { REPORT_NAMES } from './reports.js';
import { readKeyFile } from './secrets.js';
import { SqliteConsoleStore } from './sqlite-store.js';
import type { ConsoleDump } from './store.js';

/** Export and import, on a console built at store level (no agents needed). */
const TOKEN = 'export-test-agent-token-0123456789';
const PASSPHRASE = 'correct horse battery staple';
const START = Date.UTC(2026, 10, 25, 9);
const DAY = 86_400_000;

let root: string;
let n = 0;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'volact-console-export-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const status = (over: Partial<AgentStatus> = {}): AgentStatus => ({
  state: 'initial-grace',
  method: null,
  expiresAt: new Date(START + 20 * DAY).toISOString(),
  host: null,
  group: 'office14',
  threshold: 5,
  clientMachineId: `cmid-${++n}`,
  installedKey: '…ABCDE',
  installedKeyType: 'gvlk',
  installationId: null,
  count: null,
  directoryObject: null,
  lastAttempt: null,
  nextAttemptAt: new Date(START + DAY).toISOString(),
  ...over,
});
const digest = (s: AgentStatus) => sha256(Buffer.from(JSON.stringify(s))).toString('hex');

/** Runs `use` with a second connection to a console's database (WAL: alongside the console's). */
async function withStore<T>(dir: string, use: (s: SqliteConsoleStore) => Promise<T>): Promise<T> {
  const store = new SqliteConsoleStore(join(dir, DB_FILE));
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}
const dump = (dir: string): Promise<ConsoleDump> => withStore(dir, (s) => s.dump());

const failure = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ConsoleError) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'no error';
};

interface Fixture {
  dir: string;
  console: VolumeConsole;
  clock: ManualClock;
  mak: string;
}

/**
 * A console with three machines (one licensed by a stored MAK with its CID, one at risk, one
 * unlicensed with two history rows and a last error; two share a CMID), a MAK and a GVLK.
 */
async function fixture(): Promise<Fixture> {
  const clock = new ManualClock(START);
  const dir = join(root, `console-${++n}`);
  const c = VolumeConsole.init(dir, { clock });
  await c.addMachines(['10.0.0.1:7390', '10.0.0.2:7390', '10.0.0.3:7390'], TOKEN, ['pc-01', 'pc-02', 'pc-03']);
  const mak = makeKey('mak').text;
  await c.addKey(mak, 'office-mak');
  await c.addKey(makeKey('gvlk').text);
  await withStore(dir, async (store) => {
    const [pc1, pc2, pc3] = await store.listMachines();
    if (!pc1 || !pc2 || !pc3) throw new Error('fixture');
    const licensed = status({
      state: 'licensed',
      method: 'mak',
      installedKey: lastFiveOf(mak),
      installedKeyType: 'mak',
      installationId: 'IID-0001',
      expiresAt: null,
    });
    await store.addSnapshot(pc1.id, START + 1_000, status(), 'a'.repeat(64));
    await store.addSnapshot(pc1.id, START + 2_000, licensed, digest(licensed));
    await store.recordContact(pc1.id, { at: START + 2_000, ok: true });
    const atRisk = status({ clientMachineId: 'cmid-shared' });
    await store.addSnapshot(pc2.id, START + 3_000, atRisk, digest(atRisk));
    await store.recordContact(pc2.id, { at: START + 3_000, ok: true });
    const before = status({ clientMachineId: 'cmid-shared' });
    const unlicensed = status({
      state: 'unlicensed',
      installedKey: null,
      installedKeyType: null,
      clientMachineId: 'cmid-shared',
    });
    await store.addSnapshot(pc3.id, START + 4_000, before, digest({ ...before, count: 1 }));
    await store.addSnapshot(pc3.id, START + 5_000, unlicensed, digest(unlicensed));
    await store.recordContact(pc3.id, { at: START + 5_000, ok: true });
    await store.recordContact(pc3.id, { at: START + 6_000, ok: false, code: 'AGENT_TIMEOUT', message: 'no answer' });
    await store.saveConfirmation({
      machineId: pc1.id,
      installationId: 'IID-0001',
      confirmationId: 'CID-0001-0002',
      authority: 'https://authority.example',
      obtainedAt: START + 2_000,
    });
    await store.logOperation({
      at: START + 2_000,
      operation: 'proxy-activate',
      machine: 'pc-01',
      ok: true,
      code: null,
      detail: 'x',
    });
  });
  return { dir, console: c, clock, mak };
}

async function freshConsole(clock: ManualClock): Promise<{ dir: string; console: VolumeConsole }> {
  const dir = join(root, `console-${++n}`);
  return { dir, console: VolumeConsole.init(dir, { clock }) };
}

const reports = async (c: VolumeConsole) =>
  Object.fromEntries(await Promise.all(REPORT_NAMES.map(async (r) => [r, (await c.report(r)).rows] as const)));
const confirmations = async (dir: string) => {
  const d = await dump(dir);
  const address = new Map(d.machines.map((m) => [m.id, m.address]));
  return d.confirmations.map(({ machineId, ...c }) => ({ ...c, machine: address.get(machineId) }));
};
const nothingWritten = (s: ImportSummary) =>
  [s.machines, s.statusHistory, s.keys, s.confirmationIds, s.operations].every((k) => k.added + k.updated === 0);

describe('console export / import', () => {
  it('without secrets: no key or token in the file (0600); a fresh console gets the same reports and CIDs, keys as "secret missing"', async () => {
    const src = await fixture();
    const file = join(root, `plain-${++n}.json`);
    const summary = await src.console.exportTo(file);
    expect(summary).toMatchObject({
      secrets: false,
      counts: { machines: 3, statusHistory: 5, keys: 2, confirmationIds: 1 },
    });
    const text = readFileSync(file, 'utf8');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(text).not.toContain(src.mak);
    expect(text).not.toContain(src.mak.replace(/-/g, ''));
    expect(text).not.toContain(TOKEN);
    expect(text).toContain(lastFiveOf(src.mak));
    const parsed = JSON.parse(text) as { format: string; secrets: unknown; agentTokens?: unknown };
    expect(parsed.format).toBe(EXPORT_FORMAT);
    expect(parsed.secrets).toBeNull();
    expect(parsed.agentTokens).toBeUndefined();

    const dst = await freshConsole(src.clock);
    const imported = await dst.console.importFrom(file);
    expect(imported).toMatchObject({
      machines: { added: 3 },
      statusHistory: { added: 5 },
      keys: { added: 2 },
      confirmationIds: { added: 1 },
      secretsMissing: { keys: 2, machines: 3 },
    });
    expect(await reports(dst.console)).toEqual(await reports(src.console));
    expect(await confirmations(dst.dir)).toEqual(await confirmations(src.dir));
    expect(await dst.console.listMachines()).toEqual(await src.console.listMachines());
    expect((await dst.console.history('pc-03')).length).toBe(2);

    // The missing secrets are refused by name, before any machine is called.
    expect(await failure(dst.console.installKey('office-mak', ['pc-01']))).toMatch(
      /^SECRET_MISSING: stored key "office-mak" is not in this console/,
    );
    const [refresh] = await dst.console.refresh(['pc-01']);
    expect(refresh).toMatchObject({ ok: false, code: 'SECRET_MISSING' });
    // Adding the key again fills the entry (same name, one key).
    const again = await dst.console.addKey(src.mak, 'other-name');
    expect(again.name).toBe('office-mak');
    expect((await dst.console.listKeys()).length).toBe(2);
    expect(await failure(dst.console.installKey('office-mak', []))).toBe('no error');
    await src.console.close();
    await dst.console.close();
  });

  it('importing the same file twice changes nothing; into the console it came from, nothing either', async () => {
    const src = await fixture();
    const file = join(root, `twice-${++n}.json`);
    await src.console.exportTo(file);
    const dst = await freshConsole(src.clock);
    await dst.console.importFrom(file);
    const before = await dump(dst.dir);
    const second = await dst.console.importFrom(file);
    expect(nothingWritten(second)).toBe(true);
    expect(second.machines.unchanged).toBe(3);
    expect(await dump(dst.dir)).toEqual(before);

    const own = await dump(src.dir);
    const restore = await src.console.importFrom(file);
    expect(nothingWritten(restore)).toBe(true);
    expect(await dump(src.dir)).toEqual(own);
    await src.console.close();
    await dst.console.close();
  });

  it('with secrets: sealed under the passphrase (not in clear), round trip, the same twice; wrong or no passphrase refused', async () => {
    const src = await fixture();
    const file = join(root, `secret-${++n}.json`);
    const summary = await src.console.exportTo(file, { passphrase: PASSPHRASE });
    expect(summary).toMatchObject({ secrets: true, counts: { agentTokens: 1, keys: 2 } });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(src.mak);
    expect(text).not.toContain(src.mak.replace(/-/g, ''));
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(readFileSync(join(src.dir, 'console.key'), 'utf8').trim());

    const dst = await freshConsole(src.clock);
    const empty = await dump(dst.dir);
    expect(await failure(dst.console.importFrom(file, { passphrase: 'not the passphrase at all' }))).toMatch(
      /^PASSPHRASE_WRONG: /,
    );
    expect(await failure(dst.console.importFrom(file))).toMatch(/^PASSPHRASE_REQUIRED: /);
    expect(await dump(dst.dir)).toEqual(empty);

    const imported = await dst.console.importFrom(file, { passphrase: PASSPHRASE });
    expect(imported).toMatchObject({ secrets: true, secretsMissing: { keys: 0, machines: 0 }, keys: { added: 2 } });
    expect(await reports(dst.console)).toEqual(await reports(src.console));
    expect(await confirmations(dst.dir)).toEqual(await confirmations(src.dir));
    // Re-sealed under the new console's own key: they open there.
    const box = readKeyFile(dst.dir);
    const d = await dump(dst.dir);
    const mak = d.keys.find((k) => k.name === 'office-mak');
    expect(mak && box.unseal(mak.sealed, `key:${mak.fingerprint}`, 'k')).toBe(src.mak);
    expect(d.tokens.map((t) => box.unseal(t.sealed, `token:${t.fingerprint}`, 't'))).toEqual([TOKEN]);

    const before = await dump(dst.dir);
    expect(nothingWritten(await dst.console.importFrom(file, { passphrase: PASSPHRASE }))).toBe(true);
    expect(await dump(dst.dir)).toEqual(before);

    // A file without secrets first, then the one with them: the missing secrets are filled in.
    const plain = join(root, `plain-${++n}.json`);
    await src.console.exportTo(plain);
    const third = await freshConsole(src.clock);
    await third.console.importFrom(plain);
    const filled = await third.console.importFrom(file, { passphrase: PASSPHRASE });
    expect(filled).toMatchObject({
      keys: { updated: 2 },
      machines: { updated: 3 },
      secretsMissing: { keys: 0, machines: 0 },
    });
    for (const c of [src, dst, third]) await c.console.close();
  });

  it('a tampered file (version, size, a bad field, an altered secret) is refused by name; the store is untouched', async () => {
    const src = await fixture();
    const file = join(root, `good-${++n}.json`);
    await src.console.exportTo(file, { passphrase: PASSPHRASE });
    const good = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> & {
      machines: { address: string }[];
      statusHistory: { status: { state: string } }[];
      keys: { secret: string }[];
      confirmationIds: { machine: string }[];
    };
    const dst = await freshConsole(src.clock);
    const empty = await dump(dst.dir);
    const attempt = async (data: unknown, passphrase = PASSPHRASE) => {
      const bad = join(root, `bad-${++n}.json`);
      writeFileSync(bad, typeof data === 'string' ? data : JSON.stringify(data));
      return failure(dst.console.importFrom(bad, { passphrase }));
    };
    const clone = () => structuredClone(good);

    expect(await attempt({ ...clone(), format: 'volact-console-export/2' })).toBe(
      'IMPORT_INVALID: format: "volact-console-export/2" is not volact-console-export/1 (this console reads that version only)',
    );
    expect(await attempt('{"format": "volact-console-export/1", ')).toMatch(/^IMPORT_INVALID: the file is not JSON/);
    const badAddress = clone();
    (badAddress.machines[1] as { address: string }).address = 'not an address';
    expect(await attempt(badAddress)).toMatch(/^IMPORT_INVALID: machines\[1\]\.address: not a machine address/);
    const badState = clone();
    (badState.statusHistory[0] as { status: { state: string } }).status.state = 'bogus';
    expect(await attempt(badState)).toMatch(/^IMPORT_INVALID: statusHistory\[0\]\.status\.state: /);
    expect(await attempt({ ...clone(), extra: 1 })).toMatch(/^IMPORT_INVALID: \(the file\): .*extra/);
    const orphan = clone();
    (orphan.confirmationIds[0] as { machine: string }).machine = '10.9.9.9:7390';
    expect(await attempt(orphan)).toBe(
      'IMPORT_INVALID: confirmationIds[0].machine: 10.9.9.9:7390 is not among the machines',
    );
    const altered = clone();
    const secret = Buffer.from((altered.keys[0] as { secret: string }).secret, 'base64');
    secret[14] = (secret[14] as number) ^ 1;
    (altered.keys[0] as { secret: string }).secret = secret.toString('base64');
    expect(await attempt(altered)).toMatch(/^IMPORT_INVALID: keys\[0\]\.secret: does not decrypt/);
    const tooMany = clone();
    tooMany.keys = Array.from({ length: 10_001 }, () => good.keys[0] as { secret: string });
    expect(await attempt(tooMany)).toBe('IMPORT_TOO_LARGE: keys: more than 10000 entries');
    const huge = join(root, `huge-${++n}.json`);
    writeFileSync(huge, '{}');
    truncateSync(huge, MAX_EXPORT_BYTES + 1);
    expect(await failure(dst.console.importFrom(huge))).toMatch(/^IMPORT_TOO_LARGE: .* larger than 64 MiB/);

    expect(await dump(dst.dir)).toEqual(empty);
    await src.console.close();
    await dst.console.close();
  });

  it("another console's file merges: machines by address, CIDs kept from both, the newer status stays the latest; a taken name refuses all", async () => {
    const src = await fixture();
    const file = join(root, `merge-${++n}.json`);
    await src.console.exportTo(file);
    const dst = await freshConsole(src.clock);
    // The same agent at 10.0.0.3 under another name, read later; and a machine of its own.
    await dst.console.addMachines(['10.0.0.3:7390', '10.0.0.9:7390'], TOKEN, ['lab-3', 'lab-9']);
    const newer = status({ state: 'licensed', method: 'kms', host: 'kms.example:1688' });
    await withStore(dst.dir, async (store) => {
      const lab3 = await store.findMachine('lab-3');
      const lab9 = await store.findMachine('lab-9');
      if (!lab3 || !lab9) throw new Error('fixture');
      await store.addSnapshot(lab3.id, START + 10_000, newer, digest(newer));
      await store.saveConfirmation({
        machineId: lab9.id,
        installationId: 'IID-0009',
        confirmationId: 'CID-0009',
        authority: null,
        obtainedAt: START,
      });
    });
    const imported = await dst.console.importFrom(file);
    expect(imported).toMatchObject({
      machines: { added: 2, updated: 1 },
      statusHistory: { added: 5 },
      confirmationIds: { added: 1 },
    });
    const machines = await dst.console.listMachines();
    expect(machines.map((m) => m.name)).toEqual(['lab-3', 'lab-9', 'pc-01', 'pc-02']);
    expect(machines.find((m) => m.name === 'lab-3')).toMatchObject({ state: 'licensed', method: 'kms' });
    expect((await dst.console.history('lab-3')).map((h) => h.status.state)).toEqual([
      'initial-grace',
      'unlicensed',
      'licensed',
    ]);
    expect((await confirmations(dst.dir)).map((c) => c.confirmationId).sort()).toEqual(['CID-0001-0002', 'CID-0009']);
    const before = await dump(dst.dir);
    expect(nothingWritten(await dst.console.importFrom(file))).toBe(true);
    expect(await dump(dst.dir)).toEqual(before);

    // "pc-01" at another address here: nothing of the file is imported.
    const other = await freshConsole(src.clock);
    await other.console.addMachines(['10.0.0.7:7390'], TOKEN, ['pc-01']);
    const empty = await dump(other.dir);
    expect(await failure(other.console.importFrom(file))).toMatch(
      /^MACHINE_EXISTS: the machine "pc-01" is at 10.0.0.1:7390 in the file but "pc-01" is 10.0.0.7:7390 here/,
    );
    expect(await dump(other.dir)).toEqual(empty);
    for (const c of [src, dst, other]) await c.console.close();
  });
});
