import { useCallback, useId, useState, type FormEvent } from 'react';
import { post } from '../api';
import { Dialog } from '../components/Dialog';
import { FieldError, FormErrorLine, formError, type FormError } from '../components/FieldError';
import { ReasonButton } from '../components/ReasonButton';
import { formatTime, useGet } from '../hooks';
import { USER_ROLES, type SessionInfo, type UserRole, type UserSummary } from '../types';

const ROLE_TEXT: Record<UserRole, string> = {
  admin: 'admin (everything)',
  viewer: 'viewer (reads only)',
};
const MIN_PASSWORD = 12;
const FIELDS = ['user', 'password', 'role'] as const;
type Field = (typeof FIELDS)[number];
const FIELD_BY_CODE: Record<string, Field> = {
  ADMIN_NAME_INVALID: 'user',
  ADMIN_EXISTS: 'user',
  ADMIN_PASSWORD_INVALID: 'password',
  ADMIN_ROLE_INVALID: 'role',
};
const enc = encodeURIComponent;

/** The error, placed at the field its message names, else at the one its code is about. */
function placed(err: unknown): FormError {
  const e = formError(err);
  const byCode = FIELD_BY_CODE[e.code];
  return e.field === null && byCode ? { ...e, field: byCode } : e;
}

/** The add-a-user form: each error next to the field it names. */
function AddUser({ onAdded }: { onAdded: (user: UserSummary) => void }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<UserRole>('viewer');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<FormError | null>(null);
  const ids = { user: useId(), password: useId(), role: useId(), select: useId() };
  const at = (f: Field) => error?.field === f;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    post<{ user: UserSummary }>('/api/users', { user: user.trim(), password, role }).then(
      ({ user: added }) => {
        setBusy(false);
        setUser('');
        setPassword('');
        onAdded(added);
      },
      (err: unknown) => {
        setBusy(false);
        setError(placed(err));
      },
    );
  };
  const short = password.length > 0 && password.length < MIN_PASSWORD;
  return (
    <form className="card inline-form" onSubmit={submit} aria-label="add a user">
      <div className="field">
        <label>
          User name
          <input
            value={user}
            onChange={(e) => setUser(e.target.value)}
            autoComplete="off"
            required
            aria-invalid={at('user') ? true : undefined}
            aria-describedby={at('user') ? ids.user : undefined}
          />
        </label>
        <FieldError id={ids.user} error={error} names={['user']} />
      </div>
      <div className="field">
        <label>
          Password
          <input
            type="password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            autoComplete="new-password"
            required
            aria-invalid={at('password') ? true : undefined}
            aria-describedby={at('password') ? ids.password : undefined}
          />
        </label>
        <FieldError id={ids.password} error={error} names={['password']} />
      </div>
      <div className="field">
        <label htmlFor={ids.select}>Role</label>
        <select
          id={ids.select}
          value={role}
          onChange={(e) => setRole(e.target.value as UserRole)}
          aria-describedby={at('role') ? ids.role : undefined}
        >
          {USER_ROLES.map((r) => (
            <option key={r} value={r}>
              {ROLE_TEXT[r]}
            </option>
          ))}
        </select>
        <FieldError id={ids.role} error={error} names={['role']} />
      </div>
      <ReasonButton
        type="submit"
        className="primary"
        busy={busy}
        reason={
          !user.trim()
            ? 'give a user name'
            : short || !password
              ? `the password needs ${MIN_PASSWORD} characters or more`
              : null
        }
      >
        Add user
      </ReasonButton>
      <FormErrorLine error={error} fields={FIELDS} />
    </form>
  );
}

/** A new password for one user (a dialog). */
function ResetPassword({ name, onDone }: { name: string; onDone: (message: string | null) => void }) {
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<FormError | null>(null);
  const id = useId();
  const close = useCallback(() => onDone(null), [onDone]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    post(`/api/users/${enc(name)}/password`, { password }).then(
      () => onDone(`New password set for ${name}.`),
      (err: unknown) => {
        setBusy(false);
        // Whatever it names, it is about the one field of this form.
        setError({ ...placed(err), field: 'password' });
      },
    );
  };
  return (
    <Dialog title={`New password for ${name}`} onClose={close}>
      <form onSubmit={submit} className="stack">
        <div className="field">
          <label>
            New password ({MIN_PASSWORD}+ characters)
            <input
              type="password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              autoComplete="new-password"
              aria-describedby={error ? id : undefined}
            />
          </label>
          <FieldError id={id} error={error} names={['password']} />
        </div>
        <p className="muted small">Sessions already open stay open until they end or the server restarts.</p>
        <div className="actions">
          <ReasonButton
            type="submit"
            className="primary"
            busy={busy}
            reason={password.length < MIN_PASSWORD ? `the password needs ${MIN_PASSWORD} characters or more` : null}
          >
            Set password
          </ReasonButton>
          <button type="button" onClick={close}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** Confirms removing a user. */
function RemoveUser({ name, onDone }: { name: string; onDone: (message: string | null, err?: unknown) => void }) {
  const [busy, setBusy] = useState(false);
  const close = useCallback(() => onDone(null), [onDone]);
  const remove = () => {
    setBusy(true);
    post(`/api/users/${enc(name)}/remove`).then(
      () => onDone(`Removed ${name}.`),
      (err: unknown) => onDone(null, err),
    );
  };
  return (
    <Dialog title={`Remove ${name}?`} onClose={close}>
      <p>{name} will no longer be able to log in. Their past operations stay in the log under their name.</p>
      <div className="actions">
        <ReasonButton className="danger" onClick={remove} busy={busy}>
          Remove {name}
        </ReasonButton>
        <button type="button" onClick={close}>
          Cancel
        </button>
      </div>
    </Dialog>
  );
}

/**
 * Console users (admin only: the server answers ROLE_FORBIDDEN to a viewer, even for the list,
 * so a viewer is not shown the page in the menu and gets a notice here instead of a table).
 */
export function Users({ session }: { session: SessionInfo }) {
  const admin = session.role === 'admin';
  const { data, error, reload } = useGet<{ users: UserSummary[] }>(admin ? '/api/users' : null);
  const [message, setMessage] = useState<string | null>(null);
  const [rowError, setRowError] = useState<{ name: string; text: string } | null>(null);
  const [dialog, setDialog] = useState<{ kind: 'password' | 'remove'; name: string } | null>(null);
  const admins = data?.users.filter((u) => u.role === 'admin').length ?? 0;

  if (!admin) {
    return (
      <section>
        <div className="page-head">
          <h1>Users</h1>
        </div>
        <p className="notice">
          Only a console admin manages users (viewers cannot change anything, nor list the users): ask a console admin.
        </p>
      </section>
    );
  }

  const failed = (name: string, err: unknown) => {
    // LAST_ADMIN, ADMIN_NOT_FOUND… are about that user: shown on its row.
    const e = formError(err);
    setRowError({ name, text: `${e.code}: ${e.field ? `${e.field}: ` : ''}${e.message}` });
  };
  const setRole = (name: string, role: UserRole) => {
    setMessage(null);
    setRowError(null);
    post<{ user: UserSummary }>(`/api/users/${enc(name)}/role`, { role }).then(
      ({ user }) => {
        setMessage(`${user.name} is now ${user.role === 'admin' ? 'an admin' : 'a viewer'}.`);
        reload();
      },
      (err: unknown) => failed(name, err),
    );
  };
  const lastAdmin = (u: UserSummary) =>
    u.role === 'admin' && admins <= 1 ? 'the last admin: make another user an admin first' : null;
  const done = (name: string) => (text: string | null, err?: unknown) => {
    setDialog(null);
    if (err) failed(name, err);
    if (text) {
      setMessage(text);
      reload();
    }
  };

  return (
    <section>
      <div className="page-head">
        <h1>Users</h1>
      </div>
      <p className="muted">
        Who may log in to this console. An admin does everything; a viewer reads every page but changes nothing.
      </p>
      <AddUser
        onAdded={(u) => {
          setMessage(`Added ${u.name} (${u.role}).`);
          reload();
        }}
      />
      {message && (
        <p className="success" role="status">
          {message}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="table-wrap">
        <table className="data" aria-label="users">
          <thead>
            <tr>
              <th>User</th>
              <th>Role</th>
              <th>Added</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {(data?.users ?? []).map((u) => (
              <tr key={u.name}>
                <td>
                  {u.name}
                  {u.name === session.user && <span className="muted small"> (you)</span>}
                  {rowError?.name === u.name && (
                    <span className="field-error" role="alert">
                      {rowError.text}
                    </span>
                  )}
                </td>
                <td>
                  <select
                    aria-label={`role of ${u.name}`}
                    value={u.role}
                    disabled={lastAdmin(u) !== null}
                    aria-describedby={lastAdmin(u) ? `last-admin-${u.name}` : undefined}
                    onChange={(e) => setRole(u.name, e.target.value as UserRole)}
                  >
                    {USER_ROLES.map((r) => (
                      <option key={r} value={r}>
                        {r}
                      </option>
                    ))}
                  </select>
                  {lastAdmin(u) && (
                    <span id={`last-admin-${u.name}`} className="reason">
                      {lastAdmin(u)}
                    </span>
                  )}
                </td>
                <td>{formatTime(u.createdAt)}</td>
                <td className="actions">
                  <button type="button" onClick={() => setDialog({ kind: 'password', name: u.name })}>
                    Reset password
                  </button>
                  <ReasonButton
                    className="danger"
                    reason={lastAdmin(u)}
                    onClick={() => setDialog({ kind: 'remove', name: u.name })}
                    aria-label={`remove ${u.name}`}
                  >
                    Remove
                  </ReasonButton>
                </td>
              </tr>
            ))}
            {data && data.users.length === 0 && (
              <tr>
                <td className="empty" colSpan={4}>
                  No user.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {dialog?.kind === 'password' && <ResetPassword name={dialog.name} onDone={done(dialog.name)} />}
      {dialog?.kind === 'remove' && <RemoveUser name={dialog.name} onDone={done(dialog.name)} />}
    </section>
  );
}
