import { createColumnHelper } from '@tanstack/react-table';
import { useMemo } from 'react';
import { DataTable } from '../components/DataTable';
import { StateBadge } from '../components/StateBadge';
import { formatTime, useGet } from '../hooks';
import { href } from '../router';
import type { HistoryEntry, MachineSummary } from '../types';

const col = createColumnHelper<HistoryEntry>();

export function MachineDetail({ id }: { id: string }) {
  const { data, error, reload } = useGet<{ machine: MachineSummary; history: HistoryEntry[] }>(
    `/api/machines/${encodeURIComponent(id)}`,
  );
  const columns = useMemo(
    () => [
      col.accessor('takenAt', { header: 'Taken', cell: (c) => formatTime(c.getValue()) }),
      col.accessor((h) => h.status.state, {
        id: 'state',
        header: 'State',
        cell: (c) => <StateBadge state={c.row.original.status.state} />,
      }),
      col.accessor((h) => h.status.method ?? '—', { id: 'method', header: 'Method' }),
      col.accessor((h) => h.status.group, { id: 'group', header: 'Group' }),
      col.accessor((h) => h.status.installedKey ?? '—', {
        id: 'key',
        header: 'Key',
        cell: (c) => (
          <code>
            {c.getValue()}
            {c.row.original.status.installedKeyType ? ` (${c.row.original.status.installedKeyType})` : ''}
          </code>
        ),
      }),
      col.accessor((h) => h.status.expiresAt, {
        id: 'expiresAt',
        header: 'Licence ends',
        cell: (c) => formatTime(c.getValue()),
      }),
      col.accessor((h) => h.status.host ?? '—', { id: 'host', header: 'KMS host' }),
      col.accessor((h) => h.status.lastAttempt, {
        id: 'lastAttempt',
        header: 'Last attempt',
        enableSorting: false,
        cell: (c) => {
          const a = c.getValue();
          if (!a) return '—';
          return (
            <span title={a.message}>
              {a.ok ? 'ok' : (a.code ?? 'failed')} · {formatTime(a.at)}
            </span>
          );
        },
      }),
    ],
    [],
  );

  if (error) {
    return (
      <section>
        <p className="error" role="alert">
          {error}
        </p>
        <a href={href('/machines')}>← Machines</a>
      </section>
    );
  }
  if (!data) return <p className="muted">Loading…</p>;
  const m = data.machine;
  const latest = data.history[0]?.status;
  return (
    <section>
      <p>
        <a href={href('/machines')}>← Machines</a>
      </p>
      <div className="page-head">
        <h1>
          {m.name} <StateBadge state={m.state} />
        </h1>
        <button type="button" onClick={reload}>
          Reload
        </button>
      </div>
      <div className="card">
        <dl className="facts">
          <dt>ID</dt>
          <dd>{m.id}</dd>
          <dt>Agent address</dt>
          <dd>
            <code>{m.address}</code>
          </dd>
          <dt>Product group</dt>
          <dd>{m.group ?? '—'}</dd>
          <dt>Method</dt>
          <dd>{m.method ?? '—'}</dd>
          <dt>Installed key</dt>
          <dd>
            <code>{m.installedKey ?? '—'}</code>
          </dd>
          <dt>Licence ends</dt>
          <dd>{formatTime(m.expiresAt)}</dd>
          <dt>Client machine ID</dt>
          <dd>
            <code>{m.clientMachineId ?? '—'}</code>
          </dd>
          <dt>Installation ID</dt>
          <dd>
            <code className="small">{latest?.installationId ?? '—'}</code>
          </dd>
          <dt>Added</dt>
          <dd>{formatTime(m.addedAt)}</dd>
          <dt>Last seen</dt>
          <dd>{formatTime(m.lastSeenAt)}</dd>
          <dt>Last error</dt>
          <dd>{m.lastError ? `${m.lastError.code}: ${m.lastError.message} (${formatTime(m.lastError.at)})` : '—'}</dd>
          <dt>Trust</dt>
          <dd>
            {m.untrusted ? (
              <span className="error-code untrusted">
                untrusted since {formatTime(m.untrusted.at)}: {m.untrusted.reason} — not called until re-enrolled (
                <code>volact console machine enrol {m.name}</code>)
              </span>
            ) : (
              'ok'
            )}
          </dd>
        </dl>
      </div>
      <h2>History</h2>
      <p className="muted">One row per change of the licence status, newest first.</p>
      <DataTable data={data.history} columns={columns} label="history" empty="Never read: refresh it." />
    </section>
  );
}
