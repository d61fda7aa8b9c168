import { printable } from './printable.js';

export type CsvValue = string | number | boolean | null | readonly string[];

/** One field per RFC 4180: quoted when it holds a comma, a double quote, CR or LF; quotes doubled. */
export function csvField(value: CsvValue): string {
  // Escape sequences and control characters (an agent's) never reach a cell; CR, LF and tab may.
  let text = printable(value === null ? '' : Array.isArray(value) ? value.join(';') : String(value), {
    keepLineBreaks: true,
  });
  // Text from agents ends up in spreadsheets: a cell starting like a formula is made plain
  // text (OWASP's CSV-injection rule), so "=HYPERLINK(…)" from a rogue agent never runs.
  if ((typeof value === 'string' || Array.isArray(value)) && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A header line and one line per row, CRLF-terminated (RFC 4180). */
export function toCsv(columns: readonly string[], rows: readonly Readonly<Record<string, CsvValue>>[]): string {
  const lines = [columns.map(csvField).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvField(row[c] ?? null)).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
