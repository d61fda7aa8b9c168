import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Keys on the command line are visible to every local user in `ps`: every command that takes
 * a secret key also takes it from a file (--key-file) or standard input (-), run here as users
 * run it, through the built binary.
 */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'volact-secret-input-'));
const A = join(dir, 'authority');

function volact(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    input: input ?? '',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(args: string[], input?: string): string {
  const r = volact(args, input);
  expect(r.stderr, args.join(' ')).toBe('');
  expect(r.code, args.join(' ')).toBe(0);
  return r.stdout;
}

function mint(type: 'mak' | 'kms-host'): string {
  const extra = type === 'mak' ? ['--limit', '10'] : [];
  const out = ok([
    'authority',
    'key',
    'mint',
    '--data-dir',
    A,
    '--type',
    type,
    '--group',
    'office14',
    ...extra,
    '--json',
  ]);
  return (JSON.parse(out) as { key: string }).key;
}

let mak = '';
let hostKey = '';
let makFile = '';
let productFile = '';

beforeAll(() => {
  ok(['authority', 'init', '--data-dir', A]);
  ok(['authority', 'group', 'add', '--data-dir', A, '--name', 'office14', '--threshold', '5']);
  productFile = join(dir, 'product.json');
  writeFileSync(productFile, ok(['authority', 'product-config', '--data-dir', A, '--group', 'office14']));
  mak = mint('mak');
  hostKey = mint('kms-host');
  makFile = join(dir, 'mak.txt');
  writeFileSync(makFile, `${mak}\n`, { mode: 0o600 });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('secrets stay out of the process list', () => {
  it('authority key show|raise|revoke read the key from --key-file or standard input', () => {
    const shown = JSON.parse(ok(['authority', 'key', 'show', '--data-dir', A, '--key-file', makFile, '--json'])) as {
      limit: number;
    };
    expect(shown.limit).toBe(10);
    const raised = JSON.parse(
      ok(['authority', 'key', 'raise', '-', '--data-dir', A, '--limit', '20', '--json'], mak),
    ) as {
      limit: number;
    };
    expect(raised.limit).toBe(20);
    // The argument form keeps working for scripts, and all three agree.
    const viaArgument = JSON.parse(ok(['authority', 'key', 'show', mak, '--data-dir', A, '--json'])) as {
      limit: number;
    };
    expect(viaArgument.limit).toBe(20);
    const revokeKey = mint('mak');
    const revoked = JSON.parse(
      ok(['authority', 'key', 'revoke', '--data-dir', A, '--key-file', '-', '--json'], `${revokeKey}\n`),
    ) as { revokedAt: string | null };
    expect(revoked.revokedAt).toEqual(expect.any(String));
  });

  it('a key given twice, or not at all, is refused with the fix, never echoed', () => {
    const twice = volact(['authority', 'key', 'show', mak, '--data-dir', A, '--key-file', makFile]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('--key-file');
    expect(twice.stderr).not.toContain(mak);
    const none = volact(['authority', 'key', 'show', '--data-dir', A]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('exactly once');
    const empty = volact(['authority', 'key', 'show', '-', '--data-dir', A], '');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('standard input is empty');
    const missing = volact(['authority', 'key', 'show', '--data-dir', A, '--key-file', join(dir, 'nope.txt')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ENOENT');
  });

  it('client install-key and host install-key take the key from a file or standard input', () => {
    const pc = join(dir, 'pc1');
    ok(['client', 'init', '--state-dir', pc, '--product', productFile, '--hardware-id', 'pc1']);
    ok(['client', 'install-key', '--state-dir', pc, '--key-file', makFile]);
    const status = JSON.parse(ok(['client', 'status', '--state-dir', pc, '--json'])) as { installedKey: string };
    expect(status.installedKey).toContain(mak.slice(-5));

    const pc2 = join(dir, 'pc2');
    ok(['client', 'init', '--state-dir', pc2, '--product', productFile, '--hardware-id', 'pc2']);
    ok(['client', 'install-key', '--state-dir', pc2, '-'], mak);
    const status2 = JSON.parse(ok(['client', 'status', '--state-dir', pc2, '--json'])) as { installedKey: string };
    expect(status2.installedKey).toBe(status.installedKey);

    const host = JSON.parse(
      ok(['host', 'install-key', '--data-dir', join(dir, 'host'), '--hardware-id', 'kms-1', '-', '--json'], hostKey),
    ) as { installed: string };
    expect(host.installed).toBe(`…${hostKey.slice(-5)}`);
  });

  it('console install-key --key-file and directory installation-id --key-file keep the key out of argv', () => {
    const con = join(dir, 'console');
    const password = join(dir, 'admin.txt');
    writeFileSync(password, 'correct horse battery staple\n', { mode: 0o600 });
    ok(['console', 'init', '--data-dir', con, '--admin-password-file', password]);
    ok(['console', 'key', 'add', '-', '--data-dir', con, '--name', 'office-mak'], mak);
    const keys = JSON.parse(ok(['console', 'key', 'list', '--data-dir', con, '--json'])) as {
      keys: { name: string; key: string }[];
    };
    expect(keys.keys.map((k) => k.name)).toEqual(['office-mak']);
    expect(JSON.stringify(keys)).not.toContain(mak);

    const hostKeyFile = join(dir, 'host-key.txt');
    writeFileSync(hostKeyFile, hostKey, { mode: 0o600 });
    const args = ['directory', 'installation-id', '--domain', 'corp.test', '--product', productFile, '--json'];
    const fromFile = JSON.parse(ok([...args, '--key-file', hostKeyFile])) as { installationId: string };
    const fromArgument = JSON.parse(ok([...args, '--key', hostKey])) as { installationId: string };
    expect(fromFile.installationId).toBe(fromArgument.installationId);
  });

  it("each command's help says the argument form is visible to other users", () => {
    for (const command of [
      ['authority', 'key', 'show'],
      ['authority', 'key', 'raise'],
      ['authority', 'key', 'revoke'],
      ['client', 'install-key'],
      ['host', 'install-key'],
      ['console', 'key', 'add'],
      ['console', 'install-key'],
      ['directory', 'installation-id'],
      ['directory', 'object-from-confirmation'],
    ]) {
      const help = volact([...command, '--help']);
      expect(help.code, command.join(' ')).toBe(0);
      expect(help.stdout.replace(/\s+/g, ' '), command.join(' ')).toMatch(/visible to other local users/);
      expect(help.stdout, command.join(' ')).toContain('--key-file');
    }
  });
});
