/** What a spreadsheet reads as the start of a formula (OWASP's CSV-injection list). */
const FORMULA_START = /^[=+\-@\t\r]/;
/**
 * The same at a place a spreadsheet may start a cell or a line inside a text: after a ';' (the
 * list separator of the de-DE and fr-FR locales) or ',', and after a tab, CR or LF (a spreadsheet
 * that splits on tabs, or ignores the quotes and starts a line there).
 */
const FORMULA_INSIDE = /(?<=[;,\t\r\n])(?=[=+\-@\t\r])/g;

/**
 * A text made plain for a spreadsheet (a CSV cell): a `'` before a formula character (= + - @
 * tab CR) at its start or right after a ';', ',', tab, CR or LF, so "=HYPERLINK(…)" from a rogue
 * peer is text in any spreadsheet whatever its separator. Quoting is the CSV writer's.
 */
export function spreadsheetText(text: string): string {
  const safe = text.replace(FORMULA_INSIDE, "'");
  return FORMULA_START.test(safe) ? `'${safe}` : safe;
}
