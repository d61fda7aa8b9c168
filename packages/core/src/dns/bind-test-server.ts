/**
 * Test support (only through `@volact/core/testing`): a real BIND 9 `named` from Debian's
 * packages, serving the given zones as their primary on 127.0.0.1 and a free port, from a
 * temporary folder, with dynamic update allowed for one TSIG key. There is no fallback: a
 * machine without BIND fails the tests with the fix to run (scripts/test.sh installs it).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PORT_TAKEN_LOG, PortTakenError, onFreeLoopbackPort } from '../ports.js';
import { parseTsigKeyFile, type TsigKey } from './tsig.js';

export interface TestBind {
  readonly port: number;
  /** The file `tsig-keygen -a hmac-sha256 ddns-key` wrote; allowed to update every zone. */
  readonly keyFile: string;
  readonly key: TsigKey;
  /** A second key the server knows but allows to update nothing (its updates are REFUSED). */
  readonly otherKey: TsigKey;
  readonly dir: string;
  /** What named logged so far (it runs with -g: everything goes to stderr). */
  log(): string;
  stop(): Promise<void>;
}

const INSTALL_FIX = '`apt-get install -y bind9 bind9-dnsutils` (scripts/test.sh does this)';

function tool(name: string): string {
  const found = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => join(d, name)).find((p) => existsSync(p));
  if (!found) throw new Error(`BIND 9 is not installed (no ${name}): ${INSTALL_FIX}`);
  return found;
}

function zoneFile(zone: string): string {
  return [
    '$TTL 300',
    `@ IN SOA ns1.${zone}. hostmaster.${zone}. 1 3600 600 86400 300`,
    `  IN NS ns1.${zone}.`,
    'ns1 IN A 127.0.0.1',
    '',
  ].join('\n');
}

export async function startTestBind(options: {
  zones: string[];
  /** Where the port comes from (tests of the launcher); default: a free loopback port. */
  pickPort?: () => Promise<number>;
}): Promise<TestBind> {
  const named = tool('named');
  const keygen = tool('tsig-keygen');
  for (const zone of options.zones) {
    // Zone names go into named.conf and file names: plain host names only.
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(zone)) {
      throw new Error(`test zone "${zone}" is not a plain domain name`);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'volact-bind-'));
  const keyFile = join(dir, 'ddns.key');
  const otherKeyFile = join(dir, 'other.key');
  writeFileSync(keyFile, execFileSync(keygen, ['-a', 'hmac-sha256', 'ddns-key']));
  writeFileSync(otherKeyFile, execFileSync(keygen, ['-a', 'hmac-sha256', 'other-key']));
  for (const zone of options.zones) writeFileSync(join(dir, `${zone}.zone`), zoneFile(zone));
  // named listens on UDP and TCP; a port taken before it binds is tried again on another.
  let started: { port: number; child: ChildProcess; exited: Promise<void>; output: () => string };
  try {
    started = await onFreeLoopbackPort((port) => startNamed(named, dir, port, keyFile, otherKeyFile, options.zones), {
      udp: true,
      ...(options.pickPort ? { pick: options.pickPort } : {}),
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const { port, child, exited, output } = started;

  let stopped: Promise<void> | undefined;
  return {
    port,
    keyFile,
    key: parseTsigKeyFile(readFileSync(keyFile, 'utf8')),
    otherKey: parseTsigKeyFile(readFileSync(otherKeyFile, 'utf8')),
    dir,
    log: output,
    stop() {
      stopped ??= stop(child, exited, () => rmSync(dir, { recursive: true, force: true }));
      return stopped;
    },
  };
}

/** named's words for a port it could not bind (it logs the interface failed, not always why). */
const portTaken = (output: string) =>
  PORT_TAKEN_LOG.test(output) || /creating IPv4 interface \S+ failed|unable to listen on any configured/.test(output);

/** named on `port`, serving once it logs "running"; PortTakenError when it could not bind the port. */
async function startNamed(
  named: string,
  dir: string,
  port: number,
  keyFile: string,
  otherKeyFile: string,
  zones: readonly string[],
): Promise<{ port: number; child: ChildProcess; exited: Promise<void>; output: () => string }> {
  const conf = [
    `include "${keyFile}";`,
    `include "${otherKeyFile}";`,
    'options {',
    `  directory "${dir}";`,
    `  pid-file "${join(dir, 'named.pid')}";`,
    // Not the shared /run/named/session.key: parallel servers must not share files.
    `  session-keyfile "${join(dir, 'session.key')}";`,
    `  listen-on port ${port} { 127.0.0.1; };`,
    '  listen-on-v6 { none; };',
    '  recursion no;',
    '  dnssec-validation no;',
    '  allow-transfer { none; };',
    '};',
    'controls { };',
    ...zones.map(
      (zone) =>
        `zone "${zone}" { type primary; file "${join(dir, `${zone}.zone`)}"; allow-update { key "ddns-key"; }; };`,
    ),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'named.conf'), conf);

  // -g: foreground, log to stderr. As root, Debian's named keeps running as root (no -u):
  // it needs the folder writable for the zone journals (.jnl), which it is.
  const child = spawn(named, ['-g', '-c', join(dir, 'named.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`named did not start in 15 s:\n${output.slice(-3000)}`)), 15_000);
      const check = () => {
        // The line that is just "running" (not "running on Linux", logged first): named
        // listens before it has loaded the zones, and answers an update then with SERVFAIL.
        if (/ running\n/.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stderr?.on('data', check);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`named exited (${String(code)}) before serving:\n${output.slice(-3000)}`));
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${named}: ${err.message}; ${INSTALL_FIX}`));
      });
    });
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    if (portTaken(output)) throw new PortTakenError(port, output.slice(-500));
    throw e;
  }
  if (portTaken(output)) {
    // named goes on without the interface it could not bind: not this server's port.
    child.kill('SIGKILL');
    await exited;
    throw new PortTakenError(port, output.slice(-500));
  }
  return { port, child, exited, output: () => output };
}

async function stop(child: ChildProcess, exited: Promise<void>, cleanup: () => void): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    // The folder is thrown away: nothing to flush. SIGTERM takes named 1-2 s to shut down;
    // SIGKILL is immediate.
    child.kill('SIGKILL');
    await exited;
  }
  cleanup();
}

/** `dig @127.0.0.1 -p PORT name TYPE +short`: what BIND's own client sees. */
export function dig(port: number, name: string, type: string): string {
  return execFileSync(tool('dig'), ['@127.0.0.1', '-p', String(port), name, type, '+short', '+time=2', '+tries=1'], {
    encoding: 'utf8',
    timeout: 10_000,
  }).trim();
}
