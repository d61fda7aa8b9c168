import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { MINUTE, type Clock } from '@volact/core';

/**
 * V8 flags the host daemon runs with (the `volact` binary's shebang carries them): a 4 MB
 * young-generation semi-space. Measured with `npm run bench:kms-host`: the same throughput,
 * ~20 MB less RSS with 1 M client IDs.
 */
export const HOST_NODE_FLAGS = ['--max-semi-space-size=4'] as const;

/**
 * Where the host's JSON log lines go: buffered 4 KiB, then written synchronously. An
 * asynchronous stream queues without limit behind a slow reader (a pipe to a log shipper)
 * under a burst of requests; a synchronous one slows the host down instead, so memory stays
 * bounded. A quiet host's lines are written within half a second.
 */
export function createHostLogDestination(dest: number | string) {
  const destination = pino.destination({ dest, sync: true, minLength: 4096 });
  const timer = setInterval(() => {
    try {
      destination.flushSync();
    } catch {
      // not open yet, or closed: the next tick tries again
    }
  }, 500);
  timer.unref();
  // pino flushes on exit only for asynchronous destinations: write what is buffered here.
  process.once('exit', () => {
    try {
      destination.flushSync();
    } catch {
      // nothing to write
    }
  });
  return destination;
}

/** How the per-request log lines are kept bounded (`host serve --log-requests`). */
export interface RequestLogPolicy {
  /** Counted requests logged one by one per minute; the rest go into one summary line. */
  readonly countedPerMinute: number;
}

/** 20 a minute: a quiet host logs every request; at 2 000/s the log grows ~250 KB an hour. */
export const DEFAULT_REQUEST_LOG: RequestLogPolicy = { countedPerMinute: 20 };

/**
 * The request log, bounded: refusals and malformed requests are always logged (they are what
 * an operator looks for); counted requests are logged one by one up to `countedPerMinute`
 * each minute of the clock, and the rest are counted in one `requests not logged one by one`
 * line per minute. One line per request at 2 000/s was ~650 MB an hour.
 */
export class RequestLogSampler {
  readonly logger: Logger;
  #minute = -1;
  #logged = 0;
  #notLogged = 0;
  #byGroup = new Map<string, number>();

  constructor(
    private readonly target: Logger,
    private readonly clock: Clock,
    private readonly policy: RequestLogPolicy = DEFAULT_REQUEST_LOG,
  ) {
    const info = (obj: unknown, ...rest: unknown[]) => this.#info(obj, rest);
    // The service and the server call `logger.info(fields, 'request')`; everything else passes.
    this.logger = new Proxy(target, {
      get: (t, prop) => {
        if (prop === 'info') return info;
        const value: unknown = Reflect.get(t, prop, t);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
      },
    });
  }

  #info(obj: unknown, rest: unknown[]): void {
    const fields = obj as { decision?: unknown; group?: unknown } | null;
    if (rest[0] === 'request' && fields?.decision === 'COUNTED') {
      this.tick();
      if (this.#logged >= this.policy.countedPerMinute) {
        this.#notLogged++;
        const group = typeof fields.group === 'string' ? fields.group : '?';
        this.#byGroup.set(group, (this.#byGroup.get(group) ?? 0) + 1);
        return;
      }
      this.#logged++;
    }
    this.target.info(obj as object, ...(rest as [string]));
  }

  /** Writes the summary of a minute that has ended (also called on a timer and at stop). */
  tick(force = false): void {
    const minute = Math.floor(this.clock.now() / MINUTE);
    if (minute === this.#minute && !force) return;
    if (this.#notLogged > 0) {
      this.target.info(
        {
          counted: this.#logged + this.#notLogged,
          notLogged: this.#notLogged,
          byGroup: Object.fromEntries(this.#byGroup),
          from: new Date(this.#minute * MINUTE).toISOString(),
        },
        'requests not logged one by one',
      );
    }
    this.#minute = minute;
    this.#logged = 0;
    this.#notLogged = 0;
    this.#byGroup = new Map();
  }
}

/** The running host's own view, rewritten in place every second (see LiveStatusFile). */
export interface LiveStatus {
  readonly format: 'volact-host-live/1';
  readonly pid: number;
  readonly startedAt: string;
  readonly updatedAt: string;
  /** Set by a clean stop; a file without it and with a dead pid is a host that crashed. */
  readonly stoppedAt: string | null;
  /** Write-behind interval: the most a crash (kill -9, power) can lose of the window. */
  readonly flushIntervalMs: number;
  /** Client IDs answered but not yet in host.db. */
  readonly unsaved: number;
  readonly lastSavedAt: string | null;
  readonly lastFlushError: { at: string; code: string; message: string } | null;
}

export const LIVE_STATUS_FILE = 'host-live.json';
const LIVE_STATUS_SIZE = 4096;

/**
 * A fixed-size file overwritten in place: on a full disk, rewriting blocks it already has needs
 * no new space, so `host status` still sees the unsaved backlog that a full disk causes
 * (host.db, where the statistics live, is exactly what cannot be written then).
 */
export class LiveStatusFile {
  readonly #fd: number;
  #last = '';

  constructor(readonly path: string) {
    this.#fd = openSync(path, 'w', 0o600);
    // Allocated up front, while there is space.
    writeSync(this.#fd, Buffer.alloc(LIVE_STATUS_SIZE, ' '), 0, LIVE_STATUS_SIZE, 0);
  }

  write(status: LiveStatus): void {
    const text = JSON.stringify(status);
    if (text === this.#last) return;
    const bytes = Buffer.alloc(LIVE_STATUS_SIZE, ' ');
    bytes.write(text.slice(0, LIVE_STATUS_SIZE - 1), 'utf8');
    bytes[LIVE_STATUS_SIZE - 1] = 0x0a;
    try {
      writeSync(this.#fd, bytes, 0, LIVE_STATUS_SIZE, 0);
      this.#last = text;
    } catch {
      // the next update tries again
    }
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** The live status a running (or crashed) host left, and whether its process still runs. */
export function readLiveStatus(dataDir: string): (LiveStatus & { running: boolean }) | undefined {
  let parsed: LiveStatus;
  try {
    parsed = JSON.parse(readFileSync(join(dataDir, LIVE_STATUS_FILE), 'utf8')) as LiveStatus;
  } catch {
    return undefined; // never written, or caught mid-write: status shows what host.db holds
  }
  if (parsed.format !== 'volact-host-live/1') return undefined;
  // Rewritten every second while running: a stale file is a host that died (pid reused or not).
  let running = parsed.stoppedAt === null && Date.now() - Date.parse(parsed.updatedAt) < 30_000;
  if (running) {
    try {
      process.kill(parsed.pid, 0);
    } catch (err) {
      running = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  return { ...parsed, running };
}
