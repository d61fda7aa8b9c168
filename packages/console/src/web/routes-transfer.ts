import type { ApiDeps, Route } from './api.js';
import { authorityFor, download, parseBody } from './api.js';
import { confirmFileRequest, exportRequest, importRequest, type Answers } from './contract.js';
import { WebError } from './errors.js';
import type { Session } from './sessions.js';

/** A file name's id part: what the file says, kept to safe characters. */
const safeId = (id: unknown) =>
  (typeof id === 'string' ? id.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 64) : '') || 'file';

/** Export and import of the whole data set; isolated-network files (collected, confirmed). */
export function transferRoutes(deps: ApiDeps): Route[] {
  const c = deps.console;
  return [
    {
      method: 'POST',
      path: '/api/export',
      auth: true,
      async handle(ctx) {
        const { passphrase } = parseBody(exportRequest, ctx.body ?? {});
        const { text, summary } = await c.exportText(passphrase);
        deps.log(
          `export ${summary.secrets ? 'with' : 'without'} secrets by ${(ctx.session as Session).user}: ${summary.counts.machines} machines`,
        );
        return download(text, 'volact-console-export.json');
      },
    },
    {
      method: 'POST',
      path: '/api/import',
      auth: true,
      upload: true,
      async handle(ctx) {
        const body = parseBody(importRequest, ctx.body);
        const { path, ...summary } = await c.importText(body.file, body.passphrase);
        void path; // empty: the file came as text
        return { status: 200, json: summary satisfies Answers['imported'] };
      },
    },
    {
      method: 'GET',
      path: '/api/proxy-files',
      auth: true,
      async handle() {
        return { status: 200, json: { files: await c.listProxyFiles() } satisfies Answers['proxyFiles'] };
      },
    },
    {
      method: 'GET',
      path: '/api/proxy-files/:id',
      auth: true,
      async handle(_ctx, { id }) {
        const text = await c.proxyFile(id as string);
        return download(text, `volact-iids-${safeId(id)}.json`);
      },
    },
    {
      method: 'POST',
      path: '/api/proxy-files/confirm',
      auth: true,
      upload: true,
      async handle(ctx) {
        const body = parseBody(confirmFileRequest, ctx.body);
        const text = await c.confirmProxyFile(
          body.file,
          authorityFor(deps, body.authority, 'confirming a file'),
          body.consoleKeyId,
        );
        let id: unknown;
        try {
          id = (JSON.parse(text) as { request?: { id?: unknown } }).request?.id;
        } catch {
          throw new WebError('INTERNAL', 'the confirmation file is not JSON');
        }
        return download(text, `volact-cids-${safeId(id)}.json`);
      },
    },
  ];
}
