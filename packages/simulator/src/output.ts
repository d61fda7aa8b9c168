import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LICENCE_STATES } from '@volact/core';
import { renderChart } from './chart.js';
import { SimulatorError } from './errors.js';
import type { SimulationResult } from './simulate.js';

export const OUTPUT_FILES = { csv: 'daily.csv', chart: 'chart.svg', summary: 'summary.json' } as const;

/** The per-day table: day, date, joined, one column per licence state, per-host requests, totals. */
export function renderCsv(result: SimulationResult): string {
  const header = [
    'day',
    'date',
    'joined',
    ...LICENCE_STATES,
    ...result.hostNames.map((h) => `${h}_requests`),
    'requests',
    'attempts',
    'failures',
    'active_hosts',
    'dns_up',
  ];
  const lines = [header.join(',')];
  for (const r of result.rows) {
    lines.push(
      [
        r.day,
        r.date,
        r.joined,
        ...LICENCE_STATES.map((s) => r.states[s]),
        ...r.hostRequests,
        r.requests,
        r.attempts,
        r.failures,
        r.activeHosts,
        r.dnsUp ? 1 : 0,
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

export function chartTitle(result: SimulationResult): string {
  const s = result.scenario;
  return `volact simulate: ${s.clients.count} clients, ${s.hosts.count} host(s), ${s.days} days (seed ${s.seed})`;
}

/** Writes daily.csv, chart.svg and summary.json into `dir` (created if missing); returns their paths. */
export function writeOutputs(result: SimulationResult, dir: string): Record<keyof typeof OUTPUT_FILES, string> {
  const paths = {
    csv: join(dir, OUTPUT_FILES.csv),
    chart: join(dir, OUTPUT_FILES.chart),
    summary: join(dir, OUTPUT_FILES.summary),
  };
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(paths.csv, renderCsv(result));
    writeFileSync(paths.chart, renderChart(result.rows, result.hostNames, chartTitle(result)));
    writeFileSync(paths.summary, `${JSON.stringify({ scenario: result.scenario, ...result.summary }, null, 2)}\n`);
  } catch (err) {
    throw new SimulatorError('OUTPUT_UNWRITABLE', `${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return paths;
}
