import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PlannerError } from './errors.js';
import { loadInventory, parseInventory, parseInventoryText, sniffFormat } from './inventory.js';

const ok = { name: 'A', network: 'core', computers: 1 };

function refused(data: unknown): PlannerError {
  try {
    parseInventory(data);
  } catch (err) {
    expect(err).toBeInstanceOf(PlannerError);
    return err as PlannerError;
  }
  throw new Error('accepted');
}

describe('parseInventory refuses bad inventories by name', () => {
  it.each([
    [
      { sites: [ok, ok, { ...ok, name: 'C', computers: -3 }] },
      'sites[2].computers: expected a whole number ≥ 0 (site "C")',
    ],
    [{ sites: [{ ...ok, computers: 2.5 }] }, 'sites[0].computers: expected a whole number ≥ 0 (site "A")'],
    [{ sites: [{ ...ok, computers: '30' }] }, 'sites[0].computers: expected a whole number ≥ 0'],
    [{ sites: [{ name: 'A', network: 'core' }] }, 'sites[0].computers: missing (expected a whole number ≥ 0)'],
    [{ sites: [{ ...ok, network: 'cloud' }] }, 'sites[0].network: expected one of core, branch, isolated'],
    [{ sites: [{ ...ok, computer: 3 }] }, 'sites[0]: unknown field "computer" (site "A")'],
    [{ sites: [ok], threshold: 3 }, 'inventory: unknown field "threshold"'],
    [{ sites: [ok], thresholds: { clientOs: 0 } }, 'thresholds.clientOs: expected a whole number from 1 to 1000000'],
    [{ sites: [ok], makSparePercent: 150 }, 'makSparePercent: expected a percentage from 0 to 100'],
    [{ sites: [] }, 'sites: expected at least one site'],
    [{}, 'sites: missing (expected a list of sites)'],
    [{ sites: [ok, { ...ok, name: 'a' }] }, 'sites[1].name: same name as sites[0]'],
    [{ sites: [{ ...ok, domainJoined: 2 }] }, "sites[0].domainJoined: 2 is more than the site's 1 computers"],
    [{ sites: [{ ...ok, activate: false }] }, 'sites[0].activate: only a lab (network: lab) may be left unactivated'],
    [{ sites: [{ ...ok, coreKms: false }] }, 'sites[0].coreKms: a core-network site reaches the core KMS'],
    [{ sites: [{ ...ok, contactDays: 0 }] }, 'sites[0].contactDays: expected a whole number of days from 1 to 36500'],
    [{ sites: [{ ...ok, computers: 20_000_000 }] }, 'sites[0].computers: expected at most 10000000'],
    [[1, 2], 'inventory:'],
  ])('%j', (data, message) => {
    const err = refused(data);
    expect(err.code).toBe('INVENTORY_INVALID');
    expect(err.message).toContain(message);
  });

  it('fills in the defaults and freezes the result', () => {
    const inv = parseInventory({ sites: [ok] });
    expect(inv.thresholds).toEqual({ clientOs: 25, serverApp: 5 });
    expect(inv.makSparePercent).toBe(10);
    expect(inv.kmsHosts.minimum).toBe(2);
    expect(inv.hostsPerKmsHostKey).toBe(6);
    expect(inv.sites[0]).toMatchObject({ servers: 0, domainJoined: 0, retail: 0, oem: 0, activate: true });
    expect(Object.isFrozen(inv.sites[0])).toBe(true);
  });
});

describe('inventory text and files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'volact-planner-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads YAML and JSON, and sniffs a name without a known extension', () => {
    const yaml = 'sites:\n  - name: A\n    network: core\n    computers: 3\n';
    const json = JSON.stringify({ sites: [ok] });
    writeFileSync(join(dir, 'a.yml'), yaml);
    writeFileSync(join(dir, 'a.json'), json);
    writeFileSync(join(dir, 'a.txt'), json);
    expect(loadInventory(join(dir, 'a.yml')).sites[0]?.computers).toBe(3);
    expect(loadInventory(join(dir, 'a.json')).sites[0]?.computers).toBe(1);
    expect(loadInventory(join(dir, 'a.txt')).sites[0]?.computers).toBe(1);
    expect(sniffFormat('  {"sites": []}')).toBe('json');
    expect(sniffFormat('sites: []')).toBe('yaml');
  });

  it('refuses syntax errors, duplicate keys and alias bombs as INVENTORY_SYNTAX', () => {
    expect(() => parseInventoryText('{"sites": [', 'json')).toThrow(/is not JSON/);
    expect(() => parseInventoryText('sites: [\n', 'yaml')).toThrow(/is not YAML/);
    expect(() => parseInventoryText('sites: []\nsites: []\n', 'yaml')).toThrow(/is not YAML/);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 8; i++)
      bomb.push(
        `${'b'.repeat(i + 1)}: &${'b'.repeat(i + 1)} [${Array(10)
          .fill(i === 0 ? '*a' : `*${'b'.repeat(i)}`)
          .join(', ')}]`,
      );
    for (const text of ['{"sites": [', 'sites: [\n', bomb.join('\n')]) {
      try {
        parseInventoryText(text);
        expect.unreachable(text);
      } catch (err) {
        expect((err as PlannerError).code).toBe('INVENTORY_SYNTAX');
      }
    }
  });

  it('refuses a missing file, a folder and an oversized file as INVENTORY_UNREADABLE', () => {
    mkdirSync(join(dir, 'folder.yaml'));
    writeFileSync(join(dir, 'big.yaml'), Buffer.alloc(4 * 1024 * 1024 + 1, 0x20));
    for (const file of ['missing.yaml', 'folder.yaml', 'big.yaml']) {
      expect(() => loadInventory(join(dir, file)), file).toThrow(
        expect.objectContaining({ code: 'INVENTORY_UNREADABLE' }) as Error,
      );
    }
  });

  it('names the file in the message', () => {
    writeFileSync(join(dir, 'bad.yaml'), 'sites:\n  - name: Leeds\n    network: branch\n    computers: -1\n');
    expect(() => loadInventory(join(dir, 'bad.yaml'))).toThrow(
      `${join(dir, 'bad.yaml')}: sites[0].computers: expected a whole number ≥ 0 (site "Leeds")`,
    );
  });
});
