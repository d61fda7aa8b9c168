import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority, type ApiTokenInfo, type User } from '@volact/authority';
import { cliExpectations } from './cli-in-process.js';

/**
 * `volact authority user …` and `volact authority token …` on the data directory: the first
 * owner is added by the CLI, a password comes from a file (never an argument), a token is
 * printed once (or written to a 0600 file) and works against the authority; nothing printed
 * afterwards holds it.
 */
const dir = mkdtempSync(join(tmpdir(), 'volact-access-cli-'));
const data = join(dir, 'a');
const passwordFile = join(dir, 'password');
const newPasswordFile = join(dir, 'new-password');
const PASSWORD = 'a long enough password 1';
const NEW_PASSWORD = 'another long password 22';
const { ok, json, refused } = cliExpectations();
const on = (...args: string[]) => [...args, '--data-dir', data];

beforeAll(async () => {
  await Authority.init(data).close();
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  writeFileSync(newPasswordFile, `${NEW_PASSWORD}\n`, { mode: 0o600 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('volact authority user and token', () => {
  it('adds the first owner from a password file; the user signs in with it; the last owner stays', async () => {
    const owner = await json<User>(
      ...on('authority', 'user', 'add', '--email', 'Owner@Example.com', '--name', 'Olive', '--role', 'owner'),
      '--password-file',
      passwordFile,
    );
    expect(owner).toMatchObject({ email: 'owner@example.com', role: 'owner', orgId: null });
    const viewer = await refused(
      ...on('authority', 'user', 'add', '--email', 'v@example.com', '--name', 'V', '--role', 'viewer'),
      '--org',
      'org_nothere',
      '--password-file',
      passwordFile,
    );
    expect(viewer.code).toBe('ORG_NOT_FOUND');
    expect(viewer.message).toMatch(/^--org: /);
    const badRole = await refused(
      ...on('authority', 'user', 'add', '--email', 'x@example.com', '--name', 'X', '--role', 'god'),
      '--password-file',
      passwordFile,
    );
    expect(badRole.code).toBe('OPTION_INVALID');
    const short = join(dir, 'short');
    writeFileSync(short, 'tooshort\n');
    const shortRefusal = await refused(
      ...on('authority', 'user', 'add', '--email', 'x@example.com', '--name', 'X', '--role', 'admin'),
      '--password-file',
      short,
    );
    expect(shortRefusal).toMatchObject({ code: 'USER_INVALID' });
    expect(shortRefusal.message).toMatch(/^--password-file: /);
    expect(shortRefusal.message).not.toContain('tooshort');

    const list = await json<{ users: User[] }>(...on('authority', 'user', 'list'));
    expect(list.users.map((u) => u.email)).toEqual(['owner@example.com']);
    expect(await ok(...on('authority', 'user', 'list'))).toContain('owner@example.com\towner\tpublisher\tenabled');
    expect((await refused(...on('authority', 'user', 'remove', 'owner@example.com'))).code).toBe('LAST_OWNER');
    expect((await refused(...on('authority', 'user', 'disable', owner.id))).code).toBe('LAST_OWNER');

    const a = Authority.open(data);
    try {
      const s = await a.access.signIn({ email: 'owner@example.com', password: PASSWORD, source: '127.0.0.1' });
      expect(s.user.id).toBe(owner.id);
      await ok(...on('authority', 'user', 'set-password', 'owner@example.com'), '--password-file', newPasswordFile);
      expect(
        ((await a.access.authenticate({ session: s.session }).catch((e: { code: string }) => e)) as { code?: string })
          .code,
      ).toBe('SESSION_EXPIRED');
      await a.access.signIn({ email: 'owner@example.com', password: NEW_PASSWORD, source: '127.0.0.1' });
    } finally {
      await a.close();
    }
  });

  it('makes a token shown once (or written to a 0600 file), lists it without its text, revokes it', async () => {
    const made = await json<{ token: string; info: ApiTokenInfo }>(
      ...on(
        'authority',
        'token',
        'create',
        '--name',
        'ci',
        '--scope',
        'publisher:read',
        '--scope',
        'org:org_default:read',
      ),
      '--expires-days',
      '30',
    );
    expect(made.token).toMatch(/^vat_[a-z2-7]{32}$/);
    expect(made.info).toMatchObject({ name: 'ci', scopes: ['publisher:read', 'org:org_default:read'], orgId: null });
    const lifetime = Date.parse(made.info.expiresAt ?? '') - Date.parse(made.info.createdAt);
    expect(Math.abs(lifetime - 30 * 86_400_000)).toBeLessThan(5_000);

    const out = join(dir, 'console.token');
    const text = await ok(
      ...on('authority', 'token', 'create', '--name', 'console', '--scope', 'org:org_default:read', '--out', out),
    );
    const written = readFileSync(out, 'utf8').trim();
    expect(written).toMatch(/^vat_[a-z2-7]{32}$/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(text).not.toContain(written);
    expect(text).toContain(`…${written.slice(-5)}`);
    // Never over an existing file.
    expect(
      (
        await refused(
          ...on('authority', 'token', 'create', '--name', 'again', '--scope', 'publisher:read', '--out', out),
        )
      ).code,
    ).toBe('OPTION_INVALID');

    const bad = await refused(...on('authority', 'token', 'create', '--name', 'x', '--scope', 'publisher:everything'));
    expect(bad.code).toBe('TOKEN_INVALID');
    expect(bad.message).toMatch(/^--scope: /);

    const listed = await ok(...on('authority', 'token', 'list'));
    expect(listed).toContain(`ci …${made.token.slice(-5)}`);
    expect(listed).not.toContain(made.token);
    expect(listed).not.toContain(written);
    const orgTokens = await json<{ tokens: ApiTokenInfo[] }>(
      ...on('authority', 'token', 'list', '--org', 'org_default'),
    );
    expect(orgTokens.tokens.map((t) => t.name)).toEqual(['console']);

    const a = Authority.open(data);
    try {
      expect((await a.access.authenticate({ bearer: written })).scopes).toEqual(['org:org_default:read']);
      expect(await ok(...on('authority', 'token', 'revoke', made.info.id))).toContain('revoked');
      expect(
        ((await a.access.authenticate({ bearer: made.token }).catch((e: { code: string }) => e)) as { code?: string })
          .code,
      ).toBe('UNAUTHORIZED');
      const audit = JSON.stringify(await a.recentAudit(100));
      expect(audit).not.toContain(made.token);
      expect(audit).not.toContain(written);
      expect(audit).not.toContain(PASSWORD);
    } finally {
      await a.close();
    }
    expect((await refused(...on('authority', 'token', 'revoke', 'tok_000000000000000000000000'))).code).toBe(
      'TOKEN_NOT_FOUND',
    );
  });
});
