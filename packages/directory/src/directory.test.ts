import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { Client } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DirectoryError,
  escapeDnValue,
  listEntries,
  publishEntry,
  readEntries,
  removeEntry,
  searchComputers,
  type DirectoryConnection,
  type DirectoryErrorCode,
} from './index.js';
import { startTestSlapd, type TestSlapd } from './slapd-test-server.js';

/** Publishing, reading and removing activation objects, and finding computers, on a real slapd. */
let slapd: TestSlapd;
let admin: DirectoryConnection;
let member: DirectoryConnection;

beforeAll(async () => {
  slapd = await startTestSlapd();
  admin = { url: slapd.url, bindDn: slapd.adminDn, password: slapd.adminPassword };
  member = { url: slapd.url, bindDn: slapd.userDn, password: slapd.userPassword };
});

afterAll(async () => {
  await slapd?.stop();
});

async function failure(promise: Promise<unknown>): Promise<DirectoryError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(DirectoryError);
    return err as DirectoryError;
  }
  throw new Error('expected a DirectoryError');
}

async function expectCode(promise: Promise<unknown>, code: DirectoryErrorCode): Promise<DirectoryError> {
  const err = await failure(promise);
  expect(err.code, err.message).toBe(code);
  return err;
}

/** Runs raw LDAP operations as the administrator (setting up what the package does not write). */
async function asAdmin(operation: (client: Client) => Promise<void>): Promise<void> {
  const client = new Client({ url: slapd.url });
  try {
    await client.bind(slapd.adminDn, slapd.adminPassword);
    await operation(client);
  } finally {
    await client.unbind();
  }
}

const ao = (name: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ name, group: 'office-2024', domain: 'corp.test', issuedAt: '2025-01-01T00:00:00Z', ...extra });

describe('publish, list, remove', () => {
  const location = () => ({ base: slapd.base });

  it('round-trips an object, creating the container on first publish', async () => {
    expect(await listEntries(admin, location())).toEqual([]); // no container yet

    const published = await publishEntry(admin, location(), 'office-2024', ao('office-2024'));
    expect(published).toEqual({
      name: 'office-2024',
      dn: `cn=office-2024,ou=volact-activation-objects,${slapd.base}`,
      replaced: false,
      containerCreated: true,
    });
    const second = await publishEntry(admin, location(), 'windows.server_2025', ao('windows.server_2025'));
    expect(second.containerCreated).toBe(false);

    const list = await listEntries(admin, location());
    expect(list.map((e) => e.name)).toEqual(['office-2024', 'windows.server_2025']);
    expect(list[0]).toMatchObject({ dn: published.dn, content: ao('office-2024') });
    expect(Date.now() - Date.parse(list[0]!.modifiedAt!)).toBeLessThan(60_000);

    await removeEntry(admin, location(), 'office-2024');
    await removeEntry(admin, location(), 'windows.server_2025');
    expect(await listEntries(admin, location())).toEqual([]);
    await expectCode(removeEntry(admin, location(), 'office-2024'), 'DIRECTORY_ENTRY_NOT_FOUND');
  });

  it('refuses a duplicate name unless told to replace', async () => {
    await publishEntry(admin, location(), 'dup', ao('dup', { v: 1 }));
    const err = await expectCode(publishEntry(admin, location(), 'dup', ao('dup', { v: 2 })), 'DIRECTORY_ENTRY_EXISTS');
    expect(err.message).toContain('replace');
    expect((await listEntries(admin, location())).find((e) => e.name === 'dup')?.content).toBe(ao('dup', { v: 1 }));

    const replaced = await publishEntry(admin, location(), 'dup', ao('dup', { v: 2 }), { replace: true });
    expect(replaced.replaced).toBe(true);
    expect((await listEntries(admin, location())).find((e) => e.name === 'dup')?.content).toBe(ao('dup', { v: 2 }));
    // replace also publishes a new name
    expect((await publishEntry(admin, location(), 'fresh', ao('fresh'), { replace: true })).replaced).toBe(false);
    await removeEntry(admin, location(), 'dup');
    await removeEntry(admin, location(), 'fresh');
  });

  it('keeps the text exactly: non-ASCII, new lines, spaces, 4 KiB', async () => {
    const content = `  {"name":"big","note":"é ü 中文 🙂\\n",\n"pad":"${'x'.repeat(4000)}"}  `;
    await publishEntry(admin, location(), 'big', content);
    expect((await readEntries(admin, location())).find((e) => e.name === 'big')?.content).toBe(content);
    await removeEntry(admin, location(), 'big');
    await expectCode(publishEntry(admin, location(), 'empty', ' \n'), 'DIRECTORY_CONTENT_INVALID');
    await expectCode(publishEntry(admin, location(), 'huge', 'x'.repeat(8193)), 'DIRECTORY_CONTENT_INVALID');
  });

  it('uses another container: an ou= one is created, others must exist', async () => {
    const custom = { base: slapd.base, container: 'ou=Activation Objects' };
    const r = await publishEntry(admin, custom, 'a', ao('a'));
    expect(r).toMatchObject({ dn: `cn=a,ou=Activation Objects,${slapd.base}`, containerCreated: true });
    expect((await listEntries(admin, custom)).map((e) => e.name)).toEqual(['a']);
    expect(await listEntries(admin, { base: slapd.base })).toEqual([]);
    await removeEntry(admin, custom, 'a');

    const err = await expectCode(
      publishEntry(admin, { base: slapd.base, container: 'cn=volact' }, 'a', ao('a')),
      'DIRECTORY_BASE_NOT_FOUND',
    );
    expect(err.message).toContain('create it first');
    await expectCode(
      publishEntry(admin, { base: slapd.base, container: 'ou=x,ou=missing-parent' }, 'a', ao('a')),
      'DIRECTORY_BASE_NOT_FOUND',
    );
  });

  it('reports a base DN that does not exist', async () => {
    const missing = { base: 'dc=nowhere,dc=test' };
    await expectCode(listEntries(admin, missing), 'DIRECTORY_BASE_NOT_FOUND');
    await expectCode(publishEntry(admin, missing, 'a', ao('a')), 'DIRECTORY_BASE_NOT_FOUND');
    await expectCode(removeEntry(admin, missing, 'a'), 'DIRECTORY_BASE_NOT_FOUND');
    await expectCode(listEntries(admin, { base: 'corp.test' }), 'DIRECTORY_BASE_NOT_FOUND');
  });

  it('rejects names that are not 1-64 letters, digits, . _ -', async () => {
    for (const name of ['', 'a,b', 'cn=x', 'a b', 'x'.repeat(65), 'é', '../x', 'a+b', '*', 'a\\b']) {
      await expectCode(publishEntry(admin, { base: slapd.base }, name, ao('x')), 'DIRECTORY_NAME_INVALID');
      await expectCode(removeEntry(admin, { base: slapd.base }, name), 'DIRECTORY_NAME_INVALID');
    }
    expect((await publishEntry(admin, { base: slapd.base }, 'x'.repeat(64), ao('x'))).name).toHaveLength(64);
    await removeEntry(admin, { base: slapd.base }, 'x'.repeat(64));
  });

  it('escapes DN values the directory accepts and reads back unchanged', async () => {
    const awkward = ' #a,b+c"d\\e<f>;g=h ';
    await asAdmin(async (client) => {
      await client.add(`cn=${escapeDnValue(awkward)},ou=volact-activation-objects,${slapd.base}`, {
        objectClass: ['applicationProcess'],
        cn: awkward,
        description: 'written by another tool',
      });
    });
    const found = (await listEntries(admin, { base: slapd.base })).find((e) => e.content === 'written by another tool');
    expect(found?.name).toBe(awkward);
    await asAdmin((client) => client.del(found!.dn));
  });
});

describe('binds and access', () => {
  const location = () => ({ base: slapd.base });

  it('a wrong password is DIRECTORY_BIND_FAILED (LDAP 49), without the password', async () => {
    const err = await expectCode(
      listEntries({ ...admin, password: 'not-the-password' }, location()),
      'DIRECTORY_BIND_FAILED',
    );
    expect(err.ldapCode).toBe(49);
    expect(err.message).not.toContain('not-the-password');
    await expectCode(
      listEntries({ ...member, bindDn: `uid=nobody,${slapd.base}` }, location()),
      'DIRECTORY_BIND_FAILED',
    );
    await expectCode(listEntries({ url: slapd.url, bindDn: slapd.adminDn }, location()), 'DIRECTORY_BIND_FAILED');
    await expectCode(listEntries({ ...admin, password: '' }, location()), 'DIRECTORY_BIND_FAILED');
  });

  it('a member reads with its own credentials but may not write', async () => {
    await publishEntry(admin, location(), 'shared', ao('shared'));
    expect((await readEntries(member, location())).map((e) => e.name)).toEqual(['shared']);

    const err = await expectCode(publishEntry(member, location(), 'mine', ao('mine')), 'DIRECTORY_ACCESS_DENIED');
    expect(err.ldapCode).toBe(50);
    await expectCode(publishEntry(member, location(), 'shared', ao('x'), { replace: true }), 'DIRECTORY_ACCESS_DENIED');
    await expectCode(removeEntry(member, location(), 'shared'), 'DIRECTORY_ACCESS_DENIED');
    // Nor may it create a container.
    await expectCode(
      publishEntry(member, { base: slapd.base, container: 'ou=member-made' }, 'm', ao('m')),
      'DIRECTORY_ACCESS_DENIED',
    );
    await removeEntry(admin, location(), 'shared');
  });

  it('an anonymous bind sees nothing on a directory that only lets members read', async () => {
    await publishEntry(admin, location(), 'hidden', ao('hidden'));
    const err = await expectCode(readEntries({ url: slapd.url }, location()), 'DIRECTORY_BASE_NOT_FOUND');
    expect(err.message).toContain('may not see it');
    await removeEntry(admin, location(), 'hidden');
  });
});

describe('connections', () => {
  const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

  it('are closed after every operation, failed or not', async () => {
    const before = sockets();
    const location = { base: slapd.base };
    await publishEntry(admin, location, 'closing', ao('closing'));
    await listEntries(member, location);
    await searchComputers(member, location);
    await failure(publishEntry(admin, location, 'closing', ao('closing')));
    await failure(publishEntry(member, location, 'other', ao('other')));
    await failure(listEntries({ ...admin, password: 'wrong' }, location));
    await failure(listEntries(admin, { base: 'dc=nowhere,dc=test' }));
    await removeEntry(admin, location, 'closing');
    await failure(removeEntry(admin, location, 'closing'));
    for (let i = 0; i < 50 && sockets() > before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sockets()).toBe(before);
  });
});

describe('reaching the directory', () => {
  it('a closed port is DIRECTORY_UNREACHABLE, at once', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const started = Date.now();
    const err = await expectCode(
      listEntries({ ...admin, url: `ldap://127.0.0.1:${port}`, timeoutMs: 500 }, { base: slapd.base }),
      'DIRECTORY_UNREACHABLE',
    );
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.message).toContain('firewall');
    expect(err.message).not.toContain(slapd.adminPassword);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('a server that never answers is DIRECTORY_UNREACHABLE after timeoutMs', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((s) => sockets.add(s));
    const port = await new Promise<number>((resolve) =>
      silent.listen(0, '127.0.0.1', () => resolve((silent.address() as { port: number }).port)),
    );
    try {
      const started = Date.now();
      await expectCode(
        listEntries({ ...admin, url: `ldap://127.0.0.1:${port}`, timeoutMs: 300 }, { base: slapd.base }),
        'DIRECTORY_UNREACHABLE',
      );
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('ldaps:// to a plain LDAP port, or to an untrusted certificate, says what to fix', async () => {
    const plain = await expectCode(
      listEntries({ ...admin, url: slapd.url.replace('ldap://', 'ldaps://'), timeoutMs: 1_000 }, { base: slapd.base }),
      'DIRECTORY_UNREACHABLE',
    );
    expect(plain.message).toContain('does not speak TLS');

    const dir = mkdtempSync(join(tmpdir(), 'volact-tls-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { stdio: 'pipe' },
      );
      const server = createTlsServer({
        key: readFileSync(join(dir, 'key.pem')),
        cert: readFileSync(join(dir, 'cert.pem')),
      });
      const port = await new Promise<number>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
      );
      try {
        const untrusted = await expectCode(
          listEntries({ ...admin, url: `ldaps://localhost:${port}`, timeoutMs: 1_000 }, { base: slapd.base }),
          'DIRECTORY_UNREACHABLE',
        );
        expect(untrusted.message).toContain('NODE_EXTRA_CA_CERTS');
      } finally {
        await new Promise((r) => server.close(r));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses URLs that are not ldap:// or ldaps:// HOST[:PORT], never repeating a password', async () => {
    for (const url of ['127.0.0.1:389', 'http://127.0.0.1', 'ldap://', 'ldap://h/dc=corp,dc=test', 'ldap://h?x']) {
      await expectCode(listEntries({ ...admin, url }, { base: slapd.base }), 'DIRECTORY_URL_INVALID');
    }
    const err = await expectCode(
      listEntries({ url: 'ldap://admin:s3cret-pw@127.0.0.1' }, { base: slapd.base }),
      'DIRECTORY_URL_INVALID',
    );
    expect(err.message).not.toContain('s3cret-pw');
  });
});

describe('searchComputers', () => {
  beforeAll(async () => {
    await asAdmin(async (client) => {
      await client.add(`ou=computers,${slapd.base}`, { objectClass: ['organizationalUnit'], ou: 'computers' });
      await client.add(`cn=pc-02,ou=computers,${slapd.base}`, { objectClass: ['device'], cn: 'pc-02' });
      await client.add(`cn=pc-01,ou=computers,${slapd.base}`, { objectClass: ['device'], cn: 'pc-01' });
      await client.add(`cn=ws-01,ou=computers,${slapd.base}`, {
        objectClass: ['computer'],
        cn: 'ws-01',
        dNSHostName: 'ws-01.corp.test',
      });
    });
  });

  it('finds device and computer entries below the base', async () => {
    expect(await searchComputers(member, { base: slapd.base })).toEqual([
      { dn: `cn=pc-01,ou=computers,${slapd.base}`, name: 'pc-01' },
      { dn: `cn=pc-02,ou=computers,${slapd.base}`, name: 'pc-02' },
      { dn: `cn=ws-01,ou=computers,${slapd.base}`, name: 'ws-01', dnsHostName: 'ws-01.corp.test' },
    ]);
  });

  it('takes a filter, and refuses one that is not a filter', async () => {
    const found = await searchComputers(admin, { base: `ou=computers,${slapd.base}`, filter: '(cn=pc-0*)' });
    expect(found.map((c) => c.name)).toEqual(['pc-01', 'pc-02']);
    expect(await searchComputers(admin, { base: slapd.base, filter: '(objectClass=computer)' })).toHaveLength(1);
    await expectCode(searchComputers(admin, { base: slapd.base, filter: '(cn=pc' }), 'DIRECTORY_FILTER_INVALID');
    await expectCode(searchComputers(admin, { base: 'dc=nowhere,dc=test' }), 'DIRECTORY_BASE_NOT_FOUND');
  });
});
