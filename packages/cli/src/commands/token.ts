import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import {
  DAY,
  parseTokenCaCertificate,
  parseTokenCrl,
  randomGuid,
  signActivationToken,
  signTokenCrl,
  isGuid,
  type TokenCaCertificate,
} from '@volact/core';
import { CliError, printJson } from '../output.js';
import { parseHardwareId, parseIntOption } from '../options.js';
import type { Run } from '../runtime.js';
import { readCarriedFile, readSigningKey, writeKeyPair, writeOut } from './signing-files.js';

/**
 * `volact token …`: the organisation's issuing CA for token-based activation. It makes its own
 * key pair (the publisher certifies the public key for a group: `authority token-ca issue`),
 * issues one token per machine and revokes them with CRLs. No network: the files are carried.
 */
function readCa(o: { caKey: string; caCert: string }): {
  key: ReturnType<typeof readSigningKey>;
  certificate: TokenCaCertificate;
} {
  const certificate = parseTokenCaCertificate(readCarriedFile(o.caCert, '--ca-cert'));
  const key = readSigningKey(o.caKey, '--ca-key');
  if (key.publicKeyRaw.toString('base64') !== certificate.publicKey) {
    throw new CliError('OPTION_INVALID', `--ca-key ${o.caKey} is not the key --ca-cert ${o.caCert} certifies`);
  }
  return { key, certificate };
}

export function registerToken(program: Command, run: Run): void {
  const token = program
    .command('token')
    .description("an organisation's issuing CA for token-based activation: key pair, tokens, CRLs");

  token
    .command('ca-keygen')
    .description('make the CA key pair: ca-signing-key.pem (keep it) and ca-public-key.pem (for the publisher)')
    .requiredOption('--out <dir>', 'directory to write the two files to')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { out: string; json?: boolean }) => {
        const files = writeKeyPair(o.out, 'ca');
        if (o.json) printJson(files);
        else
          console.log(
            `CA key ${files.keyId}: keep ${files.privateKeyFile}; send ${files.publicKeyFile} to the publisher (authority token-ca issue)`,
          );
      }),
    );

  token
    .command('issue')
    .description("issue an activation token for one machine's hardware, for the CA's product group")
    .requiredOption('--ca-key <file>', 'ca-signing-key.pem')
    .requiredOption('--ca-cert <file>', 'the CA certificate the publisher issued for that key')
    .requiredOption('--hardware-id <id>', "the machine's hardware id (`volact client hardware-id` on it)")
    .option('--days <n>', 'validity in days (within the CA certificate)', '365')
    .option(
      '--require-crl',
      "the token licenses only while a CRL of this CA is installed (signed in the token): deleting the CRL from a machine's store then un-revokes nothing",
    )
    .requiredOption('--out <file>', 'token.json to write')
    .option('--json', 'print JSON')
    .action(
      run(
        async (o: {
          caKey: string;
          caCert: string;
          hardwareId: string;
          days: string;
          requireCrl?: boolean;
          out: string;
          json?: boolean;
        }) => {
          const { key, certificate } = readCa(o);
          const days = parseIntOption(o.days, '--days', 1, 3653);
          const now = Date.now();
          const caEnd = Date.parse(certificate.notAfter);
          if (now >= caEnd) {
            throw new CliError(
              'OPTION_INVALID',
              `the CA certificate expired on ${certificate.notAfter}: ask the publisher for a new one`,
            );
          }
          if (now + days * DAY > caEnd) {
            throw new CliError(
              'OPTION_INVALID',
              `--days ${days} runs past the CA certificate's end (${certificate.notAfter}): at most ${Math.floor((caEnd - now) / DAY)}`,
            );
          }
          const t = signActivationToken(
            {
              serial: randomGuid(),
              hardwareId: parseHardwareId(o.hardwareId),
              notBefore: now,
              notAfter: now + days * DAY,
              ...(o.requireCrl ? { crlRequired: true } : {}),
            },
            key.privateKey,
            certificate,
          );
          writeOut(
            o.out,
            t,
            o.json,
            { serial: t.serial, group: t.group.name, notAfter: t.notAfter, crlRequired: t.crlRequired === true },
            `token ${t.serial} (${t.group.name}, until ${t.notAfter}${t.crlRequired ? ', requires a CRL' : ''}) written to ${o.out}`,
          );
        },
      ),
    );

  token
    .command('revoke')
    .description('write a CRL: the serials of --crl (the last one), plus these')
    .requiredOption('--ca-key <file>', 'ca-signing-key.pem')
    .requiredOption('--ca-cert <file>', 'the CA certificate')
    .option('--serial <serials...>', 'token serials to revoke')
    .option('--crl <file>', 'the CA’s last CRL, whose serials stay revoked')
    .option('--next-update-days <n>', 'when the next CRL is due, in days', '30')
    .requiredOption('--out <file>', 'crl.json to write (may be --crl)')
    .option('--json', 'print JSON')
    .action(
      run(
        async (o: {
          caKey: string;
          caCert: string;
          serial?: string[];
          crl?: string;
          nextUpdateDays: string;
          out: string;
          json?: boolean;
        }) => {
          const { key, certificate } = readCa(o);
          const serials = (o.serial ?? []).flatMap((s) => s.split(',')).filter(Boolean);
          const bad = serials.find((s) => !isGuid(s));
          if (bad !== undefined)
            throw new CliError('OPTION_INVALID', `--serial "${bad.slice(0, 40)}" is not a token serial (a GUID)`);
          let previous: string[] = [];
          // --crl F --out F with no F yet: the CA's first list.
          if (o.crl !== undefined && (existsSync(o.crl) || o.crl !== o.out)) {
            const last = parseTokenCrl(readCarriedFile(o.crl, '--crl'));
            if (last.caCertificate.publicKey !== certificate.publicKey) {
              throw new CliError('OPTION_INVALID', `--crl ${o.crl} is another CA's list`);
            }
            previous = last.revoked;
          }
          const days = parseIntOption(o.nextUpdateDays, '--next-update-days', 1, 3653);
          const now = Date.now();
          const crl = signTokenCrl(
            { issuedAt: now, nextUpdate: now + days * DAY, revoked: [...previous, ...serials] },
            key.privateKey,
            certificate,
          );
          writeOut(
            o.out,
            crl,
            o.json,
            { revoked: crl.revoked.length, issuedAt: crl.issuedAt, nextUpdate: crl.nextUpdate },
            `CRL of ${crl.revoked.length} serial(s), next update ${crl.nextUpdate}, written to ${o.out}`,
          );
        },
      ),
    );
}
