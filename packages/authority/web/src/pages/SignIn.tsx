import { useState, type FormEvent } from 'react';
import { errorText, get, post } from '../api';
import type { SessionInfo } from '../types';

export function SignIn({ onSignIn }: { onSignIn: (session: SessionInfo) => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    post('/v1/session', { email, password })
      .then(() => get<SessionInfo>('/v1/session'))
      .then(
        (session) => {
          setPassword('');
          onSignIn(session);
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
      <form className="card login" onSubmit={submit} aria-label="sign in">
        <h1>
          volact <span>authority</span>
        </h1>
        <p className="muted">Publisher staff and customer organisations sign in here.</p>
        <label>
          Email
          <input
            type="email"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            autoComplete="username"
            required
            autoFocus
          />
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
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}
