import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aeadOpen, aeadSeal } from '@volact/core';
import { ConsoleError } from './errors.js';

/** The console's secret: 32 random bytes, base64, 0600, made by `console init`. */
export const KEY_FILE = 'console.key';

const PREFIX = 'v1:';

/**
 * The sealed value of a key or agent token imported from an export without secrets: the row
 * exists (reports see it) but the secret does not; unseal refuses it with SECRET_MISSING.
 */
export const MISSING_SECRET = 'missing:';

/**
 * Seals the secrets the console database holds (product keys, agent tokens) with AES-256-GCM
 * under a key derived from console.key; the row's purpose is bound as additional data, so a
 * sealed value moved to another row does not open. Lookups use a keyed fingerprint (HMAC), so
 * the database never needs a secret in clear to find a duplicate.
 */
export class SecretBox {
  readonly #sealKey: Buffer;
  readonly #fingerprintKey: Buffer;
  readonly #proxyFileSeed: Buffer;

  constructor(master: Uint8Array) {
    if (master.length !== 32) throw new RangeError('the console key must be 32 bytes');
    const derive = (info: string) => Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), info, 32));
    this.#sealKey = derive('volact-console/seal/v1');
    this.#fingerprintKey = derive('volact-console/fingerprint/v1');
    this.#proxyFileSeed = derive('volact-console/proxy-file-signing/v1');
  }

  /**
   * The Ed25519 seed that signs installation-ID files (isolated networks): derived from
   * console.key under its own label, so every console sharing the key file signs alike.
   */
  proxyFileSeed(): Buffer {
    return Buffer.from(this.#proxyFileSeed);
  }

  seal(plain: string, purpose: string): string {
    return PREFIX + aeadSeal(this.#sealKey, plain, purpose).toString('base64');
  }

  /** Throws SECRET_UNREADABLE (naming `what`, never the value) when the seal does not open. */
  unseal(sealed: string, purpose: string, what: string): string {
    if (sealed === MISSING_SECRET) {
      throw new ConsoleError(
        'SECRET_MISSING',
        `${what} is not in this console (imported from an export without secrets): add the key again (\`volact console key add\`), or import an export made --with-secrets`,
      );
    }
    const opened = sealed.startsWith(PREFIX)
      ? aeadOpen(this.#sealKey, Buffer.from(sealed.slice(PREFIX.length), 'base64'), purpose)
      : null;
    if (opened) return opened.toString('utf8');
    throw new ConsoleError(
      'SECRET_UNREADABLE',
      `${what} does not decrypt under ${KEY_FILE}: the key file was replaced or the database row altered; restore both from the same backup, or add it again`,
    );
  }

  /** A keyed fingerprint (hex) of a secret, to find duplicates without keeping it in clear. */
  fingerprint(value: string, purpose: string): string {
    return createHmac('sha256', this.#fingerprintKey).update(`${purpose}\0${value}`).digest('hex');
  }
}

/** Creates console.key (0600, fails if present) and returns its box. */
export function createKeyFile(dataDir: string): SecretBox {
  const master = randomBytes(32);
  writeFileSync(join(dataDir, KEY_FILE), `${master.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  return new SecretBox(master);
}

export function readKeyFile(dataDir: string): SecretBox {
  const path = join(dataDir, KEY_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConsoleError(
        'CONSOLE_NOT_INITIALISED',
        `no console in ${dataDir}: run \`volact console init --data-dir ${dataDir}\` first`,
      );
    }
    throw new ConsoleError('KEY_FILE_INVALID', `${path} cannot be read (${code ?? 'error'}); check its owner and mode`);
  }
  const master = Buffer.from(text, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || master.length !== 32) {
    throw new ConsoleError(
      'KEY_FILE_INVALID',
      `${path} is not 32 bytes of base64: restore it from the backup of the data directory (the stored keys and tokens need it)`,
    );
  }
  return new SecretBox(master);
}

/** Whether the key file can be read by others than its owner (reported by `console init`/status). */
export function keyFileIsPrivate(dataDir: string): boolean {
  return (statSync(join(dataDir, KEY_FILE)).mode & 0o077) === 0;
}
