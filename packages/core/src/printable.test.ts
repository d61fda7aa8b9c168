import { describe, expect, it } from 'vitest';
import { printable } from './printable.js';

describe('printable()', () => {
  it('removes every escape and control character, tab and newline too', () => {
    expect(printable('\x1b]0;pwned\x07pc-1\x1b[2J')).toBe('pc-1');
    expect(printable('\x1bP1;2|secret\x1b\\ok')).toBe('ok');
    expect(printable('a\tb\nc\rd')).toBe('abcd');
    expect(printable('café – 東京')).toBe('café – 東京');
  });

  it('keeps tab, LF and CR when asked (a quoted CSV field), never an escape sequence', () => {
    expect(printable('a\tb\r\nc\x1b[31md\x07', { keepLineBreaks: true })).toBe('a\tb\r\ncd');
  });

  it('drops the Unicode bidirectional overrides that reorder what a terminal shows', () => {
    expect(printable('invoice\u202egpj.exe')).toBe('invoicegpj.exe');
  });
});
