import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import type { Principal } from '../access/principal.js';
import type { Authority } from '../authority.js';
import { invalidField } from '../errors.js';
import { requireScope, requireSeesOrg, type ApiAuth } from './auth.js';
import { openApiDocument } from './openapi.js';
import { API_ROUTES, isCheckedScope, type ApiRoute } from './routes.js';

/** Before authentication: a public route's principal holds nothing. */
const ANONYMOUS: Principal = {
  kind: 'token',
  id: 'anonymous',
  name: 'anonymous',
  userId: null,
  orgId: null,
  role: null,
  scopes: [],
};

/** REQUEST_INVALID naming the field and what was expected (`body.limit: Invalid input: expected number…`). */
export function parsePart<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (schema === undefined) return undefined as T;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = [where, ...(issue?.path ?? []).map(String)].join('.');
  throw invalidField(path, `${path}: ${issue?.message ?? 'invalid'}`);
}

const fastifyPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

/**
 * Registers the REST API's routes (api/routes.ts) that have a handler, and GET /v1/openapi.json.
 * Each request: authenticate (unless public), validate params, 404 for an organisation the
 * principal may not see, check the route's scope, validate query and body, check the
 * organisation exists, then the handler.
 */
export function registerApi(app: FastifyInstance, authority: Authority, auth: ApiAuth): void {
  let document: unknown;
  for (const r of API_ROUTES) {
    if (r.path === '/v1/openapi.json') {
      app.get(r.path, async (request) => {
        parsePart(r.query, request.query ?? {}, 'query');
        return (document ??= openApiDocument());
      });
      continue;
    }
    if (r.handler === undefined) continue;
    const handler = r.handler;
    app.route({
      method: r.method,
      url: fastifyPath(r.path),
      ...(r.bodyLimit === undefined ? {} : { bodyLimit: r.bodyLimit }),
      handler: async (request, reply) => {
        const principal = await principalOf(r, request);
        const params = parsePart(r.params, request.params ?? {}, 'params') as Record<string, unknown> | undefined;
        const orgId = typeof params?.orgId === 'string' ? params.orgId : undefined;
        if (orgId !== undefined) requireSeesOrg(principal, orgId);
        if (isCheckedScope(r.scope)) requireScope(principal, r.scope.replace('{orgId}', orgId ?? '{orgId}'));
        const query = parsePart(r.query, request.query ?? {}, 'query');
        const body = parsePart(r.body, request.body, 'body');
        // An organisation's routes answer ORG_NOT_FOUND for an id that does not exist.
        if (orgId !== undefined && !(r.path === '/v1/orgs/{orgId}')) await authority.organisations.get(orgId);
        const answer = await handler({ authority, principal, params, query, body, request, reply });
        return reply.status(r.status ?? 200).send(answer);
      },
    });
  }

  async function principalOf(r: ApiRoute, request: Parameters<ApiAuth['authenticate']>[0]): Promise<Principal> {
    if (r.scope === 'public' || r.scope === 'session') return ANONYMOUS;
    if (r.legacyAdmin) return auth.authenticateAdminRoute(request);
    return auth.authenticate(request);
  }
}
