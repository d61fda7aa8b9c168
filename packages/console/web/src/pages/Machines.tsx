import {
  createColumnHelper,
  getCoreRowModel,
  useReactTable,
  type RowSelectionState,
  type SortingState,
  type Updater,
} from '@tanstack/react-table';
import { useEffect, useId, useMemo, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { post } from '../api';
import { TableView } from '../components/DataTable';
import { Dialog } from '../components/Dialog';
import { FieldError, FormErrorLine, formError, namesField, type FormError } from '../components/FieldError';
import { ReasonButton, viewerReason } from '../components/ReasonButton';
import { StateBadge, stateLabel } from '../components/StateBadge';
import { formatTime, useGet } from '../hooks';
import { href, navigate } from '../router';
import {
  MACHINE_SORTS,
  MAX_UPLOAD_BYTES,
  type DiscoverRequest,
  type Job,
  type JobMachines,
  type JobRequest,
  type KeySummary,
  type MachineSort,
  type MachineSummary,
  type SessionInfo,
} from '../types';
import { LICENCE_METHODS, LICENCE_STATES, METHOD_LABELS } from '../vocabulary';
import './machines.css';

const col = createColumnHelper<MachineSummary>();
/** A job request on machines, without them (the page adds the machines chosen). */
type OnMachines = JobRequest extends infer R
  ? R extends { machines: JobMachines }
    ? Omit<R, 'machines'>
    : never
  : never;
const PAGE_SIZES = [25, 50, 100, 250, 500] as const;
const SEARCH_DELAY_MS = 250;

/** Each sort's human name (the sort select; the table's headers say the same). */
export const SORT_LABELS: Readonly<Record<MachineSort, string>> = {
  name: 'Machine',
  address: 'Agent address',
  hostName: 'Host name',
  os: 'OS',
  productVersion: 'Product version',
  state: 'State',
  method: 'Method',
  group: 'Product group',
  installedKey: 'Key',
  kmsHost: 'KMS host',
  expiresAt: 'Licence ends',
  lastSeenAt: 'Last contact',
  lastBootAt: 'Last boot',
};

interface Page {
  readonly machines: MachineSummary[];
  readonly total: number;
  readonly offset: number;
}

const dash = (v: string | null | undefined) => v ?? '—';
const osText = (m: MachineSummary) => (m.os ? `${m.os}${m.osVersion ? ` ${m.osVersion}` : ''}` : '—');
/** The OS in a table cell: its name and the version's first word (the whole on hover and on the machine's page). */
const osShort = (m: MachineSummary) =>
  m.os ? `${m.os}${m.osVersion ? ` ${m.osVersion.split(/\s+/)[0] ?? ''}` : ''}` : '—';

/** The machines: a server-side page of the fleet, its filters, and every bulk action on the machines chosen. */
export function Machines({ session }: { session: SessionInfo }) {
  const [offset, setOffset] = useState(0);
  const [limit, setLimit] = useState<number>(50);
  const [sort, setSort] = useState<MachineSort>('name');
  const [dir, setDir] = useState<'asc' | 'desc'>('asc');
  const [search, setSearch] = useState('');
  const [q, setQ] = useState('');
  const [state, setState] = useState('');
  const [method, setMethod] = useState('');
  // Chosen machines by id (they stay chosen across pages), or every machine matching the filter.
  const [chosen, setChosen] = useState<ReadonlyMap<number, string>>(new Map());
  const [allMatching, setAllMatching] = useState(false);
  const [dialog, setDialog] = useState<'discover' | 'add' | 'remove' | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  // The search box asks the server once typing pauses.
  useEffect(() => {
    const t = window.setTimeout(() => setQ(search.trim()), SEARCH_DELAY_MS);
    return () => window.clearTimeout(t);
  }, [search]);
  // A new filter: back to the first page, nothing chosen (an action never reaches a machine not shown).
  const filterKey = `${q}\u0000${state}\u0000${method}`;
  const lastFilter = useRef(filterKey);
  useEffect(() => {
    if (lastFilter.current === filterKey) return;
    lastFilter.current = filterKey;
    setOffset(0);
    setChosen(new Map());
    setAllMatching(false);
  }, [filterKey]);

  const params = new URLSearchParams({ offset: String(offset), limit: String(limit), sort, dir });
  if (q) params.set('q', q);
  if (state) params.set('state', state);
  if (method) params.set('method', method);
  const page = useGet<Page>(`/api/machines?${params.toString()}`);
  const keys = useGet<{ keys: KeySummary[] }>('/api/keys');
  const rows = page.data?.machines ?? [];
  // An older server answered every machine with total 0: count what came.
  const total = page.data ? Math.max(page.data.total, page.data.offset + rows.length) : 0;
  const lastOffset = total === 0 ? 0 : Math.floor((total - 1) / limit) * limit;
  // Past the end (machines removed, a smaller page size): the last page.
  useEffect(() => {
    if (page.data && offset > lastOffset) setOffset(lastOffset);
  }, [page.data, offset, lastOffset]);

  const sorting: SortingState = [{ id: sort, desc: dir === 'desc' }];
  const onSortingChange = (updater: Updater<SortingState>) => {
    const next = typeof updater === 'function' ? updater(sorting) : updater;
    const first = next[0];
    if (!first) {
      // TanStack's third click clears the sort: flip instead (there is always one).
      setDir((d) => (d === 'asc' ? 'desc' : 'asc'));
    } else {
      setSort(first.id as MachineSort);
      setDir(first.desc ? 'desc' : 'asc');
    }
    setOffset(0);
  };
  const rowSelection: RowSelectionState = Object.fromEntries(
    rows.map((m) => [String(m.id), allMatching || chosen.has(m.id)]),
  );
  const onRowSelectionChange = (updater: Updater<RowSelectionState>) => {
    const next = typeof updater === 'function' ? updater(rowSelection) : updater;
    setAllMatching(false);
    setChosen((old) => {
      const out = new Map(allMatching ? rows.map((m) => [m.id, m.displayName] as const) : old);
      for (const m of rows) {
        if (next[String(m.id)]) out.set(m.id, m.displayName);
        else out.delete(m.id);
      }
      return out;
    });
  };

  const columns = useMemo(
    () => [
      col.display({
        id: 'select',
        header: ({ table }) => (
          <input
            type="checkbox"
            aria-label="select all on this page"
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
            aria-label={`select ${row.original.displayName}`}
            checked={row.getIsSelected()}
            onChange={row.getToggleSelectedHandler()}
          />
        ),
      }),
      col.accessor('displayName', {
        id: 'name',
        header: SORT_LABELS.name,
        cell: (c) => (
          <a href={href(`/machines/${c.row.original.id}`)} className="machine-name">
            {c.getValue()}
          </a>
        ),
      }),
      col.accessor('hostName', { header: SORT_LABELS.hostName, cell: (c) => dash(c.getValue()) }),
      col.accessor('os', {
        header: SORT_LABELS.os,
        cell: (c) => <span title={osText(c.row.original)}>{osShort(c.row.original)}</span>,
      }),
      col.accessor('productVersion', { header: SORT_LABELS.productVersion, cell: (c) => dash(c.getValue()) }),
      col.accessor('state', { header: SORT_LABELS.state, cell: (c) => <StateBadge state={c.getValue()} /> }),
      col.accessor('method', {
        header: SORT_LABELS.method,
        cell: (c) => {
          const v = c.getValue();
          return v ? METHOD_LABELS[v] : '—';
        },
      }),
      col.accessor('group', { header: SORT_LABELS.group, cell: (c) => dash(c.getValue()) }),
      col.accessor('installedKey', {
        header: SORT_LABELS.installedKey,
        cell: (c) => <code>{dash(c.getValue())}</code>,
      }),
      col.accessor('kmsHost', { header: SORT_LABELS.kmsHost, cell: (c) => dash(c.getValue()) }),
      col.accessor('expiresAt', { header: SORT_LABELS.expiresAt, cell: (c) => formatTime(c.getValue()) }),
      col.accessor('lastSeenAt', { header: SORT_LABELS.lastSeenAt, cell: (c) => formatTime(c.getValue()) }),
      col.accessor('lastBootAt', { header: SORT_LABELS.lastBootAt, cell: (c) => formatTime(c.getValue()) }),
      col.accessor((m) => m.lastError?.code ?? null, {
        id: 'lastError',
        header: 'Last error',
        enableSorting: false,
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
        enableSorting: false,
        cell: (c) => {
          const u = c.row.original.untrusted;
          return u ? (
            <span className="error-code untrusted" title={`${u.reason} (${formatTime(u.at)}): re-enrol it`}>
              untrusted
            </span>
          ) : (
            'ok'
          );
        },
      }),
      col.accessor('address', {
        header: SORT_LABELS.address,
        cell: (c) => <code className="small">{c.getValue()}</code>,
      }),
    ],
    [],
  );

  const table = useReactTable({
    data: rows,
    columns,
    state: { sorting, rowSelection },
    getRowId: (m) => String(m.id),
    manualSorting: true,
    manualPagination: true,
    manualFiltering: true,
    enableSortingRemoval: false,
    sortDescFirst: false,
    onSortingChange,
    onRowSelectionChange,
    getCoreRowModel: getCoreRowModel(),
  });

  const selectedCount = allMatching ? total : chosen.size;
  const filter = { ...(q ? { q } : {}), ...(state ? { state } : {}), ...(method ? { method } : {}) };
  const target: JobMachines | null = allMatching
    ? Object.keys(filter).length === 0
      ? 'all'
      : { filter }
    : chosen.size > 0
      ? [...chosen.keys()]
      : null;
  const clearChoice = () => {
    setChosen(new Map());
    setAllMatching(false);
  };
  const afterChange = (text: string) => {
    setNotice(text);
    clearChoice();
    page.reload();
  };

  const from = total === 0 ? 0 : offset + 1;
  const to = offset + rows.length;

  return (
    <section className="machines-page">
      <div className="page-head machines-head">
        <h1>Machines</h1>
        <div className="head-actions">
          <AdminButton session={session} onClick={() => setDialog('add')} label="Add machines">
            Add machines…
          </AdminButton>
          <AdminButton session={session} onClick={() => setDialog('discover')} label="Discover">
            Discover…
          </AdminButton>
          <button type="button" onClick={page.reload}>
            Reload
          </button>
        </div>
      </div>

      <div className="filters machine-filters" role="search">
        <label className="grow">
          Search
          <input
            type="search"
            aria-label="search machines"
            placeholder="name, address, host name, OS, version, CMID, key"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
        </label>
        <label>
          State
          <select aria-label="state filter" value={state} onChange={(e) => setState(e.target.value)}>
            <option value="">any</option>
            {LICENCE_STATES.map((s) => (
              <option key={s} value={s}>
                {stateLabel(s)}
              </option>
            ))}
            <option value="unknown">{stateLabel('unknown')}</option>
          </select>
        </label>
        <label>
          Method
          <select aria-label="method filter" value={method} onChange={(e) => setMethod(e.target.value)}>
            <option value="">any</option>
            {LICENCE_METHODS.map((m) => (
              <option key={m} value={m}>
                {METHOD_LABELS[m]}
              </option>
            ))}
            <option value="none">none</option>
          </select>
        </label>
        <label>
          Sort by
          <span className="sort-pick">
            <select
              aria-label="sort by"
              value={sort}
              onChange={(e) => {
                setSort(e.target.value as MachineSort);
                setOffset(0);
              }}
            >
              {MACHINE_SORTS.map((s) => (
                <option key={s} value={s}>
                  {SORT_LABELS[s]}
                </option>
              ))}
            </select>
            <button
              type="button"
              aria-label={dir === 'asc' ? 'ascending: sort descending' : 'descending: sort ascending'}
              onClick={() => {
                setDir((d) => (d === 'asc' ? 'desc' : 'asc'));
                setOffset(0);
              }}
            >
              {dir === 'asc' ? '▲' : '▼'}
            </button>
          </span>
        </label>
      </div>

      <div className="selection-bar">
        <span className="count" data-testid="selected-count">
          {selectedCount} of {total} selected
        </span>
        {!allMatching && total > 0 && total > chosen.size && (
          <button type="button" className="link-button" onClick={() => setAllMatching(true)}>
            Select all {total} matching
          </button>
        )}
        {selectedCount > 0 && (
          <button type="button" className="link-button" onClick={clearChoice}>
            Clear selection
          </button>
        )}
        {allMatching && <span className="muted">every machine matching the search and filters, on every page</span>}
      </div>

      <BulkActions
        session={session}
        target={target}
        targetNames={allMatching ? [] : [...chosen.values()]}
        keys={keys.data?.keys ?? []}
        onRemove={() => setDialog('remove')}
      />

      {notice && (
        <p className="success" role="status">
          {notice}{' '}
          <button type="button" className="link-button" onClick={() => setNotice(null)}>
            dismiss
          </button>
        </p>
      )}
      {page.error && (
        <p className="error" role="alert">
          {page.error}
        </p>
      )}
      <TableView
        table={table}
        label="machines"
        empty={
          page.loading && !page.data
            ? 'Loading…'
            : q || state || method
              ? 'No machine matches the search and filters.'
              : 'No machines yet: add them, or discover them on the network (the buttons above).'
        }
      />
      <nav className="pager" aria-label="pages">
        <span className="range">
          <span data-testid="page-range">
            {from}–{to} of {total}
          </span>
          {page.loading && page.data && <span className="muted loading"> loading…</span>}
        </span>
        <button type="button" onClick={() => setOffset(0)} disabled={offset === 0} aria-label="first page">
          « First
        </button>
        <button
          type="button"
          onClick={() => setOffset(Math.max(0, offset - limit))}
          disabled={offset === 0}
          aria-label="previous page"
        >
          ‹ Previous
        </button>
        <span className="page-no">
          page {Math.floor(offset / limit) + 1} of {Math.max(1, Math.ceil(total / limit))}
        </span>
        <button
          type="button"
          onClick={() => setOffset(offset + limit)}
          disabled={offset + limit >= total}
          aria-label="next page"
        >
          Next ›
        </button>
        <button
          type="button"
          onClick={() => setOffset(lastOffset)}
          disabled={offset >= lastOffset}
          aria-label="last page"
        >
          Last »
        </button>
        <label className="page-size">
          Rows per page
          <select
            aria-label="rows per page"
            value={limit}
            onChange={(e) => {
              const next = Number(e.target.value);
              setOffset(Math.floor(offset / next) * next);
              setLimit(next);
            }}
          >
            {PAGE_SIZES.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
      </nav>

      {dialog === 'discover' && (
        <DiscoverDialog onClose={() => setDialog(null)} onStarted={(job) => navigate(`/jobs/${job.id}`)} />
      )}
      {dialog === 'add' && (
        <AddDialog
          onClose={() => setDialog(null)}
          onAdded={(added) => {
            setDialog(null);
            afterChange(
              `Added ${added.length} machine${added.length === 1 ? '' : 's'}: ${added.map((m) => m.displayName).join(', ')}. Refresh them to read their status.`,
            );
          }}
        />
      )}
      {dialog === 'remove' && target && Array.isArray(target) && (
        <RemoveDialog
          ids={target}
          names={[...chosen.values()]}
          onClose={() => setDialog(null)}
          onRemoved={(removed) => {
            setDialog(null);
            afterChange(`Removed ${removed.length} machine${removed.length === 1 ? '' : 's'}.`);
          }}
        />
      )}
    </section>
  );
}

/** A button only an admin may use: a viewer sees it disabled, with why. */
function AdminButton({
  session,
  onClick,
  label,
  children,
}: {
  session: SessionInfo;
  onClick: () => void;
  /** Its accessible name (the text without the dialog's ellipsis). */
  label: string;
  children: string;
}) {
  const why = viewerReason(session);
  return (
    <ReasonButton reason={why} onClick={onClick} aria-label={label}>
      {children}
    </ReasonButton>
  );
}

/**
 * A bulk-bar button. Disabled for a reason every action shares (nothing chosen, a viewer) it
 * points at that reason, said once above the buttons; for its own reason (no key picked, no
 * authority) it says it next to itself. Either way the reason is visible and is its description.
 */
export function BarButton({
  common,
  commonId,
  reason,
  busy,
  onClick,
  className,
  children,
}: {
  common: string | null;
  commonId: string;
  reason?: string | null | false;
  busy?: boolean;
  onClick: () => void;
  className?: string;
  children: string;
}) {
  const ownId = useId();
  const own = !common && reason ? reason : null;
  return (
    <span className="reason-button">
      <button
        type="button"
        className={className}
        disabled={common !== null || own !== null || busy}
        aria-describedby={common ? commonId : own ? ownId : undefined}
        onClick={onClick}
      >
        {children}
      </button>
      {own && (
        <span className="reason" id={ownId}>
          {own}
        </span>
      )}
    </span>
  );
}

/**
 * The bulk actions on the machines chosen (each starts a job and opens its page), and applying a
 * confirmation file (isolated networks, step 3), which names its machines itself.
 */
function BulkActions({
  session,
  target,
  targetNames,
  keys,
  onRemove,
}: {
  session: SessionInfo;
  target: JobMachines | null;
  targetNames: readonly string[];
  keys: readonly KeySummary[];
  onRemove: () => void;
}) {
  const [keyName, setKeyName] = useState('');
  const [authority, setAuthority] = useState(session.authority ?? '');
  const [kmsHost, setKmsHost] = useState('');
  const [enrolToken, setEnrolToken] = useState('');
  const [cidFile, setCidFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<FormError | null>(null);
  const viewer = viewerReason(session);
  const common = viewer ?? (target === null ? 'select machines first' : null);
  const commonId = useId();
  const clientKeys = keys.filter((k) => k.type !== 'kms-host');

  const start = (request: JobRequest) => {
    setBusy(true);
    setError(null);
    post<{ job: Job }>('/api/jobs', request).then(
      ({ job }) => navigate(`/jobs/${job.id}`),
      (err: unknown) => {
        setError(formError(err));
        setBusy(false);
      },
    );
  };
  const run = (extra: OnMachines) => {
    if (target === null) return;
    start({ ...extra, machines: target });
  };
  const applyFile = () => {
    if (!cidFile) return;
    if (cidFile.size > MAX_UPLOAD_BYTES) {
      setError({
        code: 'FILE_TOO_LARGE',
        field: 'file',
        message: `${cidFile.name} is larger than ${MAX_UPLOAD_BYTES} bytes`,
      });
      return;
    }
    setError(null);
    cidFile.text().then(
      (text) => start({ operation: 'apply-confirmations', file: text }),
      (err: unknown) => setError(formError(err)),
    );
  };
  const noKey = clientKeys.length === 0 ? 'store a key first (Keys page)' : !keyName ? 'pick a key' : null;
  const noAuthority = authority.trim() ? null : 'the server has no --authority: give one';
  const noKmsHost = kmsHost.trim() ? null : 'type the KMS host';
  const fields = ['key', 'authority', 'kmsHost', 'token', 'file'];
  const b = { common, commonId, busy };

  return (
    <div className="bulk-bar" aria-label="bulk actions" role="group">
      {common ? (
        <p className="bar-reason" id={commonId} data-testid="bulk-reason">
          {common}
        </p>
      ) : (
        targetNames.length > 0 &&
        targetNames.length <= 5 && <p className="bar-target muted">On: {targetNames.join(', ')}</p>
      )}
      <div className="bulk-row">
        <BarButton {...b} onClick={() => run({ operation: 'refresh' })}>
          Refresh
        </BarButton>
        <BarButton {...b} onClick={() => run({ operation: 'activate' })}>
          Activate
        </BarButton>
        <BarButton {...b} onClick={() => run({ operation: 'reactivate' })}>
          Reactivate
        </BarButton>
        <BarButton {...b} onClick={() => run({ operation: 'rotate-token' })}>
          Rotate token
        </BarButton>
        <BarButton {...b} onClick={() => run({ operation: 'collect-iids' })}>
          Collect installation IDs
        </BarButton>
        <BarButton
          {...b}
          className="danger"
          reason={target !== null && !Array.isArray(target) && 'remove takes machines ticked by hand, not all matching'}
          onClick={onRemove}
        >
          Remove…
        </BarButton>
      </div>
      <div className="bulk-row">
        <span className="group">
          <select aria-label="key to install" value={keyName} onChange={(e) => setKeyName(e.target.value)}>
            <option value="">key…</option>
            {clientKeys.map((k) => (
              <option key={k.name} value={k.name}>
                {k.name} ({k.type} {k.key})
              </option>
            ))}
          </select>
          <BarButton {...b} reason={noKey} onClick={() => run({ operation: 'install-key', key: keyName })}>
            Install key
          </BarButton>
          <FieldError error={error} names={['key']} id={`${commonId}-key`} />
        </span>
        <span className="group">
          <input
            aria-label="authority URL"
            placeholder="https://authority.example"
            value={authority}
            aria-invalid={namesField(error, ['authority']) || undefined}
            onChange={(e) => setAuthority(e.target.value)}
          />
          <BarButton
            {...b}
            reason={noAuthority}
            onClick={() => run({ operation: 'proxy-activate', authority: authority.trim() })}
          >
            Proxy activate
          </BarButton>
          <FieldError error={error} names={['authority']} id={`${commonId}-authority`} />
        </span>
        <span className="group">
          <input
            aria-label="KMS host"
            placeholder="kms.example:1688"
            value={kmsHost}
            aria-invalid={namesField(error, ['kmsHost']) || undefined}
            onChange={(e) => setKmsHost(e.target.value)}
          />
          <BarButton
            {...b}
            reason={noKmsHost}
            onClick={() => run({ operation: 'set-kms-host', kmsHost: kmsHost.trim() })}
          >
            Set KMS host
          </BarButton>
          <BarButton {...b} onClick={() => run({ operation: 'set-kms-host', kmsHost: null })}>
            Clear KMS host
          </BarButton>
          <FieldError error={error} names={['kmsHost']} id={`${commonId}-kms`} />
        </span>
        <span className="group">
          <BarButton {...b} onClick={() => run({ operation: 'set-kms-host-caching', enabled: true })}>
            KMS host caching on
          </BarButton>
          <BarButton {...b} onClick={() => run({ operation: 'set-kms-host-caching', enabled: false })}>
            KMS host caching off
          </BarButton>
        </span>
        <span className="group">
          <input
            aria-label="new enrolment token (optional)"
            placeholder="new enrolment token (optional)"
            type="password"
            autoComplete="off"
            value={enrolToken}
            aria-invalid={namesField(error, ['token']) || undefined}
            onChange={(e) => setEnrolToken(e.target.value)}
          />
          <BarButton {...b} onClick={() => run({ operation: 'enrol', ...(enrolToken ? { token: enrolToken } : {}) })}>
            Re-enrol
          </BarButton>
          <FieldError error={error} names={['token']} id={`${commonId}-token`} />
        </span>
      </div>
      <div className="bulk-row apply-row">
        <label className="file-pick">
          Confirmation file (isolated networks: the file a connected machine made from collected IDs)
          <input
            type="file"
            accept=".json,application/json"
            aria-label="confirmation file"
            disabled={viewer !== null}
            aria-describedby={viewer ? commonId : undefined}
            onChange={(e) => setCidFile(e.target.files?.[0] ?? null)}
          />
        </label>
        <BarButton
          common={viewer}
          commonId={commonId}
          busy={busy}
          reason={!cidFile && 'choose the confirmation file'}
          onClick={applyFile}
        >
          Apply confirmations
        </BarButton>
        <FieldError error={error} names={['file']} id={`${commonId}-file`} />
      </div>
      <FormErrorLine error={error} fields={fields} />
    </div>
  );
}

/** Discover agents: a range, a list of addresses, or an LDAP directory, with the agents' enrolment token. */
function DiscoverDialog({ onClose, onStarted }: { onClose: () => void; onStarted: (job: Job) => void }) {
  const [mode, setMode] = useState<'range' | 'addresses' | 'ldap'>('range');
  const [range, setRange] = useState('');
  const [addresses, setAddresses] = useState('');
  const [ldap, setLdap] = useState({ url: '', base: '', filter: '', bindDn: '', password: '', agentPort: '' });
  const [token, setToken] = useState('');
  const [https, setHttps] = useState(false);
  const [error, setError] = useState<FormError | null>(null);
  const [busy, setBusy] = useState(false);
  const id = useId();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const discover: DiscoverRequest = { token, ...(https ? { https } : {}) };
    const d = discover;
    if (mode === 'range') d.range = range.trim();
    else if (mode === 'addresses') d.addresses = splitList(addresses);
    else {
      const port = ldap.agentPort.trim() ? Number(ldap.agentPort) : undefined;
      if (port !== undefined && !Number.isInteger(port)) {
        setError({ code: 'INVALID', field: 'agentPort', message: 'a port number (1-65535)' });
        return;
      }
      d.ldap = {
        url: ldap.url.trim(),
        base: ldap.base.trim(),
        ...(ldap.filter.trim() ? { filter: ldap.filter.trim() } : {}),
        ...(ldap.bindDn.trim() ? { bindDn: ldap.bindDn.trim() } : {}),
        ...(ldap.password ? { password: ldap.password } : {}),
        ...(port !== undefined ? { agentPort: port } : {}),
      };
    }
    setBusy(true);
    setError(null);
    post<{ job: Job }>('/api/jobs', { operation: 'discover', discover }).then(
      ({ job }) => onStarted(job),
      (err: unknown) => {
        setError(formError(err));
        setBusy(false);
      },
    );
  };
  const field = (name: string, label: string, input: ReactNode, hint?: string) => (
    <div className="field">
      <label htmlFor={`${id}-${name}`}>{label}</label>
      {input}
      {hint && <span className="hint">{hint}</span>}
      <FieldError error={error} names={[name]} id={`${id}-${name}-error`} />
    </div>
  );
  const inv = (name: string) => (namesField(error, [name]) ? true : undefined);
  const fields = [
    'range',
    'addresses',
    'url',
    'base',
    'filter',
    'bindDn',
    'password',
    'agentPort',
    'token',
    'https',
    'ldap',
  ];
  return (
    <Dialog title="Discover machines" onClose={onClose}>
      <form onSubmit={submit} className="dialog-form" aria-label="discover">
        <fieldset className="modes">
          <legend>Where to look</legend>
          {(
            [
              ['range', 'Scan ports or addresses'],
              ['addresses', 'Agents I list'],
              ['ldap', 'LDAP directory'],
            ] as const
          ).map(([m, label]) => (
            <label key={m} className="check">
              <input type="radio" name="mode" checked={mode === m} onChange={() => setMode(m)} /> {label}
            </label>
          ))}
        </fieldset>
        {mode === 'range' &&
          field(
            'range',
            'Range',
            <input
              id={`${id}-range`}
              value={range}
              aria-invalid={inv('range')}
              placeholder="10.0.0.1-10.0.0.254:8740 or host:8740-8750"
              onChange={(e) => setRange(e.target.value)}
            />,
            'HOST:P1-P2 (ports on one host) or A.B.C.D-A.B.C.E:PORT (addresses, one port)',
          )}
        {mode === 'addresses' &&
          field(
            'addresses',
            'Addresses',
            <textarea
              id={`${id}-addresses`}
              rows={5}
              value={addresses}
              aria-invalid={inv('addresses')}
              placeholder={'10.0.0.5:8740\nhttps://pc-7.example:8740'}
              onChange={(e) => setAddresses(e.target.value)}
            />,
            'HOST:PORT or https://HOST:PORT, one a line (or separated by commas), at most 1 024',
          )}
        {mode === 'ldap' && (
          <>
            {field(
              'url',
              'LDAP URL',
              <input
                id={`${id}-url`}
                value={ldap.url}
                aria-invalid={inv('url')}
                placeholder="ldaps://dc.example.com"
                onChange={(e) => setLdap({ ...ldap, url: e.target.value })}
              />,
            )}
            {field(
              'base',
              'Search base',
              <input
                id={`${id}-base`}
                value={ldap.base}
                aria-invalid={inv('base')}
                placeholder="OU=Computers,DC=example,DC=com"
                onChange={(e) => setLdap({ ...ldap, base: e.target.value })}
              />,
            )}
            {field(
              'filter',
              'Filter (optional)',
              <input
                id={`${id}-filter`}
                value={ldap.filter}
                aria-invalid={inv('filter')}
                placeholder="(objectClass=computer)"
                onChange={(e) => setLdap({ ...ldap, filter: e.target.value })}
              />,
            )}
            {field(
              'bindDn',
              'Bind DN (optional)',
              <input
                id={`${id}-bindDn`}
                value={ldap.bindDn}
                aria-invalid={inv('bindDn')}
                onChange={(e) => setLdap({ ...ldap, bindDn: e.target.value })}
              />,
            )}
            {field(
              'password',
              'Bind password (optional)',
              <input
                id={`${id}-password`}
                type="password"
                autoComplete="off"
                value={ldap.password}
                aria-invalid={inv('password')}
                onChange={(e) => setLdap({ ...ldap, password: e.target.value })}
              />,
            )}
            {field(
              'agentPort',
              'Agent port (optional)',
              <input
                id={`${id}-agentPort`}
                inputMode="numeric"
                value={ldap.agentPort}
                aria-invalid={inv('agentPort')}
                placeholder="8740"
                onChange={(e) => setLdap({ ...ldap, agentPort: e.target.value })}
              />,
            )}
          </>
        )}
        {field(
          'token',
          'Enrolment token',
          <input
            id={`${id}-token`}
            type="password"
            autoComplete="off"
            value={token}
            aria-invalid={inv('token')}
            onChange={(e) => setToken(e.target.value)}
          />,
          "the agents' --admin-token-file (16 characters or more)",
        )}
        <label className="check">
          <input type="checkbox" checked={https} onChange={(e) => setHttps(e.target.checked)} /> Call the agents found
          over https (agents with TLS)
        </label>
        <FormErrorLine error={error} fields={fields} />
        <div className="dialog-actions">
          <ReasonButton
            type="submit"
            className="primary"
            busy={busy}
            reason={token.length === 0 ? 'give the enrolment token' : null}
          >
            {busy ? 'Starting…' : 'Discover'}
          </ReasonButton>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

const splitList = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

/** Add machines by their agents' addresses. */
function AddDialog({ onClose, onAdded }: { onClose: () => void; onAdded: (machines: MachineSummary[]) => void }) {
  const [addresses, setAddresses] = useState('');
  const [token, setToken] = useState('');
  const [name, setName] = useState('');
  const [error, setError] = useState<FormError | null>(null);
  const [busy, setBusy] = useState(false);
  const id = useId();
  const list = splitList(addresses);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    post<{ machines: MachineSummary[] }>('/api/machines', {
      addresses: list,
      token,
      ...(name.trim() ? { name: name.trim() } : {}),
    }).then(
      ({ machines }) => onAdded(machines),
      (err: unknown) => {
        setError(formError(err));
        setBusy(false);
      },
    );
  };
  const inv = (n: string) => (namesField(error, [n]) ? true : undefined);
  return (
    <Dialog title="Add machines" onClose={onClose}>
      <form onSubmit={submit} className="dialog-form" aria-label="add machines">
        <div className="field">
          <label htmlFor={`${id}-addresses`}>Agent addresses</label>
          <textarea
            id={`${id}-addresses`}
            rows={4}
            value={addresses}
            aria-invalid={inv('addresses')}
            placeholder={'10.0.0.5:8740\nhttps://pc-7.example:8740'}
            onChange={(e) => setAddresses(e.target.value)}
          />
          <span className="hint">HOST:PORT or https://HOST:PORT, one a line</span>
          <FieldError error={error} names={['addresses']} id={`${id}-addresses-error`} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-token`}>Enrolment token</label>
          <input
            id={`${id}-token`}
            type="password"
            autoComplete="off"
            value={token}
            aria-invalid={inv('token')}
            onChange={(e) => setToken(e.target.value)}
          />
          <span className="hint">the agents&apos; --admin-token-file (16 characters or more)</span>
          <FieldError error={error} names={['token']} id={`${id}-token-error`} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-name`}>Name (optional, one address only)</label>
          <input
            id={`${id}-name`}
            value={name}
            aria-invalid={inv('name')}
            disabled={list.length > 1}
            onChange={(e) => setName(e.target.value)}
          />
          <span className="hint">
            {list.length > 1 ? 'several addresses: each is named by its host name' : 'else its host name, once read'}
          </span>
          <FieldError error={error} names={['name']} id={`${id}-name-error`} />
        </div>
        <FormErrorLine error={error} fields={['addresses', 'token', 'name']} />
        <div className="dialog-actions">
          <ReasonButton
            type="submit"
            className="primary"
            busy={busy}
            reason={
              list.length === 0 ? 'give at least one address' : token.length === 0 ? 'give the enrolment token' : null
            }
          >
            {busy ? 'Adding…' : 'Add'}
          </ReasonButton>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** Asks before removing machines (their history goes with them). */
export function RemoveDialog({
  ids,
  names,
  onClose,
  onRemoved,
}: {
  ids: readonly (number | string)[];
  names: readonly string[];
  onClose: () => void;
  onRemoved: (removed: string[]) => void;
}) {
  const [error, setError] = useState<FormError | null>(null);
  const [busy, setBusy] = useState(false);
  const remove = () => {
    setBusy(true);
    setError(null);
    post<{ removed: string[] }>('/api/machines/remove', { machines: ids }).then(
      ({ removed }) => onRemoved(removed),
      (err: unknown) => {
        setError(formError(err));
        setBusy(false);
      },
    );
  };
  return (
    <Dialog title={`Remove ${ids.length} machine${ids.length === 1 ? '' : 's'}?`} onClose={onClose}>
      <p>
        The console forgets {ids.length === 1 ? 'this machine' : 'these machines'} and{' '}
        {ids.length === 1 ? 'its' : 'their'} status history. The agents keep running; adding them again needs their
        enrolment token.
      </p>
      {names.length > 0 && (
        <p className="muted remove-names">
          {names.slice(0, 20).join(', ')}
          {names.length > 20 ? ` and ${names.length - 20} more` : ''}
        </p>
      )}
      <FormErrorLine error={error} fields={[]} />
      <div className="dialog-actions">
        <button type="button" className="danger primary" disabled={busy} onClick={remove}>
          {busy ? 'Removing…' : 'Remove'}
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}
