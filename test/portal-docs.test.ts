import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ORG_RIGHTS,
  ORG_ROLES,
  PUBLISHER_RIGHTS,
  PUBLISHER_ROLES,
  WEBHOOK_EVENT_TYPES,
  scopesOfRole,
} from '@volact/authority';

/**
 * docs/portal.md against the code it describes: every role with exactly the scopes
 * `scopesOfRole` gives it, every right of both levels, every webhook event. A role, right or
 * event added to the code and not to the page (or the other way round) fails here.
 */
const PAGE = readFileSync(fileURLToPath(new URL('../docs/portal.md', import.meta.url)), 'utf8');

/** The text of a `## Title` section, up to the next `## `. */
function section(title: string): string {
  const start = PAGE.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`docs/portal.md has no "## ${title}" section`);
  const end = PAGE.indexOf('\n## ', start + 1);
  return PAGE.slice(start, end < 0 ? undefined : end);
}

/** The rows of the first table in `text` whose first cell is a `code` span: first cell → the row. */
function tableRows(text: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const m of text.matchAll(/^\| `([^`]+)`[^|\n]*\|(.*)\|\s*$/gm)) rows.set(m[1] as string, m[2] as string);
  return rows;
}

/** Scopes written in a row: `publisher:x` and `org:<id>:x` (the page writes the organisation as `<id>`). */
const scopesIn = (row: string) => [...row.matchAll(/`((?:publisher|org:<id>):[a-z*-]+)`/g)].map((m) => m[1]).sort();

describe('docs/portal.md', () => {
  const roles = section('Roles and scopes');
  const roleRows = tableRows(roles);

  it('has one row per role, no more, each with exactly the scopes the role holds', () => {
    const all = [...PUBLISHER_ROLES, ...ORG_ROLES];
    const documentedRoles = [...roleRows.keys()].filter((k) => !k.includes(':'));
    expect(documentedRoles.sort()).toEqual([...all].sort());
    for (const role of all) {
      expect(scopesIn(roleRows.get(role) ?? ''), `scopes of ${role}`).toEqual(scopesOfRole(role, '<id>').sort());
    }
  });

  it('explains every right of both levels, and no right the code lacks', () => {
    const rights = [...roleRows.keys()].filter((k) => k.includes(':'));
    const expected = [...PUBLISHER_RIGHTS.map((r) => `publisher:${r}`), ...ORG_RIGHTS.map((r) => `org:<id>:${r}`)];
    expect(rights.filter((r) => !r.endsWith(':*')).sort()).toEqual(expected.sort());
    for (const right of expected) expect((roleRows.get(right) ?? '').trim(), right).not.toBe('');
  });

  it('lists every webhook event with its data fields, and no event the code lacks', () => {
    const events = tableRows(section('Webhooks'));
    const documented = [...events.keys()].filter((k) => /^[a-z_]+\.[a-z_]+$/.test(k));
    expect(documented.sort()).toEqual([...WEBHOOK_EVENT_TYPES].sort());
    for (const type of WEBHOOK_EVENT_TYPES) expect(events.get(type), type).toMatch(/`keyLast5`/);
  });
});
