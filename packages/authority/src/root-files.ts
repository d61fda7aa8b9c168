import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  fileSigner,
  generateSigningKeyPair,
  keyIdHex,
  privateKeyToPem,
  signingKeyPairFromPem,
  type Signer,
  type SigningKeyPair,
  writeWholeSync,
} from '@volact/core';
import { AuthorityError } from './errors.js';

/**
 * Roots kept as files in the data directory: `roots/<keyId>.pem` (0600, in a 0700 directory),
 * and the legacy `root-signing-key.pem` of authorities made before the key ring (its root is
 * the ring's first). A file is written under a temporary name, synced and renamed: it is
 * either whole or absent, never half written.
 */
export const ROOTS_DIR = 'roots';
export const LEGACY_ROOT_KEY_FILE = 'root-signing-key.pem';

export const rootKeyFileName = (keyIdHexText: string) => join(ROOTS_DIR, `${keyIdHexText}.pem`);

/** A root key file as the data directory holds it. */
export interface RootKeyFile {
  readonly keyId: string;
  /** Relative to the data directory. */
  readonly file: string;
  readonly pair: SigningKeyPair;
  readonly modifiedAt: number;
}

function damaged(path: string, err: unknown): AuthorityError {
  return new AuthorityError(
    'AUTHORITY_FILE_DAMAGED',
    `${path} is not a valid Ed25519 private key (truncated or damaged: ${(err as { code?: string }).code ?? (err as Error).message}); restore ${path} from the backup of the data directory (making a new one would orphan every product shipped with this authority's root public key)`,
  );
}

function readKeyFile(dataDir: string, file: string): RootKeyFile {
  const path = join(dataDir, file);
  let pair: SigningKeyPair;
  try {
    pair = signingKeyPairFromPem(readFileSync(path, 'utf8'));
  } catch (err) {
    throw damaged(path, err);
  }
  return { keyId: keyIdHex(pair.publicKeyRaw), file, pair, modifiedAt: statSync(path).mtimeMs };
}

/**
 * Every root key file of the data directory (a damaged one is refused by name: AUTHORITY_FILE_DAMAGED).
 * Temporary files of a write that did not finish (`.*.tmp`) are not keys and are skipped.
 */
export function readRootKeyFiles(dataDir: string, options: { copies?: boolean } = {}): RootKeyFile[] {
  const files: RootKeyFile[] = [];
  if (existsSync(join(dataDir, LEGACY_ROOT_KEY_FILE))) files.push(readKeyFile(dataDir, LEGACY_ROOT_KEY_FILE));
  const dir = join(dataDir, ROOTS_DIR);
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      if (!/^[0-9a-f]{16}\.pem$/.test(name)) continue;
      const file = readKeyFile(dataDir, join(ROOTS_DIR, name));
      if (`${file.keyId}.pem` !== name) {
        throw new AuthorityError(
          'AUTHORITY_FILE_DAMAGED',
          `${join(dir, name)} holds the key ${file.keyId}, not the one its name says: rename it to ${file.keyId}.pem or restore it from the backup`,
        );
      }
      // One file per key, the legacy one first; `copies`: every file (to delete them all).
      if (options.copies || !files.some((f) => f.keyId === file.keyId)) files.push(file);
    }
  }
  return files;
}

/** Tightens and lists what secureDataDir must keep private: the roots directory and its files. */
export function rootFilesToSecure(dataDir: string): { dirs: string[]; files: string[] } {
  const dir = join(dataDir, ROOTS_DIR);
  if (!existsSync(dir)) return { dirs: [], files: [] };
  return { dirs: [dir], files: readdirSync(dir).map((name) => join(dir, name)) };
}

/**
 * Writes a root's private key to roots/<keyId>.pem: a temporary file (0600), synced, renamed,
 * and the directory synced. Returns the file's name relative to the data directory.
 */
export function writeRootKeyFile(dataDir: string, pair: SigningKeyPair): string {
  const dir = join(dataDir, ROOTS_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const id = keyIdHex(pair.publicKeyRaw);
  const file = rootKeyFileName(id);
  const temporary = join(dir, `.${id}.pem.tmp`);
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeWholeSync(fd, privateKeyToPem(pair.privateKey)); // every byte (a full disk may write part of it)
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, join(dataDir, file));
  syncDirectory(dir);
  return file;
}

function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not every platform syncs a directory; the rename is still atomic.
  }
}

/** Deletes every file of the data directory that holds this root's private key. Returns the files deleted. */
export function destroyRootKeyFiles(dataDir: string, keyIdHexText: string): string[] {
  const deleted: string[] = [];
  for (const file of readRootKeyFiles(dataDir, { copies: true }).filter((f) => f.keyId === keyIdHexText)) {
    unlinkSync(join(dataDir, file.file));
    deleted.push(file.file);
  }
  if (deleted.length > 0) syncDirectory(join(dataDir, ROOTS_DIR));
  return deleted;
}

/** Where roots' private keys are: the data directory's files (a token: root-signer.ts). */
export interface RootKeys {
  /** `file`, or the token's spec (no PIN), as the ring records it. */
  readonly location: string;
  /** The signer of a root, or null when this node does not hold its private key. */
  signer(keyId: string): Signer | null;
  /** Where to find a root's private key, for a message (the file to copy, the token object). */
  describe(keyId: string): string;
  /** The root the ring starts from when the database has none (the data directory's, or the token's). */
  first(): Signer | null;
  /** The key pair of a root held as a file (for core functions that take one), or null. */
  pair(keyId: string): SigningKeyPair | null;
  /**
   * A new root's key, durable before it returns. A key made earlier and never recorded (a step
   * that crashed before its commit: not in `known`) is adopted instead of making another.
   */
  create(known: ReadonlySet<string>): { signer: Signer; where: string; adopted: boolean };
  /** Destroys a root's private key (file deleted, token object destroyed); returns what was destroyed. */
  destroy(keyId: string): string[];
  /** Ends token sessions (nothing for files). */
  close?(): void;
}

/** Roots as files of the data directory: roots/<keyId>.pem (and the legacy root-signing-key.pem). */
export class FileRootKeys implements RootKeys {
  readonly location = 'file';
  readonly #files = new Map<string, RootKeyFile>();

  constructor(
    private readonly dataDir: string,
    files: readonly RootKeyFile[],
  ) {
    for (const f of files) this.#files.set(f.keyId, f);
  }

  signer(keyId: string): Signer | null {
    const pair = this.pair(keyId);
    return pair ? fileSigner(pair) : null;
  }

  pair(keyId: string): SigningKeyPair | null {
    let file = this.#files.get(keyId);
    if (!file) {
      // Copied in while the authority runs (a node given the next root's file): read again.
      file = readRootKeyFiles(this.dataDir).find((f) => f.keyId === keyId);
      if (file) this.#files.set(keyId, file);
    }
    return file?.pair ?? null;
  }

  describe(keyId: string): string {
    return join(this.dataDir, this.#files.get(keyId)?.file ?? rootKeyFileName(keyId));
  }

  /** The first root when the ring is made: the legacy root-signing-key.pem, else the one root file. */
  first(): Signer | null {
    const files = [...this.#files.values()];
    const file = files.find((f) => f.file === LEGACY_ROOT_KEY_FILE) ?? (files.length === 1 ? files[0] : undefined);
    return file ? fileSigner(file.pair) : null;
  }

  create(known: ReadonlySet<string>): { signer: Signer; where: string; adopted: boolean } {
    const orphans = readRootKeyFiles(this.dataDir)
      .filter((f) => !known.has(f.keyId) && f.file !== LEGACY_ROOT_KEY_FILE)
      .sort((a, b) => b.modifiedAt - a.modifiedAt);
    const orphan = orphans[0];
    if (orphan) {
      this.#files.set(orphan.keyId, orphan);
      return { signer: fileSigner(orphan.pair), where: join(this.dataDir, orphan.file), adopted: true };
    }
    const pair = generateSigningKeyPair();
    const file = writeRootKeyFile(this.dataDir, pair);
    const keyId = keyIdHex(pair.publicKeyRaw);
    this.#files.set(keyId, { keyId, file, pair, modifiedAt: 0 });
    return { signer: fileSigner(pair), where: join(this.dataDir, file), adopted: false };
  }

  destroy(keyId: string): string[] {
    this.#files.delete(keyId);
    return destroyRootKeyFiles(this.dataDir, keyId).map((f) => join(this.dataDir, f));
  }
}
