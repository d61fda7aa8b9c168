import type { Command } from 'commander';
import { REPORT_NAMES, printable, toCsv, type Report } from '@volact/console';
import { CliError, printJson } from '../../output.js';
import { parseIntOption, readTokenFile } from '../../options.js';
import type { Run } from '../../runtime.js';
import { authorityConnection, consoleStoreOptions, proxyOptions, withConsole, type DataDirOptions } from './options.js';

function printReport(report: Report, o: { json?: boolean; csv?: boolean }): void {
  if (o.json) {
    printJson({ report: report.report, generatedAt: report.generatedAt, rows: report.rows });
    return;
  }
  if (o.csv) {
    process.stdout.write(toCsv(report.columns, report.rows));
    return;
  }
  if (report.rows.length === 0) {
    console.log(`${report.report}: nothing to report`);
    return;
  }
  // Agent text never reaches the terminal raw: escape sequences and control characters dropped.
  const cell = (v: Report['rows'][number][string] | undefined) =>
    v === null || v === undefined ? '-' : printable(Array.isArray(v) ? v.join(';') : String(v));
  const widths = report.columns.map((c) => Math.max(c.length, ...report.rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  console.log(line([...report.columns]));
  for (const r of report.rows) console.log(line(report.columns.map((c) => cell(r[c]))));
}

/** `volact console refresh-mak`, `report`, `log`: what the console reports. */
export function registerConsoleReports(con: Command, run: Run): void {
  consoleStoreOptions(
    proxyOptions(
      con
        .command('refresh-mak')
        .description("read each stored MAK's limit, used and remaining from the authority and keep them")
        .requiredOption('--authority <url>', 'the authority (https://, or http:// on this machine)')
        .requiredOption(
          '--admin-token-file <file>',
          "an organisation's read token (org:<id>:read: its own MAKs only) or the authority's admin token",
        ),
    ),
  )
    .option('--json', 'print JSON')
    .action(
      run(
        async (
          o: DataDirOptions & {
            authority: string;
            adminTokenFile: string;
            proxy?: string;
            proxyUser?: string;
            proxyPasswordFile?: string;
          },
        ) => {
          const authority = {
            ...authorityConnection(o),
            adminToken: readTokenFile(o.adminTokenFile, '--admin-token-file'),
          };
          const results = await withConsole(o, (c) => c.refreshMakCounts(authority));
          if (o.json) printJson({ results });
          else
            for (const r of results) {
              console.log(`${r.name}\t${r.key}\t${printable(r.ok ? r.message : `error ${r.code}: ${r.message}`)}`);
            }
          if (results.some((r) => !r.ok)) process.exitCode = 1;
        },
      ),
    );

  consoleStoreOptions(
    proxyOptions(
      con
        .command('report')
        .description(`a licensing report from the latest status of each machine: ${REPORT_NAMES.join(', ')}`)
        .argument('<name>', REPORT_NAMES.join(' | '))
        .option('--days <n>', 'at-risk: licences ending within this many days', '30')
        .option('--authority <url>', "mak-usage: read each MAK's counters from the authority first")
        .option(
          '--admin-token-file <file>',
          "mak-usage: an organisation's read token (org:<id>:read) or the authority's admin token (with --authority)",
        ),
    ),
  )
    .option('--json', 'print JSON')
    .option('--csv', 'print CSV (RFC 4180)')
    .action(
      run(
        async (
          o: DataDirOptions & {
            days: string;
            authority?: string;
            adminTokenFile?: string;
            proxy?: string;
            proxyUser?: string;
            proxyPasswordFile?: string;
            csv?: boolean;
          },
          name: string,
        ) => {
          if (o.json && o.csv) throw new CliError('OPTION_INVALID', '--json and --csv: choose one');
          if ((o.authority === undefined) !== (o.adminTokenFile === undefined)) {
            throw new CliError('OPTION_INVALID', '--authority and --admin-token-file go together (mak-usage counters)');
          }
          if ([o.proxy, o.proxyUser, o.proxyPasswordFile].some((x) => x !== undefined) && o.authority === undefined) {
            throw new CliError('OPTION_INVALID', '--proxy… is for the authority: give --authority too');
          }
          const days = parseIntOption(o.days, '--days', 0, 3650);
          const authority =
            o.authority === undefined
              ? undefined
              : {
                  ...authorityConnection({ ...o, authority: o.authority }),
                  adminToken: readTokenFile(o.adminTokenFile as string, '--admin-token-file'),
                };
          // mak-usage with --authority keeps the counters it reads: that one writes.
          const report = await withConsole(
            o,
            (c) => c.report(name, { days, ...(authority ? { authority } : {}) }),
            authority === undefined,
          );
          printReport(report, o);
        },
      ),
    );

  consoleStoreOptions(con.command('log').description("the console's operations log, newest first"))
    .option('--limit <n>', 'entries', '100')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { limit: string }) => {
        const limit = parseIntOption(o.limit, '--limit', 1, 100_000);
        const entries = await withConsole(o, (c) => c.operations(limit), true);
        if (o.json) printJson({ operations: entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) });
        else
          for (const e of entries) {
            console.log(
              [
                new Date(e.at).toISOString(),
                e.operation,
                e.machine ?? '-',
                e.ok ? 'ok' : (e.code ?? 'failed'),
                e.detail ?? '',
              ]
                .map((v) => printable(v))
                .join('\t'),
            );
          }
      }),
    );
}
