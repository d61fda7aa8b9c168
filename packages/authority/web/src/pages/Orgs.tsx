import { useState, type FormEvent } from 'react';
import { post, query, seg } from '../api';
import { LoadError, Outcome } from '../components/Messages';
import { Table } from '../components/Table';
import { formatTime, useAction, useGet } from '../hooks';
import { href, navigate } from '../router';
import type { Contact, Organisation, Page, PrincipalInfo } from '../types';
import { OrgKeys, Pager } from './Keys';
import { Usage } from './Usage';
import { UserList } from './Users';

export function Orgs() {
  const [q, setQ] = useState('');
  const [cursor, setCursor] = useState<string | null>(null);
  const { data, error, reload } = useGet<Page<Organisation>>(`/v1/orgs${query({ q: q.trim(), cursor })}`);
  return (
    <section>
      <div className="page-head">
        <h1>Organisations</h1>
      </div>
      <CreateOrg onCreated={reload} />
      <div className="filters">
        <label className="grow">
          Search organisations
          <input
            value={q}
            onChange={(e) => {
              setQ(e.target.value);
              setCursor(null);
            }}
          />
        </label>
      </div>
      <LoadError error={error} />
      <Table
        label="organisations"
        rows={data?.items ?? []}
        rowKey={(o) => o.id}
        empty="No organisation yet."
        columns={[
          { header: 'Name', cell: (o) => <a href={href('orgs', o.id)}>{o.name}</a> },
          { header: 'Reference', cell: (o) => o.externalRef ?? '' },
          { header: 'Keys', cell: (o) => o.keyCount },
          { header: 'Contacts', cell: (o) => o.contacts.map((c) => c.email ?? c.name).join(', ') },
          { header: 'Created', cell: (o) => formatTime(o.createdAt) },
          { header: 'ID', cell: (o) => <code>{o.id}</code> },
        ]}
      />
      <Pager next={data?.nextCursor ?? null} onNext={setCursor} onFirst={cursor ? () => setCursor(null) : null} />
    </section>
  );
}

function CreateOrg({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState('');
  const [externalRef, setExternalRef] = useState('');
  const [contactName, setContactName] = useState('');
  const [contactEmail, setContactEmail] = useState('');
  const [contactPhone, setContactPhone] = useState('');
  const { busy, message, run } = useAction();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const contacts: Contact[] = contactName.trim()
      ? [
          {
            name: contactName.trim(),
            ...(contactEmail.trim() ? { email: contactEmail.trim() } : {}),
            ...(contactPhone.trim() ? { phone: contactPhone.trim() } : {}),
          },
        ]
      : [];
    run(
      () =>
        post<Organisation>('/v1/orgs', {
          name: name.trim(),
          ...(externalRef.trim() ? { externalRef: externalRef.trim() } : {}),
          contacts,
        }),
      (org) => {
        setName('');
        setExternalRef('');
        setContactName('');
        setContactEmail('');
        setContactPhone('');
        onCreated();
        navigate(`/orgs/${org.id}`);
      },
    );
  };
  return (
    <form className="card inline-form wrap" onSubmit={submit} aria-label="create an organisation">
      <label className="grow">
        Organisation name
        <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
      </label>
      <label>
        External reference
        <input value={externalRef} onChange={(e) => setExternalRef(e.target.value)} placeholder="agreement number" />
      </label>
      <label>
        Contact name
        <input value={contactName} onChange={(e) => setContactName(e.target.value)} />
      </label>
      <label>
        Contact email
        <input type="email" value={contactEmail} onChange={(e) => setContactEmail(e.target.value)} />
      </label>
      <label>
        Contact phone
        <input value={contactPhone} onChange={(e) => setContactPhone(e.target.value)} />
      </label>
      <button type="submit" className="primary" disabled={busy}>
        Create organisation
      </button>
      <Outcome message={message} />
    </form>
  );
}

export function OrgDetail({ orgId, principal }: { orgId: string; principal: PrincipalInfo }) {
  const { data: org, error } = useGet<Organisation>(`/v1/orgs/${seg(orgId)}`);
  // A new key shows in the usage table below too.
  const [minted, setMinted] = useState(0);
  return (
    <section>
      <div className="page-head">
        <h1>{org?.name ?? orgId}</h1>
        <a href={href('orgs')}>All organisations</a>
      </div>
      <LoadError error={error} />
      {org && (
        <dl className="facts card" aria-label="organisation">
          <dt>ID</dt>
          <dd>
            <code data-testid="org-id">{org.id}</code>
          </dd>
          <dt>Reference</dt>
          <dd>{org.externalRef ?? '—'}</dd>
          <dt>Contacts</dt>
          <dd>
            {org.contacts.length === 0
              ? '—'
              : org.contacts.map((c) => [c.name, c.email, c.phone].filter(Boolean).join(', ')).join('; ')}
          </dd>
          <dt>Created</dt>
          <dd>{formatTime(org.createdAt)}</dd>
        </dl>
      )}
      <OrgKeys orgId={orgId} principal={principal} onMinted={() => setMinted((n) => n + 1)} />
      <Usage key={minted} orgId={orgId} />
      <UserList orgId={orgId} principal={principal} />
    </section>
  );
}
