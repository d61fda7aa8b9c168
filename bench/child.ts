import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

/**
 * The servers under test run in child processes so that their CPU time can be read from
 * /proc/<pid>/stat apart from the load generator's. A child speaks JSON lines: it prints one
 * `{"ready":true,...}` line when it listens, then answers each command line written to its
 * stdin with one `{"reply":<cmd>,...}` line. When its stdin closes it exits, so a child never
 * outlives the bench even if the bench is killed.
 */

/** Clock ticks per second of utime/stime in /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export type ChildMessage = Record<string, unknown>;

export class BenchChild {
  readonly #proc: ChildProcessByStdio<Writable, Readable, null>;
  readonly #waiters: { reply: string; resolve: (m: ChildMessage) => void; reject: (e: Error) => void }[] = [];
  #exited = false;
  readonly ready: Promise<ChildMessage>;
  readonly #exit: Promise<void>;

  private constructor(
    readonly name: string,
    script: string,
    args: readonly string[],
    execArgv: readonly string[],
  ) {
    this.#proc = spawn(process.execPath, [...execArgv, script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    let onReady!: (m: ChildMessage) => void;
    let onReadyFail!: (e: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve;
      onReadyFail = reject;
    });
    this.#exit = new Promise((resolve) =>
      this.#proc.once('exit', (code, signal) => {
        this.#exited = true;
        const err = new Error(`${name} exited (code ${code}, signal ${signal})`);
        onReadyFail(err);
        for (const w of this.#waiters.splice(0)) w.reject(err);
        resolve();
      }),
    );
    this.#proc.once('error', (err) => onReadyFail(err));
    // A broken pipe to a dying child must not crash the bench; the exit handler reports it.
    this.#proc.stdin.on('error', () => {});
    createInterface({ input: this.#proc.stdout }).on('line', (line) => {
      let msg: ChildMessage;
      try {
        msg = JSON.parse(line) as ChildMessage;
      } catch {
        process.stderr.write(`[${name}] ${line}\n`);
        return;
      }
      if (msg.ready === true) return onReady(msg);
      const i = this.#waiters.findIndex((w) => w.reply === msg.reply);
      if (i >= 0) this.#waiters.splice(i, 1)[0]?.resolve(msg);
    });
  }

  /** Starts `node [execArgv] script [args]` and waits for its ready line. */
  static async start(name: string, script: string, args: readonly string[] = [], execArgv: readonly string[] = []) {
    const child = new BenchChild(name, script, args, execArgv);
    const timeout = setTimeout(() => child.kill(), 20_000);
    try {
      return { child, ready: await child.ready };
    } finally {
      clearTimeout(timeout);
    }
  }

  get pid(): number {
    const pid = this.#proc.pid;
    if (pid === undefined) throw new Error(`${this.name} has no pid`);
    return pid;
  }

  /** Sends a command line and waits for the reply of the same name. */
  command(cmd: string, extra: Record<string, unknown> = {}, timeoutMs = 15_000): Promise<ChildMessage> {
    if (this.#exited) return Promise.reject(new Error(`${this.name} is not running`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name} did not answer "${cmd}" in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push({
        reply: cmd,
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.#proc.stdin.write(`${JSON.stringify({ cmd, ...extra })}\n`);
    });
  }

  /** User + system CPU time of the child (all its threads), in microseconds. */
  cpuMicros(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    // Field 2 (comm) may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // fields 14 (utime) and 15 (stime)
    return (ticks * 1e6) / CLOCK_TICKS;
  }

  /**
   * Resident memory of the child from /proc/<pid>/status, in bytes: VmRSS, and its anonymous
   * (heap, stacks, malloc) and file-backed (the node binary and libraries) parts.
   */
  memory(): { rss: number; anon: number; file: number } {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kb = (field: string) => {
      const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(status);
      if (!m?.[1]) throw new Error(`no ${field} in /proc/${this.pid}/status`);
      return Number(m[1]) * 1024;
    };
    return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
  }

  /** Asks the child to exit (closing its stdin); kills it if it has not exited after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#exited) return;
    this.#proc.stdin.end();
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.#exit;
    clearTimeout(timer);
  }

  /** Immediate SIGKILL, for cleanup paths. */
  kill(): void {
    if (!this.#exited) this.#proc.kill('SIGKILL');
  }
}

/**
 * The child side of the protocol: prints the ready line, dispatches command lines, and calls
 * `onEnd` when the parent closes stdin (or dies).
 */
export function serveParent(
  ready: Record<string, unknown>,
  commands: Record<string, (msg: ChildMessage) => Promise<Record<string, unknown>> | Record<string, unknown>>,
  onEnd: () => Promise<void>,
): void {
  const send = (m: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(m)}\n`);
  send({ ready: true, ...ready });
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    void (async () => {
      const msg = JSON.parse(line) as ChildMessage;
      const cmd = String(msg.cmd);
      const handler = commands[cmd];
      try {
        send({ reply: cmd, ...(handler ? await handler(msg) : { error: `unknown command ${cmd}` }) });
      } catch (err) {
        send({ reply: cmd, error: (err as Error).message });
      }
    })();
  });
  rl.on('close', () => {
    void onEnd().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
        process.exit(1);
      },
    );
  });
}
