import { readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * The publisher's web UI and the organisations' portal (packages/authority/web, one app), as
 * `npm run build:web` builds it into packages/authority/web-dist. This module is
 * packages/authority/src/portal-assets.ts (tests) or packages/authority/dist/portal-assets.js
 * (built): one level up either way.
 */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../web-dist/', import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The page's policy: everything from this origin only (the app sets styles through the DOM,
 * never inline markup), no framing by another site, no form posts elsewhere.
 */
export const PORTAL_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "frame-ancestors 'none'",
  "form-action 'self'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

const HTML_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': PORTAL_CONTENT_SECURITY_POLICY,
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
};

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>volact authority</title></head>
<body style="font-family: system-ui, sans-serif; margin: 3rem">
<h1>volact authority</h1>
<p>The web UI is not built: run <code>npm run build:web</code> (it builds packages/authority/web-dist), then reload.
The REST API under <code>/v1/</code> works without it.</p>
</body></html>
`;

/** The file's real path when it is a regular file inside `root` (symbolic links resolved). */
async function fileInside(root: string, path: string): Promise<string | null> {
  try {
    const real = await realpath(path);
    if (real !== root && !real.startsWith(root + sep)) return null;
    return (await stat(real)).isFile() ? real : null;
  } catch {
    return null;
  }
}

async function rootOf(webRoot: string): Promise<string | null> {
  try {
    return await realpath(resolve(webRoot));
  } catch {
    return null;
  }
}

function plain(reply: FastifyReply, status: number, text: string): FastifyReply {
  return reply
    .status(status)
    .header('content-type', 'text/plain; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .send(`${text}\n`);
}

/**
 * Serves the built app: `/` (and `/index.html`) is the page, `/assets/<file>` its hashed
 * scripts and styles (cached for a year, immutable), never a file outside `webRoot`: a path
 * with `..`, a backslash or NUL (after decoding) is refused, not normalised. Without a build,
 * `/` says how to make one. The app routes in the URL's fragment, so no other path is needed.
 */
export function registerPortalAssets(app: FastifyInstance, webRoot: string = DEFAULT_WEB_ROOT): void {
  const page = async (_request: unknown, reply: FastifyReply) => {
    const root = await rootOf(webRoot);
    const index = root ? await fileInside(root, join(root, 'index.html')) : null;
    if (!index) {
      return reply
        .status(503)
        .headers({ ...HTML_HEADERS, 'cache-control': 'no-store', 'content-type': 'text/html; charset=utf-8' })
        .send(NOT_BUILT_PAGE);
    }
    return reply.headers({ ...HTML_HEADERS, 'content-type': 'text/html; charset=utf-8' }).send(await readFile(index));
  };
  app.get('/', page);
  app.get('/index.html', page);

  app.get<{ Params: { '*': string } }>('/assets/*', async (request, reply) => {
    const raw = request.params['*'];
    // Fastify has decoded the path once; a second decoding would let %252e%252e through as "..".
    const segments = raw.split('/');
    if (raw.includes('\\') || raw.includes('\0') || segments.some((s) => s === '..' || s === '.' || s === '')) {
      return plain(reply, 400, 'path refused');
    }
    const root = await rootOf(webRoot);
    const file = root ? await fileInside(root, join(root, 'assets', ...segments)) : null;
    if (!root || !file || !file.startsWith(join(root, 'assets') + sep)) return plain(reply, 404, 'not found');
    const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
    return reply
      .header('content-type', type)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .header('x-content-type-options', 'nosniff')
      .send(await readFile(file));
  });
}
