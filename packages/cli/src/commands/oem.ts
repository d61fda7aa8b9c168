import type { Command } from 'commander';
import { parseOemCertificate, readHardwareFingerprint, signOemMarker } from '@volact/core';
import { CliError, printJson } from '../output.js';
import { parseHardwareId } from '../options.js';
import type { Run } from '../runtime.js';
import { readCarriedFile, readSigningKey, writeKeyPair, writeOut } from './signing-files.js';

/**
 * `volact oem …`: the manufacturer's side of OEM activation. It makes its own key pair (the
 * public key goes to the publisher, who certifies it with `authority oem-certificate issue`)
 * and, at the factory, signs one marker per machine.
 */
export function registerOem(program: Command, run: Run): void {
  const oem = program.command('oem').description("a manufacturer's OEM activation: key pair and factory markers");

  oem
    .command('keygen')
    .description(
      'make the manufacturer key pair: oem-signing-key.pem (keep it) and oem-public-key.pem (for the publisher)',
    )
    .requiredOption('--out <dir>', 'directory to write the two files to')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { out: string; json?: boolean }) => {
        const files = writeKeyPair(o.out, 'oem');
        if (o.json) printJson(files);
        else
          console.log(
            `key ${files.keyId}: keep ${files.privateKeyFile}; send ${files.publicKeyFile} to the publisher (authority oem-certificate issue)`,
          );
      }),
    );

  oem
    .command('mark')
    .description("the factory: sign an OEM marker for one machine's hardware (no network)")
    .requiredOption('--oem-key <file>', 'oem-signing-key.pem')
    .requiredOption('--certificate <file>', 'the OEM certificate the publisher issued for that key')
    .requiredOption('--group <name>', 'product group preinstalled on the machine (one the certificate covers)')
    .option('--hardware-id <id>', "the machine's hardware id (`volact client hardware-id`); default: this machine's")
    .option('--machine <label>', 'serial number or label of the machine', 'unlabelled')
    .requiredOption('--out <file>', 'marker.json to write')
    .option('--json', 'print JSON')
    .action(
      run(
        async (o: {
          oemKey: string;
          certificate: string;
          group: string;
          hardwareId?: string;
          machine: string;
          out: string;
          json?: boolean;
        }) => {
          const certificate = parseOemCertificate(readCarriedFile(o.certificate, '--certificate'));
          const key = readSigningKey(o.oemKey, '--oem-key');
          if (key.publicKeyRaw.toString('base64') !== certificate.publicKey) {
            throw new CliError(
              'OPTION_INVALID',
              `--oem-key ${o.oemKey} is not the key --certificate ${o.certificate} certifies: markers would not verify`,
            );
          }
          const group = certificate.groups.find((g) => g.name === o.group || g.id === o.group.toLowerCase());
          if (!group) {
            throw new CliError(
              'OPTION_INVALID',
              `the certificate covers ${certificate.groups.map((g) => g.name).join(', ')}, not ${o.group}`,
            );
          }
          const now = Date.now();
          if (now < Date.parse(certificate.notBefore) || now > Date.parse(certificate.notAfter)) {
            throw new CliError(
              'OPTION_INVALID',
              `the OEM certificate is valid from ${certificate.notBefore} to ${certificate.notAfter}: ask the publisher for a new one`,
            );
          }
          if (!/^[\x20-\x7e]{1,64}$/.test(o.machine)) {
            throw new CliError('OPTION_INVALID', '--machine must be 1-64 printable ASCII characters');
          }
          const hardwareId = o.hardwareId === undefined ? readHardwareFingerprint() : parseHardwareId(o.hardwareId);
          const marker = signOemMarker(
            { group, hardwareId, machine: o.machine, issuedAt: now },
            key.privateKey,
            certificate,
          );
          writeOut(
            o.out,
            marker,
            o.json,
            { group: group.name, machine: marker.machine, hardwareRef: marker.hardwareRef },
            `OEM marker for ${marker.machine} (${group.name}) written to ${o.out}`,
          );
        },
      ),
    );
}
