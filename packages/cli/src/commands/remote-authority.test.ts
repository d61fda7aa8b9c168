import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorityError } from '@volact/authority';
import { CliError } from '../output.js';
import { RemoteAuthority, remoteAuthorityUrl } from './remote-authority.js';

describe('remote authority URL', () => {
  it('takes https anywhere and http to this machine only; no credentials, query or other scheme', () => {
    expect(remoteAuthorityUrl('https://authority.example.com').href).toBe('https://authority.example.com/');
    expect(remoteAuthorityUrl('https://example.com/volact').href).toBe('https://example.com/volact/');
    for (const ok of ['http://127.0.0.1:8080', 'http://localhost:1', 'http://[::1]:8080']) {
      expect(() => remoteAuthorityUrl(ok)).not.toThrow();
    }
    for (const bad of [
      'http://authority.example.com',
      'http://10.0.0.5:8080',
      'ftp://example.com',
      'https://user:pw@example.com',
      'https://example.com/?token=x',
      'authority.example.com',
    ]) {
      const err = (() => {
        try {
          remoteAuthorityUrl(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(err, bad).toBeInstanceOf(CliError);
      expect((err as CliError).code).toBe('AUTHORITY_URL_INVALID');
    }
  });
});

describe('remote authority answers', () => {
  let server: Server;
  let url: string;
  const seen: { url: string; authorization: string | undefined }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
      req.resume();
      if (req.url === '/prefix/v1/root') {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: { code: 'SCOPE_MISSING', message: 'needs the scope publisher:read', scope: 'publisher:read' },
          }),
        );
      } else if (req.url === '/prefix/v1/groups?limit=500') {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html>bad gateway</html>');
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route GET ${req.url}` } }));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it("turns the authority's refusal into its own error (code, scope), under the URL's path, with the bearer token", async () => {
    const a = new RemoteAuthority(url, 'token-0123456789abcdef');
    const err = await a.rootStatus().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthorityError);
    expect(err).toMatchObject({ code: 'SCOPE_MISSING', scope: 'publisher:read' });
    expect(seen.at(-1)).toEqual({ url: '/prefix/v1/root', authorization: 'Bearer token-0123456789abcdef' });
  });

  it('an answer without a volact error body is AUTHORITY_BAD_RESPONSE; a missing route says the authority may be older', async () => {
    const a = new RemoteAuthority(url, 'token-0123456789abcdef');
    const bad = await a.listGroups().catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: 'AUTHORITY_BAD_RESPONSE' });
    expect((bad as Error).message).toContain('HTTP 502');
    const missing = await a.rotateOnlineKey().catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'NOT_FOUND' });
    expect((missing as Error).message).toContain('older version');
    // Nothing of the token in what is shown.
    expect(`${(bad as Error).message}${(missing as Error).message}`).not.toContain('token-0123456789abcdef');
  });

  it('verbs that need the data directory or a web session say so', async () => {
    const a = new RemoteAuthority(url, 'token-0123456789abcdef');
    await expect(a.organisations.revealKey('k', undefined as never)).rejects.toMatchObject({ code: 'OPTION_INVALID' });
    expect(() => a.webhooks.start()).toThrow(/--data-dir/);
  });
});
