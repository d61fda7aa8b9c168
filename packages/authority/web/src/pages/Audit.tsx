import { useState, type FormEvent } from 'react';
import { errorText, get, query } from '../api';
import { toCsv, download } from '../csv';
import { LoadError } from '../components/Messages';
import { Table } from '../components/Table';
import { formatTime, useGet } from '../hooks';
import { tail, type AuditRow, type Page } from '../types';

interface Filters {
  orgId: string;
  keyId: string;
  actor: string;
  action: string;
  from: string;
  to: string;
}
const EMPTY: Filters = { orgId: '', keyId: '', actor: '', action: '', from: '', to: '' };

/** `from`/`to` typed as local date-times, sent as ISO instants. */
function params(f: Filters) {
  const iso = (s: string) => (s ? new Date(s).toISOString() : '');
  return {
    orgId: f.orgId.trim(),
    keyId: f.keyId.trim(),
    actor: f.actor.trim(),
    action: f.action.trim(),
    from: iso(f.from),
    to: iso(f.to),
  };
}

const CSV_HEADER = ['at', 'action', 'result', 'actor', 'orgId', 'keyId', 'keyLast5', 'detail'];
const csvRow = (r: AuditRow) => [r.at, r.action, r.result, r.actor, r.orgId, r.keyId, r.keyLast5, r.detail];

/** The audit log with filters; CSV export of every matching row (pages fetched in turn). */
export function Audit({ fixedOrgId }: { fixedOrgId?: string }) {
  const [draft, setDraft] = useState<Filters>({ ...EMPTY, orgId: fixedOrgId ?? '' });
  const [filters, setFilters] = useState<Filters>(draft);
  const [cursor, setCursor] = useState<string | null>(null);
  const [exporting, setExporting] = useState<string | null>(null);
  const { data, error } = useGet<Page<AuditRow>>(`/v1/audit${query({ ...params(filters), cursor })}`);

  const apply = (event: FormEvent) => {
    event.preventDefault();
    setCursor(null);
    setFilters(draft);
  };
  const exportCsv = async () => {
    setExporting('Exporting…');
    try {
      const rows: AuditRow[] = [];
      let next: string | null = null;
      do {
        const page: Page<AuditRow> = await get<Page<AuditRow>>(
          `/v1/audit${query({ ...params(filters), cursor: next, limit: 500 })}`,
        );
        rows.push(...page.items);
        next = page.nextCursor;
      } while (next && rows.length < 100_000);
      download('audit.csv', toCsv(CSV_HEADER, rows.map(csvRow)));
      setExporting(`Exported ${rows.length} rows.`);
    } catch (err) {
      setExporting(errorText(err));
    }
  };
  const field = (name: keyof Filters, label: string, type = 'text') => (
    <label>
      {label}
      <input
        type={type}
        value={draft[name]}
        disabled={name === 'orgId' && fixedOrgId !== undefined}
        onChange={(e) => setDraft({ ...draft, [name]: e.target.value })}
      />
    </label>
  );

  return (
    <section>
      <div className="page-head">
        <h1>Audit log</h1>
        <button type="button" onClick={() => void exportCsv()}>
          Export CSV
        </button>
      </div>
      {exporting && (
        <p className="muted" role="status">
          {exporting}
        </p>
      )}
      <form className="card inline-form wrap" onSubmit={apply} aria-label="audit filters">
        {field('orgId', 'Organisation ID')}
        {field('keyId', 'Key ID')}
        {field('actor', 'Actor')}
        {field('action', 'Action prefix')}
        {field('from', 'From', 'datetime-local')}
        {field('to', 'Until', 'datetime-local')}
        <button type="submit" className="primary">
          Filter
        </button>
      </form>
      <LoadError error={error} />
      <Table
        label="audit log"
        rows={data?.items ?? []}
        rowKey={(r) => r.id}
        empty="No audit row matches."
        columns={[
          { header: 'Time', cell: (r) => formatTime(r.at) },
          { header: 'Action', cell: (r) => <code>{r.action}</code> },
          { header: 'Result', cell: (r) => r.result },
          { header: 'Actor', cell: (r) => r.actor ?? '' },
          { header: 'Organisation', cell: (r) => r.orgId ?? '' },
          { header: 'Key', cell: (r) => (r.keyLast5 ? tail(r.keyLast5) : (r.keyId ?? '')) },
          { header: 'Detail', cell: (r) => <span className="wrap">{r.detail ?? ''}</span> },
        ]}
      />
      <div className="pager">
        {cursor && (
          <button type="button" onClick={() => setCursor(null)}>
            First page
          </button>
        )}
        {data?.nextCursor && (
          <button type="button" onClick={() => setCursor(data.nextCursor)}>
            Next page
          </button>
        )}
      </div>
    </section>
  );
}
