import { z } from 'zod';
import { toCsv } from '../csv.js';
import { ConsoleError } from '../errors.js';
import type { ApiDeps, Route } from './api.js';
import { download, parseQuery } from './api.js';
import { REPORT_NAMES, operationsQuery, reportQuery, type Answers } from './contract.js';
import { WebError } from './errors.js';

const csvQuery = z.strictObject({ days: reportQuery.shape.days });
const chartsQuery = z.strictObject({ days: z.coerce.number().int().min(1).max(366).default(30) });

/** The operations log, reports (a page, or every row as CSV), charts, the MAK counters. */
export function viewRoutes(deps: ApiDeps): Route[] {
  const c = deps.console;
  const admin = deps.authority?.adminToken ? { ...deps.authority, adminToken: deps.authority.adminToken } : undefined;
  const reportName = (name: string) => {
    if (!(REPORT_NAMES as readonly string[]).includes(name)) {
      throw new ConsoleError('REPORT_UNKNOWN', `no report "${name.slice(0, 100)}": choose ${REPORT_NAMES.join(', ')}`);
    }
    return name;
  };

  return [
    {
      method: 'GET',
      path: '/api/operations',
      auth: true,
      async handle(ctx) {
        const query = parseQuery(operationsQuery, ctx.url);
        const page = await c.operationsPage(query);
        const operations = page.operations.map((o) => ({ ...o, at: new Date(o.at).toISOString() }));
        return {
          status: 200,
          json: { operations, total: page.total, offset: query.offset } satisfies Answers['operations'],
        };
      },
    },
    {
      // NAME (a page, with the columns' human labels) or NAME.csv (every row, stable column names).
      // A GET never calls out: mak-usage shows the counters as last read (POST /api/mak-counters).
      method: 'GET',
      path: '/api/reports/:name',
      auth: true,
      async handle(ctx, { name }) {
        const file = name as string;
        if (file.endsWith('.csv')) {
          const { days } = parseQuery(csvQuery, ctx.url);
          const r = await c.report(reportName(file.slice(0, -4)), { days });
          return download(toCsv(r.columns, r.rows), `volact-${r.report}.csv`, 'text/csv; charset=utf-8');
        }
        const query = parseQuery(reportQuery, ctx.url);
        return { status: 200, json: (await c.reportPage(reportName(file), query)) satisfies Answers['report'] };
      },
    },
    {
      method: 'POST',
      path: '/api/mak-counters',
      auth: true,
      async handle() {
        if (!admin) {
          throw new WebError(
            'AUTHORITY_NOT_CONFIGURED',
            'the console server has no authority admin token: start it with --authority URL --admin-token-file F',
          );
        }
        return { status: 200, json: { results: await c.refreshMakCounts(admin) } satisfies Answers['makCounters'] };
      },
    },
    {
      method: 'GET',
      path: '/api/charts',
      auth: true,
      async handle(ctx) {
        const { days } = parseQuery(chartsQuery, ctx.url);
        const states = await c.stateCounts();
        const timeline = (await c.stateTimeline(days)).map((d) => ({ day: d.day, ...d.counts }));
        return { status: 200, json: { states, timeline } satisfies Answers['charts'] };
      },
    },
  ];
}
