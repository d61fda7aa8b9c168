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
