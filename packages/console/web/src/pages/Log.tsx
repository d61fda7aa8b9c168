import { createColumnHelper } from '@tanstack/react-table';
import { useEffect, useMemo, useState } from 'react';
import { DataTable } from '../components/DataTable';
import { Pager } from '../components/Pager';
import { OkBadge } from '../components/StateBadge';
import { formatTime, useGet } from '../hooks';
import { JOB_OPERATIONS, type Operation } from '../types';

const col = createColumnHelper<Operation>();
/** Operations logged besides the bulk jobs' (the filter's suggestions; any text may be typed). */
const OTHER_OPERATIONS = ['machine add', 'machine remove', 'admin add', 'import', 'export'] as const;

/** The operations log: newest first, filtered and paged by the server. */
export function OperationsLog() {
  const [q, setQ] = useState('');
  const [debounced, setDebounced] = useState('');
  const [operation, setOperation] = useState('');
  const [outcome, setOutcome] = useState<'' | 'ok' | 'failed'>('');
  const [page, setPage] = useState({ offset: 0, limit: 100 });
  useEffect(() => {
    const t = window.setTimeout(() => setDebounced(q.trim()), 250);
    return () => window.clearTimeout(t);
  }, [q]);
  // A new filter starts at its first page.
  useEffect(() => setPage((p) => ({ ...p, offset: 0 })), [debounced, operation, outcome]);
  const params = new URLSearchParams({ offset: String(page.offset), limit: String(page.limit) });
  if (debounced) params.set('q', debounced);
  if (operation.trim()) params.set('operation', operation.trim());
  if (outcome) params.set('outcome', outcome);
  const { data, error, loading, reload } = useGet<{ operations: Operation[]; total: number; offset: number }>(
    `/api/operations?${params.toString()}`,
  );
  const columns = useMemo(
    () => [
      col.accessor('at', { enableSorting: false, header: 'When', cell: (c) => formatTime(c.getValue()) }),
      col.accessor('operation', { enableSorting: false, header: 'Operation' }),
      col.accessor('machine', { enableSorting: false, header: 'Machine', cell: (c) => c.getValue() ?? '—' }),
      col.accessor('ok', { enableSorting: false, header: 'Result', cell: (c) => <OkBadge ok={c.getValue()} /> }),
      col.accessor('code', { enableSorting: false, header: 'Code', cell: (c) => c.getValue() ?? '—' }),
      col.accessor('detail', { enableSorting: false, header: 'Detail', cell: (c) => c.getValue() ?? '—' }),
    ],
    [],
  );
  const filtered = Boolean(debounced || operation.trim() || outcome);
  return (
    <section>
      <div className="page-head">
        <h1>Operations log</h1>
        <button type="button" onClick={reload}>
          Reload
        </button>
      </div>
      <div className="filters" role="search">
        <label className="grow">
          Search
          <input
            type="search"
            value={q}
            onChange={(e) => setQ(e.target.value)}
            placeholder="machine, operation, code or detail"
            aria-label="search the log"
          />
        </label>
        <label>
          Operation
          <input
            list="log-operations"
            value={operation}
            onChange={(e) => setOperation(e.target.value)}
            placeholder="any"
            aria-label="operation filter"
          />
          <datalist id="log-operations">
            {[...JOB_OPERATIONS, ...OTHER_OPERATIONS].map((o) => (
              <option key={o} value={o} />
            ))}
          </datalist>
        </label>
        <label>
          Outcome
          <select
            aria-label="outcome filter"
            value={outcome}
            onChange={(e) => setOutcome(e.target.value as '' | 'ok' | 'failed')}
          >
            <option value="">any</option>
            <option value="ok">ok</option>
            <option value="failed">failed</option>
          </select>
        </label>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <DataTable
        data={data?.operations ?? []}
        columns={columns}
        label="operations"
        empty={loading ? 'Loading…' : filtered ? 'Nothing logged matches these filters.' : 'Nothing logged yet.'}
      />
      <Pager
        label="operations"
        offset={page.offset}
        limit={page.limit}
        total={data?.total ?? 0}
        onChange={(offset, limit) => setPage({ offset, limit })}
      />
    </section>
  );
}
