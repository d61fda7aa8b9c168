import { createColumnHelper } from '@tanstack/react-table';
import { useMemo, useState, type FormEvent } from 'react';
import { errorText, post } from '../api';
import { DataTable } from '../components/DataTable';
import { ReasonButton, viewerReason } from '../components/ReasonButton';
import { formatTime, useGet } from '../hooks';
import { href } from '../router';
import type { KeySummary, SessionInfo } from '../types';

const col = createColumnHelper<KeySummary>();

export function Keys({ session }: { session: SessionInfo }) {
  const { data, error, reload } = useGet<{ keys: KeySummary[] }>('/api/keys');
  const [key, setKey] = useState('');
  const [name, setName] = useState('');
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const columns = useMemo(
    () => [
      col.accessor('name', { header: 'Name' }),
      col.accessor('type', { header: 'Type' }),
      col.accessor('key', { header: 'Key', cell: (c) => <code>{c.getValue()}</code> }),
      col.accessor('addedAt', { header: 'Added', cell: (c) => formatTime(c.getValue()) }),
    ],
    [],
  );

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setMessage(null);
    post<{ key: KeySummary }>('/api/keys', { key, ...(name.trim() ? { name: name.trim() } : {}) }).then(
      ({ key: stored }) => {
        setKey('');
        setName('');
        setBusy(false);
        setMessage({ ok: true, text: `Stored ${stored.type} ${stored.key} as "${stored.name}".` });
        reload();
      },
      (err: unknown) => {
        setBusy(false);
        setMessage({ ok: false, text: errorText(err) });
      },
    );
  };

  return (
    <section>
      <div className="page-head">
        <h1>Product keys</h1>
      </div>
      <p className="muted">
        Keys are stored sealed under the console’s key file; only their last five characters are ever shown.
      </p>
      <form className="card inline-form" onSubmit={submit} aria-label="add a key">
        <label className="grow">
          Key
          <input
            value={key}
            onChange={(e) => setKey(e.target.value)}
            placeholder="XXXXX-XXXXX-XXXXX-XXXXX-XXXXX"
            autoComplete="off"
            spellCheck={false}
            required
          />
        </label>
        <label>
          Name (optional)
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="office-mak" />
        </label>
        <ReasonButton type="submit" className="primary" busy={busy} reason={viewerReason(session)}>
          Add key
        </ReasonButton>
      </form>
      {message && (
        <p className={message.ok ? 'success' : 'error'} role={message.ok ? 'status' : 'alert'}>
          {message.text}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {data && data.keys.length === 0 ? (
        <div className="empty-state" data-testid="keys-empty">
          <p>
            <strong>No key stored yet.</strong>
          </p>
          <p className="muted">
            Add a MAK or KMS host key above (or import an export with its secrets on{' '}
            <a href={href('/transfer')}>Export / import</a>); then install it on machines from{' '}
            <a href={href('/machines')}>Machines</a>.
          </p>
        </div>
      ) : (
        <DataTable data={data?.keys ?? []} columns={columns} label="keys" empty="Loading…" />
      )}
    </section>
  );
}
