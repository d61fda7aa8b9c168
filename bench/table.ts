import { parseArgs } from 'node:util';

/** Right-aligns every column but the first `left` ones; a dashed line under the header. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], left: number): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: readonly string[]) =>
    r
      .map((c, i) => (i < left ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)];
}

/** A figure with thousands separators and `digits` decimals; empty when there is none. */
export function formatNumber(v: unknown, digits = 0): string {
  return v === undefined || v === null || !Number.isFinite(Number(v))
    ? ''
    : Number(v).toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/**
 * `[--json] [--runs N]` of a bench that repeats its cases: `--help` prints `usage` and exits 0,
 * a bad `--runs` exits 2 naming the range.
 */
export function parseRunsOptions(usage: string, defaultRuns: number, maxRuns: number): { json: boolean; runs: number } {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      runs: { type: 'string', default: String(defaultRuns) },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > maxRuns) {
    process.stderr.write(`--runs must be a whole number from 1 to ${maxRuns}\n${usage}\n`);
    process.exit(2);
  }
  return { json: values.json, runs };
}
