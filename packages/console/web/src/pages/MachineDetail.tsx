import { createColumnHelper } from '@tanstack/react-table';
import { useId, useMemo, useState, type FormEvent } from 'react';
import { post } from '../api';
import { DataTable } from '../components/DataTable';
import { CONFIRMATION_ID_GROUPS, DigitGroups, groupNamed, groupProblem } from '../components/DigitGroups';
import { FieldError, FormErrorLine, formError, namesField, type FormError } from '../components/FieldError';
import { JobLine, useJobRun } from '../components/JobRun';
import { ReasonButton, viewerReason } from '../components/ReasonButton';
import { OkBadge, StateBadge } from '../components/StateBadge';
import { formatTime, useGet } from '../hooks';
import { href, navigate } from '../router';
import type { HistoryEntry, KeySummary, MachineResult, MachineSummary, SessionInfo } from '../types';
import { METHOD_LABELS } from '../vocabulary';
import { BarButton, RemoveDialog } from './Machines';
import './machines.css';

const col = createColumnHelper<HistoryEntry>();
const empty = () => Array.from({ length: CONFIRMATION_ID_GROUPS }, () => '');
const unchecked = () => Array.from({ length: CONFIRMATION_ID_GROUPS }, () => false);

/** One machine: what is known of it, its history, and every action on it alone. */
export function MachineDetail({ id, session }: { id: string; session: SessionInfo }) {
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
    <section className="machine-detail">
      <p>
        <a href={href('/machines')}>← Machines</a>
      </p>
      <div className="page-head machines-head">
        <h1>
          {m.displayName} <StateBadge state={m.state} />
        </h1>
        <button type="button" onClick={reload}>
          Reload
        </button>
      </div>
      <div className="card">
        <dl className="facts">
          <dt>Host name</dt>
          <dd>{m.hostName ?? '— (not read yet)'}</dd>
          <dt>Name given</dt>
          <dd>{m.name}</dd>
          <dt>OS</dt>
          <dd>{m.os ? `${m.os}${m.osVersion ? ` ${m.osVersion}` : ''}` : '—'}</dd>
          <dt>Product version</dt>
          <dd>{m.productVersion ?? '—'}</dd>
          <dt>Last boot</dt>
          <dd>{formatTime(m.lastBootAt)}</dd>
          <dt>Agent address</dt>
          <dd>
            <code>{m.address}</code>
          </dd>
          <dt>State</dt>
          <dd>
            <StateBadge state={m.state} />
          </dd>
          <dt>Method</dt>
          <dd>{m.method ? METHOD_LABELS[m.method] : '—'}</dd>
          <dt>Product group</dt>
          <dd>{m.group ?? '—'}</dd>
          <dt>Installed key</dt>
          <dd>
            <code>{m.installedKey ?? '—'}</code>
            {m.installedKeyType ? ` (${m.installedKeyType})` : ''}
          </dd>
          <dt>KMS host</dt>
          <dd>{m.kmsHost ?? (m.method === 'kms' ? 'found through DNS' : '—')}</dd>
          <dt>KMS host caching</dt>
          <dd data-testid="kms-host-caching">{cachingText(latest?.discovery)}</dd>
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
          <dt>ID</dt>
          <dd>{m.id}</dd>
          <dt>Added</dt>
          <dd>{formatTime(m.addedAt)}</dd>
          <dt>Last contact</dt>
          <dd>{formatTime(m.lastSeenAt)}</dd>
          <dt>Last error</dt>
          <dd>{m.lastError ? `${m.lastError.code}: ${m.lastError.message} (${formatTime(m.lastError.at)})` : '—'}</dd>
          <dt>Trust</dt>
          <dd>
            {m.untrusted ? (
              <span className="error-code untrusted">
                untrusted since {formatTime(m.untrusted.at)}: {m.untrusted.reason} — not called until re-enrolled
                (Re-enrol below)
              </span>
            ) : (
              'ok'
            )}
          </dd>
        </dl>
      </div>
      <MachineActions machine={m} caching={latest?.discovery?.caching ?? null} session={session} onChanged={reload} />
      <PhoneConfirmation machine={m} session={session} onInstalled={reload} />
      <h2>History</h2>
      <p className="muted">One row per change of the licence status, newest first.</p>
      <DataTable data={data.history} columns={columns} label="history" empty="Never read: refresh it." />
    </section>
  );
}

/** What the machine's last status says of KMS host caching (an older agent's status says nothing). */
function cachingText(discovery: HistoryEntry['status']['discovery']): string {
  if (!discovery) return '— (not reported: refresh it)';
  if (!discovery.caching) return 'off (DNS is looked up at every attempt)';
  return discovery.cachedHost ? `on (cached host ${discovery.cachedHost})` : 'on';
}

/** The actions on this one machine: each a job on it, followed here until it finishes. */
function MachineActions({
  machine,
  caching,
  session,
  onChanged,
}: {
  machine: MachineSummary;
  /** KMS host caching as last read (null: not reported). */
  caching: boolean | null;
  session: SessionInfo;
  onChanged: () => void;
}) {
  const keys = useGet<{ keys: KeySummary[] }>('/api/keys');
  const [keyName, setKeyName] = useState('');
  const [kmsHost, setKmsHost] = useState(machine.kmsHost ?? '');
  const [authority, setAuthority] = useState(session.authority ?? '');
  const [token, setToken] = useState('');
  const [removing, setRemoving] = useState(false);
  const job = useJobRun(() => onChanged());
  const id = useId();
  const viewer = viewerReason(session);
  const viewerId = useId();
  const busy = job.busy;
  const b = { common: viewer, commonId: viewerId, busy };
  const machines = [machine.id];
  const clientKeys = (keys.data?.keys ?? []).filter((k) => k.type !== 'kms-host');
  const error: FormError | null = job.error;
  return (
    <div className="card machine-actions" role="group" aria-label="actions">
      <h2>Actions</h2>
      {viewer && (
        <p className="bar-reason" id={viewerId} data-testid="actions-reason">
          {viewer}
        </p>
      )}
      <div className="bulk-row">
        <BarButton {...b} onClick={() => job.start({ operation: 'refresh', machines })}>
          Refresh
        </BarButton>
        <BarButton {...b} onClick={() => job.start({ operation: 'activate', machines })}>
          Activate
        </BarButton>
        <BarButton {...b} onClick={() => job.start({ operation: 'reactivate', machines })}>
          Reactivate
        </BarButton>
        <BarButton {...b} onClick={() => job.start({ operation: 'collect-iids', machines })}>
          Collect installation ID
        </BarButton>
        <BarButton {...b} onClick={() => job.start({ operation: 'rotate-token', machines })}>
          Rotate token
        </BarButton>
        <BarButton {...b} className="danger" onClick={() => setRemoving(true)}>
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
          <BarButton
            {...b}
            reason={clientKeys.length === 0 ? 'store a key first (Keys page)' : !keyName && 'pick a key'}
            onClick={() => job.start({ operation: 'install-key', machines, key: keyName })}
          >
            Install key
          </BarButton>
          <FieldError error={error} names={['key']} id={`${id}-key`} />
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
            reason={!kmsHost.trim() && 'type the KMS host'}
            onClick={() => job.start({ operation: 'set-kms-host', machines, kmsHost: kmsHost.trim() })}
          >
            Set KMS host
          </BarButton>
          <BarButton
            {...b}
            reason={!machine.kmsHost && 'no KMS host is set'}
            onClick={() => job.start({ operation: 'set-kms-host', machines, kmsHost: null })}
          >
            Clear KMS host
          </BarButton>
          <FieldError error={error} names={['kmsHost']} id={`${id}-kms`} />
        </span>
        <span className="group">
          <BarButton
            {...b}
            reason={caching === true && 'KMS host caching is on already'}
            onClick={() => job.start({ operation: 'set-kms-host-caching', machines, enabled: true })}
          >
            KMS host caching on
          </BarButton>
          <BarButton
            {...b}
            reason={caching === false && 'KMS host caching is off already'}
            onClick={() => job.start({ operation: 'set-kms-host-caching', machines, enabled: false })}
          >
            KMS host caching off
          </BarButton>
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
            reason={!authority.trim() && 'the server has no --authority: give one'}
            onClick={() => job.start({ operation: 'proxy-activate', machines, authority: authority.trim() })}
          >
            Proxy activate
          </BarButton>
          <FieldError error={error} names={['authority']} id={`${id}-authority`} />
        </span>
        <span className="group">
          <input
            aria-label="new enrolment token (optional)"
            placeholder="new enrolment token (optional)"
            type="password"
            autoComplete="off"
            value={token}
            aria-invalid={namesField(error, ['token']) || undefined}
            onChange={(e) => setToken(e.target.value)}
          />
          <BarButton {...b} onClick={() => job.start({ operation: 'enrol', machines, ...(token ? { token } : {}) })}>
            Re-enrol
          </BarButton>
          <FieldError error={error} names={['token']} id={`${id}-token`} />
        </span>
      </div>
      <FormErrorLine error={error} fields={['key', 'kmsHost', 'authority', 'token']} />
      {job.job && <JobLine job={job.job} label={job.job.operation} />}
      {job.job?.finished && job.job.proxyFileId && (
        <p data-testid="iid-file">
          <a
            className="button"
            href={`/api/proxy-files/${encodeURIComponent(job.job.proxyFileId)}`}
            download={`volact-iids-${job.job.proxyFileId}.json`}
          >
            Download volact-iids-{job.job.proxyFileId}.json
          </a>{' '}
          <span className="muted small">
            signed by this console&apos;s key <code>{session.consoleKeyId}</code>: confirm it on a connected machine
            (volact authority confirm-file FILE --out CIDS --console-key-id {session.consoleKeyId}), then apply the
            confirmation file on Machines.
          </span>
        </p>
      )}
      {removing && (
        <RemoveDialog
          ids={machines}
          names={[machine.displayName]}
          onClose={() => setRemoving(false)}
          onRemoved={() => navigate('/machines')}
        />
      )}
    </div>
  );
}

/**
 * A confirmation ID read out over the phone (isolated machines without an authority): one box
 * per group of six digits, each checked as it is typed; the server installs it through the agent.
 */
function PhoneConfirmation({
  machine,
  session,
  onInstalled,
}: {
  machine: MachineSummary;
  session: SessionInfo;
  onInstalled: () => void;
}) {
  const [groups, setGroups] = useState<string[]>(empty);
  const [checked, setChecked] = useState<boolean[]>(unchecked);
  const [serverWrong, setServerWrong] = useState<number | null>(null);
  const [error, setError] = useState<FormError | null>(null);
  const [result, setResult] = useState<MachineResult | null>(null);
  const [busy, setBusy] = useState(false);
  const viewer = viewerReason(session);
  const problems = groups.map((g, i) => groupProblem(i + 1, g));
  const filled = groups.filter((g) => g.length > 0).length;
  const reason =
    viewer ??
    (filled < groups.length
      ? `type all ${groups.length} groups (${filled} so far)`
      : problems.some((p) => p !== null)
        ? 'correct the group marked wrong'
        : null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (reason) {
      setChecked(groups.map((g) => g !== ''));
      return;
    }
    setBusy(true);
    setError(null);
    setResult(null);
    setServerWrong(null);
    post<{ result: MachineResult }>(`/api/machines/${machine.id}/confirmation`, {
      confirmationId: groups.join('-'),
    }).then(
      ({ result: r }) => {
        setResult(r);
        setBusy(false);
        if (r.ok) onInstalled();
      },
      (err: unknown) => {
        const fe = formError(err);
        setError(fe);
        setServerWrong(groupNamed(fe.message));
        setBusy(false);
      },
    );
  };
  return (
    <form className="card phone-cid" onSubmit={submit} aria-label="confirmation ID by phone">
      <h2>Confirmation ID by phone</h2>
      <p className="muted">
        For a machine that cannot reach an authority: read its installation ID to the activation line, then type the
        confirmation ID they read back, six digits a box. A group whose check digit does not match is marked at once.
      </p>
      <DigitGroups
        groups={groups}
        checked={checked}
        label="confirmation ID groups"
        serverWrong={serverWrong}
        disabled={!!viewer}
        onChange={(g, c) => {
          setGroups(g);
          setChecked(c);
          setServerWrong(null);
        }}
      />
      <FormErrorLine error={error} fields={[]} />
      {result && (
        <p className={result.ok ? 'success' : 'error'} role="status" data-testid="confirmation-result">
          <OkBadge ok={result.ok} /> {result.ok ? 'Installed' : `${result.code ?? 'failed'}:`} {result.message}
          {result.state && (
            <>
              {' '}
              — now <StateBadge state={result.state} />
            </>
          )}
        </p>
      )}
      <div className="dialog-actions">
        <ReasonButton type="submit" className="primary" reason={reason} busy={busy}>
          {busy ? 'Installing…' : 'Install confirmation ID'}
        </ReasonButton>
        <button
          type="button"
          onClick={() => {
            setGroups(empty());
            setChecked(unchecked());
            setServerWrong(null);
            setError(null);
            setResult(null);
          }}
        >
          Clear
        </button>
      </div>
    </form>
  );
}
