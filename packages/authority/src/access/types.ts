import type { Principal, Role, Scope } from './principal.js';

/**
 * People and credentials (docs/portal.md "People, sessions and tokens"): the contract the REST
 * API, the web UI and the CLI build on; access/access.ts implements it. Secrets (passwords,
 * session and API tokens) are stored hashed and never returned but once, at creation.
 */

export interface User {
  /** `usr_` + 24 hex. */
  readonly id: string;
  /** Lower-cased; what a person signs in with. */
  readonly email: string;
  readonly name: string;
  readonly role: Role;
  /** null: a publisher user; otherwise the organisation an org-admin or viewer belongs to. */
  readonly orgId: string | null;
  readonly createdAt: string;
  readonly disabledAt: string | null;
  readonly lastSignInAt: string | null;
}

export interface UserInput {
  readonly email: string;
  readonly name: string;
  readonly role: Role;
  readonly orgId?: string | null;
  /** At least 12 characters. */
  readonly password: string;
}

export interface ApiTokenInfo {
  /** `tok_` + 24 hex. */
  readonly id: string;
  readonly name: string;
  /** The token's last five characters. */
  readonly last5: string;
  readonly scopes: readonly Scope[];
  /** The user who made it (null: the admin token or the CLI on the data directory). */
  readonly createdBy: string | null;
  /** Set for a token scoped to one organisation (listed in its portal). */
  readonly orgId: string | null;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
}

export interface SignIn {
  /** The session secret for the cookie (`volact_session`); stored hashed. */
  readonly session: string;
  readonly user: User;
  readonly expiresAt: string;
}

/** The access module's face (Authority#access). */
export interface AccessApi {
  addUser(input: UserInput, by: Principal): Promise<User>;
  listUsers(filter: { orgId?: string | null }): Promise<User[]>;
  /** By id or email; USER_NOT_FOUND. */
  getUser(idOrEmail: string): Promise<User>;
  updateUser(
    id: string,
    patch: { name?: string; role?: Role; disabled?: boolean; password?: string },
    by: Principal,
  ): Promise<User>;
  removeUser(id: string, by: Principal): Promise<void>;

  /** LOGIN_FAILED, LOGIN_THROTTLED (per account and per source address). */
  signIn(input: { email: string; password: string; source: string }): Promise<SignIn>;
  signOut(session: string): Promise<void>;
  /**
   * The principal of a request: an API token (`Authorization: Bearer vat_…`) or a session
   * cookie. UNAUTHORIZED (no or unknown token), SESSION_EXPIRED. Updates the token's last use.
   */
  authenticate(credentials: { bearer?: string; session?: string }): Promise<Principal>;
  /** The signed-in user's password again, before a sensitive action (PASSWORD_WRONG; throttled like sign-in). */
  confirmPassword(userId: string, password: string, source: string): Promise<void>;

  /** TOKEN_INVALID when a scope is unknown or beyond what `by` holds. The token text is in the answer once. */
  createToken(
    input: { name: string; scopes: readonly Scope[]; expiresAt?: number },
    by: Principal,
  ): Promise<{ token: string; info: ApiTokenInfo }>;
  /** A user's own tokens, or an organisation's, or (publisher:users) all. */
  listTokens(filter: { createdBy?: string; orgId?: string }): Promise<ApiTokenInfo[]>;
  revokeToken(id: string, by: Principal): Promise<ApiTokenInfo>;
}
