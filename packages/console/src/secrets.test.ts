import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConsoleError } from './errors.js';
import { KEY_FILE, SecretBox, createKeyFile, keyFileIsPrivate, readKeyFile } from './secrets.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'volact-console-secrets-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConsoleError) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'no error';
};

describe('the console key file and sealed secrets', () => {
  it('console.key is 0600, refuses to be made twice, and opens what it sealed', () => {
    const box = createKeyFile(dir);
    expect(statSync(join(dir, KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(keyFileIsPrivate(dir)).toBe(true);
    expect(() => createKeyFile(dir)).toThrow(/EEXIST/);
    const sealed = box.seal('MAK-TEXT-12345', 'key:abc');
    expect(sealed).toMatch(/^v1:/);
    expect(sealed).not.toContain('MAK-TEXT');
    expect(readKeyFile(dir).unseal(sealed, 'key:abc', 'stored key')).toBe('MAK-TEXT-12345');
    // Fingerprints are keyed: equal for equal values under one key, unrelated under another.
    expect(box.fingerprint('x', 'token')).toBe(readKeyFile(dir).fingerprint('x', 'token'));
    expect(box.fingerprint('x', 'token')).not.toBe(new SecretBox(Buffer.alloc(32, 1)).fingerprint('x', 'token'));
  });

  it('a sealed value moved to another purpose, altered, or under another key does not open', () => {
    const box = createKeyFile(dir);
    const sealed = box.seal('secret', 'token:1');
    expect(codeOf(() => box.unseal(sealed, 'token:2', 'the token'))).toMatch(/^SECRET_UNREADABLE: the token does not/);
    const raw = Buffer.from(sealed.slice(3), 'base64');
    raw[20] = (raw[20] as number) ^ 1;
    expect(codeOf(() => box.unseal(`v1:${raw.toString('base64')}`, 'token:1', 'x'))).toMatch(/^SECRET_UNREADABLE/);
    expect(codeOf(() => new SecretBox(Buffer.alloc(32, 7)).unseal(sealed, 'token:1', 'x'))).toMatch(
      /^SECRET_UNREADABLE/,
    );
    expect(codeOf(() => box.unseal('garbage', 'token:1', 'x'))).toMatch(/^SECRET_UNREADABLE/);
  });

  it('a missing key file is CONSOLE_NOT_INITIALISED, a damaged one KEY_FILE_INVALID', () => {
    expect(codeOf(() => readKeyFile(dir))).toMatch(/^CONSOLE_NOT_INITIALISED: .*volact console init/);
    writeFileSync(join(dir, KEY_FILE), 'c2hvcnQ=\n');
    expect(codeOf(() => readKeyFile(dir))).toMatch(/^KEY_FILE_INVALID/);
  });
});
