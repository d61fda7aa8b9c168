/**
 * The KMS host under test, in its own process: `node host-process.js DATA_DIR [LOG_FILE]`.
 * Serves KMS on 127.0.0.1 (free port) and metrics on another free port. It logs at info level,
 * one line per request, with the same pino destination as `volact host serve`
 * (createHostLogDestination: 4 KB buffer, synchronous writes) — to /dev/null by default, which keeps
 * the cost of building, serialising and writing every line but does not fill the disk.
 *
 * Commands on stdin (see child.ts):
 *   settle — waits until the log is written out, forces a full garbage collection (when
 *            started with --expose-gc) and reports the memory of the process;
 *   counts — the group counts;
 *   connections — open connections and what the connection limits refused or closed.
 */
import pino from 'pino';
import { createHostLogDestination, startKmsHost } from '@volact/kms-host';
import { serveParent } from './child.js';

const [dataDir, logFile = '/dev/null'] = process.argv.slice(2);
if (!dataDir) {
  process.stderr.write('usage: host-process.js DATA_DIR [LOG_FILE]\n');
  process.exit(2);
}

const destination = createHostLogDestination(logFile);
const logger = pino({ level: 'info', base: { pid: process.pid } }, destination);
const host = await startKmsHost({
  dataDir,
  listen: { host: '127.0.0.1', port: 0 },
  metrics: { host: '127.0.0.1', port: 0 },
  logger,
});

type GcOptions = { type: 'major'; execution: 'sync'; flavor?: 'last-resort' };
const gc = (globalThis as { gc?: (options?: GcOptions) => void }).gc;

/** Resolves once sonic-boom has handed its buffered lines to the file (or after 10 s). */
function drainLog(): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 10_000);
    destination.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

serveParent(
  { port: host.address.port, metricsPort: host.metricsAddress?.port },
  {
    settle: async () => {
      const start = process.hrtime.bigint();
      await drainLog();
      const logDrainMs = Number(process.hrtime.bigint() - start) / 1e6;
      // Full, memory-reducing collections (what V8 does under memory pressure), with pauses
      // so that concurrent sweeping finishes and freed pages are given back: the heap then
      // holds what the host keeps alive rather than what the last burst happened to leave.
      for (let i = 0; i < 3 && gc; i++) {
        gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      const m = process.memoryUsage();
      return {
        // Client IDs answered but not yet written (the write-behind backlog, held on the heap).
        unsaved: host.persistence().unsaved,
        gcForced: Boolean(gc),
        logDrainMs,
        rss: m.rss,
        heapUsed: m.heapUsed,
        heapTotal: m.heapTotal,
        external: m.external,
        arrayBuffers: m.arrayBuffers,
      };
    },
    counts: () => ({ counts: host.counts() }),
    connections: () => ({ connections: host.connections() }),
  },
  async () => {
    await host.close();
    try {
      destination.flushSync();
    } catch {
      // nothing buffered or the destination never opened: nothing to lose
    }
  },
);
