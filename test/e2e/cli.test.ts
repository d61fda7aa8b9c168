import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres } from '@volact/authority/testing';
import { dig, startTestBind, type TestBind } from '@volact/core/testing';
import { startTestSlapd, type TestSlapd } from '@volact/directory/testing';

/** The CLI surface of the issue, run as users run it: the built `volact` binary. */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'volact-cli-'));
const daemons: ChildProcess[] = [];

function volact(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts a daemon and resolves with the port it reports on stderr ("… listening on …:PORT"). */
const daemonLogs = new Map<string, () => string>();

/** Polls a condition (bounded): for output a daemon writes on its own schedule. */
async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function daemon(...args: string[]): Promise<number> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  daemons.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  daemonLogs.set(args.slice(0, 2).join(' '), () => out);
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (?:http:\/\/)?[\d.]+:(\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`volact ${args.join(' ')} exited ${code}: ${err}`)));
  });
}

/** Mints a KMS host key for office14 in the test authority; returns the key text. */
function mintHostKey(...extra: string[]): string {
  const r = volact(
    'authority',
    'key',
    'mint',
    '--data-dir',
    A,
    '--type',
    'kms-host',
    '--group',
    'office14',
    ...extra,
    '--json',
  );
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { key: string }).key;
}

let authorityUrl = '';
let hostPort = 0;
const A = join(dir, 'authority');
const H = join(dir, 'host');
const productFile = join(dir, 'product.json');

beforeAll(async () => {
  expect(volact('authority', 'init', '--data-dir', A).code).toBe(0);
  expect(volact('authority', 'group', 'add', '--data-dir', A, '--name', 'office14', '--threshold', '5').code).toBe(0);
  const config = volact('authority', 'product-config', '--data-dir', A, '--group', 'office14');
  expect(config.code).toBe(0);
  writeFileSync(productFile, config.stdout);
  authorityUrl = `http://127.0.0.1:${await daemon('authority', 'serve', '--data-dir', A, '--listen', '127.0.0.1:0')}`;
});

afterAll(() => {
  for (const d of daemons) d.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('volact CLI', () => {
  it('mints a host key, activates and serves a host; clients activate at the threshold with exit codes', async () => {
    const key = mintHostKey();
    expect(key).toMatch(/^[0-9A-Z]{5}(-[0-9A-Z]{5}){4}$/);
    expect(volact('host', 'install-key', '--data-dir', H, key, '--hardware-id', 'host-1').code).toBe(0);
    const act = volact('host', 'activate', '--data-dir', H, '--authority', authorityUrl, '--json');
    expect(act.code).toBe(0);
    expect(JSON.parse(act.stdout)).toMatchObject({ activated: true, hostsUsed: 1, hostLimit: 6 });
    hostPort = await daemon('host', 'serve', '--data-dir', H, '--listen', '127.0.0.1:0');
    // the daemon runs in a node started with the flags it was benchmarked with (HOST_NODE_FLAGS)
    const hostLog = daemonLogs.get('host serve')!;
    await until(() => hostLog().includes('\n')); // log lines are written within half a second
    const runtime = JSON.parse(hostLog().split('\n')[0]!) as { nodeFlags: string[] };
    expect(runtime.nodeFlags).toContain('--max-semi-space-size=4');

    for (let i = 1; i <= 5; i++) {
      const C = join(dir, `client-${i}`);
      expect(volact('client', 'init', '--state-dir', C, '--product', productFile, '--hardware-id', `m-${i}`).code).toBe(
        0,
      );
      expect(volact('client', 'set-host', '--state-dir', C, `127.0.0.1:${hostPort}`).code).toBe(0);
      const r = volact('client', 'activate', '--state-dir', C);
      if (i < 5) {
        expect(r.code).toBe(2);
        expect(r.stderr).toContain(`count ${i} of 5`);
      } else {
        expect(r.code).toBe(0);
      }
    }
    const again = volact('client', 'activate', '--state-dir', join(dir, 'client-1'), '--json');
    expect(again.code).toBe(0);
    const status = JSON.parse(volact('client', 'status', '--state-dir', join(dir, 'client-1'), '--json').stdout);
    expect(status).toMatchObject({ state: 'licensed', method: 'kms', host: `127.0.0.1:${hostPort}`, count: 5 });
    expect(Date.parse(status.expiresAt)).toBeGreaterThan(Date.now() + 179 * 86_400_000);

    // the running host flushes its window every 250 ms; status reads it from the data dir, so
    // wait (bounded) until the flush holds all six requests
    type HostStatusJson = { groups: unknown[]; requests: { total: number; byClientState: Record<string, number> } };
    const hostStatus = () => JSON.parse(volact('host', 'status', '--data-dir', H, '--json').stdout) as HostStatusJson;
    let hs = hostStatus();
    await until(() => {
      if (hs.requests.total === 6) return true;
      hs = hostStatus();
      return false;
    }, 15_000);
    expect(hs.groups).toEqual([expect.objectContaining({ name: 'office14', count: 5, threshold: 5 })]);
    expect(hs.requests).toMatchObject({ total: 6, failed: 0 });
    expect(hs.requests.byClientState['initial-grace']).toBe(6);
    // one JSON log line per request, with the decision (written within half a second)
    await until(() => hostLog().split('"decision":"COUNTED"').length === 7);
    const lines = hostLog()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { decision?: string });
    expect(lines.filter((l) => l.decision === 'COUNTED').length).toBe(6);
  });

  it('refuses a 7th host with a 6-host key, naming the key by its last five characters', () => {
    const minted = { key: mintHostKey('--hosts', '6') };
    const last5 = minted.key.replace(/-/g, '').slice(-5);
    for (let i = 1; i <= 7; i++) {
      const dirI = join(dir, `h7-${i}`);
      expect(volact('host', 'install-key', '--data-dir', dirI, minted.key, '--hardware-id', `hw-${i}`).code).toBe(0);
      const r = volact('host', 'activate', '--data-dir', dirI, '--authority', authorityUrl);
      if (i <= 6) expect(r.code).toBe(0);
      else {
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain('HOST_LIMIT_REACHED');
        expect(r.stderr).toContain('6 of 6 hosts');
        expect(r.stderr).toContain(last5);
        expect(r.stderr).not.toContain(minted.key);
      }
    }
  });

  it('shows, raises and revokes a key from the data directory, naming it by its last five characters', () => {
    const key = mintHostKey('--hosts', '1');
    const shown = volact('authority', 'key', 'show', key, '--data-dir', A, '--json');
    expect(JSON.parse(shown.stdout)).toMatchObject({ limit: 1, used: 0, remaining: 1, revokedAt: null });
    expect(shown.stdout).not.toContain(key);
    expect(
      JSON.parse(volact('authority', 'key', 'raise', key, '--data-dir', A, '--limit', '4', '--json').stdout),
    ).toMatchObject({
      limit: 4,
      remaining: 4,
    });
    const revoked = volact('authority', 'key', 'revoke', key, '--data-dir', A);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain('REVOKED');
  });

  it('activates MAK installations online and by phone; the one past the limit exits with MAK_LIMIT_REACHED', () => {
    const minted = volact(
      'authority',
      'key',
      'mint',
      '--data-dir',
      A,
      '--type',
      'mak',
      '--group',
      'office14',
      '--limit',
      '2',
      '--json',
    );
    expect(minted.code).toBe(0);
    const mak = (JSON.parse(minted.stdout) as { key: string }).key;
    // Each machine gives its hardware id at every start (the store is not trusted with it).
    const hw = (stateDir: string) => ['--hardware-id', `hw-${basename(stateDir)}`];
    const client = (name: string) => {
      const stateDir = join(dir, 'mak', name);
      expect(volact('client', 'init', '--state-dir', stateDir, '--product', productFile, ...hw(stateDir)).code).toBe(0);
      expect(volact('client', 'install-key', mak, '--state-dir', stateDir, ...hw(stateDir)).code).toBe(0);
      return stateDir;
    };
    const online = client('online');
    expect(volact('client', 'activate', '--state-dir', online, '--authority', authorityUrl, ...hw(online)).code).toBe(
      0,
    );
    expect(JSON.parse(volact('client', 'status', '--state-dir', online, '--json', ...hw(online)).stdout)).toMatchObject(
      {
        state: 'licensed',
        method: 'mak',
        expiresAt: null,
      },
    );

    const phone = client('phone');
    const iid = volact('client', 'installation-id', '--state-dir', phone, ...hw(phone)).stdout.trim();
    expect(iid).toMatch(/^(\d{6}-){12}\d{6}$/);
    // Typed with spaces, as an operator would: the groups arrive as separate arguments.
    const confirmed = volact('authority', 'confirm', '--data-dir', A, ...iid.split('-'));
    expect(confirmed.code).toBe(0);
    const cid = confirmed.stdout.trim();
    const typo = cid.replace(/^(\d{6}-\d{6}-)(\d)/, (_m, head: string, d: string) => `${head}${(Number(d) + 1) % 10}`);
    const wrong = volact('client', 'install-confirmation', typo, '--state-dir', phone, ...hw(phone));
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('error CONFIRMATION_INVALID: confirmation ID: group 3 is wrong');
    expect(volact('client', 'install-confirmation', cid, '--state-dir', phone, ...hw(phone)).code).toBe(0);
    expect(JSON.parse(volact('client', 'status', '--state-dir', phone, '--json', ...hw(phone)).stdout)).toMatchObject({
      method: 'mak',
    });

    const third = client('third');
    const refused = volact('client', 'activate', '--state-dir', third, '--authority', authorityUrl, ...hw(third));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`MAK_LIMIT_REACHED: MAK …${mak.replace(/-/g, '').slice(-5)} has used all 2`);
    const shown = JSON.parse(volact('authority', 'key', 'show', mak, '--data-dir', A, '--json').stdout) as Record<
      string,
      unknown
    >;
    expect(shown).toMatchObject({ type: 'mak', group: 'office14', limit: 2, used: 2, remaining: 0 });
    expect((shown.activations as unknown[]).length).toBe(2);
  });

  it('activates a KMS host by phone: installation-id, authority confirm, install-confirmation', () => {
    const key = mintHostKey('--hosts', '1');
    const hostDir = join(dir, 'phone-host');
    expect(volact('host', 'install-key', key, '--data-dir', hostDir, '--hardware-id', 'phone-host').code).toBe(0);
    const iid = volact('host', 'installation-id', '--data-dir', hostDir, '--product', productFile);
    expect(iid.code).toBe(0);
    const cid = volact('authority', 'confirm', '--data-dir', A, iid.stdout.trim()).stdout.trim();
    const installed = volact('host', 'install-confirmation', cid, '--data-dir', hostDir, '--json');
    expect(installed.code).toBe(0);
    expect(JSON.parse(installed.stdout)).toMatchObject({ activated: true, groups: [{ name: 'office14' }] });
    const status = JSON.parse(volact('host', 'status', '--data-dir', hostDir, '--json').stdout) as {
      certificate: { expiresAt: string } | undefined;
    };
    expect(Date.parse(status.certificate?.expiresAt ?? '')).toBeGreaterThan(Date.now() + 360 * 86_400_000);
  });

  it('rejects a mistyped key with "key checksum failed" and leaves the host as it was', () => {
    const key = mintHostKey();
    const typo = (key[0] === 'A' ? 'B' : 'A') + key.slice(1);
    const r = volact('host', 'install-key', '--data-dir', H, typo);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('key checksum failed');
    expect(JSON.parse(volact('host', 'status', '--data-dir', H, '--json').stdout).activated).toBe(true);
  });

  it('gives clear errors for a missing installation and a bad host address', () => {
    const missing = volact('client', 'status', '--state-dir', join(dir, 'nope'), '--json');
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout).error.code).toBe('CLIENT_NOT_INITIALISED');
    const bad = volact('client', 'set-host', '--state-dir', join(dir, 'client-1'), 'not a host');
    expect(bad.stderr).toContain('HOST_ADDRESS_INVALID');
  });

  it('runs the demo to the end: the fleet turns licensed', () => {
    const r = volact('demo', '--exit', '--clients', '6', '--data-dir', join(dir, 'demo'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('count 4 of 5 → initial-grace');
    expect(r.stdout).toContain('6 of 6 clients licensed');
    // the SDK example in docs/ runs against a demo installation
    const example = spawnSync(
      process.execPath,
      [
        fileURLToPath(new URL('../../docs/examples/sdk-example.mjs', import.meta.url)),
        join(dir, 'demo', 'clients', 'client-1'),
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(example.status).toBe(0);
    expect(example.stdout).toMatch(/^office14: licensed until \d{4}-/);
    expect(example.stdout).toContain('not activated (KMS_UNREACHABLE)'); // the demo's host has stopped
  });

  it('runs two authority processes on one PostgreSQL database (--db): a 6-host key stays exact across them', async () => {
    const postgres = await startTestPostgres();
    try {
      const db = await postgres.createDatabase();
      const PA = join(dir, 'pg-authority');
      expect(volact('authority', 'init', '--data-dir', PA, '--db', db).code).toBe(0);
      expect(volact('authority', 'group', 'add', '--data-dir', PA, '--db', db, '--name', 'office14').code).toBe(0);
      const { key } = JSON.parse(
        volact(
          'authority',
          'key',
          'mint',
          '--data-dir',
          PA,
          '--db',
          db,
          '--type',
          'kms-host',
          '--group',
          'office14',
          '--json',
        ).stdout,
      ) as { key: string };
      const nodes = await Promise.all(
        [1, 2].map(() => daemon('authority', 'serve', '--data-dir', PA, '--db', db, '--listen', '127.0.0.1:0')),
      );
      const codes: (number | null)[] = [];
      for (let i = 1; i <= 7; i++) {
        const hostDir = join(dir, `pg-host-${i}`);
        volact('host', 'install-key', '--data-dir', hostDir, key, '--hardware-id', `pg-hw-${i}`);
        const r = volact('host', 'activate', '--data-dir', hostDir, '--authority', `http://127.0.0.1:${nodes[i % 2]}`);
        codes.push(r.code);
        if (i === 7) expect(r.stderr).toContain('HOST_LIMIT_REACHED');
      }
      expect(codes).toEqual([0, 0, 0, 0, 0, 0, 1]);
    } finally {
      postgres.stop();
    }
  });
});

describe('volact CLI: DNS publication and discovery, directory-based activation', () => {
  let bind: TestBind;
  let slapd: TestSlapd;
  beforeAll(async () => {
    [bind, slapd] = await Promise.all([startTestBind({ zones: ['corp.test'] }), startTestSlapd()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([bind?.stop(), slapd?.stop()]);
  });

  it('host serve --publish puts the host in DNS; a client with set-domain discovers it; host status shows it', async () => {
    const key = mintHostKey();
    const hostDir = join(dir, 'dns-host');
    expect(volact('host', 'install-key', '--data-dir', hostDir, key, '--hardware-id', 'dns-host').code).toBe(0);
    expect(volact('host', 'activate', '--data-dir', hostDir, '--authority', authorityUrl).code).toBe(0);
    const port = await daemon(
      'host',
      'serve',
      '--data-dir',
      hostDir,
      '--listen',
      '127.0.0.1:0',
      '--dns-server',
      `127.0.0.1:${bind.port}`,
      '--publish',
      'corp.test,0,5',
      '--tsig-key-file',
      bind.keyFile,
      '--dns-name',
      'kmscli',
      '--dns-address',
      '127.0.0.1',
    );
    expect(dig(bind.port, '_vlmcs._tcp.corp.test', 'SRV')).toContain(`0 5 ${port} kmscli.corp.test.`);
    const status = JSON.parse(volact('host', 'status', '--data-dir', hostDir, '--json').stdout) as {
      dns: { domains: { domain: string; publishedAt: string | null }[] };
    };
    expect(status.dns.domains[0]).toMatchObject({ domain: 'corp.test' });
    expect(status.dns.domains[0]?.publishedAt).not.toBeNull();

    const C = join(dir, 'dns-client');
    expect(
      volact('client', 'init', '--state-dir', C, '--product', productFile, '--hardware-id', 'dns-client').code,
    ).toBe(0);
    expect(
      volact('client', 'set-domain', '--state-dir', C, 'corp.test', '--dns-server', `127.0.0.1:${bind.port}`).code,
    ).toBe(0);
    const found = JSON.parse(volact('client', 'discover', '--state-dir', C, '--json').stdout) as {
      hosts: { address: string }[];
    };
    expect(found.hosts.map((h) => h.address)).toEqual([`kmscli.corp.test:${port}`]);
    const activated = volact('client', 'activate', '--state-dir', C, '--json');
    expect([0, 2]).toContain(activated.code); // licensed, or counted below the threshold: the host answered
    expect(JSON.parse(activated.stdout)).toMatchObject({ host: `kmscli.corp.test:${port}`, hostSource: 'dns' });
    expect(volact('client', 'set-caching', '--state-dir', C, 'off').code).toBe(0);
    expect(JSON.parse(volact('client', 'status', '--state-dir', C, '--json').stdout).discovery).toMatchObject({
      caching: false,
    });
  }, 60_000);

  it('runs the demo with --dns: the host published in a loopback BIND, the fleet finding it there', () => {
    const r = volact('demo', '--dns', '--exit', '--clients', '5', '--data-dir', join(dir, 'demo-dns'));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/published in DNS \(127\.0\.0\.1:\d+\): _vlmcs\._tcp\.demo\.test -> kms1\.demo\.test:\d+/);
    expect(r.stdout).toMatch(/client {2}5: count 5 of 5 → licensed \[found kms1\.demo\.test:\d+ in DNS\]/);
    expect(r.stdout).toContain('5 of 5 clients licensed');
  }, 60_000);

  it('authority activation-object create, directory publish/list/remove, client join-domain: licensed by the directory', () => {
    const object = volact(
      'authority',
      'activation-object',
      'create',
      '--data-dir',
      A,
      '--group',
      'office14',
      '--domain',
      'corp.test',
      '--name',
      'office14-corp',
    );
    expect(object.code).toBe(0);
    const objectFile = join(dir, 'ao.json');
    writeFileSync(objectFile, object.stdout);
    const passwordFile = join(dir, 'ldap-admin.password');
    writeFileSync(passwordFile, slapd.adminPassword);
    const connection = [
      '--url',
      slapd.url,
      '--bind-dn',
      slapd.adminDn,
      '--password-file',
      passwordFile,
      '--base',
      slapd.base,
    ];
    expect(volact('directory', 'publish', ...connection, objectFile).code).toBe(0);
    const listed = JSON.parse(volact('directory', 'list', ...connection, '--json').stdout) as {
      entries: { name: string }[];
    };
    expect(listed.entries.map((e) => e.name)).toEqual(['office14-corp']);

    const C = join(dir, 'member');
    const userPassword = join(dir, 'ldap-user.password');
    writeFileSync(userPassword, slapd.userPassword);
    expect(volact('client', 'init', '--state-dir', C, '--product', productFile, '--hardware-id', 'member').code).toBe(
      0,
    );
    expect(
      volact(
        'client',
        'join-domain',
        '--state-dir',
        C,
        '--url',
        slapd.url,
        '--domain',
        'corp.test',
        '--base',
        slapd.base,
        '--bind-dn',
        slapd.userDn,
        '--password-file',
        userPassword,
      ).code,
    ).toBe(0);
    // Membership is configured outside the store at every start (here the option; by default the
    // machine's DNS domain): this machine's resolv.conf does not name corp.test.
    const member = ['--member-domain', 'corp.test'];
    expect(volact('client', 'activate', '--state-dir', C, ...member).code).toBe(0);
    expect(JSON.parse(volact('client', 'status', '--state-dir', C, '--json', ...member).stdout)).toMatchObject({
      state: 'licensed',
      method: 'directory',
      directoryObject: { name: 'office14-corp', domain: 'corp.test' },
    });
    const doctor = volact('client', 'doctor', '--state-dir', C, '--json', ...member);
    expect(doctor.code).toBe(0);
    expect(JSON.parse(doctor.stdout)).toMatchObject({ ok: true });

    expect(volact('directory', 'remove', ...connection, 'office14-corp').code).toBe(0);
    expect(volact('client', 'leave-domain', '--state-dir', C).code).toBe(0);
    expect(JSON.parse(volact('client', 'status', '--state-dir', C, '--json').stdout)).toMatchObject({
      method: null,
      directory: null,
    });
  }, 60_000);
});
