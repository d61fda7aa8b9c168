/**
 * Terminal escape sequences: CSI (ESC [ … final byte), OSC (ESC ] … BEL or ESC \), the other
 * string sequences (DCS, SOS, PM, APC: ESC P/X/^/_ … ESC \), and two-byte ESC sequences.
 */
const ESCAPE_SEQUENCES =
  // eslint-disable-next-line no-control-regex
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[PX^_][^\x1b]*(?:\x1b\\)?|\x1b[ -~]?|\x9b[0-?]*[ -/]*[@-~]|\x9d[^\x07\x1b\x9c]*(?:\x07|\x9c)?/g;
/**
 * What is left to drop: C0 and C1 control characters and DEL (tab and newline too: they would
 * break a table's columns and lines), and the Unicode bidirectional overrides and isolates,
 * which reorder what a terminal shows.
 */
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** The same, keeping tab, LF and CR (a quoted CSV field may hold them: RFC 4180). */
// eslint-disable-next-line no-control-regex
const CONTROLS_BUT_LINES = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from agents (host and product names, messages, anything an agent reports) as it may
 * reach an operator's terminal or a spreadsheet: escape sequences removed whole, any other
 * control character removed. A rogue agent's `ESC ] 0 ; … BEL` must not retitle the window,
 * nor `ESC [ 2 J` clear it. JSON output needs none of this: JSON.stringify escapes them.
 */
export function printable(text: string, options: { keepLineBreaks?: boolean } = {}): string {
  return text.replace(ESCAPE_SEQUENCES, '').replace(options.keepLineBreaks ? CONTROLS_BUT_LINES : CONTROLS, '');
}
