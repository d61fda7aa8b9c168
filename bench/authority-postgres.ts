/**
 * A PostgreSQL server for the authority bench: Debian's packages, a temporary directory,
 * 127.0.0.1 on a free port — and, unlike the test server, durable commits (fsync and
 * synchronous_commit at their defaults, on). initdb runs as the postgres user when the bench
 * runs as root (initdb refuses root). `stop()` is synchronous so that it can run in an exit
 * handler; it stops the server and removes the directory.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freeLoopbackPort } from '@volact/core/testing';

export interface BenchPostgres {
  readonly port: number;
  readonly binDir: string;
  /** URL of the `postgres` database (for administration). */
  readonly adminUrl: string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** The server's settings that decide durability, as `SHOW` reports them. */
  settings(): Promise<Record<string, string>>;
  /** User + system CPU of the postmaster and all its children (backends, WAL writer, …), µs. */
  cpuMicros(): number;
  stop(): void;
}

const CLOCK_TICKS = 100; // USER_HZ; see child.ts

export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error('PostgreSQL is not installed: `apt-get install -y postgresql` (scripts/test.sh does)');
  return join(root, newest, 'bin');
}

/**
 * utime + stime of one process, in clock ticks (0 when it has gone); with `children`, also the
 * CPU of its children that have exited and been waited for (cutime + cstime).
 */
function processTicks(pid: number, children = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
  } catch {
    return 0;
  }
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

export async function startBenchPostgres(): Promise<BenchPostgres> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'volact-bench-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const run = (tool: string, args: string[]) => {
    const [cmd, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]]
      : [join(bin, tool), args];
    execFileSync(cmd, argv, { stdio: 'pipe', timeout: 60_000 });
  };
  let started = false;
  const stop = () => {
    try {
      if (started) run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    } catch {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
      } catch {
        // already gone
      }
    } finally {
      started = false;
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    if (asRoot) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(dir, uid, gid);
    }
    const port = await freeLoopbackPort();
    // --no-sync only skips initdb's own flush of the template files; the server syncs its WAL.
    run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
    run('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'pg.log'),
      '-w',
      '-o',
      `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c max_connections=200 -c fsync=on -c synchronous_commit=on`,
      'start',
    ]);
    started = true;
    const postmasterPid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const withAdmin = async <T>(work: (c: pg.Client) => Promise<T>): Promise<T> => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        return await work(client);
      } finally {
        await client.end();
      }
    };
    return {
      port,
      binDir: bin,
      adminUrl,
      async createDatabase(name) {
        if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
        await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
        return `postgres://postgres@127.0.0.1:${port}/${name}`;
      },
      async settings() {
        return withAdmin(async (c) => {
          const out: Record<string, string> = {};
          for (const name of ['server_version', 'fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes']) {
            out[name] = String((await c.query<Record<string, string>>(`SHOW ${name}`)).rows[0]?.[name]);
          }
          return out;
        });
      },
      cpuMicros() {
        // Backends that have exited are in the postmaster's cutime/cstime, live ones in their own.
        let ticks = processTicks(postmasterPid, true);
        for (const entry of readdirSync('/proc')) {
          const pid = Number(entry);
          if (Number.isInteger(pid) && pid !== postmasterPid && parentOf(pid) === postmasterPid) {
            ticks += processTicks(pid);
          }
        }
        return (ticks * 1e6) / CLOCK_TICKS;
      },
      stop,
    };
  } catch (err) {
    stop();
    throw err;
  }
}
