import { z } from 'zod';
import { API_ROUTES, isCheckedScope, type ApiRoute } from './routes.js';
import { errorAnswer } from './schemas.js';

/**
 * `GET /v1/openapi.json`: OpenAPI 3.1 made from the route table, with the very schemas that
 * validate the requests (their input side: what a caller sends) and describe the answers.
 */

type Json = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  const out = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Json;
  delete out.$schema;
  return out;
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): Json[] {
  if (schema === undefined) return [];
  const object = jsonSchema(schema, 'input');
  const properties = (object.properties ?? {}) as Record<string, Json>;
  const required = new Set((object.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    ...(typeof property.description === 'string' ? { description: property.description } : {}),
    schema: property,
  }));
}

const operationId = (r: ApiRoute) =>
  `${r.method.toLowerCase()}${r.path
    .replace(/^\/v1/, '')
    .split(/[/.-]/)
    .filter(Boolean)
    .map((part) => {
      const word = part.replace(/[{}]/g, '');
      const by = part.startsWith('{') ? 'By' : '';
      return by + word.charAt(0).toUpperCase() + word.slice(1);
    })
    .join('')}`;

function scopeText(scope: string): string {
  switch (scope) {
    case 'public':
      return 'public: no credentials';
    case 'any':
      return 'any signed-in principal (API token, admin token or session)';
    case 'session':
      return 'the session cookie';
    default:
      return isCheckedScope(scope) ? `scope ${scope}` : `scopes: ${scope}`;
  }
}

export function openApiDocument(routes: readonly ApiRoute[] = API_ROUTES, info: { version?: string } = {}): Json {
  const paths: Record<string, Record<string, Json>> = {};
  const error = { $ref: '#/components/schemas/Error' };
  for (const r of routes) {
    const body = r.body;
    const status = String(r.status ?? 200);
    const operation: Json = {
      operationId: operationId(r),
      summary: r.summary,
      description: `Needs ${scopeText(r.scope)}.`,
      tags: [r.tag],
      'x-volact-scope': r.scope,
      parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')],
      ...(body === undefined
        ? {}
        : {
            requestBody: {
              required: !body.safeParse(undefined).success,
              content: { 'application/json': { schema: jsonSchema(body, 'input') } },
            },
          }),
      responses: {
        [status]: {
          description: 'the answer',
          content: { 'application/json': { schema: jsonSchema(r.answer, 'output') } },
        },
        '4XX': {
          description: 'refused: `{error:{code,message}}` (docs/errors.md)',
          content: { 'application/json': { schema: error } },
        },
        '5XX': { description: 'the authority failed', content: { 'application/json': { schema: error } } },
      },
      security: r.scope === 'public' ? [] : [{ bearer: [] }, { session: [] }],
    };
    const item = (paths[r.path] ??= {});
    item[r.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'volact authority',
      version: info.version ?? '1',
      description:
        "The publisher's authority: the activation protocol and the publisher's service (organisations, keys, usage, people, tokens, requests, webhooks). See docs/portal.md.",
    },
    paths,
    components: {
      schemas: { Error: jsonSchema(errorAnswer, 'output') },
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API token (vat_…) or the authority’s admin token',
        },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: 'volact_session',
          description: 'The web UI’s session (POST /v1/session); changes need the header X-Volact-Csrf: 1',
        },
      },
    },
  };
}
