import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerPortalAssets } from './portal-assets.js';

let work: string;
let built: FastifyInstance;
let missing: FastifyInstance;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'volact-portal-assets-'));
  const root = join(work, 'web-dist');
  mkdirSync(join(root, 'assets'), { recursive: true });
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>volact authority</title>');
  writeFileSync(join(root, 'assets', 'index-abc.js'), 'console.log(1)');
  writeFileSync(join(root, 'assets', 'index-abc.css'), 'body{}');
  writeFileSync(join(work, 'secret.txt'), 'the data directory');
  symlinkSync(join(work, 'secret.txt'), join(root, 'assets', 'link.js'));
  built = Fastify();
  registerPortalAssets(built, root);
  missing = Fastify();
  registerPortalAssets(missing, join(work, 'not-built'));
  await Promise.all([built.ready(), missing.ready()]);
});

afterAll(async () => {
  await built?.close();
  await missing?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('the web UI served by the authority', () => {
  it('serves the page with its security headers, never cached stale', async () => {
    const res = await built.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).toContain('volact authority');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['cache-control']).toBe('no-cache');
  });

  it('serves hashed assets with their content types, cached for a year', async () => {
    const js = await built.inject({ method: 'GET', url: '/assets/index-abc.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.body).toBe('console.log(1)');
    const css = await built.inject({ method: 'GET', url: '/assets/index-abc.css' });
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await built.inject({ method: 'HEAD', url: '/assets/index-abc.js' })).statusCode).toBe(200);
    expect((await built.inject({ method: 'GET', url: '/assets/nope.js' })).statusCode).toBe(404);
  });

  it('never serves a file outside the assets directory, however the path is spelled', async () => {
    for (const url of [
      '/assets/../../secret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%252e%252e/secret.txt',
      '/assets/..\\..\\secret.txt',
      '/assets/%00.js',
      '/assets/',
      '/assets/link.js',
    ]) {
      const res = await built.inject({ method: 'GET', url });
      expect([400, 404], url).toContain(res.statusCode);
      expect(res.body, url).not.toContain('the data directory');
      expect(res.body, url).not.toContain('<title>');
    }
  });

  it('says how to build the UI when it is not built', async () => {
    const res = await missing.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build:web');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect((await missing.inject({ method: 'GET', url: '/assets/index-abc.js' })).statusCode).toBe(404);
  });
});
