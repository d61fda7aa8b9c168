import { spreadsheetText as plainText } from '@volact/core';
import { printable } from './printable.js';

export type CsvValue = string | number | boolean | null | readonly string[];

/**
 * One field per RFC 4180. Text (and lists, joined with ';') is always quoted, quotes doubled; a
 * text or list element starting like a formula (= + - @ tab CR), or holding one right after a ';',
 * ',', tab, CR or LF, gets a `'` before that character, so "=HYPERLINK(…)" from a rogue agent is text in any
 * spreadsheet whatever its separator. Numbers and booleans are bare; null and an empty text are empty.
 */
export function csvField(value: CsvValue): string {
  if (value === null) return '';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  // Escape sequences and control characters (an agent's) never reach a cell; CR, LF and tab may.
  const clean = (text: string) => printable(text, { keepLineBreaks: true });
  const text = Array.isArray(value)
    ? (value as readonly string[]).map((element) => plainText(clean(String(element)))).join(';')
    : plainText(clean(String(value)));
  return text === '' ? '' : `"${text.replace(/"/g, '""')}"`;
}

/** A header line (the stable column names, bare) and one line per row, CRLF-terminated (RFC 4180). */
export function toCsv(columns: readonly string[], rows: readonly Readonly<Record<string, CsvValue>>[]): string {
  const header = columns.map((c) => (/^[A-Za-z][A-Za-z0-9_]*$/.test(c) ? c : csvField(c)));
  const lines = [header.join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvField(row[c] ?? null)).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
