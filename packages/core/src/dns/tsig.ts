import { createHmac, timingSafeEqual } from 'node:crypto';
import { CoreError } from '../errors.js';
import {
  DNS_HEADER_SIZE,
  DnsClass,
  DnsType,
  canonicalNameWire,
  decodeDnsMessageLayout,
  encodeRecord,
  nameToWire,
  sameName,
  type DnsMessage,
} from './message.js';

/**
 * TSIG (RFC 8945) with HMAC-SHA256, the algorithm `tsig-keygen` makes by default: a request
 * is signed by appending a TSIG record whose MAC covers the message and the TSIG variables;
 * the server's reply carries a MAC over the request's MAC, the reply and its variables, and
 * is only believed when that MAC verifies with the same key.
 */
export interface TsigKey {
  /** The key's name as the server knows it ("ddns-key"). */
  name: string;
  algorithm: 'hmac-sha256';
  secret: Buffer;
}

export const TSIG_ALGORITHM_NAME = 'hmac-sha256';
/** Seconds of clock difference tolerated either way (RFC 8945 §10 recommends 300). */
export const TSIG_FUDGE = 300;
const MAC_SIZE = 32;

/** TSIG error field values (RFC 8945 §3). */
export const TsigError = { BADSIG: 16, BADKEY: 17, BADTIME: 18, BADTRUNC: 22 } as const;

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

interface TsigVariables {
  timeSigned: number;
  fudge: number;
  error: number;
  other: Buffer;
}

/** RFC 8945 §4.3.3: the variables are hashed with names in canonical (lower-case, uncompressed) form. */
function variablesWire(key: TsigKey, v: TsigVariables): Buffer {
  const fixed = Buffer.alloc(6 + 12); // class, TTL | time (48 bits), fudge, error, other length
  fixed.writeUInt16BE(DnsClass.ANY, 0);
  fixed.writeUInt32BE(0, 2); // TTL
  fixed.writeUIntBE(v.timeSigned, 6, 6);
  fixed.writeUInt16BE(v.fudge, 12);
  fixed.writeUInt16BE(v.error, 14);
  fixed.writeUInt16BE(v.other.length, 16);
  return Buffer.concat([
    canonicalNameWire(key.name),
    fixed.subarray(0, 6),
    canonicalNameWire(TSIG_ALGORITHM_NAME),
    fixed.subarray(6),
    v.other,
  ]);
}

/**
 * The MAC over `message` (its bytes without the TSIG record, with the original id and
 * ARCOUNT). A reply's MAC starts with the request's MAC, length-prefixed (§4.3.1).
 */
export function tsigMac(key: TsigKey, message: Uint8Array, variables: TsigVariables, requestMac?: Buffer): Buffer {
  const hmac = createHmac('sha256', key.secret);
  if (requestMac) hmac.update(u16(requestMac.length)).update(requestMac);
  hmac.update(message).update(variablesWire(key, variables));
  return hmac.digest();
}

/**
 * Signs an encoded message: appends the TSIG record and adds one to ARCOUNT. `timeSigned`
 * is in seconds since 1970. With `requestMac` it signs a reply (what a server does; the
 * tests use it to play one).
 */
export function signDnsMessage(
  message: Uint8Array,
  key: TsigKey,
  options: { timeSigned: number; requestMac?: Buffer; error?: number },
): { message: Buffer; mac: Buffer } {
  checkKey(key);
  const buf = Buffer.from(message);
  if (buf.length < DNS_HEADER_SIZE) {
    throw new CoreError('DNS_RECORD_INVALID', `cannot sign a message of ${buf.length} bytes (under the header)`);
  }
  const arcount = buf.readUInt16BE(10);
  if (arcount === 0xffff) throw new CoreError('DNS_RECORD_INVALID', 'cannot sign: the additional section is full');
  const variables = { timeSigned: Math.floor(options.timeSigned), fudge: TSIG_FUDGE, error: options.error ?? 0 };
  if (!Number.isInteger(variables.timeSigned) || variables.timeSigned < 0 || variables.timeSigned >= 2 ** 48) {
    throw new CoreError('DNS_RECORD_INVALID', `TSIG time ${options.timeSigned} is not a time in seconds since 1970`);
  }
  const mac = tsigMac(key, buf, { ...variables, other: Buffer.alloc(0) }, options.requestMac);
  const record = encodeRecord({
    name: key.name,
    type: DnsType.TSIG,
    class: DnsClass.ANY,
    ttl: 0,
    data: {
      kind: 'TSIG',
      algorithm: TSIG_ALGORITHM_NAME,
      ...variables,
      mac,
      originalId: buf.readUInt16BE(0),
      other: Buffer.alloc(0),
    },
  });
  buf.writeUInt16BE(arcount + 1, 10);
  return { message: Buffer.concat([buf, record]), mac };
}

function invalid(message: string): CoreError {
  return new CoreError('DNS_TSIG_INVALID', message);
}

/**
 * Verifies the TSIG record that ends `reply` against `key` and the MAC of the request it
 * answers; returns the decoded reply. Throws DNS_TSIG_INVALID when the reply is unsigned,
 * signed with another key or algorithm, its MAC is wrong, or it was signed more than the
 * fudge away from `nowMs`; DNS_NOTAUTH when the server says it could not verify the request
 * (BADKEY, BADSIG, BADTIME: RFC 8945 §5.3.2 has those answers sent unsigned).
 */
export function verifyDnsReply(
  reply: Uint8Array,
  key: TsigKey,
  requestMac: Buffer,
  options: { nowMs: number },
): DnsMessage {
  checkKey(key);
  const buf = Buffer.from(reply);
  const { message, lastRecordOffset } = decodeDnsMessageLayout(buf);
  const tsig = message.additionals.at(-1);
  if (!tsig || tsig.type !== DnsType.TSIG || tsig.data.kind !== 'TSIG') {
    throw invalid('the reply is not signed (no TSIG record): it cannot be trusted');
  }
  const t = tsig.data;
  if (t.error === TsigError.BADKEY) {
    throw new CoreError(
      'DNS_NOTAUTH',
      `the server does not know the TSIG key "${key.name}" (NOTAUTH, BADKEY): check --tsig-key-file holds the key the server is configured with`,
    );
  }
  if (t.error === TsigError.BADSIG) {
    throw new CoreError(
      'DNS_NOTAUTH',
      `the TSIG key was not accepted (NOTAUTH, BADSIG: the secret differs): check --tsig-key-file matches the server's key "${key.name}"`,
    );
  }
  if (tsig.class !== DnsClass.ANY || tsig.ttl !== 0) {
    throw invalid(`the reply's TSIG record has class ${tsig.class} and TTL ${tsig.ttl}; expected ANY (255) and 0`);
  }
  if (!sameName(tsig.name, key.name)) {
    throw invalid(`the reply is signed with the key "${tsig.name}", not "${key.name}"`);
  }
  if (!sameName(t.algorithm, TSIG_ALGORITHM_NAME)) {
    throw invalid(`the reply is signed with ${t.algorithm}; expected ${TSIG_ALGORITHM_NAME}`);
  }
  if (t.error === TsigError.BADTIME && t.mac.length === 0) {
    throw new CoreError('DNS_NOTAUTH', clockMessage(t.timeSigned, options.nowMs));
  }
  if (t.mac.length !== MAC_SIZE) {
    // Truncated MACs (RFC 8945 §5.2.2.1) are not accepted: a full HMAC-SHA256 is 32 bytes.
    throw invalid(`the reply's MAC is ${t.mac.length} bytes; expected ${MAC_SIZE}`);
  }
  // The MAC covers the reply as it was before the TSIG record: original id, ARCOUNT - 1.
  const signedPart = Buffer.from(buf.subarray(0, lastRecordOffset));
  signedPart.writeUInt16BE(t.originalId, 0);
  signedPart.writeUInt16BE(message.additionals.length - 1, 10);
  const expected = tsigMac(key, signedPart, t, requestMac);
  if (!timingSafeEqual(expected, t.mac)) {
    throw invalid(`the reply's TSIG signature does not verify with the key "${key.name}": it was changed or forged`);
  }
  if (t.error === TsigError.BADTIME) throw new CoreError('DNS_NOTAUTH', clockMessage(t.timeSigned, options.nowMs));
  const skew = Math.abs(Math.floor(options.nowMs / 1000) - t.timeSigned);
  if (skew > t.fudge) {
    throw invalid(
      `the reply was signed ${skew} s away from this machine's clock (fudge ${t.fudge} s): replayed, or a clock is wrong`,
    );
  }
  if (t.error !== 0) throw invalid(`the reply's TSIG reports error ${t.error}`);
  return message;
}

function clockMessage(serverTime: number, nowMs: number): string {
  const skew = Math.floor(nowMs / 1000) - serverTime;
  return `the server rejected the request's time (NOTAUTH, BADTIME): this clock is ${skew} s off the server's, more than the ${TSIG_FUDGE} s allowed; fix the clocks (NTP)`;
}

function checkKey(key: TsigKey): void {
  if (key.algorithm !== TSIG_ALGORITHM_NAME) {
    throw new CoreError(
      'TSIG_KEY_INVALID',
      `TSIG algorithm ${String(key.algorithm)} is not supported; expected hmac-sha256`,
    );
  }
  if (!Buffer.isBuffer(key.secret) || key.secret.length === 0) {
    throw new CoreError('TSIG_KEY_INVALID', `TSIG key "${key.name}" has an empty secret`);
  }
  try {
    nameToWire(key.name);
  } catch {
    throw new CoreError('TSIG_KEY_INVALID', `TSIG key name "${key.name}" is not a valid DNS name`);
  }
}

// ---------------------------------------------------------------------------------------
// Key files

type Token = { kind: 'word' | 'string' | '{' | '}' | ';'; text: string; line: number };

const MAX_KEY_FILE = 64 * 1024;

function keyFileError(message: string): CoreError {
  return new CoreError('TSIG_KEY_INVALID', `TSIG key file: ${message}`);
}

// Token texts are never put in messages: a mangled file can have the secret anywhere.
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === '#' || text.startsWith('//', i)) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw keyFileError(`comment opened on line ${line} is not closed`);
      line += (text.slice(i, end).match(/\n/g) ?? []).length;
      i = end + 2;
    } else if (c === '{' || c === '}' || c === ';') {
      tokens.push({ kind: c, text: c, line });
      i++;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0 || text.slice(i + 1, end).includes('\n')) {
        throw keyFileError(`quoted string on line ${line} is not closed on that line`);
      }
      tokens.push({ kind: 'string', text: text.slice(i + 1, end), line });
      i = end + 1;
    } else {
      const m = /^[^\s{};"#]+/.exec(text.slice(i, i + 1024)) as RegExpExecArray;
      tokens.push({ kind: 'word', text: m[0], line });
      i += m[0].length;
    }
  }
  return tokens;
}

/**
 * Reads the file `tsig-keygen -a hmac-sha256 NAME` writes:
 *
 *     key "NAME" {
 *         algorithm hmac-sha256;
 *         secret "BASE64";
 *     };
 *
 * Exactly one key; comments allowed. Errors name the line and what was expected, and never
 * the secret.
 */
export function parseTsigKeyFile(text: string): TsigKey {
  if (typeof text !== 'string' || text.length > MAX_KEY_FILE) {
    throw keyFileError(`expected a text file of at most ${MAX_KEY_FILE} bytes`);
  }
  const tokens = tokenize(text);
  let at = 0;
  const lastLine = tokens.at(-1)?.line ?? 1;
  const expect = (kind: Token['kind'], what: string): Token => {
    const t = tokens[at];
    if (!t) throw keyFileError(`the file ends after line ${lastLine}; expected ${what}`);
    if (t.kind !== kind) throw keyFileError(`unexpected ${describe(t)} on line ${t.line}; expected ${what}`);
    at++;
    return t;
  };
  const keyword = expect('word', 'key "NAME" {');
  if (keyword.text.toLowerCase() !== 'key') {
    throw keyFileError(`line ${keyword.line} does not start a key statement; expected key "NAME" { ... };`);
  }
  const nameToken = tokens[at];
  if (!nameToken || (nameToken.kind !== 'string' && nameToken.kind !== 'word')) {
    throw keyFileError(`expected the key name after "key" on line ${keyword.line}`);
  }
  at++;
  const name = nameToken.text.replace(/\.$/, '');
  try {
    if (name === '') throw new Error('empty');
    nameToWire(name);
  } catch {
    throw keyFileError(`the key name on line ${nameToken.line} is not a valid DNS name`);
  }
  expect('{', '"{" after the key name');
  let algorithm: string | undefined;
  let secret: Buffer | undefined;
  for (;;) {
    const t = tokens[at];
    if (t?.kind === '}') {
      at++;
      break;
    }
    const option = expect('word', 'algorithm, secret or "}"');
    const which = option.text.toLowerCase();
    if (which === 'algorithm') {
      const value = tokens[at];
      if (!value || (value.kind !== 'word' && value.kind !== 'string')) {
        throw keyFileError(`expected an algorithm name on line ${option.line}`);
      }
      at++;
      algorithm = value.text.toLowerCase().replace(/\.$/, '');
      if (algorithm !== TSIG_ALGORITHM_NAME) {
        // Algorithm names are public and short; saying which one was found helps.
        const shown = /^[a-z0-9-]{1,32}$/.test(algorithm) ? algorithm : 'an unknown algorithm';
        throw keyFileError(
          `the key uses ${shown}; only hmac-sha256 is supported: make a key with \`tsig-keygen -a hmac-sha256 ${name}\``,
        );
      }
    } else if (which === 'secret') {
      const value = expect('string', `the secret in double quotes on line ${option.line}`);
      const b64 = value.text.trim();
      if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64) || b64 === '') {
        throw keyFileError(`the secret on line ${value.line} is not base64`);
      }
      secret = Buffer.from(b64, 'base64');
    } else {
      throw keyFileError(`unknown option on line ${option.line}; expected algorithm or secret`);
    }
    expect(';', `";" on line ${option.line}`);
  }
  expect(';', '";" after the closing "}"');
  if (at < tokens.length) {
    const t = tokens[at] as Token;
    throw keyFileError(
      t.kind === 'word' && t.text.toLowerCase() === 'key'
        ? `a second key starts on line ${t.line}; expected a file with one key`
        : `unexpected ${describe(t)} on line ${t.line} after the key`,
    );
  }
  if (algorithm === undefined) throw keyFileError('the key has no algorithm; expected algorithm hmac-sha256;');
  if (!secret) throw keyFileError('the key has no secret; expected secret "BASE64";');
  return { name, algorithm: TSIG_ALGORITHM_NAME, secret };
}

function describe(t: Token): string {
  if (t.kind === 'string') return 'quoted string';
  if (t.kind === 'word') return 'word';
  return `"${t.kind}"`;
}
