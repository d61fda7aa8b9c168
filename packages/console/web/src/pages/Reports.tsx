import { createColumnHelper } from '@tanstack/react-table';
import {
  ArcElement,
  CategoryScale,
  Chart as ChartJS,
  Filler,
  Legend,
  LineElement,
  LinearScale,
  PointElement,
  Tooltip,
} from 'chart.js';
import { useMemo, useState } from 'react';
import { errorText, post } from '../api';
import { Doughnut, Line } from 'react-chartjs-2';
import { DataTable } from '../components/DataTable';
import { Pager } from '../components/Pager';
import { ReasonButton, viewerReason } from '../components/ReasonButton';
import { StateBadge, stateLabel } from '../components/StateBadge';
import { formatTime, useGet } from '../hooks';
import { href } from '../router';
import { LICENCE_STATES } from '../vocabulary';
import {
  REPORT_COLUMN_LABELS,
  REPORT_NAMES,
  type Charts,
  type CsvValue,
  type LicenceState,
  type MakCountResult,
  type ReportName,
  type ReportPage,
  type SessionInfo,
} from '../types';

ChartJS.register(ArcElement, CategoryScale, LinearScale, PointElement, LineElement, Filler, Tooltip, Legend);

/** The badge colours of styles.css, for the charts. */
const STATE_COLOURS: Record<LicenceState | 'unknown', string> = {
  licensed: '#16a34a',
  'initial-grace': '#d97706',
  'out-of-tolerance': '#ea580c',
  'non-genuine-grace': '#9333ea',
  notification: '#dc2626',
  unlicensed: '#6b7280',
  unknown: '#cbd5e1',
};

const TITLES: Record<ReportName, { title: string; about: string }> = {
  'at-risk': {
    title: 'At risk',
    about: 'In a grace period, in notification, or licensed with a licence ending within the days given.',
  },
  'duplicate-cmid': {
    title: 'Duplicate client machine IDs',
    about: 'Machines sharing a client machine ID (a cloned image not generalised): one row per machine.',
  },
  'mak-usage': {
    title: 'MAK usage',
    about:
      'Each stored MAK: the authority’s counters (when the console has its admin token) and the machines using it.',
  },
  unlicensed: { title: 'Unlicensed', about: 'No key installed, or every grace period over (notification).' },
  'by-authority': { title: 'By authority', about: 'Every machine: what activated it (KMS host, directory, MAK).' },
};

function Overview() {
  const [days, setDays] = useState(30);
  const { data, error } = useGet<Charts>(`/api/charts?days=${days}`);
  const states = useMemo(() => {
    const keys = [...LICENCE_STATES, 'unknown'] as const;
    return keys.filter((k) => (data?.states[k] ?? 0) > 0);
  }, [data]);
  if (error) {
    return (
      <p className="error" role="alert">
        {error}
      </p>
    );
  }
  if (!data) return <p className="muted">Loading charts…</p>;
  const machines = Object.values(data.states).reduce((a, b) => a + (b ?? 0), 0);
  const read = machines - (data.states.unknown ?? 0);
  if (read === 0) {
    return (
      <div className="card empty-state" data-testid="charts-empty">
        <p>
          <strong>
            {machines === 0 ? 'No machines yet: nothing to chart.' : 'No machine has been read yet: nothing to chart.'}
          </strong>
        </p>
        <p className="muted">
          {machines === 0
            ? 'Add machines on Machines (or discover them), then refresh them: the charts show their licence states.'
            : `${machines} machine${machines === 1 ? ' is' : 's are'} listed but never read: select them on Machines and Refresh; the charts fill in from their status.`}{' '}
          <a href={href('/machines')}>Go to Machines</a>
        </p>
      </div>
    );
  }
  return (
    <div className="charts">
      <figure className="card chart" aria-label="state distribution">
        <figcaption>Machines by licence state (now)</figcaption>
        <div className="chart-box">
          <Doughnut
            data={{
              labels: states.map((s) => stateLabel(s)),
              datasets: [
                {
                  data: states.map((s) => data.states[s]),
                  backgroundColor: states.map((s) => STATE_COLOURS[s]),
                  borderWidth: 1,
                },
              ],
            }}
            options={{ maintainAspectRatio: false, plugins: { legend: { position: 'right' } } }}
          />
        </div>
      </figure>
      <figure className="card chart wide" aria-label="count over time">
        <figcaption>
          Machines per state over time{' '}
          <select aria-label="days shown" value={days} onChange={(e) => setDays(Number(e.target.value))}>
            <option value={7}>7 days</option>
            <option value={30}>30 days</option>
            <option value={90}>90 days</option>
            <option value={365}>a year</option>
          </select>
        </figcaption>
        <div className="chart-box">
          <Line
            data={{
              labels: data.timeline.map((d) => d.day),
              datasets: LICENCE_STATES.map((s) => ({
                label: stateLabel(s),
                data: data.timeline.map((d) => d[s]),
                borderColor: STATE_COLOURS[s],
                backgroundColor: `${STATE_COLOURS[s]}33`,
                fill: s === 'licensed',
                hidden: s !== 'licensed' && data.timeline.every((d) => d[s] === 0),
                pointRadius: 0,
                tension: 0.2,
              })),
            }}
            options={{
              maintainAspectRatio: false,
              interaction: { mode: 'index', intersect: false },
              scales: {
                x: { ticks: { maxTicksLimit: 10, maxRotation: 0 } },
                y: { beginAtZero: true, ticks: { precision: 0 } },
              },
            }}
          />
        </div>
      </figure>
    </div>
  );
}

const cellText = (v: CsvValue | undefined): string =>
  v === null || v === undefined ? '—' : Array.isArray(v) ? v.join(', ') : String(v);

/** Why the MAK counters cannot be read from here, or null. */
function countersReason(session: SessionInfo): string | null {
  return (
    viewerReason(session) ??
    (session.makCounters
      ? null
      : 'the server has no authority admin token: start console serve with --authority and --admin-token-file')
  );
}

function ReportTable({ name, session }: { name: ReportName; session: SessionInfo }) {
  const [days, setDays] = useState(30);
  const [page, setPage] = useState({ offset: 0, limit: 100 });
  const query = name === 'at-risk' ? `?days=${days}` : '';
  const { data, error, loading, reload } = useGet<ReportPage>(
    `/api/reports/${name}?${name === 'at-risk' ? `days=${days}&` : ''}offset=${page.offset}&limit=${page.limit}`,
  );
  const [counting, setCounting] = useState<{ busy: boolean; message: string | null; ok: boolean }>({
    busy: false,
    message: null,
    ok: true,
  });
  const readCounters = () => {
    setCounting({ busy: true, message: null, ok: true });
    post<{ results: MakCountResult[] }>('/api/mak-counters').then(
      ({ results }) => {
        const failed = results.filter((r) => !r.ok);
        setCounting({
          busy: false,
          ok: failed.length === 0,
          message:
            failed.length === 0
              ? `Read the counters of ${results.length} MAK${results.length === 1 ? '' : 's'} from ${session.authority ?? 'the authority'}.`
              : failed.map((r) => `${r.name}: ${r.code ?? 'failed'}: ${r.message}`).join('; '),
        });
        reload();
      },
      (err: unknown) => setCounting({ busy: false, ok: false, message: errorText(err) }),
    );
  };
  const columns = useMemo(() => {
    const col = createColumnHelper<ReportPage['rows'][number]>();
    return (data?.columns ?? []).map((c) =>
      col.accessor((row) => row[c] ?? null, {
        id: c,
        // The human name; the CSV keeps the stable machine name (data.columns).
        header: () => <span title={c}>{data?.labels[c] ?? REPORT_COLUMN_LABELS[c] ?? c}</span>,
        enableSorting: false,
        cell: (cell) => {
          const v = cell.getValue();
          if (c === 'state') return <StateBadge state={v as LicenceState | null} />;
          if (/At$/.test(c) && typeof v === 'string') return formatTime(v);
          return cellText(v);
        },
      }),
    );
  }, [data]);
  return (
    <div>
      <div className="report-head">
        <div>
          <h2>{TITLES[name].title}</h2>
          <p className="muted">{TITLES[name].about}</p>
        </div>
        <div className="report-actions">
          {name === 'at-risk' && (
            <label>
              Ending within{' '}
              <input
                type="number"
                min={0}
                max={3650}
                aria-label="days"
                value={days}
                onChange={(e) => {
                  setDays(Math.max(0, Math.min(3650, Math.trunc(Number(e.target.value) || 0))));
                  setPage((p) => ({ ...p, offset: 0 }));
                }}
              />{' '}
              days
            </label>
          )}
          {name === 'mak-usage' && (
            <ReasonButton onClick={readCounters} busy={counting.busy} reason={countersReason(session)}>
              Read counters from the authority
            </ReasonButton>
          )}
          <a className="button" href={`/api/reports/${name}.csv${query}`} download={`volact-${name}.csv`}>
            Download CSV
          </a>
        </div>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {counting.message && (
        <p className={counting.ok ? 'success' : 'error'} role={counting.ok ? 'status' : 'alert'}>
          {counting.message}
        </p>
      )}
      {data && (
        <p className="muted small">
          {data.total} row{data.total === 1 ? '' : 's'} · generated {formatTime(data.generatedAt)}
        </p>
      )}
      <DataTable
        data={data?.rows ?? []}
        columns={columns}
        label={`report ${name}`}
        empty={loading ? 'Loading…' : 'Nothing to report.'}
      />
      {data && data.total > 0 && (
        <Pager
          label="rows"
          offset={page.offset}
          limit={page.limit}
          total={data.total}
          onChange={(offset, limit) => setPage({ offset, limit })}
        />
      )}
    </div>
  );
}

export default function Reports({ name, session }: { name: string | undefined; session: SessionInfo }) {
  const current: ReportName = (REPORT_NAMES as readonly string[]).includes(name ?? '')
    ? (name as ReportName)
    : 'at-risk';
  return (
    <section>
      <div className="page-head">
        <h1>Reports</h1>
      </div>
      <p className="muted">From the latest status of each machine: refresh the machines first for current figures.</p>
      <Overview />
      <nav className="tabs" aria-label="reports">
        {REPORT_NAMES.map((r) => (
          <a key={r} href={href(`/reports/${r}`)} className={r === current ? 'active' : undefined}>
            {TITLES[r].title}
          </a>
        ))}
      </nav>
      <ReportTable key={current} name={current} session={session} />
    </section>
  );
}
