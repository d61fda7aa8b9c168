import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority, CLI_PRINCIPAL, createAuthorityServer } from '@volact/authority';
import { runCliInProcess } from './cli-in-process.js';

/**
 * An organisation gives its console a read token (`org:<id>:read`) instead of the publisher's
 * admin token: `console refresh-mak` and the mak-usage report read its own MAKs' counters with
 * it, and a MAK of another organisation is refused as absent (KEY_NOT_FOUND, 404).
 */
const ADMIN_TOKEN = 'console-org-token-admin-token-000001';
const dir = mkdtempSync(join(tmpdir(), 'volact-console-org-token-'));
const data = join(dir, 'authority');
const consoleDir = join(dir, 'console');
let authority: Authority;
let app: FastifyInstance;
let url: string;
let ownMak: string;
let otherMak: string;
const orgTokenFile = join(dir, 'org.token');
const adminTokenFile = join(dir, 'admin.token');

beforeAll(async () => {
  await Authority.init(data).close();
  authority = Authority.open(data);
  await authority.addGroup({ name: 'office14' });
  const contoso = await authority.organisations.create({ name: 'Contoso' }, CLI_PRINCIPAL);
  const fabrikam = await authority.organisations.create({ name: 'Fabrikam' }, CLI_PRINCIPAL);
  ownMak = (
    await authority.organisations.mintKey(contoso.id, { type: 'mak', groups: ['office14'], limit: 10 }, CLI_PRINCIPAL)
  ).key;
  otherMak = (
    await authority.organisations.mintKey(fabrikam.id, { type: 'mak', groups: ['office14'], limit: 20 }, CLI_PRINCIPAL)
  ).key;
  const { token } = await authority.access.createToken(
    { name: 'contoso-console', scopes: [`org:${contoso.id}:read`] },
    CLI_PRINCIPAL,
  );
  writeFileSync(orgTokenFile, token, { mode: 0o600 });
  writeFileSync(adminTokenFile, ADMIN_TOKEN, { mode: 0o600 });
  app = createAuthorityServer(authority, { adminToken: ADMIN_TOKEN });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  url = `http://127.0.0.1:${addr && typeof addr !== 'string' ? addr.port : 0}`;

  expect((await runCliInProcess(['console', 'init', '--data-dir', consoleDir])).code).toBe(0);
  for (const [name, key] of [
    ['contoso-mak', ownMak],
    ['fabrikam-mak', otherMak],
  ] as const) {
    const file = join(dir, `${name}.key`);
    writeFileSync(file, key, { mode: 0o600 });
    const r = await runCliInProcess([
      'console',
      'key',
      'add',
      '--data-dir',
      consoleDir,
      '--key-file',
      file,
      '--name',
      name,
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  }
});
afterAll(async () => {
  await app?.close();
  await authority?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Counted {
  name: string;
  ok: boolean;
  code: string | null;
  message: string;
  limit: number | null;
  used: number | null;
  remaining: number | null;
}

const refresh = async (tokenFile: string) => {
  const r = await runCliInProcess([
    ...['console', 'refresh-mak', '--data-dir', consoleDir, '--authority', url],
    ...['--admin-token-file', tokenFile, '--json'],
  ]);
  return {
    code: r.code,
    results: (JSON.parse(r.stdout) as { results: Counted[] }).results,
    output: r.stdout + r.stderr,
  };
};

describe('console refresh-mak with an organisation read token', () => {
  it("reads its own MAK's counters; the other organisation's MAK is refused as absent (404 KEY_NOT_FOUND)", async () => {
    // The publisher raises the limit: the console reads the authority's live counters.
    const keyFile = join(dir, 'contoso-mak.key');
    const raised = await runCliInProcess([
      'authority',
      'key',
      'raise',
      '--key-file',
      keyFile,
      '--limit',
      '15',
      '--url',
      url,
      '--token-file',
      adminTokenFile,
    ]);
    expect(raised.code, raised.stdout + raised.stderr).toBe(0);

    const { code, results, output } = await refresh(orgTokenFile);
    expect(code).toBe(1); // one MAK could not be read
    const own = results.find((r) => r.name === 'contoso-mak');
    const other = results.find((r) => r.name === 'fabrikam-mak');
    expect(own).toMatchObject({ ok: true, limit: 15, used: 0, remaining: 15 });
    expect(other).toMatchObject({ ok: false, code: 'AUTHORITY_REFUSED', limit: null, used: null });
    expect(other?.message).toContain('KEY_NOT_FOUND');
    // Nothing of the other organisation's key, and no token, in what the console prints.
    expect(output).not.toContain(otherMak);
    expect(output).not.toContain(ownMak);

    // The mak-usage report shows the counters read, and the refusal in the other's row.
    const report = await runCliInProcess(['console', 'report', 'mak-usage', '--data-dir', consoleDir, '--json']);
    const rows = (JSON.parse(report.stdout) as { rows: Record<string, unknown>[] }).rows;
    expect(rows.find((r) => r.name === 'contoso-mak')).toMatchObject({ limit: 15, used: 0, remaining: 15 });
    expect(rows.find((r) => r.name === 'fabrikam-mak')).toMatchObject({ limit: null, used: null });

    // The report reads the counters itself with the same token (--authority): the refusal in the row.
    const live = await runCliInProcess([
      ...['console', 'report', 'mak-usage', '--data-dir', consoleDir, '--json'],
      ...['--authority', url, '--admin-token-file', orgTokenFile],
    ]);
    expect(live.code, live.stdout + live.stderr).toBe(0);
    const liveRows = (JSON.parse(live.stdout) as { rows: Record<string, unknown>[] }).rows;
    expect(liveRows.find((r) => r.name === 'contoso-mak')).toMatchObject({ limit: 15, used: 0, authorityError: null });
    expect(liveRows.find((r) => r.name === 'fabrikam-mak')?.authorityError).toEqual(
      expect.stringContaining('KEY_NOT_FOUND'),
    );
  });

  it('the org token cannot raise a limit (it reads only); the admin token still reads every MAK', async () => {
    const keyFile = join(dir, 'contoso-mak.key');
    const raise = await runCliInProcess([
      ...['authority', 'key', 'raise', '--key-file', keyFile, '--limit', '5000', '--json'],
      ...['--url', url, '--token-file', orgTokenFile],
    ]);
    expect(raise.code).toBe(1);
    expect((JSON.parse(raise.stdout) as { error: { code: string } }).error.code).toBe('SCOPE_MISSING');
    expect((await authority.showKey(ownMak)).limit).toBe(15);

    const { code, results } = await refresh(adminTokenFile);
    expect(code).toBe(0);
    expect(results.find((r) => r.name === 'fabrikam-mak')).toMatchObject({ ok: true, limit: 20, used: 0 });
  });
});
