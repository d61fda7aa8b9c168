import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DAY } from '@volact/core';
import { parseScenario, type ScenarioInput } from './scenario.js';
import { SIMULATION_START, simulate, type SimEvent, type SimulationResult } from './simulate.js';
import { renderChart, CHART_HEIGHT, CHART_WIDTH } from './chart.js';
import { writeOutputs } from './output.js';
import { workersAvailable } from './verify-pool.js';
import { parseXmlRoot } from './svg-check.js';

const run = (input: ScenarioInput, workers = 0) => simulate(parseScenario(input), { eventLog: true, workers });
const dayOf = (at: number) => Math.floor((at - SIMULATION_START) / DAY);
const stateEvents = (r: SimulationResult) =>
  r.events.filter((e): e is Extract<SimEvent, { kind: 'state' }> => e.kind === 'state');

/** Each client's last successful activation or renewal before `before`. */
function lastActivations(r: SimulationResult, before: number): Map<number, number> {
  const last = new Map<number, number>();
  for (const e of r.events) if (e.kind === 'activated' && e.at < before) last.set(e.client, e.at);
  return last;
}

describe('simulate', () => {
  it('one of two hosts down for 10 days: renewals fail over, no client ever leaves licensed', async () => {
    const r = await run({
      days: 120,
      seed: 7,
      clients: { count: 300, joinOverDays: 14 },
      hosts: { count: 2 },
      outages: [{ host: 1, fromDay: 40, days: 10 }],
    });
    expect(r.summary.clientsLeftLicensed).toBe(0);
    expect(stateEvents(r).filter((e) => e.from === 'licensed')).toEqual([]);
    expect(r.summary.final.licensed).toBe(300);
    for (const row of r.rows.slice(40, 50)) {
      expect(row.activeHosts).toBe(1);
      expect(row.hostRequests[0]).toBe(0);
    }
    expect(r.rows.slice(40, 50).reduce((sum, row) => sum + (row.hostRequests[1] as number), 0)).toBeGreaterThan(300);
    expect(r.rows[50]?.activeHosts).toBe(2);
    // Clients that host1 renewed before the outage were renewed by host2 during it.
    const during = r.events.filter((e) => e.kind === 'activated' && dayOf(e.at) >= 40 && dayOf(e.at) < 50);
    const renewedByHost1 = new Set(
      r.events.filter((e) => e.kind === 'activated' && e.host === 'host1' && dayOf(e.at) < 40).map((e) => e.client),
    );
    const failedOver = during.filter(
      (e) => e.kind === 'activated' && e.host === 'host2' && renewedByHost1.has(e.client),
    );
    expect(failedOver.length).toBeGreaterThan(50);
    const firstAll = r.summary.firstDayAllLicensed as number;
    expect(firstAll).toBeLessThanOrEqual(14);
    for (const row of r.rows.slice(firstAll)) expect(row.states.licensed).toBe(300);
  });

  it('all hosts down for 200 days: out-of-tolerance exactly 180 days after each last renewal, licensed again when they return', async () => {
    const from = 30;
    const r = await run({
      days: 240,
      seed: 3,
      clients: { count: 200, joinOverDays: 5 },
      hosts: { count: 2 },
      outages: [
        { host: 1, fromDay: from, days: 200 },
        { host: 2, fromDay: from, days: 200 },
      ],
    });
    const outageStart = SIMULATION_START + from * DAY;
    const last = lastActivations(r, outageStart);
    expect(last.size).toBe(200);
    const lapses = stateEvents(r).filter((e) => e.from === 'licensed');
    expect(lapses).toHaveLength(200);
    for (const e of lapses) {
      expect(e.to).toBe('out-of-tolerance');
      expect(e.at).toBe((last.get(e.client) as number) + 180 * DAY);
    }
    // The earliest renewal before the outage is at most 7 days before it: out-of-tolerance
    // from day 30 + 173 on, and notification (30 days later, day ≥ 233) never comes: the hosts
    // are back on day 230 and every client is licensed again that day.
    expect(Math.min(...lapses.map((e) => dayOf(e.at)))).toBeGreaterThanOrEqual(from + 173);
    expect(stateEvents(r).filter((e) => e.to === 'notification')).toEqual([]);
    for (let day = from + 180; day < from + 200; day++) expect(r.rows[day]?.states['out-of-tolerance']).toBe(200);
    expect(r.rows[from + 200]?.states.licensed).toBe(200);
    // The per-day counts are those of the event log.
    for (const row of r.rows) {
      const dayEnd = SIMULATION_START + (row.day + 1) * DAY;
      const lapsed = lapses.filter((e) => e.at < dayEnd).length;
      const back = new Set(
        r.events.filter((e) => e.kind === 'activated' && e.at >= outageStart && e.at < dayEnd).map((e) => e.client),
      ).size;
      if (row.day >= from && row.day < from + 200) expect(row.states['out-of-tolerance']).toBe(lapsed - back);
    }
  });

  it('all hosts down for good: out-of-tolerance at last renewal + 180 days, notification 30 days after, to the day', async () => {
    const from = 20;
    const r = await run({
      days: 260,
      seed: 11,
      clients: { count: 200, joinOverDays: 5 },
      hosts: { count: 2 },
      outages: [
        { host: 1, fromDay: from, days: 240 },
        { host: 2, fromDay: from, days: 240 },
      ],
    });
    const last = lastActivations(r, SIMULATION_START + from * DAY);
    const events = stateEvents(r);
    for (const [client, at] of last) {
      const mine = events.filter((e) => e.client === client && e.at > at);
      expect(mine.map((e) => [e.from, e.to, e.at])).toEqual([
        ['licensed', 'out-of-tolerance', at + 180 * DAY],
        ['out-of-tolerance', 'notification', at + 210 * DAY],
      ]);
    }
    // Daily counts (taken just before midnight): out-of-tolerance when 180 < (midnight − last) ≤ 210 days.
    for (const row of r.rows.slice(from)) {
      const dayEnd = SIMULATION_START + (row.day + 1) * DAY;
      let oot = 0;
      let notification = 0;
      for (const at of last.values()) {
        if (dayEnd > at + 210 * DAY) notification++;
        else if (dayEnd > at + 180 * DAY) oot++;
      }
      expect([row.day, row.states['out-of-tolerance'], row.states.notification]).toEqual([row.day, oot, notification]);
    }
    expect(r.rows.at(-1)?.states.notification).toBe(200);
    // Clients out of tolerance retry every 2 hours (the host's activation interval).
    expect(r.rows[from + 200]?.attempts).toBe(200 * 12);
  });

  it('DNS down: clients with a cached host keep renewing, new ones find no host until it is back', async () => {
    const r = await run({
      days: 40,
      clients: { count: 100, joinOverDays: 20 },
      hosts: { count: 1 },
      dnsOutages: [{ fromDay: 10, days: 5 }],
    });
    expect(r.summary.clientsLeftLicensed).toBe(0);
    const joinedDuring = new Set(
      stateEvents(r)
        .filter((e) => e.from === null && dayOf(e.at) >= 10 && dayOf(e.at) < 15)
        .map((e) => e.client),
    );
    expect(joinedDuring.size).toBe(25);
    const firstActivation = new Map<number, number>();
    for (const e of r.events)
      if (e.kind === 'activated' && !firstActivation.has(e.client)) firstActivation.set(e.client, e.at);
    for (const c of joinedDuring) expect(dayOf(firstActivation.get(c) as number)).toBe(15);
    expect(r.rows[14]?.states['initial-grace']).toBe(25);
    expect(r.rows[15]?.states.licensed).toBe(r.rows[15]?.joined);
    expect(r.rows[12]?.dnsUp).toBe(false);
  });

  it('MAK pool exhaustion and re-imaged machines', async () => {
    const r = await run({
      days: 45,
      clients: { count: 60, joinOverDays: 2 },
      hosts: { count: 1 },
      mak: { clients: 8, limit: 5 },
      reimages: [{ day: 10, count: 60 }],
    });
    // 5 MAK installations activate; the 3 others are refused (MAK_LIMIT_REACHED) and reach
    // notification when their initial grace (restarted by the re-image on day 10) ends. Re-imaged,
    // the 5 activate again for free: same hardware, same installation ID.
    const makLicensed = new Set(
      r.events.filter((e) => e.kind === 'activated' && e.host === 'authority').map((e) => e.client),
    );
    expect(makLicensed.size).toBe(5);
    expect(r.summary.makActivations).toBe(10);
    expect(r.rows[9]?.states).toMatchObject({ licensed: 57, 'initial-grace': 3 });
    expect(r.rows[44]?.states).toMatchObject({ licensed: 57, notification: 3 });
    expect(r.events.filter((e) => e.kind === 'reimaged')).toHaveLength(60);
    // Re-imaged, a KMS client gets a new client ID: the host counts it again until the old one expires.
    expect(r.rows[10]?.hostRequests[0]).toBeGreaterThanOrEqual(52);
  });

  it('writes daily.csv, summary.json and a well-formed 1200×600 SVG chart', async () => {
    const r = await run({
      days: 30,
      clients: { count: 50, joinOverDays: 3 },
      outages: [{ host: 2, fromDay: 10, days: 5 }],
    });
    const dir = mkdtempSync(join(tmpdir(), 'volact-sim-out-'));
    const paths = writeOutputs(r, dir);
    const svg = readFileSync(paths.chart, 'utf8');
    const root = parseXmlRoot(svg);
    expect(root.name).toBe('svg');
    expect(root.attributes).toMatchObject({
      xmlns: 'http://www.w3.org/2000/svg',
      width: String(CHART_WIDTH),
      height: String(CHART_HEIGHT),
      viewBox: `0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`,
    });
    expect([CHART_WIDTH, CHART_HEIGHT]).toEqual([1200, 600]);
    expect(svg).toContain('class="state licensed"');
    expect(svg.match(/class="host-down"/g)).toHaveLength(1);
    const csv = readFileSync(paths.csv, 'utf8').trim().split('\n');
    expect(csv[0]).toBe(
      'day,date,joined,unlicensed,licensed,initial-grace,out-of-tolerance,non-genuine-grace,notification,host1_requests,host2_requests,requests,attempts,failures,active_hosts,dns_up',
    );
    expect(csv).toHaveLength(31);
    expect(csv[12]).toMatch(/^11,2026-01-12,50,0,50,0,0,0,0,\d+,0,\d+,\d+,\d+,1,1$/);
    const summary = JSON.parse(readFileSync(paths.summary, 'utf8')) as { clients: number; scenario: { days: number } };
    expect(summary).toMatchObject({ clients: 50, scenario: { days: 30 } });
    expect(existsSync(join(dir, 'daily.csv'))).toBe(true);
  });

  it('escapes the title and draws an empty run', () => {
    const svg = renderChart([], ['h<1>'], 'a & b');
    expect(parseXmlRoot(svg).name).toBe('svg');
    expect(svg).toContain('a &amp; b');
  });

  it.skipIf(!workersAvailable())('gives the same run on worker threads as in one thread', async () => {
    const input: ScenarioInput = {
      days: 30,
      seed: 5,
      clients: { count: 200, joinOverDays: 0 },
      outages: [{ host: 1, fromDay: 10, days: 5 }],
    };
    const [one, two] = [await run(input, 0), await run(input, 2)];
    expect(two.summary.workers).toBe(2);
    expect(two.rows).toEqual(one.rows);
  });
});
