import { printable } from './printable.js';

export type CsvValue = string | number | boolean | null | readonly string[];

/** What a spreadsheet reads as the start of a formula (OWASP's CSV-injection list). */
const FORMULA_START = /^[=+\-@\t\r]/;
/**
 * The same after a list or field separator inside a text: a spreadsheet that splits on ';' (the
 * list separator of the de-DE and fr-FR locales) or ignores the quotes would see a cell start there.
 */
const FORMULA_AFTER_SEPARATOR = /([;,])([=+\-@\t\r])/g;

/** A text made plain for a spreadsheet: a `'` before a formula character at its start or after a ';' or ','. */
function plainText(text: string): string {
  const safe = text.replace(FORMULA_AFTER_SEPARATOR, "$1'$2");
  return FORMULA_START.test(safe) ? `'${safe}` : safe;
}

/**
 * One field per RFC 4180. Text (and lists, joined with ';') is always quoted, quotes doubled; a
 * text or list element starting like a formula (= + - @ tab CR), or holding one right after a ';'
 * or ',', gets a `'` before that character, so "=HYPERLINK(…)" from a rogue agent is text in any
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
