import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ACT_TYPES, Licence, type ActType, type LicenceStatus } from '@volact/client';
import { CliError, printJson } from '../output.js';
import type { Run } from '../runtime.js';
import { readCarriedFile } from './signing-files.js';
import { atStart } from './client-machine.js';

/**
 * `volact client …` for the carried activations: an OEM marker made at the factory, a token of
 * the organisation's CA and its CRL, and the activation type. None of these touches the network.
 */
export function registerClientOffline(client: Command, run: Run): void {
  const done = (s: LicenceStatus, json: boolean | undefined, text: string) => {
    if (json) printJson(s);
    else console.log(text);
  };

  client
    .command('hardware-id')
    .description(
      "print this machine's hardware id (read now, or --hardware-id): what an OEM marker or a token is made for",
    )
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }) => {
        const hardwareId = Licence.open({ ...atStart(o), stateDir: o.stateDir }).hardwareId;
        if (o.json) printJson({ hardwareId });
        else console.log(hardwareId);
      }),
    );

  client
    .command('install-oem-marker')
    .description('install the OEM marker made for this machine at the factory: licensed for good, no network')
    .argument('<marker>', 'marker.json')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }, file: string) => {
        const s = Licence.open({ ...atStart(o), stateDir: o.stateDir }).installOemMarker(
          readCarriedFile(file, 'marker'),
        );
        done(s, o.json, `licensed (oem: ${s.oem?.machine} by ${s.oem?.manufacturer}, permanent)`);
      }),
    );

  client
    .command('install-token')
    .description("install an activation token of the organisation's CA (and its CRL): licensed until the token ends")
    .argument('<token>', 'token.json')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--crl <file>', "the CA's revocation list, installed with it")
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; crl?: string; json?: boolean }, file: string) => {
        const licence = Licence.open({ ...atStart(o), stateDir: o.stateDir });
        const s = licence.installToken(
          readCarriedFile(file, 'token'),
          o.crl === undefined ? undefined : readCarriedFile(o.crl, '--crl'),
        );
        done(s, o.json, `licensed until ${s.expiresAt} (token ${s.token?.serial} of ${s.token?.organisation})`);
      }),
    );

  client
    .command('install-crl')
    .description("install the token CA's revocation list (a newer one replaces it; an older one is refused)")
    .argument('<crl>', 'crl.json')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }, file: string) => {
        const s = Licence.open({ ...atStart(o), stateDir: o.stateDir }).installCrl(readCarriedFile(file, 'crl'));
        done(
          s,
          o.json,
          `CRL of ${s.crl?.issuedAt} installed (${s.crl?.revoked} serial(s)); state ${s.state}${s.token?.code ? ` (${s.token.code})` : ''}`,
        );
      }),
    );

  client
    .command('install-trust')
    .description(
      "learn the authority's trust bundle (the JSON of its GET /v1/trust): transition records to new roots, online keys' delegations, its revocation list",
    )
    .argument('<file>', 'trust.json')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }, file: string) => {
        let json: unknown;
        try {
          json = JSON.parse(readCarriedFile(file, 'trust file'));
        } catch (err) {
          if (err instanceof CliError) throw err;
          throw new CliError('OPTION_INVALID', `trust file ${file} is not JSON`);
        }
        const result = Licence.open({ ...atStart(o), stateDir: o.stateDir }).installTrust(json);
        if (o.json) {
          printJson(result);
          return;
        }
        const list =
          result.revocationListKept === 'installed'
            ? `revocation list version ${result.revocationListVersion} installed`
            : result.revocationListKept === 'older'
              ? `its revocation list is older than the one held (version ${result.revocationListVersion}): kept the held one`
              : `revocation list: ${result.revocationListVersion === null ? 'none held' : `version ${result.revocationListVersion} held`}`;
        console.log(
          `learned ${result.learned.transitions} transition record(s), ${result.learned.delegations} delegation(s); ${list}; roots: ${result.status.trust.roots.map((r) => r.keyId).join(', ')}`,
        );
      }),
    );

  client
    .command('install-revocations')
    .description(
      "install the publisher's revocation list (from `volact authority revocations --out`): revoked KMS hosts, OEM manufacturers and token CAs are refused; an older list than the one held is refused",
    )
    .argument('<file>', 'the revocation list (binary, or its base64)')
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }, file: string) => {
        let bytes: Buffer;
        try {
          bytes = readFileSync(file);
        } catch (err) {
          throw new CliError(
            'OPTION_INVALID',
            `revocation list ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
          );
        }
        // A list starts with its version byte (1); base64 text of one is accepted too.
        if (bytes[0] !== 1) bytes = Buffer.from(bytes.toString('latin1').trim(), 'base64');
        const s = Licence.open({ ...atStart(o), stateDir: o.stateDir }).installRevocations(bytes);
        done(s, o.json, `revocation list version ${s.trust.revocationListVersion} installed; state ${s.state}`);
      }),
    );

  client
    .command('set-act-type')
    .description('which methods activation may use: any (default), directory, kms or token')
    .argument('<type>', ACT_TYPES.join('|'))
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { stateDir: string; json?: boolean }, type: string) => {
        if (!(ACT_TYPES as readonly string[]).includes(type)) {
          throw new CliError('OPTION_INVALID', `expected one of ${ACT_TYPES.join(', ')}, got "${type.slice(0, 40)}"`);
        }
        const s = Licence.open({ ...atStart(o), stateDir: o.stateDir }).setActType(type as ActType);
        if (o.json) printJson({ actType: s.actType });
        else console.log(`activation type ${s.actType}`);
      }),
    );
}
