import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadInventory } from './inventory.js';
import { planInventory } from './plan.js';
import { renderJson, renderMarkdown, renderText } from './render.js';
import { RULES } from './rules.js';

/** docs/planner.md shows `volact plan` on docs/examples/inventory.yaml: this keeps it true. */
const EXAMPLE = fileURLToPath(new URL('../../../docs/examples/inventory.yaml', import.meta.url));
const DOC = readFileSync(new URL('../../../docs/planner.md', import.meta.url), 'utf8');
const BIN = fileURLToPath(new URL('../../../bin/volact.js', import.meta.url));

function volact(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('the worked example', () => {
  const plan = planInventory(loadInventory(EXAMPLE));

  it('docs/planner.md shows its output as it is', () => {
    expect(DOC).toContain(`\`\`\`text\n${renderText(plan)}\`\`\``);
  });

  it('docs/planner.md lists every rule', () => {
    for (const rule of RULES) expect(DOC, rule.id).toContain(`\`${rule.id}\``);
  });

  it('covers every row of Table 1 but the total, and adds up', () => {
    expect(Object.keys(plan.totals.byRow).sort()).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(plan.totals.planned).toBe(plan.totals.inventory);
    const leeds = plan.sites.find((s) => s.name === 'Leeds branch');
    const rotterdam = plan.sites.find((s) => s.name === 'Rotterdam branch');
    expect(leeds?.allocations.find((a) => a.kind === 'client-os')).toMatchObject({
      method: 'mak-independent',
      count: 20,
    });
    expect(rotterdam?.allocations.find((a) => a.kind === 'client-os')).toMatchObject({
      method: 'kms-local',
      count: 30,
    });
  });

  // The built binary (run `npx tsc -b` first, as scripts/test.sh does).
  it('volact plan prints the table, --markdown and --json', async () => {
    const text = await volact('plan', EXAMPLE);
    expect(text).toMatchObject({ code: 0, stdout: renderText(plan) });
    const markdown = await volact('plan', EXAMPLE, '--markdown');
    expect(markdown).toMatchObject({ code: 0, stdout: renderMarkdown(plan) });
    const json = await volact('plan', EXAMPLE, '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(renderJson(plan)));
  });

  it('volact plan refuses a bad inventory with its code', async () => {
    const missing = await volact('plan', 'no-such-inventory.yaml');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error INVENTORY_UNREADABLE: no-such-inventory\.yaml cannot be read \(ENOENT\)/);
    const both = await volact('plan', EXAMPLE, '--json', '--markdown');
    expect(JSON.parse(both.stdout)).toMatchObject({ error: { code: 'OPTION_INVALID' } });
  });
});
