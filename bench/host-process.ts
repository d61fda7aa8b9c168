/**
 * The KMS host under test, in its own process: `node host-process.js DATA_DIR LOG_FILE`.
 * Serves KMS on 127.0.0.1 (free port) and metrics on another free port, logs at info level
 * (one line per request, as in production) asynchronously to LOG_FILE — /dev/null by default,
 * which keeps the cost of building and serialising every line but does not fill the disk.
 *
 * Commands on stdin (see child.ts): `gc` (forces garbage collection when started with
 * --expose-gc, then reports memory), `counts` (the group counts).
 */
import pino from 'pino';
import { startKmsHost } from '@volact/kms-host';
import { serveParent } from './child.js';

const [dataDir, logFile = '/dev/null'] = process.argv.slice(2);
if (!dataDir) {
  process.stderr.write('usage: host-process.js DATA_DIR [LOG_FILE]\n');
  process.exit(2);
}

const destination = pino.destination({ dest: logFile, sync: false });
const logger = pino({ level: 'info' }, destination);
const host = await startKmsHost({
  dataDir,
  listen: { host: '127.0.0.1', port: 0 },
  metrics: { host: '127.0.0.1', port: 0 },
  logger,
});

const gc = (globalThis as { gc?: () => void }).gc;

serveParent(
  { port: host.address.port, metricsPort: host.metricsAddress?.port },
  {
    gc: () => {
      // Two passes: the first may only queue weak callbacks / finalisers.
      gc?.();
      gc?.();
      const m = process.memoryUsage();
      return {
        forced: Boolean(gc),
        rss: m.rss,
        heapUsed: m.heapUsed,
        heapTotal: m.heapTotal,
        external: m.external,
        arrayBuffers: m.arrayBuffers,
      };
    },
    counts: () => ({ counts: host.counts() }),
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
