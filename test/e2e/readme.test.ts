import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The README's jobs, pasted as a newcomer pastes them: the ```sh blocks marked
 * `<!-- readme-test -->`, in order, into one bash in an empty folder, with `volact` on the PATH
 * (this checkout's bin/volact.js, built: run `npx tsc -b` first). Two changes to the text,
 * both here: every 127.0.0.1:PORT of the README becomes a free port (tests run in parallel),
 * and after a line that starts a server with `&` the script waits until its --listen port
 * accepts (a person reads the next job first; a script does not). Some 50 commands: about a
 * minute on an idle machine, longer on a loaded one.
 */
const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));

const blocks = [...README.matchAll(/^<!-- readme-test -->\n\n```sh\n([\s\S]*?)\n```$/gm)].map((m) => m[1] as string);
/** README commands that exit non-zero on purpose: a state told by an exit code (docs/cli.md). */
const EXPECTED_NON_ZERO: readonly RegExp[] = [
  // the first four KMS clients: the count is below the threshold (exit 2, THRESHOLD_NOT_MET)
  /^readme-exit: 2 volact client activate /,
];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(true));
    socket.once('error', () => resolve(false));
    socket.once('connect', () => socket.destroy());
  });

const root = mkdtempSync(join(tmpdir(), 'volact-readme-'));
const work = join(root, 'volact-try');
let shell: ReturnType<typeof spawn> | undefined;

afterAll(() => {
  // The script stops its servers itself (the README's last block); if it failed before, its
  // whole process group goes (it was started as a group of its own).
  if (shell?.pid !== undefined && shell.exitCode === null) {
    try {
      process.kill(-shell.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  rmSync(root, { recursive: true, force: true });
});

describe('README, pasted in order from an empty folder', () => {
  it('runs every marked job: the KMS clients end licensed, the MAK and phone activations succeed, the console proxy-activates', async () => {
    expect(blocks.length, 'README.md marks its job blocks with <!-- readme-test -->').toBeGreaterThanOrEqual(8);

    // The README's example ports, each replaced by a free one.
    const readmePorts = [...new Set(blocks.join('\n').match(/(?<=127\.0\.0\.1:)\d{2,5}\b/g))].map(Number);
    const ports = new Map<number, number>();
    for (const p of readmePorts) ports.set(p, await freePort());
    const withPorts = (text: string) =>
      text.replace(/127\.0\.0\.1:(\d{2,5})\b/g, (all, p: string) => `127.0.0.1:${ports.get(Number(p)) ?? p}`);

    const bin = join(root, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'volact'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(join(bin, 'volact'), 0o755);
    mkdirSync(work);

    const script = [
      'exec 2>&1',
      // Every command that exits non-zero is reported, so a failure that prints no "error CODE:"
      // (a cp, a node -e, an empty variable) is seen too; some README lines do by design.
      // (a line of its own even after output without a newline; pipes fail as a whole with pipefail)
      'set -o pipefail',
      'trap \'printf "\\nreadme-exit: %s %s\\n" "$?" "$BASH_COMMAND"\' ERR',
      'wait_listen() { for _ in $(seq 1 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "readme-test: nothing listens on port $1"; return 1; }',
      ...blocks.map((block, i) => {
        const lines = withPorts(block)
          .split('\n')
          .flatMap((line) => {
            const listen = /--listen 127\.0\.0\.1:(\d+)/.exec(line);
            return /&\s*(#.*)?$/.test(line) && listen ? [line, `wait_listen ${listen[1]}`] : [line];
          });
        return [`echo '<<<block ${i}>>>'`, ...lines].join('\n');
      }),
      'wait', // the servers "Done" stopped have exited
    ].join('\n');

    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
    delete env.VOLACT_HARDWARE_ID;
    delete env.VOLACT_MEMBER_DOMAIN;
    shell = spawn('bash', ['-c', script], { cwd: work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    shell.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    shell.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    // Bounded below the test's timeout, so that a job that hangs shows what it printed.
    const code = await new Promise<number | null | 'timeout'>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), 540_000);
      shell?.on('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });

    const job = (i: number) => output.split(`<<<block ${i}>>>`)[1]?.split(`<<<block ${i + 1}>>>`)[0] ?? '';
    const context = `the README's jobs printed:\n${output}`;
    // No command failed: "error CODE: …" (also inside a console's per-machine or per-key line).
    expect(output.match(/^.*(\berror [A-Z_]+:|command not found|readme-test:).*$/gm) ?? [], context).toEqual([]);
    expect(code, context).toBe(0);
    // The only commands of the jobs that exit non-zero are the ones that say a state by their code.
    const nonZero = output.match(/^readme-exit: .*$/gm) ?? [];
    for (const expected of EXPECTED_NON_ZERO)
      expect(
        nonZero.some((line) => expected.test(line)),
        context,
      ).toBe(true);
    expect(
      nonZero.filter((line) => !EXPECTED_NON_ZERO.some((expected) => expected.test(line))),
      context,
    ).toEqual([]);

    // The publisher's files; the KMS host activated online.
    expect(existsSync(join(work, 'product.json'))).toBe(true);
    expect(job(1)).toMatch(/activated \(host 1 of 6\); serves office14/);
    // KMS: the count climbs to the threshold; pc1, retried, is licensed.
    expect(job(2)).toMatch(/count 4 of 5/);
    expect(job(2)).toMatch(/licensed until .* \(count 5 of 5\)/);
    expect(job(2)).toMatch(/^State:\s+licensed$/m);
    // MAK online, then by phone (client and second KMS host).
    expect(job(3)).toMatch(/licensed: activated with MAK/);
    expect(job(3)).toMatch(/installations: limit 100, used 1, remaining 99/);
    expect(job(4)).toMatch(/licensed \(mak, permanent\)/);
    expect(job(4)).toMatch(/KMS host for office14: host 1 of 6, certificate until/);
    // The console found the agent, moved pc1 to the MAK by proxy activation, read the MAK's counters.
    expect(job(5)).toMatch(/\tadded\tlicensed/);
    expect(job(5)).toMatch(/\tok\tlicensed \(mak\)\tconfirmation ID installed/);
    expect(job(5)).toMatch(/^office14-mak +…\w{5} +100 +1 +99 /m);
    // An isolated network: IIDs out in a signed file, CIDs back in another; pc3 licensed by its MAK.
    expect(existsSync(join(work, 'iids.json')) && existsSync(join(work, 'cids.json'))).toBe(true);
    expect(job(6)).toMatch(/^.*pc3.*licensed.*mak.*$/m);
    // The plan, on the terminal and as Markdown.
    expect(job(7)).toMatch(/Head office/);
    expect(readFileSync(join(work, 'plan.md'), 'utf8')).toMatch(/Head office/);
    // The portal's authority over HTTPS: the organisation's read token reads its own MAK's usage.
    expect(output).toMatch(/"type":"mak","groups":\["office14"\],"limit":500,"used":0,"remaining":500/);
    // "Done" stopped every server it started.
    for (const port of ports.values()) expect(await accepts(port), `port ${port} closed`).toBe(false);
  }, 600_000);
});
