import { statSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CoreError, MAX_PROXY_FILE_CHARS, parseCidFile, writeFileAtomic, type CidFile } from '@volact/core';
import { printable } from '@volact/console';
import { CliError, printJson } from '../../output.js';
import type { Run } from '../../runtime.js';
import {
  authorityConnection,
  consoleStoreOptions,
  machinesCommand,
  machineSelection,
  onMachines,
  printResults,
  progress,
  proxyOptions,
  selectionOptions,
  withConsole,
  type DataDirOptions,
  type SelectionOptions,
} from './options.js';

/** `volact console activate`, `set-kms-host`, `set-kms-host-caching`, `proxy-activate`, `reactivate`: activating machines. */
export function registerConsoleActivation(con: Command, run: Run): void {
  machinesCommand(con, 'activate', 'have machines activate themselves (KMS host, directory, or their MAK online)')
    .option('--authority <url>', "for MAK machines: the authority they call (else their product config's)")
    .action(
      onMachines(run, (c, selection, o: { authority?: string }) =>
        c.activate(selection, o.authority === undefined ? {} : { authority: o.authority }, progress),
      ),
    );

  consoleStoreOptions(
    selectionOptions(
      con
        .command('set-kms-host')
        .description(
          "set the machines' KMS host (they use it at their next activation), or --clear it for DNS discovery",
        )
        .argument('[args...]', 'machines (or --machine / --all), then HOST[:PORT] of the KMS host'),
    ),
  )
    .option('--clear', 'clear it: the machines find a KMS host by DNS again')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & SelectionOptions & { clear?: boolean }, ...args: string[]) => {
        let refs = args;
        let address: string | undefined;
        if (!o.clear) {
          const last = o.machine?.at(-1);
          if (args.length > 0) {
            address = args.at(-1);
            refs = args.slice(0, -1);
          } else if (o.machine && o.machine.length > 1 && last !== undefined && /[.:]/.test(last)) {
            // `--machine 1 2 kms.example:1688`: the variadic option took the host too.
            address = last;
            o.machine = o.machine.slice(0, -1);
          }
          if (address === undefined) throw new CliError('OPTION_INVALID', 'give the KMS host HOST[:PORT], or --clear');
        }
        const selection = machineSelection(o, refs);
        printResults(await withConsole(o, (c) => c.setKmsHost(selection, address ?? null, progress)), o.json);
      }),
    );

  consoleStoreOptions(
    selectionOptions(
      con
        .command('set-kms-host-caching')
        .description(
          "turn the machines' KMS host caching on (renew with the host DNS found until it stops answering) or off (look DNS up every time)",
        )
        .argument('[args...]', 'machines (or --machine / --all), then on or off'),
    ),
  )
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & SelectionOptions, ...args: string[]) => {
        let refs = args;
        let value: string | undefined;
        const last = o.machine?.at(-1);
        if (args.length > 0) {
          value = args.at(-1);
          refs = args.slice(0, -1);
        } else if (o.machine && o.machine.length > 1 && (last === 'on' || last === 'off')) {
          // `--machine 1 2 off`: the variadic option took the value too.
          value = last;
          o.machine = o.machine.slice(0, -1);
        }
        if (value !== 'on' && value !== 'off') {
          throw new CliError(
            'OPTION_INVALID',
            value === undefined
              ? 'give on or off after the machines'
              : `expected on or off, got "${printable(value).slice(0, 40)}"`,
          );
        }
        const selection = machineSelection(o, refs);
        printResults(await withConsole(o, (c) => c.setKmsHostCaching(selection, value === 'on', progress)), o.json);
      }),
    );

  consoleStoreOptions(
    proxyOptions(
      selectionOptions(
        con
          .command('proxy-activate')
          .description(
            'MAK proxy activation: collect the installation IDs, ONE bulk call to the authority (per 1 000), install each confirmation ID (stored for reactivate); for an isolated network through files: --collect FILE, then --confirm FILE --out CIDS on a connected machine, then --apply CIDS',
          )
          .argument('[machine...]', 'id, name or address'),
      )
        .option(
          '--authority <url>',
          'the authority (https://, or http:// on this machine); not with --collect or --apply',
        )
        .option('--timeout <ms>', 'for the authority call', '30000')
        .option(
          '--collect <file>',
          'isolated network, step 1: write the signed installation-ID file (0600) of the machines',
        )
        .option(
          '--confirm <file>',
          'step 2, on a console that reaches --authority: answer an installation-ID file into --out CIDS',
        )
        .option('--out <cids>', 'with --confirm: the confirmation file to write (0600)')
        .option(
          '--console-key-id <id>',
          "with --confirm: the collecting console's key ID (its --collect prints it): a file signed by any other key is refused",
        )
        .option('--apply <cids>', "step 3, on the console that collected: install the confirmation file's IDs"),
    ),
  )
    .option('--json', 'print JSON')
    .action(
      run(
        async (
          o: DataDirOptions &
            SelectionOptions & {
              authority?: string;
              proxy?: string;
              proxyUser?: string;
              proxyPasswordFile?: string;
              timeout: string;
              collect?: string;
              confirm?: string;
              consoleKeyId?: string;
              out?: string;
              apply?: string;
            },
          ...refs: string[]
        ) => {
          const modes = [o.collect, o.confirm, o.apply].filter((m) => m !== undefined).length;
          if (o.consoleKeyId !== undefined && o.confirm === undefined) {
            throw new CliError('OPTION_INVALID', '--console-key-id goes with --confirm FILE');
          }
          if (modes > 1) throw new CliError('OPTION_INVALID', '--collect, --confirm and --apply: give one');
          if (o.out !== undefined && o.confirm === undefined) {
            throw new CliError('OPTION_INVALID', '--out goes with --confirm FILE');
          }
          if (o.collect !== undefined || o.apply !== undefined) {
            if (o.authority !== undefined || o.proxy !== undefined) {
              throw new CliError(
                'OPTION_INVALID',
                `${o.collect !== undefined ? '--collect' : '--apply'} works without the authority (an isolated network): drop --authority/--proxy`,
              );
            }
          }
          if (o.collect !== undefined) {
            const selection = machineSelection(o, refs);
            const out = o.collect;
            const { collected, keyId } = await withConsole(o, async (c) => ({
              collected: await c.collectInstallationIds(selection, {}, progress),
              keyId: c.consoleKeyId(),
            }));
            writePrivateFile(out, collected.file);
            const entries = collected.results.filter((r) => r.ok).length;
            if (o.json)
              printJson({
                fileId: collected.fileId,
                file: out,
                consoleKeyId: keyId,
                machines: entries,
                results: collected.results,
              });
            else {
              printResults(collected.results, false);
              console.log(
                `installation-ID file ${collected.fileId} written to ${out}: ${entries} of ${collected.results.length} machines, signed by console key ${keyId}; confirm it on a connected machine (\`volact authority confirm-file ${out} --out CIDS --console-key-id ${keyId}\`), then \`volact console proxy-activate --apply CIDS\``,
              );
            }
            if (collected.results.some((r) => !r.ok)) process.exitCode = 1;
            return;
          }
          if (o.apply !== undefined) {
            if (refs.length > 0 || o.all || o.machine) {
              throw new CliError(
                'OPTION_INVALID',
                '--apply installs for the machines of the collected file: name none',
              );
            }
            const text = readProxyFile(o.apply);
            const applied = await withConsole(o, (c) => c.applyConfirmationFile(text, progress));
            if (o.json) printJson(applied);
            else {
              printResults(applied.results, false);
              for (const s of applied.skipped) {
                console.log(`skipped\t${printable(s.installationId.slice(0, 20))}…\t${printable(s.reason)}`);
              }
            }
            if (applied.results.some((r) => !r.ok)) process.exitCode = 1;
            return;
          }
          if (o.authority === undefined) {
            throw new CliError(
              'OPTION_INVALID',
              'give --authority URL (online), or --collect FILE / --apply CIDS (isolated network)',
            );
          }
          const authority = authorityConnection({ ...o, authority: o.authority });
          if (o.confirm !== undefined) {
            if (o.out === undefined) throw new CliError('OPTION_INVALID', '--confirm FILE needs --out CIDS');
            const pinned = o.consoleKeyId;
            if (refs.length > 0 || o.all || o.machine) {
              throw new CliError('OPTION_INVALID', '--confirm answers the machines of the file: name none');
            }
            const text = readProxyFile(o.confirm);
            const out = o.out;
            const cids = await withConsole(o, (c) => c.confirmProxyFile(text, authority, pinned));
            writePrivateFile(out, cids);
            printConfirmation(parseCidFile(cids), out, o.json);
            return;
          }
          const selection = machineSelection(o, refs);
          printResults(await withConsole(o, (c) => c.proxyActivate(selection, authority, progress)), o.json);
        },
      ),
    );

  consoleStoreOptions(
    con
      .command('install-cid')
      .description(
        'install a confirmation ID read out over the phone on a machine (digit groups, any separators; a wrong group is named) and store it for reactivate',
      )
      .argument('<machine>', 'id, name or address')
      .argument('<confirmation-id...>', 'the confirmation ID as read out (groups may be separate words)'),
  )
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { json?: boolean }, machine?: string, ...groups: string[]) => {
        if (machine === undefined || groups.length === 0) {
          throw new CliError('OPTION_INVALID', 'give the machine, then the confirmation ID as read out');
        }
        const result = await withConsole(o, (c) => c.installConfirmationId(machine, groups.join('-')));
        printResults([result], o.json);
      }),
    );

  machinesCommand(
    con,
    'reactivate',
    "install the stored confirmation ID for each machine's current installation ID (a re-imaged machine), without the authority",
  ).action(onMachines(run, (c, selection) => c.reactivate(selection, progress)));
}

/**
 * Writes a proxy file atomically and whole (core writeFileAtomic: every byte, fsync, size
 * checked, then renamed), mode 0600: a full disk is FILE_WRITE_FAILED, never "written".
 */
export function writePrivateFile(path: string, text: string): void {
  writeFileAtomic(path, text);
}

/** Reads an installation-ID or confirmation file, refusing a huge one before reading it. */
export function readProxyFile(path: string): string {
  // UTF-8: at most 3 bytes per character of the file's bound.
  if (statSync(path).size > MAX_PROXY_FILE_CHARS * 3) {
    throw new CoreError('PROXY_FILE_INVALID', `${path} is larger than a proxy file may be`);
  }
  return readFileSync(path, 'utf8');
}

/** What a confirmation step wrote. */
export function printConfirmation(cids: CidFile, out: string, json: boolean | undefined): void {
  const confirmed = cids.results.filter((r) => r.ok).length;
  const refused = cids.results.flatMap((r) =>
    r.ok ? [] : [{ installationId: r.installationId, code: r.code, message: r.message }],
  );
  if (json) {
    printJson({ out, request: cids.request, authority: cids.authority, confirmed, refused });
    return;
  }
  for (const r of refused) {
    console.log(`refused\t${r.installationId.slice(0, 20)}…\t${printable(r.code)}\t${printable(r.message)}`);
  }
  console.log(
    `confirmation file for ${cids.request.id} (console ${cids.request.consoleKeyId}) written to ${out}: ${confirmed} confirmed, ${refused.length} refused; apply it with \`volact console proxy-activate --apply ${out}\` on the console that collected`,
  );
}
