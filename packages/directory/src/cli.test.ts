import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSigner, generateSigningKeyPair, randomGuid, signActivationObject } from '@volact/core';
import { readEntries } from './index.js';
import { startTestSlapd, type TestSlapd } from './slapd-test-server.js';

/**
 * `volact directory publish|list|remove` as operators run them: the built binary (run
 * `npx tsc -b` first, as scripts/test.sh does) against a slapd that also lets anonymous
 * binds read, as a client machine without an account would.
 */
const BIN = fileURLToPath(new URL('../../../bin/volact.js', import.meta.url));
let slapd: TestSlapd;
let dir: string;
let passwordFile: string;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function volact(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const connection = () => ['--url', slapd.url, '--base', slapd.base];
const admin = () => [...connection(), '--bind-dn', slapd.adminDn, '--password-file', passwordFile];

function writeAo(name: string, fields: Record<string, unknown>): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ name, ...fields }, null, 2)}\n`);
  return file;
}

beforeAll(async () => {
  if (!existsSync(fileURLToPath(new URL('../../cli/dist/index.js', import.meta.url)))) {
    throw new Error('the CLI is not built: run `npx tsc -b` first');
  }
  slapd = await startTestSlapd({ anonymousRead: true });
  dir = mkdtempSync(join(tmpdir(), 'volact-directory-cli-'));
  passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, `${slapd.adminPassword}\n`);
});

afterAll(async () => {
  await slapd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('volact directory', () => {
  it('publishes, lists and removes activation objects', async () => {
    const fields = {
      format: 'volact-activation-object/3', // not signed: published as text, no expiry shown
      group: { id: '3f2a5b9c-1d4e-4f60-8a7b-9c0d1e2f3a4b', name: 'office-2024' },
      domain: 'corp.test',
      issuedAt: '2025-01-01T00:00:00.000Z',
      signature: 'x',
    };
    const file = writeAo('office-2024', fields);

    const published = await volact('directory', 'publish', ...admin(), '--json', file);
    expect(published.stderr).toBe('');
    expect(JSON.parse(published.stdout)).toEqual({
      name: 'office-2024',
      dn: `cn=office-2024,ou=volact-activation-objects,${slapd.base}`,
      replaced: false,
      containerCreated: true,
      expiresAt: null,
      warning: null,
    });
    // The text is published as written (trimmed): clients verify it as it was signed.
    const [entry] = await readEntries({ url: slapd.url }, { base: slapd.base });
    expect(entry?.content).toBe(JSON.stringify({ name: 'office-2024', ...fields }, null, 2));

    const again = await volact('directory', 'publish', ...admin(), file);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error DIRECTORY_ENTRY_EXISTS: .*--replace/);
    const replaced = await volact('directory', 'publish', ...admin(), '--replace', file);
    expect(replaced.stdout).toMatch(/^replaced office-2024 as cn=office-2024,/);

    await volact(
      'directory',
      'publish',
      ...admin(),
      writeAo('opaque', { group: 'plain-string-group', note: 'no domain' }),
    );
    // Anonymous: no --bind-dn (this directory lets anonymous binds read).
    const list = await volact('directory', 'list', ...connection());
    expect(list.stdout.trim().split('\n')).toEqual([
      'office-2024  group=office-2024  domain=corp.test  issuedAt=2025-01-01T00:00:00.000Z',
      'opaque  group=plain-string-group',
    ]);
    const json = JSON.parse((await volact('directory', 'list', ...admin(), '--json')).stdout);
    expect(json.entries[0]).toMatchObject({ name: 'office-2024', group: 'office-2024', domain: 'corp.test' });
    expect(json.entries[0].modifiedAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    expect((await volact('directory', 'remove', ...admin(), 'opaque')).stdout).toMatch(/^removed opaque from /);
    const gone = await volact('directory', 'remove', ...admin(), '--json', 'opaque');
    expect(JSON.parse(gone.stdout).error.code).toBe('DIRECTORY_ENTRY_NOT_FOUND');
    await volact('directory', 'remove', ...admin(), 'office-2024');
    expect((await volact('directory', 'list', ...connection())).stdout).toMatch(/^no activation objects in ou=/);
  });

  it('publish and list warn 30 days before an object ends, and name a format-1 object that no longer licenses', async () => {
    const root = generateSigningKeyPair();
    const make = (name: string, validityDays: number) =>
      signActivationObject(
        {
          name,
          objectId: randomGuid(),
          group: { id: '3f2a5b9c-1d4e-4f60-8a7b-9c0d1e2f3a4b', name: 'office-2024' },
          domain: 'corp.test',
          issuedAt: Date.now(),
          validityDays,
        },
        fileSigner(root),
      );
    const write = (name: string, object: unknown) => {
      const file = join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify(object));
      return file;
    };
    const soon = make('ends-soon', 20);
    const published = await volact('directory', 'publish', ...admin(), '--json', write('ends-soon', soon));
    expect(published.code).toBe(0);
    expect(published.stderr).toMatch(/^warning: ends-soon expires in 20 day\(s\), on .*re-issue it .*--replace/);
    expect(JSON.parse(published.stdout)).toMatchObject({
      name: 'ends-soon',
      expiresAt: soon.format === 'volact-activation-object/3' ? soon.expiresAt : '',
    });

    const later = await volact('directory', 'publish', ...admin(), write('ends-later', make('ends-later', 180)));
    expect(later.stderr).toBe('');
    const old = { ...make('old-format', 180), format: 'volact-activation-object/1', name: 'old-format' };
    expect((await volact('directory', 'publish', ...admin(), write('old-format', old))).stderr).toMatch(
      /^warning: the activation object has format 1, which never expires/,
    );

    const list = await volact('directory', 'list', ...connection());
    expect(list.stderr).toMatch(/warning: ends-soon expires in 20 day\(s\)/);
    expect(list.stderr).toMatch(/format 1, which never expires/);
    expect(list.stderr).not.toMatch(/ends-later/);
    expect(list.stdout).toMatch(/ends-later .*expiresAt=\d{4}-/);
    const json = JSON.parse((await volact('directory', 'list', ...connection(), '--json')).stdout) as {
      entries: { name: string }[];
    };
    const byName = new Map(json.entries.map((e: { name: string }) => [e.name, e]));
    expect(byName.get('ends-soon')).toMatchObject({ warning: expect.stringMatching(/expires in 20 day/) });
    expect(byName.get('ends-later')).toMatchObject({ warning: null, expiresAt: expect.stringMatching(/^\d{4}-/) });
    for (const name of ['ends-soon', 'ends-later', 'old-format']) await volact('directory', 'remove', ...admin(), name);
  });

  it('names the password file, never the password', async () => {
    const missing = await volact(
      'directory',
      'list',
      ...connection(),
      '--bind-dn',
      slapd.adminDn,
      '--password-file',
      join(dir, 'nope'),
    );
    expect(missing.stderr).toMatch(/^error OPTION_INVALID: --password-file .*nope cannot be read \(ENOENT\)/);

    const wrong = join(dir, 'wrong-password');
    writeFileSync(wrong, 'wrong-secret-value\n');
    const refused = await volact(
      'directory',
      'list',
      ...connection(),
      '--bind-dn',
      slapd.adminDn,
      '--password-file',
      wrong,
    );
    expect(refused.stderr).toMatch(/^error DIRECTORY_BIND_FAILED: /);
    expect(refused.stderr).not.toContain('wrong-secret-value');

    const alone = await volact('directory', 'list', ...connection(), '--bind-dn', slapd.adminDn);
    expect(alone.stderr).toMatch(/^error OPTION_INVALID: --bind-dn and --password-file go together/);
  });

  it('requires a JSON activation object with a string name', async () => {
    const notJson = join(dir, 'not.json');
    writeFileSync(notJson, 'name: x');
    expect((await volact('directory', 'publish', ...admin(), notJson)).stderr).toMatch(
      /^error OPTION_INVALID: .*not JSON/,
    );
    const nameless = writeAo('nameless', {});
    writeFileSync(nameless, '{"group":"g"}');
    expect((await volact('directory', 'publish', ...admin(), nameless)).stderr).toMatch(/no string "name" field/);
    const bad = writeAo('a,b', { group: 'g' });
    expect((await volact('directory', 'publish', ...admin(), bad)).stderr).toMatch(/^error DIRECTORY_NAME_INVALID/);
    expect((await volact('directory', 'publish', ...admin(), join(dir, 'absent.json'))).stderr).toMatch(
      /^error OPTION_INVALID: .*absent\.json cannot be read \(ENOENT\)/,
    );
  });
});
