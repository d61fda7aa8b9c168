import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { generateSigningKeyPair, type Clock } from '@volact/core';
import { AuthorityError, invalidField } from './errors.js';
import {
  LEGACY_ROOT_KEY_FILE,
  ROOTS_DIR,
  readRootKeyFiles,
  rootFilesToSecure,
  writeRootKeyFile,
  type RootKeyFile,
} from './root-files.js';

/**
 * The data directory: the roots' keys (roots/<keyId>.pem, or a PKCS#11 token named in
 * signer.json), the key-hash secret (every node of one authority holds the same copy), its
 * name, and the SQLite database when there is no PostgreSQL. Which root is current is the key
 * ring's (in the database, shared by the nodes): see key-ring.ts.
 */
export const ROOT_KEY_FILE = LEGACY_ROOT_KEY_FILE;
export const KEY_HASH_SECRET_FILE = 'key-hash.secret';
export const DB_FILE = 'authority.db';
export const META_FILE = 'authority.json';
/** The root signer when it is not a file: `{"format":"volact-signer/1","spec":"pkcs11:…"}` (never a PIN). */
export const SIGNER_FILE = 'signer.json';

/** What an authority is made of, besides its records. */
export interface AuthoritySecrets {
  readonly dataDir: string;
  /** The root key files the data directory holds (read and checked at open). */
  readonly rootFiles: readonly RootKeyFile[];
  /** The PKCS#11 spec of signer.json (no PIN), or null: roots are files. */
  readonly signerSpec: string | null;
  readonly keyHashSecret: Buffer;
  readonly name: string;
}

/**
 * The data directory holds the root key and the key-hash secret: only its owner may read it.
 * A directory or file others can read (made by hand, restored from a backup, an older volact)
 * is tightened to 0700 / 0600; when that is not allowed (another owner), the authority refuses
 * to start and names the chmod to run.
 */
export function secureDataDir(dataDir: string): void {
  const tighten = (path: string, mode: number) => {
    let current: number;
    try {
      current = statSync(path).mode & 0o777;
    } catch {
      return; // absent (a PostgreSQL authority has no authority.db)
    }
    if ((current & 0o077) === 0) return;
    try {
      chmodSync(path, mode);
    } catch (err) {
      throw new AuthorityError(
        'DATA_DIR_INSECURE',
        `${path} has mode ${current.toString(8).padStart(4, '0')}: others can read the authority's secrets and it cannot be changed (${(err as NodeJS.ErrnoException).code ?? 'error'}); run \`chmod 700 ${dataDir} && chmod 600 ${dataDir}/*\` as its owner`,
      );
    }
  };
  tighten(dataDir, 0o700);
  const roots = rootFilesToSecure(dataDir);
  for (const dir of roots.dirs) tighten(dir, 0o700);
  for (const file of [
    ROOT_KEY_FILE,
    KEY_HASH_SECRET_FILE,
    META_FILE,
    SIGNER_FILE,
    DB_FILE,
    `${DB_FILE}-wal`,
    `${DB_FILE}-shm`,
  ]) {
    tighten(join(dataDir, file), 0o600);
  }
  for (const file of roots.files) tighten(file, 0o600);
}

/** The fix for a damaged file of the data directory: it cannot be made again without losing what it holds. */
const restoreHint = (path: string, loses: string) =>
  `restore ${path} from the backup of the data directory (making a new one ${loses})`;

/** Whether the data directory holds an authority (any of its files). */
function holdsAuthority(dataDir: string): boolean {
  return [ROOT_KEY_FILE, ROOTS_DIR, META_FILE, KEY_HASH_SECRET_FILE, SIGNER_FILE].some((f) =>
    existsSync(join(dataDir, f)),
  );
}

/**
 * Creates the first root (roots/<keyId>.pem; with a `signer`, in its token instead) and the
 * key-hash secret. Refuses to overwrite an authority. The key ring records the root as current
 * when the authority first opens its database (key-ring.ts).
 */
export function createDataDir(
  dataDir: string,
  name: string,
  clock: Clock,
  signer?: { spec: string; createRoot: () => void },
): AuthoritySecrets {
  if (holdsAuthority(dataDir)) {
    throw new AuthorityError('AUTHORITY_EXISTS', `${dataDir} already holds an authority (its root key would be lost)`);
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  secureDataDir(dataDir); // mkdirSync leaves an existing directory's mode as it was
  const keyHashSecret = randomBytes(32);
  if (signer) {
    signer.createRoot();
    writeFileSync(
      join(dataDir, SIGNER_FILE),
      JSON.stringify({ format: 'volact-signer/1', spec: signer.spec }, null, 2),
      {
        mode: 0o600,
        flag: 'wx',
      },
    );
  } else {
    writeRootKeyFile(dataDir, generateSigningKeyPair());
  }
  writeFileSync(join(dataDir, KEY_HASH_SECRET_FILE), keyHashSecret.toString('base64'), { mode: 0o600, flag: 'wx' });
  writeFileSync(
    join(dataDir, META_FILE),
    JSON.stringify({ format: 'volact-authority/1', name, createdAt: new Date(clock.now()).toISOString() }, null, 2),
  );
  return {
    dataDir,
    rootFiles: readRootKeyFiles(dataDir),
    signerSpec: signer?.spec ?? null,
    keyHashSecret,
    name,
  };
}

/** Reads an authority's secrets; a missing or damaged file is named with its fix. */
export function readDataDir(dataDir: string): AuthoritySecrets {
  if (!holdsAuthority(dataDir)) {
    throw invalidField(
      'dataDir',
      `no authority in ${dataDir}: create one there first (\`volact authority init\`) or name the directory that holds it`,
      'AUTHORITY_NOT_INITIALISED',
    );
  }
  const read = (file: string): string => {
    try {
      return readFileSync(join(dataDir, file), 'utf8');
    } catch (err) {
      throw new AuthorityError(
        'AUTHORITY_NOT_INITIALISED',
        `${join(dataDir, file)} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}): restore the data directory from its backup`,
      );
    }
  };
  secureDataDir(dataDir);
  const rootFiles = readRootKeyFiles(dataDir);
  const signerSpec = readSignerFile(dataDir);
  const secretPath = join(dataDir, KEY_HASH_SECRET_FILE);
  const secretText = read(KEY_HASH_SECRET_FILE).trim();
  const keyHashSecret = Buffer.from(secretText, 'base64');
  // Any text decodes as base64: a truncated secret would silently hash every key differently.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(secretText) || keyHashSecret.length !== 32) {
    throw new AuthorityError(
      'AUTHORITY_FILE_DAMAGED',
      `${secretPath} is truncated or damaged (${keyHashSecret.length} bytes of base64, expected 32); ${restoreHint(secretPath, 'would make every minted key unknown')}`,
    );
  }
  let meta: { name?: string };
  try {
    meta = JSON.parse(read(META_FILE)) as { name?: string };
  } catch (err) {
    if (err instanceof AuthorityError) throw err;
    throw new AuthorityError(
      'AUTHORITY_FILE_DAMAGED',
      `${join(dataDir, META_FILE)} is not valid JSON: restore it from the backup, or write {"format":"volact-authority/1","name":"…"} into it`,
    );
  }
  return { dataDir, rootFiles, signerSpec, keyHashSecret, name: meta.name ?? 'volact authority' };
}

/** signer.json's spec, or null when there is none (the roots are files). */
function readSignerFile(dataDir: string): string | null {
  const path = join(dataDir, SIGNER_FILE);
  if (!existsSync(path)) return null;
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { format?: unknown; spec?: unknown };
    if (parsed.format === 'volact-signer/1' && typeof parsed.spec === 'string' && parsed.spec.length > 0)
      return parsed.spec;
  } catch {
    // refused below
  }
  throw new AuthorityError(
    'AUTHORITY_FILE_DAMAGED',
    `${path} is damaged: restore it from the backup, or write {"format":"volact-signer/1","spec":"pkcs11:…"} (the spec given to \`volact authority init --signer\`) into it`,
  );
}
