/**
 * Where a root key lives and how it signs: a PEM file in the data directory (the default), or a
 * PKCS#11 token that generated it and never lets it out (`--signer pkcs11:token=…;object=…`).
 * Both give a `Signer` (core's interface: publicKeyRaw, keyId, synchronous sign) plus close().
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import {
  generateSigningKeyPair,
  keyFingerprint,
  privateKeyToPem,
  signMessage,
  signingKeyPairFromPem,
  type SigningKeyPair,
  writeWholeSync,
} from '@volact/core';
import { AuthorityError } from './errors.js';
import {
  DEFAULT_OBJECT_LABEL,
  DEFAULT_PKCS11_MODULE,
  createPkcs11RootKey,
  destroyPkcs11RootKey,
  listPkcs11OrphanRootKeys,
  listPkcs11RootKeys,
  openPkcs11RootSigner,
  pkcs11ObjectLabel,
  type Pkcs11Location,
} from './pkcs11-signer.js';

export type RootSignerSpec =
  /** `path`: the folder of `<label>.pem` files (relative: to the data directory, see resolveSignerSpec). */
  | { kind: 'file'; path: string }
  | {
      kind: 'pkcs11';
      /** The RFC 7512 URI as given (it never holds a PIN: pin-value is refused). */
      uri: string;
      /** Overrides the URI's pin-source. */
      pinFile?: string;
      /** Overrides the URI's module-path. */
      modulePath?: string;
      /** A PIN handed over by the CLI (e.g. from its environment); never printed, never stored. */
      pin?: string;
    };

export type Pkcs11SignerSpec = Extract<RootSignerSpec, { kind: 'pkcs11' }>;

/** A root signer: core's `Signer` and close() (ends a token session; nothing for a file). */
export interface RootSigner {
  readonly publicKeyRaw: Buffer;
  readonly keyId: Buffer;
  sign(message: Uint8Array): Buffer;
  close(): void;
}

/** The folder of file roots inside the data directory. */
export const FILE_ROOTS_DIR = 'roots';

const invalidSpec = (message: string) => new AuthorityError('REQUEST_INVALID', message);

/** The attributes of a `pkcs11:` URI this authority understands. */
const URI_ATTRIBUTES = ['token', 'object', 'slot-id', 'serial', 'type', 'module-path', 'pin-source'] as const;
type UriAttribute = (typeof URI_ATTRIBUTES)[number];

function parsePkcs11Uri(uri: string): Partial<Record<UriAttribute, string>> {
  if (!uri.startsWith('pkcs11:'))
    throw invalidSpec(`a PKCS#11 signer starts with "pkcs11:", got "${uri.slice(0, 20)}"`);
  const rest = uri.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const pairs = [
    ...(q < 0 ? rest : rest.slice(0, q)).split(';'),
    ...(q < 0 ? [] : rest.slice(q + 1).split('&')),
  ].filter((p) => p !== '');
  const out: Partial<Record<UriAttribute, string>> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const name = (eq < 0 ? pair : pair.slice(0, eq)).toLowerCase();
    if (name === 'pin-value') {
      throw invalidSpec(
        'the PKCS#11 URI must not carry the PIN (pin-value=): it would be stored and shown; use pin-source=file:/path/to/pin-file (mode 0600)',
      );
    }
    if (!(URI_ATTRIBUTES as readonly string[]).includes(name)) {
      throw invalidSpec(`the PKCS#11 URI attribute "${name}" is not supported: use ${URI_ATTRIBUTES.join(', ')}`);
    }
    if (eq < 0 || eq === pair.length - 1) throw invalidSpec(`the PKCS#11 URI attribute "${name}" has no value`);
    if (out[name as UriAttribute] !== undefined) throw invalidSpec(`the PKCS#11 URI names "${name}" twice`);
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(eq + 1));
    } catch {
      throw invalidSpec(`the PKCS#11 URI attribute "${name}" has a bad %-escape`);
    }
    out[name as UriAttribute] = value;
  }
  if (out.token === undefined && out['slot-id'] === undefined) {
    throw invalidSpec('the PKCS#11 URI names no token: add token=<label> (or slot-id=<number>)');
  }
  if (out['slot-id'] !== undefined && !/^\d{1,20}$/.test(out['slot-id'])) {
    throw invalidSpec(`slot-id must be a decimal number, got "${out['slot-id']}"`);
  }
  if (out.type !== undefined && out.type !== 'private' && out.type !== 'public') {
    throw invalidSpec(`type must be "private" (the root key), got "${out.type}"`);
  }
  if (out.object !== undefined && !/^[\x20-\x7e]{1,64}$/.test(out.object)) {
    throw invalidSpec('object must be 1 to 64 printable ASCII characters');
  }
  if (out['module-path'] !== undefined && !isAbsolute(out['module-path'])) {
    throw invalidSpec(`module-path must be an absolute path, got "${out['module-path']}"`);
  }
  return out;
}

function pinFileOf(source: string): string {
  if (source.startsWith('|'))
    throw invalidSpec('pin-source may only name a file (pin-source=file:/path), not a command');
  const path = source.startsWith('file://') ? new URL(source).pathname : source.replace(/^file:/, '');
  if (path === '') throw invalidSpec('pin-source names no file: use pin-source=file:/path/to/pin-file');
  return path;
}

/**
 * `file` (the data directory's roots/ folder), `file:PATH`, or
 * `pkcs11:token=…;object=…[;slot-id=…][;serial=…][;module-path=…][;pin-source=file:…]`
 * (RFC 7512: path attributes by `;`, module-path and pin-source may also come after `?`, by `&`).
 */
export function parseSignerSpec(text: string): RootSignerSpec {
  const spec = text.trim();
  if (spec === 'file') return { kind: 'file', path: FILE_ROOTS_DIR };
  if (spec.startsWith('file:')) {
    const path = spec.slice('file:'.length);
    if (path === '') throw invalidSpec('file: names no folder: use --signer file (the data directory) or file:/path');
    return { kind: 'file', path };
  }
  if (spec.startsWith('pkcs11:')) {
    const attrs = parsePkcs11Uri(spec);
    return {
      kind: 'pkcs11',
      uri: spec,
      ...(attrs['pin-source'] !== undefined ? { pinFile: pinFileOf(attrs['pin-source']) } : {}),
      ...(attrs['module-path'] !== undefined ? { modulePath: attrs['module-path'] } : {}),
    };
  }
  throw invalidSpec(
    `the signer "${spec.slice(0, 20)}" is neither "file" nor a PKCS#11 URI ("pkcs11:token=…;object=…;pin-source=file:…")`,
  );
}

/** Makes a file spec's folder and a PIN file absolute, relative to the data directory. */
export function resolveSignerSpec(spec: RootSignerSpec, dataDir: string): RootSignerSpec {
  if (spec.kind === 'file') return { kind: 'file', path: resolve(dataDir, spec.path) };
  return spec.pinFile !== undefined ? { ...spec, pinFile: resolve(dataDir, spec.pinFile) } : spec;
}

function locationOf(spec: Pkcs11SignerSpec): Pkcs11Location {
  const attrs = parsePkcs11Uri(spec.uri);
  const pinSource = attrs['pin-source'];
  const pinFile = spec.pinFile ?? (pinSource !== undefined ? pinFileOf(pinSource) : undefined);
  return {
    ...(attrs.token !== undefined ? { token: attrs.token } : {}),
    ...(attrs['slot-id'] !== undefined ? { slotId: attrs['slot-id'] } : {}),
    ...(attrs.serial !== undefined ? { serial: attrs.serial } : {}),
    object: attrs.object ?? DEFAULT_OBJECT_LABEL,
    modulePath: spec.modulePath ?? attrs['module-path'] ?? DEFAULT_PKCS11_MODULE,
    ...(pinFile !== undefined ? { pinFile } : {}),
    ...(spec.pin !== undefined ? { pin: spec.pin } : {}),
  };
}

// --- file roots ------------------------------------------------------------------------------

function fileOf(spec: { path: string }, label: string): string {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/.test(label)) {
    throw invalidSpec(
      `a root key label is 1 to 64 letters, digits, '.', '_' or '-' (not starting with '.'), got "${label}"`,
    );
  }
  return join(spec.path, `${label}.pem`);
}

function fileSigner(pair: SigningKeyPair): RootSigner {
  return {
    publicKeyRaw: pair.publicKeyRaw,
    keyId: keyFingerprint(pair.publicKeyRaw),
    sign: (message) => signMessage(pair.privateKey, message),
    close() {},
  };
}

function createFileRootKey(spec: { path: string }, label: string): RootSigner {
  const path = fileOf(spec, label);
  mkdirSync(spec.path, { recursive: true, mode: 0o700 });
  const pair = generateSigningKeyPair();
  // Written whole under a temporary name, then linked to its name: a crash leaves no half
  // file under the real name, and an existing key is never overwritten (link fails, EEXIST).
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeWholeSync(fd, privateKeyToPem(pair.privateKey)); // every byte (a full disk may write part of it)
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new AuthorityError(
        'AUTHORITY_EXISTS',
        `the root key file ${path} exists: a root key is never replaced in place; open it, or choose another label`,
      );
    }
    throw err;
  } finally {
    unlinkSync(temporary);
  }
  const dir = openSync(spec.path, 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  return fileSigner(pair);
}

function openFileRootSigner(spec: { path: string }, label: string, keyId?: Uint8Array): RootSigner {
  const path = fileOf(spec, label);
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new AuthorityError(
        'ROOT_KEY_UNAVAILABLE',
        `the root key file ${path} does not exist: it was retired or deleted; restore it from the backup`,
      );
    }
    throw err;
  }
  let pair: SigningKeyPair;
  try {
    pair = signingKeyPairFromPem(pem);
  } catch {
    throw new AuthorityError(
      'AUTHORITY_FILE_DAMAGED',
      `the root key file ${path} is damaged (not an Ed25519 private key in PEM): restore it from the backup`,
    );
  }
  const signer = fileSigner(pair);
  if (keyId !== undefined && !signer.keyId.equals(Buffer.from(keyId))) {
    throw new AuthorityError(
      'ROOT_KEY_UNAVAILABLE',
      `the root key file ${path} holds key ${signer.keyId.toString('hex')}, not ${Buffer.from(keyId).toString('hex')}: restore the right file from the backup`,
    );
  }
  return signer;
}

// --- the API ---------------------------------------------------------------------------------

/**
 * A new root key. file: `<path>/<label>.pem`, mode 0600, never overwriting. pkcs11: a key pair
 * generated in the token (CKA_TOKEN, CKA_SENSITIVE, not CKA_EXTRACTABLE), labelled
 * `<object>-<label>`, CKA_ID = key ID. A label in use is refused (AUTHORITY_EXISTS).
 */
export function createRootKey(spec: RootSignerSpec, label: string): RootSigner {
  if (spec.kind === 'file') return createFileRootKey(spec, label);
  return createPkcs11RootKey(locationOf(spec), label);
}

/**
 * The root key under that label, ready to sign; with `keyId`, it must be that key
 * (ROOT_KEY_UNAVAILABLE otherwise). A token key is checked to be Ed25519 and to sign for its
 * public half before it is handed out.
 */
export function openRootSigner(spec: RootSignerSpec, label: string, keyId?: Uint8Array): RootSigner {
  if (spec.kind === 'file') return openFileRootSigner(spec, label, keyId);
  return openPkcs11RootSigner(locationOf(spec), label, keyId);
}

/**
 * Deletes the key file, or destroys both halves of the key pair in the token (`root rotate
 * --step retire`), the private half first (see destroyPkcs11RootKey). Returns false when there
 * was nothing to remove (so a repeated step is a no-op).
 */
export function destroyRootKey(spec: RootSignerSpec, label: string, keyId?: Uint8Array): boolean {
  if (spec.kind === 'pkcs11') return destroyPkcs11RootKey(locationOf(spec), label, keyId);
  try {
    unlinkSync(fileOf(spec, label));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * The root keys the spec's place holds, by label and key ID: the `<label>.pem` files of the folder
 * (damaged ones left out), or the token's Ed25519 key pairs under the URI's `object` prefix.
 */
export function listRootKeys(spec: RootSignerSpec): { label: string; keyId: Buffer }[] {
  if (spec.kind === 'pkcs11') return listPkcs11RootKeys(locationOf(spec));
  let names: string[];
  try {
    names = readdirSync(spec.path).filter((name) => name.endsWith('.pem'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.flatMap((name) => {
    try {
      const pair = signingKeyPairFromPem(readFileSync(join(spec.path, name), 'utf8'));
      return [{ label: name.slice(0, -'.pem'.length), keyId: keyFingerprint(pair.publicKeyRaw) }];
    } catch {
      return [];
    }
  });
}

/**
 * Private halves a token holds without their public half (a retire that crashed between the two
 * in an earlier version): by label and CKA_ID (null when the token holds none). Files: none.
 */
export function listOrphanRootKeys(spec: RootSignerSpec): { label: string; keyId: Buffer | null }[] {
  return spec.kind === 'pkcs11' ? listPkcs11OrphanRootKeys(locationOf(spec)) : [];
}

/** The root key with this key ID, wherever its label: ROOT_KEY_UNAVAILABLE when the place holds none. */
export function openRootSignerByKeyId(spec: RootSignerSpec, keyId: Uint8Array): RootSigner {
  const wanted = Buffer.from(keyId);
  const found = listRootKeys(spec).find((k) => k.keyId.equals(wanted));
  if (!found) {
    throw new AuthorityError(
      'ROOT_KEY_UNAVAILABLE',
      `no root key ${wanted.toString('hex')} in ${describeSigner(spec)}: it was retired, or is held elsewhere (another token, another node's files); restore it or correct --signer`,
    );
  }
  return openRootSigner(spec, found.label, wanted);
}

/** One line for status output: where the root key is (never the PIN). */
export function describeSigner(spec: RootSignerSpec, label?: string): string {
  if (spec.kind === 'file') return `file ${label !== undefined ? fileOf(spec, label) : join(spec.path, '<label>.pem')}`;
  const loc = locationOf(spec);
  const token = [
    loc.token !== undefined ? `token "${loc.token}"` : null,
    loc.slotId !== undefined ? `slot ${loc.slotId}` : null,
    loc.serial !== undefined ? `serial ${loc.serial}` : null,
  ].filter((p) => p !== null);
  const object = label !== undefined ? pkcs11ObjectLabel(loc, label) : `${loc.object}-<label>`;
  const pin = loc.pinFile !== undefined ? `PIN from ${loc.pinFile}` : loc.pin !== undefined ? 'PIN given' : 'no PIN';
  return `PKCS#11 ${token.join(', ')}, object "${object}", module ${loc.modulePath}, ${pin}`;
}
