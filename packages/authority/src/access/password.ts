import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { AuthorityError } from '../errors.js';

/**
 * Passwords, stored as scrypt: `scrypt$<log2 N>$<r>$<p>$<salt>$<hash>` (salt 16 bytes, hash 32,
 * base64url). The parameters travel with the hash, so a cost raised later still checks the
 * old ones. The default cost is N = 2^15, r = 8, p = 1 (about 32 MiB and 50-100 ms a check).
 */

export const DEFAULT_PASSWORD_COST = 15;
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 1024;

const SALT_BYTES = 16;
const HASH_BYTES = 32;

function derive(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, HASH_BYTES, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/** USER_INVALID naming the rule (never the password). */
export function checkPasswordRules(password: unknown): asserts password is string {
  if (typeof password !== 'string') throw invalidPassword('the password must be a string');
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) {
    throw invalidPassword(`the password has ${length} characters: it needs at least ${PASSWORD_MIN_LENGTH}`);
  }
  if (length > PASSWORD_MAX_LENGTH) {
    throw invalidPassword(`the password has ${length} characters: at most ${PASSWORD_MAX_LENGTH} are taken`);
  }
}

function invalidPassword(message: string): AuthorityError {
  const err = new AuthorityError('USER_INVALID', message);
  err.field = 'password';
  return err;
}

export async function hashPassword(password: string, logN = DEFAULT_PASSWORD_COST): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, logN, 8, 1);
  return `scrypt$${logN}$8$1$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/** Whether `password` is the one `encoded` was made from (constant-time comparison); false for a damaged hash. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [logN, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![logN, r, p].every((n) => Number.isInteger(n) && n > 0) || logN > 22 || r > 32 || p > 16) return false;
  const salt = Buffer.from(parts[4] as string, 'base64url');
  const expected = Buffer.from(parts[5] as string, 'base64url');
  if (expected.length !== HASH_BYTES) return false;
  if ([...password].length > PASSWORD_MAX_LENGTH) return false;
  const actual = await derive(password, salt, logN, r, p);
  return timingSafeEqual(actual, expected);
}
