import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '@volact/core';
import { Authority, createAuthorityServer } from '@volact/authority';

const ADMIN = 'admin-token-0123456789abcdef';
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

type Operation = {
  operationId: string;
  parameters: { name: string; in: string; required: boolean; schema: object }[];
  requestBody?: { required: boolean; content: { 'application/json': { schema: Record<string, unknown> } } };
  responses: Record<string, unknown>;
};
type Document = { openapi: string; paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>> };

/**
 * The OpenAPI check of issue 14: every route the authority registers under /v1 is in
 * GET /v1/openapi.json, and every documented route answers (something other than "no route")
 * when called with an owner token and placeholder parameters. The document is JSON, OpenAPI
 * 3.1, with a schema for each request body.
 */
describe('GET /v1/openapi.json: every route documented, every documented route answers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'volact-openapi-'));
  const registered: { method: string; url: string }[] = [];
  let authority: Authority;
  let app: FastifyInstance;
  let document: Document;

  beforeAll(async () => {
    authority = Authority.init(join(dir, 'a'), { clock: new ManualClock(), passwordCost: 10 });
    app = createAuthorityServer(authority, {
      adminToken: ADMIN,
      webRoot: null,
      onRoute: (route) => {
        for (const method of [route.method].flat()) registered.push({ method, url: route.url });
      },
    });
    await app.ready();
    const res = await app.inject({ method: 'GET', url: '/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('application/json');
    document = JSON.parse(res.body) as Document;
  });
  afterAll(async () => {
    await app.close();
    await authority.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is OpenAPI 3.1 JSON with a schema for each request body and each answer', () => {
    expect(document.openapi).toBe('3.1.0');
    const ids = new Set<string>();
    let bodies = 0;
    for (const [path, item] of Object.entries(document.paths)) {
      expect(path).toMatch(/^\/v1\//);
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        expect(ids.has(op.operationId), `${op.operationId} unique`).toBe(false);
        ids.add(op.operationId);
        // Every {param} of the path is declared, and only those.
        const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
        expect(
          op.parameters
            .filter((p) => p.in === 'path')
            .map((p) => p.name)
            .sort(),
          `${method} ${path}`,
        ).toEqual(inPath);
        if (method === 'post' || method === 'put' || method === 'patch') {
          const schema = op.requestBody?.content['application/json'].schema;
          expect(schema, `${method} ${path} has a request body schema`).toBeDefined();
          expect(JSON.stringify(schema)).toMatch(/"type":"object"/);
          bodies++;
        }
        const ok = Object.entries(op.responses).find(([status]) => /^2\d\d$/.test(status));
        expect(ok, `${method} ${path} documents its answer`).toBeDefined();
      }
    }
    expect(bodies).toBeGreaterThan(30);
  });

  it('documents every route registered under /v1', () => {
    const v1 = registered.filter((r) => r.url.startsWith('/v1/') && r.method !== 'HEAD');
    expect(v1.length).toBeGreaterThan(60);
    const missing = v1
      .map((r) => ({ method: r.method.toLowerCase(), path: r.url.replace(/:(\w+)/g, '{$1}') }))
      .filter((r) => document.paths[r.path]?.[r.method as (typeof METHODS)[number]] === undefined)
      .map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(missing).toEqual([]);
  });

  it('answers every documented route (no "no route" 404) with an owner token and placeholder parameters', async () => {
    const placeholders: Record<string, string> = { orgId: 'org_default', group: 'office14' };
    const unanswered: string[] = [];
    let called = 0;
    for (const [path, item] of Object.entries(document.paths)) {
      for (const method of METHODS) {
        if (!item[method]) continue;
        const url = path.replace(/\{(\w+)\}/g, (_m, name: string) => placeholders[name] ?? 'placeholder');
        const res = await app.inject({
          method: method.toUpperCase() as 'GET',
          url,
          headers: { authorization: `Bearer ${ADMIN}` },
          ...(method === 'get' || method === 'delete' ? {} : { payload: {} }),
        });
        called++;
        const error =
          res.statusCode === 404 ? res.json<{ error?: { code?: string; message?: string } }>().error : undefined;
        if (error?.code === 'NOT_FOUND' && /^no route/.test(error.message ?? '')) unanswered.push(`${method} ${path}`);
        expect(res.statusCode, `${method} ${url}`).toBeLessThan(500);
      }
    }
    expect(called).toBeGreaterThan(60);
    expect(unanswered).toEqual([]);
  });
});
