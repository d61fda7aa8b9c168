import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  generateSigningKeyPair,
  privateKeyToPem,
  signingKeyPairFromPem,
  type Clock,
  type SigningKeyPair,
} from '@volact/core';
import { AuthorityError, invalidField } from './errors.js';

/**
 * The data directory: the root key and the key-hash secret (every node of one authority holds
 * the same copy), its name, and the SQLite database when there is no PostgreSQL.
 */
export const ROOT_KEY_FILE = 'root-signing-key.pem';
export const KEY_HASH_SECRET_FILE = 'key-hash.secret';
export const DB_FILE = 'authority.db';
export const META_FILE = 'authority.json';

/** What an authority is made of, besides its records. */
export interface AuthoritySecrets {
  readonly root: SigningKeyPair;
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
  for (const file of [ROOT_KEY_FILE, KEY_HASH_SECRET_FILE, META_FILE, DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) {
    tighten(join(dataDir, file), 0o600);
  }
}

/** The fix for a damaged file of the data directory: it cannot be made again without losing what it holds. */
const restoreHint = (path: string, loses: string) =>
  `restore ${path} from the backup of the data directory (making a new one ${loses})`;

/** Creates the root signing key and the key-hash secret. Refuses to overwrite an authority. */
export function createDataDir(dataDir: string, name: string, clock: Clock): AuthoritySecrets {
  if (existsSync(join(dataDir, ROOT_KEY_FILE))) {
    throw new AuthorityError('AUTHORITY_EXISTS', `${dataDir} already holds an authority (its root key would be lost)`);
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  secureDataDir(dataDir); // mkdirSync leaves an existing directory's mode as it was
  const root = generateSigningKeyPair();
  const keyHashSecret = randomBytes(32);
  writeFileSync(join(dataDir, ROOT_KEY_FILE), privateKeyToPem(root.privateKey), { mode: 0o600, flag: 'wx' });
  writeFileSync(join(dataDir, KEY_HASH_SECRET_FILE), keyHashSecret.toString('base64'), { mode: 0o600, flag: 'wx' });
  writeFileSync(
    join(dataDir, META_FILE),
    JSON.stringify({ format: 'volact-authority/1', name, createdAt: new Date(clock.now()).toISOString() }, null, 2),
  );
  return { root, keyHashSecret, name };
}

/** Reads an authority's secrets; a missing or damaged file is named with its fix. */
export function readDataDir(dataDir: string): AuthoritySecrets {
  const keyPath = join(dataDir, ROOT_KEY_FILE);
  if (!existsSync(keyPath)) {
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
  let root: SigningKeyPair;
  try {
    root = signingKeyPairFromPem(read(ROOT_KEY_FILE));
  } catch (err) {
    if (err instanceof AuthorityError) throw err;
    throw new AuthorityError(
      'AUTHORITY_FILE_DAMAGED',
      `${keyPath} is not a valid Ed25519 private key (truncated or damaged: ${(err as { code?: string }).code ?? (err as Error).message}); ${restoreHint(keyPath, "would orphan every product shipped with this authority's root public key")}`,
    );
  }
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
  return { root, keyHashSecret, name: meta.name ?? 'volact authority' };
}
