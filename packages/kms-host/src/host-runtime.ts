import pino from 'pino';

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
