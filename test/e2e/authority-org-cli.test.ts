import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority, type AuditRow, type KeySummary, type Organisation, type Page } from '@volact/authority';
import { cliExpectations } from './cli-in-process.js';

/**
 * `volact authority org add|list|show`, `key mint --org --note`, `key list` and `audit` on the
 * data directory: keys land in their organisation, pages by cursor cover each key once, CSV is
 * safe to open in a spreadsheet, and nothing printed holds a key but `key mint`'s own answer.
 */
const dir = mkdtempSync(join(tmpdir(), 'volact-org-cli-'));
const data = join(dir, 'a');
const { ok, json, refused } = cliExpectations();
const on = (...args: string[]) => [...args, '--data-dir', data];

beforeAll(async () => {
  const a = Authority.init(data);
  await a.addGroup({ name: 'office14' });
  await a.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('volact authority org, key list, audit', () => {
  it('adds an organisation, mints its keys, lists them page by page and audits the cli', async () => {
    const org = await json<Organisation>(
      ...on('authority', 'org', 'add', '--name', 'Contoso', '--external-ref', 'EA-1'),
      '--contact',
      'Bo Smith <bo@contoso.example>',
    );
    expect(org).toMatchObject({
      name: 'Contoso',
      externalRef: 'EA-1',
      contacts: [{ name: 'Bo Smith', email: 'bo@contoso.example' }],
    });
    const bad = await refused(...on('authority', 'org', 'add', '--name', 'X', '--contact', 'Bad <not-an-email>'));
    expect(bad.code).toBe('ORG_INVALID');
    expect(bad.message).toMatch(/^--contact: /);
    expect(
      (
        await refused(
          ...on(
            'authority',
            'key',
            'mint',
            '--type',
            'mak',
            '--group',
            'office14',
            '--limit',
            '5',
            '--org',
            'org_nope',
          ),
        )
      ).code,
    ).toBe('ORG_NOT_FOUND');

    const keys: string[] = [];
    for (let i = 0; i < 5; i++) {
      const minted = await json<{ key: string; keyId: string; orgId: string }>(
        ...on('authority', 'key', 'mint', '--type', 'mak', '--group', 'office14', '--limit', '5', '--org', org.id),
        '--note',
        i === 0 ? '=HYPERLINK("http://x")' : `site ${i}`,
      );
      expect(minted.orgId).toBe(org.id);
      keys.push(minted.key);
    }
    await ok(...on('authority', 'key', 'mint', '--type', 'mak', '--group', 'office14', '--limit', '5')); // org_default

    const seen: KeySummary[] = [];
    let cursor: string | null = null;
    do {
      const page: Page<KeySummary> = await json<Page<KeySummary>>(
        ...on('authority', 'key', 'list', '--org', org.id, '--limit', '2'),
        ...(cursor ? ['--cursor', cursor] : []),
      );
      seen.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(5);
    expect(new Set(seen.map((k) => k.keyId)).size).toBe(5);
    expect(seen.every((k) => k.orgId === org.id)).toBe(true);

    const csv = await ok(...on('authority', 'key', 'list', '--org', org.id, '--csv'));
    const lines = csv.trim().split('\n');
    expect(lines[0]).toBe('keyId,orgId,type,groups,last5,limit,used,remaining,createdAt,revokedAt,note');
    expect(lines).toHaveLength(6);
    expect(csv).toContain(`"'=HYPERLINK(""http://x"")"`); // a formula cell is defused
    expect((await json<Organisation>(...on('authority', 'org', 'show', org.id))).keyCount).toBe(5);
    const listed = await json<{ organisations: Organisation[] }>(...on('authority', 'org', 'list'));
    expect(listed.organisations.map((o) => o.id)).toEqual(['org_default', org.id]);

    const audit = await json<Page<AuditRow>>(...on('authority', 'audit', '--org', org.id, '--action', 'key.mint'));
    expect(audit.items).toHaveLength(5);
    expect(audit.items.every((r) => r.actor === 'cli' && r.keyId !== null)).toBe(true);
    const everything = await ok(...on('authority', 'audit', '--csv', '--limit', '500'));
    for (const key of keys) {
      expect(everything).not.toContain(key);
      expect(csv).not.toContain(key);
    }
    expect((await refused(...on('authority', 'audit', '--since', 'yesterday'))).code).toBe('OPTION_INVALID');
  });
});
