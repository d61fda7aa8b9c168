import type { Command } from 'commander';
import { CliError, printJson } from '../../output.js';
import { readSecretFile } from '../../options.js';
import type { Run } from '../../runtime.js';
import { type DataDirOptions, consoleStoreOptions, withConsole } from './options.js';

/** `volact console export` and `import`: the whole console to and from one file. */
export function registerConsoleTransfer(con: Command, run: Run): void {
  consoleStoreOptions(
    con
      .command('export')
      .description(
        'write the whole console (machines, status history, keys, confirmation IDs, MAK counters, log) to one JSON file; secrets only with --with-secrets',
      )
      .argument('[file]', 'the export file (written atomically, mode 0600)'),
  )
    .option('--out <file>', 'the export file (instead of the argument)')
    .option('--with-secrets', 'include the product keys and agent tokens, sealed under --passphrase-file')
    .option('--passphrase-file <file>', 'file holding the passphrase (at least 12 characters) sealing the secrets')
    .option('--json', 'print JSON')
    .action(
      run(
        async (o: DataDirOptions & { out?: string; withSecrets?: boolean; passphraseFile?: string }, file?: string) => {
          if ((o.out === undefined) === (file === undefined)) {
            throw new CliError('OPTION_INVALID', 'give the export file once: `console export --data-dir K FILE`');
          }
          const out = (o.out ?? file) as string;
          if (Boolean(o.withSecrets) !== (o.passphraseFile !== undefined)) {
            throw new CliError(
              'OPTION_INVALID',
              o.withSecrets
                ? '--with-secrets needs --passphrase-file: the secrets are sealed under that passphrase'
                : '--passphrase-file goes with --with-secrets (without it no secret is exported)',
            );
          }
          const passphrase =
            o.passphraseFile === undefined ? undefined : readSecretFile(o.passphraseFile, '--passphrase-file');
          const summary = await withConsole(o, (c) => c.exportTo(out, passphrase === undefined ? {} : { passphrase }));
          if (o.json) {
            printJson(summary);
            return;
          }
          const n = summary.counts;
          console.log(
            `exported to ${summary.path}: ${n.machines} machines, ${n.statusHistory} history rows, ${n.keys} keys, ${n.confirmationIds} confirmation IDs, ${n.operations} log entries`,
          );
          console.log(
            summary.secrets
              ? `secrets: ${n.keys - summary.secretsMissing.keys} keys and ${n.agentTokens} agent tokens, sealed under the passphrase`
              : 'secrets: none (keys by name, type and last five only; machines without their agent token)',
          );
          if (summary.secretsMissing.keys + summary.secretsMissing.agentTokens > 0) {
            console.log(
              `not exported (this console lacks them): ${summary.secretsMissing.keys} keys, ${summary.secretsMissing.agentTokens} agent tokens`,
            );
          }
        },
      ),
    );

  consoleStoreOptions(
    con
      .command('import')
      .description(
        'merge an export file into the console in one transaction (machines by address, keys by fingerprint, …); the same file twice changes nothing',
      )
      .argument('<file>', 'a file written by `volact console export`'),
  )
    .option('--passphrase-file <file>', 'the passphrase the file was exported with (when it holds secrets)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { passphraseFile?: string }, file: string) => {
        const passphrase =
          o.passphraseFile === undefined ? undefined : readSecretFile(o.passphraseFile, '--passphrase-file');
        const summary = await withConsole(o, (c) => c.importFrom(file, passphrase === undefined ? {} : { passphrase }));
        if (o.json) {
          printJson(summary);
          return;
        }
        const kinds = [
          ['machines', summary.machines],
          ['status history', summary.statusHistory],
          ['keys', summary.keys],
          ['confirmation IDs', summary.confirmationIds],
          ['log entries', summary.operations],
        ] as const;
        for (const [kind, n] of kinds) {
          console.log(`${kind}: ${n.added} added, ${n.updated} updated, ${n.unchanged} unchanged`);
        }
        const missing = summary.secretsMissing;
        if (missing.keys + missing.machines > 0) {
          console.log(
            `secret missing: ${missing.keys} keys (cannot be installed until \`volact console key add KEY\` adds each again) and ${missing.machines} machines (no agent token: import an export made --with-secrets)`,
          );
        }
      }),
    );
}
