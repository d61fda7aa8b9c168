import type { Plan } from './plan.js';
import { KIND_LABEL, MACHINE_KINDS, METHODS, METHOD_LABEL, TABLE_1, type Allocation } from './rules.js';

type Align = 'left' | 'right';

/** A plain-text table: columns padded to their widest cell, numbers right-aligned. */
function textTable(headers: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (align[i] === 'right' ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function markdownTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly Align[],
): string {
  const escape = (c: string): string => c.replace(/\|/g, '\\|');
  const line = (cells: readonly string[]): string => `| ${cells.map(escape).join(' | ')} |`;
  return [line(headers), line(align.map((a) => (a === 'right' ? '---:' : '---'))), ...rows.map(line)].join('\n');
}

const kindText = (a: Allocation): string => (a.kind === 'any' ? 'any' : KIND_LABEL[a.kind]);

const SITE_HEADERS = ['site', 'network', 'machines', 'method', 'kind', 'count', 'Table 1'] as const;
const SITE_ALIGN: Align[] = ['left', 'left', 'right', 'left', 'left', 'right', 'left'];

function siteRows(plan: Plan, repeat: boolean): string[][] {
  const rows: string[][] = [];
  for (const site of plan.sites) {
    site.allocations.forEach((a, i) => {
      const first = i === 0 || repeat;
      rows.push([
        first ? site.name : '',
        first ? site.network : '',
        first ? String(site.machines.total) : '',
        METHOD_LABEL[a.method],
        kindText(a),
        String(a.count),
        `row ${a.row}`,
      ]);
    });
    if (site.allocations.length === 0) rows.push([site.name, site.network, '0', '-', '-', '0', '']);
  }
  return rows;
}

function kmsRows(plan: Plan): string[][] {
  return plan.kms.deployments.map((d) => [
    d.scope === 'core' ? 'core (central)' : `${d.name} (local)`,
    String(d.clients['client-os']),
    String(d.clients['server-app']),
    String(d.hosts),
  ]);
}

function keyLines(plan: Plan): string[] {
  const lines: string[] = [];
  const byKind = (f: (k: (typeof MACHINE_KINDS)[number]) => number): string =>
    MACHINE_KINDS.map((k) => `${KIND_LABEL[k]} ${f(k)}`).join(', ');
  lines.push(
    `KMS host keys: ${byKind((k) => plan.kms.hostKeys[k])} (one key activates ${plan.settings.hostsPerKmsHostKey} hosts)`,
  );
  for (const kind of MACHINE_KINDS) {
    const mak = plan.mak[kind];
    if (mak.machines > 0) {
      lines.push(
        `MAK, ${KIND_LABEL[kind]}: ${mak.keys} key, ${mak.activations} activations (${mak.machines} machines + ${plan.mak.sparePercent} % spare)`,
      );
    }
  }
  if (plan.directory.machines['client-os'] + plan.directory.machines['server-app'] > 0) {
    lines.push(`activation objects (directory-based): ${byKind((k) => plan.directory.activationObjects[k])}`);
  }
  if (plan.token.machines > 0) lines.push(`tokens: ${plan.token.machines} (one per machine)`);
  if (plan.totals.byMethod.retail > 0) lines.push(`retail keys: ${plan.totals.byMethod.retail} (one per machine)`);
  if (plan.totals.byMethod.oem > 0) lines.push(`OEM: ${plan.totals.byMethod.oem} machines activated at the factory`);
  return lines;
}

function totalRows(plan: Plan): string[][] {
  const rows = METHODS.filter((m) => plan.totals.byMethod[m] > 0).map((m) => [
    METHOD_LABEL[m],
    String(plan.totals.byMethod[m]),
  ]);
  rows.push(['total (Table 1 row 10)', String(plan.totals.planned)]);
  return rows;
}

function heading(plan: Plan): string {
  const t = plan.settings.thresholds;
  return `thresholds: client OS ${t.clientOs}, server/app ${t.serverApp}; KMS hosts per deployment: at least ${plan.settings.kmsHostsMinimum}; MAK spare: ${plan.settings.makSparePercent} %`;
}

/** The human table `volact plan` prints by default. */
export function renderText(plan: Plan): string {
  const out: string[] = [];
  out.push(`Volume activation plan${plan.organisation !== undefined ? ` for ${plan.organisation}` : ''}`);
  out.push(heading(plan), '');
  out.push(textTable(SITE_HEADERS, siteRows(plan, false), SITE_ALIGN), '');
  if (plan.kms.deployments.length > 0) {
    out.push('KMS hosts');
    out.push(
      textTable(['deployment', 'client OS', 'server/app', 'hosts'], kmsRows(plan), ['left', 'right', 'right', 'right']),
    );
    out.push(`total: ${plan.kms.hosts} hosts`, '');
  }
  out.push('Keys and activations', ...keyLines(plan).map((l) => `  ${l}`), '');
  out.push('Totals');
  out.push(textTable(['method', 'machines'], totalRows(plan), ['left', 'right']));
  out.push(`inventory: ${plan.totals.inventory} machines`, '');
  if (plan.warnings.length > 0) {
    out.push('Warnings', ...plan.warnings.map((w) => `  ! ${w.message}`));
  } else out.push('No warnings.');
  return `${out.join('\n')}\n`;
}

/** The same plan as a Markdown page (to paste into a ticket or a wiki). */
export function renderMarkdown(plan: Plan): string {
  const out: string[] = [];
  out.push(`# Volume activation plan${plan.organisation !== undefined ? ` for ${plan.organisation}` : ''}`, '');
  out.push(`${heading(plan)}.`, '');
  out.push('## Sites', '', markdownTable(SITE_HEADERS, siteRows(plan, true), SITE_ALIGN), '');
  if (plan.kms.deployments.length > 0) {
    out.push(
      '## KMS hosts',
      '',
      markdownTable(['deployment', 'client OS', 'server/app', 'hosts'], kmsRows(plan), [
        'left',
        'right',
        'right',
        'right',
      ]),
      '',
      `Total: ${plan.kms.hosts} hosts.`,
      '',
    );
  }
  out.push('## Keys and activations', '', ...keyLines(plan).map((l) => `- ${l}`), '');
  out.push('## Totals', '', markdownTable(['method', 'machines'], totalRows(plan), ['left', 'right']), '');
  out.push(`Inventory: ${plan.totals.inventory} machines.`, '');
  out.push('## Warnings', '');
  out.push(...(plan.warnings.length > 0 ? plan.warnings.map((w) => `- ${w.message}`) : ['None.']));
  return `${out.join('\n')}\n`;
}

/** The plan as JSON (the `volact-plan/1` object), one value, indented for people when asked. */
export function renderJson(plan: Plan, indent = 0): string {
  return `${JSON.stringify(plan, null, indent)}\n`;
}

/** Table 1 as the planner reads it (for `docs/planner.md` and `--help`). */
export function renderTable1(): string {
  return markdownTable(
    ['row', 'criterion', 'method'],
    TABLE_1.map((r) => [String(r.row), r.criterion, r.method]),
    ['right', 'left', 'left'],
  );
}
