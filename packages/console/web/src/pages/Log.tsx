import { createColumnHelper } from '@tanstack/react-table';
import { useMemo, useState } from 'react';
import { DataTable } from '../components/DataTable';
import { OkBadge } from '../components/StateBadge';
import { formatTime, useGet } from '../hooks';
import type { Operation } from '../types';

const col = createColumnHelper<Operation>();

export function OperationsLog() {
  const [limit, setLimit] = useState(100);
  const { data, error, reload } = useGet<{ operations: Operation[] }>(`/api/operations?limit=${limit}`);
  const columns = useMemo(
    () => [
      col.accessor('at', { header: 'When', cell: (c) => formatTime(c.getValue()) }),
      col.accessor('operation', { header: 'Operation' }),
      col.accessor('machine', { header: 'Machine', cell: (c) => c.getValue() ?? '—' }),
      col.accessor('ok', { header: 'Result', cell: (c) => <OkBadge ok={c.getValue()} /> }),
      col.accessor('code', { header: 'Code', cell: (c) => c.getValue() ?? '—' }),
      col.accessor('detail', { header: 'Detail', cell: (c) => c.getValue() ?? '—' }),
    ],
    [],
  );
  return (
    <section>
      <div className="page-head">
        <h1>Operations log</h1>
        <div>
          <select aria-label="entries shown" value={limit} onChange={(e) => setLimit(Number(e.target.value))}>
            <option value={100}>last 100</option>
            <option value={500}>last 500</option>
            <option value={1000}>last 1000</option>
          </select>{' '}
          <button type="button" onClick={reload}>
            Reload
          </button>
        </div>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <DataTable data={data?.operations ?? []} columns={columns} label="operations" empty="Nothing logged yet." />
    </section>
  );
}
