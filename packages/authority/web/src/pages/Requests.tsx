import { useState, type FormEvent } from 'react';
import { post, query, seg } from '../api';
import { LoadError, Outcome } from '../components/Messages';
import { Table } from '../components/Table';
import { formatTime, useAction, useGet } from '../hooks';
import { href } from '../router';
import { holds, tail, type Page, type PrincipalInfo, type RaiseRequest } from '../types';
import { RequestTable } from './Keys';

/** The publisher's queue of limit-raise requests: approve or decline, each with a reason. */
export function Requests({ principal }: { principal: PrincipalInfo }) {
  const [state, setState] = useState('pending');
  const { data, error, reload } = useGet<Page<RaiseRequest>>(`/v1/raise-requests${query({ state })}`);
  const canDecide = holds(principal, 'publisher:requests');
  return (
    <section>
      <div className="page-head">
        <h1>Requests for more activations</h1>
      </div>
      <div className="filters">
        <label>
          State
          <select value={state} onChange={(e) => setState(e.target.value)}>
            <option value="pending">pending</option>
            <option value="approved">approved</option>
            <option value="declined">declined</option>
            <option value="">all</option>
          </select>
        </label>
        <button type="button" onClick={reload}>
          Refresh
        </button>
      </div>
      <LoadError error={error} />
      <Table
        label="requests"
        rows={data?.items ?? []}
        rowKey={(r) => r.id}
        empty={state === 'pending' ? 'No request waits for a decision.' : 'No request.'}
        columns={[
          { header: 'Asked', cell: (r) => formatTime(r.requestedAt) },
          { header: 'Organisation', cell: (r) => <a href={href('orgs', r.orgId)}>{r.orgId}</a> },
          {
            header: 'Key',
            cell: (r) => (
              <a href={href('orgs', r.orgId, 'keys', r.keyId)}>
                <code>{tail(r.keyLast5)}</code>
              </a>
            ),
          },
          { header: 'Additional', cell: (r) => r.additional },
          { header: 'Reason', cell: (r) => r.reason },
          { header: 'By', cell: (r) => r.requestedBy },
          {
            header: 'Decision',
            cell: (r) =>
              r.state === 'pending' ? (
                canDecide ? (
                  <Decide request={r} onDecided={reload} />
                ) : (
                  'pending'
                )
              ) : (
                `${r.state} by ${r.decidedBy ?? '?'}: ${r.decisionReason ?? ''}${r.limitAfter !== null ? ` (limit ${r.limitBefore} → ${r.limitAfter})` : ''}`
              ),
          },
        ]}
      />
    </section>
  );
}

function Decide({ request, onDecided }: { request: RaiseRequest; onDecided: () => void }) {
  const [reason, setReason] = useState('');
  const { busy, message, run } = useAction();
  const decide = (decision: 'approve' | 'decline') => (event?: FormEvent) => {
    event?.preventDefault();
    run(
      () => post<RaiseRequest>(`/v1/raise-requests/${seg(request.id)}/decision`, { decision, reason: reason.trim() }),
      (r) => {
        onDecided();
        return `${r.state}${r.limitAfter !== null ? `: the limit is now ${r.limitAfter}` : ''}.`;
      },
    );
  };
  const who = `request ${request.additional} for ${tail(request.keyLast5)}`;
  return (
    <form className="decide" onSubmit={decide('approve')} aria-label={`decide ${who}`}>
      <label>
        Decision reason
        <input value={reason} onChange={(e) => setReason(e.target.value)} required maxLength={500} />
      </label>
      <span className="row-actions">
        <button type="submit" className="primary" disabled={busy}>
          Approve
        </button>
        <button
          type="button"
          className="danger"
          disabled={busy || reason.trim() === ''}
          onClick={() => decide('decline')()}
        >
          Decline
        </button>
      </span>
      <Outcome message={message} />
    </form>
  );
}

/** The organisation's own requests (portal). */
export function OrgRequests({ orgId }: { orgId: string }) {
  const { data, error } = useGet<Page<RaiseRequest>>(`/v1/raise-requests${query({ orgId })}`);
  return (
    <section>
      <div className="page-head">
        <h1>Requests for more activations</h1>
      </div>
      <p className="muted">Ask for more on a key’s page; the publisher approves or declines with a reason.</p>
      <LoadError error={error} />
      <RequestTable rows={data?.items ?? []} label="requests" />
    </section>
  );
}
