/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-call -- the tests edit parsed JSON freely */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CoreError } from './errors.js';
import { encodeDigitGroups } from './digit-groups.js';
import {
  MAX_PROXY_FILE_ENTRIES,
  canonicalJson,
  cidFileFor,
  encodeProxyFile,
  iidFileDigest,
  parseCidFile,
  parseIidFile,
  signIidFile,
  signingKeyPairFromSeed,
  type IidFileEntry,
} from './proxy-file.js';
import { keyIdHex } from './trust/key-id.js';

const key = signingKeyPairFromSeed(Buffer.alloc(32, 7));
const other = signingKeyPairFromSeed(Buffer.alloc(32, 9));
const iid = (n: number) => encodeDigitGroups(BigInt(n) * 1_000_003n, 9);
const cid = (n: number) => encodeDigitGroups(BigInt(n) * 7_777_777n, 24);
const entries: IidFileEntry[] = [1, 2, 3].map((n) => ({
  machine: `pc-${n}`,
  machineId: n,
  installationId: iid(n),
  installedKey: '…ABCDE',
}));
const signed = () => signIidFile({ id: 'req-0123456789', createdAt: '2026-12-03T07:00:00.000Z', entries }, key);

const codeOf = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(CoreError);
    return `${(err as CoreError).code}: ${(err as CoreError).message}`;
  }
  return 'accepted';
};

describe('installation-ID file (volact-iid-file/1)', () => {
  it('reads back what was signed; the key ID is the first 8 bytes of SHA-256 of the public key', () => {
    const file = signed();
    expect(file.console.keyId).toBe(keyIdHex(key.publicKeyRaw));
    expect(parseIidFile(encodeProxyFile(file))).toEqual(file);
    // The signature does not depend on the layout: compact JSON reads too.
    expect(parseIidFile(JSON.stringify(file))).toEqual(file);
    expect(JSON.stringify(file)).not.toMatch(/private|seed|token/i);
  });

  it('the same seed gives the same key (every console sharing console.key signs alike)', () => {
    expect(signingKeyPairFromSeed(Buffer.alloc(32, 7)).publicKeyRaw).toEqual(key.publicKeyRaw);
    expect(other.publicKeyRaw).not.toEqual(key.publicKeyRaw);
  });

  it('any edited field value is PROXY_FILE_TAMPERED', () => {
    const text = encodeProxyFile(signed());
    const edits: [string, (f: Record<string, any>) => void][] = [
      ['id', (f) => (f.id = 'req-0123456780')],
      ['createdAt', (f) => (f.createdAt = '2026-12-03T07:00:01.000Z')],
      ['machine', (f) => (f.entries[1].machine = 'pc-9')],
      ['machineId', (f) => (f.entries[1].machineId = 9)],
      ['installationId', (f) => (f.entries[2].installationId = iid(99))],
      ['installedKey', (f) => (f.entries[0].installedKey = null)],
      ['entry removed', (f) => f.entries.pop()],
      ['entry added', (f) => f.entries.push({ ...f.entries[0], machineId: 50 })],
      ['entries reordered', (f) => f.entries.reverse()],
      // Another console's key in the file: the signature is not by it.
      [
        'console key swapped',
        (f) => (f.console = { keyId: keyIdHex(other.publicKeyRaw), publicKey: other.publicKeyRaw.toString('base64') }),
      ],
      ['key ID alone', (f) => (f.console.keyId = keyIdHex(other.publicKeyRaw))],
      ['signature', (f) => (f.signature = `${'A'.repeat(86)}==`)],
    ];
    for (const [what, edit] of edits) {
      const f = JSON.parse(text);
      edit(f);
      expect(
        codeOf(() => parseIidFile(JSON.stringify(f))),
        what,
      ).toMatch(/^PROXY_FILE_TAMPERED: /);
    }
  });

  it('a file re-signed by another key is refused too (keyId/publicKey mismatch or another console key)', () => {
    const f = {
      ...signed(),
      console: { keyId: keyIdHex(other.publicKeyRaw), publicKey: key.publicKeyRaw.toString('base64') },
    };
    expect(codeOf(() => parseIidFile(JSON.stringify(f)))).toMatch(/^PROXY_FILE_TAMPERED: console\.keyId/);
  });

  it('no single changed byte is accepted', () => {
    const text = JSON.stringify(signed());
    for (let i = 0; i < text.length; i++) {
      const c = text[i] as string;
      const swapped = /[0-9]/.test(c)
        ? String((Number(c) + 1) % 10)
        : /[a-z]/.test(c)
          ? c === 'a'
            ? 'b'
            : 'a'
          : c === 'A'
            ? 'B'
            : 'A';
      const result = codeOf(() => parseIidFile(text.slice(0, i) + swapped + text.slice(i + 1)));
      expect(result, `byte ${i} (${c})`).toMatch(/^PROXY_FILE_(TAMPERED|INVALID): /);
    }
  });

  it('strict: the exact version, no unknown field, named fields, bounded', () => {
    const f = () => JSON.parse(encodeProxyFile(signed()));
    const text = (o: unknown) => JSON.stringify(o);
    expect(codeOf(() => parseIidFile(text({ ...f(), format: 'volact-iid-file/2' })))).toBe(
      'PROXY_FILE_INVALID: format: expected "volact-iid-file/1", got "volact-iid-file/2"',
    );
    expect(codeOf(() => parseIidFile(text({ ...f(), note: 'x' })))).toBe(
      'PROXY_FILE_INVALID: note: unknown field in the installation-ID file',
    );
    const unknownInEntry = f();
    unknownInEntry.entries[2].productKey = 'AAAAA-BBBBB-CCCCC-DDDDD-EEEEE';
    expect(codeOf(() => parseIidFile(text(unknownInEntry)))).toBe(
      'PROXY_FILE_INVALID: entries[2].productKey: unknown field in the installation-ID file',
    );
    const badIid = f();
    badIid.entries[1].installationId = '12345';
    expect(codeOf(() => parseIidFile(text(badIid)))).toMatch(/^PROXY_FILE_INVALID: entries\[1\]\.installationId: /);
    const missing = f();
    delete missing.entries[0].machineId;
    expect(codeOf(() => parseIidFile(text(missing)))).toMatch(/^PROXY_FILE_INVALID: entries\[0\]\.machineId: /);
    expect(codeOf(() => parseIidFile('not json'))).toBe('PROXY_FILE_INVALID: the installation-ID file is not JSON');
    expect(codeOf(() => parseIidFile('[]'))).toMatch(/^PROXY_FILE_INVALID: /);
    expect(
      codeOf(() => parseIidFile(encodeProxyFile(cidFileFor(signed(), [], 'https://a', '2026-12-03T08:00:00.000Z')))),
    ).toMatch(/^PROXY_FILE_INVALID: format: this is a volact-cid-file\/1 file/);
  });

  it('refuses a huge file before parsing it, and more than 50 000 entries', () => {
    expect(codeOf(() => parseIidFile(' '.repeat(41 * 1024 * 1024)))).toMatch(/^PROXY_FILE_INVALID: .*larger than/);
    const many = { ...JSON.parse(encodeProxyFile(signed())) };
    many.entries = Array.from({ length: MAX_PROXY_FILE_ENTRIES + 1 }, (_, i) => ({ ...entries[0], machineId: i }));
    expect(codeOf(() => parseIidFile(JSON.stringify(many)))).toMatch(/^PROXY_FILE_INVALID: entries: /);
  });

  it('canonical JSON sorts keys at every level', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}',
    );
  });
});

describe('confirmation file (volact-cid-file/1)', () => {
  it('names the request it answers (id, console key ID, digest) and reads back', () => {
    const file = signed();
    const cids = cidFileFor(
      file,
      [
        { installationId: iid(1), ok: true, confirmationId: cid(1) },
        { installationId: iid(2), ok: false, code: 'MAK_LIMIT_REACHED', message: 'the key is used up' },
      ],
      'https://authority.example',
      '2026-12-03T08:00:00.000Z',
    );
    expect(cids.request).toEqual({ id: file.id, consoleKeyId: file.console.keyId, digest: iidFileDigest(file) });
    expect(cids.results.map((r) => r.ok)).toEqual([true, false, false]);
    expect(cids.results[2]).toMatchObject({ installationId: iid(3), code: 'NO_ANSWER' });
    expect(parseCidFile(encodeProxyFile(cids))).toEqual(cids);
    // Another file (one field differs) has another digest.
    const again = signIidFile({ id: file.id, createdAt: file.createdAt, entries: entries.slice(0, 2) }, key);
    expect(iidFileDigest(again)).not.toBe(iidFileDigest(file));
  });

  it('strict: version, unknown fields, named fields', () => {
    const base = JSON.parse(
      encodeProxyFile(
        cidFileFor(
          signed(),
          [{ installationId: iid(1), ok: true, confirmationId: cid(1) }],
          'https://a',
          '2026-12-03T08:00:00.000Z',
        ),
      ),
    );
    const text = (o: unknown) => JSON.stringify(o);
    expect(codeOf(() => parseCidFile(text({ ...base, format: 'volact-cid-file/1.1' })))).toMatch(
      /^PROXY_FILE_INVALID: format: expected "volact-cid-file\/1"/,
    );
    const extra = structuredClone(base);
    extra.results[0].machineId = 3;
    expect(codeOf(() => parseCidFile(text(extra)))).toBe(
      'PROXY_FILE_INVALID: results[0].machineId: unknown field in the confirmation file',
    );
    const badCid = structuredClone(base);
    badCid.results[0].confirmationId = 'abc';
    expect(codeOf(() => parseCidFile(text(badCid)))).toMatch(/^PROXY_FILE_INVALID: results\[0\]\.confirmationId: /);
    const badDigest = structuredClone(base);
    badDigest.request.digest = 'zz';
    expect(codeOf(() => parseCidFile(text(badDigest)))).toMatch(/^PROXY_FILE_INVALID: request\.digest: /);
    expect(codeOf(() => parseCidFile(text({ ...base, results: 'x' })))).toMatch(/^PROXY_FILE_INVALID: results: /);
  });

  it('a random seed gives a working key', () => {
    const k = signingKeyPairFromSeed(randomBytes(32));
    expect(
      parseIidFile(encodeProxyFile(signIidFile({ id: 'abcdefgh', createdAt: '2026-01-01T00:00:00Z', entries: [] }, k)))
        .entries,
    ).toEqual([]);
  });
});
