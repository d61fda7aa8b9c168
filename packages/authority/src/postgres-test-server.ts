/**
 * Test support (only through `@volact/authority/testing`): a real PostgreSQL server from Debian's
 * packages, started on 127.0.0.1 and a free port in a temporary folder, stopped after.
 * There is no fallback: a machine without PostgreSQL fails the tests with the fix to run
 * (scripts/test.sh installs it).
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PORT_TAKEN_LOG, PortTakenError, onFreeLoopbackPort } from '@volact/core/testing';

export interface TestPostgres {
  readonly url: string;
  /** A new, empty database on the server; returns its URL. */
  createDatabase(): Promise<string>;
  /** Stops the server (`pg_ctl stop -m fast`: connections are terminated, 57P01) and keeps its data. */
  halt(): void;
  /** Starts the halted server again on the same port. */
  resume(): void;
  /** `pg_ctl restart -m fast`: what an operator's restart does to connected nodes (asynchronous: load goes on). */
  restart(): Promise<void>;
  stop(): void;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) {
    throw new Error('PostgreSQL is not installed: `apt-get install -y postgresql` (scripts/test.sh does this)');
  }
  return join(root, newest, 'bin');
}

export async function startTestPostgres(
  options: {
    /** Where the port comes from (tests of the launcher); default: a free loopback port. */
    pickPort?: () => Promise<number>;
  } = {},
): Promise<TestPostgres> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'volact-pg-'));
  const asRoot = process.getuid?.() === 0;
  // initdb refuses to run as root: run the server as the postgres user then.
  const command = (tool: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
  const run = (tool: string, args: string[]) => {
    const [cmd, argv] = command(tool, args);
    execFileSync(cmd, argv, { stdio: 'pipe', timeout: 60_000 });
  };

  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  run('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
  const logFile = join(dir, 'pg.log');
  const logText = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const optionsFor = (p: number) =>
    `-p ${p} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c max_connections=200`;
  const startOn = (p: number) =>
    run('pg_ctl', ['-D', join(dir, 'data'), '-l', logFile, '-w', '-o', optionsFor(p), 'start']);
  // Another process may take the picked port before the server binds it: then another port.
  let port: number;
  try {
    port = await onFreeLoopbackPort(
      async (p) => {
        const before = logText().length;
        try {
          startOn(p);
        } catch (err) {
          const log = logText().slice(before);
          if (PORT_TAKEN_LOG.test(log)) throw new PortTakenError(p, log.slice(-500));
          throw err;
        }
        return p;
      },
      options.pickPort ? { pick: options.pickPort } : {},
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const serverOptions = optionsFor(port);
  const start = () => startOn(port);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let databases = 0;
  return {
    url,
    async createDatabase() {
      const name = `volact_test_${++databases}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    halt() {
      run('pg_ctl', ['-D', join(dir, 'data'), '-m', 'fast', '-w', 'stop']);
    },
    resume: start,
    async restart() {
      const [cmd, argv] = command('pg_ctl', [
        '-D',
        join(dir, 'data'),
        '-l',
        logFile,
        '-w',
        '-m',
        'fast',
        '-o',
        serverOptions,
        'restart',
      ]);
      await promisify(execFile)(cmd, argv, { timeout: 60_000 });
    },
    stop() {
      try {
        run('pg_ctl', ['-D', join(dir, 'data'), '-m', 'immediate', 'stop']);
      } catch {
        // halted by the test already
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
