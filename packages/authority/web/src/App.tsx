import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { del, get, setUnauthenticatedHandler } from './api';
import { href, useRoute } from './router';
import { holds, isPublisher, orgOf, type PrincipalInfo, type SessionInfo } from './types';
import { SignIn } from './pages/SignIn';
import { OrgDetail, Orgs } from './pages/Orgs';
import { KeyDetail, OrgKeys } from './pages/Keys';
import { Audit } from './pages/Audit';
import { OrgRequests, Requests } from './pages/Requests';
import { Phone } from './pages/Phone';
import { Webhooks } from './pages/Webhooks';
import { Users } from './pages/Users';
import { Tokens } from './pages/Tokens';
import { Usage } from './pages/Usage';
import { Configs } from './pages/Configs';
import { UserList } from './pages/Users';

type Nav = readonly (readonly [string, string])[];

function publisherNav(p: PrincipalInfo): Nav {
  return [
    ['orgs', 'Organisations'],
    ['requests', 'Requests'],
    ...(holds(p, 'publisher:phone') ? ([['phone', 'Phone activation']] as const) : []),
    ['audit', 'Audit'],
    ...(holds(p, 'publisher:webhooks') ? ([['webhooks', 'Webhooks']] as const) : []),
    ...(holds(p, 'publisher:users') ? ([['users', 'Users']] as const) : []),
    ['tokens', 'API tokens'],
  ];
}

function portalNav(p: PrincipalInfo, orgId: string): Nav {
  return [
    ['keys', 'Keys'],
    ['usage', 'Usage'],
    ['configs', 'Product configs'],
    ['requests', 'Requests'],
    ['audit', 'Audit'],
    ...(holds(p, `org:${orgId}:tokens`) ? ([['tokens', 'API tokens']] as const) : []),
    ...(holds(p, `org:${orgId}:webhooks`) ? ([['org-webhooks', 'Webhooks']] as const) : []),
    ...(holds(p, `org:${orgId}:users`) ? ([['people', 'Users']] as const) : []),
  ];
}

function publisherPage(route: string[], p: PrincipalInfo): ReactNode {
  const [section = 'orgs', id, sub, subId] = route;
  switch (section) {
    case 'orgs':
      if (id && sub === 'keys' && subId) return <KeyDetail orgId={id} keyId={subId} principal={p} />;
      return id ? <OrgDetail orgId={id} principal={p} /> : <Orgs />;
    case 'requests':
      return <Requests principal={p} />;
    case 'phone':
      return <Phone />;
    case 'audit':
      return <Audit />;
    case 'webhooks':
      return <Webhooks orgId={null} {...(id ? { selected: id } : {})} />;
    case 'users':
      return <Users principal={p} />;
    case 'tokens':
      return <Tokens orgId={null} />;
    default:
      return <p className="notice">No such page: {section}.</p>;
  }
}

function portalPage(route: string[], p: PrincipalInfo, orgId: string): ReactNode {
  const [section = 'keys', id, sub, subId] = route;
  switch (section) {
    case 'keys':
      return (
        <section>
          <div className="page-head">
            <h1>Your keys</h1>
          </div>
          <OrgKeys orgId={orgId} principal={p} />
        </section>
      );
    case 'orgs':
      // A key's page: #/orgs/<org>/keys/<keyId> (the same address in both faces).
      if (id && sub === 'keys' && subId) return <KeyDetail orgId={id} keyId={subId} principal={p} />;
      return <p className="notice">No such page.</p>;
    case 'usage':
      return (
        <section>
          <div className="page-head">
            <h1>MAK usage</h1>
          </div>
          <Usage orgId={orgId} />
        </section>
      );
    case 'configs':
      return <Configs orgId={orgId} />;
    case 'requests':
      return <OrgRequests orgId={orgId} />;
    case 'audit':
      return <Audit fixedOrgId={orgId} />;
    case 'tokens':
      return <Tokens orgId={orgId} />;
    case 'org-webhooks':
      return <Webhooks orgId={orgId} {...(id ? { selected: id } : {})} />;
    case 'people':
      return <UserList orgId={orgId} principal={p} />;
    default:
      return <p className="notice">No such page: {section}.</p>;
  }
}

export function App() {
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const route = useRoute();

  useEffect(() => {
    setUnauthenticatedHandler(() => setSession(null));
    // No session (401), or the server unreachable: the sign-in page either way.
    get<SessionInfo>('/v1/session').then(setSession, () => setSession(null));
  }, []);

  const signOut = useCallback(() => {
    const out = () => setSession(null);
    del('/v1/session').then(out, out);
  }, []);

  if (session === undefined) return <div className="loading-page">Loading…</div>;
  if (session === null) return <SignIn onSignIn={setSession} />;

  const p = session.principal;
  const publisher = isPublisher(p);
  const orgId = publisher ? null : orgOf(p);
  const nav = publisher ? publisherNav(p) : orgId ? portalNav(p, orgId) : [];
  const page = publisher ? (
    publisherPage(route, p)
  ) : orgId ? (
    portalPage(route, p, orgId)
  ) : (
    <p className="notice">This account holds no scope over any organisation.</p>
  );
  const section = route[0] ?? (publisher ? 'orgs' : 'keys');

  return (
    <div className="app">
      <header className="topbar">
        <a className="brand" href={href(publisher ? 'orgs' : 'keys')}>
          volact <span>{publisher ? 'publisher' : 'portal'}</span>
        </a>
        <nav aria-label="main">
          {nav.map(([key, label]) => (
            <a
              key={key}
              href={href(key)}
              className={section === key ? 'active' : undefined}
              aria-current={section === key ? 'page' : undefined}
            >
              {label}
            </a>
          ))}
        </nav>
        <div className="user">
          <span aria-label="signed in as">{session.user?.email ?? p.name}</span>
          <button type="button" className="link" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main>{page}</main>
    </div>
  );
}
