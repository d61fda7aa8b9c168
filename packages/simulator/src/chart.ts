import type { LicenceState } from '@volact/core';
import type { DayRow } from './simulate.js';

export const CHART_WIDTH = 1200;
export const CHART_HEIGHT = 600;

/** One colour per licence state (colour-blind safe: Okabe–Ito). */
const COLOURS: Record<LicenceState, string> = {
  licensed: '#009E73',
  'initial-grace': '#56B4E9',
  'out-of-tolerance': '#E69F00',
  'non-genuine-grace': '#CC79A7',
  notification: '#D55E00',
  unlicensed: '#999999',
};
/** Stacking order, bottom up: the good state at the bottom. */
const STACK: readonly LicenceState[] = [
  'licensed',
  'initial-grace',
  'out-of-tolerance',
  'non-genuine-grace',
  'notification',
  'unlicensed',
];

const M = { top: 48, right: 200, bottom: 56, left: 72 };

const escapeXml = (s: string) =>
  s.replace(
    /[<>&"']/g,
    (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[ch] as string,
  );
const fmt = (n: number) => (Math.round(n * 10) / 10).toString();

/** 1, 2 or 5 times a power of ten: about `target` ticks over [0, max]. */
export function niceStep(max: number, target: number): number {
  if (!(max > 0)) return 1;
  const raw = max / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const m = raw / power;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
}

/** Runs of consecutive days where `predicate` holds, as [first, last + 1). */
function bands(rows: readonly DayRow[], predicate: (r: DayRow) => boolean): [number, number][] {
  const out: [number, number][] = [];
  let start = -1;
  rows.forEach((r, i) => {
    if (predicate(r) && start < 0) start = i;
    if (!predicate(r) && start >= 0) {
      out.push([start, i]);
      start = -1;
    }
  });
  if (start >= 0) out.push([start, rows.length]);
  return out;
}

/**
 * The per-day licence states as a stacked area chart, with a band per day some host (or DNS)
 * was down, as a standalone SVG of CHART_WIDTH × CHART_HEIGHT.
 *
 * Written here rather than with a chart library: Chart.js needs a canvas (a native module), and
 * the SVG-capable ones (Vega, ECharts' SSR) bring a few megabytes of dependencies for one
 * static chart; this one is plain string building, checked by the tests as XML.
 */
export function renderChart(rows: readonly DayRow[], hostNames: readonly string[], title: string): string {
  const w = CHART_WIDTH - M.left - M.right;
  const h = CHART_HEIGHT - M.top - M.bottom;
  const days = Math.max(1, rows.length);
  const total = Math.max(1, ...rows.map((r) => STACK.reduce((sum, s) => sum + r.states[s], 0)));
  const x = (day: number) => M.left + (day / days) * w;
  const y = (v: number) => M.top + h - (v / total) * h;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${CHART_WIDTH}" height="${CHART_HEIGHT}" viewBox="0 0 ${CHART_WIDTH} ${CHART_HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${CHART_WIDTH}" height="${CHART_HEIGHT}" fill="#ffffff"/>`,
    `<text x="${M.left}" y="28" font-size="16" font-weight="bold">${escapeXml(title)}</text>`,
  );
  // Outage bands behind the areas: a host down (grey), DNS down (blue hatch-like tint).
  const down = bands(rows, (r) => r.activeHosts < hostNames.length);
  for (const [a, b] of down) {
    out.push(
      `<rect class="host-down" x="${fmt(x(a))}" y="${M.top}" width="${fmt(x(b) - x(a))}" height="${h}" fill="#000000" fill-opacity="0.12"/>`,
    );
  }
  const dnsDown = bands(rows, (r) => !r.dnsUp);
  for (const [a, b] of dnsDown) {
    out.push(
      `<rect class="dns-down" x="${fmt(x(a))}" y="${M.top}" width="${fmt(x(b) - x(a))}" height="${h}" fill="#0072B2" fill-opacity="0.12"/>`,
    );
  }
  // Stacked areas: each state's band between the running sums below and above it; a day is a step.
  const below = new Array<number>(rows.length).fill(0);
  for (const state of STACK) {
    const above = rows.map((r, i) => (below[i] as number) + r.states[state]);
    if (rows.some((r) => r.states[state] > 0)) {
      const top: string[] = [];
      const bottom: string[] = [];
      rows.forEach((_, i) => {
        top.push(`${fmt(x(i))},${fmt(y(above[i] as number))}`, `${fmt(x(i + 1))},${fmt(y(above[i] as number))}`);
        bottom.push(`${fmt(x(i + 1))},${fmt(y(below[i] as number))}`, `${fmt(x(i))},${fmt(y(below[i] as number))}`);
      });
      out.push(
        `<polygon class="state ${state}" points="${[...top, ...bottom.reverse()].join(' ')}" fill="${COLOURS[state]}" fill-opacity="0.85"/>`,
      );
    }
    above.forEach((v, i) => (below[i] = v));
  }
  // Axes, ticks and grid.
  out.push(
    `<line x1="${M.left}" y1="${M.top + h}" x2="${M.left + w}" y2="${M.top + h}" stroke="#333"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + h}" stroke="#333"/>`,
  );
  const yStep = niceStep(total, 6);
  for (let v = 0; v <= total; v += yStep) {
    out.push(
      `<line x1="${M.left - 4}" y1="${fmt(y(v))}" x2="${M.left + w}" y2="${fmt(y(v))}" stroke="#000" stroke-opacity="${v === 0 ? 0 : 0.1}"/>`,
      `<text x="${M.left - 8}" y="${fmt(y(v) + 4)}" text-anchor="end">${v}</text>`,
    );
  }
  const xStep = niceStep(days, 12);
  for (let d = 0; d <= days; d += xStep) {
    out.push(
      `<line x1="${fmt(x(d))}" y1="${M.top + h}" x2="${fmt(x(d))}" y2="${M.top + h + 4}" stroke="#333"/>`,
      `<text x="${fmt(x(d))}" y="${M.top + h + 18}" text-anchor="middle">${d}</text>`,
    );
  }
  out.push(
    `<text x="${M.left + w / 2}" y="${CHART_HEIGHT - 14}" text-anchor="middle">day</text>`,
    `<text transform="translate(18 ${M.top + h / 2}) rotate(-90)" text-anchor="middle">clients</text>`,
  );
  // Legend.
  const lx = M.left + w + 20;
  let ly = M.top + 8;
  for (const state of [...STACK].reverse()) {
    out.push(
      `<rect x="${lx}" y="${ly - 10}" width="14" height="14" fill="${COLOURS[state]}"/>`,
      `<text x="${lx + 20}" y="${ly + 1}">${state}</text>`,
    );
    ly += 22;
  }
  ly += 8;
  out.push(
    `<rect x="${lx}" y="${ly - 10}" width="14" height="14" fill="#000000" fill-opacity="0.12"/>`,
    `<text x="${lx + 20}" y="${ly + 1}">a host down</text>`,
  );
  ly += 22;
  out.push(
    `<rect x="${lx}" y="${ly - 10}" width="14" height="14" fill="#0072B2" fill-opacity="0.12"/>`,
    `<text x="${lx + 20}" y="${ly + 1}">DNS down</text>`,
  );
  ly += 30;
  out.push(`<text x="${lx}" y="${ly}" font-weight="bold">hosts</text>`);
  for (const name of hostNames) {
    ly += 18;
    const daysDown = rows.filter((r) => r.hostRequests[hostNames.indexOf(name)] === 0).length;
    out.push(`<text x="${lx}" y="${ly}">${escapeXml(name)}: ${daysDown} day(s) idle</text>`);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
