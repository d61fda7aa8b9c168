import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built `volact` binary, as users run it. */
export const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));

export interface ServedHost {
  readonly child: ChildProcess;
  readonly port: number;
  stderr(): string;
  readonly exited: Promise<number | null>;
}

/**
 * Starts `volact host serve` on a free loopback port (warnings only on stderr) and resolves
 * once it listens; `children` collects it so the test can kill what is left at the end.
 */
export async function serveHost(children: ChildProcess[], dataDir: string, ...flags: string[]): Promise<ServedHost> {
  const child = spawn(
    process.execPath,
    [BIN, 'host', 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--log-level', 'warn', ...flags],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(child);
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr.on('data', () => {
      const m = /listening on [\d.]+:(\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    void exited.then((code) => reject(new Error(`host serve exited ${code}: ${err}`)));
  });
  return { child, port, stderr: () => err, exited };
}
