import { useState, type FormEvent } from 'react';
import { del, post, query, seg } from '../api';
import { LoadError, Outcome } from '../components/Messages';
import { SecretDialog } from '../components/SecretDialog';
import { Table } from '../components/Table';
import { formatTime, useAction, useGet } from '../hooks';
import { href } from '../router';
import { WEBHOOK_EVENT_TYPES, tail, type Page, type WebhookDelivery, type WebhookEndpoint } from '../types';

/** Webhook endpoints (the publisher's, or one organisation's with orgId), with their deliveries. */
export function Webhooks({ orgId, selected }: { orgId: string | null; selected?: string }) {
  const { data, error, reload } = useGet<{ items: WebhookEndpoint[] } | WebhookEndpoint[]>(
    `/v1/webhooks${query({ orgId })}`,
  );
  const endpoints = !data ? [] : Array.isArray(data) ? data : data.items;
  const [url, setUrl] = useState('');
  const [scopeOrg, setScopeOrg] = useState('');
  const [events, setEvents] = useState<string[]>([...WEBHOOK_EVENT_TYPES]);
  const [secret, setSecret] = useState<string | null>(null);
  const { busy, message, run } = useAction();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const target = orgId ?? (scopeOrg.trim() || null);
    run(
      () =>
        post<{ endpoint: WebhookEndpoint; secret: string }>('/v1/webhooks', {
          ...(target ? { orgId: target } : {}),
          url: url.trim(),
          events,
        }),
      (r) => {
        setSecret(r.secret);
        setUrl('');
        reload();
        return `Added ${r.endpoint.url}.`;
      },
    );
  };
  const remove = (w: WebhookEndpoint) => {
    if (!window.confirm(`Remove the webhook to ${w.url}?`)) return;
    run(
      () => del(`/v1/webhooks/${seg(w.id)}`),
      () => {
        reload();
        return `Removed ${w.url}.`;
      },
    );
  };
  const toggle = (type: string, on: boolean) =>
    setEvents((es) => (on ? [...es.filter((e) => e !== type), type] : es.filter((e) => e !== type)));
  const base = orgId ? 'org-webhooks' : 'webhooks';

  return (
    <section>
      <div className="page-head">
        <h1>Webhooks</h1>
      </div>
      <p className="muted">
        Each event is POSTed as JSON, signed with the endpoint’s secret (header Volact-Signature). Endpoints must be
        https, except to loopback.
      </p>
      <form className="card inline-form wrap" onSubmit={submit} aria-label="add a webhook">
        <label className="grow">
          Endpoint URL
          <input type="url" value={url} onChange={(e) => setUrl(e.target.value)} required placeholder="https://" />
        </label>
        {orgId === null && (
          <label>
            Organisation ID (empty: every organisation)
            <input value={scopeOrg} onChange={(e) => setScopeOrg(e.target.value)} />
          </label>
        )}
        <fieldset className="rights">
          <legend>Events</legend>
          {WEBHOOK_EVENT_TYPES.map((t) => (
            <label key={t} className="check">
              <input type="checkbox" checked={events.includes(t)} onChange={(e) => toggle(t, e.target.checked)} />
              {t}
            </label>
          ))}
        </fieldset>
        <button type="submit" className="primary" disabled={busy || events.length === 0}>
          Add webhook
        </button>
      </form>
      <Outcome message={message} />
      <LoadError error={error} />
      <Table
        label="webhooks"
        rows={endpoints}
        rowKey={(w) => w.id}
        empty="No webhook yet."
        columns={[
          { header: 'URL', cell: (w) => <a href={href(base, w.id)}>{w.url}</a> },
          { header: 'Organisation', cell: (w) => w.orgId ?? 'all' },
          { header: 'Events', cell: (w) => w.events.join(', ') },
          { header: 'Secret', cell: (w) => <code>{tail(w.secretLast5)}</code> },
          { header: 'Created', cell: (w) => formatTime(w.createdAt) },
          {
            header: 'Actions',
            cell: (w) => (
              <button type="button" className="danger" onClick={() => remove(w)}>
                Remove <span className="sr-only">{w.url}</span>
              </button>
            ),
          },
        ]}
      />
      {selected && <Deliveries endpointId={selected} />}
      {secret && (
        <SecretDialog
          title="Signing secret"
          secret={secret}
          note="This is the only time the secret is shown. The receiver checks each delivery's signature with it."
          onClose={() => setSecret(null)}
        />
      )}
    </section>
  );
}

function Deliveries({ endpointId }: { endpointId: string }) {
  const [state, setState] = useState('');
  const [cursor, setCursor] = useState<string | null>(null);
  const { data, error, reload } = useGet<Page<WebhookDelivery>>(
    `/v1/webhooks/${seg(endpointId)}/deliveries${query({ state, cursor })}`,
  );
  const { message, run } = useAction();
  const redeliver = (d: WebhookDelivery) =>
    run(
      () => post<WebhookDelivery>(`/v1/webhook-deliveries/${seg(d.id)}/redeliver`),
      () => {
        reload();
        return `Queued ${d.eventType} again.`;
      },
    );
  return (
    <section aria-label="deliveries">
      <h2>Deliveries</h2>
      <div className="filters">
        <label>
          Delivery state
          <select value={state} onChange={(e) => setState(e.target.value)}>
            <option value="">all</option>
            <option value="pending">pending</option>
            <option value="delivered">delivered</option>
            <option value="failed">failed</option>
          </select>
        </label>
        <button type="button" onClick={reload}>
          Refresh
        </button>
      </div>
      <Outcome message={message} />
      <LoadError error={error} />
      <Table
        label="deliveries"
        rows={data?.items ?? []}
        rowKey={(d) => d.id}
        empty="No delivery yet."
        columns={[
          { header: 'Created', cell: (d) => formatTime(d.createdAt) },
          { header: 'Event', cell: (d) => <code>{d.eventType}</code> },
          { header: 'Event ID', cell: (d) => <code>{d.eventId}</code> },
          { header: 'State', cell: (d) => d.state },
          { header: 'Attempts', cell: (d) => d.attempts },
          { header: 'Last answer', cell: (d) => d.lastError ?? (d.lastStatus !== null ? `HTTP ${d.lastStatus}` : '—') },
          { header: 'Next attempt', cell: (d) => formatTime(d.nextAttemptAt) },
          {
            header: 'Actions',
            cell: (d) => (
              <button type="button" onClick={() => redeliver(d)}>
                Redeliver <span className="sr-only">{d.eventType}</span>
              </button>
            ),
          },
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
