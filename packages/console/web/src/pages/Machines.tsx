import {
  createColumnHelper,
  getCoreRowModel,
  getFilteredRowModel,
  getSortedRowModel,
  useReactTable,
  type ColumnFiltersState,
  type FilterFn,
  type RowSelectionState,
  type SortingState,
} from '@tanstack/react-table';
import { useMemo, useState } from 'react';
import { errorText, post } from '../api';
import { TableView } from '../components/DataTable';
import { StateBadge, stateLabel } from '../components/StateBadge';
import { formatTime, useGet } from '../hooks';
import { href, navigate } from '../router';
import type { Job, JobOperation, KeySummary, MachineSummary, SessionInfo } from '../types';
import { LICENCE_METHODS, LICENCE_STATES, METHOD_LABELS } from '../vocabulary';

const col = createColumnHelper<MachineSummary>();

/** A column filter on an exact value; '' matches everything, '-' matches null. */
const exactOrNone: FilterFn<MachineSummary> = (row, columnId, wanted: string) => {
  if (wanted === '') return true;
  const value = row.getValue<string | null>(columnId);
  return wanted === '-' ? value === null : value === wanted;
};

/** Free text over the columns people search by. */
const textFilter: FilterFn<MachineSummary> = (row, _columnId, text: string) => {
  const needle = text.trim().toLowerCase();
  if (!needle) return true;
  const m = row.original;
  return [m.name, m.address, m.group, m.clientMachineId, m.installedKey, m.lastError?.code, String(m.id)].some(
    (v) => v?.toLowerCase().includes(needle) ?? false,
  );
};

export function Machines({ session }: { session: SessionInfo }) {
  const machines = useGet<{ machines: MachineSummary[] }>('/api/machines');
  const keys = useGet<{ keys: KeySummary[] }>('/api/keys');
  const [sorting, setSorting] = useState<SortingState>([]);
  const [columnFilters, setColumnFilters] = useState<ColumnFiltersState>([]);
  const [globalFilter, setGlobalFilter] = useState('');
  const [rowSelection, setRowSelection] = useState<RowSelectionState>({});
  const [keyName, setKeyName] = useState('');
  const [authority, setAuthority] = useState(session.authority ?? '');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const columns = useMemo(
    () => [
      col.display({
        id: 'select',
        header: ({ table }) => (
          <input
            type="checkbox"
            aria-label="select all"
            checked={table.getIsAllPageRowsSelected()}
            ref={(el) => {
              if (el) el.indeterminate = table.getIsSomePageRowsSelected();
            }}
            onChange={table.getToggleAllPageRowsSelectedHandler()}
          />
        ),
        cell: ({ row }) => (
          <input
            type="checkbox"
            aria-label={`select ${row.original.name}`}
            checked={row.getIsSelected()}
            onChange={row.getToggleSelectedHandler()}
          />
        ),
      }),
      col.accessor('id', { header: 'ID' }),
      col.accessor('name', {
        header: 'Name',
        cell: (c) => <a href={href(`/machines/${c.row.original.id}`)}>{c.getValue()}</a>,
      }),
      col.accessor('address', { header: 'Address', cell: (c) => <code>{c.getValue()}</code> }),
      col.accessor('group', { header: 'Product group', cell: (c) => c.getValue() ?? '—' }),
      col.accessor('state', {
        header: 'State',
        cell: (c) => <StateBadge state={c.getValue()} />,
        filterFn: exactOrNone,
        sortingFn: (a, b) => stateLabel(a.original.state).localeCompare(stateLabel(b.original.state)),
      }),
      col.accessor('method', { header: 'Method', cell: (c) => c.getValue() ?? '—', filterFn: exactOrNone }),
      col.accessor('clientMachineId', {
        header: 'Client machine ID',
        cell: (c) => <code className="small">{c.getValue() ?? '—'}</code>,
      }),
      col.accessor('installedKey', { header: 'Key', cell: (c) => <code>{c.getValue() ?? '—'}</code> }),
      col.accessor('lastSeenAt', { header: 'Last seen', cell: (c) => formatTime(c.getValue()) }),
      col.accessor((m) => m.lastError?.code ?? null, {
        id: 'lastError',
        header: 'Last error',
        cell: (c) => {
          const e = c.row.original.lastError;
          return e ? (
            <span className="error-code" title={`${e.message} (${formatTime(e.at)})`}>
              {e.code}
            </span>
          ) : (
            '—'
          );
        },
      }),
      col.accessor((m) => (m.untrusted ? 'untrusted' : 'ok'), {
        id: 'trust',
        header: 'Trust',
        cell: (c) => {
          const u = c.row.original.untrusted;
          return u ? (
            <span
              className="error-code untrusted"
              title={`${u.reason} (${formatTime(u.at)}): volact console machine enrol`}
            >
              untrusted
            </span>
          ) : (
            'ok'
          );
        },
      }),
    ],
    [],
  );

  const table = useReactTable({
    data: machines.data?.machines ?? [],
    columns,
    state: { sorting, columnFilters, globalFilter, rowSelection },
    getRowId: (m) => String(m.id),
    onSortingChange: setSorting,
    onColumnFiltersChange: setColumnFilters,
    onGlobalFilterChange: setGlobalFilter,
    onRowSelectionChange: setRowSelection,
    globalFilterFn: textFilter,
    getCoreRowModel: getCoreRowModel(),
    getFilteredRowModel: getFilteredRowModel(),
    getSortedRowModel: getSortedRowModel(),
  });

  // What is acted on is what is selected AND shown (a filter hides rows from an action too).
  const selected = table.getFilteredSelectedRowModel().rows.map((r) => r.original.id);
  const filterValue = (id: string) => (columnFilters.find((f) => f.id === id)?.value as string | undefined) ?? '';
  const setFilter = (id: string, value: string) =>
    setColumnFilters((old) => [...old.filter((f) => f.id !== id), ...(value ? [{ id, value }] : [])]);
  const clientKeys = (keys.data?.keys ?? []).filter((k) => k.type !== 'kms-host');

  const start = (operation: JobOperation, extra: { key?: string; authority?: string } = {}) => {
    setBusy(true);
    setError(null);
    post<{ job: Job }>('/api/jobs', { operation, machines: selected, ...extra }).then(
      ({ job }) => navigate(`/jobs/${job.id}`),
      (err: unknown) => {
        setError(errorText(err));
        setBusy(false);
      },
    );
  };
  const none = selected.length === 0 || busy;

  return (
    <section>
      <div className="page-head">
        <h1>Machines</h1>
        <button type="button" onClick={machines.reload}>
          Reload
        </button>
      </div>

      <div className="filters" role="search">
        <label>
          State
          <select
            aria-label="state filter"
            value={filterValue('state')}
            onChange={(e) => setFilter('state', e.target.value)}
          >
            <option value="">any</option>
            {LICENCE_STATES.map((s) => (
              <option key={s} value={s}>
                {stateLabel(s)}
              </option>
            ))}
            <option value="-">never read</option>
          </select>
        </label>
        <label>
          Method
          <select
            aria-label="method filter"
            value={filterValue('method')}
            onChange={(e) => setFilter('method', e.target.value)}
          >
            <option value="">any</option>
            {LICENCE_METHODS.map((m) => (
              <option key={m} value={m}>
                {METHOD_LABELS[m]}
              </option>
            ))}
            <option value="-">none</option>
          </select>
        </label>
        <label className="grow">
          Search
          <input
            type="search"
            placeholder="name, address, group, client machine ID, key, error"
            value={globalFilter}
            onChange={(e) => setGlobalFilter(e.target.value)}
          />
        </label>
      </div>

      <div className="bulk-bar" aria-label="bulk actions">
        <span className="count" data-testid="selected-count">
          {selected.length} of {table.getFilteredRowModel().rows.length} selected
        </span>
        <button type="button" disabled={none} onClick={() => start('refresh')}>
          Refresh
        </button>
        <span className="group">
          <select aria-label="key to install" value={keyName} onChange={(e) => setKeyName(e.target.value)}>
            <option value="">key…</option>
            {clientKeys.map((k) => (
              <option key={k.name} value={k.name}>
                {k.name} ({k.type} {k.key})
              </option>
            ))}
          </select>
          <button type="button" disabled={none || !keyName} onClick={() => start('install-key', { key: keyName })}>
            Install key
          </button>
        </span>
        <button type="button" disabled={none} onClick={() => start('activate')}>
          Activate
        </button>
        <span className="group">
          <input
            aria-label="authority URL"
            placeholder="https://authority.example"
            value={authority}
            onChange={(e) => setAuthority(e.target.value)}
          />
          <button
            type="button"
            disabled={none || !authority.trim()}
            onClick={() => start('proxy-activate', { authority: authority.trim() })}
          >
            Proxy activate
          </button>
        </span>
        <button type="button" disabled={none} onClick={() => start('reactivate')}>
          Reactivate
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {machines.error && (
        <p className="error" role="alert">
          {machines.error}
        </p>
      )}
      <TableView
        table={table}
        label="machines"
        empty={machines.loading ? 'Loading…' : 'No machines (add them with `volact console machine add` or discover)'}
      />
    </section>
  );
}
