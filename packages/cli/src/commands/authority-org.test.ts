import { describe, expect, it } from 'vitest';
import { csvField } from './authority-org.js';

/** The authority's CSV (`key list --csv`, `audit --csv`): the same formula guard as the console's. */
describe('authority CSV fields', () => {
  it("no cell or line starts like a formula, split on ',' ';' tab or a line break", () => {
    expect(csvField('=HYPERLINK("http://x")')).toBe(`"'=HYPERLINK(""http://x"")"`);
    // A note or organisation name as a de-DE spreadsheet (';') or a line-splitting reader sees it.
    expect(csvField("customer;=cmd|' /C calc'!A0")).toBe(`"customer;'=cmd|' /C calc'!A0"`);
    expect(csvField('first line\n@SUM(1+1)')).toBe(`"first line\n'@SUM(1+1)"`);
    expect(csvField('a\t+1')).toBe(`"a\t'+1"`);
    for (const text of ['x;=1', 'x,+1', 'x\n-1', 'x\r\n@1', 'x\t=1']) {
      for (const cell of csvField(text)
        .replace(/^"/, '')
        .split(/[;,\t\r\n]/))
        expect(cell).not.toMatch(/^[=+\-@]/);
    }
  });

  it('plain values stay bare; escape sequences never reach a cell; numbers are numbers', () => {
    expect(csvField('office14')).toBe('office14');
    expect(csvField(null)).toBe('');
    expect(csvField(-5)).toBe('-5');
    expect(csvField('\x1b]0;pwned\x07note')).toBe('note');
  });
});
