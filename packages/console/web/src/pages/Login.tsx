import { useState, type FormEvent } from 'react';
import { errorText, post } from '../api';
import type { SessionInfo } from '../types';

export function Login({ onLogin }: { onLogin: (session: SessionInfo) => void }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    post<SessionInfo>('/api/login', { user, password }).then(
      (session) => {
        setPassword('');
        onLogin(session);
      },
      (err: unknown) => {
        setError(errorText(err));
        setPassword('');
        setBusy(false);
      },
    );
  };

  return (
    <div className="login-page">
      <form className="card login" onSubmit={submit}>
        <h1>
          volact <span>console</span>
        </h1>
        <p className="muted">
          Volume activation management. Log in with your console user (the admin made at init adds others on Users).
        </p>
        <label>
          User
          <input value={user} onChange={(e) => setUser(e.target.value)} autoComplete="username" required autoFocus />
        </label>
        <label>
          Password
          <input
            type="password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            autoComplete="current-password"
            required
          />
        </label>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </div>
  );
}
