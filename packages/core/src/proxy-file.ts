import { createPrivateKey, createPublicKey } from 'node:crypto';
import { z } from 'zod';
import { rawPublicKey, publicKeyFromRaw, sha256, signMessage, verifyMessage, type SigningKeyPair } from './crypto.js';
import { CoreError } from './errors.js';
import { keyIdHex } from './trust/key-id.js';

/**
 * Proxy activation of an isolated network through files (the reference VAMT's removable disk).
 *
 * 1. The console writes an installation-ID file (`volact-iid-file/1`): the IIDs it read through
 *    its agents, signed with an Ed25519 key derived from its console.key (no secret in it).
 * 2. A connected machine (the authority's `confirm-file`, a second console, the portal) checks the
 *    signature and answers a confirmation file (`volact-cid-file/1`) naming the request it answers
 *    (id, console key ID, digest of the file).
 * 3. The console that collected the file installs the CIDs through its agents.
 *
 * Both parsers are strict and bounded: exact format version, no unknown field, at most
 * MAX_PROXY_FILE_ENTRIES entries and MAX_PROXY_FILE_CHARS characters; each error names its field
 * (`entries[3].installationId: …`).
 */
export const IID_FILE_FORMAT = 'volact-iid-file/1';
export const CID_FILE_FORMAT = 'volact-cid-file/1';
export const MAX_PROXY_FILE_ENTRIES = 50_000;
/** 50 000 results of about 700 characters at most each fit. */
export const MAX_PROXY_FILE_CHARS = 40 * 1024 * 1024;

/** The signature covers this context, a NUL, then the canonical JSON of the file without `signature`. */
const SIGNATURE_CONTEXT = `${IID_FILE_FORMAT}\0`;

// eslint-disable-next-line no-control-regex -- what a name people read may not hold
const CONTROL = /[\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex -- replaced in an authority's message
const CONTROLS = /[\u0000-\u001f\u007f]/g;

const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

const isoTime = z
  .string()
  .max(40)
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/, 'expected an ISO time (YYYY-MM-DDTHH:MM:SS.sssZ)')
  .refine((s) => !Number.isNaN(Date.parse(s)), 'expected a real date');
const requestId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'expected 8-64 letters, digits, _ or -');
const keyId = z.string().regex(/^[0-9a-f]{16}$/, 'expected 16 hex digits');
const publicKey = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected a base64 Ed25519 public key');
const digitGroups = (what: string) =>
  z
    .string()
    .max(400)
    .regex(/^\d{6}(-\d{6}){1,59}$/, `expected ${what} as groups of 6 digits joined by "-"`);
const installationId = digitGroups('an installation ID');
const confirmationId = digitGroups('a confirmation ID');
const digest = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 hex digits (SHA-256)');
// A name people read: no control characters.
const readable = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => !CONTROL.test(s), 'expected no control characters');

const iidEntrySchema = z.strictObject({
  machine: readable(300),
  machineId: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  installationId,
  /** The installed key's last five as the agent reports it (…ABCDE), never the key. */
  installedKey: readable(16).nullable(),
});

const iidFileSchema = z.strictObject({
  format: z.literal(IID_FILE_FORMAT),
  id: requestId,
  createdAt: isoTime,
  console: z.strictObject({ keyId, publicKey }),
  entries: z.array(iidEntrySchema).max(MAX_PROXY_FILE_ENTRIES),
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 Ed25519 signature'),
});

const cidResultSchema = z.discriminatedUnion('ok', [
  z.strictObject({ installationId, ok: z.literal(true), confirmationId }),
  z.strictObject({
    installationId,
    ok: z.literal(false),
    code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'expected an error code (CAPITALS_AND_UNDERSCORES)'),
    message: readable(1000),
  }),
]);

const cidFileSchema = z.strictObject({
  format: z.literal(CID_FILE_FORMAT),
  request: z.strictObject({ id: requestId, consoleKeyId: keyId, digest }),
  confirmedAt: isoTime,
  authority: readable(2000),
  results: z.array(cidResultSchema).max(MAX_PROXY_FILE_ENTRIES),
});

export type IidFileEntry = z.infer<typeof iidEntrySchema>;
export type IidFile = z.infer<typeof iidFileSchema>;
export type IidFileBody = Omit<IidFile, 'signature'>;
export type CidResult = z.infer<typeof cidResultSchema>;
export type CidFile = z.infer<typeof cidFileSchema>;

/** JSON with every object's keys sorted, no spaces: the bytes signed and digested. */
export function canonicalJson(value: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  return JSON.stringify(canonical(value));
}

/** The Ed25519 key pair of a 32-byte seed (the console derives it from console.key). */
export function signingKeyPairFromSeed(seed: Uint8Array): SigningKeyPair {
  if (seed.length !== 32) throw new RangeError(`an Ed25519 seed has 32 bytes, got ${seed.length}`);
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicKeyRaw: rawPublicKey(publicKey) };
}

/** The file's key ID and public key, as the file carries them. */
export function proxyFileSigner(key: SigningKeyPair): { keyId: string; publicKey: string } {
  return { keyId: keyIdHex(key.publicKeyRaw), publicKey: key.publicKeyRaw.toString('base64') };
}

const signedBytes = (body: IidFileBody): Buffer => Buffer.from(SIGNATURE_CONTEXT + canonicalJson(body));

/** Signs an installation-ID file: the signature covers the whole body, console key ID and public key included. */
export function signIidFile(
  content: { id: string; createdAt: string; entries: readonly IidFileEntry[] },
  key: SigningKeyPair,
): IidFile {
  const body: IidFileBody = {
    format: IID_FILE_FORMAT,
    id: content.id,
    createdAt: content.createdAt,
    console: proxyFileSigner(key),
    entries: content.entries.map((e) => ({
      machine: e.machine,
      machineId: e.machineId,
      installationId: e.installationId,
      installedKey: e.installedKey,
    })),
  };
  const file = { ...body, signature: signMessage(key.privateKey, signedBytes(body)).toString('base64') };
  // What is written must read back (a machine name with a control character, too many entries…).
  return parseIidFile(encodeProxyFile(file));
}

/** The text written to disk: indented JSON and a final newline (the signature does not depend on the layout). */
export function encodeProxyFile(file: IidFile | CidFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** "entries[3].installationId" */
function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out === '' ? '' : '.'}${String(p)}`;
  return out;
}

function parseBounded<T>(text: string, schema: z.ZodType<T>, what: string): T {
  if (typeof text !== 'string') throw new CoreError('PROXY_FILE_INVALID', `the ${what} is not text`);
  if (text.length > MAX_PROXY_FILE_CHARS) {
    throw new CoreError(
      'PROXY_FILE_INVALID',
      `the ${what} is larger than ${MAX_PROXY_FILE_CHARS} characters (at most ${MAX_PROXY_FILE_ENTRIES} machines a file)`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CoreError('PROXY_FILE_INVALID', `the ${what} is not JSON`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CoreError('PROXY_FILE_INVALID', `the ${what} is not a JSON object`);
  }
  const format = (raw as Record<string, unknown>).format;
  const expected = what === 'installation-ID file' ? IID_FILE_FORMAT : CID_FILE_FORMAT;
  if (format !== expected) {
    const other = what === 'installation-ID file' ? CID_FILE_FORMAT : IID_FILE_FORMAT;
    throw new CoreError(
      'PROXY_FILE_INVALID',
      format === other
        ? `format: this is a ${other} file, not the ${what} (${expected}) expected here`
        : `format: expected "${expected}", got ${typeof format === 'string' ? `"${format.slice(0, 40)}"` : typeof format}`,
    );
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue === undefined) throw new CoreError('PROXY_FILE_INVALID', `the ${what} is invalid`);
    if (issue.code === 'unrecognized_keys') {
      const at = fieldPath(issue.path);
      const keys = issue.keys.map((k) => `${at === '' ? '' : `${at}.`}${k.slice(0, 40)}`);
      throw new CoreError('PROXY_FILE_INVALID', `${keys.join(', ')}: unknown field in the ${what}`);
    }
    throw new CoreError('PROXY_FILE_INVALID', `${fieldPath(issue.path) || 'body'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Strict parse of an installation-ID file, then its signature: a file edited after the console
 * wrote it (any field, console key included) is PROXY_FILE_TAMPERED.
 *
 * The signature binds the file to the key it names, nothing more: whoever can write the file
 * can sign an edited one with a key of their own. `consoleKeyId` (the collecting console's key
 * ID, learned from it out of band: its `--collect` output, its web UI) pins it: a file signed by
 * any other key is PROXY_FILE_FOREIGN, before anything is confirmed.
 */
export function parseIidFile(text: string, options: { consoleKeyId?: string } = {}): IidFile {
  const file = parseBounded(text, iidFileSchema, 'installation-ID file');
  if (options.consoleKeyId !== undefined && file.console.keyId !== options.consoleKeyId.trim().toLowerCase()) {
    throw new CoreError(
      'PROXY_FILE_FOREIGN',
      `installation-ID file ${file.id} is signed by console key ${file.console.keyId}, not by ${options.consoleKeyId.trim().slice(0, 32)} as expected: it is not the file that console collected (swapped or re-signed on the way)`,
    );
  }
  const raw = Buffer.from(file.console.publicKey, 'base64');
  if (raw.length !== 32 || keyIdHex(raw) !== file.console.keyId) {
    throw new CoreError(
      'PROXY_FILE_TAMPERED',
      'console.keyId is not the key ID of console.publicKey: the file was edited after the console wrote it; collect it again',
    );
  }
  const { signature, ...body } = file;
  let ok: boolean;
  try {
    ok = verifyMessage(publicKeyFromRaw(raw), signedBytes(body), Buffer.from(signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new CoreError(
      'PROXY_FILE_TAMPERED',
      `the signature of installation-ID file ${file.id} does not verify under console key ${file.console.keyId}: the file was edited after the console wrote it; collect it again`,
    );
  }
  return file;
}

/** What a confirmation file's request.digest names: SHA-256 (hex) of the canonical installation-ID file. */
export function iidFileDigest(file: IidFile): string {
  return sha256(Buffer.from(canonicalJson(file))).toString('hex');
}

/** Strict parse of a confirmation file (not signed: each CID is checked by the machine installing it). */
export function parseCidFile(text: string): CidFile {
  return parseBounded(text, cidFileSchema, 'confirmation file');
}

/** The authority's answer for one IID, as the confirmation file carries it. */
export type ConfirmationAnswer =
  | { readonly installationId: string; readonly ok: true; readonly confirmationId: string }
  | { readonly installationId: string; readonly ok: false; readonly code: string; readonly message: string };

/**
 * The confirmation file answering an (already verified) installation-ID file: one result per
 * distinct IID of the file, in the file's order.
 */
export function cidFileFor(
  iidFile: IidFile,
  answers: readonly ConfirmationAnswer[],
  authority: string,
  confirmedAt: string,
): CidFile {
  const byIid = new Map(answers.map((a) => [a.installationId, a]));
  const seen = new Set<string>();
  const results: CidResult[] = [];
  for (const { installationId: iid } of iidFile.entries) {
    if (seen.has(iid)) continue;
    seen.add(iid);
    const a = byIid.get(iid);
    results.push(
      a === undefined
        ? { installationId: iid, ok: false, code: 'NO_ANSWER', message: 'the authority gave no answer for it' }
        : a.ok
          ? { installationId: iid, ok: true, confirmationId: a.confirmationId }
          : {
              installationId: iid,
              ok: false,
              code: /^[A-Z][A-Z0-9_]{0,63}$/.test(a.code) ? a.code : 'REFUSED',
              message: a.message.replace(CONTROLS, ' ').slice(0, 1000) || a.code,
            },
    );
  }
  const file: CidFile = {
    format: CID_FILE_FORMAT,
    request: { id: iidFile.id, consoleKeyId: iidFile.console.keyId, digest: iidFileDigest(iidFile) },
    confirmedAt,
    authority,
    results,
  };
  return parseCidFile(encodeProxyFile(file));
}

/** The distinct installation IDs of a file, in order (what is sent to the authority). */
export function iidFileInstallationIds(file: IidFile): string[] {
  return [...new Set(file.entries.map((e) => e.installationId))];
}
