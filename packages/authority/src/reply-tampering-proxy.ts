import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A proxy in an authority's place that alters each JSON reply: what a client must withstand. */
export interface ReplyTamperingProxy {
  /** The proxy's base URL, to give a client instead of the authority's. */
  readonly url: string;
  /** How the next replies are altered (the reply as the authority sent it in, what to send out). */
  tamper: (reply: Record<string, unknown>) => unknown;
  close(): Promise<void>;
}

/** Starts a proxy on loopback forwarding every request to `authorityUrl`; replies pass unaltered until `tamper` is set. */
export async function startReplyTamperingProxy(authorityUrl: string): Promise<ReplyTamperingProxy> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      void (async () => {
        const upstream = await fetch(new URL(request.url ?? '/', authorityUrl), {
          method: request.method ?? 'GET',
          headers: Object.fromEntries(
            Object.entries(request.headers).filter(
              (entry): entry is [string, string] => typeof entry[1] === 'string' && entry[0] !== 'host',
            ),
          ),
          ...(body.length > 0 ? { body } : {}),
        });
        const reply = (await upstream.json()) as Record<string, unknown>;
        // Altered before anything is sent: a tamper that throws (a reply of another route, such
        // as the host's trust sync) still gets the 502 below, never a second set of headers.
        const altered = JSON.stringify(proxy.tamper(reply));
        response.writeHead(upstream.status, { 'content-type': 'application/json' });
        response.end(altered);
      })().catch((err: unknown) => {
        // A failed forward answers 502, so the test sees a refusal rather than a hang.
        if (response.headersSent) {
          response.destroy();
          return;
        }
        response.writeHead(502, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: { code: 'PROXY_FAILED', message: String(err) } }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy: ReplyTamperingProxy = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tamper: (reply) => reply,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return proxy;
}
