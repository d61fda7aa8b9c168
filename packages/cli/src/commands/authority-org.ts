import type { Command } from 'commander';
import {
  AuthorityError,
  CLI_PRINCIPAL,
  DEFAULT_ORG_ID,
  parseContact,
  type AuditRow,
  type KeySummary,
  type Organisation,
  type Page,
} from '@volact/authority';
import { printable, spreadsheetText } from '@volact/core';
import { CliError, printJson } from '../output.js';
import { parseIntOption } from '../options.js';
import type { Run } from '../runtime.js';
import { openAuthority, targetOptions, type TargetOptions } from './authority-target.js';

/**
 * `volact authority org add|list|show`, `key list` and `audit`: the publisher's customers,
 * their keys page by page, and the audit log (docs/portal.md "Organisations"). Each verb is a
 * thin call into `organisations.*`, on the data directory (as the publisher owner `cli`) or,
 * with --url, as the token's holder.
 */

const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  name: '--name',
  externalRef: '--external-ref',
  contacts: '--contact',
  cursor: '--cursor',
  limit: '--limit',
  type: '--type',
  group: '--group',
  note: '--note',
  from: '--since',
};

/** A refusal about a field names this command's flag for it (`contacts[1].email` → --contact). */
async function withFlags<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof AuthorityError) || err.field === undefined || err.message.startsWith('--')) throw err;
    const flag = FLAG_OF_FIELD[err.field.replace(/\[.*$/, '')];
    if (flag === undefined) throw err;
    throw new AuthorityError(err.code, `${flag}: ${err.message}`);
  }
}

/**
 * One CSV field: quoted when needed; escape sequences and control characters dropped (line breaks
 * and tabs kept); text a spreadsheet would run as a formula, at its start or where a spreadsheet
 * may start a cell or a line inside it (after ';' ',' tab CR LF), is defused with ' (core
 * spreadsheetText, as the console's CSV). Numbers and booleans bare.
 */
export function csvField(value: string | number | boolean | null | undefined): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const text = spreadsheetText(printable(value ?? '', { keepLineBreaks: true }));
  return /[",;\t\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
const csvLine = (fields: readonly (string | number | boolean | null | undefined)[]) => fields.map(csvField).join(',');

const KEY_COLUMNS = [
  'keyId',
  'orgId',
  'type',
  'groups',
  'last5',
  'limit',
  'used',
  'remaining',
  'createdAt',
  'revokedAt',
  'note',
] as const;
const AUDIT_COLUMNS = ['id', 'at', 'action', 'result', 'actor', 'orgId', 'keyId', 'keyLast5', 'detail'] as const;

function printPage<T>(
  page: Page<T>,
  o: { json?: boolean; csv?: boolean },
  columns: readonly string[],
  text: (item: T) => string,
  empty: string,
): void {
  if (o.json && o.csv) throw new CliError('OPTION_INVALID', '--json and --csv: choose one');
  if (o.json) {
    printJson(page);
    return;
  }
  if (o.csv) {
    const rows = [csvLine(columns)];
    for (const item of page.items) {
      const r = item as Record<string, unknown>;
      rows.push(
        csvLine(
          columns.map((c) => {
            const v = r[c];
            return Array.isArray(v) ? v.join(' ') : (v as string | number | boolean | null | undefined);
          }),
        ),
      );
    }
    process.stdout.write(`${rows.join('\n')}\n`);
  } else if (page.items.length === 0) console.log(empty);
  else for (const item of page.items) console.log(text(item));
  // The next page's cursor goes to stderr: the rows on stdout stay clean for a pipe.
  if (page.nextCursor !== null) process.stderr.write(`more: --cursor ${page.nextCursor}\n`);
}

function describeOrg(org: Organisation): string {
  return [
    `${org.id}\t${org.name}`,
    `  external reference: ${org.externalRef ?? '-'}`,
    `  keys: ${org.keyCount}`,
    `  created: ${org.createdAt}`,
    ...org.contacts.map((c) => `  contact: ${c.name}${c.email ? ` <${c.email}>` : ''}${c.phone ? ` ${c.phone}` : ''}`),
  ].join('\n');
}

const keyLine = (k: KeySummary) =>
  [
    k.keyId,
    k.orgId,
    k.type,
    k.last5,
    `${k.used}/${k.limit}`,
    k.groups.join(','),
    k.revokedAt ? `REVOKED ${k.revokedAt}` : 'active',
    k.note ?? '',
  ].join('\t');

const auditLine = (r: AuditRow) =>
  [r.at, r.action, r.result, r.actor ?? '-', r.orgId ?? '-', r.keyLast5 ?? '-', r.detail ?? ''].join('\t');

function sinceOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const at = Date.parse(text);
  if (!Number.isFinite(at)) {
    throw new CliError(
      'OPTION_INVALID',
      `--since must be an ISO date or time (2026-01-31, 2026-01-31T12:00:00Z), got "${text}"`,
    );
  }
  return at;
}

export function registerAuthorityOrg(authority: Command, run: Run): void {
  const org = authority.command('org').description("the publisher's customer organisations");

  targetOptions(org.command('add').description('add a customer organisation (name, agreement number, contacts)'))
    .requiredOption('--name <name>', "the organisation's name (1-200 characters)")
    .option('--external-ref <ref>', 'the agreement number or the customer reference in your books (≤ 100 characters)')
    .option('--contact <"Name <email>">', 'a contact, repeatable (up to 20)', (v: string, all: string[] = []) => [
      ...all,
      v,
    ])
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { name: string; externalRef?: string; contact?: string[]; json?: boolean }) => {
        const contacts = await withFlags(async () => (o.contact ?? []).map(parseContact));
        const a = openAuthority(o);
        try {
          const created = await withFlags(() =>
            a.organisations.create(
              { name: o.name, ...(o.externalRef !== undefined ? { externalRef: o.externalRef } : {}), contacts },
              CLI_PRINCIPAL,
            ),
          );
          if (o.json) printJson(created);
          else console.log(`${created.id}\t${created.name}`);
        } finally {
          await a.close();
        }
      }),
    );

  targetOptions(org.command('list').description('the organisations, oldest first (the default organisation first)'))
    .option('--q <text>', 'only those whose name or external reference holds this text')
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { q?: string; json?: boolean }) => {
        const a = openAuthority(o);
        try {
          const items: Organisation[] = [];
          let cursor: string | undefined;
          do {
            const page = await a.organisations.list({
              limit: 500,
              ...(o.q !== undefined ? { q: o.q } : {}),
              ...(cursor !== undefined ? { cursor } : {}),
            });
            items.push(...page.items);
            cursor = page.nextCursor ?? undefined;
          } while (cursor !== undefined);
          if (o.json) printJson({ organisations: items });
          else for (const x of items) console.log(`${x.id}\t${x.name}\t${x.externalRef ?? '-'}\t${x.keyCount} keys`);
        } finally {
          await a.close();
        }
      }),
    );

  targetOptions(org.command('show').description('one organisation: reference, contacts, number of keys'))
    .argument('<org>', `the organisation's id (org_…; ${DEFAULT_ORG_ID} holds the keys minted before organisations)`)
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { json?: boolean }, id?: string) => {
        const a = openAuthority(o);
        try {
          const found = await a.organisations.get(id ?? '');
          if (o.json) printJson(found);
          else console.log(describeOrg(found));
        } finally {
          await a.close();
        }
      }),
    );

  const key = authority.commands.find((c) => c.name() === 'key');
  if (!key) throw new Error('authority key must be registered before authority org');
  targetOptions(key.command('list').description('keys page by page, newest first (never the keys: their last five)'))
    .option('--org <id>', "only this organisation's keys (org_…)")
    .option('--type <type>', 'only keys of this type: kms-host, mak or retail')
    .option('--group <name>', 'only keys of this product group')
    .option('--revoked', 'only revoked keys')
    .option('--q <text>', 'a key whose last five characters are this, or whose note holds it')
    .option('--limit <n>', 'keys per page (1-500)', '100')
    .option('--cursor <cursor>', 'the next page: the cursor the previous page printed')
    .option('--json', 'print JSON ({items, nextCursor})')
    .option('--csv', 'print CSV with a header line')
    .action(
      run(
        async (
          o: TargetOptions & {
            org?: string;
            type?: string;
            group?: string;
            revoked?: boolean;
            q?: string;
            limit: string;
            cursor?: string;
            json?: boolean;
            csv?: boolean;
          },
        ) => {
          if (o.type !== undefined && o.type !== 'kms-host' && o.type !== 'mak' && o.type !== 'retail') {
            throw new CliError('OPTION_INVALID', `--type must be kms-host, mak or retail, got "${o.type}"`);
          }
          const limit = parseIntOption(o.limit, '--limit', 1, 500);
          const a = openAuthority(o);
          try {
            const page = await withFlags(() =>
              a.organisations.listKeys({
                limit,
                ...(o.org !== undefined ? { orgId: o.org } : {}),
                ...(o.type !== undefined ? { type: o.type as KeySummary['type'] } : {}),
                ...(o.group !== undefined ? { group: o.group } : {}),
                ...(o.revoked ? { revoked: true } : {}),
                ...(o.q !== undefined ? { q: o.q } : {}),
                ...(o.cursor !== undefined ? { cursor: o.cursor } : {}),
              }),
            );
            printPage(page, o, KEY_COLUMNS, keyLine, 'no keys');
          } finally {
            await a.close();
          }
        },
      ),
    );

  targetOptions(authority.command('audit').description('the audit log, newest first: who did what to which key'))
    .option('--org <id>', "only this organisation's rows (org_…)")
    .option('--key <keyId>', "only this key's rows (its key ID)")
    .option('--actor <name>', 'only rows of this actor (an email, token:…, admin-token, cli)')
    .option('--action <prefix>', 'only actions starting so (key., org., installation.activate)')
    .option('--since <iso>', 'only rows from this time (ISO 8601)')
    .option('--limit <n>', 'rows per page (1-500)', '100')
    .option('--cursor <cursor>', 'the next page: the cursor the previous page printed')
    .option('--json', 'print JSON ({items, nextCursor})')
    .option('--csv', 'print CSV with a header line')
    .action(
      run(
        async (
          o: TargetOptions & {
            org?: string;
            key?: string;
            actor?: string;
            action?: string;
            since?: string;
            limit: string;
            cursor?: string;
            json?: boolean;
            csv?: boolean;
          },
        ) => {
          const limit = parseIntOption(o.limit, '--limit', 1, 500);
          const from = sinceOf(o.since);
          const a = openAuthority(o);
          try {
            const page = await withFlags(() =>
              a.organisations.audit({
                limit,
                ...(o.org !== undefined ? { orgId: o.org } : {}),
                ...(o.key !== undefined ? { keyId: o.key } : {}),
                ...(o.actor !== undefined ? { actor: o.actor } : {}),
                ...(o.action !== undefined ? { action: o.action } : {}),
                ...(from !== undefined ? { from } : {}),
                ...(o.cursor !== undefined ? { cursor: o.cursor } : {}),
              }),
            );
            printPage(page, o, AUDIT_COLUMNS, auditLine, 'no audit rows');
          } finally {
            await a.close();
          }
        },
      ),
    );
}
