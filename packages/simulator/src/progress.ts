import type { Progress } from './simulate.js';

const BAR = 30;

/**
 * A progress bar on a terminal (days done, clients joined, elapsed, ETA), redrawn in place;
 * on anything else (a log, CI) a plain line every 10 % of the run.
 */
export function progressReporter(
  stream: { isTTY?: boolean; write(s: string): unknown } = process.stderr,
): (p: Progress) => void {
  let lastDraw = 0;
  let lastDecile = -1;
  return (p) => {
    const done = p.day / p.days;
    const eta = done > 0 ? (p.elapsedMs / done - p.elapsedMs) / 1000 : 0;
    const text = `day ${p.day}/${p.days}  clients ${p.joined}/${p.clients}  ${(p.elapsedMs / 1000).toFixed(1)} s  ETA ${eta.toFixed(0)} s`;
    if (stream.isTTY) {
      const now = Date.now();
      if (now - lastDraw < 100 && p.day < p.days) return;
      lastDraw = now;
      const filled = Math.round(done * BAR);
      stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${text}\x1b[K`);
      if (p.day === p.days) stream.write('\n');
      return;
    }
    const decile = Math.floor(done * 10);
    if (decile !== lastDecile) {
      lastDecile = decile;
      stream.write(`simulate: ${text}\n`);
    }
  };
}
