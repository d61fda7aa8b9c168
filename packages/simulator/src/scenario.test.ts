import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultScenario, loadScenario, parseScenario } from './scenario.js';
import { SimulatorError } from './errors.js';

const code = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err instanceof SimulatorError ? `${err.code}: ${err.message}` : String(err);
  }
  return 'no error';
};

describe('scenario', () => {
  it('defaults to 1 000 clients, 2 hosts, host 1 down on days 100-109, 365 days', () => {
    const s = defaultScenario();
    expect(s.clients).toEqual({ count: 1000, joinOverDays: 30 });
    expect(s.hosts.count).toBe(2);
    expect(s.days).toBe(365);
    expect(s.outages).toEqual([{ host: 1, fromDay: 100, days: 10 }]);
    expect(s.caching).toBe(true);
  });

  it('names the field that breaks a rule', () => {
    expect(code(() => parseScenario({ clients: { count: 0 } }))).toMatch(
      /^SCENARIO_INVALID: scenario: clients\.count: /,
    );
    expect(code(() => parseScenario({ hosts: { count: 2 }, outages: [{ host: 3, fromDay: 1, days: 1 }] }))).toBe(
      'SCENARIO_INVALID: scenario: outages.0.host: there are 2 host(s); hosts are numbered from 1',
    );
    expect(code(() => parseScenario({ days: 10, dnsOutages: [{ fromDay: 10, days: 1 }] }))).toBe(
      'SCENARIO_INVALID: scenario: dnsOutages.0.fromDay: day 10 is after the run (10 days)',
    );
    expect(code(() => parseScenario({ clients: { count: 5 }, mak: { clients: 6, limit: 1 } }))).toMatch(
      /mak\.clients: more MAK clients than the 5 clients/,
    );
    expect(code(() => parseScenario({ days: 'many' }))).toMatch(/^SCENARIO_INVALID: scenario: days: /);
  });

  it('is strict: an unknown key is refused, not ignored', () => {
    expect(code(() => parseScenario({ client: { count: 5 } }))).toMatch(
      /^SCENARIO_INVALID: scenario: \(top level\): .*client/,
    );
    expect(code(() => parseScenario({ outages: [{ host: 1, fromDay: 1, days: 1, why: 'x' }] }))).toMatch(/outages\.0/);
  });

  it('reads YAML and JSON files, and says which file is wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'volact-scenario-'));
    writeFileSync(join(dir, 'a.yaml'), 'days: 30\nclients:\n  count: 10\n  joinOverDays: 2\nhosts: { count: 1 }\n');
    expect(loadScenario(join(dir, 'a.yaml'))).toMatchObject({ days: 30, clients: { count: 10 }, hosts: { count: 1 } });
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ days: 20, reimages: [{ day: 3, count: 2 }] }));
    expect(loadScenario(join(dir, 'b.json')).reimages).toEqual([{ day: 3, count: 2 }]);
    writeFileSync(join(dir, 'c.yaml'), 'days: [1, 2\n');
    expect(code(() => loadScenario(join(dir, 'c.yaml')))).toMatch(/^SCENARIO_UNREADABLE: .*c\.yaml: not YAML or JSON/);
    writeFileSync(join(dir, 'd.yaml'), 'days: -1\n');
    expect(code(() => loadScenario(join(dir, 'd.yaml')))).toMatch(/^SCENARIO_INVALID: .*d\.yaml: scenario: days: /);
    expect(code(() => loadScenario(join(dir, 'none.yaml')))).toMatch(/^SCENARIO_UNREADABLE: .*none\.yaml: ENOENT/);
  });
});
