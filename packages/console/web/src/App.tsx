import { Suspense, lazy, useCallback, useEffect, useState } from 'react';
import { get, post, setUnauthenticatedHandler } from './api';
import { href, useRoute } from './router';
import type { SessionInfo } from './types';
import { Login } from './pages/Login';
import { Machines } from './pages/Machines';
import { MachineDetail } from './pages/MachineDetail';
import { JobList, JobView } from './pages/Jobs';
import { Keys } from './pages/Keys';
import { OperationsLog } from './pages/Log';
import { Users } from './pages/Users';
import { Transfer } from './pages/Transfer';

// chart.js is only needed on the reports page: it loads with it.
const Reports = lazy(() => import('./pages/Reports'));

const NAV = [
  ['machines', 'Machines'],
  ['jobs', 'Jobs'],
  ['reports', 'Reports'],
  ['keys', 'Keys'],
  ['log', 'Operations log'],
  ['users', 'Users'],
  ['transfer', 'Export / import'],
] as const;
/** Pages a viewer is not shown in the menu (the server refuses them every call). */
const ADMIN_ONLY: ReadonlySet<string> = new Set(['users']);

export function App() {
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const route = useRoute();

  useEffect(() => {
    setUnauthenticatedHandler(() => setSession(null));
    // No session (401), or the server unreachable: the login page either way.
    get<SessionInfo>('/api/session').then(setSession, () => setSession(null));
  }, []);

  const logout = useCallback(() => {
    const out = () => setSession(null);
    post('/api/logout').then(out, out);
  }, []);

  if (session === undefined) return <div className="loading-page">Loading…</div>;
  if (session === null) return <Login onLogin={setSession} />;

  const [section = 'machines', id] = route;
  let page;
  switch (section) {
    case 'machines':
      page = id ? <MachineDetail id={id} session={session} /> : <Machines session={session} />;
      break;
    case 'jobs':
      page = id ? <JobView id={id} session={session} /> : <JobList session={session} />;
      break;
    case 'reports':
      page = <Reports name={id} session={session} />;
      break;
    case 'keys':
      page = <Keys session={session} />;
      break;
    case 'log':
      page = <OperationsLog />;
      break;
    case 'users':
      page = <Users session={session} />;
      break;
    case 'transfer':
      page = <Transfer session={session} />;
      break;
    default:
      page = <p className="notice">No such page: {section}.</p>;
  }

  return (
    <div className="app">
      <header className="topbar">
        <a className="brand" href={href('/machines')}>
          volact <span>console</span>
        </a>
        <nav aria-label="main">
          {NAV.filter(([key]) => session.role === 'admin' || !ADMIN_ONLY.has(key)).map(([key, label]) => (
            <a key={key} href={href(`/${key}`)} className={section === key ? 'active' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <div className="user">
          <span aria-label="signed in as">{session.user}</span>
          {session.role === 'viewer' && <span className="badge role-viewer">viewer</span>}
          <button type="button" className="link" onClick={logout}>
            Log out
          </button>
        </div>
      </header>
      <main>
        <Suspense fallback={<p className="muted">Loading…</p>}>{page}</Suspense>
      </main>
    </div>
  );
}
