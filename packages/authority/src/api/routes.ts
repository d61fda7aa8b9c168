import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  adminKeyLimitRequestSchema,
  adminKeyRequestSchema,
  bulkConfirmationReplySchema,
  bulkConfirmationRequestSchema,
  confirmationReplySchema,
  confirmationRequestSchema,
  healthReplySchema,
  hostActivationReplySchema,
  hostActivationRequestSchema,
  hostStatusReplySchema,
  hostStatusRequestSchema,
  installationActivationReplySchema,
  installationActivationRequestSchema,
  publicKeyRawFromPem,
  revocationsReplySchema,
  trustReplySchema,
} from '@volact/core';
import { ORG_ROLES, holds, seesOrg, type Principal } from '../access/principal.js';
import type { Authority, Confirmation, KeyReport } from '../authority.js';
import { AuthorityError, invalidField } from '../errors.js';
import { MAX_PORTAL_PROXY_FILE_CHARS, confirmInstallationIdFile, encodeProxyFile } from '../confirmation-file.js';
import type { KeySummary, Page } from '../organisations/types.js';
import type { WebhookDelivery, WebhookEndpoint } from '../webhooks/types.js';
import {
  CSRF_HEADER,
  clearedSessionCookie,
  notFound,
  requireScope,
  requireSeesOrg,
  scopeMissing,
  sessionCookie,
  sessionOf,
} from './auth.js';
import * as s from './schemas.js';

/**
 * The publisher's REST API as one table (docs/portal.md "REST API"): each route's method,
 * path, the scope it needs, its schemas and what it does. `registerApi` makes the fastify
 * routes from it and `openApiDocument` the OpenAPI 3.1 document: the schemas that validate a
 * request are the ones the document shows. Routes without a handler are registered by
 * http.ts (the activation protocol's) and only documented here.
 *
 * Scope: `public` (no credentials), `any` (any signed-in principal), a scope (`publisher:keys`,
 * `org:{orgId}:read` of the path's organisation) checked before the handler runs, or a rule in
 * words the handler checks itself. A path with `{orgId}` answers 404 ORG_NOT_FOUND (never 403)
 * to a principal that may not see that organisation.
 */

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteContext<P, Q, B> {
  readonly authority: Authority;
  readonly principal: Principal;
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
}

export interface ApiRoute<P = unknown, Q = unknown, B = unknown> {
  readonly method: Method;
  /** OpenAPI form: `/v1/orgs/{orgId}`. */
  readonly path: string;
  readonly tag: string;
  readonly summary: string;
  readonly scope: string;
  readonly params?: z.ZodType<P>;
  readonly query?: z.ZodType<Q>;
  readonly body?: z.ZodType<B>;
  readonly answer: z.ZodType;
  /** The success status (default 200). */
  readonly status?: number;
  /** The old /v1/admin/keys/* routes: ADMIN_DISABLED without an admin token and without an API token. */
  readonly legacyAdmin?: boolean;
  readonly bodyLimit?: number;
  /** Absent: the route is registered by http.ts and documented here. */
  readonly handler?: (ctx: RouteContext<P, Q, B>) => Promise<unknown>;
}

function route<P = Record<string, never>, Q = Record<string, never>, B = undefined>(def: ApiRoute<P, Q, B>): ApiRoute {
  return def as unknown as ApiRoute;
}

/** A plain scope the registration checks before the handler (else the handler checks its rule). */
export const isCheckedScope = (scope: string): boolean => /^(publisher|org):[^\s|]+$/.test(scope);

// --- helpers ---------------------------------------------------------------------------------

/** Any publisher-level scope: the principal may know every organisation exists. */
const publisherLevel = (p: Principal) => p.scopes.some((x) => x.startsWith('publisher:'));

/** A page of a list the module answers whole (users, tokens, webhooks, groups): cursor `o<offset>`. */
export function pageOf<T>(items: readonly T[], query: { cursor?: string | undefined; limit?: number | undefined }) {
  let offset = 0;
  if (query.cursor !== undefined) {
    const m = /^o(\d{1,9})$/.exec(query.cursor);
    if (!m) throw invalidField('cursor', 'query.cursor: expected the nextCursor of the previous page');
    offset = Number(m[1]);
  }
  const limit = query.limit ?? 100;
  const slice = items.slice(offset, offset + limit);
  return { items: [...slice], nextCursor: offset + limit < items.length ? `o${offset + limit}` : null };
}

const whole = <T>(items: readonly T[]) => ({ items: [...items], nextCursor: null });
const iso = (text: string | undefined) => (text === undefined ? undefined : Date.parse(text));
const defined = <T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as never;

function keyReportAnswer(r: KeyReport) {
  return { ...r, groups: [...r.groups], activations: r.activations.map((a) => ({ ...a })) };
}

function confirmationAnswer(c: Confirmation) {
  return c.kind === 'kms-host' ? { ...c, groups: [...c.groups] } : { ...c };
}

/** A key of the organisation by key ID or last five characters; another organisation's is KEY_NOT_FOUND. */
async function keyOf(ctx: RouteContext<{ orgId: string }, unknown, unknown>, ref: string): Promise<KeySummary> {
  const key = await ctx.authority.organisations.findKey(ctx.params.orgId, ref);
  if (key.orgId !== ctx.params.orgId) throw notFound('KEY_NOT_FOUND', `key ${ref}`);
  return key;
}

/** An Ed25519 public key as SPKI PEM or its 32 raw bytes in base64. */
function publicKeyRaw(text: string): Buffer {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) {
    try {
      return publicKeyRawFromPem(trimmed);
    } catch (err) {
      throw invalidField('publicKey', `body.publicKey: ${(err as Error).message}`);
    }
  }
  if (!/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) {
    throw invalidField(
      'publicKey',
      'body.publicKey: expected an Ed25519 public key as SPKI PEM or its 32 bytes in base64',
    );
  }
  return Buffer.from(trimmed, 'base64');
}

/** The organisation a list is about: the query's, or the caller's own when it holds no publisher scope. */
function listOrg(p: Principal, orgId: string | undefined, publisherScope: string, orgRight: string): string | null {
  if (orgId !== undefined) {
    requireSeesOrg(p, orgId);
    requireScope(p, `org:${orgId}:${orgRight}`, publisherScope);
    return orgId;
  }
  if (holds(p, publisherScope)) return null;
  if (p.orgId !== null) {
    requireScope(p, `org:${p.orgId}:${orgRight}`, publisherScope);
    return p.orgId;
  }
  throw scopeMissing(publisherScope, [`org:{orgId}:${orgRight} with ?orgId=`]);
}

/** A user the caller may manage (publisher:users, or org:{id}:users for its organisation's); else 404/403. */
async function manageableUser(ctx: RouteContext<{ userId: string }, unknown, unknown>) {
  const p = ctx.principal;
  const user = await ctx.authority.access.getUser(ctx.params.userId);
  if (user.orgId === null) {
    if (!publisherLevel(p)) throw notFound('USER_NOT_FOUND', `user ${ctx.params.userId}`);
    requireScope(p, 'publisher:users');
  } else {
    requireSeesOrg(p, user.orgId, 'USER_NOT_FOUND', `user ${ctx.params.userId}`);
    requireScope(p, `org:${user.orgId}:users`, 'publisher:users');
  }
  return user;
}

/** A webhook endpoint the caller may manage; another organisation's is WEBHOOK_NOT_FOUND. */
async function manageableEndpoint(authority: Authority, p: Principal, id: string): Promise<WebhookEndpoint> {
  const endpoint = await authority.webhooks.get(id);
  if (endpoint.orgId === null) {
    if (!publisherLevel(p)) throw notFound('WEBHOOK_NOT_FOUND', `webhook endpoint ${id}`);
    requireScope(p, 'publisher:webhooks');
  } else {
    requireSeesOrg(p, endpoint.orgId, 'WEBHOOK_NOT_FOUND', `webhook endpoint ${id}`);
    requireScope(p, `org:${endpoint.orgId}:webhooks`, 'publisher:webhooks');
  }
  return endpoint;
}

/** A delivery by id: the module's lookup when it has one, else found among the caller's endpoints. */
async function deliveryOf(authority: Authority, p: Principal, id: string): Promise<WebhookDelivery> {
  if (authority.webhooks.getDelivery) return authority.webhooks.getDelivery(id);
  const endpoints = await authority.webhooks.list(holds(p, 'publisher:webhooks') ? {} : { orgId: p.orgId });
  for (const endpoint of endpoints) {
    let cursor: string | undefined;
    for (;;) {
      const page: Page<WebhookDelivery> = await authority.webhooks.deliveries(endpoint.id, {
        limit: 500,
        ...(cursor === undefined ? {} : { cursor }),
      });
      const found = page.items.find((d) => d.id === id);
      if (found) return found;
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
  }
  throw notFound('WEBHOOK_NOT_FOUND', `webhook delivery ${id}`);
}

// --- the table -------------------------------------------------------------------------------

const ORG_ROLE_NAMES: readonly string[] = ORG_ROLES;
const artefactRoutes = (
  [
    ['activation-objects', 'activation-object', 'activation objects'],
    ['oem-certificates', 'oem-certificate', 'OEM manufacturer certificates'],
    ['token-cas', 'token-ca', 'token CA certificates'],
  ] as const
).map(([segment, kind, what]) =>
  route({
    method: 'GET',
    path: `/v1/orgs/{orgId}/${segment}`,
    tag: 'artefacts',
    summary: `The organisation's ${what} (the signed documents as issued)`,
    scope: 'org:{orgId}:read',
    params: s.orgParams,
    query: s.pageQuery,
    answer: s.artefactPage,
    handler: async ({ authority, params, query }) =>
      authority.organisations.artefacts(params.orgId, { ...defined(query), kind }),
  }),
);

export const API_ROUTES: readonly ApiRoute[] = [
  // --- the document and sessions -----------------------------------------------------------
  route({
    method: 'GET',
    path: '/v1/openapi.json',
    tag: 'meta',
    summary: 'This OpenAPI 3.1 document',
    scope: 'public',
    query: s.noQuery,
    answer: z.record(z.string(), z.unknown()),
    // Answered by registerApi (it holds the document).
  }),
  route({
    method: 'POST',
    path: '/v1/session',
    tag: 'session',
    summary: 'Sign in: sets the volact_session cookie (HttpOnly, SameSite=Strict); throttled per account and source',
    scope: 'public',
    body: s.signInBody,
    answer: s.signInAnswer,
    handler: async ({ authority, body, request, reply }) => {
      const signed = await authority.access.signIn({ email: body.email, password: body.password, source: request.ip });
      void reply.header('set-cookie', sessionCookie(signed.session, signed.expiresAt, request));
      void reply.header('cache-control', 'no-store');
      return { user: signed.user, expiresAt: signed.expiresAt };
    },
  }),
  route({
    method: 'GET',
    path: '/v1/session',
    tag: 'session',
    summary: 'Who am I: the user (null for a token without one) and the principal with its scopes',
    scope: 'any',
    query: s.noQuery,
    answer: s.whoAmIAnswer,
    handler: async ({ authority, principal }) => {
      let user = null;
      if (principal.userId !== null) {
        user = await authority.access.getUser(principal.userId).catch((err: unknown) => {
          if (err instanceof AuthorityError && err.code === 'USER_NOT_FOUND') return null;
          throw err;
        });
      }
      const { kind, name, orgId, role, scopes } = principal;
      return { user, principal: { kind, name, orgId, role, scopes: [...scopes] } };
    },
  }),
  route({
    method: 'DELETE',
    path: '/v1/session',
    tag: 'session',
    summary: 'Sign out: ends the session of the cookie (needs X-Volact-Csrf: 1) and clears the cookie',
    scope: 'session',
    answer: s.signedOutAnswer,
    handler: async ({ authority, request, reply }) => {
      const session = sessionOf(request);
      if (session === undefined) {
        throw new AuthorityError('UNAUTHORIZED', 'no session cookie: there is no session to end');
      }
      if (request.headers[CSRF_HEADER] !== '1') {
        throw invalidField('X-Volact-Csrf', 'header X-Volact-Csrf: signing out needs the header `X-Volact-Csrf: 1`');
      }
      await authority.access.signOut(session).catch((err: unknown) => {
        // An ended session is signed out already.
        if (!(err instanceof AuthorityError) || err.httpStatus !== 401) throw err;
      });
      void reply.header('set-cookie', clearedSessionCookie(request));
      return { signedOut: true as const };
    },
  }),

  // --- organisations -------------------------------------------------------------------------
  route({
    method: 'GET',
    path: '/v1/orgs',
    tag: 'organisations',
    summary: 'Organisations (q: name or external reference contains); an organisation principal sees its own',
    scope: 'publisher:read | org:{own}:read',
    query: s.orgListQuery,
    answer: s.orgPage,
    handler: async ({ authority, principal, query }) => {
      if (holds(principal, 'publisher:read')) return authority.organisations.list(defined(query));
      // The CLI and the portal list "the organisations I see": an organisation's own.
      if (principal.orgId !== null && holds(principal, `org:${principal.orgId}:read`)) {
        return whole([await authority.organisations.get(principal.orgId)]);
      }
      throw scopeMissing('publisher:read');
    },
  }),
  route({
    method: 'POST',
    path: '/v1/orgs',
    tag: 'organisations',
    summary: 'Create an organisation',
    scope: 'publisher:orgs',
    body: s.orgCreateBody,
    answer: s.organisation,
    status: 201,
    handler: async ({ authority, principal, body }) => authority.organisations.create(defined(body), principal),
  }),
  route({
    method: 'GET',
    path: '/v1/orgs/{orgId}',
    tag: 'organisations',
    summary: 'One organisation',
    scope: 'org:{orgId}:read',
    params: s.orgParams,
    query: s.noQuery,
    answer: s.organisation,
    handler: async ({ authority, params }) => authority.organisations.get(params.orgId),
  }),
  route({
    method: 'PATCH',
    path: '/v1/orgs/{orgId}',
    tag: 'organisations',
    summary: "Update an organisation's name, external reference or contacts",
    scope: 'publisher:orgs',
    params: s.orgParams,
    body: s.orgPatchBody,
    answer: s.organisation,
    handler: async ({ authority, principal, params, body }) =>
      authority.organisations.update(params.orgId, defined(body), principal),
  }),

  // --- users -----------------------------------------------------------------------------------
  route({
    method: 'GET',
    path: '/v1/users',
    tag: 'users',
    summary: "Users: every user (publisher:users) or one organisation's (?orgId=, org:{orgId}:users)",
    scope: 'publisher:users | org:{orgId}:users',
    query: s.usersQuery,
    answer: s.userPage,
    handler: async ({ authority, principal, query }) => {
      const orgId = listOrg(principal, query.orgId, 'publisher:users', 'users');
      return pageOf(await authority.access.listUsers(orgId === null ? {} : { orgId }), query);
    },
  }),
  route({
    method: 'POST',
    path: '/v1/users',
    tag: 'users',
    summary: 'Add a user: a publisher role (publisher:users) or an organisation role (org:{orgId}:users)',
    scope: 'publisher:users | org:{orgId}:users for organisation roles',
    body: s.userCreateBody,
    answer: s.user,
    status: 201,
    handler: async ({ authority, principal, body }) => {
      if (ORG_ROLE_NAMES.includes(body.role)) {
        const orgId = body.orgId ?? principal.orgId;
        if (orgId === null || orgId === undefined) {
          throw invalidField('orgId', `body.orgId: the role ${body.role} belongs to an organisation: give its id`);
        }
        requireSeesOrg(principal, orgId);
        requireScope(principal, `org:${orgId}:users`, 'publisher:users');
        return authority.access.addUser({ ...body, orgId }, principal);
      }
      if (body.orgId !== undefined && body.orgId !== null) {
        throw invalidField('orgId', `body.orgId: the role ${body.role} is a publisher's role: give no orgId`);
      }
      requireScope(principal, 'publisher:users');
      return authority.access.addUser({ ...body, orgId: null }, principal);
    },
  }),
  route({
    method: 'PATCH',
    path: '/v1/users/{userId}',
    tag: 'users',
    summary: "Change a user's name, role, password or disable them",
    scope: 'publisher:users | org:{orgId of the user}:users',
    params: s.userParams,
    body: s.userPatchBody,
    answer: s.user,
    handler: async (ctx) => {
      const user = await manageableUser(ctx);
      if (ctx.body.role !== undefined && !ORG_ROLE_NAMES.includes(ctx.body.role)) {
        requireScope(ctx.principal, 'publisher:users');
      }
      return ctx.authority.access.updateUser(user.id, defined(ctx.body), ctx.principal);
    },
  }),
  route({
    method: 'DELETE',
    path: '/v1/users/{userId}',
    tag: 'users',
    summary: 'Remove a user (their sessions end; their tokens are revoked)',
    scope: 'publisher:users | org:{orgId of the user}:users',
    params: s.userParams,
    answer: s.removedAnswer,
    handler: async (ctx) => {
      const user = await manageableUser(ctx);
      await ctx.authority.access.removeUser(user.id, ctx.principal);
      return { removed: true as const, id: user.id };
    },
  }),

  // --- API tokens ------------------------------------------------------------------------------
  route({
    method: 'GET',
    path: '/v1/tokens',
    tag: 'tokens',
    summary: "API tokens: the caller's own; an organisation's (?orgId=, org:{orgId}:tokens); all (publisher:users)",
    scope: 'any',
    query: s.tokensQuery,
    answer: s.tokenPage,
    handler: async ({ authority, principal: p, query }) => {
      if (query.orgId !== undefined) {
        requireSeesOrg(p, query.orgId);
        requireScope(p, `org:${query.orgId}:tokens`, 'publisher:users');
        return pageOf(await authority.access.listTokens({ orgId: query.orgId }), query);
      }
      if (holds(p, 'publisher:users')) return pageOf(await authority.access.listTokens({}), query);
      if (p.userId !== null) return pageOf(await authority.access.listTokens({ createdBy: p.userId }), query);
      if (p.orgId !== null && holds(p, `org:${p.orgId}:tokens`)) {
        return pageOf(await authority.access.listTokens({ orgId: p.orgId }), query);
      }
      return whole([]);
    },
  }),
  route({
    method: 'POST',
    path: '/v1/tokens',
    tag: 'tokens',
    summary: 'Create an API token with scopes the caller holds; the token is in this answer once',
    scope: 'any',
    body: s.tokenCreateBody,
    answer: s.tokenCreated,
    status: 201,
    handler: async ({ authority, principal, body, reply }) => {
      const expiresAt = typeof body.expiresAt === 'string' ? Date.parse(body.expiresAt) : body.expiresAt;
      void reply.header('cache-control', 'no-store');
      return authority.access.createToken(
        { name: body.name, scopes: body.scopes, ...(expiresAt === undefined ? {} : { expiresAt }) },
        principal,
      );
    },
  }),
  route({
    method: 'DELETE',
    path: '/v1/tokens/{tokenId}',
    tag: 'tokens',
    summary: 'Revoke an API token: the caller’s own, an organisation’s (org:{orgId}:tokens) or any (publisher:users)',
    scope: 'own | org:{orgId}:tokens | publisher:users',
    params: s.tokenParams,
    answer: s.tokenInfo,
    handler: async ({ authority, principal: p, params }) => {
      const token = (await authority.access.listTokens({})).find((t) => t.id === params.tokenId);
      const absent = () => notFound('TOKEN_NOT_FOUND', `API token ${params.tokenId}`);
      if (token === undefined) throw absent();
      const own = p.userId !== null && token.createdBy === p.userId;
      if (!own && !holds(p, 'publisher:users')) {
        if (token.orgId === null || !seesOrg(p, token.orgId)) throw absent();
        requireScope(p, `org:${token.orgId}:tokens`, 'publisher:users');
      }
      return authority.access.revokeToken(token.id, p);
    },
  }),

  // --- product groups --------------------------------------------------------------------------
  route({
    method: 'GET',
    path: '/v1/groups',
    tag: 'groups',
    summary: 'Product groups',
    scope: 'publisher:read',
    query: s.pageQuery,
    answer: s.groupList,
    handler: async ({ authority, query }) => pageOf(await authority.listGroups(), query),
  }),
  route({
    method: 'POST',
    path: '/v1/groups',
    tag: 'groups',
    summary: 'Add a product group',
    scope: 'publisher:keys',
    body: s.groupCreateBody,
    answer: s.productGroup,
    status: 201,
    handler: async ({ authority, body }) => authority.addGroup(defined(body)),
  }),
  route({
    method: 'GET',
    path: '/v1/groups/{group}/product-config',
    tag: 'groups',
    summary: "A group's product configuration (url: where installations activate online)",
    scope: 'public',
    params: s.groupParams,
    query: s.productConfigQuery,
    answer: s.productConfig,
    handler: async ({ authority, params, query }) => authority.productConfig(params.group, defined(query)),
  }),

  // --- keys ------------------------------------------------------------------------------------
  route({
    method: 'GET',
    path: '/v1/keys',
    tag: 'keys',
    summary: 'Keys of every organisation, filtered (q: last five characters or note), newest first',
    scope: 'publisher:read',
    query: s.keysQuery,
    answer: s.keyPage,
    handler: async ({ authority, query }) => authority.organisations.listKeys(defined(query)),
  }),
  route({
    method: 'POST',
    path: '/v1/keys/lookup',
    tag: 'keys',
    summary: 'A key by its full text (in the body, never in a URL)',
    scope: 'publisher:read | org:{orgId of the key}:read',
    body: s.keyLookupBody,
    answer: s.keySummary,
    handler: async ({ authority, principal: p, body }) => {
      const key = await authority.organisations.findKeyByText(body.key);
      if (holds(p, 'publisher:read')) return key;
      requireSeesOrg(p, key.orgId, 'KEY_NOT_FOUND', 'key');
      requireScope(p, `org:${key.orgId}:read`);
      return key;
    },
  }),
  route({
    method: 'GET',
    path: '/v1/orgs/{orgId}/keys',
    tag: 'keys',
    summary: "The organisation's keys, filtered, newest first",
    scope: 'org:{orgId}:read',
    params: s.orgParams,
    query: s.orgKeysQuery,
    answer: s.keyPage,
    handler: async ({ authority, params, query }) =>
      authority.organisations.listKeys({ ...defined(query), orgId: params.orgId }),
  }),
  route({
    method: 'POST',
    path: '/v1/orgs/{orgId}/keys',
    tag: 'keys',
    summary: 'Mint a key for the organisation; the key is in this answer once (kept sealed)',
    scope: 'publisher:keys',
    params: s.orgParams,
    body: s.mintBody,
    answer: s.mintedKey,
    status: 201,
    handler: async ({ authority, principal, params, body, reply }) => {
      void reply.header('cache-control', 'no-store');
      return authority.organisations.mintKey(params.orgId, defined(body), principal);
    },
  }),
  route({
    method: 'GET',
    path: '/v1/orgs/{orgId}/keys/{ref}',
    tag: 'keys',
    summary: 'One key by key ID or by its last five characters (KEY_AMBIGUOUS when several)',
    scope: 'org:{orgId}:read',
    params: s.orgKeyRefParams,
    query: s.noQuery,
    answer: s.keySummary,
    handler: async (ctx) => keyOf(ctx, ctx.params.ref),
  }),
  route({
    method: 'GET',
    path: '/v1/orgs/{orgId}/keys/{keyId}/report',
    tag: 'keys',
    summary: 'The key report (as `authority key show`): limit, used, every activation',
    scope: 'org:{orgId}:read',
    params: s.orgKeyParams,
    query: s.noQuery,
    answer: s.keyReport,
    handler: async (ctx) =>
      keyReportAnswer(await ctx.authority.organisations.keyReport((await keyOf(ctx, ctx.params.keyId)).keyId)),
  }),
  route({
    method: 'GET',
    path: '/v1/orgs/{orgId}/keys/{keyId}/installations',
    tag: 'keys',
    summary: 'Installations a MAK or retail key activated',
    scope: 'org:{orgId}:read',
    params: s.orgKeyParams,
    query: s.pageQuery,
    answer: s.installationPage,
    handler: async (ctx) =>
      ctx.authority.organisations.installations((await keyOf(ctx, ctx.params.keyId)).keyId, defined(ctx.query)),
  }),
  route({
    method: 'GET',
    path: '/v1/orgs/{orgId}/keys/{keyId}/hosts',
    tag: 'keys',
    summary: 'KMS hosts a KMS host key activated',
    scope: 'org:{orgId}:read',
    params: s.orgKeyParams,
    query: s.pageQuery,
    answer: s.hostPage,
    handler: async (ctx) =>
      ctx.authority.organisations.hosts((await keyOf(ctx, ctx.params.keyId)).keyId, defined(ctx.query)),
  }),
  route({
    method: 'PUT',
    path: '/v1/orgs/{orgId}/keys/{keyId}/note',
    tag: 'keys',
    summary: "Set the key's note (null clears it)",
    scope: 'org:{orgId}:keys',
    params: s.orgKeyParams,
    body: s.noteBody,
    answer: s.keySummary,
    handler: async (ctx) =>
      ctx.authority.organisations.setNote((await keyOf(ctx, ctx.params.keyId)).keyId, ctx.body.note, ctx.principal),
  }),
  route({
    method: 'POST',
    path: '/v1/orgs/{orgId}/keys/{keyId}/limit',
    tag: 'keys',
    summary: "Set the key's limit (never below what it activated); raises key.limit_raised",
    scope: 'publisher:keys',
    params: s.orgKeyParams,
    body: s.limitBody,
    answer: s.keySummary,
    handler: async (ctx) =>
      ctx.authority.organisations.setLimit((await keyOf(ctx, ctx.params.keyId)).keyId, ctx.body.limit, ctx.principal),
  }),
  route({
    method: 'POST',
    path: '/v1/orgs/{orgId}/keys/{keyId}/revoke',
    tag: 'keys',
    summary: 'Revoke the key: its later activations are refused (earlier ones stay)',
    scope: 'publisher:keys',
    params: s.orgKeyParams,
    body: s.revokeBody,
    answer: s.keySummary,
    handler: async (ctx) =>
      ctx.authority.organisations.revoke(
        (await keyOf(ctx, ctx.params.keyId)).keyId,
        ctx.body?.reason ?? null,
        ctx.principal,
      ),
  }),
  route({
    method: 'POST',
    path: '/v1/orgs/{orgId}/keys/{keyId}/reveal',
    tag: 'keys',
    summary: 'The full key, for a signed-in user who re-enters the password (audited key.reveal)',
    scope: 'org:{orgId}:keys',
    params: s.orgKeyParams,
    body: s.revealBody,
    answer: s.revealAnswer,
    handler: async (ctx) => {
      const { principal: p } = ctx;
      if (p.kind !== 'user' || p.userId === null) {
        throw new AuthorityError(
          'SESSION_REQUIRED',
          'revealing a key needs a signed-in user who re-enters the password (web UI); API tokens cannot reveal keys',
        );
      }
      const key = await keyOf(ctx, ctx.params.keyId);
      await ctx.authority.access.confirmPassword(p.userId, ctx.body.password, ctx.request.ip);
      void ctx.reply.header('cache-control', 'no-store');
      return ctx.authority.organisations.revealKey(key.keyId, p);
    },
  }),
  route({
    method: 'GET',
    path: '/v1/orgs/{orgId}/usage',
    tag: 'usage',
    summary: "Usage of the organisation's MAKs: limit, used, remaining, percent",
    scope: 'org:{orgId}:read',
    params: s.orgParams,
    query: s.noQuery,
    answer: s.usageList,
    handler: async ({ authority, params }) => whole(await authority.organisations.usage(params.orgId)),
  }),
  route({
    method: 'GET',
    path: '/v1/orgs/{orgId}/usage/history',
    tag: 'usage',
    summary: 'New activations per UTC day (of one key with keyId), the last `days` days',
    scope: 'org:{orgId}:read',
    params: s.orgParams,
    query: s.usageHistoryQuery,
    answer: s.usageHistoryList,
    handler: async (ctx) => {
      const keyId = ctx.query.keyId === undefined ? undefined : (await keyOf(ctx, ctx.query.keyId)).keyId;
      return whole(
        await ctx.authority.organisations.usageHistory(ctx.params.orgId, defined({ keyId, days: ctx.query.days })),
      );
    },
  }),
  route({
    method: 'GET',
    path: '/v1/orgs/{orgId}/product-configs',
    tag: 'usage',
    summary: "The product groups of the organisation's keys (their product configurations to download)",
    scope: 'org:{orgId}:read',
    params: s.orgParams,
    query: s.noQuery,
    answer: s.productConfigList,
    handler: async ({ authority, params }) => {
      const items = [];
      for (const group of await authority.listGroups()) {
        const keys = await authority.organisations.listKeys({ orgId: params.orgId, group: group.name, limit: 1 });
        if (keys.items.length > 0) items.push({ group: group.name, kind: group.kind });
      }
      return whole(items);
    },
  }),
  route({
    method: 'GET',
    path: '/v1/orgs/{orgId}/product-configs/{group}',
    tag: 'usage',
    summary: 'The product configuration of a group of one of the organisation’s keys (the file to download)',
    scope: 'org:{orgId}:read',
    params: s.orgGroupParams,
    query: s.productConfigQuery,
    answer: s.productConfig,
    handler: async ({ authority, params, query, reply }) => {
      const group = await authority.group(params.group);
      const keys = await authority.organisations.listKeys({ orgId: params.orgId, group: group.name, limit: 1 });
      if (keys.items.length === 0) {
        throw new AuthorityError('GROUP_NOT_FOUND', `no key of organisation ${params.orgId} is of group ${group.name}`);
      }
      void reply.header('content-disposition', `attachment; filename="${group.name}.product-config.json"`);
      return authority.productConfig(group.name, defined(query));
    },
  }),

  // --- audit and artefacts -----------------------------------------------------------------------
  route({
    method: 'GET',
    path: '/v1/audit',
    tag: 'audit',
    summary: 'The audit log, newest first, filtered by organisation, key, actor, action prefix and time',
    scope: 'publisher:read | org:{orgId}:read with orgId',
    query: s.auditQuery,
    answer: s.auditPage,
    handler: async ({ authority, principal, query }) => {
      const orgId = listOrg(principal, query.orgId, 'publisher:read', 'read');
      return authority.organisations.audit(
        defined({ ...query, orgId: orgId ?? undefined, from: iso(query.from), to: iso(query.to) }),
      );
    },
  }),
  ...artefactRoutes,
  route({
    method: 'POST',
    path: '/v1/orgs/{orgId}/activation-objects',
    tag: 'artefacts',
    summary: 'An activation object for a product group and a directory domain, owned by the organisation',
    scope: 'publisher:keys',
    params: s.orgParams,
    body: s.activationObjectBody,
    answer: s.artefact,
    status: 201,
    handler: async ({ authority, principal, params, body }) =>
      authority.organisations.createActivationObject(params.orgId, defined(body), principal),
  }),
  route({
    method: 'POST',
    path: '/v1/orgs/{orgId}/oem-certificates',
    tag: 'artefacts',
    summary: "An OEM manufacturer's public key certified for product groups",
    scope: 'publisher:keys',
    params: s.orgParams,
    body: s.oemCertificateBody,
    answer: s.artefact,
    status: 201,
    handler: async ({ authority, principal, params, body }) =>
      authority.organisations.issueOemCertificate(
        params.orgId,
        {
          manufacturer: body.manufacturer,
          publicKeyRaw: publicKeyRaw(body.publicKey),
          groups: body.groups,
          days: body.days,
        },
        principal,
      ),
  }),
  route({
    method: 'POST',
    path: '/v1/orgs/{orgId}/token-cas',
    tag: 'artefacts',
    summary: "An organisation's token-issuing CA key certified for one product group",
    scope: 'publisher:keys',
    params: s.orgParams,
    body: s.tokenCaBody,
    answer: s.artefact,
    status: 201,
    handler: async ({ authority, principal, params, body }) =>
      authority.organisations.issueTokenCa(
        params.orgId,
        {
          organisation: body.organisation,
          group: body.group,
          publicKeyRaw: publicKeyRaw(body.publicKey),
          days: body.days,
        },
        principal,
      ),
  }),
  route({
    method: 'POST',
    path: '/v1/operator/confirmations',
    tag: 'operator',
    summary: "The phone operator's call: installation ID in, confirmation ID out (audited with the operator)",
    scope: 'publisher:phone',
    body: s.operatorConfirmationBody,
    answer: s.confirmation,
    status: 201,
    handler: async ({ authority, principal, body }) =>
      confirmationAnswer(await authority.organisations.confirmByOperator(body.installationId, principal)),
  }),
  route({
    method: 'POST',
    path: '/v1/operator/confirmation-files',
    tag: 'operator',
    summary:
      "A console's installation-ID file (isolated network): signature checked, each IID confirmed as by the operator; the confirmation file",
    scope: 'publisher:phone',
    body: z.strictObject({
      file: z.string().min(2).max(MAX_PORTAL_PROXY_FILE_CHARS),
      /** The collecting console's key ID (its `--collect` prints it): any other signer is PROXY_FILE_FOREIGN. */
      consoleKeyId: z
        .string()
        .regex(/^[0-9a-f]{16}$/i)
        .optional(),
    }),
    answer: z.object({
      file: z.string(),
      request: z.object({ id: z.string(), consoleKeyId: z.string(), digest: z.string() }),
      confirmed: z.number().int(),
      refused: z.number().int(),
    }),
    bodyLimit: 32 * 1024 * 1024,
    handler: async ({ authority, principal, body }) => {
      const cids = await confirmInstallationIdFile(
        body.file,
        (iid) => authority.organisations.confirmByOperator(iid, principal),
        authority.name,
        authority.clock.now(),
        undefined,
        body.consoleKeyId,
      );
      const confirmed = cids.results.filter((r) => r.ok).length;
      return {
        file: encodeProxyFile(cids),
        request: cids.request,
        confirmed,
        refused: cids.results.length - confirmed,
      };
    },
  }),

  // --- limit-raise requests --------------------------------------------------------------------
  route({
    method: 'GET',
    path: '/v1/raise-requests',
    tag: 'raise-requests',
    summary: 'Limit-raise requests, filtered by organisation and state',
    scope: 'publisher:read | org:{orgId}:read',
    query: s.raiseRequestsQuery,
    answer: s.raiseRequestPage,
    handler: async ({ authority, principal, query }) => {
      const orgId = listOrg(principal, query.orgId, 'publisher:read', 'read');
      return authority.raiseRequests.list(defined({ ...query, orgId: orgId ?? undefined }));
    },
  }),
  route({
    method: 'POST',
    path: '/v1/orgs/{orgId}/raise-requests',
    tag: 'raise-requests',
    summary: 'Ask for more activations on a key of the organisation',
    scope: 'org:{orgId}:requests',
    params: s.orgParams,
    body: s.raiseRequestBody,
    answer: s.raiseRequest,
    status: 201,
    handler: async (ctx) => {
      const key = await keyOf(ctx, ctx.body.keyId);
      return ctx.authority.raiseRequests.create(
        ctx.params.orgId,
        { keyId: key.keyId, additional: ctx.body.additional, reason: ctx.body.reason },
        ctx.principal,
      );
    },
  }),
  route({
    method: 'GET',
    path: '/v1/raise-requests/{id}',
    tag: 'raise-requests',
    summary: 'One limit-raise request',
    scope: 'publisher:read | org:{orgId of the request}:read',
    params: s.idParams('a request id (rr_…)'),
    query: s.noQuery,
    answer: s.raiseRequest,
    handler: async ({ authority, principal, params }) => {
      const request = await authority.raiseRequests.get(params.id);
      requireSeesOrg(principal, request.orgId, 'RAISE_REQUEST_NOT_FOUND', `limit-raise request ${params.id}`);
      requireScope(principal, `org:${request.orgId}:read`);
      return request;
    },
  }),
  route({
    method: 'POST',
    path: '/v1/raise-requests/{id}/decision',
    tag: 'raise-requests',
    summary: 'Approve (raises the limit exactly once) or decline, with a reason',
    scope: 'publisher:requests',
    params: s.idParams('a request id (rr_…)'),
    body: s.decisionBody,
    answer: s.raiseRequest,
    handler: async ({ authority, principal, params, body }) =>
      authority.raiseRequests.decide(params.id, body, principal),
  }),

  // --- webhooks --------------------------------------------------------------------------------
  route({
    method: 'GET',
    path: '/v1/webhooks',
    tag: 'webhooks',
    summary: "Webhook endpoints: every one (publisher:webhooks) or an organisation's",
    scope: 'publisher:webhooks | org:{orgId}:webhooks',
    query: s.webhooksQuery,
    answer: s.webhookPage,
    handler: async ({ authority, principal, query }) => {
      const orgId = listOrg(principal, query.orgId, 'publisher:webhooks', 'webhooks');
      return pageOf(await authority.webhooks.list(orgId === null ? {} : { orgId }), query);
    },
  }),
  route({
    method: 'POST',
    path: '/v1/webhooks',
    tag: 'webhooks',
    summary: 'Add a webhook endpoint (orgId null: publisher-level); the signing secret is in this answer once',
    scope: 'publisher:webhooks | org:{orgId}:webhooks',
    body: s.webhookCreateBody,
    answer: s.webhookCreated,
    status: 201,
    handler: async ({ authority, principal: p, body, reply }) => {
      const orgId = body.orgId !== undefined ? body.orgId : holds(p, 'publisher:webhooks') ? null : p.orgId;
      if (orgId === null) requireScope(p, 'publisher:webhooks');
      else {
        requireSeesOrg(p, orgId);
        requireScope(p, `org:${orgId}:webhooks`, 'publisher:webhooks');
      }
      void reply.header('cache-control', 'no-store');
      return authority.webhooks.create({ orgId, url: body.url, events: body.events }, p);
    },
  }),
  route({
    method: 'DELETE',
    path: '/v1/webhooks/{id}',
    tag: 'webhooks',
    summary: 'Remove a webhook endpoint',
    scope: 'publisher:webhooks | org:{orgId of the endpoint}:webhooks',
    params: s.idParams('a webhook endpoint id (whe_…)'),
    answer: s.removedAnswer,
    handler: async ({ authority, principal, params }) => {
      const endpoint = await manageableEndpoint(authority, principal, params.id);
      await authority.webhooks.remove(endpoint.id, principal);
      return { removed: true as const, id: endpoint.id };
    },
  }),
  route({
    method: 'GET',
    path: '/v1/webhooks/{id}/deliveries',
    tag: 'webhooks',
    summary: "The endpoint's delivery log, filtered by state",
    scope: 'publisher:webhooks | org:{orgId of the endpoint}:webhooks',
    params: s.idParams('a webhook endpoint id (whe_…)'),
    query: s.deliveriesQuery,
    answer: s.deliveryPage,
    handler: async ({ authority, principal, params, query }) => {
      const endpoint = await manageableEndpoint(authority, principal, params.id);
      return authority.webhooks.deliveries(endpoint.id, defined(query));
    },
  }),
  route({
    method: 'POST',
    path: '/v1/webhook-deliveries/{id}/redeliver',
    tag: 'webhooks',
    summary: "Send a delivery's event again (a new delivery, the same event id)",
    scope: 'publisher:webhooks | org:{orgId of the endpoint}:webhooks',
    params: s.idParams('a delivery id (whd_…)'),
    body: s.emptyBody,
    answer: s.webhookDelivery,
    status: 201,
    handler: async ({ authority, principal, params }) => {
      const delivery = await deliveryOf(authority, principal, params.id);
      await manageableEndpoint(authority, principal, delivery.endpointId).catch((err: unknown) => {
        if (err instanceof AuthorityError && err.code === 'WEBHOOK_NOT_FOUND') {
          throw notFound('WEBHOOK_NOT_FOUND', `webhook delivery ${params.id}`);
        }
        throw err;
      });
      return authority.webhooks.redeliver(delivery.id, principal);
    },
  }),

  // --- operations (what the CLI needs remotely) --------------------------------------------------
  route({
    method: 'GET',
    path: '/v1/revocations/entries',
    tag: 'operations',
    summary: 'The revocation list report (as `authority revocations --json`): entries and the signed list',
    scope: 'publisher:read',
    query: s.noQuery,
    answer: s.revocationReport,
    handler: async ({ authority }) => {
      const { encoded, ...report } = await authority.revocationList();
      return { ...report, entries: report.entries.map((e) => ({ ...e })), list: encoded.toString('base64') };
    },
  }),
  route({
    method: 'POST',
    path: '/v1/revocations/hosts',
    tag: 'operations',
    summary: 'Revoke a KMS host key pair (by KMS host key ID, certificate serial, host record or key reference)',
    scope: 'publisher:trust',
    body: s.revokeHostBody,
    answer: s.revocationResult,
    handler: async ({ authority, principal, body }) =>
      authority.revokeHost(body.subject, {
        ...defined({ reason: body.reason, alsoRevokeKey: body.alsoRevokeKey }),
        actor: principal.name,
      }),
  }),
  route({
    method: 'POST',
    path: '/v1/revocations/manufacturers',
    tag: 'operations',
    summary: "Revoke an OEM manufacturer's key by key ID",
    scope: 'publisher:trust',
    body: s.revokeKeyIdBody,
    answer: s.revocationResult,
    handler: async ({ authority, principal, body }) =>
      authority.revokeManufacturer(body.keyId, { ...defined({ reason: body.reason }), actor: principal.name }),
  }),
  route({
    method: 'POST',
    path: '/v1/revocations/token-cas',
    tag: 'operations',
    summary: "Revoke an organisation's token CA by key ID",
    scope: 'publisher:trust',
    body: s.revokeKeyIdBody,
    answer: s.revocationResult,
    handler: async ({ authority, principal, body }) =>
      authority.revokeTokenCa(body.keyId, { ...defined({ reason: body.reason }), actor: principal.name }),
  }),
  route({
    method: 'GET',
    path: '/v1/root',
    tag: 'operations',
    summary: 'Roots, online keys and the next rotation step (as `authority root status --json`)',
    scope: 'publisher:read',
    query: s.noQuery,
    answer: s.rootStatus,
    handler: async ({ authority }) => authority.rootStatus(),
  }),
  route({
    method: 'POST',
    path: '/v1/root/rotate',
    tag: 'operations',
    summary: 'One step of the root rotation (prepare, publish, switch, retire); out of order names nextStep',
    scope: 'publisher:trust',
    body: s.rotateRootBody,
    answer: s.rotationResult,
    handler: async ({ authority, body }) => authority.rotateRoot(body.step),
  }),
  route({
    method: 'POST',
    path: '/v1/online-key/rotate',
    tag: 'operations',
    summary: 'The next online key signs confirmations from now on',
    scope: 'publisher:trust',
    body: s.emptyBody,
    answer: s.onlineKeyRotation,
    handler: async ({ authority }) => authority.rotateOnlineKey(),
  }),

  // --- the admin routes of before (keys by their full text) --------------------------------------
  route({
    method: 'POST',
    path: '/v1/admin/keys/show',
    tag: 'keys',
    summary: 'The key report of a key given in full',
    scope: 'publisher:read',
    legacyAdmin: true,
    body: adminKeyRequestSchema,
    answer: s.keyReport,
    handler: async ({ authority, body }) => keyReportAnswer(await authority.showKey(body.key)),
  }),
  route({
    method: 'POST',
    path: '/v1/admin/keys/limit',
    tag: 'keys',
    summary: 'Set the limit of a key given in full; raises key.limit_raised',
    scope: 'publisher:keys',
    legacyAdmin: true,
    body: adminKeyLimitRequestSchema,
    answer: s.keyReport,
    handler: async ({ authority, principal, body }) => {
      const key = await authority.organisations.findKeyByText(body.key);
      await authority.organisations.setLimit(key.keyId, body.limit, principal);
      return keyReportAnswer(await authority.showKey(body.key));
    },
  }),
  route({
    method: 'POST',
    path: '/v1/admin/keys/revoke',
    tag: 'keys',
    summary: 'Revoke a key given in full',
    scope: 'publisher:keys',
    legacyAdmin: true,
    body: adminKeyRequestSchema,
    answer: s.keyReport,
    handler: async ({ authority, principal, body }) => {
      const key = await authority.organisations.findKeyByText(body.key);
      await authority.organisations.revoke(key.keyId, null, principal);
      return keyReportAnswer(await authority.showKey(body.key));
    },
  }),

  // --- the activation protocol's routes (registered by http.ts; documented here) -----------------
  route({
    method: 'GET',
    path: '/v1/health',
    tag: 'protocol',
    summary: 'Whether this node and its database answer (503/500 with the second form when not)',
    scope: 'public',
    answer: healthReplySchema,
  }),
  route({
    method: 'POST',
    path: '/v1/host-activations',
    tag: 'protocol',
    summary: 'A KMS host activates its host key: a host certificate for its public key',
    scope: 'public',
    body: hostActivationRequestSchema,
    answer: hostActivationReplySchema,
    status: 201,
  }),
  route({
    method: 'POST',
    path: '/v1/activations',
    tag: 'protocol',
    summary: "An installation's MAK or retail key online: a confirmation ID (201 new, 200 again)",
    scope: 'public',
    body: installationActivationRequestSchema,
    answer: installationActivationReplySchema,
    status: 201,
  }),
  route({
    method: 'POST',
    path: '/v1/confirmations',
    tag: 'protocol',
    summary: 'An installation ID read out by phone: its confirmation ID',
    scope: 'public',
    body: confirmationRequestSchema,
    answer: confirmationReplySchema,
    status: 201,
  }),
  route({
    method: 'POST',
    path: '/v1/confirmations/bulk',
    tag: 'protocol',
    summary: "A console's proxy activation: up to 1000 installation IDs, one result each",
    scope: 'public',
    body: bulkConfirmationRequestSchema,
    answer: bulkConfirmationReplySchema,
  }),
  route({
    method: 'GET',
    path: '/v1/trust',
    tag: 'protocol',
    summary: 'The roots clients may know, transition records, delegations and the revocation list',
    scope: 'public',
    answer: trustReplySchema,
  }),
  route({
    method: 'GET',
    path: '/v1/revocations',
    tag: 'protocol',
    summary: 'The current signed revocation list',
    scope: 'public',
    answer: revocationsReplySchema,
  }),
  route({
    method: 'POST',
    path: '/v1/host-status',
    tag: 'protocol',
    summary: 'A host status for a host certificate issued online',
    scope: 'public',
    body: hostStatusRequestSchema,
    answer: hostStatusReplySchema,
  }),
];
