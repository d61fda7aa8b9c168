import { useState, type FormEvent } from 'react';
import { del, post, query, seg } from '../api';
import { LoadError, Outcome } from '../components/Messages';
import { SecretDialog } from '../components/SecretDialog';
import { Table } from '../components/Table';
import { formatTime, useAction, useGet } from '../hooks';
import { tail, type ApiTokenInfo } from '../types';

const ORG_RIGHTS = ['read', 'keys', 'requests', 'tokens', 'webhooks', 'users'];
const DAY = 24 * 60 * 60 * 1000;

/**
 * API tokens: an organisation's (orgId; scopes `org:<id>:<right>`, `read` for its console) or
 * the publisher's (scopes typed, e.g. `publisher:read`). The token text is shown once.
 */
export function Tokens({ orgId }: { orgId: string | null }) {
  const { data, error, reload } = useGet<{ items: ApiTokenInfo[] } | ApiTokenInfo[]>(`/v1/tokens${query({ orgId })}`);
  const tokens = !data ? [] : Array.isArray(data) ? data : data.items;
  const [name, setName] = useState(orgId ? 'console' : '');
  const [rights, setRights] = useState<string[]>(['read']);
  const [scopes, setScopes] = useState('publisher:read');
  const [days, setDays] = useState('');
  const [created, setCreated] = useState<string | null>(null);
  const { busy, message, run } = useAction();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const chosen = orgId
      ? rights.map((r) => `org:${orgId}:${r}`)
      : scopes
          .split(/[\s,]+/)
          .map((s) => s.trim())
          .filter(Boolean);
    run(
      () =>
        post<{ token: string; info: ApiTokenInfo }>('/v1/tokens', {
          name: name.trim(),
          scopes: chosen,
          ...(days.trim() ? { expiresAt: new Date(Date.now() + Number(days) * DAY).toISOString() } : {}),
        }),
      (r) => {
        setCreated(r.token);
        reload();
        return `Created the token ${r.info.name} ending ${r.info.last5}.`;
      },
    );
  };
  const revoke = (t: ApiTokenInfo) => {
    if (!window.confirm(`Revoke the token ${t.name}? Whatever uses it stops working.`)) return;
    run(
      () => del(`/v1/tokens/${seg(t.id)}`),
      () => {
        reload();
        return `Revoked ${t.name}.`;
      },
    );
  };
  const toggle = (right: string, on: boolean) =>
    setRights((rs) => (on ? [...rs.filter((r) => r !== right), right] : rs.filter((r) => r !== right)));

  return (
    <section>
      <div className="page-head">
        <h1>API tokens</h1>
      </div>
      <p className="muted">
        {orgId
          ? 'A token with the read scope is what your volact console needs to refresh MAK counts and report usage.'
          : 'Tokens act with the scopes given, at most those of your role.'}
      </p>
      <form className="card inline-form wrap" onSubmit={submit} aria-label="create a token">
        <label>
          Token name
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
        </label>
        {orgId ? (
          <fieldset className="rights">
            <legend>Scopes</legend>
            {ORG_RIGHTS.map((r) => (
              <label key={r} className="check">
                <input type="checkbox" checked={rights.includes(r)} onChange={(e) => toggle(r, e.target.checked)} />
                {r}
              </label>
            ))}
          </fieldset>
        ) : (
          <label className="grow">
            Scopes (space separated)
            <input value={scopes} onChange={(e) => setScopes(e.target.value)} required />
          </label>
        )}
        <label>
          Expires in days (optional)
          <input type="number" min={1} value={days} onChange={(e) => setDays(e.target.value)} />
        </label>
        <button type="submit" className="primary" disabled={busy || (orgId !== null && rights.length === 0)}>
          Create token
        </button>
      </form>
      <Outcome message={message} />
      <LoadError error={error} />
      <Table
        label="tokens"
        rows={tokens}
        rowKey={(t) => t.id}
        empty="No token yet."
        columns={[
          { header: 'Name', cell: (t) => t.name },
          { header: 'Token', cell: (t) => <code>{tail(t.last5)}</code> },
          { header: 'Scopes', cell: (t) => t.scopes.join(' ') },
          { header: 'Created', cell: (t) => formatTime(t.createdAt) },
          { header: 'Last used', cell: (t) => formatTime(t.lastUsedAt) },
          { header: 'Expires', cell: (t) => formatTime(t.expiresAt) },
          {
            header: 'State',
            cell: (t) =>
              t.revokedAt ? (
                `revoked ${formatTime(t.revokedAt)}`
              ) : (
                <button type="button" className="danger" onClick={() => revoke(t)}>
                  Revoke <span className="sr-only">{t.name}</span>
                </button>
              ),
          },
        ]}
      />
      {created && (
        <SecretDialog
          title="New API token"
          secret={created}
          note="This is the only time the token is shown. Store it where the program that uses it reads it."
          onClose={() => setCreated(null)}
        />
      )}
    </section>
  );
}
