import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import type { SimulationSummary } from '@volact/simulator';
import { parseIntOption } from '../options.js';
import { printJson } from '../output.js';
import type { Run } from '../runtime.js';

interface SimulateOptions {
  out: string;
  workers?: string;
  progress?: boolean;
  json?: boolean;
}

/** Below this many clients one thread verifies faster than it hands work to others. */
const WORKERS_FROM = 5_000;

/**
 * `volact simulate [SCENARIO] --out DIR`: a fleet over a virtual clock on the real host, client
 * and authority code; writes daily.csv, chart.svg and summary.json (docs/simulator.md).
 */
export function registerSimulate(program: Command, run: Run): void {
  program
    .command('simulate')
    .description('simulate a fleet of clients and KMS hosts over days on a virtual clock; writes CSV and an SVG chart')
    .argument('[scenario]', 'scenario file (.yaml or .json); default: 1 000 clients, 2 hosts, host 1 down days 100-109')
    .requiredOption('--out <dir>', 'directory for daily.csv, chart.svg and summary.json')
    .option('--workers <n>', 'threads verifying responses (default: 2 for 5 000 clients or more, else 0)')
    .option('--no-progress', 'no progress on stderr')
    .option('--json', 'print the summary as JSON')
    .action(
      run(async (o: SimulateOptions, file?: string) => {
        // The simulator (authority, KMS host and client code) loads when a simulation runs.
        const { defaultScenario, loadScenario, progressReporter, simulate, writeOutputs } =
          await import('@volact/simulator');
        const scenario = file === undefined ? defaultScenario() : loadScenario(file);
        const workers =
          o.workers !== undefined
            ? parseIntOption(o.workers, '--workers', 0, 64)
            : scenario.clients.count >= WORKERS_FROM
              ? Math.min(2, availableParallelism())
              : 0;
        const result = await simulate(scenario, {
          workers,
          ...(o.progress === false ? {} : { onProgress: progressReporter(process.stderr) }),
        });
        const paths = writeOutputs(result, o.out);
        if (o.json) {
          printJson({ ...result.summary, files: paths });
          return;
        }
        process.stdout.write(describe(result.summary, paths));
      }),
    );
}

function describe(s: SimulationSummary, paths: { csv: string; chart: string; summary: string }): string {
  const final = Object.entries(s.final)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${state} ${n}`)
    .join(', ');
  return [
    `simulated ${s.clients} clients, ${s.hosts.length} host(s), ${s.days} days in ${(s.wallMs / 1000).toFixed(1)} s (${s.workers} worker thread(s))`,
    `  attempts ${s.attempts} (${s.failures} failed), signed exchanges ${s.exchanges}, host signatures ${s.signatures}`,
    `  clients that left licensed: ${s.clientsLeftLicensed}; at the end: ${final}`,
    `  wrote ${paths.csv}, ${paths.chart}, ${paths.summary}`,
    '',
  ].join('\n');
}
