import { useState, type FormEvent } from 'react';
import { get, post, put, query, seg } from '../api';
import { LoadError, Outcome } from '../components/Messages';
import { SecretDialog } from '../components/SecretDialog';
import { Table } from '../components/Table';
import { UsageChart } from '../components/UsageChart';
import { formatTime, useAction, useGet } from '../hooks';
import { href } from '../router';
import {
  holds,
  tail,
  type Group,
  type HostSummary,
  type InstallationSummary,
  type KeySummary,
  type MintedKey,
  type Page,
  type PrincipalInfo,
  type RaiseRequest,
  type UsagePoint,
} from '../types';

const TYPE_NAMES: Record<string, string> = { mak: 'MAK', 'kms-host': 'KMS host', retail: 'Retail' };
export const typeName = (t: string): string => TYPE_NAMES[t] ?? t;

function keyState(k: KeySummary): string {
  if (k.revokedAt) return 'revoked';
  if (k.remaining <= 0) return 'used up';
  return 'active';
}

/** The groups the publisher can mint keys of (`GET /v1/groups`, a page or a plain list). */
function useGroups(enabled: boolean): Group[] {
  const { data } = useGet<Page<Group> | Group[]>(enabled ? '/v1/groups' : null);
  if (!data) return [];
  return Array.isArray(data) ? data : data.items;
}

/** An organisation's keys: both faces; the publisher also mints here. */
export function OrgKeys({
  orgId,
  principal,
  onMinted,
}: {
  orgId: string;
  principal: PrincipalInfo;
  onMinted?: () => void;
}) {
  const [type, setType] = useState('');
  const [group, setGroup] = useState('');
  const [revoked, setRevoked] = useState('');
  const [q, setQ] = useState('');
  const [cursor, setCursor] = useState<string | null>(null);
  const { data, error, reload } = useGet<Page<KeySummary>>(
    `/v1/orgs/${seg(orgId)}/keys${query({ type, group: group.trim(), revoked, q: q.trim(), cursor })}`,
  );
  const canMint = holds(principal, 'publisher:keys');
  return (
    <section aria-label="keys">
      <h2>Keys</h2>
      {canMint && (
        <MintForm
          orgId={orgId}
          onMinted={() => {
            reload();
            onMinted?.();
          }}
        />
      )}
      <div className="filters">
        <label>
          Type
          <select
            value={type}
            onChange={(e) => {
              setType(e.target.value);
              setCursor(null);
            }}
          >
            <option value="">all</option>
            <option value="mak">MAK</option>
            <option value="kms-host">KMS host</option>
            <option value="retail">Retail</option>
          </select>
        </label>
        <label>
          Group
          <input
            value={group}
            onChange={(e) => {
              setGroup(e.target.value);
              setCursor(null);
            }}
          />
        </label>
        <label>
          Revoked
          <select
            value={revoked}
            onChange={(e) => {
              setRevoked(e.target.value);
              setCursor(null);
            }}
          >
            <option value="">all</option>
            <option value="false">not revoked</option>
            <option value="true">revoked</option>
          </select>
        </label>
        <label className="grow">
          Search (last five characters or note)
          <input
            value={q}
            onChange={(e) => {
              setQ(e.target.value);
              setCursor(null);
            }}
          />
        </label>
        <button type="button" onClick={reload}>
          Refresh
        </button>
      </div>
      <LoadError error={error} />
      <Table
        label="keys"
        rows={data?.items ?? []}
        rowKey={(k) => k.keyId}
        empty="No key yet."
        columns={[
          {
            header: 'Key',
            cell: (k) => (
              <a href={href('orgs', orgId, 'keys', k.keyId)} aria-label={`key ending ${k.last5}`}>
                <code>{tail(k.last5)}</code>
              </a>
            ),
          },
          { header: 'Type', cell: (k) => typeName(k.type) },
          { header: 'Groups', cell: (k) => k.groups.join(', ') },
          { header: 'Used', cell: (k) => <span data-testid={`used-${k.last5}`}>{k.used}</span> },
          { header: 'Limit', cell: (k) => <span data-testid={`limit-${k.last5}`}>{k.limit}</span> },
          { header: 'Remaining', cell: (k) => k.remaining },
          {
            header: 'State',
            cell: (k) => <span className={`badge state-${keyState(k).replace(' ', '-')}`}>{keyState(k)}</span>,
          },
          { header: 'Note', cell: (k) => k.note ?? '' },
        ]}
      />
      <Pager next={data?.nextCursor ?? null} onNext={setCursor} onFirst={cursor ? () => setCursor(null) : null} />
    </section>
  );
}

function MintForm({ orgId, onMinted }: { orgId: string; onMinted: () => void }) {
  const groups = useGroups(true);
  const [type, setType] = useState<'mak' | 'kms-host'>('mak');
  const [group, setGroup] = useState('');
  const [limit, setLimit] = useState('100');
  const [hosts, setHosts] = useState('6');
  const [note, setNote] = useState('');
  const [minted, setMinted] = useState<MintedKey | null>(null);
  const { busy, message, run } = useAction();
  const chosen = group || groups[0]?.name || '';

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const body = {
      type,
      groups: [chosen],
      ...(type === 'mak' ? { limit: Number(limit) } : { hosts: Number(hosts) }),
      ...(note.trim() ? { note: note.trim() } : {}),
    };
    run(
      () => post<MintedKey>(`/v1/orgs/${seg(orgId)}/keys`, body),
      (k) => {
        setMinted(k);
        setNote('');
        onMinted();
        return `Minted a ${typeName(k.type)} ending ${k.key.replace(/-/g, '').slice(-5)}.`;
      },
    );
  };

  return (
    <>
      <form className="card inline-form" onSubmit={submit} aria-label="mint a key">
        <label>
          Key type
          <select value={type} onChange={(e) => setType(e.target.value as 'mak' | 'kms-host')}>
            <option value="mak">MAK</option>
            <option value="kms-host">KMS host key</option>
          </select>
        </label>
        <label>
          Product group
          <select value={chosen} onChange={(e) => setGroup(e.target.value)} required>
            {groups.length === 0 && <option value="">no group yet</option>}
            {groups.map((g) => (
              <option key={g.name} value={g.name}>
                {g.name}
              </option>
            ))}
          </select>
        </label>
        {type === 'mak' ? (
          <label>
            Activation limit
            <input type="number" min={1} value={limit} onChange={(e) => setLimit(e.target.value)} required />
          </label>
        ) : (
          <label>
            Hosts
            <input type="number" min={1} value={hosts} onChange={(e) => setHosts(e.target.value)} required />
          </label>
        )}
        <label className="grow">
          Note
          <input value={note} onChange={(e) => setNote(e.target.value)} maxLength={500} />
        </label>
        <button type="submit" className="primary" disabled={busy || !chosen}>
          Mint key
        </button>
      </form>
      <Outcome message={message} />
      {minted && (
        <SecretDialog
          title={`New ${typeName(minted.type)}`}
          secret={minted.key}
          note="This is the only time the full key is shown here. Copy it for the customer now."
          onClose={() => setMinted(null)}
        />
      )}
    </>
  );
}

/** One key: both faces (the publisher raises and revokes; the organisation reveals and asks for more). */
export function KeyDetail({ orgId, keyId, principal }: { orgId: string; keyId: string; principal: PrincipalInfo }) {
  const base = `/v1/orgs/${seg(orgId)}/keys/${seg(keyId)}`;
  const { data: key, error, reload } = useGet<KeySummary>(base);
  const history = useGet<{ items: UsagePoint[] }>(`/v1/orgs/${seg(orgId)}/usage/history${query({ keyId, days: 30 })}`);
  const isPublisher = holds(principal, 'publisher:keys');
  const canKeys = holds(principal, `org:${orgId}:keys`);
  const canRequest = !isPublisher && holds(principal, `org:${orgId}:requests`);
  return (
    <section>
      <div className="page-head">
        <h1>{key ? `${typeName(key.type)} ${tail(key.last5)}` : 'Key'}</h1>
        <a href={isPublisher ? href('orgs', orgId) : href('keys')}>Back to keys</a>
      </div>
      <LoadError error={error} />
      {key && (
        <>
          <dl className="facts card" aria-label="key facts">
            <dt>Limit</dt>
            <dd data-testid="key-limit">{key.limit}</dd>
            <dt>Used</dt>
            <dd data-testid="key-used">{key.used}</dd>
            <dt>Remaining</dt>
            <dd data-testid="key-remaining">{key.remaining}</dd>
            <dt>Groups</dt>
            <dd>{key.groups.join(', ')}</dd>
            <dt>Key ID</dt>
            <dd>
              <code>{key.keyId}</code>
            </dd>
            <dt>Created</dt>
            <dd>{formatTime(key.createdAt)}</dd>
            <dt>State</dt>
            <dd>{key.revokedAt ? `revoked ${formatTime(key.revokedAt)}` : keyState(key)}</dd>
            {key.activationsPerHost !== null && (
              <>
                <dt>Activations per host</dt>
                <dd>{key.activationsPerHost}</dd>
              </>
            )}
          </dl>
          {canKeys && !isPublisher && key.recoverable && <Reveal base={base} />}
          <NoteForm base={base} note={key.note} editable={canKeys} onSaved={reload} />
          {isPublisher && <PublisherKeyActions base={base} keyInfo={key} onChanged={reload} />}
          {canRequest && !key.revokedAt && <AskForMore orgId={orgId} keyId={keyId} onAsked={reload} />}
          <h2>Activations over the last 30 days</h2>
          <LoadError error={history.error} />
          {history.data && <UsageChart points={history.data.items} label="activations per day" />}
          {key.type === 'kms-host' ? <Hosts base={base} /> : <Installations base={base} />}
          <KeyRequests orgId={orgId} keyId={keyId} />
        </>
      )}
    </section>
  );
}

function Reveal({ base }: { base: string }) {
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState('');
  const [key, setKey] = useState<string | null>(null);
  const { busy, message, run } = useAction();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    run(
      () => post<{ key: string }>(`${base}/reveal`, { password }),
      (r) => {
        setPassword('');
        setOpen(false);
        setKey(r.key);
      },
    );
  };
  return (
    <div className="card reveal">
      {!open ? (
        <button type="button" onClick={() => setOpen(true)}>
          Reveal full key
        </button>
      ) : (
        <form className="inline-form" onSubmit={submit} aria-label="reveal the key">
          <label className="grow">
            Your password (again)
            <input
              type="password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              autoComplete="current-password"
              required
            />
          </label>
          <button type="submit" className="primary" disabled={busy}>
            Reveal
          </button>
          <button type="button" onClick={() => setOpen(false)}>
            Cancel
          </button>
        </form>
      )}
      <Outcome message={message} />
      {key && (
        <SecretDialog
          title="The full key"
          secret={key}
          note="Revealing a key is recorded in the audit log with your name."
          onClose={() => setKey(null)}
        />
      )}
    </div>
  );
}

function NoteForm({
  base,
  note,
  editable,
  onSaved,
}: {
  base: string;
  note: string | null;
  editable: boolean;
  onSaved: () => void;
}) {
  const [text, setText] = useState(note ?? '');
  const { busy, message, run } = useAction();
  if (!editable) return note ? <p className="muted">Note: {note}</p> : null;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    run(
      () => put(`${base}/note`, { note: text.trim() === '' ? null : text.trim() }),
      () => {
        onSaved();
        return 'Note saved.';
      },
    );
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="note">
      <label className="grow">
        Note
        <input value={text} onChange={(e) => setText(e.target.value)} maxLength={500} />
      </label>
      <button type="submit" disabled={busy}>
        Save note
      </button>
      <Outcome message={message} />
    </form>
  );
}

function PublisherKeyActions({
  base,
  keyInfo,
  onChanged,
}: {
  base: string;
  keyInfo: KeySummary;
  onChanged: () => void;
}) {
  const [limit, setLimit] = useState(String(keyInfo.limit));
  const [reason, setReason] = useState('');
  const { busy, message, run } = useAction();
  const raise = (event: FormEvent) => {
    event.preventDefault();
    run(
      () => post<KeySummary>(`${base}/limit`, { limit: Number(limit) }),
      (k) => {
        onChanged();
        return `The limit is now ${k.limit}.`;
      },
    );
  };
  const revoke = (event: FormEvent) => {
    event.preventDefault();
    if (!window.confirm(`Revoke the key ending ${keyInfo.last5}? Machines it activated keep their licences.`)) return;
    run(
      () => post<KeySummary>(`${base}/revoke`, reason.trim() ? { reason: reason.trim() } : {}),
      () => {
        onChanged();
        return 'The key is revoked.';
      },
    );
  };
  return (
    <div className="card actions-card">
      {keyInfo.type !== 'kms-host' && (
        <form className="inline-form" onSubmit={raise} aria-label="set the limit">
          <label>
            New limit
            <input type="number" min={keyInfo.used} value={limit} onChange={(e) => setLimit(e.target.value)} />
          </label>
          <button type="submit" disabled={busy}>
            Set limit
          </button>
        </form>
      )}
      {!keyInfo.revokedAt && (
        <form className="inline-form" onSubmit={revoke} aria-label="revoke the key">
          <label className="grow">
            Revocation reason
            <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={200} />
          </label>
          <button type="submit" className="danger" disabled={busy}>
            Revoke key
          </button>
        </form>
      )}
      <Outcome message={message} />
    </div>
  );
}

function AskForMore({ orgId, keyId, onAsked }: { orgId: string; keyId: string; onAsked: () => void }) {
  const [additional, setAdditional] = useState('50');
  const [reason, setReason] = useState('');
  const { busy, message, run } = useAction();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    run(
      () =>
        post<RaiseRequest>(`/v1/orgs/${seg(orgId)}/raise-requests`, {
          keyId,
          additional: Number(additional),
          reason: reason.trim(),
        }),
      (r) => {
        setReason('');
        onAsked();
        return `Asked for ${r.additional} more activations; the publisher decides.`;
      },
    );
  };
  return (
    <form className="card inline-form" onSubmit={submit} aria-label="request more activations">
      <label>
        Additional activations
        <input type="number" min={1} value={additional} onChange={(e) => setAdditional(e.target.value)} required />
      </label>
      <label className="grow">
        Reason
        <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={500} required />
      </label>
      <button type="submit" className="primary" disabled={busy}>
        Request more activations
      </button>
      <Outcome message={message} />
    </form>
  );
}

function KeyRequests({ orgId, keyId }: { orgId: string; keyId: string }) {
  const { data } = useGet<Page<RaiseRequest>>(`/v1/raise-requests${query({ orgId })}`);
  const rows = (data?.items ?? []).filter((r) => r.keyId === keyId);
  if (rows.length === 0) return null;
  return (
    <>
      <h2>Requests for more activations</h2>
      <RequestTable rows={rows} label="requests of this key" />
    </>
  );
}

export function RequestTable({ rows, label }: { rows: readonly RaiseRequest[]; label: string }) {
  return (
    <Table
      label={label}
      rows={rows}
      rowKey={(r) => r.id}
      empty="No request."
      columns={[
        { header: 'Asked', cell: (r) => formatTime(r.requestedAt) },
        { header: 'Key', cell: (r) => <code>{tail(r.keyLast5)}</code> },
        { header: 'Additional', cell: (r) => r.additional },
        { header: 'Reason', cell: (r) => r.reason },
        { header: 'By', cell: (r) => r.requestedBy },
        { header: 'State', cell: (r) => <span className={`badge req-${r.state}`}>{r.state}</span> },
        {
          header: 'Decision',
          cell: (r) =>
            r.decidedAt
              ? `${r.decidedBy ?? ''}: ${r.decisionReason ?? ''}${r.limitAfter !== null ? ` (limit ${r.limitBefore} → ${r.limitAfter})` : ''}`
              : '—',
        },
      ]}
    />
  );
}

function Installations({ base }: { base: string }) {
  const [cursor, setCursor] = useState<string | null>(null);
  const { data, error } = useGet<Page<InstallationSummary>>(`${base}/installations${query({ cursor, limit: 100 })}`);
  return (
    <>
      <h2>Installations</h2>
      <LoadError error={error} />
      <Table
        label="installations"
        rows={data?.items ?? []}
        rowKey={(i) => i.installationId}
        empty="No installation activated yet."
        columns={[
          { header: 'Installation ID', cell: (i) => <code className="wrap">{i.installationId}</code> },
          { header: 'Channel', cell: (i) => i.channel },
          { header: 'Activations', cell: (i) => i.activationCount },
          { header: 'First', cell: (i) => formatTime(i.firstActivatedAt) },
          { header: 'Last', cell: (i) => formatTime(i.lastActivatedAt) },
        ]}
      />
      <Pager next={data?.nextCursor ?? null} onFirst={cursor ? () => setCursor(null) : null} onNext={setCursor} />
    </>
  );
}

function Hosts({ base }: { base: string }) {
  const [cursor, setCursor] = useState<string | null>(null);
  const { data, error } = useGet<Page<HostSummary>>(`${base}/hosts${query({ cursor, limit: 100 })}`);
  return (
    <>
      <h2>KMS hosts activated</h2>
      <LoadError error={error} />
      <Table
        label="hosts"
        rows={data?.items ?? []}
        rowKey={(h) => h.hardwareId}
        empty="No host activated yet."
        columns={[
          { header: 'Hardware', cell: (h) => <code>{h.hardwareId}</code> },
          { header: 'Activations', cell: (h) => h.activationCount },
          { header: 'First', cell: (h) => formatTime(h.firstActivatedAt) },
          { header: 'Last', cell: (h) => formatTime(h.lastActivatedAt) },
          { header: 'Certificate', cell: (h) => <code>{h.certificateSerial}</code> },
          { header: 'Certificate expires', cell: (h) => formatTime(h.certificateExpiresAt) },
        ]}
      />
      <Pager next={data?.nextCursor ?? null} onFirst={cursor ? () => setCursor(null) : null} onNext={setCursor} />
    </>
  );
}

export function Pager({
  next,
  onNext,
  onFirst,
}: {
  next: string | null;
  onNext: (cursor: string) => void;
  onFirst: (() => void) | null;
}) {
  if (!next && !onFirst) return null;
  return (
    <div className="pager">
      {onFirst && (
        <button type="button" onClick={onFirst}>
          First page
        </button>
      )}
      {next && (
        <button type="button" onClick={() => onNext(next)}>
          Next page
        </button>
      )}
    </div>
  );
}

/** Fetches a key by its last five characters or key ID within an organisation (the search box). */
export const findKey = (orgId: string, ref: string): Promise<KeySummary> =>
  get<KeySummary>(`/v1/orgs/${seg(orgId)}/keys/${seg(ref)}`);
