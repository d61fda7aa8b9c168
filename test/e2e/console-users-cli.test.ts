import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VolumeConsole } from '@volact/console';
import { ManualClock } from '@volact/core';
import { SessionStore } from '../../packages/console/src/web/sessions.js';
import { cliExpectations } from './cli-in-process.js';

/** `volact console admin add|list|remove|set-role|set-password`: console users with roles. */
const { ok, json, refused } = cliExpectations();
const root = mkdtempSync(join(tmpdir(), 'volact-console-users-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const secret = (name: string, text: string) => {
  const path = join(root, name);
  writeFileSync(path, `${text}\n`, { mode: 0o600 });
  return path;
};

describe('console admin verbs', () => {
  const dataDir = join(root, 'console');
  const d = ['--data-dir', dataDir];

  it('adds users with a role, lists them without hashes, changes roles, refuses the last admin', async () => {
    await ok('console', 'init', ...d, '--admin-password-file', secret('root.pw', 'root password long'));
    const pw = secret('alice.pw', 'alice password long');
    expect(
      await json('console', 'admin', 'add', ...d, '--user', 'alice', '--password-file', pw, '--role', 'viewer'),
    ).toEqual({
      user: 'alice',
      role: 'viewer',
      added: true,
    });
    // Without --role: an admin, as before roles existed.
    await ok('console', 'admin', 'add', ...d, '--user', 'bob', '--password-file', pw);

    const listed = await json<{ users: { name: string; role: string; createdAt: string }[] }>(
      'console',
      'admin',
      'list',
      ...d,
    );
    expect(listed.users.map((u) => [u.name, u.role])).toEqual([
      ['admin', 'admin'],
      ['alice', 'viewer'],
      ['bob', 'admin'],
    ]);
    expect(JSON.stringify(listed)).not.toMatch(/scrypt|hash/i);
    const text = await ok('console', 'admin', 'list', ...d);
    expect(text).toMatch(/alice\s+viewer/);

    expect(
      (await refused('console', 'admin', 'add', ...d, '--user', 'carol', '--password-file', pw, '--role', 'owner'))
        .code,
    ).toBe('ADMIN_ROLE_INVALID');
    expect((await refused('console', 'admin', 'set-role', ...d, '--user', 'alice', '--role', 'root')).code).toBe(
      'ADMIN_ROLE_INVALID',
    );
    expect((await refused('console', 'admin', 'remove', ...d, '--user', 'nobody')).code).toBe('ADMIN_NOT_FOUND');

    await ok('console', 'admin', 'set-role', ...d, '--user', 'bob', '--role', 'viewer');
    // admin is now the only admin: neither removed nor demoted.
    const last = await refused('console', 'admin', 'remove', ...d, '--user', 'admin');
    expect(last.code).toBe('LAST_ADMIN');
    expect(last.message).toContain('admin add');
    expect((await refused('console', 'admin', 'set-role', ...d, '--user', 'ADMIN', '--role', 'viewer')).code).toBe(
      'LAST_ADMIN',
    );

    expect(await json('console', 'admin', 'set-role', ...d, '--user', 'alice', '--role', 'admin')).toEqual({
      user: 'alice',
      role: 'admin',
    });
    expect(await json('console', 'admin', 'remove', ...d, '--user', 'admin')).toEqual({ removed: 'admin' });
    expect(
      (await json<{ users: { name: string; role: string }[] }>('console', 'admin', 'list', ...d)).users.map((u) => [
        u.name,
        u.role,
      ]),
    ).toEqual([
      ['alice', 'admin'],
      ['bob', 'viewer'],
    ]);
  });

  it('set-password and remove end the user’s web sessions (kept in the database)', async () => {
    const clock = new ManualClock();
    const open = async () => {
      const c = await VolumeConsole.connect(dataDir, { clock });
      return { c, sessions: new SessionStore(c.webState, clock) };
    };
    let { c, sessions } = await open();
    const alice = await sessions.create('alice');
    const bob = await sessions.create('bob');
    await c.close();

    await ok(
      'console',
      'admin',
      'set-password',
      ...d,
      '--user',
      'alice',
      '--password-file',
      secret('new.pw', 'a new password here'),
    );
    await ok('console', 'admin', 'remove', ...d, '--user', 'bob');

    ({ c, sessions } = await open());
    try {
      expect(await sessions.get(alice)).toBeUndefined();
      expect(await sessions.get(bob)).toBeUndefined();
      expect(await c.authenticate('alice', 'a new password here')).toEqual({ user: 'alice', role: 'admin' });
    } finally {
      await c.close();
    }
  });
});
