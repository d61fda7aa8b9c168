import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  generateSigningKeyPair,
  keyFingerprint,
  privateKeyToPem,
  publicKeyRawFromPem,
  publicKeyToPem,
  signingKeyPairFromPem,
  type SigningKeyPair,
} from '@volact/core';
import { CliError } from '../output.js';

/**
 * The files of OEM and token-based activation: key pairs made by the party that keeps the
 * private key (a manufacturer, an organisation's CA), public keys handed to the publisher, and
 * the signed JSON files an IT pro carries.
 */

/** Reads a carried file (a certificate, marker, token, CRL); errors name the flag and file. */
export function readCarriedFile(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(
      'OPTION_INVALID',
      `${flag} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    );
  }
}

export function writeJsonFile(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** A new Ed25519 key pair in DIR: PREFIX-signing-key.pem (0600, never overwritten) and PREFIX-public-key.pem. */
export function writeKeyPair(
  dir: string,
  prefix: string,
): { privateKeyFile: string; publicKeyFile: string; keyId: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pair = generateSigningKeyPair();
  const privateKeyFile = join(dir, `${prefix}-signing-key.pem`);
  const publicKeyFile = join(dir, `${prefix}-public-key.pem`);
  try {
    writeFileSync(privateKeyFile, privateKeyToPem(pair.privateKey), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CliError('OPTION_INVALID', `${privateKeyFile} exists: a signing key is never overwritten`);
    }
    throw err;
  }
  writeFileSync(publicKeyFile, publicKeyToPem(pair.publicKeyRaw));
  return { privateKeyFile, publicKeyFile, keyId: keyFingerprint(pair.publicKeyRaw).toString('hex') };
}

export function readSigningKey(file: string, flag: string): SigningKeyPair {
  const pem = readCarriedFile(file, flag);
  try {
    return signingKeyPairFromPem(pem);
  } catch (err) {
    throw new CliError(
      'OPTION_INVALID',
      `${flag} ${file} is not an Ed25519 private key in PEM (${(err as Error).message})`,
    );
  }
}

export function readPublicKeyFile(file: string, flag: string): Buffer {
  return publicKeyRawFromPem(readCarriedFile(file, flag));
}

/** Writes a signed file to --out and says what it is: one line, or JSON with `out` and the summary fields. */
export function writeOut(
  file: string,
  value: unknown,
  json: boolean | undefined,
  summary: Record<string, unknown>,
  text: string,
): void {
  writeJsonFile(file, value);
  if (json) process.stdout.write(`${JSON.stringify({ out: file, ...summary })}\n`);
  else console.log(text);
}
