import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where `npm run build` puts the web UI: packages/console/web-dist. This module is
 * packages/console/src/web/static.ts (tests) or packages/console/dist/web/static.js (built):
 * two levels up either way.
 */
export const DEFAULT_ASSETS_DIR = fileURLToPath(new URL('../../web-dist/', import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The page's policy: scripts and styles from this origin only (chart.js sizes its canvas with
 * inline style properties), no framing, no form posts elsewhere.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "form-action 'self'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>volact console</title></head>
<body style="font-family: system-ui, sans-serif; margin: 3rem">
<h1>volact console</h1>
<p><strong>ASSETS_NOT_BUILT</strong>: web assets not built: run <code>npm run build</code> (it builds packages/console/web-dist).</p>
</body></html>
`;

function plain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`${text}\n`);
}

/** The file's real path, when it is a regular file inside `root` (symbolic links resolved). */
async function fileInside(root: string, path: string): Promise<{ path: string; size: number } | null> {
  try {
    const real = await realpath(path);
    if (real !== root && !real.startsWith(root + sep)) return null;
    const info = await stat(real);
    return info.isFile() ? { path: real, size: info.size } : null;
  } catch {
    return null;
  }
}

/**
 * Serves the built single-page app from `assetsDir`: files by path (GET and HEAD), never
 * outside the directory; any other path without an extension gets index.html (the app routes
 * it). Hashed files under /assets/ are cached for a year, index.html never.
 */
export async function serveStatic(req: IncomingMessage, res: ServerResponse, assetsDir: string): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    plain(res, 405, 'method not allowed');
    return;
  }
  let root: string;
  try {
    root = await realpath(resolve(assetsDir));
  } catch {
    root = '';
  }
  const index = root ? await fileInside(root, join(root, 'index.html')) : null;
  if (!index) {
    res.writeHead(500, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : NOT_BUILT_PAGE);
    return;
  }
  const rawPath = (req.url ?? '/').split('?')[0] as string;
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    plain(res, 400, 'bad path');
    return;
  }
  // No "..", backslash or NUL anywhere (after decoding: %2e%2e is ".." too): the path is
  // refused, not normalised, so no request can name a file outside the assets directory.
  const segments = path.split('/');
  if (!path.startsWith('/') || path.includes('\\') || path.includes('\0') || segments.includes('..')) {
    plain(res, 400, 'path refused');
    return;
  }
  const relative = segments.filter((s) => s !== '' && s !== '.');
  let file = relative.length ? await fileInside(root, join(root, ...relative)) : index;
  if (!file) {
    if (extname(path) !== '' || path.startsWith('/assets/')) {
      plain(res, 404, 'not found');
      return;
    }
    file = index;
  }
  const type = CONTENT_TYPES[extname(file.path).toLowerCase()] ?? 'application/octet-stream';
  const headers: Record<string, string | number> = { 'content-type': type, 'content-length': file.size };
  if (file.path.startsWith(join(root, 'assets') + sep))
    headers['cache-control'] = 'public, max-age=31536000, immutable';
  else headers['cache-control'] = 'no-cache';
  if (type.startsWith('text/html')) headers['content-security-policy'] = CONTENT_SECURITY_POLICY;
  res.writeHead(200, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await new Promise<void>((done) => {
    const stream = createReadStream(file.path);
    stream.on('error', () => {
      res.destroy();
      done();
    });
    stream.on('end', () => done());
    stream.pipe(res);
  });
}
