import { useState, type FormEvent } from 'react';
import { del, patch, post, query, seg } from '../api';
import { LoadError, Outcome } from '../components/Messages';
import { Table } from '../components/Table';
import { formatTime, useAction, useGet } from '../hooks';
import { holds, type PrincipalInfo, type User } from '../types';

const PUBLISHER_ROLES = ['owner', 'admin', 'support', 'read-only'];
const ORG_ROLES = ['org-admin', 'viewer'];

/** Users of one organisation (orgId) or the publisher's own (orgId null). */
export function UserList({ orgId, principal }: { orgId: string | null; principal: PrincipalInfo }) {
  const { data, error, reload } = useGet<{ items: User[] } | User[]>(`/v1/users${query({ orgId })}`);
  const users = !data ? [] : Array.isArray(data) ? data : data.items;
  const canManage = holds(principal, 'publisher:users') || (orgId !== null && holds(principal, `org:${orgId}:users`));
  const shown = orgId === null ? users.filter((u) => u.orgId === null) : users;
  const { message, run } = useAction();
  const setDisabled = (u: User, disabled: boolean) =>
    run(
      () => patch<User>(`/v1/users/${seg(u.id)}`, { disabled }),
      () => {
        reload();
        return `${u.email} is ${disabled ? 'disabled' : 'enabled'}.`;
      },
    );
  const remove = (u: User) => {
    if (!window.confirm(`Remove ${u.email}? Their sessions and tokens end.`)) return;
    run(
      () => del(`/v1/users/${seg(u.id)}`),
      () => {
        reload();
        return `${u.email} is removed.`;
      },
    );
  };
  return (
    <section aria-label="users">
      <h2>{orgId === null ? 'Publisher users' : 'Users of this organisation'}</h2>
      {canManage && <AddUser orgId={orgId} onAdded={reload} />}
      <Outcome message={message} />
      <LoadError error={error} />
      <Table
        label="users"
        rows={shown}
        rowKey={(u) => u.id}
        empty="No user yet."
        columns={[
          { header: 'Email', cell: (u) => u.email },
          { header: 'Name', cell: (u) => u.name },
          { header: 'Role', cell: (u) => u.role },
          { header: 'Last sign-in', cell: (u) => formatTime(u.lastSignInAt) },
          { header: 'State', cell: (u) => (u.disabledAt ? 'disabled' : 'active') },
          {
            header: 'Actions',
            cell: (u) =>
              canManage ? (
                <span className="row-actions">
                  <button type="button" onClick={() => setDisabled(u, u.disabledAt === null)}>
                    {u.disabledAt ? 'Enable' : 'Disable'} <span className="sr-only">{u.email}</span>
                  </button>
                  <button type="button" className="danger" onClick={() => remove(u)}>
                    Remove <span className="sr-only">{u.email}</span>
                  </button>
                </span>
              ) : null,
          },
        ]}
      />
    </section>
  );
}

function AddUser({ orgId, onAdded }: { orgId: string | null; onAdded: () => void }) {
  const roles = orgId === null ? PUBLISHER_ROLES : ORG_ROLES;
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState(roles[roles.length - 1] as string);
  const [password, setPassword] = useState('');
  const { busy, message, run } = useAction();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    run(
      () =>
        post<User>('/v1/users', {
          email: email.trim(),
          name: name.trim(),
          role,
          password,
          ...(orgId ? { orgId } : {}),
        }),
      (u) => {
        setEmail('');
        setName('');
        setPassword('');
        onAdded();
        return `Added ${u.email} (${u.role}).`;
      },
    );
  };
  return (
    <form className="card inline-form wrap" onSubmit={submit} aria-label="add a user">
      <label>
        User email
        <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} required autoComplete="off" />
      </label>
      <label>
        User name
        <input value={name} onChange={(e) => setName(e.target.value)} required />
      </label>
      <label>
        Role
        <select value={role} onChange={(e) => setRole(e.target.value)}>
          {roles.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </label>
      <label>
        Initial password
        <input
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          minLength={12}
          required
          autoComplete="new-password"
        />
      </label>
      <button type="submit" className="primary" disabled={busy}>
        Add user
      </button>
      <Outcome message={message} />
    </form>
  );
}

export function Users({ principal }: { principal: PrincipalInfo }) {
  return (
    <section>
      <div className="page-head">
        <h1>Users</h1>
      </div>
      <p className="muted">Organisation users are managed on their organisation’s page.</p>
      <UserList orgId={null} principal={principal} />
    </section>
  );
}
