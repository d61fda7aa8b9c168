import type { Command } from 'commander';
import { confirmInstallationIdFile } from '@volact/authority';
import {
  cidFileFor,
  encodeProxyFile,
  iidFileInstallationIds,
  parseIidFile,
  systemClock,
  MAX_PROXY_FILE_CHARS,
  type CidFile,
  type ConfirmationAnswer,
} from '@volact/core';
import { CliError } from '../output.js';
import type { Run } from '../runtime.js';
import { dataDirOption, dbOption, openAuthority, urlOption } from './authority-target.js';

/**
 * `volact authority confirm-file FILE --out CIDS`: step 2 of proxy activation for an isolated
 * network (docs/console.md "Isolated networks"). The installation-ID file's signature is checked
 * first (an edited file: PROXY_FILE_TAMPERED); each IID is then confirmed like a phone call —
 * through this machine's authority (--data-dir), or a remote one's public bulk route (--url).
 */
export function registerAuthorityConfirmFile(authority: Command, run: Run): void {
  authority
    .command('confirm-file')
    .description(
      "answer a console's installation-ID file (isolated network, step 2) with a confirmation file: signature checked, each IID confirmed",
    )
    .argument('<file>', 'the installation-ID file (volact-iid-file/1) written by `console proxy-activate --collect`')
    .requiredOption('--out <cids>', 'the confirmation file to write (0600), for `console proxy-activate --apply`')
    .addOption(dataDirOption())
    .addOption(dbOption())
    .addOption(urlOption().conflicts('dataDir'))
    .option(
      '--console-key-id <id>',
      "the collecting console's key ID (its --collect prints it): a file signed by any other key is refused before anything is confirmed",
    )
    .option('--json', 'print JSON')
    .action(
      run(
        async (
          o: { out: string; dataDir?: string; db?: string; url?: string; consoleKeyId?: string; json?: boolean },
          path?: string,
        ) => {
          if (path === undefined) throw new CliError('OPTION_INVALID', 'give the installation-ID file');
          if (o.dataDir === undefined && o.url === undefined) {
            throw new CliError(
              'OPTION_INVALID',
              'give --data-dir DIR (the authority on this machine) or --url URL (a remote authority)',
            );
          }
          if (o.url !== undefined && o.db !== undefined) {
            throw new CliError('OPTION_INVALID', '--db goes with --data-dir, not with --url');
          }
          // The console's file helpers (and the console) load for this command only.
          const { printConfirmation, readProxyFile, writePrivateFile } = await import('./console/activation.js');
          const text = readProxyFile(path);
          const now = systemClock.now();
          let cids: CidFile;
          if (o.url !== undefined) {
            const file = parseIidFile(text, o.consoleKeyId === undefined ? {} : { consoleKeyId: o.consoleKeyId });
            const { answers, name } = await confirmRemotely(o.url, iidFileInstallationIds(file));
            cids = cidFileFor(file, answers, name, new Date(now).toISOString());
          } else {
            cids = await confirmLocally(
              { dataDir: o.dataDir as string, ...(o.db ? { db: o.db } : {}) },
              text,
              now,
              o.consoleKeyId,
            );
          }
          writePrivateFile(o.out, encodeProxyFile(cids));
          printConfirmation(cids, o.out, o.json);
        },
      ),
    );
}

/** Through the authority's own confirmation code (as a phone call is confirmed), one IID after another. */
async function confirmLocally(
  target: { dataDir: string; db?: string },
  text: string,
  now: number,
  consoleKeyId: string | undefined,
): Promise<CidFile> {
  const a = openAuthority(target);
  try {
    return await confirmInstallationIdFile(
      text,
      (iid) => a.confirm(iid),
      'volact authority (data directory)',
      now,
      MAX_PROXY_FILE_CHARS,
      consoleKeyId,
    );
  } finally {
    await a.close();
  }
}

/** Through a remote authority's public bulk route (POST /v1/confirmations/bulk, 1 000 IIDs a call). */
async function confirmRemotely(url: string, iids: string[]): Promise<{ answers: ConfirmationAnswer[]; name: string }> {
  const { ConsoleError, authorityOrigin, bulkConfirm } = await import('@volact/console');
  const origin = authorityOrigin(url);
  const results = iids.length === 0 ? [] : await bulkConfirm({ url }, iids);
  const failed = results.filter((r) => !r.ok && r.callFailed);
  if (results.length > 0 && failed.length === results.length) {
    const first = failed[0];
    throw new ConsoleError(
      'AUTHORITY_UNREACHABLE',
      first && !first.ok ? first.error.message : `the authority ${origin} gave no answer`,
    );
  }
  return {
    answers: results.map((r) =>
      r.ok
        ? { installationId: r.installationId, ok: true as const, confirmationId: r.confirmationId }
        : { installationId: r.installationId, ok: false as const, code: r.error.code, message: r.error.message },
    ),
    name: origin,
  };
}
