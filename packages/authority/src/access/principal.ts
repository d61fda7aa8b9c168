/**
 * Who is calling the publisher's API and what they may do (docs/portal.md "Roles and scopes").
 * A scope names a right: `publisher:<right>` over every organisation, `org:<id>:<right>` over
 * one. `*` in the right's place holds every right of that level; `publisher:*` holds every
 * `org:<id>:*` too, and `publisher:read` every `org:<id>:read`.
 */

export const PUBLISHER_ROLES = ['owner', 'admin', 'support', 'read-only'] as const;
export const ORG_ROLES = ['org-admin', 'viewer'] as const;
export type PublisherRole = (typeof PUBLISHER_ROLES)[number];
export type OrgRole = (typeof ORG_ROLES)[number];
export type Role = PublisherRole | OrgRole;

/** Rights at the publisher's level. `users` manages publisher users and every organisation's. */
export const PUBLISHER_RIGHTS = ['read', 'orgs', 'keys', 'phone', 'requests', 'webhooks', 'users', 'trust'] as const;
/** Rights within one organisation. `keys`: reveal a key, notes; `requests`: ask for more activations. */
export const ORG_RIGHTS = ['read', 'keys', 'requests', 'tokens', 'webhooks', 'users'] as const;
export type PublisherRight = (typeof PUBLISHER_RIGHTS)[number];
export type OrgRight = (typeof ORG_RIGHTS)[number];

export type Scope = string;

const ORG_ID_RE = /^org_[a-z0-9]{1,40}$/;
export const isOrgId = (text: string): boolean => ORG_ID_RE.test(text);

/** A scope as written, checked: `publisher:*`, `publisher:keys`, `org:org_x:read`, `org:org_x:*`. */
export function isValidScope(scope: string): boolean {
  const p = /^publisher:(.+)$/.exec(scope);
  if (p) return p[1] === '*' || (PUBLISHER_RIGHTS as readonly string[]).includes(p[1] as string);
  const o = /^org:([^:]+):(.+)$/.exec(scope);
  if (o) return isOrgId(o[1] as string) && (o[2] === '*' || (ORG_RIGHTS as readonly string[]).includes(o[2] as string));
  return false;
}

/** The scopes a role holds (a user's tokens may hold at most these). */
export function scopesOfRole(role: Role, orgId: string | null): Scope[] {
  switch (role) {
    case 'owner':
      return ['publisher:*'];
    case 'admin':
      return PUBLISHER_RIGHTS.filter((r) => r !== 'users' && r !== 'trust').map((r) => `publisher:${r}`);
    case 'support':
      return ['publisher:read', 'publisher:phone', 'publisher:requests'];
    case 'read-only':
      return ['publisher:read'];
    case 'org-admin':
      return [`org:${orgId}:*`];
    case 'viewer':
      return [`org:${orgId}:read`];
  }
}

/** Whether `held` grants `needed` (both valid scopes). */
export function scopeGrants(held: Scope, needed: Scope): boolean {
  if (held === needed || held === 'publisher:*') return true;
  if (held === 'publisher:read') return /^org:[^:]+:read$/.test(needed);
  const o = /^org:([^:]+):\*$/.exec(held);
  if (o) return needed.startsWith(`org:${o[1]}:`);
  return false;
}

export interface Principal {
  /** user: a web session; token: an API token; admin-token: the authority's `--admin-token-file` (a publisher owner). */
  readonly kind: 'user' | 'token' | 'admin-token';
  /** The user's or token's id ('admin-token' for the admin token). */
  readonly id: string;
  /** Shown in the audit log as the actor: the user's email, `token:<name>…<last5>`, or `admin-token`. */
  readonly name: string;
  /** The user behind a session or token (null for the admin token and a publisher-made service token). */
  readonly userId: string | null;
  /** The organisation of an organisation user or token; null at the publisher's level. */
  readonly orgId: string | null;
  readonly role: Role | null;
  readonly scopes: readonly Scope[];
  /** A web session's id (kind user): a password change ends the user's other sessions, not this one. */
  readonly sessionId?: string | undefined;
}

export function holds(principal: Principal, needed: Scope): boolean {
  return principal.scopes.some((s) => scopeGrants(s, needed));
}

/**
 * Whether the principal may know that organisation exists at all: one that holds no scope
 * over it is answered 404 (ORG_NOT_FOUND / KEY_NOT_FOUND …), never 403, so a customer cannot
 * probe another customer's ids.
 */
export function seesOrg(principal: Principal, orgId: string): boolean {
  return principal.scopes.some(
    (s) => s === 'publisher:*' || s.startsWith('publisher:') || s.startsWith(`org:${orgId}:`),
  );
}

/** The publisher owner the old single admin token stands for. */
export const ADMIN_TOKEN_PRINCIPAL: Principal = {
  kind: 'admin-token',
  id: 'admin-token',
  name: 'admin-token',
  userId: null,
  orgId: null,
  role: 'owner',
  scopes: ['publisher:*'],
};

/** The CLI on the authority's data directory: whoever can read the data directory owns the authority. */
export const CLI_PRINCIPAL: Principal = { ...ADMIN_TOKEN_PRINCIPAL, id: 'cli', name: 'cli' };
