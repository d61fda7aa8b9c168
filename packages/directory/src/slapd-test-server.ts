/**
 * Test support (only through `@volact/directory/testing`): a real OpenLDAP server (slapd) from Debian's
 * packages, started on 127.0.0.1 and a free port in a temporary folder, stopped after.
 * There is no fallback: a machine without slapd fails the tests with the fix to run
 * (scripts/test.sh installs it).
 *
 * The directory holds the suffix entry, an administrator (the rootdn, which may write
 * everything) and a member account that may read but not write (a client machine binding with
 * its own credentials). Anonymous binds may read only with `anonymousRead`.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PORT_TAKEN_LOG, PortTakenError, listensOn, onFreeLoopbackPort } from '@volact/core/testing';

export interface TestSlapd {
  readonly url: string;
  readonly base: string;
  /** The rootdn: may write everything. */
  readonly adminDn: string;
  readonly adminPassword: string;
  /** A member account: may read the directory, not write it. */
  readonly userDn: string;
  readonly userPassword: string;
  stop(): Promise<void>;
}

export interface TestSlapdOptions {
  /** The suffix; its first RDN must be dc=… (default dc=corp,dc=test). */
  readonly suffix?: string;
  /** Let anonymous binds read (default: only authenticated binds read). */
  readonly anonymousRead?: boolean;
  /** Where the port comes from (tests of the launcher); default: a free loopback port. */
  readonly pickPort?: () => Promise<number>;
}

const INSTALL_FIX = 'OpenLDAP is not installed: `apt-get install -y slapd ldap-utils` (scripts/test.sh does this)';

function tool(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/local/sbin', '/usr/bin']) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(INSTALL_FIX);
}

function moduleDir(): string {
  const dir = ['/usr/lib/ldap', '/usr/lib64/openldap', '/usr/lib/openldap'].find((d) =>
    existsSync(join(d, 'back_mdb.la')),
  );
  if (!dir) throw new Error(`slapd's back_mdb module is missing. ${INSTALL_FIX}`);
  return dir;
}

/** {SSHA} userPassword value (salted SHA-1, what slappasswd makes by default). */
function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Active Directory's computer class and its dNSHostName attribute (with AD's OIDs), so
 * searchComputers is tested against the entries it will meet there.
 */
const AD_COMPUTER_SCHEMA = `
attributetype ( 1.2.840.113556.1.4.619 NAME 'dNSHostName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.3.30 NAME 'computer' SUP device STRUCTURAL MAY dNSHostName )
`;

export async function startTestSlapd(options: TestSlapdOptions = {}): Promise<TestSlapd> {
  const slapd = tool('slapd');
  const slapadd = tool('slapadd');
  const modules = moduleDir();
  const base = options.suffix ?? 'dc=corp,dc=test';
  const dc = /^dc=([^,]+)/i.exec(base)?.[1];
  if (!dc) throw new Error(`the test suffix must start with dc=…, got ${base}`);

  const dir = mkdtempSync(join(tmpdir(), 'volact-slapd-'));
  mkdirSync(join(dir, 'db'));
  const adminDn = `cn=admin,${base}`;
  const userDn = `uid=volact-member,${base}`;
  const adminPassword = randomBytes(12).toString('hex');
  const userPassword = randomBytes(12).toString('hex');
  const schema = join(dir, 'ad-computer.schema');
  writeFileSync(schema, AD_COMPUTER_SCHEMA);
  const config = join(dir, 'slapd.conf');
  writeFileSync(
    config,
    [
      'include /etc/ldap/schema/core.schema',
      'include /etc/ldap/schema/cosine.schema',
      'include /etc/ldap/schema/inetorgperson.schema',
      `include ${schema}`,
      `pidfile ${join(dir, 'slapd.pid')}`,
      `modulepath ${modules}`,
      'moduleload back_mdb',
      'database mdb',
      'maxsize 104857600',
      `suffix "${base}"`,
      `rootdn "${adminDn}"`,
      `rootpw ${ssha(adminPassword)}`,
      `directory ${join(dir, 'db')}`,
      'index objectClass eq',
      // The rootdn bypasses these; everyone else reads at most, and never a password.
      'access to attrs=userPassword by anonymous auth by self read by * none',
      `access to * by users read by * ${options.anonymousRead ? 'read' : 'none'}`,
      '',
    ].join('\n'),
  );
  const ldif = join(dir, 'base.ldif');
  writeFileSync(
    ldif,
    [
      `dn: ${base}`,
      'objectClass: dcObject',
      'objectClass: organization',
      `dc: ${dc}`,
      `o: ${dc}`,
      '',
      `dn: ${userDn}`,
      'objectClass: inetOrgPerson',
      'uid: volact-member',
      'cn: volact member',
      'sn: member',
      `userPassword: ${ssha(userPassword)}`,
      '',
    ].join('\n'),
  );
  try {
    execFileSync(slapadd, ['-q', '-f', config, '-l', ldif], { stdio: 'pipe', timeout: 30_000 });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`slapadd failed: ${e.stderr?.toString() || e.message}`);
  }

  const logFile = join(dir, 'slapd.log');
  // Another process may take the picked port before slapd binds it: then another port.
  let started: { url: string; stop: () => Promise<void> };
  try {
    started = await onFreeLoopbackPort(
      (port) => startSlapdOn(slapd, config, port, logFile),
      options.pickPort ? { pick: options.pickPort } : {},
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const { url } = started;
  const stop = async () => {
    try {
      await started.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  return { url, base, adminDn, adminPassword, userDn, userPassword, stop };
}

/** slapd on `port`, once it listens there itself; PortTakenError when it could not bind the port. */
async function startSlapdOn(
  slapd: string,
  config: string,
  port: number,
  logFile: string,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const url = `ldap://127.0.0.1:${port}`;
  const log = openSync(logFile, 'w');
  // -d 0 keeps slapd in the foreground (a child we can stop) without debug output. As root it
  // simply runs as root: the database and the temporary folder are root's too.
  const child: ChildProcess = spawn(slapd, ['-d', '0', '-f', config, '-h', `${url}/`], {
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', () => {
      exited = true;
      resolve();
    });
  });

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(killer);
    }
  };

  // A port that answers may be another process's: slapd itself must listen on it.
  const serving = async () =>
    (await canConnect(port)) && (child.pid === undefined || listensOn(child.pid, port) !== false);
  const deadline = Date.now() + 15_000;
  while (!(await serving())) {
    if (exited || Date.now() > deadline) {
      const output = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
      await stop();
      // slapd -d 0 logs nothing of a failed bind: gone while another process answers there.
      if (PORT_TAKEN_LOG.test(output) || (exited && (await canConnect(port)))) {
        throw new PortTakenError(port, output.slice(-500) || 'slapd exited; another process listens there');
      }
      throw new Error(`slapd did not start on ${url}: ${output || 'no output'}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url, stop };
}
